"""Fused recurrences: the model's GRU equations in raw TensorFlow ops, for speed.

Nothing here changes *what* the model computes; these functions compute the same
numbers as Keras' ``GRU``/``GRUCell`` and the attention layers, from the same
weights, with fewer and larger operations (tests/test_encoder.py and
tests/test_decoder.py hold each against the Keras layers, gradients included).
A learner can read :mod:`~seq2seq_keras.encoder`, :mod:`~seq2seq_keras.decoder`
and :mod:`~seq2seq_keras.attention` for the model and come here for the speed:

* :func:`gru_cell`: the GRU update (Keras ``GRUCell``, ``reset_after=True``),
  written once and used by every function below;
* :func:`gru_scan`: ``D`` GRUs (both directions of a bidirectional layer) in one
  ``tf.while_loop``, with a hand-written gradient; :func:`gru_stack` runs the
  encoder's layers through it and :func:`gru_sequence` the decoder's fast mode;
* :func:`input_feeding_step`: one decoder step with input feeding as a single
  function of raw ops; the attention score is the attention layer's own
  (:func:`~seq2seq_keras.attention.bahdanau_score`,
  :func:`~seq2seq_keras.attention.luong_score`), and the context's share of the GRU
  input is precomputed once per source sentence (:func:`context_inputs`); decoding reads
  the step's weights once per call (:class:`StepWeights`), not once per step.

Which layers use them is each layer's ``implementation`` argument (:data:`IMPLEMENTATIONS`).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import keras
import tensorflow as tf
from keras import ops

from . import attention as _attention
from .attention import masked_softmax, weighted_sum

#: How a layer runs its recurrence (same weights, same numbers): ``"layers"``, Keras'
#: own layers (cuDNN on a GPU); ``"fused"``, the functions of this module; ``"auto"``,
#: each layer's measured choice (see ``Encoder`` and ``Decoder``).
IMPLEMENTATIONS = ("auto", "fused", "layers")


def gpu_available() -> bool:
    """True when TensorFlow sees a GPU (Keras' GRU/LSTM then run on cuDNN)."""
    return bool(tf.config.list_logical_devices("GPU"))


def check_implementation(implementation: str) -> str:
    if implementation not in IMPLEMENTATIONS:
        raise ValueError(f"implementation={implementation!r}: choose one of {IMPLEMENTATIONS}.")
    return implementation


def gru_cell(inputs_part, recurrent_part, h_prev):
    """The GRU update (Keras ``GRUCell``, ``reset_after=True``) from both projections.

    ``inputs_part`` = ``x W + b_in`` and ``recurrent_part`` = ``h_prev U + b_rec``, both
    [..., 3 * units] in Keras' gate order (update z, reset r, candidate h);
    ``h_prev`` [..., units]::

        z = sigmoid(x_z + r_z);  r = sigmoid(x_r + r_r)
        h = z * h_prev + (1 - z) * tanh(x_h + r * r_h)

    Returns ``(h, (z, r, candidate, r_h))``: the new state [..., units] and what
    :func:`gru_scan`'s gradient needs.
    """
    x_z, x_r, x_h = ops.split(inputs_part, 3, axis=-1)
    r_z, r_r, r_h = ops.split(recurrent_part, 3, axis=-1)
    z = ops.sigmoid(x_z + r_z)
    r = ops.sigmoid(x_r + r_r)
    candidate = ops.tanh(x_h + r * r_h)
    return z * h_prev + (1.0 - z) * candidate, (z, r, candidate, r_h)


def gru_gates(inputs_part, recurrent_part, h_prev):
    """The new GRU state [..., units] (:func:`gru_cell` without its intermediates)."""
    return gru_cell(inputs_part, recurrent_part, h_prev)[0]


def gru_weights(cell, dtype):
    """A Keras ``GRUCell``'s (kernel, recurrent kernel, input bias, recurrent bias), cast to ``dtype``."""
    if not cell.reset_after or not cell.use_bias:
        raise ValueError("The fused GRU path needs reset_after=True and use_bias=True (Keras' defaults).")
    bias = ops.cast(cell.bias, dtype)
    return ops.cast(cell.kernel, dtype), ops.cast(cell.recurrent_kernel, dtype), bias[0], bias[1]


def gru_scan(inputs_tm, initial_state, recurrent_kernel, recurrent_bias, mask_tm=None, zero_masked_outputs=False):
    """Run ``D`` independent GRUs (e.g. both directions of a bidirectional layer) in one loop.

    The input projection is *not* in the loop: the caller computes ``x W + b_in`` for
    every step at once (one large matrix multiply) and only ``h U`` stays sequential;
    the ``D`` recurrent multiplies of a step are one batched ``matmul``. The gradient
    is written out by hand (as cuDNN does): the backward loop only propagates the
    state, and the recurrent kernel's gradient is one large multiply after it,
    ``sum_t h_{t-1}^T dr_t``, instead of one small multiply and accumulation per step.

    Args:
        inputs_tm: [steps, D, batch, 3 * units] projected inputs, time-major.
        initial_state: [D, batch, units].
        recurrent_kernel: [D, units, 3 * units]; recurrent_bias: [D, 1, 3 * units].
        mask_tm: optional bool [steps, D, batch, 1]; on a masked step the state is kept.
        zero_masked_outputs: output zeros on masked steps (Keras ``Bidirectional``)
            instead of the kept state (a plain Keras ``GRU``).

    Returns ``(outputs [steps, D, batch, units], final_state [D, batch, units])``,
    equal (to float rounding) to Keras' ``GRU`` with the same weights, gradients included.
    """
    @tf.custom_gradient
    def scan(inputs_tm, initial_state, recurrent_kernel, recurrent_bias):
        outputs, final_state, saved = _gru_scan_forward(
            inputs_tm, initial_state, recurrent_kernel, recurrent_bias, mask_tm, zero_masked_outputs)

        def gradient(d_outputs, d_final):
            return _gru_scan_gradient(d_outputs, d_final, outputs, final_state, saved, recurrent_kernel,
                                      mask_tm, zero_masked_outputs)

        return (outputs, final_state), gradient

    return scan(inputs_tm, initial_state, recurrent_kernel, recurrent_bias)


def _gru_scan_forward(inputs_tm, initial_state, recurrent_kernel, recurrent_bias, mask_tm, zero_masked_outputs):
    """:func:`gru_scan`'s loop; also returns per step [h_{t-1}, z, r, candidate, recurrent_h] for the gradient."""
    steps = tf.shape(inputs_tm)[0]
    outputs_ta = tf.TensorArray(inputs_tm.dtype, size=steps, element_shape=initial_state.shape)
    saved_ta = tf.TensorArray(inputs_tm.dtype, size=steps)
    inputs_ta = tf.TensorArray(inputs_tm.dtype, size=steps).unstack(inputs_tm)
    mask_ta = tf.TensorArray(tf.bool, size=steps).unstack(mask_tm) if mask_tm is not None else None

    def body(t, h, outputs_ta, saved_ta):
        recurrent = tf.matmul(h, recurrent_kernel) + recurrent_bias  # [D, batch, 3 * units]
        new_h, (z, r, candidate, r_h) = gru_cell(inputs_ta.read(t), recurrent, h)
        if mask_ta is not None:
            keep = mask_ta.read(t)
            new_h = tf.where(keep, new_h, h)
            out = tf.where(keep, new_h, tf.zeros_like(new_h)) if zero_masked_outputs else new_h
        else:
            out = new_h
        saved_ta = saved_ta.write(t, tf.stack([h, z, r, candidate, r_h]))
        return t + 1, new_h, outputs_ta.write(t, out), saved_ta

    _, final_state, outputs_ta, saved_ta = tf.while_loop(
        lambda t, *_: t < steps,
        body,
        (tf.constant(0), initial_state, outputs_ta, saved_ta),
        maximum_iterations=steps,
    )
    return outputs_ta.stack(), final_state, saved_ta.stack()


def _gru_scan_gradient(d_outputs, d_final, outputs, final_state, saved, recurrent_kernel, mask_tm, zero_masked_outputs):
    """:func:`gru_scan`'s hand-written backward pass (see its docstring)."""
    steps = tf.shape(outputs)[0]
    d_outputs = tf.zeros_like(outputs) if d_outputs is None else d_outputs
    d_final = tf.zeros_like(final_state) if d_final is None else d_final
    saved_ta = tf.TensorArray(saved.dtype, size=steps).unstack(saved)
    d_out_ta = tf.TensorArray(outputs.dtype, size=steps).unstack(d_outputs)
    mask_ta = tf.TensorArray(tf.bool, size=steps).unstack(mask_tm) if mask_tm is not None else None
    d_inputs_ta = tf.TensorArray(outputs.dtype, size=steps)
    d_recurrent_ta = tf.TensorArray(outputs.dtype, size=steps)
    kernel_t = tf.transpose(recurrent_kernel, (0, 2, 1))  # [D, 3 * units, units]

    def body(t, d_h, d_inputs_ta, d_recurrent_ta):
        h, z, r, candidate, r_h = tf.unstack(saved_ta.read(t))
        d_out = d_out_ta.read(t)
        if mask_ta is not None:
            keep = mask_ta.read(t)
            if zero_masked_outputs:
                d_new = tf.where(keep, d_h + d_out, tf.zeros_like(d_h))
                d_kept = tf.where(keep, tf.zeros_like(d_h), d_h)
            else:
                total = d_h + d_out
                d_new = tf.where(keep, total, tf.zeros_like(total))
                d_kept = tf.where(keep, tf.zeros_like(total), total)
        else:
            d_new, d_kept = d_h + d_out, None
        d_a_h = d_new * (1.0 - z) * (1.0 - candidate * candidate)  # through tanh
        d_a_z = d_new * (h - candidate) * z * (1.0 - z)  # through the update gate's sigmoid
        d_a_r = d_a_h * r_h * r * (1.0 - r)  # through the reset gate's sigmoid
        d_recurrent = tf.concat([d_a_z, d_a_r, d_a_h * r], axis=-1)  # d(h U + b_rec)
        d_prev = d_new * z + tf.matmul(d_recurrent, kernel_t)
        if d_kept is not None:
            d_prev = d_prev + d_kept
        return (t - 1, d_prev, d_inputs_ta.write(t, tf.concat([d_a_z, d_a_r, d_a_h], axis=-1)),
                d_recurrent_ta.write(t, d_recurrent))

    _, d_initial, d_inputs_ta, d_recurrent_ta = tf.while_loop(
        lambda t, *_: t >= 0,
        body,
        (steps - 1, d_final, d_inputs_ta, d_recurrent_ta),
        maximum_iterations=steps,
    )
    d_inputs = d_inputs_ta.stack()  # [steps, D, batch, 3 * units]
    d_recurrent = d_recurrent_ta.stack()
    d_3u = tf.shape(d_recurrent)[-1]
    units = tf.shape(saved)[-1]
    num = tf.shape(saved)[2]  # D
    # All steps at once: dU = sum_t h_{t-1}^T dr_t, one [D, units, steps * batch] x [D, steps * batch, 3u].
    previous = tf.reshape(tf.transpose(saved[:, 0], (1, 0, 2, 3)), tf.stack([num, -1, units]))
    d_rec_flat = tf.reshape(tf.transpose(d_recurrent, (1, 0, 2, 3)), tf.stack([num, -1, d_3u]))
    d_kernel = tf.matmul(previous, d_rec_flat, transpose_a=True)
    d_bias = tf.reduce_sum(d_recurrent, axis=[0, 2])[:, None, :]
    return d_inputs, d_initial, d_kernel, d_bias


def gru_stack(encoder, x, mask, training):
    """:class:`~seq2seq_keras.encoder.Encoder`'s GRU layers with :func:`gru_scan`: both
    directions of a layer in one loop, their input projections in one matrix multiply
    before it. ``x`` [batch, src_len, emb], ``mask`` bool [batch, src_len] -> outputs
    [batch, src_len, output_dim], ``[final state]``. Same weights and the same numbers
    as the Keras layers (padded outputs are 0 when bidirectional)."""
    dtype = x.dtype
    mask_tm = tf.transpose(mask, (1, 0))[:, None, :, None]  # [src_len, 1, batch, 1]
    state = None
    for layer in encoder.rnn_layers:
        cells = [layer.forward_layer.cell, layer.backward_layer.cell] if encoder.bidirectional else [layer.cell]
        weights = [gru_weights(cell, dtype) for cell in cells]
        if training and encoder.dropout > 0:
            # One dropout mask per sequence and direction, as Keras' GRU(dropout=...).
            ones = ops.ones_like(x[:, 0, :])
            projected = [
                ops.matmul(x * keras.random.dropout(ones, encoder.dropout, seed=cell.seed_generator)[:, None, :], k) + b
                for cell, (k, _, b, _) in zip(cells, weights)
            ]
        else:  # one [batch * src_len, in] x [in, D * 3 * units] multiply for all directions
            kernel = ops.concatenate([k for k, _, _, _ in weights], axis=-1)
            bias = ops.concatenate([b for _, _, b, _ in weights], axis=-1)
            projected = ops.split(ops.matmul(x, kernel) + bias, len(cells), axis=-1)
        projected = [tf.transpose(p, (1, 0, 2)) for p in projected]  # [src_len, batch, 3 * units] each
        masks = [mask_tm]
        if encoder.bidirectional:  # the backward GRU reads the sequence from the end
            projected[1] = tf.reverse(projected[1], axis=[0])
            masks.append(tf.reverse(mask_tm, axis=[0]))
        inputs_tm = tf.stack(projected, axis=1)  # [src_len, D, batch, 3 * units]
        mask_all = tf.concat(masks, axis=1)  # [src_len, D, batch, 1]
        batch = tf.shape(x)[0]
        initial = tf.zeros(tf.stack([len(cells), batch, encoder.units]), dtype)
        outputs, final = gru_scan(
            inputs_tm,
            initial,
            tf.stack([r for _, r, _, _ in weights]),
            tf.stack([rb for _, _, _, rb in weights])[:, None, :],
            mask_tm=mask_all,
            zero_masked_outputs=encoder.bidirectional,
        )
        if encoder.bidirectional:
            forward, backward = outputs[:, 0], tf.reverse(outputs[:, 1], axis=[0])
            x = tf.transpose(tf.concat([forward, backward], axis=-1), (1, 0, 2))
            state = tf.concat([final[0], final[1]], axis=-1)
        else:
            x = tf.transpose(outputs[:, 0], (1, 0, 2))
            state = final[0]
    return x, [state]


def gru_sequence(cell, embedded, initial_state):
    """A Keras ``GRU``'s cell over a whole sequence with :func:`gru_scan` (no mask).

    ``embedded`` [batch, steps, in], ``initial_state`` [batch, units] -> outputs
    [batch, steps, units]; the input projection is one multiply before the loop.
    """
    kernel, recurrent_kernel, input_bias, recurrent_bias = gru_weights(cell, embedded.dtype)
    projected = tf.transpose(ops.matmul(embedded, kernel) + input_bias, (1, 0, 2))[:, None]
    outputs, _ = gru_scan(projected, initial_state[None], recurrent_kernel[None], recurrent_bias[None, None])
    return tf.transpose(outputs[:, 0], (1, 0, 2))  # [batch, steps, units]


# ---------------------------------------------------------------- the decoder's input-feeding step
def context_inputs(cell, embedding_dim, source, dtype):
    """The context's share of the decoder GRU's input, once per source sentence.

    The GRU input is ``[embed(y) ; c] W + b_in = embed(y) W_e + c W_c + b_in``; since
    ``c_i = sum_j a_ij h_j``, ``c_i W_c = a_i (H W_c)``. ``source`` is ``H``
    [batch, src_len, value_dim] (with attention) or the fixed context ``c``
    [batch, value_dim] (without); returns ``H W_c`` [batch, src_len, 3 * units] or ``c W_c``.
    """
    kernel = ops.cast(cell.kernel, dtype)[embedding_dim:]  # W_c [value_dim, 3 * units]
    return ops.matmul(ops.cast(source, dtype), kernel)


def embedded_inputs(cell, embedding_dim, embedded):
    """``embed(y) W_e + b_in`` [..., 3 * units]: for every target step in one multiply."""
    kernel, _, input_bias, _ = gru_weights(cell, embedded.dtype)
    return ops.matmul(embedded, kernel[:embedding_dim]) + input_bias


class StepWeights(NamedTuple):
    """The weights one decoding step multiplies by, read (and cast) once per call, before the loop.

    Inside a ``tf.while_loop`` every variable read, slice and cast a step makes is an op
    *per step*: about 25 of the ~60 ops of a decoder step at batch 1, where dispatch, not
    arithmetic, sets the time. :meth:`Decoder.start` reads them once
    (:func:`step_weights`) and the loop captures the tensors.

    ``state_kernel`` is ``[W1 | U]`` [units, attention_units + 3 * units] for Bahdanau
    attention (the query projection ``W1 s_{i-1}`` and the GRU's recurrent part
    ``s_{i-1} U`` multiply the same state: one matmul), ``U`` otherwise;
    ``state_bias`` is ``[0 | b_rec]``; ``query_units`` is the width of the ``W1`` part (0 without).
    """

    embeddings: Any  #: E [vocabulary, embedding_dim]
    input_kernel: Any  #: W_e [embedding_dim, 3 * units], the embedding's share of the GRU input kernel
    input_bias: Any  #: b_in [3 * units]
    state_kernel: Any
    state_bias: Any
    query_units: int
    v: Any  #: Bahdanau's v_a [attention_units] (None otherwise)
    output_kernel: Any  #: W_o [output_features_dim, vocabulary]
    output_bias: Any  #: b_o [vocabulary]


def step_weights(decoder, dtype) -> StepWeights:
    """:class:`StepWeights` of an input-feeding GRU ``decoder`` in ``dtype`` (its compute dtype)."""
    kernel, recurrent_kernel, input_bias, recurrent_bias = gru_weights(decoder.cell, dtype)
    query_units, v = 0, None
    state_kernel, state_bias = recurrent_kernel, recurrent_bias
    if decoder.attention_type == "bahdanau":
        attention = decoder.attention
        query_kernel = ops.cast(attention.query_dense.kernel, dtype)  # W1 [units, attention_units]
        query_units = int(query_kernel.shape[-1])
        state_kernel = ops.concatenate([query_kernel, recurrent_kernel], axis=-1)
        state_bias = ops.concatenate([ops.zeros([query_units], dtype), recurrent_bias], axis=-1)
        v = ops.cast(attention.score_dense.kernel, dtype)[:, 0]
    output = decoder.output_layer
    return StepWeights(
        ops.cast(decoder.embedding.embeddings, dtype), kernel[:decoder.embedding_dim], input_bias,
        state_kernel, state_bias, query_units, v, ops.cast(output.kernel, dtype), ops.cast(output.bias, dtype),
    )


def token_inputs(weights: StepWeights, token_ids):
    """``embed(y) W_e + b_in`` [batch, 3 * units] for token ids [batch]: a gather and one multiply."""
    return ops.matmul(tf.gather(weights.embeddings, token_ids), weights.input_kernel) + weights.input_bias


def output_logits(weights: StepWeights, features):
    """float32 logits [batch, vocabulary] from ``features`` [batch, output_features_dim] (the output layer's math)."""
    return ops.cast(tf.nn.bias_add(ops.matmul(features, weights.output_kernel), weights.output_bias), "float32")


def input_feeding_step(decoder, inputs_part, state, memory, weights: StepWeights | None = None):
    """One input-feeding GRU step of ``decoder`` as a single function of raw ops.

    ``inputs_part`` [batch, 3 * units] is ``embed(y) W_e + b_in`` (:func:`embedded_inputs`);
    ``memory`` is :meth:`Decoder.start`'s :class:`DecoderMemory`, with ``context_inputs`` (:func:`context_inputs`).
    The attention weights come from the attention layer's own :meth:`score`, or, with
    ``weights`` (:class:`StepWeights`, decoding) and Bahdanau attention, from
    :func:`~seq2seq_keras.attention.bahdanau_score` on the query projection that shares
    the state's matmul with the recurrent part.
    Returns features ``[s_i ; c_i]`` and the new state in the compute dtype, and the attention
    weights float32 [batch, src_len].
    """
    h = state[0]
    dtype = h.dtype
    if weights is None:
        _, recurrent_kernel, _, recurrent_bias = gru_weights(decoder.cell, dtype)
        recurrent_part, query = ops.matmul(h, recurrent_kernel) + recurrent_bias, None
    else:
        state_part = ops.matmul(h, weights.state_kernel) + weights.state_bias
        if weights.query_units:
            query, recurrent_part = tf.split(state_part, [weights.query_units, -1], axis=-1)
        else:
            recurrent_part, query = state_part, None
    if decoder.attention is None:
        attention_weights = ops.zeros(ops.shape(memory.values)[:2], dtype="float32")
        context = ops.cast(memory.context, dtype)
        context_part = ops.cast(memory.context_inputs, dtype)
    else:
        keys = ops.cast(memory.keys, dtype)
        if query is not None:  # attention.py's score, looked up at call time like the layer's own
            scores = _attention.bahdanau_score(query, keys, weights.v)
        else:
            scores = decoder.attention.score(h, keys)  # [batch, src_len]
        # The weights and both weighted sums in float32, as the attention layer computes them.
        attention_weights = masked_softmax(scores, memory.mask)  # float32 [batch, src_len]
        w = ops.expand_dims(attention_weights, 1)  # [batch, 1, src_len]
        context = ops.cast(ops.squeeze(weighted_sum(w, memory.values), 1), dtype)  # [batch, value_dim]
        context_part = ops.cast(ops.squeeze(weighted_sum(w, memory.context_inputs), 1), dtype)  # c W_c
    new_h = gru_gates(inputs_part + context_part, recurrent_part, h)
    return ops.concatenate([new_h, context], axis=-1), [new_h], attention_weights
