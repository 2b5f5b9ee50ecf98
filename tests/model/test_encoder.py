"""The fused GRU encoder path (seq2seq_keras.model.fast_gru.gru_layer) against Keras' own recurrent layers: outputs, states, gradients."""

import numpy as np
import pytest
import tensorflow as tf

from seq2seq_keras import Encoder

# Right-padded batch with a full row, short rows and an empty row (all padding).
IDS = tf.constant([[4, 5, 6, 0, 0], [7, 8, 0, 0, 0], [9, 3, 4, 5, 6], [0, 0, 0, 0, 0]])


def _fixed_weights(x, scale):
    """Deterministic loss weights shaped like ``x`` (not tf.random: XLA draws other numbers)."""
    return tf.reshape(tf.sin(tf.cast(tf.range(tf.size(x)), x.dtype) * scale), tf.shape(x))


def _run(enc, implementation, ids=IDS, training=False):
    enc.implementation = implementation
    with tf.GradientTape() as tape:
        outputs, states, mask = enc(ids, training=training)
        # A loss touching every output and the final state with fixed weights.
        loss = tf.reduce_sum(outputs * _fixed_weights(outputs, 1.3))
        loss += tf.reduce_sum(states[0] * _fixed_weights(states[0], 0.7))
    grads = [tf.convert_to_tensor(g) for g in tape.gradient(loss, enc.trainable_variables)]
    return outputs, states[0], mask, grads


@pytest.mark.parametrize("bidirectional,layers", [(True, 1), (True, 2), (False, 1), (False, 2)])
def test_fused_scan_equals_keras_layers_with_gradients(bidirectional, layers):
    enc = Encoder(20, 8, 6, num_layers=layers, bidirectional=bidirectional)
    ref = _run(enc, "layers")
    fused = _run(enc, "fused")
    assert enc.uses_fused_gru()
    np.testing.assert_allclose(fused[0], ref[0], atol=1e-6)  # padded outputs included
    np.testing.assert_allclose(fused[1], ref[1], atol=1e-6)
    np.testing.assert_array_equal(fused[2], ref[2])
    assert len(fused[3]) == len(ref[3]) == len(enc.trainable_variables)
    for g_fused, g_ref in zip(fused[3], ref[3]):
        np.testing.assert_allclose(g_fused, g_ref, atol=1e-5)
    # The empty row: zero outputs and a zero state, as Keras gives.
    assert np.all(np.asarray(fused[0])[3] == 0) and np.all(np.asarray(fused[1])[3] == 0)


def test_auto_uses_the_fused_scan_to_train_without_a_gpu_and_keras_layers_otherwise():
    assert Encoder(10, 4, 4).uses_fused_gru(training=True) == (not tf.config.list_logical_devices("GPU"))
    assert not Encoder(10, 4, 4).uses_fused_gru(training=False)  # inference: Keras' layers are faster
    assert not Encoder(10, 4, 4).uses_fused_gru(training=None)
    assert not Encoder(10, 4, 4, rnn="lstm").uses_fused_gru(training=True)


def test_inference_and_training_paths_give_the_same_outputs():
    """``auto`` switches implementation with ``training``; the numbers must not change."""
    enc = Encoder(20, 8, 6)
    ids = np.array([[4, 5, 6, 0], [7, 8, 0, 0], [9, 0, 0, 0]])
    out_train, states_train, _ = enc(ids, training=True)  # no dropout: same function
    out_infer, states_infer, _ = enc(ids, training=False)
    np.testing.assert_allclose(out_infer, out_train, atol=1e-6)
    np.testing.assert_allclose(states_infer[0], states_train[0], atol=1e-6)


def test_fused_encoder_under_tf_function_and_xla_equals_keras_layers():
    """The fused scan in training (its hand-written gradient included), traced and compiled
    with XLA, against Keras' layers run eagerly."""
    enc = Encoder(20, 8, 6)
    ref = _run(enc, "layers")
    enc.implementation = "fused"
    assert enc.uses_fused_gru(training=True)
    for jit_compile in (False, True):
        got = tf.function(lambda ids: _run(enc, "fused", ids, training=True), jit_compile=jit_compile)(IDS)
        np.testing.assert_allclose(got[0], ref[0], atol=1e-5)
        np.testing.assert_allclose(got[1], ref[1], atol=1e-5)
        for g, r in zip(got[3], ref[3]):
            np.testing.assert_allclose(g, r, atol=1e-5)


def test_fused_encoder_dropout_is_random_in_training_only():
    enc = Encoder(20, 8, 6, dropout=0.5)
    enc.implementation = "fused"
    inference = [np.asarray(enc(IDS, training=False)[0]) for _ in range(2)]
    np.testing.assert_array_equal(inference[0], inference[1])
    enc.implementation = "layers"
    np.testing.assert_allclose(enc(IDS, training=False)[0], inference[0], atol=1e-6)
    enc.implementation = "fused"
    training = [np.asarray(enc(IDS, training=True)[0]) for _ in range(2)]
    assert not np.allclose(training[0], training[1])
    assert np.all(np.isfinite(training[0]))
