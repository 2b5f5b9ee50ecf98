"""SavedModel export: layout and versions, models.config, signatures, the warm-up file replayed and bad input
through TF Serving's loader, random strings through the TF2 path. (check-servable: tests/serving/test_check.py.)"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from conftest import PRECISIONS, TINY_SOURCE
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_pipeline import tiny_run_dir, twelve_token_model

EXPECTED_OUTPUTS = {
    "serving_default": {"translation": (tf.string, 1)},
    "translate_with_attention": {
        "translation": (tf.string, 1),
        "source_tokens": (tf.string, 2),
        "target_tokens": (tf.string, 2),
        "source_length": (tf.int32, 1),
        "target_length": (tf.int32, 1),
        "attention": (tf.float32, 3),
        "log_prob": (tf.float32, 1),
        "replaced": (tf.int32, 2),
    },
}
EXPECTED_OUTPUTS["beam_search"] = dict(
    EXPECTED_OUTPUTS["translate_with_attention"],
    score=(tf.float32, 1),
    beams_translation=(tf.string, 2),
    beams_score=(tf.float32, 2),
    beams_count=(tf.int32, 1),
)
BAD_INPUTS = [
    "",
    "  \t ",
    "\x00\x01\x1f",
    b"\xff\xfe \xc3(",
    "😀 ሰላም ∑ 漢字",
    "나는\n학생이다",
    " ".join(["학생"] * 2000),
]


def exported_dir(tmp_path_factory, kind: str) -> Path:
    """Export the session's tiny model once; returns ``.../saved_models/tiny_<kind>/1``."""
    from seq2seq_keras.serving.export import export_model
    from seq2seq_keras.training import load_model

    base = tmp_path_factory.getbasetemp() / "seq2seq_exports"
    path = base / f"tiny_{kind}" / "1"
    if not (path / "saved_model.pb").exists():
        run = tiny_run_dir(tmp_path_factory, kind)
        export_model(load_model(run), f"tiny_{kind}", base, source_model=run)
    return path


def xla_exported_dir(tmp_path_factory, precision: str = "float32") -> Path:
    """The tiny word model trained under ``precision`` exported once per session with ``xla=True`` (plain and
    ``*_xla`` signatures; its run folder recorded as the source model)."""
    from seq2seq_keras.serving.export import export_model
    from seq2seq_keras.training import load_model

    base = tmp_path_factory.getbasetemp() / "seq2seq_exports_xla"
    name = "tiny_word_xla" if precision == "float32" else f"tiny_word_xla_{precision}"
    path = base / name / "1"
    if not (path / "saved_model.pb").exists():
        run = tiny_run_dir(tmp_path_factory, "word", precision)
        export_model(load_model(run), name, base, source_model=run, xla=True, warmup_texts=["warm up"])
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
    from seq2seq_keras.serving.tf_serving_loader import ServingSession, tf_text_op_libraries

    with ServingSession(word_export, op_libraries=tf_text_op_libraries()) as s:
        yield s


def _as_text(value):
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def assert_same_as_python(outputs: dict, translations, with_score=False):
    """SavedModel outputs (one batch) against Translations from the Python API (the reference), compared by
    the comparison check-servable ships (tests/serving/test_check.py shows it catches each kind of difference)."""
    from seq2seq_keras.serving.check import compare_with_translations

    differences = compare_with_translations(outputs, translations, with_score=with_score)
    assert differences.problems == []


def assert_beams_same_as_python(outputs: dict, translations):
    """beam_search's every-hypothesis outputs (one batch) against ``model.translate(..., n_best=k)``: per sentence
    ``beams_count`` real hypotheses, their texts and scores the best's and its alternatives', then ``""`` scored
    0.0 in the entries after them (never a placeholder's -1e9, nor -inf or NaN)."""
    texts, scores, counts = (np.asarray(outputs[name]) for name in ("beams_translation", "beams_score", "beams_count"))
    k = texts.shape[1]
    assert counts.dtype == np.int32 and scores.dtype == np.float32 and np.all(np.isfinite(scores))
    assert len(texts) == len(counts) == len(translations)
    for b, t in enumerate(translations):
        real, n = [t, *t.alternatives], int(counts[b])
        assert n == len(real) and 1 <= n <= k
        assert [_as_text(x) for x in texts[b][:n]] == [h.text for h in real]
        np.testing.assert_allclose(scores[b][:n], [h.score for h in real], atol=1e-4)
        assert [_as_text(x) for x in texts[b][n:]] == [""] * (k - n) and scores[b][n:].tolist() == [0.0] * (k - n)


