"""Attention: score every encoder state, softmax the scores, average the values.

For a decoder query ``q`` (one per target step) and encoder states ``h_1..h_S``:

.. math::

    e_{j} = \\mathrm{score}(q, h_j), \\quad
    \\alpha_{j} = \\frac{\\exp e_j}{\\sum_k \\exp e_k}, \\quad
    c = \\sum_j \\alpha_j h_j

In reading order: the scores, each written once as a function of raw ops
(:func:`bahdanau_score`, :func:`luong_score`); the softmax (:func:`masked_softmax`)
and the context (:func:`weighted_sum`); the layers, whose ``call`` is
``keys -> score -> attend`` (:meth:`_Attention.attend`: softmax, then context). The
decoder's fast GRU step (:meth:`seq2seq_keras.model.Decoder.input_feeding_step`)
calls the same score and :meth:`~_Attention.attend`, with Bahdanau's ``W1`` and ``v``
from :meth:`BahdanauAttention.query_kernel` / :meth:`~BahdanauAttention.score_vector`.

Scores:

* additive, Bahdanau et al. 2014: ``score(q, h) = v^T tanh(W1 q + W2 h)``
  (:class:`BahdanauAttention`);
* ``dot``, Luong et al. 2015: ``score(q, h) = q^T h``;
* ``general``: ``score(q, h) = q^T W_a h``;
* ``scaled_dot``, Vaswani et al. 2017: ``score(q, h) = q^T h / sqrt(d)``
  (:class:`LuongAttention`).

Both layers share one call contract::

    context, weights = layer(query, values, mask=None)

    query   [batch, query_dim]          or [batch, tgt_len, query_dim]
    values  [batch, src_len, value_dim]
    mask    [batch, src_len] bool (True = real token), optional
    context [batch, value_dim]          or [batch, tgt_len, value_dim]
    weights [batch, src_len]            or [batch, tgt_len, src_len]

Each row of ``weights`` sums to 1 over the real source tokens and is exactly 0 on
padding. Under every dtype policy the weights and the context are computed in
float32 (:func:`masked_softmax`, :func:`weighted_sum`): the usual mixed-precision
rule for softmax-like numerics, since bfloat16 keeps about 3 significant digits
(its weights would sum to 0.998-1.002). ``weights`` are float32; ``context``
is handed on in the layer's compute dtype. The part of the score that depends only on the source (``W2 h`` for
Bahdanau, ``W_a h`` for ``general``) is the *key*; :meth:`keys` computes it once
per source sentence, and a decoder passes it back in through ``keys=`` at every
step instead of recomputing it (``S x value_dim x units`` multiply-adds saved
per step).
"""

from __future__ import annotations

import math

import keras
from keras import ops

from .choices import attention_name

_MASK_VALUE = -1e9


def bahdanau_score(query_projection, keys, v):
    """Additive score, Bahdanau et al. 2014, appendix A.1.2:
    ``e_ij = v_a^T tanh(W_a s_{i-1} + U_a h_j)``.

    The paper's weights are :class:`BahdanauAttention`'s ``W_a`` = ``W1``
    (``query_dense``), ``U_a`` = ``W2`` (``key_dense``, which adds a bias ``b`` the
    paper leaves out) and ``v_a`` = ``v`` (``score_dense``).

    Args:
        query_projection: ``W_a s`` [batch, query_units] (one decoder step) or
            [batch, tgt_len, query_units] (all steps).
        keys: ``U_a h_j + b`` [batch, src_len, units], computed once per source.
        v: ``v_a`` [units].

    Returns scores [batch, src_len] or [batch, tgt_len, src_len].
    """
    if len(query_projection.shape) == 3:  # [batch, tgt_len, 1, units] + [batch, 1, src_len, units]
        hidden = ops.tanh(ops.expand_dims(query_projection, 2) + ops.expand_dims(keys, 1))
    else:  # [batch, 1, units] + [batch, src_len, units]
        hidden = ops.tanh(ops.expand_dims(query_projection, 1) + keys)
    return ops.sum(hidden * v, axis=-1)  # v_a^T tanh(.)


def luong_score(query, keys, scale=1.0):
    """Multiplicative score, Luong et al. 2015, eq. 8: ``score(s, h_j) = s^T k_j`` times ``scale``.

    ``k_j`` is ``h_j`` for ``dot`` and ``W_a h_j`` for ``general`` (the key,
    computed once per source); ``scale = 1 / sqrt(d)`` gives the Transformer's
    ``scaled_dot`` (Vaswani et al. 2017).

    Args:
        query: ``s`` [batch, dim] (one decoder step) or [batch, tgt_len, dim].
        keys: [batch, src_len, dim].

    Returns scores [batch, src_len] or [batch, tgt_len, src_len].
    """
    if len(query.shape) == 2:  # one decoder step: multiply and sum, as weighted_sum
        scores = ops.sum(keys * ops.expand_dims(query, 1), axis=-1)
    elif query.shape[1] == 1:
        scores = ops.expand_dims(ops.sum(keys * query, axis=-1), 1)
    else:
        scores = ops.matmul(query, ops.transpose(keys, (0, 2, 1)))
    return scores * ops.cast(scale, scores.dtype) if scale != 1.0 else scores


