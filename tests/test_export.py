"""SavedModel export: layout and versions, models.config, signatures, parity with the Python model in a
fresh process (no Keras, no seq2seq_keras), check-servable, bad input and random strings."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from test_decoding import sample_sentences, tiny_run_dir

EXPECTED_OUTPUTS = {
    "serving_default": {"translation": (tf.string, 1)},
    "translate_with_attention": {
        "translation": (tf.string, 1), "source_tokens": (tf.string, 2), "target_tokens": (tf.string, 2),
        "source_length": (tf.int32, 1), "target_length": (tf.int32, 1), "attention": (tf.float32, 3),
        "log_prob": (tf.float32, 1),
    },
}
EXPECTED_OUTPUTS["beam_search"] = dict(
    EXPECTED_OUTPUTS["translate_with_attention"],
    score=(tf.float32, 1), beams_translation=(tf.string, 2), beams_score=(tf.float32, 2),
)
BAD_INPUTS = ["", "  \t ", "\x00\x01\x1f", b"\xff\xfe \xc3(", "😀 ሰላም ∑ 漢字", "나는\n학생이다", " ".join(["학생"] * 2000)]


def exported_dir(tmp_path_factory, kind: str) -> Path:
    """Export the session's tiny model once; returns ``.../saved_models/tiny_<kind>/1``."""
    from seq2seq_keras.export import export_model
    from seq2seq_keras.training import load_model

    base = tmp_path_factory.getbasetemp() / "seq2seq_exports"
    path = base / f"tiny_{kind}" / "1"
    if not (path / "saved_model.pb").exists():
        run = tiny_run_dir(tmp_path_factory, kind)
        export_model(load_model(run), f"tiny_{kind}", base, source_model=run)
    return path


@pytest.fixture(scope="session")
def word_model(tmp_path_factory):
    from seq2seq_keras.training import load_model

    return load_model(tiny_run_dir(tmp_path_factory, "word"))


@pytest.fixture(scope="session")
def word_export(tmp_path_factory):
    return exported_dir(tmp_path_factory, "word")


@pytest.fixture(scope="session")
def loaded(word_export):
    """The word model's SavedModel reloaded in this process through the TF2 path (``tf.saved_model.load``)."""
    return tf.saved_model.load(str(word_export))


@pytest.fixture(scope="session")
def session(word_export):
    """The word model's SavedModel loaded by TF Serving's loader (C API), in this process."""
    from seq2seq_keras.serving_loader import ServingSession, tf_text_op_libraries

    with ServingSession(word_export, op_libraries=tf_text_op_libraries()) as s:
        yield s


def _as_text(value):
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def assert_same_as_python(outputs: dict, translations, with_score=False):
    """SavedModel outputs (one batch) against Translations from the Python API."""
    assert [_as_text(t) for t in outputs["translation"]] == [t.text for t in translations]
    for b, t in enumerate(translations):
        s, n = int(outputs["source_length"][b]), int(outputs["target_length"][b])
        assert (s, n) == (len(t.source_tokens), t.length)
        assert [_as_text(x) for x in outputs["source_tokens"][b][:s]] == t.source_tokens
        assert [_as_text(x) for x in outputs["target_tokens"][b][:n]] == t.target_tokens
        assert all(_as_text(x) == "" for x in outputs["target_tokens"][b][n:])  # padding marked by the lengths
        np.testing.assert_allclose(outputs["attention"][b][:n, :s], t.attention, atol=1e-5)
        assert not np.any(outputs["attention"][b][n:]) and not np.any(outputs["attention"][b][:, s:])
        assert outputs["log_prob"][b] == pytest.approx(t.log_prob, abs=1e-4)
        if with_score:
            assert outputs["score"][b] == pytest.approx(t.score, abs=1e-4)


