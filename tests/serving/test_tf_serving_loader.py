"""TF Serving's loader through TensorFlow's C API: strings and numbers in and out of ``TF_SessionRun`` exactly,
wrong input refused, and the Keras 3 control from tensorflow/serving#2226 (a ``tf.Module`` holding a Keras
layer fails there; the same layer through ``keras.export.ExportArchive`` runs)."""

from __future__ import annotations

import functools

import keras
import numpy as np
import pytest
import tensorflow as tf

from seq2seq_keras.serving.tf_serving_loader import ServingLoaderError, ServingSession


class _Echo(tf.Module):
    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
    def strings(self, text):
        return {
            "same": tf.identity(text),
            "length": tf.strings.length(text),
            "pairs": tf.stack([text, tf.strings.upper(text)], axis=1),
        }

    @tf.function(input_signature=[tf.TensorSpec([None, 2], tf.int32, name="x")])
    def numbers(self, x):
        return {
            "half": tf.cast(x, tf.float32) / 2,
            "sum": tf.reduce_sum(x, axis=1),
            "big": tf.cast(x, tf.int64) * 2**40,
        }


def save_echo(path):
    """Save :class:`_Echo` at ``path`` with signatures ``serving_default`` (strings) and ``numbers``."""
    module = _Echo()
    tf.saved_model.save(module, str(path), signatures={"serving_default": module.strings, "numbers": module.numbers})
    return path


@pytest.fixture(scope="module")
def echo(tmp_path_factory):
    with ServingSession(save_echo(tmp_path_factory.mktemp("echo") / "1")) as session:
        yield session


def test_strings_of_every_size_and_bytes_pass_through_tf_tstring_exactly(echo):
    texts = ["", "a", "x" * 22, "y" * 23, "나는 학생이다 " * 40, b"\xff\xfe raw", "\x00 nul"]
    out = echo.run("serving_default", {"text": np.array(texts, dtype=object)})
    expected = [t if isinstance(t, bytes) else t.encode() for t in texts]
    assert out["same"].tolist() == expected
    assert out["length"].dtype == np.int32 and out["length"].tolist() == [len(e) for e in expected]
    assert out["pairs"].shape == (len(texts), 2) and out["pairs"][:, 1].tolist() == [e.upper() for e in expected]
    empty = echo.run("serving_default", {"text": np.array([], dtype=object)})
    assert {k: v.shape for k, v in empty.items()} == {"same": (0,), "length": (0,), "pairs": (0, 2)}


def test_numbers_keep_their_dtype_and_values(echo):
    out = echo.run("numbers", {"x": np.array([[1, 2], [3, -5]], dtype=np.int32)})
    assert out["half"].dtype == np.float32 and out["half"].tolist() == [[0.5, 1.0], [1.5, -2.5]]
    assert out["sum"].tolist() == [3, -2]
    assert out["big"].dtype == np.int64 and out["big"].tolist() == [[2**40, 2**41], [3 * 2**40, -5 * 2**40]]
    assert sorted(echo.outputs("numbers")) == ["big", "half", "sum"] and echo.inputs("numbers") == {"x": 3}


def test_wrong_input_is_refused_with_what_was_wrong(echo):
    with pytest.raises(TypeError, match="str or bytes items, got int"):
        echo.run("serving_default", {"text": np.array([5], dtype=object)})
    with pytest.raises(TypeError, match="dtype float64 where the signature expects int32"):
        echo.run("numbers", {"x": np.array([[1.7, 2.0]])})
    with pytest.raises(ServingLoaderError, match=r"takes inputs \['text'\], got \['words'\]"):
        echo.run("serving_default", {"words": np.array(["a"], dtype=object)})
    with pytest.raises(ServingLoaderError, match="no signature 'missing'"):
        echo.run("missing", {"text": np.array(["a"], dtype=object)})
    with pytest.raises(ServingLoaderError, match="TF_SessionRun"):  # wrong rank: TensorFlow's own message
        echo.run("numbers", {"x": np.array([1, 2], dtype=np.int32)})


def test_a_folder_that_is_not_a_savedmodel_is_refused(tmp_path):
    with pytest.raises(ServingLoaderError, match="TF_LoadSessionFromSavedModel"):
        ServingSession(tmp_path)


def test_keras_layers_in_a_tf_module_fail_where_the_export_archive_runs(tmp_path):
    """The 5-line control of tensorflow/serving#2226: same layer, two ways of saving it."""
    dense = keras.layers.Dense(2, kernel_initializer="ones")
    dense.build((None, 3))
    spec = [tf.TensorSpec([None, 3], tf.float32, name="x")]

    class Module(tf.Module):
        def __init__(self):
            super().__init__()
            self.dense = dense

        @tf.function(input_signature=spec)
        def serve(self, x):
            return {"y": self.dense(x)}

    module = Module()
    tf.saved_model.save(module, str(tmp_path / "module"), signatures={"serving_default": module.serve})
    assert tf.saved_model.load(str(tmp_path / "module")).signatures["serving_default"](x=tf.ones([1, 3]))[
        "y"
    ].shape == (1, 2)
    with ServingSession(tmp_path / "module") as session:
        with pytest.raises(ServingLoaderError, match="Could not find variable"):
            session.run("serving_default", {"x": np.ones([1, 3], np.float32)})

    archive = keras.export.ExportArchive()
    archive.track(dense)
    archive.add_endpoint("serving_default", lambda x: {"y": dense(x)}, input_signature=spec)
    archive.write_out(str(tmp_path / "archive"), verbose=False)
    with ServingSession(tmp_path / "archive") as session:
        np.testing.assert_array_equal(
            session.run("serving_default", {"x": np.ones([1, 3], np.float32)})["y"], [[3.0, 3.0]]
        )


