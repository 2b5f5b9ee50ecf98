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

Two ways to run the same model (same weights, same numbers), the ``implementation``
argument:

* ``"fused"`` (``"auto"``'s choice for a GRU decoder on any device): one step is
  :func:`seq2seq_keras.fused.input_feeding_step`, a single function of raw ops that
  scores with the attention layer's own :meth:`score`. The parts of the GRU input
  that do not depend on the recurrence are computed outside the loop:
  ``embed(y) W_e + b`` for all target steps in one multiply, and the context part
  through ``c_i W_c = a_i (H W_c)`` with ``H W_c`` [batch, src_len, 3 * units]
  computed once per source sentence, so the loop only multiplies the state
  ``s_{i-1}`` (by ``W1`` and the recurrent kernel).
* ``"layers"``: Keras layer calls per step (``attention``, ``GRUCell``/``LSTMCell``),
  used for LSTM decoders.

Fast mode, ``input_feeding=False`` (Luong et al. 2015 without input feeding):

.. code-block:: text

    s_1..s_T   = RNN(embed(y_0..y_{T-1}))                      # whole target at once
    c_i, a_i   = attention(query=s_i, values=h_1..h_S)         # all steps: one batched call
    h~_i       = tanh(W_c [s_i ; c_i])                         # Luong's attentional state
    logits_i   = W_o h~_i

The recurrence no longer waits for the attention, so teacher forcing runs the
RNN over the whole target in one call (Keras' ``GRU``/``LSTM``: cuDNN on a GPU; on
a CPU the GRU runs :func:`~seq2seq_keras.fused.gru_sequence` with the input
projection outside the loop) and attention for all steps is one batched matmul.
Decoding still goes one token at a time through the same :meth:`Decoder.step`.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import keras
import tensorflow as tf
from keras import ops

from . import fused
from .attention import attention_name, make_attention
from .encoder import RNN_TYPES
from .fused import IMPLEMENTATIONS  # noqa: F401


class DecoderMemory(NamedTuple):
    """What every decoder step reads that depends only on the source (:meth:`Decoder.start`).

    Batch-major tensors; a field that does not apply is ``None``.
    """

    values: Any  #: encoder outputs ``h_1..h_S`` [batch, src_len, value_dim]
    mask: Any  #: bool [batch, src_len], True on real source tokens
    keys: Any = None  #: the attention keys (``W2 h + b``, ``W_a h`` or ``h``), computed once; with attention
    context: Any = None  #: the fixed context (final encoder state) [batch, value_dim]; without attention
    context_inputs: Any = None  #: the context's share of the fused GRU input (``H W_c`` or ``c W_c``)

    @classmethod
    def of(cls, memory) -> "DecoderMemory":
        """``memory`` itself, or one made from a mapping of its fields (e.g. re-tiled for beam search)."""
        return memory if isinstance(memory, cls) else cls(**dict(memory))

    def items(self):
        """``(name, tensor)`` of the fields that are set (as the dict the memory once was)."""
        return [(name, value) for name, value in zip(self._fields, self) if value is not None]

    def map(self, fn) -> "DecoderMemory":
        """``fn`` applied to every tensor that is set (e.g. to repeat each sentence for beam search).

        The :attr:`step_weights` (not batch-major) are kept as they are.
        """
        mapped = DecoderMemory(*(None if value is None else fn(value) for value in self))
        return mapped.with_step_weights(self.step_weights)

    @property
    def step_weights(self):
        """:class:`~seq2seq_keras.fused.StepWeights` read once per call for the fused decoding step, or None.

        Not a field (fields are batch-major, one row per sentence): :meth:`items` and a memory
        rebuilt from them leave it out, and steps then read the variables themselves (same numbers).
        """
        return getattr(self, "_step_weights", None)

    def with_step_weights(self, weights) -> "DecoderMemory":
        """This memory carrying ``weights`` (:attr:`step_weights`); ``None``: this memory."""
        if weights is None:
            return self
        memory = _WeightedMemory(*self)
        memory._step_weights = weights
        return memory


class _WeightedMemory(DecoderMemory):
    """A :class:`DecoderMemory` with :attr:`~DecoderMemory.step_weights` (an attribute, not a field)."""


@keras.saving.register_keras_serializable(package="seq2seq_keras")
class Decoder(keras.layers.Layer):
    """Attention decoder, with input feeding (default) or without (``input_feeding=False``, fast).

    Call (teacher forcing): ``logits, weights = decoder(target_in, encoder_outputs,
    encoder_states, source_mask)``

    * ``target_in`` int [batch, tgt_len]: ``[START] y_1 .. y_{T-1}``;
    * ``encoder_outputs`` [batch, src_len, value_dim]; ``encoder_states`` list of
      [batch, state_dim]; ``source_mask`` bool [batch, src_len];
    * ``logits`` float32 [batch, tgt_len, vocabulary_size];
    * ``weights`` [batch, tgt_len, src_len] (zeros without attention).

    One step at a time (decoding): :meth:`start` then :meth:`step`.

    ``units`` is the decoder's own state width (Keras' meaning, as in ``GRU(units)``;
    :class:`~seq2seq_keras.model.Seq2Seq` sets it to the encoder's output width);
    ``attention_units`` is the width of Bahdanau's scoring MLP (default ``units``).

    ``implementation``: ``"auto"`` (default), ``"fused"`` or ``"layers"``; see the
    module docstring. Same weights and numbers either way.
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
        input_feeding: bool = True,
        implementation: str = "auto",
        **kwargs,
    ):
        super().__init__(**kwargs)
        if rnn not in RNN_TYPES:
            raise ValueError(f"rnn={rnn!r}: choose one of {RNN_TYPES}.")
        self.vocabulary_size = int(vocabulary_size)
        self.embedding_dim = int(embedding_dim)
        self.units = int(units)
        self.attention_type = attention_name(attention)
        self.attention_units = int(attention_units or units)
        self.rnn = rnn
        self.dropout = float(dropout)
        self.input_feeding = bool(input_feeding)
        self.num_states = 2 if rnn == "lstm" else 1
        self.implementation = fused.check_implementation(implementation)

        # Sublayers share this layer's dtype policy, so that a saved mixed-precision model reloads mixed.
        policy = self.dtype_policy
        self.embedding = keras.layers.Embedding(self.vocabulary_size, self.embedding_dim, name="embedding", dtype=policy)
        self.bridges = [
            keras.layers.Dense(self.units, activation="tanh", name=f"bridge_{i}", dtype=policy)
            for i in range(self.num_states)
        ]
        self.attention = make_attention(self.attention_type, self.attention_units, dtype=policy)
        if self.input_feeding:
            cell_cls = {"gru": keras.layers.GRUCell, "lstm": keras.layers.LSTMCell}[rnn]
            self.cell = cell_cls(self.units, name=f"{rnn}_cell", dtype=policy)
        else:
            # Default activations, reset_after=True, no recurrent dropout, no unroll:
            # eligible for the fused cuDNN kernel on a GPU.
            rnn_cls = {"gru": keras.layers.GRU, "lstm": keras.layers.LSTM}[rnn]
            self.sequence_rnn = rnn_cls(self.units, return_sequences=True, return_state=True, name=rnn, dtype=policy)
            # Luong et al. 2015, eq. 5: the attentional hidden state h~ = tanh(W_c [s ; c]).
            self.attentional_layer = keras.layers.Dense(
                self.units, activation="tanh", use_bias=False, name="W_c", dtype=policy
            )
        self.dropout_layer = keras.layers.Dropout(self.dropout, dtype=policy)
        # Under a mixed-precision policy the projection runs in the compute dtype
        # (bfloat16 on AMX CPUs, float16 on GPUs: the largest multiply of the model)
        # and the logits are cast to float32 for a stable softmax/loss: see logits().
        self.output_layer = keras.layers.Dense(self.vocabulary_size, name="output", dtype=policy)

    def build(self, target_ids_shape, encoder_outputs_shape):
        value_dim = int(encoder_outputs_shape[-1])
        self._value_dim = value_dim
        self.embedding.build(target_ids_shape)
        for bridge in self.bridges:
            bridge.build((None, value_dim))
        if self.attention is not None:
            self.attention.build((None, self.units), (None, None, value_dim))
        if self.input_feeding:
            self.cell.build((None, self.embedding_dim + value_dim))
        else:
            self.sequence_rnn.build((None, None, self.embedding_dim))
        if not self.input_feeding:
            self.attentional_layer.build((None, self.units + value_dim))
        self.output_layer.build((None, self.output_features_dim))
        self.built = True

    @property
    def output_features_dim(self) -> int:
        """Width of what the output projection reads: ``[s ; c]``, or Luong's ``h~`` without input feeding."""
        return self.units + self._value_dim if self.input_feeding else self.units

    @property
    def step_cell(self):
        """The recurrent cell one :meth:`step` runs (``GRUCell``/``LSTMCell``)."""
        return self.cell if self.input_feeding else self.sequence_rnn.cell

    def uses_fused_step(self) -> bool:
        """Whether steps run the fused GRU step function instead of Keras layer calls."""
        return self.rnn == "gru" and self.implementation != "layers"

    def uses_fused_sequence(self) -> bool:
        """Whether the fast mode runs its GRU with the fused scan (``"auto"``: on a CPU only)."""
        if self.rnn != "gru" or self.implementation == "layers":
            return False
        return self.implementation == "fused" or not fused.gpu_available()

    # ------------------------------------------------------------------ step API
    def start(self, encoder_outputs, encoder_states, source_mask):
        """Everything a step needs that depends only on the source.

        Returns ``(state, memory)``: the initial recurrent state (list of
        [batch, units]) and a :class:`DecoderMemory`: ``values``, ``mask``,
        ``keys`` (precomputed once) with attention, the fixed ``context``
        without. With the fused GRU step and input feeding, also
        ``context_inputs``: ``H W_c`` [batch, src_len, 3 * units] (with attention)
        or ``c W_c`` [batch, 3 * units] (without), the context's share of the GRU
        input, so that a step never multiplies the context by ``W_c``.
        """
        state = [bridge(s) for bridge, s in zip(self.bridges, encoder_states)]
        keys = context = context_inputs = None
        if self.attention is not None:
            keys = self.attention.keys(encoder_outputs)
        else:
            context = encoder_states[0]
        if self.input_feeding and self.uses_fused_step():
            source = encoder_outputs if self.attention is not None else encoder_states[0]
            context_inputs = fused.context_inputs(self.cell, self.embedding_dim, source, self.compute_dtype)
        memory = DecoderMemory(encoder_outputs, ops.cast(source_mask, "bool"), keys, context, context_inputs)
        if self.input_feeding and self.uses_fused_step():
            memory = memory.with_step_weights(fused.step_weights(self, self.compute_dtype))
        return state, memory

    def attend(self, query, memory):
        """``query`` [batch, units] -> context [batch, value_dim], weights [batch, src_len]."""
        if self.attention is None:
            values = memory.values
            weights = ops.zeros(ops.shape(values)[:2], dtype="float32")
            return ops.cast(memory.context, values.dtype), weights
        return self.attention(query, memory.values, mask=memory.mask, keys=memory.keys)

    def logits(self, features):
        """``features`` [..., output_features_dim] -> float32 logits [..., vocabulary_size]."""
        return ops.cast(self.output_layer(features), "float32")

    def step_embedded(self, embedded, state, memory, training=None):
        """One step from an embedded input [batch, embedding_dim].

        Returns ``features`` [batch, output_features_dim] (what the output
        projection reads), the new state and the attention weights [batch, src_len].
        With input feeding the query is the previous state ``s_{i-1}``, the
        context enters the RNN and ``features = [s_i ; c_i]``; without, the RNN
        runs first, its output ``s_i`` is the query and ``features = tanh(W_c [s_i ; c_i])``.
        """
        memory = DecoderMemory.of(memory)
        if not self.input_feeding:
            output, new_state = self.step_cell(embedded, state, training=training)
            if not isinstance(new_state, (list, tuple)):
                new_state = [new_state]
            context, weights = self.attend(output, memory)
            features = self.attentional_layer(ops.concatenate([output, ops.cast(context, output.dtype)], axis=-1))
            return features, list(new_state), weights
        if self.uses_fused_step():
            inputs_part = fused.embedded_inputs(self.cell, self.embedding_dim, embedded)
            return fused.input_feeding_step(self, inputs_part, state, memory)
        context, weights = self.attend(state[0], memory)
        cell_input = ops.concatenate([embedded, ops.cast(context, embedded.dtype)], axis=-1)
        output, new_state = self.cell(cell_input, state, training=training)
        if not isinstance(new_state, (list, tuple)):
            new_state = [new_state]
        features = ops.concatenate([output, ops.cast(context, output.dtype)], axis=-1)
        return features, list(new_state), weights

    def step(self, token_ids, state, memory, training=None):
        """``token_ids`` int [batch] -> logits [batch, vocab], new state, weights [batch, src_len].

        With the fused input-feeding GRU and a memory from :meth:`start` (which carries
        :attr:`DecoderMemory.step_weights`), the lean decoding step: the weights were read
        once before the loop, the embedding's share of the GRU input is a gather and one
        multiply, and Bahdanau's query projection shares the state's matmul with the
        recurrent part (:func:`seq2seq_keras.fused.input_feeding_step`). Same numbers.
        """
        memory = DecoderMemory.of(memory)
        weights = memory.step_weights
        if weights is not None and not training and self.input_feeding and self.uses_fused_step():
            inputs_part = fused.token_inputs(weights, token_ids)
            features, state, attention = fused.input_feeding_step(self, inputs_part, state, memory, weights)
            return fused.output_logits(weights, features), state, attention
        features, state, weights = self.step_embedded(self.embedding(token_ids), state, memory, training)
        return self.logits(features), state, weights

    # ------------------------------------------------------------------ teacher forcing
    def call(self, target_ids, encoder_outputs, encoder_states, source_mask, training=None):
        state, memory = self.start(encoder_outputs, encoder_states, source_mask)
        embedded = self.embedding(target_ids)  # [batch, tgt_len, emb], all steps at once
        embedded = self.dropout_layer(embedded, training=training)
        if self.input_feeding:
            features, weights = self._input_feeding_loop(embedded, state, memory, training)
        else:
            features, weights = self._whole_sequence(embedded, state, memory, training)
        # One big matmul for all steps, outside the recurrent loop.
        logits = self.logits(self.dropout_layer(features, training=training))
        return logits, weights

    def _whole_sequence(self, embedded, state, memory, training):
        """No input feeding: RNN over the whole target, then attention for all steps at once."""
        if self.uses_fused_sequence():
            outputs = fused.gru_sequence(self.sequence_rnn.cell, embedded, state[0])  # [batch, tgt_len, units]
        else:  # Keras' layer: cuDNN on a GPU
            outputs, *_ = self.sequence_rnn(embedded, initial_state=state, training=training)
        if self.attention is None:  # the fixed context at every step
            batch, steps = tf.shape(outputs)[0], tf.shape(outputs)[1]
            context = tf.tile(ops.expand_dims(memory.context, 1), tf.stack([1, steps, 1]))
            weights = tf.zeros(tf.stack([batch, steps, tf.shape(memory.values)[1]]), tf.float32)
        else:
            context, weights = self.attention(outputs, memory.values, mask=memory.mask, keys=memory.keys)
        features = self.attentional_layer(ops.concatenate([outputs, ops.cast(context, outputs.dtype)], axis=-1))
        return features, weights

    def _input_feeding_loop(self, embedded, state, memory, training):
        """Input feeding: a ``tf.while_loop`` over target steps -> features, weights (batch-major)."""
        steps = tf.shape(embedded)[1]
        fused_step = self.uses_fused_step()
        if fused_step:  # embed(y) W_e + b_in for every step in one multiply, outside the loop.
            step_inputs = fused.embedded_inputs(self.cell, self.embedding_dim, embedded)
        else:
            step_inputs = embedded
        # Time-major, read per step from a TensorArray (a slice's gradient would be a
        # whole-sequence tensor per step).
        step_inputs = tf.TensorArray(step_inputs.dtype, size=steps).unstack(tf.transpose(step_inputs, (1, 0, 2)))
        features_ta = tf.TensorArray(self.compute_dtype, size=steps, element_shape=[None, self.output_features_dim])
        weights_ta = tf.TensorArray(tf.float32, size=steps)  # attention weights are float32 under every policy

        def body(i, state, features_ta, weights_ta):
            if fused_step:
                features, state, weights = fused.input_feeding_step(self, step_inputs.read(i), state, memory)
            else:
                features, state, weights = self.step_embedded(step_inputs.read(i), state, memory, training)
            return i + 1, state, features_ta.write(i, features), weights_ta.write(i, weights)

        _, _, features_ta, weights_ta = tf.while_loop(
            lambda i, *_: i < steps,
            body,
            (tf.constant(0), state, features_ta, weights_ta),
            maximum_iterations=steps,  # lets XLA (jit_compile=True) size the gradient's stacks
        )
        features = tf.transpose(features_ta.stack(), (1, 0, 2))  # [batch, tgt_len, output_features_dim]
        weights = tf.transpose(weights_ta.stack(), (1, 0, 2))  # [batch, tgt_len, src_len]
        return features, weights

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
            input_feeding=self.input_feeding,
            implementation=self.implementation,
        )
        return config