# ---------------------------------------------------------------------- layout, versions, config
def test_export_writes_numbered_versions_atomically_and_a_models_config(word_model, tmp_path, monkeypatch):
    from google.protobuf import text_format
    from tensorflow_serving.config import model_server_config_pb2

    from seq2seq_keras.serving import export as ex

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
    from seq2seq_keras.serving import export as ex

    def broken_save(module, path, **kwargs):
        (Path(path) / "saved_model.pb").write_bytes(b"half written")
        raise OSError("disk full")

    monkeypatch.setattr(tf.saved_model, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        ex.export_model(word_model, "tiny", tmp_path, warmup_texts=[])
    assert list((tmp_path / "tiny").iterdir()) == []
    assert not (tmp_path / "models.config").exists()


def test_export_settings_are_decoding_options_recorded_and_read_back_into_the_same_class():
    """ExportSettings is DecodingOptions plus beam_search's blocking: checked by the same fields, recorded as
    JSON, read back equal; each signature's options are DecodingOptions; a per-call option is refused."""
    import json

    from seq2seq_keras.decoding.options import DecodingOptions
    from seq2seq_keras.serving.export import ExportSettings

    settings = ExportSettings(
        beam_width=5,
        unk_dictionary={"b": "B", "a": "A"},
        block_ngram_repeat=2,
        beam_block_ngram_repeat=0,
        coverage_penalty=0.5,
    )
    assert settings.unk_dictionary == (("a", "A"), ("b", "B"))
    recorded = json.loads(json.dumps({"compute_dtype": "float32", **settings.exported()}))
    assert ExportSettings.from_record(recorded) == settings
    greedy, beam = settings.signature_options("greedy"), settings.signature_options("beam")
    assert type(greedy) is DecodingOptions and (greedy.method, greedy.block_ngram_repeat) == ("greedy", 2)
    assert (beam.method, beam.beam_width, beam.block_ngram_repeat, beam.coverage_penalty) == ("beam", 5, 0, 0.5)
    with pytest.raises(ValueError, match="beam_width must be >= 1"):
        ExportSettings(beam_width=0)
    with pytest.raises(ValueError, match="temperature: not part of an export"):
        ExportSettings(temperature=0.5)


def test_models_config_covers_only_folders_with_a_saved_model(tmp_path):
    from google.protobuf import text_format
    from tensorflow_serving.config import model_server_config_pb2

    from seq2seq_keras.serving.export import models_config_text

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

    from seq2seq_keras.serving.export import WARMUP_FILE
    from seq2seq_keras.serving.signatures import SIGNATURES

    records = list(tf.data.TFRecordDataset(str(word_export / "assets.extra" / WARMUP_FILE)).as_numpy_iterator())
    logs = [prediction_log_pb2.PredictionLog.FromString(r) for r in records]
    assert [log.predict_log.request.model_spec.signature_name for log in logs] == list(SIGNATURES)
    for log in logs:
        texts = tf.make_ndarray(log.predict_log.request.inputs["text"])
        out = session.run(log.predict_log.request.model_spec.signature_name, {"text": texts})
        assert out["translation"].shape[0] == len(texts) == 2


# ---------------------------------------------------------------------- bad input and random strings
def test_bad_input_through_tf_servings_loader(session):
    from seq2seq_keras.decoding.options import DEFAULT_MAX_LENGTH, DEFAULT_MAX_SOURCE_LENGTH
    from seq2seq_keras.serving.tf_serving_loader import ServingLoaderError

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
    st.lists(st.sampled_from(["나는", "학생이다", "😀", "\x00", " ", ".", "\u0301", "ß", "İ"]), max_size=12).map(
        "".join
    ),
)


