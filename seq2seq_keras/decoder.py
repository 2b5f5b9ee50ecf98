"""The decoder: one target token at a time, attending to the encoder states.

At step ``i``, with previous state ``s_{i-1}`` and previous target word ``y_{i-1}``
(Bahdanau et al. 2014, appendix A):

.. code-block:: text

    c_i, a_i = attention(query=s_{i-1}, values=h_1..h_S)      # fresh context
    s_i      = RNN([embed(y_{i-1}) ; c_i], s_{i-1})            # input feeding
    logits_i = W_o [s_i ; c_i]                                  # over the vocabulary

The context is *fed into* the recurrent input, so every step knows what the
previous steps attended to. ``s_0`` is bridged from the encoder's final state:
``s_0 = tanh(W_s h_final)``.

With ``attention=None`` the same decoder becomes the plain encoder-decoder of
Cho et al. 2014: ``c_i`` is the *fixed* final encoder state at every step (the
bottleneck) and ``a_i`` is all zeros.

The output projection ``W_o`` is applied once to all steps after the loop, not
inside it: at usual sizes it is the largest matrix multiply of the model.
"""

from __future__ import annotations

import keras
import tensorflow as tf
from keras import ops

from .attention import ATTENTION_TYPES, make_attention
from .encoder import RNN_TYPES


