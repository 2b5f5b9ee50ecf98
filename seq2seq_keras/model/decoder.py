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
bottleneck) and ``a_i`` is all zeros (:meth:`Decoder.attend`).

In reading order: :meth:`Decoder.start` computes what depends only on the source
(:class:`DecoderMemory`); :meth:`Decoder.step` runs one step from a token, and
:meth:`Decoder.call` (teacher forcing) runs the same step function,
:meth:`Decoder.input_feeding_step`, as the body of a ``tf.while_loop`` over the
target. The output projection ``W_o`` is applied once to all steps after the loop,
not inside it: at usual sizes it is the largest matrix multiply of the model.

The step is written once; with a GRU (``implementation`` ``"auto"`` or ``"fused"``)
it runs the same equations with fewer, larger operations (same weights, same
numbers; ``"layers"``, and every LSTM, call Keras' ``GRUCell``/``LSTMCell`` and the
attention layer instead):

* ``[E y ; c] W + b_in = E y W_e + c W_c + b_in``, and ``c_i W_c = a_i (H W_c)`` with
  ``H W_c`` [batch, src_len, 3 * units] computed once per source sentence in
  :meth:`Decoder.start`; ``E y W_e + b_in`` for all target steps is one multiply
  before the loop. The loop only multiplies the state ``s_{i-1}``;
* Bahdanau's query projection ``W1 s_{i-1}`` and the GRU's recurrent part
  ``s_{i-1} U`` are one multiply by ``[W1 | U]``;
* the weights are read and cast once per call, before the loop (:class:`StepWeights`);
* the GRU update is :func:`seq2seq_keras.model.fast_gru.gru_update`; the score, the softmax
  and the context are the attention layer's (:mod:`seq2seq_keras.model.attention`).

Fast mode, ``input_feeding=False`` (Luong et al. 2015 without input feeding):

.. code-block:: text

    s_1..s_T   = RNN(embed(y_0..y_{T-1}))                      # whole target at once
    c_i, a_i   = attention(query=s_i, values=h_1..h_S)         # all steps: one batched call
    h~_i       = tanh(W_c [s_i ; c_i])                         # Luong's attentional state
    logits_i   = W_o h~_i

The recurrence no longer waits for the attention, so teacher forcing runs the
RNN over the whole target in one call (Keras' ``GRU``/``LSTM``: cuDNN on a GPU; on
a CPU the GRU runs :func:`~seq2seq_keras.model.fast_gru.gru_sequence` with the input
projection outside the loop) and attention for all steps is one batched matmul.
Decoding still goes one token at a time through the same :meth:`Decoder.step`.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import keras
import tensorflow as tf
from keras import ops

from . import attention as attention_module
from . import fast_gru
from .attention import make_attention, weighted_sum
from .choices import RNN_TYPES, attention_name


class StepWeights(NamedTuple):
    """The weights an input-feeding GRU step multiplies by, read and cast once per call.

    Inside a ``tf.while_loop`` every variable read, slice and cast a step makes is an op
    *per step*: about 25 of the ~60 ops of a decoder step. :meth:`Decoder.start` reads them
    once and the loop captures the tensors, as stored: nothing is concatenated or copied per
    call (a copy of a 1 MiB kernel on every request cost more than the steps it saved an op).
    All in the decoder's compute dtype.
    """

    embeddings: Any  #: E [vocabulary, embedding_dim]
    input_kernel: Any  #: W_e [embedding_dim, 3 * units], the embedding's share of the GRU input kernel
    input_bias: Any  #: b_in [3 * units]
    recurrent_kernel: Any  #: U [units, 3 * units]
    recurrent_bias: Any  #: b_rec [3 * units]
    query_kernel: Any  #: Bahdanau's W1 [units, attention_units] (None otherwise)
    v: Any  #: Bahdanau's v [attention_units] (None otherwise)
    output_kernel: Any  #: W_o [output_features_dim, vocabulary]
    output_bias: Any  #: b_o [vocabulary]

    def inputs(self, embedded):
        """``E y`` [..., embedding_dim] -> ``E y W_e + b_in`` [..., 3 * units], its share of the GRU input."""
        return ops.matmul(embedded, self.input_kernel) + self.input_bias

    def logits(self, features):
        """``features`` [batch, output_features_dim] -> float32 logits [batch, vocabulary] (the output layer's math)."""
        return ops.cast(tf.nn.bias_add(ops.matmul(features, self.output_kernel), self.output_bias), "float32")


