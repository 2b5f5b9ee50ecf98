"""The Transformer (Vaswani et al. 2017, "Attention Is All You Need"): attention without recurrence.

The RNN models of this package read the source word by word and attend from a
recurrent state. The Transformer drops the recurrence: every position attends to
every other one (self-attention), in several subspaces at once (heads), and word
order enters only through added positional encodings. The attention itself is
the one this package already has: the ``scaled_dot`` score of
:mod:`seq2seq_keras.model.attention`, ``score(q, k) = q^T k / sqrt(d_k)``, with the same
masked softmax, applied per head (:func:`multi_head_weights`).

Equations (section 3 of the paper; ``d = model_dim``, ``h = num_heads``,
``d_k = d / h``)::

    Attention(Q, K, V) = softmax(Q K^T / sqrt(d_k)) V                       (eq. 1)
    MultiHead(Q, K, V) = Concat(head_1..head_h) W^O,
        head_i = Attention(Q W_i^Q, K W_i^K, V W_i^V)                       (3.2.2)
    FFN(x)             = max(0, x W_1 + b_1) W_2 + b_2                      (eq. 2)
    PE(pos, 2i)        = sin(pos / 10000^(2i/d)),
    PE(pos, 2i+1)      = cos(pos / 10000^(2i/d))                            (3.5)
    input              = Embedding(x) * sqrt(d) + PE                        (3.4)

**Pre-norm, not the paper's post-norm.** The paper normalises *after* each
residual addition, ``x = LayerNorm(x + Sublayer(x))``; this module normalises the
sublayer's *input*, ``x = x + Sublayer(LayerNorm(x))``, with one final LayerNorm
after each stack. Xiong et al. 2020 ("On Layer Normalization in the Transformer
Architecture") show that post-norm needs a learning-rate warm-up to train at all
(the gradients of the last layers are large at initialisation), while pre-norm
trains with the plain Adam settings the RNN models here use, on small data and
without a schedule. The package trains both architectures with the same
optimizer and ``train_step``, so pre-norm is the fair choice.

Masks: the encoder's self-attention and the decoder's cross-attention never look
at source padding (id 0); the decoder's self-attention is causal (position ``t``
sees ``1..t``) and never looks at target padding. A row with nothing to attend to
gets zero weights (:func:`~seq2seq_keras.model.attention.masked_softmax`).

Decoding one token at a time (:meth:`TransformerDecoder.step`) keeps, per decoder
layer, the self-attention keys and values of every earlier target position in a
cache preallocated to the longest output (``[n, cache_len, heads, head_dim]``,
written at the step's position), so a step projects only its own token and the
shapes of a ``tf.while_loop`` never change; the cross-attention keys and values of
the source are projected once, in :meth:`TransformerDecoder.start`. The step
returns the **last layer's cross-attention, averaged over heads** ``[n, src_len]``,
which is what heatmaps, unknown-word replacement and the exported
``translate_with_attention`` show; every layer's and head's weights are in
:meth:`TransformerDecoder.cross_attention_weights`.
"""

from __future__ import annotations

import math

import keras
import tensorflow as tf
from keras import ops

from .attention import luong_score, masked_softmax, weighted_sum


# ---------------------------------------------------------------------- positions
def positional_encoding(positions, dim: int, dtype="float32"):
    """Sinusoidal positions (section 3.5): ``PE(pos, 2i) = sin(pos / 10000^(2i/dim))``,
    ``PE(pos, 2i+1) = cos(pos / 10000^(2i/dim))``.

    ``positions`` int [...] -> [..., dim] (``dim`` even).
    """
    positions = tf.cast(positions, tf.float32)
    inverse_frequency = tf.pow(10000.0, -tf.range(0, dim, 2, dtype=tf.float32) / float(dim))  # [dim / 2]
    angles = positions[..., None] * inverse_frequency  # [..., dim / 2]
    interleaved = tf.stack([tf.sin(angles), tf.cos(angles)], axis=-1)  # [..., dim / 2, 2]: sin, cos, sin, ...
    shape = tf.concat([tf.shape(angles)[:-1], [dim]], axis=0)
    return tf.cast(tf.reshape(interleaved, shape), dtype)


