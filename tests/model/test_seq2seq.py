"""Encoder, Decoder and Seq2Seq: shapes, masks, equivalences, training, saving."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import TINY_SOURCE, TINY_TARGET

from seq2seq_keras import Decoder, Encoder, Seq2Seq
from seq2seq_keras.data.batching import pad_batch_shapes
from seq2seq_keras.model.seq2seq import masked_token_loss
from seq2seq_keras.text import END_ID, PAD_ID


def _batch(src, tgt):
    s_ids, t_ids = src(TINY_SOURCE), tgt(TINY_TARGET)
    return s_ids, t_ids[:, :-1], t_ids[:, 1:]


@pytest.mark.parametrize("rnn,layers,bi", [("gru", 1, True), ("lstm", 2, True), ("gru", 2, False)])
def test_encoder_shapes_and_states(rnn, layers, bi):
    enc = Encoder(20, 8, 6, rnn=rnn, num_layers=layers, bidirectional=bi)
    ids = np.array([[4, 5, 6, 0], [7, 0, 0, 0]])
    outputs, states, mask = enc(ids)
    dim = 12 if bi else 6
    assert outputs.shape == (2, 4, dim)
    assert len(states) == (2 if rnn == "lstm" else 1) and all(s.shape == (2, dim) for s in states)
    np.testing.assert_array_equal(mask, ids != 0)
    clone = Encoder.from_config(enc.get_config())
    clone(ids)
    clone.set_weights(enc.get_weights())
    np.testing.assert_allclose(clone(ids)[0], outputs, atol=1e-6)


def test_encoder_ignores_padding():
    enc = Encoder(20, 8, 6)
    short = np.array([[4, 5, 6]])
    padded = np.array([[4, 5, 6, 0, 0]])
    out_s, st_s, _ = enc(short)
    out_p, st_p, _ = enc(padded)
    np.testing.assert_allclose(out_p[:, :3], out_s, atol=1e-5)
    np.testing.assert_allclose(st_p[0], st_s[0], atol=1e-5)


@pytest.mark.parametrize("input_feeding", [True, False])
@pytest.mark.parametrize("attention", ["bahdanau", "luong-dot", "luong-general", "luong-scaled-dot", None])
def test_teacher_forcing_equals_step_by_step(attention, input_feeding, tiny_processors):
    """What decoding runs (one ``decoder.step`` at a time) equals training's whole-target call,
    with input feeding (a loop) and in the fast mode (RNN over the whole target)."""
    src, tgt = tiny_processors
    model = Seq2Seq(src, tgt, embedding_dim=8, encoder_units=6, attention=attention, input_feeding=input_feeding)
    s_ids, t_in, _ = _batch(src, tgt)
    logits, weights = model.call_with_attention((s_ids, t_in))
    assert logits.shape == (4, t_in.shape[1], tgt.vocabulary_size) and logits.dtype == "float32"
    assert weights.shape == (4, t_in.shape[1], s_ids.shape[1])
    enc_out, enc_states, mask = model.encoder(s_ids)
    state, memory = model.decoder.start(enc_out, enc_states, mask)
    for t in range(t_in.shape[1]):
        step_logits, state, step_w = model.decoder.step(t_in[:, t], state, memory)
        np.testing.assert_allclose(step_logits, logits[:, t], atol=1e-5)
        np.testing.assert_allclose(step_w, weights[:, t], atol=1e-6)
    w = np.asarray(weights)
    if attention is None:
        assert np.all(w == 0)
    else:
        np.testing.assert_allclose(w.sum(-1), 1.0, atol=1e-5)
        assert np.all(w[np.broadcast_to((np.asarray(s_ids) == 0)[:, None, :], w.shape)] == 0)


def test_source_padding_does_not_change_the_output(tiny_processors):
    src, tgt = tiny_processors
    model = Seq2Seq(src, tgt, embedding_dim=8, encoder_units=6)
    s_ids, t_in, _ = _batch(src, tgt)
    padded = tf.pad(s_ids, [[0, 0], [0, 3]])
    np.testing.assert_allclose(model((padded, t_in)), model((s_ids, t_in)), atol=1e-5)


def _numpy_statistics(target, logits):
    """(summed cross-entropy over real tokens, real tokens, correct real tokens), in float64 numpy."""
    logits = np.asarray(logits, np.float64)
    real = target != PAD_ID
    top = logits.max(-1, keepdims=True)
    log_probs = logits - top - np.log(np.exp(logits - top).sum(-1, keepdims=True))
    nll = -np.take_along_axis(log_probs, target[..., None], -1)[..., 0]
    return nll[real].sum(), real.sum(), ((logits.argmax(-1) == target) & real).sum()


def test_masked_token_loss_equals_numpy_when_padded_positions_predict_padding(rng):
    """Padded positions whose argmax is PAD (= their target) must not count as correct,
    and their logits must change none of the three numbers."""
    target = np.array([[5, 6, 3, 0, 0], [7, 3, 0, 0, 0]])
    logits = rng.normal(size=(2, 5, 10)).astype("float32")
    logits[0, 0, 5] = logits[1, 1, 3] = 10.0  # two correct real tokens
    logits[0, 1, 2] = logits[0, 2, 1] = logits[1, 0, 1] = 10.0  # three wrong ones
    logits[target == 0, 0] = 10.0  # every padded position predicts PAD
    got = [float(x) for x in masked_token_loss(target, logits)]
    expected = _numpy_statistics(target, logits)
    assert expected[1:] == (5, 2) and ((logits.argmax(-1) == target) & (target == 0)).sum() == 5
    assert got == pytest.approx(expected, rel=1e-6)
    changed = logits.copy()
    changed[target == 0] = rng.normal(size=(int((target == 0).sum()), 10)) * 100
    assert [float(x) for x in masked_token_loss(target, changed)] == pytest.approx(got, rel=1e-6)
    changed[0, 0, 0] += 50  # one logit at a real position, not a shift of the whole row
    assert float(masked_token_loss(target, changed)[0]) != pytest.approx(got[0])


def _padded_batch(src, tgt):
    """The tiny batch with two targets cut short: 7 padded positions in target_out."""
    t_ids = np.array(tgt(TINY_TARGET))
    t_ids[1, 3:] = [END_ID, 0, 0, 0]
    t_ids[3, 2:] = [END_ID, 0, 0, 0, 0]
    return src(TINY_SOURCE), t_ids[:, :-1], t_ids[:, 1:]


def test_evaluate_and_train_step_report_loss_and_token_accuracy_computed_with_numpy(tiny_processors):
    """A trained model whose PAD and END output columns are swapped predicts PAD after [END]:
    the padded positions' argmax equals their target, so counting them as correct would show."""
    src, tgt = tiny_processors
    s_ids, t_in, t_out = _padded_batch(src, tgt)
    keras.utils.set_random_seed(0)
    model = Seq2Seq(src, tgt, embedding_dim=8, encoder_units=8)
    model.compile(keras.optimizers.Adam(5e-2))
    model.fit((s_ids, t_in), t_out, epochs=8, verbose=0)
    output = model.decoder.output_layer
    for v in (output.kernel, output.bias):
        w = v.numpy()
        w[..., [PAD_ID, END_ID]] = w[..., [END_ID, PAD_ID]]
        v.assign(w)
    logits = np.asarray(model((s_ids, t_in)))
    real = t_out != PAD_ID
    predicted = logits.argmax(-1)
    assert (predicted[~real] == PAD_ID).all() and (~real).sum() == 7  # what the test relies on
    loss_sum, tokens, correct = _numpy_statistics(t_out, logits)
    assert 0 < correct < tokens
    result = model.evaluate((s_ids, t_in), t_out, verbose=0, return_dict=True)
    assert result["accuracy"] == pytest.approx(correct / tokens, rel=1e-6)
    assert result["loss"] == pytest.approx(loss_sum / tokens, rel=1e-5)
    # train_step reports the batch's numbers before its update (no dropout: the same logits).
    result = model.train_on_batch((s_ids, t_in), t_out, return_dict=True)
    assert result["accuracy"] == pytest.approx(correct / tokens, rel=1e-6)
    assert result["loss"] == pytest.approx(loss_sum / tokens, rel=1e-5)