# ---------------------------------------------------------------------- layout, versions, config
def test_export_writes_numbered_versions_atomically_and_a_models_config(word_model, tmp_path, monkeypatch):
    from google.protobuf import text_format
    from tensorflow_serving.config import model_server_config_pb2

    from seq2seq_keras import export as ex

    base = tmp_path / "saved_models"
    renames = []
    real_rename = os.rename

    def spy(src, dst):
        # At the moment of the rename the version folder is complete and TF Serving saw only non-numeric names.
        siblings = sorted(p.name for p in Path(src).parent.iterdir())
        renames.append((Path(src).name, Path(dst).name, (Path(src) / "saved_model.pb").is_file(), siblings))
        return real_rename(src, dst)

    monkeypatch.setattr(ex.os, "rename", spy)
    first = ex.export_model(word_model, "tiny", base, warmup_texts=[])
    second = ex.export_model(word_model, "tiny", base, warmup_texts=[])
    assert (first.name, second.name) == ("1", "2")
    # Exactly one rename per export, from a hidden temporary folder to the version number.
    assert [(src.startswith(".export-"), dst) for src, dst, *_ in renames] == [(True, "1"), (True, "2")]
    for src, dst, complete, siblings in renames:
        assert src.startswith(".export-") and not src.isdigit() and complete
        assert [s for s in siblings if s.isdigit()] == ([] if dst == "1" else ["1"])
    assert sorted(p.name for p in (base / "tiny").iterdir()) == ["1", "2"]  # no temporary folder left
    ex.export_model(word_model, "other", base, version=7, warmup_texts=[], serving_root="/srv/models/")

    config = text_format.Parse((base / "models.config").read_text(), model_server_config_pb2.ModelServerConfig())
    entries = {c.name: (c.base_path, c.model_platform) for c in config.model_config_list.config}
    assert entries == {"other": ("/srv/models/other", "tensorflow"), "tiny": ("/srv/models/tiny", "tensorflow")}

    with pytest.raises(FileExistsError, match="already exists"):
        ex.export_model(word_model, "tiny", base, version=2)
    with pytest.raises(ValueError, match="Model name"):
        ex.export_model(word_model, "../escape", base)


