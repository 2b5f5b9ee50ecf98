"""check-servable and the fresh-process program: the export proven through TensorFlow Serving's own loader
(C API ``TF_LoadSessionFromSavedModel`` + ``TF_SessionRun``), the warm-up replayed, the TF2 path compared, parity
with the Python model; every problem named; the broken way (Keras 3 layers in a ``tf.Module`` saved with
``tf.saved_model.save``) rejected; timing through the same loader."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from test_export import (  # noqa: F401  (fixtures)
    BAD_INPUTS,
    EXPECTED_OUTPUTS,
    _as_text,
    assert_beams_same_as_python,
    assert_same_as_python,
    exported_dir,
    word_export,
    word_model,
    xla_exported_dir,
)
from test_pipeline import sample_sentences, tiny_run_dir


# ---------------------------------------------------------------------- parity in a fresh process
@pytest.mark.parametrize("kind", ["word", "subword"])
def test_fresh_process_gives_the_python_results_for_every_signature(tmp_path_factory, kind):
    from seq2seq_keras.decoding.pipeline import translate
    from seq2seq_keras.serving.check import run_servable_fresh
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
    out = {key[len("session:") :]: value for key, value in report["outputs"].items() if key.startswith("session:")}
    assert sorted(out) == sorted(list(EXPECTED_OUTPUTS) + ["empty"])
    assert [_as_text(t) for t in out["serving_default"]["translation"]] == [t.text for t in greedy]
    assert_same_as_python(out["translate_with_attention"], greedy)
    beam = translate(model, batch, method="beam", beam_width=4, length_penalty=0.6, n_best=4)
    assert_same_as_python(out["beam_search"], beam, with_score=True)
    assert_beams_same_as_python(out["beam_search"], beam)
    assert {k: v.shape[0] for k, v in out["empty"].items()} == {k: 0 for k in EXPECTED_OUTPUTS["beam_search"]}
    # ...and so does the TF2 path (tf.saved_model.load) on the same calls.
    tf2 = {key[len("tf2:") :]: value for key, value in report["outputs"].items() if key.startswith("tf2:")}
    assert sorted(tf2) == sorted(out)
    assert_same_as_python(tf2["beam_search"], beam, with_score=True)


# ---------------------------------------------------------------------- the shipped parity comparison
def _hand_made_outputs():
    """One sentence as TF Serving returns it (padded to 3 source and 4 target positions) and the Translation
    the Python API would give for it, written out by hand."""
    from seq2seq_keras import Translation

    attention = np.array([[0.75, 0.25], [0.5, 0.5], [0.125, 0.875]], np.float32)
    expected = Translation(
        source="나는 학생",
        text="i am",
        source_tokens=["나는", "학생"],
        target_tokens=["i", "am", "[END]"],
        attention=attention,
        log_prob=-1.5,
        score=-1.25,
        replaced=[False, True, False],
    )
    padded = np.zeros([1, 4, 3], np.float32)
    padded[0, :3, :2] = attention
    outputs = {
        "translation": np.array([b"i am"], object),
        "source_tokens": np.array([["나는".encode(), "학생".encode(), b""]], object),
        "source_length": np.array([2], np.int32),
        "target_tokens": np.array([[b"i", b"am", b"[END]", b""]], object),
        "target_length": np.array([3], np.int32),
        "attention": padded,
        "log_prob": np.array([-1.5], np.float32),
        "score": np.array([-1.25], np.float32),
        "replaced": np.array([[False, True, False, False]]),
    }
    return outputs, [expected]


def _changed(outputs, name, index, value):
    changed = {k: v.copy() for k, v in outputs.items()}
    changed[name][index] = value
    return changed


@pytest.mark.parametrize(
    "name, index, value, expected",
    [
        ("translation", 0, b"i was", "translation 'i was' vs 'i am'"),
        ("source_length", 0, 1, "(source_length, target_length) (1, 3) vs (2, 3)"),
        ("source_tokens", (0, 1), "학교".encode(), "source_tokens ['나는', '학교'] vs ['나는', '학생']"),
        ("target_tokens", (0, 1), b"are", "target_tokens ['i', 'are', '[END]'] vs ['i', 'am', '[END]']"),
        ("target_tokens", (0, 3), b"x", "not empty padding"),
        ("replaced", (0, 1), False, "replaced"),
        ("replaced", (0, 3), True, "replaced"),
        ("attention", (0, 1, 0), 0.5 + 2e-5, "attention differs by 2e-05 (> 1e-05)"),
        ("attention", (0, 3, 0), 0.1, "attention is not 0 outside [:3, :2]"),
        ("attention", (0, 0, 2), 0.1, "attention is not 0 outside [:3, :2]"),
        ("log_prob", 0, -1.5 - 2e-4, "log_prob differs by 0.0002 (> 0.0001)"),
    ],
)
def test_parity_comparison_names_each_kind_of_difference(name, index, value, expected):
    """``compare_with_translations`` (check-servable's parity, and the tests' ``assert_same_as_python``):
    hand-made outputs equal to a hand-made Translation pass; each single change is named."""
    from seq2seq_keras.serving.check import compare_with_translations

    outputs, translations = _hand_made_outputs()
    assert compare_with_translations(outputs, translations, with_score=True).problems == []
    problems = compare_with_translations(_changed(outputs, name, index, value), translations).problems
    assert len(problems) == 1 and expected in problems[0], problems


def test_parity_comparison_tolerances_score_and_missing_outputs():
    from seq2seq_keras.serving.check import compare_with_translations

    outputs, translations = _hand_made_outputs()
    close = compare_with_translations(_changed(outputs, "attention", (0, 2, 1), 0.875 + 5e-6), translations)
    assert close.problems == [] and close.max_attention == pytest.approx(5e-6, rel=0.1)
    off_score = _changed(outputs, "score", 0, -1.0)
    assert compare_with_translations(off_score, translations).problems == []  # score only with with_score
    assert compare_with_translations(off_score, translations, with_score=True).problems == [
        "score differs by 0.25 (> 0.0001)"
    ]
    assert compare_with_translations({k: v for k, v in outputs.items() if k != "log_prob"}, translations).problems == [
        "outputs ['log_prob'] are missing"
    ]
    assert compare_with_translations(outputs, translations * 2).problems == ["1 translations for 2 sentences"]
    without_replaced = {k: v for k, v in outputs.items() if k != "replaced"}
    assert compare_with_translations(without_replaced, translations).problems == ["outputs ['replaced'] are missing"]


# ---------------------------------------------------------------------- check-servable
def test_check_servable_accepts_the_export(word_export):
    from seq2seq_keras.serving.check import check_servable

    report = check_servable(word_export)
    assert report.ok, report.format()
    text = report.format()
    assert "signatures: beam_search, serving_default, translate_with_attention" in text
    assert "tensorflow-text: NormalizeUTF8" in text and "no keras, no seq2seq_keras" in text
    assert (
        "session path (C API TF_LoadSessionFromSavedModel + TF_SessionRun, the loader TF Serving runs): "
        "serving_default, translate_with_attention, beam_search ran for batches of [0, 1, 4]"
    ) in text
    assert "warm-up: 3 PredictionLog request(s) replayed through the session" in text
    assert "session path vs TF2 path: 9 calls compared, tokens identical" in text
    # The run folder recorded at export is the Python reference.
    assert re.search(r"parity with the Python API \(.*seq2seq_tiny_runs/word\), every translating signature", text), (
        text
    )
    assert "  translate_with_attention (greedy): identical on 5 sentences; outputs attention, log_prob, " in text
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
    from seq2seq_keras.serving.check import check_servable

    module = _Unservable()
    path = tmp_path / "bad" / "1"
    tf.saved_model.save(
        module,
        str(path),
        signatures={"serving_default": module.serving_default, "translate_with_attention": module.ragged},
    )
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
    from seq2seq_keras.decoding.pipeline import translate_graph
    from seq2seq_keras.serving.check import check_servable

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
    tf.saved_model.save(
        module,
        str(path),
        signatures={"serving_default": module.serving_default, "translate_with_attention": module.serving_default},
    )
    report = check_servable(path, model=word_model)
    assert not report.ok
    assert "TF2 path (tf.saved_model.load): serving_default, translate_with_attention ran" in report.facts
    problems = "\n".join(report.problems)
    for signature in ("serving_default", "translate_with_attention"):
        assert re.search(
            rf"{signature} fails in TF Serving's loader \(C API Session::Run\): .*"
            r"Could not find variable (encoder|decoder)/\S+",
            problems,
        ), problems


def _cli(*args, timeout=600):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    return subprocess.run(
        [sys.executable, "-m", "seq2seq_keras.cli.commands", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )


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
def test_cli_export_bakes_in_the_real_world_options_and_check_servable_compares_with_them(tmp_path_factory, tmp_path):
    """--no-replace-unk, --unk-dictionary and n-gram blocking go into the graph and the settings file;
    check-servable's parity with model.translate uses them (a forced-[UNK] model makes it visible)."""
    import json

    from test_pipeline import forced_model

    model = tmp_path / "unk.keras"
    forced_model(tiny_run_dir(tmp_path_factory, "word"), "[UNK]").save(model)
    (tmp_path / "dict.tsv").write_text("그는\tHE\n")
    base = tmp_path / "saved_models"
    proc = _cli(
        "export",
        "--model",
        model,
        "--name",
        "opts",
        "--base-dir",
        base,
        "--unk-dictionary",
        tmp_path / "dict.tsv",
        "--block-ngram-repeat",
        2,
        "--beam-block-ngram-repeat",
        3,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    settings = json.loads((base / "opts" / "1" / "assets.extra" / "seq2seq_keras_export.json").read_text())
    assert (settings["replace_unk"], settings["unk_dictionary"]) == (True, [["그는", "HE"]])
    assert (settings["block_ngram_repeat"], settings["beam_block_ngram_repeat"]) == (2, 3)
    proc = _cli("check-servable", base / "opts" / "1")
    assert proc.returncode == 0 and "OK: servable" in proc.stdout, proc.stdout + proc.stderr[-2000:]
    proc = _cli("export", "--model", model, "--name", "off", "--base-dir", base, "--no-replace-unk")
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = tf.saved_model.load(str(base / "off" / "1")).signatures["translate_with_attention"](
        text=tf.constant(["그는 사과를 먹는다"])
    )
    assert out["translation"].numpy()[0].decode().startswith("[UNK] [UNK]") and not out["replaced"].numpy().any()
    bad = _cli("export", "--model", model, "--name", "bad", "--base-dir", base, "--block-ngram-repeat", -1)
    assert bad.returncode == 2 and "--block-ngram-repeat must be >= 0" in bad.stderr


@pytest.mark.slow
def test_cli_check_servable_exit_codes(tmp_path):
    assert _cli("check-servable", tmp_path / "missing").returncode == 2
    module = _Unservable()
    tf.saved_model.save(module, str(tmp_path / "1"), signatures={"serving_default": module.serving_default})
    proc = _cli("check-servable", "--no-smoke", tmp_path / "1")
    assert proc.returncode == 1
    assert "NOT SERVABLE" in proc.stdout and "serving_default/half is float16" in proc.stdout


# ---------------------------------------------------------------------- timing
@pytest.mark.parametrize("loader", ["session", "tf2"])
def test_benchmark_servable_times_each_signature_through_the_chosen_loader(word_export, loader):
    from seq2seq_keras.serving.check import benchmark_servable

    timings = benchmark_servable(
        word_export,
        sample_sentences(8),
        signatures=("serving_default", "beam_search"),
        loader=loader,
        calls=3,
        batch_size=4,
        batch_calls=2,
        warmup=1,
    )
    assert set(timings) == {"serving_default", "beam_search"}
    for t in timings.values():
        assert 0 < t["latency_median_ms"] <= t["latency_p90_ms"] and t["sentences_per_second"] > 0
    with pytest.raises(ValueError, match="loader='grpc'"):
        benchmark_servable(word_export, ["x"], loader="grpc")
    with pytest.raises(ValueError, match="needs sentences"):
        benchmark_servable(word_export, [])


# ---------------------------------------------------------------------- every signature against Python
def transformer_exported_dir(tmp_path_factory):
    """A tiny Transformer (2 layers, 2 heads, random weights: every head attends differently) saved as
    ``.keras`` and exported once per session; its ``translate_with_attention`` has ``attention_heads``."""
    import keras
    from conftest import TINY_SOURCE, TINY_TARGET

    from seq2seq_keras import Seq2Seq, TextProcessor
    from seq2seq_keras.serving.export import export_model

    base = tmp_path_factory.getbasetemp() / "seq2seq_exports_transformer"
    path, saved = base / "tiny_transformer" / "1", base / "tiny_transformer.keras"
    if not (path / "saved_model.pb").exists():
        src = TextProcessor.for_language("ko").adapt(TINY_SOURCE)
        tgt = TextProcessor.for_language("en", add_start_end=True).adapt(TINY_TARGET)
        keras.utils.set_random_seed(0)
        model = Seq2Seq(src, tgt, architecture="transformer", num_layers=2, num_heads=2, model_dim=8, ff_dim=16)
        model.translate("나는 학생이다.")  # builds the weights
        rng = np.random.default_rng(2)
        for v in model.encoder.weights + model.decoder.weights:
            v.assign(rng.normal(0.0, 0.5, v.shape).astype(v.dtype))
        base.mkdir(parents=True, exist_ok=True)
        model.save(saved)
        export_model(model, "tiny_transformer", base, source_model=saved, warmup_texts=["warm up"])
    return path


@pytest.fixture(scope="module")
def xla_export(tmp_path_factory):
    return xla_exported_dir(tmp_path_factory)


@pytest.fixture(scope="module")
def transformer_export(tmp_path_factory):
    return transformer_exported_dir(tmp_path_factory)


def _parity_lines(report):
    start = next(i for i, f in enumerate(report.facts) if f.startswith("parity with the Python API"))
    return {f.split(" (")[0].strip(): f.strip() for f in report.facts[start + 1 :] if f.startswith("  ")}


def test_check_servable_compares_every_signature_of_an_xla_export_with_python(xla_export):
    from seq2seq_keras.serving.check import check_servable

    report = check_servable(xla_export)
    assert report.ok, report.format()
    lines = _parity_lines(report)
    assert sorted(lines) == sorted(
        [
            "serving_default",
            "translate_with_attention",
            "beam_search",
            "serving_default_xla",
            "translate_with_attention_xla",
        ]
    ), report.format()
    assert lines["translate_with_attention_xla"].startswith(
        "translate_with_attention_xla (greedy): identical on 5 sentences; outputs attention, log_prob, replaced, "
        "source_length, source_tokens, target_length, target_tokens, translation; max |difference| attention"
    )
    assert lines["serving_default_xla"] == "serving_default_xla (greedy): identical on 5 sentences; outputs translation"
    assert "beams_count, beams_score, beams_translation" in lines["beam_search"]
    assert "not compared" not in lines["beam_search"]


def test_check_servable_compares_a_transformers_attention_heads_with_the_models_cross_attention(transformer_export):
    from seq2seq_keras.serving.check import check_servable

    report = check_servable(transformer_export)
    assert report.ok, report.format()
    line = _parity_lines(report)["translate_with_attention"]
    assert (
        "attention_heads" in line.split("; outputs ")[1] and "max |difference|" in line and "attention_heads " in line
    )


def _session_run(path):
    from seq2seq_keras.serving.tf_serving_loader import ServingSession, tf_text_op_libraries

    session = ServingSession(path, op_libraries=tf_text_op_libraries())
    return session, lambda signature, texts: session.run(signature, {"text": np.array(texts, dtype=object)})


@pytest.mark.parametrize(
    "signature, output, index, delta, expected",
    [
        ("translate_with_attention_xla", "attention", (0, 0, 0), 1e-3, "attention differs by 0.001"),
        ("translate_with_attention_xla", "target_tokens", (0, 0), None, "target_tokens"),
        ("serving_default_xla", "translation", 0, None, "translation 'changed' vs"),
        ("beam_search", "beams_score", (0, 1), 1e-2, "beams_score"),
        ("beam_search", "beams_translation", (0, 1), None, "beams_translation"),
        ("beam_search", "beams_count", 0, -1, "beams_count"),
    ],
)
def test_signature_parity_names_a_difference_in_any_signature(xla_export, signature, output, index, delta, expected):
    """The shared parity check (check-servable, make bench) compares each of these outputs: one changed value
    through the real loader's outputs is named for its signature, the other signatures stay identical."""
    from seq2seq_keras.serving.check import export_settings, signature_parity
    from seq2seq_keras.training import load_model

    session, run = _session_run(xla_export)

    def changed(sig, texts):
        out = run(sig, texts)
        if sig == signature:
            out[output] = out[output].copy()
            out[output][index] = b"changed" if delta is None else out[output][index] + delta
        return out

    settings = export_settings(xla_export)
    model = load_model(settings["source_model"])
    sentences = sample_sentences(3) + ["나는 학생이다"]
    signatures = [s for s in session.signatures if not s.startswith("__")]
    results = signature_parity(changed, signatures, model, settings, sentences, singles=1)
    assert sorted(results) == sorted(signatures)
    for sig, result in results.items():
        if sig == signature:
            assert len(result.problems) >= 1 and expected in result.problems[0], result.problems
        else:
            assert result.problems == [] and result.sentences == 5, (sig, result.problems)
    session.close()


def test_signature_parity_checks_attention_heads_head_by_head(transformer_export):
    """Swapping two heads keeps their mean (the ``attention`` output) but not the per-head weights: named."""
    from seq2seq_keras.serving.check import export_settings, signature_parity
    from seq2seq_keras.training import load_model

    session, run = _session_run(transformer_export)
    settings = export_settings(transformer_export)
    model = load_model(settings["source_model"])

    def swapped(sig, texts):
        out = run(sig, texts)
        out["attention_heads"] = out["attention_heads"][:, :, ::-1].copy()
        return out

    sentences = ["나는 학생이다.", "그는 사과를 먹는다.", ""]
    fine = signature_parity(run, ["translate_with_attention"], model, settings, sentences)["translate_with_attention"]
    assert fine.problems == [] and fine.max_heads < 1e-5 and "attention_heads" in fine.compared
    wrong = signature_parity(swapped, ["translate_with_attention"], model, settings, sentences)
    assert [p for p in wrong["translate_with_attention"].problems if "attention_heads differs" in p], wrong
    session.close()


def test_bench_parity_runs_the_package_check(xla_export):
    """benchmarks/parity.py returns what signature_parity found, signature by signature."""
    from benchmarks.parity import check_parity
    from seq2seq_keras.serving.check import export_settings
    from seq2seq_keras.training import load_model

    model = load_model(export_settings(xla_export)["source_model"])
    out = check_parity(str(xla_export), model, sample_sentences(4), singles=2)
    assert set(out) == {
        "serving_default",
        "translate_with_attention",
        "beam_search",
        "serving_default_xla",
        "translate_with_attention_xla",
    }
    for signature, result in out.items():
        assert result["problems"] == [] and result["sentences"] == 6 and result["line"].startswith(signature + " (")


# ---------------------------------------------------------------------- damaged exports
def _damaged_copy(source, tmp_path, file, damage):
    import shutil

    path = tmp_path / "damaged" / "1"
    shutil.copytree(source, path)
    data = bytearray((path / file).read_bytes())
    (path / file).write_bytes(damage(data))
    return path


def _flip_middle_byte(data):
    data[len(data) // 2] ^= 0x55
    return bytes(data)


@pytest.mark.parametrize(
    "file, damage, expected",
    [
        ("saved_model.pb", lambda d: bytes(d[: len(d) // 2]), "saved_model.pb cannot be read"),
        (
            "assets.extra/tf_serving_warmup_requests",
            lambda d: bytes(d[: len(d) // 2]),
            "tf_serving_warmup_requests is damaged",
        ),
        ("assets.extra/tf_serving_warmup_requests", _flip_middle_byte, "tf_serving_warmup_requests is damaged"),
    ],
)
def test_check_servable_reports_a_damaged_export_in_one_line(word_export, word_model, tmp_path, file, damage, expected):
    from seq2seq_keras.serving.check import check_servable

    report = check_servable(_damaged_copy(word_export, tmp_path, file, damage), model=word_model)
    assert not report.ok
    assert len(report.problems) == 1 and expected in report.problems[0], report.problems
    assert "\n" not in report.problems[0] and "export the model again" in report.problems[0]
    assert "NOT SERVABLE: 1 problem(s)" in report.format()


@pytest.mark.slow
@pytest.mark.parametrize(
    "file, damage, expected",
    [
        ("saved_model.pb", lambda d: bytes(d[: len(d) // 2]), "saved_model.pb cannot be read"),
        ("assets.extra/tf_serving_warmup_requests", _flip_middle_byte, "tf_serving_warmup_requests is damaged"),
    ],
)
def test_cli_check_servable_on_a_damaged_export(word_export, tmp_path, file, damage, expected):
    proc = _cli("check-servable", _damaged_copy(word_export, tmp_path, file, damage))
    assert proc.returncode == 1, proc.stderr[-2000:]
    problems = proc.stdout.split("NOT SERVABLE: 1 problem(s)\n")[1].splitlines()
    assert len(problems) == 1 and expected in problems[0] and "export the model again" in problems[0], proc.stdout
    assert "Traceback" not in proc.stderr


# ---------------------------------------------------------------------- version folders as TF Serving reads them
def test_check_servable_finds_and_names_version_folders_as_tf_serving_parses_them(word_export, tmp_path):
    import shutil

    from seq2seq_keras.serving.check import check_servable

    shutil.copytree(word_export, tmp_path / "m" / "007")
    report = check_servable(tmp_path / "m", smoke=False)  # the model folder: its latest version, folder 007
    assert report.ok and report.path == str(tmp_path / "m" / "007"), report.format()
    shutil.copytree(word_export, tmp_path / "m" / "7")
    shadowed = check_servable(tmp_path / "m" / "007", smoke=False)
    assert (
        not shadowed.ok
        and "TF Serving serves version 7 from the folder '7' and ignores this one ('007')" in shadowed.problems[0]
    )
    served = check_servable(tmp_path / "m", smoke=False)
    assert served.ok and served.path == str(tmp_path / "m" / "7")
    assert "version 7: served from '7'; TF Serving ignores ['007'] (same version)" in served.facts