def test_compile_refuses_a_loss():
    src = __import__("seq2seq_keras").TextProcessor().adapt(["a"])
    tgt = __import__("seq2seq_keras").TextProcessor(add_start_end=True).adapt(["b"])
    with pytest.raises(ValueError, match="own padding-masked loss"):
        Seq2Seq(src, tgt, encoder_units=4).compile(loss="mse")


@pytest.mark.parametrize("attention", ["bahdanau", None])
def test_keras_round_trip_gives_identical_outputs(attention, tiny_processors, tmp_path):
    src, tgt = tiny_processors
    model = Seq2Seq(src, tgt, embedding_dim=8, encoder_units=6, attention=attention, rnn="lstm")
    model.compile(keras.optimizers.Adam(1e-2))
    s_ids, t_in, t_out = _batch(src, tgt)
    model.fit((s_ids, t_in), t_out, epochs=2, verbose=0)
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    assert isinstance(loaded, Seq2Seq)
    a, b = loaded.get_config(), model.get_config()
    for side in ("source_text", "target_text"):
        assert a.pop(side)["config"] == b.pop(side)["config"]
    assert a == b
    np.testing.assert_array_equal(loaded((s_ids, t_in)), model((s_ids, t_in)))
    assert loaded.optimizer.iterations.numpy() == model.optimizer.iterations.numpy() == 2
    a, b = model.translate(TINY_SOURCE), loaded.translate(TINY_SOURCE)
    assert [x.text for x in a] == [x.text for x in b]