def test_the_fresh_process_files_import_neither_keras_nor_this_package():
    """check-servable runs ``check_program.py`` by path with ``python -I -S`` (a path without Keras or
    seq2seq_keras), and that file loads its sibling ``tf_serving_loader.py`` by path: both may import only the
    standard library, NumPy and TensorFlow. (tests/serving/test_check.py runs the program and checks
    ``modules_leaked``.)"""
    import ast
    from pathlib import Path

    import seq2seq_keras.serving

    allowed = {
        "__future__",
        "base64",
        "ctypes",
        "importlib",
        "json",
        "os",
        "pathlib",
        "sys",
        "time",
        "numpy",
        "tensorflow",
        "tensorflow_serving",
    }
    folder = Path(seq2seq_keras.serving.__file__).parent
    for name in ("check_program.py", "tf_serving_loader.py"):
        imported = set()
        for node in ast.walk(ast.parse((folder / name).read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                imported.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level:  # only when imported as part of the package
                assert (name, node.module, node.level) == ("check_program.py", "tf_serving_loader", 1)
            elif isinstance(node, ast.ImportFrom):
                imported.add(node.module.split(".")[0])
        assert imported and imported <= allowed, (name, imported - allowed)
    program = (folder / "check_program.py").read_text(encoding="utf-8")
    assert 'with_name("check_program.py")' in (folder / "check.py").read_text(encoding="utf-8")
    assert '"tf_serving_loader.py"' in program and 'if __name__ == "__main__":' in program


# ---------------------------------------------------------------------- the timing loop (check-servable --benchmark)
def test_the_timing_plan_warms_each_key_then_times_singles_and_batches_interleaved():
    from seq2seq_keras.serving.tf_serving_loader import time_plan, timing_plan

    pool = [f"s{i}" for i in range(7)]
    plan = timing_plan(["a", "b"], pool, single=5, batches=3, batch_size=4, warmup=2)
    warm = [(key, tuple(request)) for phase, key, request in plan if phase == "warmup"]
    assert warm == [(k, r) for k in "ab" for r in (("s0",), ("s1",), ("s0", "s1", "s2", "s3"))]
    singles = [(key, tuple(request)) for phase, key, request in plan if phase == "single"]
    assert singles == [(k, (f"s{i}",)) for i in range(5) for k in "ab"]  # interleaved, sentence by sentence
    batches = [(key, request) for phase, key, request in plan if phase == "batch"]
    assert [k for k, _ in batches] == list("ababab") and batches[2][1] == ["s4", "s5", "s6", "s0"]
    assert [p for p, _, _ in plan] == ["warmup"] * 6 + ["single"] * 10 + ["batch"] * 6
    sent = []
    figures = time_plan({k: functools.partial(lambda key, r: sent.append((key, tuple(r))), k) for k in "ab"}, plan)
    assert sent == [(k, tuple(r)) for _, k, r in plan]
    for key in "ab":
        f = figures[key]
        assert (f["calls"], f["warmup_calls"]) == (5, 3) and f["latency_ms_p90"] >= f["latency_ms_median"] >= 0
        assert f["batch_sentences_per_s"] > 0 and f["first_call_ms"] >= 0
    with pytest.raises(ValueError, match="No sentences"):
        timing_plan(["a"], [])


def _write_warmup_file(folder, requests):
    """``assets.extra/tf_serving_warmup_requests`` in ``folder`` with ``(signature, inputs, output_filter)`` requests."""
    from tensorflow_serving.apis import predict_pb2, prediction_log_pb2

    path = folder / "assets.extra" / "tf_serving_warmup_requests"
    path.parent.mkdir(exist_ok=True)
    with tf.io.TFRecordWriter(str(path)) as writer:
        for signature, inputs, output_filter in requests:
            request = predict_pb2.PredictRequest(output_filter=output_filter)
            if signature:
                request.model_spec.signature_name = signature
            for name, value in inputs.items():
                request.inputs[name].CopyFrom(tf.make_tensor_proto(value))
            log = prediction_log_pb2.PredictionLog(predict_log=prediction_log_pb2.PredictLog(request=request))
            writer.write(log.SerializeToString())


def test_the_warm_up_file_is_replayed_as_tf_serving_does_and_a_bad_request_stops_the_load(tmp_path):
    pytest.importorskip("tensorflow_serving.apis", reason="tensorflow-serving-api (the serving extra) writes the file")
    folder = save_echo(tmp_path / "1")
    with ServingSession(folder) as session:
        assert session.run_warmup() == 0  # no file: nothing to replay
    good = [
        ("", {"text": np.array([b"a", b"bb"], dtype=object)}, []),  # no name: serving_default
        ("numbers", {"x": np.array([[1, 2]], dtype=np.int32)}, ["sum"]),
    ]
    _write_warmup_file(folder, good)
    with ServingSession(folder) as session:
        assert session.run_warmup() == 2
    _write_warmup_file(folder, [*good, ("numbers", {"y": np.array([[1]], dtype=np.int32)}, [])])
    with (
        ServingSession(folder) as session,
        pytest.raises(ServingLoaderError, match=r"takes inputs \['x'\], got \['y'\]"),
    ):
        session.run_warmup()
    _write_warmup_file(folder, [("numbers", {"x": np.array([[1]], dtype=np.int32)}, ["missing"])])
    with ServingSession(folder) as session, pytest.raises(ServingLoaderError, match="no output 'missing'"):
        session.run_warmup()