@settings(max_examples=15, deadline=None, derandomize=True, database=None, suppress_health_check=list(HealthCheck))
@given(st.lists(_random_text, min_size=150, max_size=250))
def test_random_strings_through_the_exported_signature(loaded, batch):
    """About 3,000 random strings (any Unicode, any bytes): shapes agree with the batch, results are well formed."""
    raw = [s.encode("utf-8", "surrogatepass") if isinstance(s, str) else s for s in batch]
    out = {
        k: v.numpy() for k, v in loaded.signatures["translate_with_attention"](text=tf.constant(raw, tf.string)).items()
    }
    n = len(raw)
    assert all(v.shape[0] == n for v in out.values())
    s_len, t_len, attention = out["source_length"], out["target_length"], out["attention"]
    assert np.all((0 <= s_len) & (s_len <= 256)) and np.all((0 <= t_len) & (t_len <= np.minimum(100, 2 * s_len + 10)))
    assert np.all((t_len == 0) == (s_len == 0))
    for b in range(n):
        rows = attention[b, : t_len[b], : s_len[b]]
        np.testing.assert_allclose(rows.sum(-1), 1.0, atol=1e-4)
        assert not np.any(attention[b, t_len[b] :]) and not np.any(attention[b, :, s_len[b] :])
        for value in [out["translation"][b], *out["target_tokens"][b], *out["source_tokens"][b]]:
            value.decode("utf-8")  # valid UTF-8 everywhere: the REST API can carry it
        assert all(x == b"" for x in out["target_tokens"][b][t_len[b] :])
        assert all(x == b"" for x in out["source_tokens"][b][s_len[b] :])
    assert np.all(np.isfinite(out["log_prob"])) and np.all(out["log_prob"] <= 0)


# ---------------------------------------------------------------------- n-best outputs
def test_beam_search_signature_says_which_hypotheses_are_real(session, word_model, tmp_path):
    """Through TF Serving's loader: ``beams_count`` and the empty entries agree with
    ``model.translate(..., n_best=k)``, for empty sources (1 hypothesis of 4) and for a 12-token vocabulary
    exported with beam width 12 and max_length 1 (10 hypotheses of 12)."""
    from seq2seq_keras.decoding.pipeline import translate
    from seq2seq_keras.serving.export import ExportSettings, export_model
    from seq2seq_keras.serving.tf_serving_loader import ServingSession, tf_text_op_libraries

    batch = ["", TINY_SOURCE[0], "   ", TINY_SOURCE[1]]
    text = {"text": np.array([s.encode() for s in batch], dtype=object)}
    out = session.run("beam_search", text)
    assert out["beams_score"][[0, 2], 1:].tolist() == [[0.0] * 3] * 2  # the empty sources' placeholders
    assert out["beams_count"].tolist() == [1, 4, 1, 4]
    assert_beams_same_as_python(out, translate(word_model, batch, method="beam", beam_width=4, n_best=4))

    model = twelve_token_model()
    path = export_model(
        model,
        "twelve",
        tmp_path,
        settings=ExportSettings(beam_width=12, max_length=1),
        warmup_texts=[],
        write_config=False,
    )
    with ServingSession(path, op_libraries=tf_text_op_libraries()) as twelve:
        out = twelve.run("beam_search", text)
    assert out["beams_score"][[1, 3], 10:].tolist() == [[0.0] * 2] * 2 and out["beams_score"].min() > -50
    assert out["beams_count"].tolist() == [1, 10, 1, 10]
    beam = translate(model, batch, method="beam", beam_width=12, n_best=12, max_length=1)
    assert_beams_same_as_python(out, beam)
    assert_same_as_python(out, beam, with_score=True)