@keras.saving.register_keras_serializable(package="seq2seq_keras")
class Decoder(keras.layers.Layer):
    """Attention decoder with input feeding.

    Call (teacher forcing): ``logits, weights = decoder(target_in, encoder_outputs,
    encoder_states, source_mask)``

    * ``target_in`` int [batch, tgt_len]: ``[START] y_1 .. y_{T-1}``;
    * ``encoder_outputs`` [batch, src_len, value_dim]; ``encoder_states`` list of
      [batch, state_dim]; ``source_mask`` bool [batch, src_len];
    * ``logits`` float32 [batch, tgt_len, vocabulary_size];
    * ``weights`` [batch, tgt_len, src_len] (zeros without attention).

    One step at a time (decoding): :meth:`start` then :meth:`step`.
    """

    def __init__(
        self,
        vocabulary_size: int,
        embedding_dim: int = 128,
        units: int = 512,
        *,
        attention: str | None = "bahdanau",
        attention_units: int | None = None,
        rnn: str = "gru",
        dropout: float = 0.0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if rnn not in RNN_TYPES:
            raise ValueError(f"rnn={rnn!r}: choose one of {RNN_TYPES}.")
        if attention is not None and attention not in ATTENTION_TYPES:
            raise ValueError(f"attention={attention!r}: choose one of {ATTENTION_TYPES}.")
        self.vocabulary_size = int(vocabulary_size)
        self.embedding_dim = int(embedding_dim)
        self.units = int(units)
        self.attention_type = None if attention in (None, "none") else attention
        self.attention_units = int(attention_units or units)
        self.rnn = rnn
        self.dropout = float(dropout)
        self.num_states = 2 if rnn == "lstm" else 1

        self.embedding = keras.layers.Embedding(self.vocabulary_size, self.embedding_dim, name="embedding")
        self.bridges = [
            keras.layers.Dense(self.units, activation="tanh", name=f"bridge_{i}") for i in range(self.num_states)
        ]
        self.attention = make_attention(self.attention_type, self.attention_units)
        cell_cls = {"gru": keras.layers.GRUCell, "lstm": keras.layers.LSTMCell}[rnn]
        self.cell = cell_cls(self.units, name=f"{rnn}_cell")
        self.dropout_layer = keras.layers.Dropout(self.dropout)
        # float32 logits even under a mixed-precision policy (stable softmax/loss).
        self.output_layer = keras.layers.Dense(self.vocabulary_size, dtype="float32", name="output")

    @property
    def feature_dim(self) -> int:
        return self.units + self._value_dim

    def build(self, target_ids_shape, encoder_outputs_shape):
        value_dim = int(encoder_outputs_shape[-1])
        self._value_dim = value_dim
        self.embedding.build(target_ids_shape)
        for bridge in self.bridges:
            bridge.build((None, value_dim))
        if self.attention is not None:
            self.attention.build((None, self.units), (None, None, value_dim))
        self.cell.build((None, self.embedding_dim + value_dim))
        self.output_layer.build((None, self.units + value_dim))
        self.built = True

    # ------------------------------------------------------------------ step API
    def start(self, encoder_outputs, encoder_states, source_mask):
        """Everything a step needs that depends only on the source.

        Returns ``(state, memory)``: the initial recurrent state (list of
        [batch, units]) and a dict with ``values``, ``keys`` (precomputed once),
        ``mask`` and, without attention, the fixed ``context``.
        """
        state = [bridge(s) for bridge, s in zip(self.bridges, encoder_states)]
        memory = {"values": encoder_outputs, "mask": ops.cast(source_mask, "bool")}
        if self.attention is not None:
            memory["keys"] = self.attention.keys(encoder_outputs)
        else:
            memory["context"] = encoder_states[0]
        return state, memory

    def attend(self, query, memory):
        """``query`` [batch, units] -> context [batch, value_dim], weights [batch, src_len]."""
        if self.attention is None:
            values = memory["values"]
            weights = ops.zeros(ops.shape(values)[:2], dtype=values.dtype)
            return ops.cast(memory["context"], values.dtype), weights
        return self.attention(query, memory["values"], mask=memory["mask"], keys=memory["keys"])

    def step_embedded(self, embedded, state, memory, training=None):
        """One step from an embedded input [batch, embedding_dim].

        Returns ``features`` [batch, units + value_dim] (before the output
        projection), the new state and the attention weights [batch, src_len].
        """
        context, weights = self.attend(state[0], memory)
        cell_input = ops.concatenate([embedded, ops.cast(context, embedded.dtype)], axis=-1)
        output, new_state = self.cell(cell_input, state, training=training)
        if not isinstance(new_state, (list, tuple)):
            new_state = [new_state]
        features = ops.concatenate([output, ops.cast(context, output.dtype)], axis=-1)
        return features, list(new_state), weights

    def step(self, token_ids, state, memory, training=None):
        """``token_ids`` int [batch] -> logits [batch, vocab], new state, weights [batch, src_len]."""
        features, state, weights = self.step_embedded(self.embedding(token_ids), state, memory, training)
        return self.output_layer(features), state, weights

    # ------------------------------------------------------------------ teacher forcing
    def call(self, target_ids, encoder_outputs, encoder_states, source_mask, training=None):
        state, memory = self.start(encoder_outputs, encoder_states, source_mask)
        embedded = self.embedding(target_ids)  # [batch, tgt_len, emb], all steps at once
        embedded = self.dropout_layer(embedded, training=training)
        steps = tf.shape(target_ids)[1]
        embedded_tm = tf.transpose(embedded, (1, 0, 2))  # [tgt_len, batch, emb]
        features_ta = tf.TensorArray(self.compute_dtype, size=steps, element_shape=[None, self.feature_dim])
        weights_ta = tf.TensorArray(self.compute_dtype, size=steps)

        def body(i, state, features_ta, weights_ta):
            features, state, weights = self.step_embedded(embedded_tm[i], state, memory, training)
            return i + 1, state, features_ta.write(i, features), weights_ta.write(i, weights)

        _, _, features_ta, weights_ta = tf.while_loop(
            lambda i, *_: i < steps,
            body,
            (tf.constant(0), state, features_ta, weights_ta),
        )
        features = tf.transpose(features_ta.stack(), (1, 0, 2))  # [batch, tgt_len, feature_dim]
        weights = tf.transpose(weights_ta.stack(), (1, 0, 2))  # [batch, tgt_len, src_len]
        # One big matmul for all steps, outside the recurrent loop.
        logits = self.output_layer(self.dropout_layer(features, training=training))
        return logits, weights

    def get_config(self):
        config = super().get_config()
        config.update(
            vocabulary_size=self.vocabulary_size,
            embedding_dim=self.embedding_dim,
            units=self.units,
            attention=self.attention_type,
            attention_units=self.attention_units,
            rnn=self.rnn,
            dropout=self.dropout,
        )
        return config