def test_decoder_get_config_from_config():
    dec = Decoder(30, 8, 12, attention="luong-general", rnn="lstm", dropout=0.1)
    clone = Decoder.from_config(dec.get_config())
    assert clone.get_config() == dec.get_config()
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(dec))
    assert isinstance(restored, Decoder) and restored.attention_type == "luong-general"


def test_bad_settings_explain_themselves(tiny_processors):
    src, tgt = tiny_processors
    with pytest.raises(ValueError, match="choose one of"):
        Seq2Seq(src, tgt, attention="soft")
    with pytest.raises(ValueError, match="add_start_end"):
        Seq2Seq(src, src)
    with pytest.raises(ValueError, match="choose one of"):
        Encoder(10, rnn="transformer")


@pytest.mark.slow
def test_small_model_memorises_64_builtin_pairs():
    from seq2seq_keras import TextProcessor
    from seq2seq_keras.data.builtin_ko_en import generate_pairs

    keras.utils.set_random_seed(0)
    pairs = generate_pairs(64, seed=1)
    src_text = [p.source for p in pairs]
    tgt_text = [p.target for p in pairs]
    src = TextProcessor.for_language("ko").adapt(src_text)
    tgt = TextProcessor.for_language("en", add_start_end=True).adapt(tgt_text)
    s_ids, t_ids = src(src_text), tgt(tgt_text)
    model = Seq2Seq(src, tgt, embedding_dim=32, encoder_units=64)
    model.compile(keras.optimizers.Adam(1e-2, global_clipnorm=5.0))
    ds = tf.data.Dataset.from_tensor_slices(((s_ids, t_ids[:, :-1]), t_ids[:, 1:])).shuffle(64, seed=0).batch(16)
    history = model.fit(ds, epochs=40, verbose=0)
    result = model.evaluate(ds, verbose=0, return_dict=True)
    assert result["accuracy"] >= 0.95, history.history["accuracy"][-5:]
    assert model.translate(pairs[0].source).text == pairs[0].target.lower()