# ---------------------------------------------------------------------- real-world decoding options
def test_unk_replacement_and_ngram_blocking_through_tf_servings_loader(tmp_path_factory, tmp_path):
    """Forced decoders exported with the options baked in (n-gram blocking, GNMT coverage penalty in the
    beam signature): TF Serving's loader gives the Python results."""
    from test_pipeline import forced_model

    from seq2seq_keras.decoding.pipeline import translate
    from seq2seq_keras.serving.export import ExportSettings, export_model
    from seq2seq_keras.serving.tf_serving_loader import ServingSession, tf_text_op_libraries

    run = tiny_run_dir(tmp_path_factory, "word")
    batch = ["그는 홍길동 사과를 먹는다 .", "우리는 책을 읽었다.", "", "나는 학생이다"]
    cases = [
        (
            "unk",
            forced_model(run, "[UNK]"),
            ExportSettings(unk_dictionary={"그는": "HE"}),
            dict(unk_dictionary={"그는": "HE"}),
        ),
        ("unk_off", forced_model(run, "[UNK]"), ExportSettings(replace_unk=False), dict(replace_unk=False)),
        (
            "loop",
            forced_model(run, "the", boost=8.0),
            ExportSettings(block_ngram_repeat=2, beam_block_ngram_repeat=3, coverage_penalty=0.5),
            dict(block_ngram_repeat=2),
        ),
    ]
    for name, model, baked, options in cases:
        path = export_model(model, name, tmp_path, settings=baked, warmup_texts=[], write_config=False)
        greedy = translate(model, batch, **options)
        beam_options = dict(
            options, block_ngram_repeat=baked.beam_block_ngram_repeat, coverage_penalty=baked.coverage_penalty
        )
        beam = translate(model, batch, method="beam", n_best=4, **beam_options)
        with ServingSession(path, op_libraries=tf_text_op_libraries()) as session:
            text = {"text": np.array([s.encode() for s in batch], dtype=object)}
            assert_same_as_python(session.run("translate_with_attention", text), greedy)
            assert_same_as_python(session.run("beam_search", text), beam, with_score=True)
            assert [_as_text(t) for t in session.run("serving_default", text)["translation"]] == [
                t.text for t in greedy
            ]
        if name == "unk":
            assert all(greedy[0].replaced) and "HE" in greedy[0].target_tokens and "그는" not in greedy[0].target_tokens
        if name == "unk_off":
            assert "[UNK]" in greedy[0].text and not any(greedy[0].replaced)
        if name == "loop":
            tokens = greedy[1].target_tokens
            assert len(set(zip(tokens, tokens[1:]))) == len(tokens) - 1  # no bigram twice


# ---------------------------------------------------------------------- XLA-compiled signatures (export --xla)
XLA_SENTENCES = list(TINY_SOURCE) + ["", "나는 " * 12 + "학생이다.", "그는 의사이다. 너는 학생이다."]


@pytest.fixture(scope="module")
def xla_export(tmp_path_factory):
    return xla_exported_dir(tmp_path_factory)


def test_xla_signatures_match_the_plain_ones_through_tf_servings_loader(xla_export, word_model):
    """``export(..., xla=True)`` adds serving_default_xla and translate_with_attention_xla next to the
    unchanged plain signatures; through TF Serving's loader (the C API session, XLA:CPU on as with
    --xla_cpu_compilation_enabled=true) they return the same tokens and text, attention within 1e-5,
    for batches that cross source-length buckets (8, 16) and batch buckets (1, 2, 4, 8), empty included,
    and the same as the Python API."""
    import json

    from seq2seq_keras.serving.export import SETTINGS_FILE
    from seq2seq_keras.serving.signatures import XLA_SIGNATURES
    from seq2seq_keras.serving.tf_serving_loader import ServingSession, tf_text_op_libraries

    recorded = json.loads((xla_export / "assets.extra" / SETTINGS_FILE).read_text())
    assert recorded["signatures"][-2:] == list(XLA_SIGNATURES)
    with ServingSession(xla_export, op_libraries=tf_text_op_libraries()) as s:
        assert set(XLA_SIGNATURES) | {"serving_default", "translate_with_attention", "beam_search"} <= set(s.signatures)
        for batch in (XLA_SENTENCES[:1], XLA_SENTENCES[:3], XLA_SENTENCES, XLA_SENTENCES[4:6], [], [""]):
            text = {"text": np.array(batch, dtype=object)}
            plain, compiled = s.run("translate_with_attention", text), s.run("translate_with_attention_xla", text)
            assert set(plain) == set(compiled)
            for name, value in plain.items():
                assert compiled[name].shape == value.shape and compiled[name].dtype == value.dtype, name
                if value.dtype.kind == "f":
                    np.testing.assert_allclose(compiled[name], value, rtol=1e-5, atol=1e-5, err_msg=name)
                else:
                    np.testing.assert_array_equal(compiled[name], value, err_msg=name)
            np.testing.assert_array_equal(s.run("serving_default_xla", text)["translation"], plain["translation"])
            if batch:
                assert_same_as_python(compiled, word_model.translate(batch))


