"""seq2seq_keras.model.fast_gru on raw tensors: the GRU update against Keras' GRUCell, the scan's
hand-written gradient against autodiff. (The layers that call it are held against Keras'
layers in test_encoder.py and test_decoder.py.)"""

import keras
import numpy as np
import tensorflow as tf

from seq2seq_keras.model.fast_gru import gru_scan, gru_update, gru_weights


def test_gru_update_equals_keras_gru_cell():
    rng = np.random.default_rng(0)
    cell = keras.layers.GRUCell(5)
    cell.build((None, 4))
    for variable in cell.weights:
        variable.assign(rng.normal(size=variable.shape) * 0.5)
    x = tf.constant(rng.normal(size=(3, 4)), tf.float32)
    h = tf.constant(rng.normal(size=(3, 5)), tf.float32)
    expected, _ = cell(x, [h])
    w = gru_weights(cell.kernel, cell.recurrent_kernel, cell.bias, "float32")
    got = gru_update(tf.matmul(x, w.kernel) + w.input_bias, tf.matmul(h, w.recurrent_kernel) + w.recurrent_bias, h)
    np.testing.assert_allclose(got, expected, atol=1e-6)


def test_gru_scan_gradient_matches_autodiff_of_the_same_recurrence():
    """The hand-written backward pass against TensorFlow differentiating a plain loop."""
    rng = np.random.default_rng(0)
    steps, d, batch, units = 4, 2, 3, 5
    x = tf.constant(rng.normal(size=(steps, d, batch, 3 * units)), tf.float32)
    h0 = tf.constant(rng.normal(size=(d, batch, units)), tf.float32)
    kernel = tf.constant(rng.normal(size=(d, units, 3 * units)) * 0.3, tf.float32)
    bias = tf.constant(rng.normal(size=(d, 1, 3 * units)), tf.float32)
    mask = tf.constant(rng.random((steps, d, batch, 1)) > 0.3)
    weights = tf.constant(rng.normal(size=(steps, d, batch, units)), tf.float32)

    def plain(x, h0, kernel, bias):
        h, outs = h0, []
        for t in range(steps):
            rec = tf.matmul(h, kernel) + bias
            x_z, x_r, x_h = tf.split(x[t], 3, -1)
            r_z, r_r, r_h = tf.split(rec, 3, -1)
            z, r = tf.sigmoid(x_z + r_z), tf.sigmoid(x_r + r_r)
            new = z * h + (1 - z) * tf.tanh(x_h + r * r_h)
            h = tf.where(mask[t], new, h)
            outs.append(tf.where(mask[t], h, 0.0))
        return tf.stack(outs), h

    for fn in (plain, lambda *a: gru_scan(*a, mask_tm=mask, zero_masked_outputs=True)):
        with tf.GradientTape() as tape:
            tape.watch([x, h0, kernel, bias])
            outs, final = fn(x, h0, kernel, bias)
            loss = tf.reduce_sum(outs * weights) + tf.reduce_sum(final**2)
        result = [outs, final] + tape.gradient(loss, [x, h0, kernel, bias])
        if fn is plain:
            expected = result
    for got, want in zip(result, expected):
        np.testing.assert_allclose(got, want, atol=1e-5)
