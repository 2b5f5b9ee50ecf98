"""Speed-only twins of Keras' GRU equations, as functions of raw tensors.

These functions compute the numbers of Keras' ``GRUCell``/``GRU``
(``reset_after=True``, Keras' default) from the same weights, passed in as tensors
(:class:`GRUWeights`), with fewer and larger operations; they never take a layer.
The layers that own the weights call them from their own code: the encoder's
recurrence (:class:`~seq2seq_keras.model.Encoder`) and the decoder's step and fast
mode (:class:`~seq2seq_keras.model.Decoder`). tests/model/test_fast_gru.py, test_encoder.py
and test_decoder.py hold them against Keras' layers, gradients included. In reading order:

* :func:`gru_update`: one GRU update from the input and recurrent projections;
* :func:`gru_scan`: ``D`` GRUs (e.g. both directions of a bidirectional layer) in one
  ``tf.while_loop``, with a hand-written gradient;
* :func:`gru_layer` (the encoder: masked, one or two directions) and
  :func:`gru_sequence` (the decoder's fast mode): a whole sequence through
  :func:`gru_scan`, the input projection one multiply before the loop;
* :func:`uses_fast_gru`: the one rule for when a layer runs these functions instead of
  Keras' layers (its ``implementation`` argument, :data:`IMPLEMENTATIONS`).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import tensorflow as tf
from keras import ops

#: How a layer runs its GRU (same weights, same numbers): ``"layers"``, Keras' own
#: layers (cuDNN on a GPU); ``"fused"``, the functions of this module; ``"auto"``,
#: the measured choice of each use (:func:`uses_fast_gru`).
IMPLEMENTATIONS = ("auto", "fused", "layers")


def check_implementation(implementation: str) -> str:
    if implementation not in IMPLEMENTATIONS:
        raise ValueError(f"implementation={implementation!r}: choose one of {IMPLEMENTATIONS}.")
    return implementation


def gpu_available() -> bool:
    """True when TensorFlow sees a GPU (Keras' GRU/LSTM then run on cuDNN)."""
    return bool(tf.config.list_logical_devices("GPU"))


def uses_fast_gru(rnn: str, implementation: str, auto: bool) -> bool:
    """Whether a layer runs this module's functions: a GRU with ``implementation="fused"``,
    or ``"auto"`` where ``auto`` (the caller's measured choice) says so; never an LSTM or ``"layers"``."""
    if rnn != "gru" or implementation == "layers":
        return False
    return implementation == "fused" or bool(auto)


class GRUWeights(NamedTuple):
    """A Keras ``GRUCell``'s weights in one dtype (``reset_after=True``: two biases)."""

    kernel: Any  #: W [input_dim, 3 * units], gate order update z, reset r, candidate h
    recurrent_kernel: Any  #: U [units, 3 * units]
    input_bias: Any  #: b_in [3 * units]
    recurrent_bias: Any  #: b_rec [3 * units]


def gru_weights(kernel, recurrent_kernel, bias, dtype) -> GRUWeights:
    """:class:`GRUWeights` from a ``GRUCell``'s ``kernel``, ``recurrent_kernel`` and ``bias``, cast to ``dtype``."""
    if bias is None or len(bias.shape) != 2:
        raise ValueError(
            "The fast GRU needs reset_after=True and use_bias=True (Keras' defaults); "
            "use implementation='layers' for other GRUs."
        )
    bias = ops.cast(bias, dtype)
    return GRUWeights(ops.cast(kernel, dtype), ops.cast(recurrent_kernel, dtype), bias[0], bias[1])


def gru_update(inputs_part, recurrent_part, h_prev):
    """The new GRU state [..., units] (Keras ``GRUCell``, ``reset_after=True``).

    ``inputs_part`` = ``x W + b_in`` and ``recurrent_part`` = ``h_prev U + b_rec``, both
    [..., 3 * units] in Keras' gate order (update z, reset r, candidate h);
    ``h_prev`` [..., units]::

        z = sigmoid(x_z + r_z);  r = sigmoid(x_r + r_r)
        h = z * h_prev + (1 - z) * tanh(x_h + r * r_h)
    """
    return _gru_update_and_gates(inputs_part, recurrent_part, h_prev)[0]


def _gru_update_and_gates(inputs_part, recurrent_part, h_prev):
    """:func:`gru_update` and ``(z, r, candidate, r_h)``, what :func:`gru_scan`'s gradient needs."""
    x_z, x_r, x_h = ops.split(inputs_part, 3, axis=-1)
    r_z, r_r, r_h = ops.split(recurrent_part, 3, axis=-1)
    z = ops.sigmoid(x_z + r_z)
    r = ops.sigmoid(x_r + r_r)
    candidate = ops.tanh(x_h + r * r_h)
    return z * h_prev + (1.0 - z) * candidate, (z, r, candidate, r_h)


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
            inputs_tm, initial_state, recurrent_kernel, recurrent_bias, mask_tm, zero_masked_outputs
        )

        def gradient(d_outputs, d_final):
            return _gru_scan_gradient(
                d_outputs, d_final, outputs, final_state, saved, recurrent_kernel, mask_tm, zero_masked_outputs
            )

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
        new_h, (z, r, candidate, r_h) = _gru_update_and_gates(inputs_ta.read(t), recurrent, h)
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
        return (
            t - 1,
            d_prev,
            d_inputs_ta.write(t, tf.concat([d_a_z, d_a_r, d_a_h], axis=-1)),
            d_recurrent_ta.write(t, d_recurrent),
        )

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


