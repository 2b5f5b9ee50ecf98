"""The encoder: source token ids -> one hidden state per source token.

``x_1..x_S`` are embedded and read by a (by default bidirectional) recurrent
network; each annotation ``h_j = [h_j^fwd ; h_j^bwd]`` summarises the whole
sentence with a focus on word ``j`` (Bahdanau et al. 2014, section 3.2). The
final states are returned too: a plain encoder-decoder squeezes the sentence into
them alone, which is the information bottleneck attention removes.
"""

from __future__ import annotations

import keras
import tensorflow as tf
from keras import ops

RNN_TYPES = ("gru", "lstm")

#: How :class:`Encoder` (and the decoder's no-input-feeding mode) run a GRU over a
#: sequence: ``"auto"`` picks ``"layers"`` (Keras' own ``GRU``, which uses the fused
#: cuDNN kernel) when a GPU is visible and ``"fused"`` (:func:`gru_scan`) otherwise;
#: the encoder's ``"auto"`` uses the fused scan only in training (see
#: :meth:`Encoder.uses_fused_gru`).
IMPLEMENTATIONS = ("auto", "fused", "layers")


def gpu_available() -> bool:
    """True when TensorFlow sees a GPU (Keras' GRU/LSTM then run on cuDNN)."""
    return bool(tf.config.list_logical_devices("GPU"))


def gru_gates(inputs_part, recurrent_part, h_prev):
    """The GRU update (Keras ``GRUCell``, ``reset_after=True``) from both projections.

    ``inputs_part`` = ``x W + b_in`` and ``recurrent_part`` = ``h_prev U + b_rec``, both
    [..., 3 * units] in Keras' gate order (update z, reset r, candidate h);
    ``h_prev`` [..., units]. Returns the new state [..., units]::

        z = sigmoid(x_z + r_z);  r = sigmoid(x_r + r_r)
        h = z * h_prev + (1 - z) * tanh(x_h + r * r_h)
    """
    x_z, x_r, x_h = ops.split(inputs_part, 3, axis=-1)
    r_z, r_r, r_h = ops.split(recurrent_part, 3, axis=-1)
    z = ops.sigmoid(x_z + r_z)
    r = ops.sigmoid(x_r + r_r)
    candidate = ops.tanh(x_h + r * r_h)
    return z * h_prev + (1.0 - z) * candidate


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
    steps = tf.shape(inputs_tm)[0]

    def forward(inputs_tm, initial_state, recurrent_kernel, recurrent_bias):
        """The loop; also returns per step [h_{t-1}, z, r, candidate, recurrent_h] for the gradient."""
        outputs_ta = tf.TensorArray(inputs_tm.dtype, size=steps, element_shape=initial_state.shape)
        saved_ta = tf.TensorArray(inputs_tm.dtype, size=steps)
        inputs_ta = tf.TensorArray(inputs_tm.dtype, size=steps).unstack(inputs_tm)
        mask_ta = tf.TensorArray(tf.bool, size=steps).unstack(mask_tm) if mask_tm is not None else None

        def body(t, h, outputs_ta, saved_ta):
            recurrent = tf.matmul(h, recurrent_kernel) + recurrent_bias  # [D, batch, 3 * units]
            x_z, x_r, x_h = tf.split(inputs_ta.read(t), 3, axis=-1)
            r_z, r_r, r_h = tf.split(recurrent, 3, axis=-1)
            z = tf.sigmoid(x_z + r_z)
            r = tf.sigmoid(x_r + r_r)
            candidate = tf.tanh(x_h + r * r_h)
            new_h = z * h + (1.0 - z) * candidate
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

    @tf.custom_gradient
    def scan(inputs_tm, initial_state, recurrent_kernel, recurrent_bias):
        outputs, final_state, saved = forward(inputs_tm, initial_state, recurrent_kernel, recurrent_bias)

        def gradient(d_outputs, d_final):
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

        return (outputs, final_state), gradient

    return scan(inputs_tm, initial_state, recurrent_kernel, recurrent_bias)