@keras.saving.register_keras_serializable(package="seq2seq_keras")
class PositionalEmbedding(keras.layers.Layer):
    """``Embedding(x) * sqrt(model_dim) + PE(position)`` (sections 3.4 and 3.5).

    Call: ``embedding(token_ids, positions=None)``: ``token_ids`` int [batch, seq_len]
    -> [batch, seq_len, model_dim]; ``positions`` int [batch, seq_len] (default
    ``0..seq_len-1`` on every row; a decoding step passes its own position).
    No Keras mask is attached: the Transformer layers take explicit masks.

    Raises ValueError for an odd ``model_dim`` (sin/cos pairs).
    """

    def __init__(self, vocabulary_size: int, model_dim: int, **kwargs):
        super().__init__(**kwargs)
        if model_dim % 2:
            raise ValueError(f"model_dim must be even for sinusoidal positions, got {model_dim}.")
        self.vocabulary_size = int(vocabulary_size)
        self.model_dim = int(model_dim)
        self.embedding = keras.layers.Embedding(
            self.vocabulary_size, self.model_dim, name="embedding", dtype=self.dtype_policy
        )

    def build(self, ids_shape, positions_shape=None):
        self.embedding.build(ids_shape)
        self.built = True

    def call(self, token_ids, positions=None):
        x = self.embedding(token_ids) * ops.cast(math.sqrt(self.model_dim), self.compute_dtype)
        if positions is None:
            positions = tf.range(tf.shape(token_ids)[1])[None, :]
        return x + positional_encoding(positions, self.model_dim, x.dtype)

    def compute_mask(self, token_ids, mask=None):
        return None

    def get_config(self):
        return {**super().get_config(), "vocabulary_size": self.vocabulary_size, "model_dim": self.model_dim}


# ---------------------------------------------------------------------- attention
def multi_head_weights(query, key, mask, scale):
    """Per-head attention weights with this package's score and softmax.

    ``softmax(Q_i K_i^T / sqrt(d_k))`` for every head ``i`` is
    :func:`~seq2seq_keras.model.attention.luong_score` with ``scale = 1 / sqrt(d_k)``
    (the ``scaled_dot`` score) followed by
    :func:`~seq2seq_keras.model.attention.masked_softmax`, with the heads folded into the batch.

    Args:
        query: projected queries [batch, tgt_len, heads, head_dim].
        key: projected keys [batch, src_len, heads, head_dim].
        mask: bool [batch, tgt_len, src_len] or [batch, 1, src_len] (True = may
            attend), or None.
        scale: Python float, ``1 / sqrt(head_dim)``.

    Returns float32 weights [batch, heads, tgt_len, src_len] (Keras' layout), under every
    dtype policy: each row sums to 1 over the visible positions and is exactly 0 elsewhere.
    """
    batch, tgt_len, heads, head_dim = tf.unstack(tf.shape(query))
    src_len = tf.shape(key)[1]
    q = tf.reshape(tf.transpose(query, (0, 2, 1, 3)), [-1, tgt_len, head_dim])  # [batch * heads, tgt_len, head_dim]
    k = tf.reshape(tf.transpose(ops.cast(key, query.dtype), (0, 2, 1, 3)), [-1, src_len, head_dim])
    scores = tf.reshape(luong_score(q, k, scale), [batch, heads, tgt_len, src_len])
    return masked_softmax(scores, None if mask is None else ops.expand_dims(ops.cast(mask, "bool"), 1))