def masked_softmax(scores, mask):
    """Softmax over the last axis that puts exactly zero weight on masked positions, in float32.

    ``scores`` [..., src_len] of any float dtype; ``mask`` broadcastable bool [..., src_len] or None.
    Returns float32 weights [..., src_len]: the scores are cast to float32 first, whatever the dtype
    policy, so that each row sums to 1 within float32 rounding. A row with no real position gets
    all-zero weights (and so a zero context).
    """
    scores = ops.cast(scores, "float32")
    if mask is None:
        return ops.softmax(scores, axis=-1)
    mask = ops.cast(mask, "bool")
    weights = ops.softmax(ops.where(mask, scores, _MASK_VALUE), axis=-1)
    return weights * ops.cast(mask, "float32")


def weighted_sum(weights, values):
    """The context ``c_i = sum_j a_ij h_j`` in float32 (Bahdanau et al. 2014, eq. 5).

    ``weights`` [..., tgt_len, src_len] (from :func:`masked_softmax`), ``values``
    [..., src_len, value_dim] of any float dtype -> float32 [..., tgt_len, value_dim].
    Leading axes broadcast (batch, or batch and heads).

    A single query (``tgt_len`` 1: a decoder step) is a broadcast multiply and a sum over
    ``src_len`` instead of a matrix product: on a CPU, oneDNN's batched matmul costs 80-150 us
    per call on a [1, 1, src_len] x [1, src_len, d] product (through TF Serving's loader it was
    two of a decode step's three slowest ops at batch 1), the multiply and sum a few us. The
    result is the same up to float32 rounding; :func:`luong_score` scores one query the same way.
    """
    weights, values = ops.cast(weights, "float32"), ops.cast(values, "float32")
    if weights.shape[-2] == 1:  # one query (a decoder step): multiply and sum
        return ops.sum(ops.expand_dims(weights[..., 0, :], -1) * values, axis=-2, keepdims=True)
    return ops.matmul(weights, values)