def test_without_xla_compilation_the_xla_signatures_fail_and_the_plain_ones_work(xla_export):
    """What TF Serving does without --xla_cpu_compilation_enabled: it calls
    tensorflow::DisableXlaCompilation() (tensorflow_serving/model_servers/main.cc), exported by the same
    libtensorflow_cc the loader uses. The version loads, the plain signatures answer, every *_xla
    request of up to MAX_COMPILED_BATCH sentences fails with "XLA compilation disabled" (larger batches run
    the plain loop: the next test). In a fresh process: the switch is global."""
    import subprocess
    import sys

    script = (
        "import ctypes, sys, numpy as np\n"
        "from seq2seq_keras.serving.tf_serving_loader import ServingSession, tf_text_op_libraries, tensorflow_library_dir\n"
        "ctypes.CDLL(str(tensorflow_library_dir() / 'libtensorflow_cc.so.2'))._ZN10tensorflow21DisableXlaCompilationEv()\n"
        "s = ServingSession(sys.argv[1], op_libraries=tf_text_op_libraries())\n"
        "text = {'text': np.array(['나는 학생이다.'], dtype=object)}\n"
        "print('plain', s.run('serving_default', text)['translation'][0].decode())\n"
        "try:\n    s.run('serving_default_xla', text)\nexcept Exception as e:\n    print('xla failed:', e)\n"
    )
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    out = subprocess.run(
        [sys.executable, "-c", script, str(xla_export)], capture_output=True, text=True, env=env, timeout=300
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert "plain " in out.stdout and "xla failed:" in out.stdout and "XLA compilation disabled" in out.stdout


def test_xla_export_refuses_ngram_blocking(word_model, tmp_path):
    from seq2seq_keras.serving.export import ExportSettings, export_model

    with pytest.raises(ValueError, match="block-ngram-repeat 0"):
        export_model(word_model, "tiny", tmp_path, settings=ExportSettings(block_ngram_repeat=2), xla=True)
    assert not any((tmp_path / "tiny").glob("[0-9]*"))


def test_source_buckets_keep_compilations_few():
    from seq2seq_keras.decoding.xla_greedy import source_bucket

    got = {n: int(source_bucket(n, 256)) for n in (0, 1, 7, 8, 9, 16, 17, 100, 129, 256)}
    assert got == {0: 8, 1: 8, 7: 8, 8: 8, 9: 16, 16: 16, 17: 32, 100: 128, 129: 256, 256: 256}
    assert int(source_bucket(40, 40)) == 40 and int(source_bucket(5, 6)) == 6


def test_compiled_greedy_search_runs_big_batches_uncompiled_with_the_same_outputs(word_model):
    """Batches above ``max_compiled_batch`` take search.greedy_search's plain loop (XLA:CPU's matmul is
    slower there); both sides of the split give greedy_search's tokens and lengths, floats to rounding."""
    import tensorflow as tf

    from seq2seq_keras.decoding.pipeline import encode_source
    from seq2seq_keras.decoding.search import greedy_search
    from seq2seq_keras.decoding.xla_greedy import MAX_COMPILED_BATCH, compiled_greedy_search

    assert MAX_COMPILED_BATCH == 32
    with pytest.raises(ValueError, match="max_compiled_batch"):
        compiled_greedy_search(word_model, 20, 64, max_compiled_batch=0)
    search = compiled_greedy_search(word_model, 20, 64, max_compiled_batch=2)
    run = tf.function(lambda ids: search(word_model, ids, tf.constant(20), tf.constant(0)))
    for batch in (XLA_SENTENCES[:1], XLA_SENTENCES[:2], XLA_SENTENCES[:3], XLA_SENTENCES):
        ids = encode_source(word_model, tf.constant(batch), 64)[0]
        got, want = run(ids), greedy_search(word_model, ids, tf.constant(20), 0)
        for name in ("tokens", "length"):
            np.testing.assert_array_equal(got[name].numpy(), want[name].numpy(), err_msg=f"{name}, batch {len(batch)}")
        for name in ("log_prob", "attention"):  # graph vs eager: float rounding, as the signature parity test
            np.testing.assert_allclose(got[name].numpy(), want[name].numpy(), rtol=1e-5, atol=1e-5, err_msg=name)


def test_xla_signatures_send_batches_above_32_to_the_plain_loop(xla_export):
    """Through TF Serving's loader with XLA compilation disabled (as test_without_xla_compilation_...):
    a batch of 32 still needs XLA and fails, a batch of 33 never reaches the compiled function and
    answers exactly as the plain signature (the tf.cond runs one branch only)."""
    import subprocess
    import sys

    script = (
        "import ctypes, sys, numpy as np\n"
        "from seq2seq_keras.serving.tf_serving_loader import ServingSession, tf_text_op_libraries, tensorflow_library_dir\n"
        "ctypes.CDLL(str(tensorflow_library_dir() / 'libtensorflow_cc.so.2'))._ZN10tensorflow21DisableXlaCompilationEv()\n"
        "s = ServingSession(sys.argv[1], op_libraries=tf_text_op_libraries())\n"
        f"pool = {XLA_SENTENCES!r} * 5\n"
        "for n in (33, 32):\n"
        "    text = {'text': np.array(pool[:n], dtype=object)}\n"
        "    try:\n"
        "        got = s.run('translate_with_attention_xla', text)\n"
        "    except Exception as e:\n"
        "        print(n, 'xla failed:', str(e)[:200]); continue\n"
        "    plain = s.run('translate_with_attention', text)\n"
        "    same = set(got) == set(plain) and all(np.array_equal(got[k], plain[k]) for k in plain)\n"
        "    print(n, 'answered, same as plain:', same)\n"
    )
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    out = subprocess.run(
        [sys.executable, "-c", script, str(xla_export)], capture_output=True, text=True, env=env, timeout=300
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert "33 answered, same as plain: True" in out.stdout, out.stdout
    assert "32 xla failed:" in out.stdout and "XLA compilation disabled" in out.stdout, out.stdout


# ---------------------------------------------------------------------- precision
@pytest.fixture(scope="module", params=PRECISIONS)
def precision_xla_export(request, tmp_path_factory):
    """``(export with the *_xla signatures, the model exported, its run folder)`` for a model trained under each
    of :data:`conftest.PRECISIONS`."""
    from seq2seq_keras.training import load_model

    run = tiny_run_dir(tmp_path_factory, "word", request.param)
    return xla_exported_dir(tmp_path_factory, request.param), load_model(run), run


def test_every_signature_computes_in_float32_whatever_the_training_precision(precision_xla_export):
    """A model trained in mixed_bfloat16 (``auto`` on AMX CPUs) exports float32 numerics: through TF Serving's
    loader every translating signature returns float32 attention whose rows sum to 1 within 1e-6 (bfloat16
    rows summed to 0.998-1.002), the XLA signatures give the plain ones' tokens (a bf16 export differed in 8 of
    101 sentences), and both equal the Python API on the same weights in float32."""
    import json

    from seq2seq_keras.serving.export import SETTINGS_FILE
    from seq2seq_keras.serving.tf_serving_loader import ServingSession, tf_text_op_libraries

    path, model, _ = precision_xla_export
    recorded = json.loads((path / "assets.extra" / SETTINGS_FILE).read_text())
    assert (recorded["compute_dtype"], recorded["training_dtype_policy"]) == ("float32", model.dtype_policy.name)
    reference = model.with_dtype_policy("float32")
    batch = XLA_SENTENCES[:4] + [""]
    text = {"text": np.array(batch, dtype=object)}
    with ServingSession(path, op_libraries=tf_text_op_libraries()) as s:
        outputs = {
            name: s.run(name, text)
            for name in ("translate_with_attention", "translate_with_attention_xla", "beam_search")
        }
        for name, out in outputs.items():
            attention = out["attention"]
            assert attention.dtype == np.float32, name
            for b, (n_target, n_source) in enumerate(zip(out["target_length"], out["source_length"])):
                rows = attention[b, :n_target, :n_source]
                if rows.size:
                    np.testing.assert_allclose(rows.sum(-1), 1.0, atol=1e-6, err_msg=f"{name} sentence {b}")
                assert not attention[b, n_target:].any() and not attention[b, :, n_source:].any(), name
        plain, compiled = outputs["translate_with_attention"], outputs["translate_with_attention_xla"]
        for key, value in plain.items():
            if value.dtype.kind == "f":
                np.testing.assert_allclose(compiled[key], value, rtol=1e-5, atol=1e-5, err_msg=key)
            else:
                np.testing.assert_array_equal(compiled[key], value, err_msg=key)
        np.testing.assert_array_equal(
            s.run("serving_default_xla", text)["translation"], s.run("serving_default", text)["translation"]
        )
    assert_same_as_python(plain, reference.translate(batch))
    assert_same_as_python(compiled, reference.translate(batch))


def test_check_servable_compares_every_signature_of_a_bf16_models_export_with_python(tmp_path_factory):
    """check-servable on a mixed_bfloat16 model's export: OK, with every signature (the *_xla ones included)
    identical to the Python API run, as the export is, in float32. (A float32 model's XLA export:
    tests/serving/test_check.py, the same check.)"""
    from test_check import _parity_lines

    from seq2seq_keras.serving.check import check_servable
    from seq2seq_keras.serving.signatures import SIGNATURE_METHODS

    path = xla_exported_dir(tmp_path_factory, "mixed_bfloat16")
    run = tiny_run_dir(tmp_path_factory, "word", "mixed_bfloat16")
    report = check_servable(path, model=run)
    assert report.ok, report.format()
    lines = _parity_lines(report)
    assert sorted(lines) == sorted(SIGNATURE_METHODS), report.format()
    assert all(" identical on " in line for line in lines.values()), report.format()


# ---------------------------------------------------------------------- version folders as TF Serving reads them
@pytest.mark.parametrize(
    "name, version",
    [
        ("7", 7),
        ("007", 7),
        (" 7 ", 7),
        ("+7", 7),
        ("-3", -3),
        ("0", 0),
        (str(2**63 - 1), 2**63 - 1),
        (str(2**63), None),
        ("7a", None),
        ("", None),
        ("latest", None),
        (".export-x1", None),
        ("٣", None),
        ("1.0", None),
    ],
)
def test_version_number_reads_a_folder_name_as_tf_serving_does(name, version):
    """TF Serving's ParseVersionNumber (strings::safe_strto64): an int64, optional sign and surrounding spaces."""
    from seq2seq_keras.serving.export import is_version_name, version_number

    assert version_number(name) == version and is_version_name(name) == (version is not None)


def test_version_folders_keep_the_real_folder_and_the_one_tf_serving_serves(word_model, tmp_path):
    from google.protobuf import text_format
    from tensorflow_serving.config import model_server_config_pb2

    from seq2seq_keras.serving import export as ex

    for folder in ("a/007", "a/3", "b/010", "c/7"):
        (tmp_path / folder).mkdir(parents=True)
        (tmp_path / folder / "saved_model.pb").write_bytes(b"")
    (tmp_path / "c" / "007").mkdir()  # same version as c/7: TF Serving keeps the last name in byte order, "7"
    config = text_format.Parse(ex.models_config_text(tmp_path), model_server_config_pb2.ModelServerConfig())
    assert [c.name for c in config.model_config_list.config] == ["a", "b", "c"]
    assert ex.exported_models(tmp_path) == {"a": [3, 7], "b": [10], "c": [7]}
    assert ex.model_versions(tmp_path / "a") == [3, 7] and ex.next_version(tmp_path / "a") == 8
    assert ex.version_folders(tmp_path / "a") == {3: tmp_path / "a" / "3", 7: tmp_path / "a" / "007"}
    assert ex.version_folders(tmp_path / "c") == {7: tmp_path / "c" / "7"}
    assert ex.duplicate_version_folders(tmp_path / "c") == {7: [tmp_path / "c" / "007"]}
    assert ex.duplicate_version_folders(tmp_path / "a") == {}
    with pytest.raises(FileExistsError, match=r"010 already exists as version 10"):
        ex.export_model(word_model, "b", tmp_path, version=10)