@keras.saving.register_keras_serializable(package="seq2seq_keras")
class ScaledDotMultiHeadAttention(keras.layers.MultiHeadAttention):
    """``keras.layers.MultiHeadAttention`` whose heads score with this package's ``scaled_dot``.

    Same weights, call and config as Keras' layer (section 3.2.2: ``W^Q, W^K, W^V``
    are ``query_dense``, ``key_dense``, ``value_dense`` [model_dim, heads, head_dim],
    ``W^O`` is ``output_dense``); only ``_compute_attention``, the documented place to
    change how heads attend, is :func:`multi_head_weights`. Fully masked rows get
    zero weights instead of Keras' uniform ones.

    :meth:`attend` runs the layer on keys and values projected beforehand (a
    decoding step's cache, or the source projected once).
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # autocast=False: the float32 weights stay float32 under a mixed policy (see _compute_attention).
        self.weights_dropout = keras.layers.Dropout(
            self.dropout, seed=self.seed, dtype=self.dtype_policy, autocast=False
        )

    def _compute_attention(
        self,
        query,
        key,
        value,
        attention_mask=None,
        training=None,
        return_attention_scores=False,
        use_causal_mask=False,
    ):
        """``query`` [batch, tgt_len, heads, head_dim], ``key``/``value`` [batch, src_len, heads, head_dim],
        ``attention_mask`` bool [batch, tgt_len or 1, src_len] -> (output [batch, tgt_len, heads, head_dim],
        weights float32 [batch, heads, tgt_len, src_len]). The weights and their weighted sum of the
        values are computed in float32 under every dtype policy (:func:`~seq2seq_keras.model.attention.weighted_sum`);
        the output is handed on in the compute dtype."""
        if use_causal_mask:
            causal = self._compute_causal_mask(query, value)
            attention_mask = (
                causal if attention_mask is None else ops.logical_and(ops.cast(attention_mask, "bool"), causal)
            )
        weights = multi_head_weights(query, key, attention_mask, 1.0 / math.sqrt(self.key_dim))
        dropped = self.weights_dropout(weights, training=training)
        output = weighted_sum(dropped, ops.transpose(value, (0, 2, 1, 3)))  # [batch, heads, tgt_len, head_dim]
        return ops.cast(ops.transpose(output, (0, 2, 1, 3)), self.compute_dtype), weights

    def project(self, source):
        """``source`` [batch, src_len, model_dim] -> (keys, values) [batch, src_len, heads, head_dim]."""
        return self.key_dense(source), self.value_dense(source)

    def attend(self, query, key, value, mask=None, training=None):
        """Attention on projected ``key``/``value``: ``query`` [batch, tgt_len, model_dim] ->
        (output [batch, tgt_len, model_dim], weights [batch, heads, tgt_len, src_len])."""
        output, weights = self._compute_attention(self.query_dense(query), key, value, mask, training)
        return self.output_dense(output), weights


# ---------------------------------------------------------------------- layers
class _Block(keras.layers.Layer):
    """What the encoder and decoder layers share: sizes, the feed-forward network, residual dropout."""

    def __init__(self, model_dim: int, num_heads: int, ff_dim: int, dropout: float = 0.0, **kwargs):
        super().__init__(**kwargs)
        if model_dim % num_heads:
            raise ValueError(f"model_dim={model_dim} must be a multiple of num_heads={num_heads}.")
        self.model_dim, self.num_heads, self.ff_dim = int(model_dim), int(num_heads), int(ff_dim)
        self.dropout = float(dropout)
        policy = self.dtype_policy
        self.ff_inner = keras.layers.Dense(self.ff_dim, activation="relu", name="ff_1", dtype=policy)  # W_1, b_1
        self.ff_outer = keras.layers.Dense(self.model_dim, name="ff_2", dtype=policy)  # W_2, b_2
        self.residual_dropout = keras.layers.Dropout(self.dropout, dtype=policy)

    def _attention(self, name):
        return ScaledDotMultiHeadAttention(
            self.num_heads, self.model_dim // self.num_heads, dropout=self.dropout, name=name, dtype=self.dtype_policy
        )

    def _norm(self, name):
        return keras.layers.LayerNormalization(epsilon=1e-6, name=name, dtype=self.dtype_policy)

    def _build_feed_forward(self, norm):
        norm.build((None, None, self.model_dim))
        self.ff_inner.build((None, None, self.model_dim))
        self.ff_outer.build((None, None, self.ff_dim))

    def feed_forward(self, x, norm, training):
        """``x + Dropout(FFN(LayerNorm(x)))`` (eq. 2, pre-norm)."""
        hidden = self.residual_dropout(self.ff_inner(norm(x)), training=training)
        return x + self.residual_dropout(self.ff_outer(hidden), training=training)

    def get_config(self):
        return {
            **super().get_config(),
            "model_dim": self.model_dim,
            "num_heads": self.num_heads,
            "ff_dim": self.ff_dim,
            "dropout": self.dropout,
        }


@keras.saving.register_keras_serializable(package="seq2seq_keras")
class TransformerEncoderLayer(_Block):
    """One encoder layer, pre-norm (section 3.1 with Xiong et al. 2020's placement)::

        x = x + Dropout(MultiHead(LN(x), LN(x), LN(x)))     # self-attention, source padding masked
        x = x + Dropout(FFN(LN(x)))

    Call: ``layer(x, source_mask)``: ``x`` [batch, src_len, model_dim], ``source_mask`` bool
    [batch, src_len] (True = real token) -> [batch, src_len, model_dim].
    With ``return_attention=True`` also the self-attention weights [batch, heads, src_len, src_len].
    """

    def __init__(self, model_dim: int, num_heads: int, ff_dim: int, dropout: float = 0.0, **kwargs):
        super().__init__(model_dim, num_heads, ff_dim, dropout, **kwargs)
        self.self_attention = self._attention("self_attention")
        self.attention_norm = self._norm("attention_norm")
        self.ff_norm = self._norm("ff_norm")

    def build(self, x_shape, source_mask_shape=None):
        shape = (None, None, self.model_dim)
        self.attention_norm.build(shape)
        self.self_attention.build(shape, shape)
        self._build_feed_forward(self.ff_norm)
        self.built = True

    def call(self, x, source_mask, training=None, return_attention=False):
        h = self.attention_norm(x)
        attended, weights = self.self_attention(
            h, h, attention_mask=ops.expand_dims(source_mask, 1), return_attention_scores=True, training=training
        )
        x = self.feed_forward(x + self.residual_dropout(attended, training=training), self.ff_norm, training)
        return (x, weights) if return_attention else x


@keras.saving.register_keras_serializable(package="seq2seq_keras")
class TransformerDecoderLayer(_Block):
    """One decoder layer, pre-norm (section 3.1)::

        x = x + Dropout(MultiHead(LN(x), LN(x), LN(x)))     # causal self-attention
        x = x + Dropout(MultiHead(LN(x), H, H))             # cross-attention to the encoder outputs H
        x = x + Dropout(FFN(LN(x)))

    Call (all target positions at once): ``layer(x, encoder_outputs, self_mask,
    cross_mask)`` with ``x`` [batch, tgt_len, model_dim], ``encoder_outputs``
    [batch, src_len, model_dim], ``self_mask`` bool [batch, tgt_len, tgt_len]
    (causal and target padding), ``cross_mask`` bool [batch, 1, src_len] -> (x,
    cross-attention weights [batch, heads, tgt_len, src_len]).

    :meth:`step`: one position, with the cache of earlier keys and values.
    """

    def __init__(self, model_dim: int, num_heads: int, ff_dim: int, dropout: float = 0.0, **kwargs):
        super().__init__(model_dim, num_heads, ff_dim, dropout, **kwargs)
        self.self_attention = self._attention("self_attention")
        self.cross_attention = self._attention("cross_attention")
        self.self_norm = self._norm("self_attention_norm")
        self.cross_norm = self._norm("cross_attention_norm")
        self.ff_norm = self._norm("ff_norm")

    def build(self, x_shape, encoder_outputs_shape=None, *args):
        shape = (None, None, self.model_dim)
        for norm in (self.self_norm, self.cross_norm):
            norm.build(shape)
        self.self_attention.build(shape, shape)
        self.cross_attention.build(shape, shape)
        self._build_feed_forward(self.ff_norm)
        self.built = True

    def call(self, x, encoder_outputs, self_mask, cross_mask, training=None):
        h = self.self_norm(x)
        attended = self.self_attention(h, h, attention_mask=self_mask, training=training)
        x = x + self.residual_dropout(attended, training=training)
        attended, weights = self.cross_attention(
            self.cross_norm(x),
            encoder_outputs,
            attention_mask=cross_mask,
            return_attention_scores=True,
            training=training,
        )
        x = x + self.residual_dropout(attended, training=training)
        return self.feed_forward(x, self.ff_norm, training), weights

    def step(self, x, key_cache, value_cache, position, cross_key, cross_value, cross_mask, training=None):
        """One target position.

        Args:
            x: [n, 1, model_dim], the position's input.
            key_cache, value_cache: [n, cache_len, heads, head_dim], the self-attention keys and
                values of positions ``0 .. position - 1`` (anything after is ignored).
            position: int32 [n], this position's index (the same on every row when decoding).
            cross_key, cross_value: [n, src_len, heads, head_dim], the source projected once.
            cross_mask: bool [n, 1, src_len].

        Returns (x [n, 1, model_dim], key_cache, value_cache with this position written,
        cross-attention weights [n, heads, 1, src_len]).
        """
        h = self.self_norm(x)
        here = tf.equal(tf.range(tf.shape(key_cache)[1])[None, :], position[:, None])  # [n, cache_len]
        write = here[:, :, None, None]
        key_cache = tf.where(write, ops.cast(self.self_attention.key_dense(h), key_cache.dtype), key_cache)
        value_cache = tf.where(write, ops.cast(self.self_attention.value_dense(h), value_cache.dtype), value_cache)
        visible = tf.range(tf.shape(key_cache)[1])[None, None, :] <= position[:, None, None]  # [n, 1, cache_len]
        attended, _ = self.self_attention.attend(h, key_cache, value_cache, visible, training)
        x = x + self.residual_dropout(attended, training=training)
        attended, weights = self.cross_attention.attend(
            self.cross_norm(x), cross_key, cross_value, cross_mask, training
        )
        x = x + self.residual_dropout(attended, training=training)
        return self.feed_forward(x, self.ff_norm, training), key_cache, value_cache, weights


# ---------------------------------------------------------------------- stacks
class _Stack(keras.layers.Layer):
    """Shared sizes and config of :class:`TransformerEncoder` and :class:`TransformerDecoder`."""

    def __init__(
        self,
        vocabulary_size: int,
        *,
        num_layers: int = 2,
        num_heads: int = 4,
        model_dim: int = 128,
        ff_dim: int = 512,
        dropout: float = 0.0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if num_layers < 1 or num_heads < 1:
            raise ValueError(f"num_layers and num_heads must be >= 1, got {num_layers} and {num_heads}.")
        self.vocabulary_size, self.num_layers, self.num_heads = int(vocabulary_size), int(num_layers), int(num_heads)
        self.model_dim, self.ff_dim, self.dropout = int(model_dim), int(ff_dim), float(dropout)
        self.supports_masking = True
        self.embedding = PositionalEmbedding(
            self.vocabulary_size, self.model_dim, name="embedding", dtype=self.dtype_policy
        )
        self.embedding_dropout = keras.layers.Dropout(self.dropout, dtype=self.dtype_policy)
        self.final_norm = keras.layers.LayerNormalization(epsilon=1e-6, name="final_norm", dtype=self.dtype_policy)

    def _blocks(self, cls, prefix):
        return [
            cls(
                self.model_dim, self.num_heads, self.ff_dim, self.dropout, name=f"{prefix}_{i}", dtype=self.dtype_policy
            )
            for i in range(self.num_layers)
        ]

    @property
    def output_dim(self) -> int:
        return self.model_dim

    def embed(self, token_ids, training, positions=None):
        return self.embedding_dropout(self.embedding(token_ids, positions), training=training)

    def get_config(self):
        return {
            **super().get_config(),
            "vocabulary_size": self.vocabulary_size,
            "num_layers": self.num_layers,
            "num_heads": self.num_heads,
            "model_dim": self.model_dim,
            "ff_dim": self.ff_dim,
            "dropout": self.dropout,
        }


@keras.saving.register_keras_serializable(package="seq2seq_keras")
class TransformerEncoder(_Stack):
    """Positional embedding, ``num_layers`` :class:`TransformerEncoderLayer`, a final LayerNorm.

    Call, the :class:`~seq2seq_keras.model.Encoder` contract: ``outputs, states, mask =
    encoder(source_ids)`` with ``source_ids`` int [batch, src_len] (0 = padding),
    ``outputs`` [batch, src_len, model_dim], ``states`` ``[]`` (no recurrent state:
    there is no bottleneck vector) and ``mask`` bool [batch, src_len].
    :meth:`self_attention_weights`: every layer's weights [batch, layers, heads, src_len, src_len].
    """

    def __init__(self, vocabulary_size: int, **kwargs):
        super().__init__(vocabulary_size, **kwargs)
        self.blocks = self._blocks(TransformerEncoderLayer, "layer")

    def build(self, ids_shape):
        self.embedding.build(ids_shape)
        for block in self.blocks:
            block.build((None, None, self.model_dim))
        self.final_norm.build((None, None, self.model_dim))
        self.built = True

    def _run(self, source_ids, training):
        mask = ops.not_equal(source_ids, 0)
        x, weights = self.embed(source_ids, training), []
        for block in self.blocks:
            x, w = block(x, mask, training=training, return_attention=True)
            weights.append(w)
        return self.final_norm(x), mask, weights

    def call(self, source_ids, training=None):
        outputs, mask, _ = self._run(source_ids, training)
        return outputs, [], mask

    def self_attention_weights(self, source_ids):
        """``source_ids`` int [batch, src_len] -> float [batch, layers, heads, src_len, src_len] (inference)."""
        return ops.stack(self._run(source_ids, False)[2], axis=1)

    def compute_mask(self, source_ids, mask=None):
        return None


@keras.saving.register_keras_serializable(package="seq2seq_keras")
class TransformerDecoder(_Stack):
    """Positional embedding, ``num_layers`` :class:`TransformerDecoderLayer`, a final LayerNorm, the
    output projection to the vocabulary.

    Call, the :class:`~seq2seq_keras.model.Decoder` contract (teacher forcing):
    ``logits, weights = decoder(target_in, encoder_outputs, encoder_states, source_mask)``
    with ``target_in`` int [batch, tgt_len], ``encoder_outputs`` [batch, src_len,
    model_dim], ``encoder_states`` ignored (``[]``), ``source_mask`` bool [batch,
    src_len] -> ``logits`` float32 [batch, tgt_len, vocabulary_size] and ``weights``
    [batch, tgt_len, src_len]: the last layer's cross-attention, mean over heads.

    One token at a time: :meth:`start` then :meth:`step` (what
    :func:`seq2seq_keras.decoding.pipeline.translate_graph` drives).
    """

    def __init__(self, vocabulary_size: int, **kwargs):
        super().__init__(vocabulary_size, **kwargs)
        self.blocks = self._blocks(TransformerDecoderLayer, "layer")
        self.output_layer = keras.layers.Dense(self.vocabulary_size, name="output", dtype=self.dtype_policy)

    def build(self, target_ids_shape, encoder_outputs_shape=None):
        self.embedding.build(target_ids_shape)
        for block in self.blocks:
            block.build((None, None, self.model_dim))
        self.final_norm.build((None, None, self.model_dim))
        self.output_layer.build((None, self.model_dim))
        self.built = True

    def logits(self, x):
        """``x`` [..., model_dim] -> float32 logits [..., vocabulary_size] (after the final LayerNorm)."""
        return ops.cast(self.output_layer(self.final_norm(x)), "float32")

    def _run(self, target_ids, encoder_outputs, source_mask, training):
        """Teacher forcing -> (x [batch, tgt_len, model_dim], every layer's cross weights [batch, heads, tgt, src])."""
        steps = tf.shape(target_ids)[1]
        causal = tf.range(steps)[:, None] >= tf.range(steps)[None, :]  # [tgt_len, tgt_len]: query t sees keys <= t
        self_mask = tf.logical_and(causal[None], ops.not_equal(target_ids, 0)[:, None, :])
        cross_mask = ops.expand_dims(ops.cast(source_mask, "bool"), 1)
        x, weights = self.embed(target_ids, training), []
        for block in self.blocks:
            x, w = block(x, encoder_outputs, self_mask, cross_mask, training=training)
            weights.append(w)
        return x, weights

    def call(self, target_ids, encoder_outputs, encoder_states=None, source_mask=None, training=None):
        if source_mask is None:
            source_mask = tf.ones(tf.shape(encoder_outputs)[:2], tf.bool)
        x, weights = self._run(target_ids, encoder_outputs, source_mask, training)
        return self.logits(x), ops.mean(weights[-1], axis=1)

    def cross_attention_weights(self, target_ids, encoder_outputs, source_mask):
        """Every layer's and head's cross-attention (inference): [batch, layers, heads, tgt_len, src_len]."""
        return ops.stack(self._run(target_ids, encoder_outputs, source_mask, False)[1], axis=1)

    # ------------------------------------------------------------------ step API
    def start(self, encoder_outputs, encoder_states, source_mask, max_length=None):
        """What the steps need: ``(state, memory)``.

        ``state``: per layer, the self-attention key and value caches ``[n, cache_len,
        heads, head_dim]`` (zeros), then the next position, int32 [n] (zeros). A flat
        list of batch-major tensors, so beam search repeats and reorders it row by row.
        ``cache_len`` is ``max_length``, by default ``2 * src_len + 10``: decoding
        never runs more steps (its cap is ``min(max_length, 2 * S + 10)``, see
        :func:`seq2seq_keras.decoding.pipeline.output_limit`); a step past it raises.

        ``memory``: a dict of batch-major tensors: ``mask`` bool [n, src_len] and,
        per layer ``i``, ``key_i``/``value_i`` [n, src_len, heads, head_dim], the source
        projected once for the cross-attention.
        """
        batch, src_len = tf.shape(encoder_outputs)[0], tf.shape(encoder_outputs)[1]
        cache_len = 2 * src_len + 10 if max_length is None else max_length
        empty = tf.zeros(
            tf.stack([batch, cache_len, self.num_heads, self.model_dim // self.num_heads]), self.compute_dtype
        )
        state = [empty for _ in range(2 * self.num_layers)] + [tf.zeros([batch], tf.int32)]
        memory = {"mask": ops.cast(source_mask, "bool")}
        for i, block in enumerate(self.blocks):
            memory[f"key_{i}"], memory[f"value_{i}"] = block.cross_attention.project(encoder_outputs)
        return state, memory

    def step(self, token_ids, state, memory, training=None):
        """``token_ids`` int [n] -> logits float32 [n, vocab], the new state, weights [n, src_len]
        (the last layer's cross-attention, mean over heads)."""
        position = state[-1]
        assert_room = tf.debugging.assert_less(
            position,
            tf.shape(state[0])[1],
            message="TransformerDecoder.step: more steps than the cache holds; pass start(max_length=...)",
        )
        with tf.control_dependencies([assert_room]):
            x = self.embed(ops.expand_dims(token_ids, 1), training, positions=position[:, None])
        cross_mask = ops.expand_dims(memory["mask"], 1)
        new_state = []
        for i, block in enumerate(self.blocks):
            x, key_cache, value_cache, weights = block.step(
                x,
                state[2 * i],
                state[2 * i + 1],
                position,
                memory[f"key_{i}"],
                memory[f"value_{i}"],
                cross_mask,
                training,
            )
            new_state += [key_cache, value_cache]
        logits = self.logits(x[:, 0])
        return logits, new_state + [position + 1], ops.mean(weights[:, :, 0], axis=1)