def test_a_failed_export_leaves_no_version_behind(word_model, tmp_path, monkeypatch):
    from seq2seq_keras import export as ex

    def broken_save(module, path, **kwargs):
        (Path(path) / "saved_model.pb").write_bytes(b"half written")
        raise OSError("disk full")

    monkeypatch.setattr(tf.saved_model, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        ex.export_model(word_model, "tiny", tmp_path, warmup_texts=[])
    assert list((tmp_path / "tiny").iterdir()) == []
    assert not (tmp_path / "models.config").exists()


def test_models_config_covers_only_folders_with_a_saved_model(tmp_path):
    from google.protobuf import text_format
    from tensorflow_serving.config import model_server_config_pb2

    from seq2seq_keras.export import models_config_text

    (tmp_path / "a" / "3").mkdir(parents=True)
    (tmp_path / "a" / "3" / "saved_model.pb").write_bytes(b"")
    (tmp_path / "empty" / "1").mkdir(parents=True)
    (tmp_path / "b" / ".export-x").mkdir(parents=True)
    text = models_config_text(tmp_path)
    config = text_format.Parse(text, model_server_config_pb2.ModelServerConfig())
    assert [(c.name, c.base_path) for c in config.model_config_list.config] == [("a", "/models/a")]
    empty = text_format.Parse(models_config_text(tmp_path / "nothing"), model_server_config_pb2.ModelServerConfig())
    assert len(empty.model_config_list.config) == 0


# ---------------------------------------------------------------------- signatures
def test_signatures_are_dense_batch_major_and_named(loaded):
    assert set(loaded.signatures) == set(EXPECTED_OUTPUTS)
    for name, expected in EXPECTED_OUTPUTS.items():
        fn = loaded.signatures[name]
        (spec,) = fn.structured_input_signature[1].values()
        assert spec.dtype == tf.string and spec.shape.as_list() == [None]
        outputs = fn.structured_outputs
        assert {k: (v.dtype, v.shape.rank) for k, v in outputs.items()} == expected
        assert all(v.shape[0] is None for v in outputs.values())


def test_warmup_requests_replay_through_tf_servings_loader(word_export, session):
    from tensorflow_serving.apis import prediction_log_pb2

    from seq2seq_keras.export import SIGNATURES, WARMUP_FILE

    records = list(tf.data.TFRecordDataset(str(word_export / "assets.extra" / WARMUP_FILE)).as_numpy_iterator())
    logs = [prediction_log_pb2.PredictionLog.FromString(r) for r in records]
    assert [log.predict_log.request.model_spec.signature_name for log in logs] == list(SIGNATURES)
    for log in logs:
        texts = tf.make_ndarray(log.predict_log.request.inputs["text"])
        out = session.run(log.predict_log.request.model_spec.signature_name, {"text": texts})
        assert out["translation"].shape[0] == len(texts) == 2


# ---------------------------------------------------------------------- parity in a fresh process
@pytest.mark.parametrize("kind", ["word", "subword"])
def test_fresh_process_gives_the_python_results_for_every_signature(tmp_path_factory, kind):
    from seq2seq_keras.decoding import translate
    from seq2seq_keras.servable import run_servable_fresh
    from seq2seq_keras.training import load_model

    model = load_model(tiny_run_dir(tmp_path_factory, kind))
    path = exported_dir(tmp_path_factory, kind)
    batch = sample_sentences(12) + BAD_INPUTS
    report = run_servable_fresh(path, [(sig, sig, batch) for sig in EXPECTED_OUTPUTS] + [("empty", "beam_search", [])])
    assert report["problems"] == [] and report["modules_leaked"] == []
    expected_text_ops = ["NormalizeUTF8"] + (["WordpieceTokenizeWithOffsets"] if kind == "subword" else [])
    assert report["ops"]["tf_text"] == expected_text_ops and report["ops"]["unknown"] == []

    greedy = translate(model, batch)
    # TF Serving's loader (C API LoadSavedModel + Session::Run) gives the Python results...
    out = {key[len("session:"):]: value for key, value in report["outputs"].items() if key.startswith("session:")}
    assert sorted(out) == sorted(list(EXPECTED_OUTPUTS) + ["empty"])
    assert [_as_text(t) for t in out["serving_default"]["translation"]] == [t.text for t in greedy]
    assert_same_as_python(out["translate_with_attention"], greedy)
    beam = translate(model, batch, method="beam", beam_width=4, length_penalty=0.6, n_best=4)
    assert_same_as_python(out["beam_search"], beam, with_score=True)
    for b, t in enumerate(beam):
        assert [_as_text(x) for x in out["beam_search"]["beams_translation"][b]] == [t.text] + [a.text for a in t.alternatives]
        np.testing.assert_allclose(out["beam_search"]["beams_score"][b], [t.score] + [a.score for a in t.alternatives], atol=1e-4)
    assert {k: v.shape[0] for k, v in out["empty"].items()} == {k: 0 for k in EXPECTED_OUTPUTS["beam_search"]}
    # ...and so does the TF2 path (tf.saved_model.load) on the same calls.
    tf2 = {key[len("tf2:"):]: value for key, value in report["outputs"].items() if key.startswith("tf2:")}
    assert sorted(tf2) == sorted(out)
    assert_same_as_python(tf2["beam_search"], beam, with_score=True)


# ---------------------------------------------------------------------- check-servable
def test_check_servable_accepts_the_export(word_export):
    from seq2seq_keras.servable import check_servable

    report = check_servable(word_export)
    assert report.ok, report.format()
    text = report.format()
    assert "signatures: beam_search, serving_default, translate_with_attention" in text
    assert "tensorflow-text: NormalizeUTF8" in text and "no keras, no seq2seq_keras" in text
    assert ("session path (C API TF_LoadSessionFromSavedModel + TF_SessionRun, the loader TF Serving runs): "
            "serving_default, translate_with_attention, beam_search ran for batches of [0, 1, 4]") in text
    assert "warm-up: 3 PredictionLog request(s) replayed through the session" in text
    assert "session path vs TF2 path: 9 calls compared, tokens identical" in text
    # The run folder recorded at export is the Python reference.
    assert re.search(r"parity with the Python API \(.*seq2seq_tiny_runs/word\): translate_with_attention, beam_search, "
                     r"serving_default on 4 sentences; tokens identical", text), text
    assert text.endswith("OK: servable by TensorFlow Serving")
    # A model folder means its latest version, as the server would pick.
    assert check_servable(word_export.parent, smoke=False).path == str(word_export)


class _Unservable(tf.Module):
    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
    def serving_default(self, text):
        n = tf.shape(text)[0]
        python = tf.py_function(lambda x: x * 2, [tf.cast(n, tf.float32)], tf.float32)
        return {"half": tf.zeros([n], tf.float16), "python": python, "fixed": tf.zeros([3, n])}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
    def ragged(self, text):
        return {"words": tf.strings.split(text)}


def test_check_servable_names_every_problem(tmp_path):
    from seq2seq_keras.servable import check_servable

    module = _Unservable()
    path = tmp_path / "bad" / "1"
    tf.saved_model.save(module, str(path), signatures={"serving_default": module.serving_default,
                                                       "translate_with_attention": module.ragged})
    report = check_servable(path)
    assert not report.ok
    problems = "\n".join(report.problems)
    for expected in (
        "serving_default/half is float16",
        "serving_default/fixed has a fixed dimension 0 (3)",
        "serving_default/python has unknown rank",
        "translate_with_attention/words is composite_tensor (not dense)",
        "Python ops in the graph (TF Serving cannot run them): ['EagerPyFunc']",
        "serving_default fails when called through tf.saved_model.load",
        "serving_default fails in TF Serving's loader (C API Session::Run)",
        "translate_with_attention/words is a RaggedTensor",
    ):
        assert expected in problems, problems
    odd = tmp_path / "bad" / "latest"
    path.rename(odd)
    assert any("not a version number" in p for p in check_servable(odd, smoke=False).problems)
    assert "no saved_model.pb" in check_servable(tmp_path, smoke=False).problems[0]


def test_check_servable_rejects_keras_layers_in_a_tf_module_saved_with_tf_saved_model_save(word_model, tmp_path):
    """The broken way (tensorflow/serving#2226, keras-team/keras#19274): a ``tf.Module`` holding Keras 3 layers,
    saved with ``tf.saved_model.save``. ``tf.saved_model.load`` runs it; TF Serving's loader cannot find the
    variables, and check-servable must say so, naming one."""
    from seq2seq_keras.decoding import translate_graph
    from seq2seq_keras.servable import check_servable

    class Translator(tf.Module):
        def __init__(self):
            super().__init__()
            self.encoder, self.decoder = word_model.encoder, word_model.decoder
            self.tables = [word_model.source_text._lookup_table, word_model.target_text._lookup_table]

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
        def serving_default(self, text):
            return {"translation": translate_graph(word_model, text, tf.constant(20))["translation"]}

    module = Translator()
    path = tmp_path / "broken" / "1"
    tf.saved_model.save(module, str(path), signatures={"serving_default": module.serving_default,
                                                       "translate_with_attention": module.serving_default})
    report = check_servable(path, model=word_model)
    assert not report.ok
    assert "TF2 path (tf.saved_model.load): serving_default, translate_with_attention ran" in report.facts
    problems = "\n".join(report.problems)
    for signature in ("serving_default", "translate_with_attention"):
        assert re.search(rf"{signature} fails in TF Serving's loader \(C API Session::Run\): .*"
                         r"Could not find variable (encoder|decoder)/\S+", problems), problems


def _cli(*args, timeout=600):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    return subprocess.run([sys.executable, "-m", "seq2seq_keras.cli", *map(str, args)], capture_output=True,
                          text=True, timeout=timeout, env=env)


@pytest.mark.slow
def test_cli_export_and_check_servable(tmp_path_factory, tmp_path):
    run = tiny_run_dir(tmp_path_factory, "word")
    base = tmp_path / "saved_models"
    proc = _cli("export", "--model", run, "--name", "cli", "--base-dir", base, "--beam-width", 2, "--max-length", 12)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert f"to {base / 'cli' / '1'}" in proc.stdout
    loaded = tf.saved_model.load(str(base / "cli" / "1"))
    out = loaded.signatures["beam_search"](text=tf.constant(["나는 학생이다 " * 20]))
    assert out["beams_translation"].shape == (1, 2) and int(out["target_length"][0]) <= 12

    proc = _cli("check-servable", base / "cli" / "1")
    assert proc.returncode == 0 and "OK: servable" in proc.stdout, proc.stdout + proc.stderr[-2000:]
    again = _cli("export", "--model", run, "--name", "cli", "--base-dir", base, "--version", 1)
    assert again.returncode == 2 and "already exists" in again.stderr
    missing = _cli("export", "--model", tmp_path / "nothing", "--name", "x", "--base-dir", base)
    assert missing.returncode == 2 and "No trained model" in missing.stderr


@pytest.mark.slow
def test_cli_check_servable_exit_codes(tmp_path):
    assert _cli("check-servable", tmp_path / "missing").returncode == 2
    module = _Unservable()
    tf.saved_model.save(module, str(tmp_path / "1"), signatures={"serving_default": module.serving_default})
    proc = _cli("check-servable", "--no-smoke", tmp_path / "1")
    assert proc.returncode == 1
    assert "NOT SERVABLE" in proc.stdout and "serving_default/half is float16" in proc.stdout


# ---------------------------------------------------------------------- bad input and random strings
def test_bad_input_through_tf_servings_loader(session):
    from seq2seq_keras.decoding import DEFAULT_MAX_LENGTH, DEFAULT_MAX_SOURCE_LENGTH
    from seq2seq_keras.serving_loader import ServingLoaderError

    def run(name, texts):
        return session.run(name, {"text": np.array(texts, dtype=object).reshape(-1)})

    for name in EXPECTED_OUTPUTS:
        out = run(name, [s.encode() if isinstance(s, str) else s for s in BAD_INPUTS])
        assert {k: v.shape[0] for k, v in out.items()} == {k: len(BAD_INPUTS) for k in EXPECTED_OUTPUTS[name]}
        assert [t.decode() for t in out["translation"][:3]] == ["", "", ""]
        if name != "serving_default":
            assert out["target_length"][:3].tolist() == [0, 0, 0]
            assert out["source_length"].tolist()[-1] == DEFAULT_MAX_SOURCE_LENGTH
            assert out["target_length"].max() <= DEFAULT_MAX_LENGTH
            assert out["source_tokens"][3][0].decode() == "\ufffd\ufffd"
        empty = run(name, [])
        assert all(v.shape[0] == 0 for v in empty.values())
        many = run(name, ["나는 학생이다"] * 1000)
        assert all(v.shape[0] == 1000 for v in many.values())
        assert len(set(many["translation"].tolist())) == 1
    with pytest.raises(ServingLoaderError, match="TF_SessionRun"):
        session.run("serving_default", {"text": np.array([["two", "dimensions"]], dtype=object)})
    with pytest.raises(ServingLoaderError, match="takes inputs"):
        session.run("serving_default", {"sentences": np.array(["x"], dtype=object)})


_random_text = st.one_of(
    st.text(max_size=40),
    st.binary(max_size=40),
    st.lists(st.sampled_from(["나는", "학생이다", "😀", "\x00", " ", ".", "\u0301", "ß", "İ"]), max_size=12).map("".join),
)


@settings(max_examples=15, deadline=None, derandomize=True, database=None, suppress_health_check=list(HealthCheck))
@given(st.lists(_random_text, min_size=150, max_size=250))
def test_random_strings_through_the_exported_signature(loaded, batch):
    """About 3,000 random strings (any Unicode, any bytes): shapes agree with the batch, results are well formed."""
    raw = [s.encode("utf-8", "surrogatepass") if isinstance(s, str) else s for s in batch]
    out = {k: v.numpy() for k, v in loaded.signatures["translate_with_attention"](text=tf.constant(raw, tf.string)).items()}
    n = len(raw)
    assert all(v.shape[0] == n for v in out.values())
    s_len, t_len, attention = out["source_length"], out["target_length"], out["attention"]
    assert np.all((0 <= s_len) & (s_len <= 256)) and np.all((0 <= t_len) & (t_len <= np.minimum(100, 2 * s_len + 10)))
    assert np.all((t_len == 0) == (s_len == 0))
    for b in range(n):
        rows = attention[b, : t_len[b], : s_len[b]]
        np.testing.assert_allclose(rows.sum(-1), 1.0, atol=1e-4)
        assert not np.any(attention[b, t_len[b]:]) and not np.any(attention[b, :, s_len[b]:])
        for value in [out["translation"][b], *out["target_tokens"][b], *out["source_tokens"][b]]:
            value.decode("utf-8")  # valid UTF-8 everywhere: the REST API can carry it
        assert all(x == b"" for x in out["target_tokens"][b][t_len[b]:])
        assert all(x == b"" for x in out["source_tokens"][b][s_len[b]:])
    assert np.all(np.isfinite(out["log_prob"])) and np.all(out["log_prob"] <= 0)