def test_fit_with_standard_callbacks_and_validation(tiny_processors, tmp_path):
    src, tgt = tiny_processors
    model = Seq2Seq(src, tgt, embedding_dim=8, encoder_units=8)
    model.compile(keras.optimizers.Adam(1e-2))
    s_ids, t_in, t_out = _batch(src, tgt)
    ds = tf.data.Dataset.from_tensor_slices(((s_ids, t_in), t_out)).batch(2)
    callbacks = [
        keras.callbacks.ModelCheckpoint(tmp_path / "best.keras", monitor="val_loss", save_best_only=True),
        keras.callbacks.EarlyStopping(monitor="val_loss", patience=50),
        keras.callbacks.TensorBoard(log_dir=tmp_path / "tb"),
        keras.callbacks.BackupAndRestore(backup_dir=tmp_path / "backup"),
    ]
    history = model.fit(ds, validation_data=ds, epochs=3, callbacks=callbacks, verbose=0)
    assert set(history.history) >= {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert len(history.history["loss"]) == 3
    assert history.history["loss"][-1] < history.history["loss"][0]
    best = keras.models.load_model(tmp_path / "best.keras")
    best_val = min(history.history["val_loss"])
    assert best.evaluate(ds, verbose=0, return_dict=True)["loss"] == pytest.approx(best_val, rel=1e-4)
    assert any((tmp_path / "tb").rglob("events.out.tfevents.*"))


def test_xla_padding_changes_neither_loss_nor_token_count(tiny_processors):
    src, tgt = tiny_processors
    model = Seq2Seq(src, tgt, embedding_dim=8, encoder_units=6)
    s_ids, t_ids = src(TINY_SOURCE[:3]), tgt(TINY_TARGET[:3])
    inputs, target_out = (s_ids, t_ids[:, :-1]), t_ids[:, 1:]
    (ps, pt), po = pad_batch_shapes(8, 5)(inputs, target_out)
    assert ps.shape == (5, 8) and pt.shape == (5, 8) and po.shape == (5, 8)
    np.testing.assert_array_equal(ps[:3, : s_ids.shape[1]], s_ids)
    a = [float(x) for x in masked_token_loss(target_out, model(inputs))]
    b = [float(x) for x in masked_token_loss(po, model((ps, pt)))]
    assert a[1] == b[1]  # real target tokens
    assert a[0] == pytest.approx(b[0], rel=1e-5)  # summed loss


def test_fit_with_jit_compile_runs_the_fused_loops_under_xla(tiny_processors):
    """``fit(jit_compile=True)`` through the fused encoder scan (hand-written gradient) and the
    input-feeding decoder's loop, on batches padded as ``train --jit-compile`` pads them (two
    all-padding rows): the same losses and weights as ``jit_compile=False`` from the same start."""
    src, tgt = tiny_processors
    s_ids, t_in, t_out = _padded_batch(src, tgt)
    pad = pad_batch_shapes(4, 3)  # lengths to a multiple of 4, 3 rows: the third is all padding
    b0, b1 = (pad((s_ids[i : i + 2], t_in[i : i + 2]), t_out[i : i + 2]) for i in (0, 2))
    batches = tf.data.Dataset.from_tensors(b0).concatenate(tf.data.Dataset.from_tensors(b1))
    runs = []
    for jit in (False, True):
        keras.utils.set_random_seed(0)
        model = Seq2Seq(
            src, tgt, embedding_dim=8, encoder_units=6, implementation="fused"
        )  # a GPU would pick Keras' GRU
        assert model.encoder.uses_fused_gru(training=True) and model.decoder.uses_fused_step()
        model.compile(keras.optimizers.Adam(1e-2), jit_compile=jit)
        history = model.fit(batches, epochs=2, shuffle=False, verbose=0)
        runs.append((history.history["loss"], model.get_weights()))
    (loss, weights), (xla_loss, xla_weights) = runs
    assert loss[-1] < loss[0]
    np.testing.assert_allclose(xla_loss, loss, rtol=1e-5)
    for a, b in zip(xla_weights, weights):
        np.testing.assert_allclose(a, b, atol=1e-5)


def test_encoder_units_is_the_encoders_width_per_direction_and_the_decoder_gets_twice_it(tiny_processors):
    """``encoder_units`` is the encoder's width per direction; the bidirectional encoder's output, and so
    the decoder's state, is twice that (what ``luong-dot`` needs to compare the two)."""
    src, tgt = tiny_processors
    model = Seq2Seq(src, tgt, embedding_dim=8, encoder_units=6)
    assert model.get_config()["encoder_units"] == 6 and "units" not in model.get_config()
    assert model.decoder.units == 12 and model.encoder_units == 6
    assert Seq2Seq.from_config(model.get_config()).encoder_units == 6


def test_fit_on_a_dataset_does_not_warn_about_shuffle(tiny_processors, monkeypatch):
    """Keras (3.14 and later) warns "`shuffle=True` was passed, but will be ignored" on every fit(dataset) left
    at its default; Seq2Seq.fit passes shuffle=False for a dataset (the pipeline shuffles), and a value the
    caller gives reaches Keras unchanged (recorded at keras.Model.fit, so this holds on every Keras version)."""
    import warnings

    src, tgt = tiny_processors
    model = Seq2Seq(src, tgt, embedding_dim=4, encoder_units=4)
    model.compile(keras.optimizers.Adam(1e-2))
    s_ids, t_in, t_out = _batch(src, tgt)
    ds = tf.data.Dataset.from_tensor_slices(((s_ids, t_in), t_out)).batch(2)
    given = []
    keras_fit = keras.Model.fit

    def recording_fit(self, *args, **kwargs):
        given.append(kwargs.get("shuffle", "default"))
        return keras_fit(self, *args, **kwargs)

    monkeypatch.setattr(keras.Model, "fit", recording_fit)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.fit(ds, validation_data=ds, epochs=1, verbose=0)
        assert not [w for w in caught if "shuffle" in str(w.message)], [str(w.message) for w in caught]
        model.fit(ds, epochs=1, verbose=0, shuffle=True)
        # y, batch_size, epochs, verbose, callbacks, validation_split, validation_data, shuffle: given by position
        model.fit(ds, None, None, 1, 0, None, 0.0, None, True)
    assert given == [False, True, "default"]


def test_label_smoothing_is_the_cross_entropy_against_the_smoothed_target_computed_by_hand():
    # One real token over a vocabulary of 3 and one padded one. Smoothed target for gold 1 with e = 0.1:
    # 0.1/3 on every word plus 0.9 on word 1, i.e. [1/30, 28/30, 1/30]; loss = -sum(q log p).
    target = np.array([[1, 0]])
    logits = np.array([[[2.0, 1.0, 0.0], [9.0, -9.0, 3.0]]], np.float32)
    log_p = np.log(np.exp([2.0, 1.0, 0.0]) / np.exp([2.0, 1.0, 0.0]).sum())
    expected = -(np.array([1 / 30, 28 / 30, 1 / 30]) * log_p).sum()
    loss, tokens, correct = (float(x) for x in masked_token_loss(target, logits, 0.1))
    assert loss == pytest.approx(expected, rel=1e-6) and (tokens, correct) == (1.0, 0.0)
    assert float(masked_token_loss(target, logits, 0.0)[0]) == pytest.approx(-log_p[1], rel=1e-6)


def test_label_smoothing_trains_validation_reports_plain_cross_entropy_and_a_saved_model_keeps_it(
    tiny_processors, tmp_path
):
    src, tgt = tiny_processors
    model = Seq2Seq(src, tgt, embedding_dim=8, encoder_units=6)
    with pytest.raises(ValueError, match="label_smoothing must be >= 0 and < 1"):
        model.compile(optimizer="adam", label_smoothing=1.0)
    model.compile(optimizer="adam", label_smoothing=0.2)
    s_ids, t_in, y = _batch(src, tgt)
    x = (s_ids, t_in)
    logits = model(x, training=False)
    smoothed = model._batch_statistics((x, y), training=True)  # no dropout here: same logits as training=False
    assert float(smoothed[0]) == pytest.approx(float(masked_token_loss(y, logits, 0.2)[0]), rel=1e-5)
    assert float(model._batch_statistics((x, y), training=False)[0]) == pytest.approx(
        float(masked_token_loss(y, logits)[0]), rel=1e-5
    )
    model.save(tmp_path / "m.keras")
    assert keras.saving.load_model(tmp_path / "m.keras").label_smoothing == 0.2