class DecoderMemory(NamedTuple):
    """What every decoder step reads that depends only on the source (:meth:`Decoder.start`).

    Batch-major tensors, except ``step_weights``; a field that does not apply is ``None``.
    """

    values: Any  #: encoder outputs ``h_1..h_S`` [batch, src_len, value_dim]
    mask: Any  #: bool [batch, src_len], True on real source tokens
    keys: Any = None  #: the attention keys (``W2 h + b``, ``W_a h`` or ``h``), computed once; with attention
    context: Any = None  #: the fixed context (final encoder state) [batch, value_dim]; without attention
    context_inputs: Any = None  #: the context's share of the GRU input, ``H W_c`` or ``c W_c`` (fast GRU step)
    step_weights: StepWeights | None = None  #: the fast GRU step's weights, read once per call (not batch-major)

    def map(self, fn) -> DecoderMemory:
        """``fn`` applied to every batch-major tensor that is set (e.g. to repeat each sentence
        for beam search); the :attr:`step_weights` are kept as they are."""
        return self._replace(
            **{
                name: fn(value)
                for name, value in zip(self._fields, self)
                if value is not None and name != "step_weights"
            }
        )


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
    module docstring and :meth:`uses_fused_step`. Same weights and numbers either way.
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
        self.implementation = fast_gru.check_implementation(implementation)

        # Sublayers share this layer's dtype policy, so that a saved mixed-precision model reloads mixed.
        policy = self.dtype_policy
        self.embedding = keras.layers.Embedding(
            self.vocabulary_size, self.embedding_dim, name="embedding", dtype=policy
        )
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
        """Whether an input-feeding step runs the fast GRU step (``"auto"``: on every device)
        instead of Keras' cell and attention layer calls."""
        return fast_gru.uses_fast_gru(self.rnn, self.implementation, auto=True)

    # ------------------------------------------------------------------ step API
    def start(self, encoder_outputs, encoder_states, source_mask):
        """Everything a step needs that depends only on the source.

        Returns ``(state, memory)``: the initial recurrent state (list of
        [batch, units]) and a :class:`DecoderMemory`: ``values``, ``mask``,
        ``keys`` (precomputed once) with attention, the fixed ``context``
        without. With input feeding and the fast GRU step (:meth:`uses_fused_step`),
        also ``context_inputs``: ``H W_c`` [batch, src_len, 3 * units] (with attention)
        or ``c W_c`` [batch, 3 * units] (without), the context's share of the GRU
        input, so that a step never multiplies the context by ``W_c``; and the
        step's weights, read once (:class:`StepWeights`).
        """
        state = [bridge(s) for bridge, s in zip(self.bridges, encoder_states)]
        keys = context = context_inputs = step_weights = None
        if self.attention is not None:
            keys = self.attention.keys(encoder_outputs)
        else:
            context = encoder_states[0]
        if self.input_feeding and self.uses_fused_step():
            dtype = self.compute_dtype
            gru = fast_gru.gru_weights(self.cell.kernel, self.cell.recurrent_kernel, self.cell.bias, dtype)
            source = encoder_outputs if self.attention is not None else encoder_states[0]
            context_inputs = ops.matmul(ops.cast(source, dtype), gru.kernel[self.embedding_dim :])  # H W_c or c W_c
            step_weights = self._step_weights(gru, dtype)
        memory = DecoderMemory(
            encoder_outputs, ops.cast(source_mask, "bool"), keys, context, context_inputs, step_weights
        )
        return state, memory

    def _step_weights(self, gru: fast_gru.GRUWeights, dtype) -> StepWeights:
        """:class:`StepWeights` in ``dtype`` from the GRU cell's weights ``gru``."""
        query_kernel = v = None
        if self.attention_type == "bahdanau":
            query_kernel, v = self.attention.query_kernel(dtype), self.attention.score_vector(dtype)
        output = self.output_layer
        return StepWeights(
            ops.cast(self.embedding.embeddings, dtype),
            gru.kernel[: self.embedding_dim],
            gru.input_bias,
            gru.recurrent_kernel,
            gru.recurrent_bias,
            query_kernel,
            v,
            ops.cast(output.kernel, dtype),
            ops.cast(output.bias, dtype),
        )

    def attend(self, query, memory):
        """``query`` [batch, (tgt_len,) units] -> context [batch, (tgt_len,) value_dim] in the
        compute dtype, weights float32 [batch, (tgt_len,) src_len].

        Without attention (Cho et al. 2014): the fixed context at every step, all-zero weights.
        """
        if self.attention is not None:
            return self.attention(query, memory.values, mask=memory.mask, keys=memory.keys)
        context = ops.cast(memory.context, self.compute_dtype)  # [batch, value_dim]
        src_len = ops.shape(memory.values)[1]
        if len(query.shape) == 3:
            steps = ops.shape(query)[1]
            context = ops.broadcast_to(ops.expand_dims(context, 1), (ops.shape(query)[0], steps, context.shape[-1]))
            return context, ops.zeros((ops.shape(query)[0], steps, src_len), dtype="float32")
        return context, ops.zeros((ops.shape(query)[0], src_len), dtype="float32")

    def logits(self, features):
        """``features`` [..., output_features_dim] -> float32 logits [..., vocabulary_size]."""
        return ops.cast(self.output_layer(features), "float32")

    def step(self, token_ids, state, memory, training=None):
        """``token_ids`` int [batch] -> logits [batch, vocab], new state, weights [batch, src_len].

        The embedding, :meth:`step_embedded`, the output projection. With the fast GRU
        step (a memory from :meth:`start` with ``step_weights``) the embedding and the
        output projection use the weights read once per call: a gather and two multiplies.
        """
        weights = memory.step_weights
        if weights is None:
            features, state, attention = self.step_embedded(self.embedding(token_ids), state, memory, training)
            return self.logits(features), state, attention
        inputs = weights.inputs(tf.gather(weights.embeddings, token_ids))  # E y W_e + b_in
        features, state, attention = self.input_feeding_step(inputs, state, memory, training)
        return weights.logits(features), state, attention

    def step_embedded(self, embedded, state, memory, training=None):
        """One step from an embedded input ``E y`` [batch, embedding_dim].

        Returns ``features`` [batch, output_features_dim] (what the output
        projection reads), the new state and the attention weights [batch, src_len].
        With input feeding, :meth:`input_feeding_step`; without, the RNN runs first,
        its output ``s_i`` is the query and ``features = tanh(W_c [s_i ; c_i])``.
        """
        if self.input_feeding:
            return self.input_feeding_step(self._gru_inputs(embedded, memory), state, memory, training)
        output, new_state = self.step_cell(embedded, state, training=training)
        context, weights = self.attend(output, memory)
        features = self.attentional_layer(ops.concatenate([output, ops.cast(context, output.dtype)], axis=-1))
        return features, _state_list(new_state), weights

    def input_feeding_step(self, inputs, state, memory, training=None):
        """One input-feeding step: attend with ``s_{i-1}``, ``s_i = RNN([E y ; c_i], s_{i-1})``,
        features ``[s_i ; c_i]`` (Bahdanau et al. 2014, appendix A).

        ``inputs`` is ``E y`` [batch, embedding_dim], or, with the fast GRU step (``memory.step_weights``
        set), its share of the GRU input ``E y W_e + b_in`` [batch, 3 * units] (:meth:`_gru_inputs`).
        Returns features [batch, units + value_dim] and the new state in the compute dtype, and the
        attention weights float32 [batch, src_len].
        """
        weights = memory.step_weights
        s = state[0]
        if weights is None:  # Keras' cell and attention layer calls (LSTM, implementation="layers")
            context, attention = self.attend(s, memory)
            cell_input = ops.concatenate([inputs, ops.cast(context, inputs.dtype)], axis=-1)  # [E y ; c]
            output, new_state = self.cell(cell_input, state, training=training)
            features = ops.concatenate([output, ops.cast(context, output.dtype)], axis=-1)  # [s ; c]
            return features, _state_list(new_state), attention
        # The same step with fewer, larger operations (module docstring). W1 s and s U are two
        # multiplies: one by [W1 | U] would need that matrix concatenated on every call (1 MiB at
        # units 256: through TF Serving's loader that copy cost more than the decode steps' extra op).
        recurrent_part = ops.matmul(s, weights.recurrent_kernel) + weights.recurrent_bias
        query = None if weights.query_kernel is None else ops.matmul(s, weights.query_kernel)  # Bahdanau's W1 s
        if self.attention is None:
            context, attention = self.attend(s, memory)
            context_part = ops.cast(memory.context_inputs, s.dtype)  # c W_c
        else:
            keys = ops.cast(memory.keys, s.dtype)
            if query is not None:  # attention.py's score, looked up at call time like the layer's own
                scores = attention_module.bahdanau_score(query, keys, weights.v)
            else:
                scores = self.attention.score(s, keys)  # [batch, src_len]
            context, attention = self.attention.attend(scores, memory.values, memory.mask)
            w = ops.expand_dims(attention, 1)  # [batch, 1, src_len]
            context_part = ops.cast(ops.squeeze(weighted_sum(w, memory.context_inputs), 1), s.dtype)  # c W_c = a H W_c
        new_s = fast_gru.gru_update(inputs + context_part, recurrent_part, s)
        return ops.concatenate([new_s, context], axis=-1), [new_s], attention  # [s ; c]

    def _gru_inputs(self, embedded, memory):
        """What :meth:`input_feeding_step` takes from ``E y`` [..., embedding_dim]: ``E y W_e + b_in``
        [..., 3 * units] for the fast GRU step (one multiply for every step at once), else ``E y``."""
        weights = memory.step_weights
        return embedded if weights is None else weights.inputs(embedded)

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
        # "auto": the fast GRU scan on a CPU, Keras' layer (cuDNN) on a GPU.
        if fast_gru.uses_fast_gru(self.rnn, self.implementation, auto=not fast_gru.gpu_available()):
            cell = self.sequence_rnn.cell
            gru = fast_gru.gru_weights(cell.kernel, cell.recurrent_kernel, cell.bias, embedded.dtype)
            outputs = fast_gru.gru_sequence(embedded, state[0], gru)  # [batch, tgt_len, units]
        else:
            outputs, *_ = self.sequence_rnn(embedded, initial_state=state, training=training)
        context, weights = self.attend(outputs, memory)
        features = self.attentional_layer(ops.concatenate([outputs, ops.cast(context, outputs.dtype)], axis=-1))
        return features, weights

    def _input_feeding_loop(self, embedded, state, memory, training):
        """Input feeding: :meth:`input_feeding_step` as the body of a ``tf.while_loop`` over
        target steps -> features, weights (batch-major)."""
        steps = tf.shape(embedded)[1]
        step_inputs = self._gru_inputs(embedded, memory)  # the fast GRU's E y W_e + b_in: all steps, one multiply
        # Time-major, read per step from a TensorArray (a slice's gradient would be a
        # whole-sequence tensor per step).
        step_inputs = tf.TensorArray(step_inputs.dtype, size=steps).unstack(tf.transpose(step_inputs, (1, 0, 2)))
        features_ta = tf.TensorArray(self.compute_dtype, size=steps, element_shape=[None, self.output_features_dim])
        weights_ta = tf.TensorArray(tf.float32, size=steps)  # attention weights are float32 under every policy

        def body(i, state, features_ta, weights_ta):
            features, state, weights = self.input_feeding_step(step_inputs.read(i), state, memory, training)
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


def _state_list(state):
    """A Keras cell's new state as a list (a GRUCell may return one tensor)."""
    return list(state) if isinstance(state, (list, tuple)) else [state]