def _gru_weights(cell, dtype):
    """A Keras ``GRUCell``'s (kernel, recurrent kernel, input bias, recurrent bias), cast to ``dtype``."""
    if not cell.reset_after or not cell.use_bias:
        raise ValueError("The fused GRU path needs reset_after=True and use_bias=True (Keras' defaults).")
    bias = ops.cast(cell.bias, dtype)
    return ops.cast(cell.kernel, dtype), ops.cast(cell.recurrent_kernel, dtype), bias[0], bias[1]


def _rnn_layer(rnn: str, units: int, dropout: float, name: str, dtype=None):
    # Default activations, reset_after=True, no recurrent dropout and no unroll keep
    # the layer eligible for the fused cuDNN kernel on a GPU.
    cls = {"gru": keras.layers.GRU, "lstm": keras.layers.LSTM}[rnn]
    return cls(units, return_sequences=True, return_state=True, dropout=dropout, name=name, dtype=dtype)


@keras.saving.register_keras_serializable(package="seq2seq_keras")
class Encoder(keras.layers.Layer):
    """Embedding (``mask_zero``) then ``num_layers`` recurrent layers.

    Call: ``outputs, states, mask = encoder(source_ids)`` with

    * ``source_ids`` int [batch, src_len], 0 = padding;
    * ``outputs`` [batch, src_len, output_dim] with ``output_dim = units * (2 if bidirectional else 1)``;
    * ``states`` list of [batch, output_dim] final states of the last layer
      (one tensor for GRU, ``[h, c]`` for LSTM), forward and backward concatenated;
    * ``mask`` bool [batch, src_len], True on real tokens.
    """

    def __init__(
        self,
        vocabulary_size: int,
        embedding_dim: int = 128,
        units: int = 256,
        *,
        rnn: str = "gru",
        num_layers: int = 1,
        bidirectional: bool = True,
        dropout: float = 0.0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if rnn not in RNN_TYPES:
            raise ValueError(f"rnn={rnn!r}: choose one of {RNN_TYPES}.")
        if num_layers < 1:
            raise ValueError(f"num_layers must be >= 1, got {num_layers}.")
        self.vocabulary_size = int(vocabulary_size)
        self.embedding_dim = int(embedding_dim)
        self.units = int(units)
        self.rnn = rnn
        self.num_layers = int(num_layers)
        self.bidirectional = bool(bidirectional)
        self.dropout = float(dropout)
        self.supports_masking = True
        # Sublayers share this layer's dtype policy, so that a saved mixed-precision model reloads mixed.
        policy = self.dtype_policy
        self.embedding = keras.layers.Embedding(
            self.vocabulary_size, self.embedding_dim, mask_zero=True, name="embedding", dtype=policy
        )
        self.rnn_layers = []
        for i in range(self.num_layers):
            layer = _rnn_layer(rnn, self.units, self.dropout, name=f"{rnn}_{i}", dtype=policy)
            if self.bidirectional:
                layer = keras.layers.Bidirectional(layer, merge_mode="concat", name=f"bi{rnn}_{i}", dtype=policy)
            self.rnn_layers.append(layer)
        # Not part of the config: how to run the recurrence, same weights and numbers either way.
        self._implementation = "auto"

    @property
    def output_dim(self) -> int:
        return self.units * (2 if self.bidirectional else 1)

    @property
    def num_states(self) -> int:
        return 2 if self.rnn == "lstm" else 1

    def build(self, input_shape):
        self.embedding.build(input_shape)
        shape = (input_shape[0], input_shape[1], self.embedding_dim)
        for layer in self.rnn_layers:
            layer.build(shape)
            shape = (input_shape[0], input_shape[1], self.output_dim)
        self.built = True

    def uses_fused_gru(self, training=True) -> bool:
        """Whether :meth:`call` runs :func:`gru_scan` instead of Keras' recurrent layers.

        ``"auto"`` uses the scan only for training on a CPU, where its hand-written
        gradient pays. Forward only (validation, translation, the exported
        SavedModel), Keras' layers are faster on a CPU: with the spa-eng benchmark
        model, 0.6 vs 0.9 ms for one sentence and 3.6 vs 5.2 ms for 64 (the scan's
        transposes, reversal and stacking cost more than its one batched matmul
        saves when there is no backward pass).
        """
        if self.rnn != "gru" or self._implementation == "layers":
            return False
        if self._implementation == "fused":
            return True
        return bool(training) and not gpu_available()

    def call(self, source_ids, training=None):
        mask = ops.not_equal(source_ids, 0)
        x = self.embedding(source_ids)
        if self.uses_fused_gru(training):
            x, states = self._fused_gru_layers(x, mask, training)
            return x, states, mask
        for layer in self.rnn_layers:
            x, *states = layer(x, mask=mask, training=training)
        if self.bidirectional:
            # Bidirectional returns [fwd states..., bwd states...]; pair them up.
            n = self.num_states
            states = [ops.concatenate([f, b], axis=-1) for f, b in zip(states[:n], states[n:])]
        return x, states, mask

    def _fused_gru_layers(self, x, mask, training):
        """The GRU stack with :func:`gru_scan`: both directions of a layer in one loop,
        their input projections in one matrix multiply before it. Same weights and the
        same numbers as the Keras layers (padded outputs are 0 when bidirectional)."""
        dtype = x.dtype
        mask_tm = tf.transpose(mask, (1, 0))[:, None, :, None]  # [src_len, 1, batch, 1]
        state = None
        for layer in self.rnn_layers:
            cells = [layer.forward_layer.cell, layer.backward_layer.cell] if self.bidirectional else [layer.cell]
            weights = [_gru_weights(cell, dtype) for cell in cells]
            if training and self.dropout > 0:
                # One dropout mask per sequence and direction, as Keras' GRU(dropout=...).
                ones = ops.ones_like(x[:, 0, :])
                projected = [
                    ops.matmul(x * keras.random.dropout(ones, self.dropout, seed=cell.seed_generator)[:, None, :], k) + b
                    for cell, (k, _, b, _) in zip(cells, weights)
                ]
            else:  # one [batch * src_len, in] x [in, D * 3 * units] multiply for all directions
                kernel = ops.concatenate([k for k, _, _, _ in weights], axis=-1)
                bias = ops.concatenate([b for _, _, b, _ in weights], axis=-1)
                projected = ops.split(ops.matmul(x, kernel) + bias, len(cells), axis=-1)
            projected = [tf.transpose(p, (1, 0, 2)) for p in projected]  # [src_len, batch, 3 * units] each
            masks = [mask_tm]
            if self.bidirectional:  # the backward GRU reads the sequence from the end
                projected[1] = tf.reverse(projected[1], axis=[0])
                masks.append(tf.reverse(mask_tm, axis=[0]))
            inputs_tm = tf.stack(projected, axis=1)  # [src_len, D, batch, 3 * units]
            mask_all = tf.concat(masks, axis=1)  # [src_len, D, batch, 1]
            batch = tf.shape(x)[0]
            initial = tf.zeros(tf.stack([len(cells), batch, self.units]), dtype)
            outputs, final = gru_scan(
                inputs_tm,
                initial,
                tf.stack([r for _, r, _, _ in weights]),
                tf.stack([rb for _, _, _, rb in weights])[:, None, :],
                mask_tm=mask_all,
                zero_masked_outputs=self.bidirectional,
            )
            if self.bidirectional:
                forward, backward = outputs[:, 0], tf.reverse(outputs[:, 1], axis=[0])
                x = tf.transpose(tf.concat([forward, backward], axis=-1), (1, 0, 2))
                state = tf.concat([final[0], final[1]], axis=-1)
            else:
                x = tf.transpose(outputs[:, 0], (1, 0, 2))
                state = final[0]
        return x, [state]

    def compute_mask(self, source_ids, mask=None):
        return None

    def get_config(self):
        config = super().get_config()
        config.update(
            vocabulary_size=self.vocabulary_size,
            embedding_dim=self.embedding_dim,
            units=self.units,
            rnn=self.rnn,
            num_layers=self.num_layers,
            bidirectional=self.bidirectional,
            dropout=self.dropout,
        )
        return config