class _Attention(keras.layers.Layer):
    """Shared plumbing: rank handling, masking, weighted sum."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.supports_masking = True

    def keys(self, values):
        """``values`` [batch, src_len, value_dim] -> keys [batch, src_len, key_dim]."""
        raise NotImplementedError

    def score(self, query, keys):
        """``query`` [batch, tgt_len, query_dim] (or [batch, query_dim]), ``keys``
        [batch, src_len, key_dim] -> scores [batch, tgt_len, src_len] (or [batch, src_len])."""
        raise NotImplementedError

    def call(self, query, values, mask=None, keys=None):
        if mask is None:  # a mask Keras attached to ``values``; Keras 3 has no public accessor for it
            mask = getattr(values, "_keras_mask", None)
        if keys is None:
            keys = self.keys(values)
        single_step = len(query.shape) == 2
        if single_step:
            query = ops.expand_dims(query, 1)  # [batch, 1, query_dim]
        context, weights = self.attend(self.score(query, keys), values, mask)  # scores [batch, tgt_len, src_len]
        if single_step:
            context, weights = ops.squeeze(context, 1), ops.squeeze(weights, 1)
        return context, weights

    def attend(self, scores, values, mask=None):
        """Softmax the scores, average the values: ``a = softmax(e)``, ``c = sum_j a_j h_j``.

        ``scores`` [batch, src_len] (one decoder step) or [batch, tgt_len, src_len];
        ``values`` [batch, src_len, value_dim]; ``mask`` bool [batch, src_len] or None.
        Returns ``(context, weights)``: context [batch, (tgt_len,) value_dim] in the
        layer's compute dtype, weights float32 [batch, (tgt_len,) src_len]
        (:func:`masked_softmax`, :func:`weighted_sum`).
        """
        if len(scores.shape) == 2:  # one decoder step: weights [batch, src_len]
            weights = masked_softmax(scores, mask)
            context = ops.squeeze(weighted_sum(ops.expand_dims(weights, 1), values), 1)  # [batch, value_dim]
        else:
            if mask is not None:
                mask = ops.expand_dims(ops.cast(mask, "bool"), 1)  # [batch, 1, src_len]
            weights = masked_softmax(scores, mask)  # [batch, tgt_len, src_len]
            context = weighted_sum(weights, values)  # [batch, tgt_len, value_dim]
        return ops.cast(context, self.compute_dtype), weights

    def compute_output_shape(self, query_shape, values_shape, mask_shape=None, keys_shape=None):
        if len(query_shape) == 2:
            return (query_shape[0], values_shape[-1]), (query_shape[0], values_shape[1])
        return (
            (query_shape[0], query_shape[1], values_shape[-1]),
            (query_shape[0], query_shape[1], values_shape[1]),
        )


@keras.saving.register_keras_serializable(package="seq2seq_keras")
class BahdanauAttention(_Attention):
    """Additive attention, ``score(q, h) = v^T tanh(W1 q + W2 h)`` (Bahdanau et al. 2014,
    eq. 6 and appendix A.1.2; see :func:`bahdanau_score`).

    Args:
        units: size of the hidden layer of the scoring MLP (``W1``, ``W2`` rows).

    Weights, with the paper's names: ``W1`` = ``W_a`` [query_dim, units] (no bias),
    ``W2`` = ``U_a`` [value_dim, units] with bias ``b``, ``v`` = ``v_a`` [units, 1].
    The key ``W2 h + b`` is precomputed per source.
    """

    def __init__(self, units: int, **kwargs):
        super().__init__(**kwargs)
        self.units = int(units)
        # Sublayers share this layer's dtype policy, so that a saved mixed-precision model reloads mixed.
        self.query_dense = keras.layers.Dense(self.units, use_bias=False, name="W1", dtype=self.dtype_policy)
        self.key_dense = keras.layers.Dense(self.units, use_bias=True, name="W2", dtype=self.dtype_policy)
        self.score_dense = keras.layers.Dense(1, use_bias=False, name="v", dtype=self.dtype_policy)

    def build(self, query_shape, values_shape=None, *args, **kwargs):
        if values_shape is None:
            raise ValueError("BahdanauAttention is called as layer(query, values, mask=None).")
        self.query_dense.build((None, query_shape[-1]))
        self.key_dense.build((None, values_shape[-1]))
        self.score_dense.build((None, self.units))
        self.built = True

    def keys(self, values):
        return self.key_dense(values)  # W2 h + b: [batch, src_len, units]

    def score(self, query, keys):
        projected = self.query_dense(query)  # W1 q: [batch, (tgt_len,) units]
        return bahdanau_score(projected, ops.cast(keys, projected.dtype), self.score_vector(projected.dtype))

    def query_kernel(self, dtype):
        """``W1`` (the paper's ``W_a``) [query_dim, units] in ``dtype``: ``W1 q = q @ query_kernel``."""
        return ops.cast(self.query_dense.kernel, dtype)

    def score_vector(self, dtype):
        """``v`` (the paper's ``v_a``) [units] in ``dtype``."""
        return ops.cast(self.score_dense.kernel, dtype)[:, 0]

    def get_config(self):
        return {**super().get_config(), "units": self.units}


@keras.saving.register_keras_serializable(package="seq2seq_keras")
class LuongAttention(_Attention):
    """Multiplicative attention (Luong et al. 2015) with three scores.

    * ``"dot"``: ``q^T h`` (needs ``query_dim == value_dim``);
    * ``"general"``: ``q^T W_a h`` with ``W_a`` [value_dim, query_dim] (key = ``W_a h``);
    * ``"scaled_dot"``: ``q^T h / sqrt(value_dim)``, the Transformer's score.
    """

    SCORES = ("dot", "general", "scaled_dot")

    def __init__(self, score: str = "general", **kwargs):
        super().__init__(**kwargs)
        if score not in self.SCORES:
            raise ValueError(f"score={score!r}: choose one of {self.SCORES}.")
        self.score_name = score
        self.key_dense = None

    def build(self, query_shape, values_shape=None, *args, **kwargs):
        if values_shape is None:
            raise ValueError("LuongAttention is called as layer(query, values, mask=None).")
        query_dim, value_dim = query_shape[-1], values_shape[-1]
        if self.score_name == "general":
            self.key_dense = keras.layers.Dense(query_dim, use_bias=False, name="W_a", dtype=self.dtype_policy)
            self.key_dense.build((None, value_dim))
        elif query_dim != value_dim:
            raise ValueError(
                f"{self.score_name!r} attention needs query_dim == value_dim, got "
                f"{query_dim} and {value_dim}; use score='general' or match the sizes."
            )
        self._scale = 1.0 / math.sqrt(value_dim) if self.score_name == "scaled_dot" else 1.0
        self.built = True

    def keys(self, values):
        return self.key_dense(values) if self.key_dense is not None else values

    def score(self, query, keys):
        return luong_score(query, ops.cast(keys, query.dtype), self._scale)

    def get_config(self):
        return {**super().get_config(), "score": self.score_name}


def make_attention(kind: str | None, units: int, dtype=None):
    """Build an attention layer from its CLI name (``None``/``"none"`` -> no attention).

    ``dtype``: the dtype policy (the enclosing layer's, so that mixed precision survives a reload).
    """
    kind = attention_name(kind)
    if kind is None:
        return None
    if kind == "bahdanau":
        return BahdanauAttention(units, name="attention", dtype=dtype)
    return LuongAttention(kind[len("luong-") :].replace("-", "_"), name="attention", dtype=dtype)