def gru_layer(x, mask, weights, input_dropout=None):
    """One GRU layer over a masked sequence, in one or both directions, with :func:`gru_scan`.

    Args:
        x: [batch, src_len, input_dim].
        mask: bool [batch, src_len]; on a masked step the state is kept.
        weights: one :class:`GRUWeights` (a plain GRU) or two (forward, backward: a
            bidirectional layer, the backward GRU reading the sequence from the end).
        input_dropout: ``None``, or one mask [batch, input_dim] per direction that
            multiplies ``x`` at every step (Keras' ``GRU(dropout=...)``).

    Returns ``(outputs [batch, src_len, D * units], final state [batch, D * units])``, the
    directions concatenated: the numbers of Keras' ``GRU`` / ``Bidirectional(GRU)``
    (padded outputs are 0 when bidirectional). The input projections of all directions
    are one matrix multiply before the loop, both directions run in one loop.
    """
    dtype = x.dtype
    directions = len(weights)
    bidirectional = directions == 2
    mask_tm = tf.transpose(mask, (1, 0))[:, None, :, None]  # [src_len, 1, batch, 1]
    if input_dropout is not None:
        projected = [
            ops.matmul(x * drop[:, None, :], w.kernel) + w.input_bias for drop, w in zip(input_dropout, weights)
        ]
    else:  # one [batch * src_len, in] x [in, D * 3 * units] multiply for all directions
        kernel = ops.concatenate([w.kernel for w in weights], axis=-1)
        bias = ops.concatenate([w.input_bias for w in weights], axis=-1)
        projected = ops.split(ops.matmul(x, kernel) + bias, directions, axis=-1)
    projected = [tf.transpose(p, (1, 0, 2)) for p in projected]  # [src_len, batch, 3 * units] each
    masks = [mask_tm]
    if bidirectional:  # the backward GRU reads the sequence from the end
        projected[1] = tf.reverse(projected[1], axis=[0])
        masks.append(tf.reverse(mask_tm, axis=[0]))
    inputs_tm = tf.stack(projected, axis=1)  # [src_len, D, batch, 3 * units]
    mask_all = tf.concat(masks, axis=1)  # [src_len, D, batch, 1]
    batch = tf.shape(x)[0]
    units = int(weights[0].recurrent_kernel.shape[0])
    initial = tf.zeros(tf.stack([directions, batch, units]), dtype)
    outputs, final = gru_scan(
        inputs_tm,
        initial,
        tf.stack([w.recurrent_kernel for w in weights]),
        tf.stack([w.recurrent_bias for w in weights])[:, None, :],
        mask_tm=mask_all,
        zero_masked_outputs=bidirectional,
    )
    if bidirectional:
        forward, backward = outputs[:, 0], tf.reverse(outputs[:, 1], axis=[0])
        outputs = tf.transpose(tf.concat([forward, backward], axis=-1), (1, 0, 2))
        return outputs, tf.concat([final[0], final[1]], axis=-1)
    return tf.transpose(outputs[:, 0], (1, 0, 2)), final[0]


def gru_sequence(inputs, initial_state, weights: GRUWeights):
    """A GRU over a whole sequence with :func:`gru_scan` (no mask): Keras' ``GRU(return_sequences=True)``.

    ``inputs`` [batch, steps, input_dim], ``initial_state`` [batch, units] -> outputs
    [batch, steps, units]; the input projection is one multiply before the loop.
    """
    projected = tf.transpose(ops.matmul(inputs, weights.kernel) + weights.input_bias, (1, 0, 2))[:, None]
    outputs, _ = gru_scan(
        projected, initial_state[None], weights.recurrent_kernel[None], weights.recurrent_bias[None, None]
    )
    return tf.transpose(outputs[:, 0], (1, 0, 2))  # [batch, steps, units]
