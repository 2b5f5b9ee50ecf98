"""TF Serving's loader through TensorFlow's C API: strings and numbers in and out of ``TF_SessionRun`` exactly,
wrong input refused, and the Keras 3 control from tensorflow/serving#2226 (a ``tf.Module`` holding a Keras
layer fails there; the same layer through ``keras.export.ExportArchive`` runs)."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from seq2seq_keras.serving_loader import ServingLoaderError, ServingSession


class _Echo(tf.Module):
    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
    def strings(self, text):
        return {"same": tf.identity(text), "length": tf.strings.length(text),
                "pairs": tf.stack([text, tf.strings.upper(text)], axis=1)}

    @tf.function(input_signature=[tf.TensorSpec([None, 2], tf.int32, name="x")])
    def numbers(self, x):
        return {"half": tf.cast(x, tf.float32) / 2, "sum": tf.reduce_sum(x, axis=1), "big": tf.cast(x, tf.int64) * 2**40}


@pytest.fixture(scope="module")
def echo(tmp_path_factory):
    module = _Echo()
    path = tmp_path_factory.mktemp("echo") / "1"
    tf.saved_model.save(module, str(path), signatures={"serving_default": module.strings, "numbers": module.numbers})
    with ServingSession(path) as session:
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
    assert tf.saved_model.load(str(tmp_path / "module")).signatures["serving_default"](x=tf.ones([1, 3]))["y"].shape == (1, 2)
    with ServingSession(tmp_path / "module") as session:
        with pytest.raises(ServingLoaderError, match="Could not find variable"):
            session.run("serving_default", {"x": np.ones([1, 3], np.float32)})

    archive = keras.export.ExportArchive()
    archive.track(dense)
    archive.add_endpoint("serving_default", lambda x: {"y": dense(x)}, input_signature=spec)
    archive.write_out(str(tmp_path / "archive"), verbose=False)
    with ServingSession(tmp_path / "archive") as session:
        np.testing.assert_array_equal(session.run("serving_default", {"x": np.ones([1, 3], np.float32)})["y"], [[3.0, 3.0]])


def test_the_fresh_process_files_import_neither_keras_nor_this_package():
    """check-servable runs ``servable_program.py`` by path with ``python -I -S`` (a path without Keras or
    seq2seq_keras), and that file loads its sibling ``serving_loader.py`` by path: both may import only the
    standard library, NumPy and TensorFlow. (tests/test_servable.py runs the program and checks
    ``modules_leaked``.)"""
    import ast
    from pathlib import Path

    import seq2seq_keras

    allowed = {"__future__", "base64", "ctypes", "importlib", "json", "os", "pathlib", "sys", "time",
               "numpy", "tensorflow", "tensorflow_serving"}
    folder = Path(seq2seq_keras.__file__).parent
    for name in ("servable_program.py", "serving_loader.py"):
        imported = set()
        for node in ast.walk(ast.parse((folder / name).read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                imported.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level:  # only when imported as part of the package
                assert (name, node.module, node.level) == ("servable_program.py", "serving_loader", 1)
            elif isinstance(node, ast.ImportFrom):
                imported.add(node.module.split(".")[0])
        assert imported and imported <= allowed, (name, imported - allowed)
    program = (folder / "servable_program.py").read_text(encoding="utf-8")
    assert 'with_name("servable_program.py")' in (folder / "servable.py").read_text(encoding="utf-8")
    assert '"serving_loader.py"' in program and 'if __name__ == "__main__":' in program


# ---------------------------------------------------------------------- timing helpers (make bench's serving part)
def test_a_traced_run_returns_the_same_outputs_with_per_op_step_stats_and_the_graphs_run(echo):
    x = {"x": np.array([[1, 2], [3, -5]], dtype=np.int32)}
    out, metadata = echo.run_traced("numbers", x, partition_graphs=True)
    assert {k: v.tolist() for k, v in out.items()} == {k: v.tolist() for k, v in echo.run("numbers", x).items()}
    nodes = [n for d in metadata.step_stats.dev_stats for n in d.node_stats]
    ops = {n.timeline_label.split(" = ")[1].split("(")[0] for n in nodes if " = " in n.timeline_label}
    assert {"Sum", "Cast"} <= ops  # the signature's own ops ran, and were traced
    assert all(n.op_end_rel_micros >= n.op_start_rel_micros >= 0 for n in nodes)
    assert metadata.partition_graphs and any(n.op == "Sum" for g in metadata.partition_graphs for n in g.node)
    _, untraced_graphs = echo.run_traced("numbers", x)
    assert not untraced_graphs.partition_graphs


def test_a_call_that_computes_nothing_and_a_session_config(echo):
    from tensorflow.core.protobuf import config_pb2

    texts = {"text": np.array(["a", "b"], dtype=object)}
    const = next(n for n in echo.meta_graph.graph_def.node if n.op == "Const")
    assert echo.run_nothing("serving_default", texts).tolist() == tf.make_ndarray(const.attr["value"].tensor).tolist()
    with pytest.raises(ServingLoaderError, match="takes inputs"):
        echo.run_nothing("serving_default", {"words": texts["text"]})
    config = config_pb2.ConfigProto(inter_op_parallelism_threads=1)
    config.graph_options.rewrite_options.disable_meta_optimizer = True
    with ServingSession(echo.path, config=config) as sequential:
        assert sequential.run("serving_default", texts)["same"].tolist() == [b"a", b"b"]


def test_time_signatures_warms_chosen_keys_on_every_timed_input_first():
    from seq2seq_keras.serving_loader import time_signatures

    sent = {"xla": [], "plain": []}
    phases = []

    def recorder(key):
        return lambda sentences: sent[key].append((phases[-1][0], tuple(sentences)))

    figures = time_signatures({k: recorder(k) for k in sent}, [f"s{i}" for i in range(7)], single=5, batches=3,
                              batch_size=4, warmup=2, warm_every_input={"xla"},
                              on_phase=lambda phase, key: phases.append((phase, key)))
    for key in sent:
        warm = [s for phase, s in sent[key] if phase == "warmup"]
        timed = [s for phase, s in sent[key] if phase == "timed"]
        assert len(timed) == 5 + 3 and figures[key]["warmup_calls"] == len(warm)
        assert figures[key]["first_call_ms"] >= 0 and figures[key]["calls"] == 5
        if key == "xla":
            assert set(timed) <= set(warm) and len(warm) == 8
        else:  # the usual warm-up: 2 sentences and one batch
            assert len(warm) == 3 and not set(timed) <= set(warm)
    assert [p for p, _ in phases] == sorted((p for p, _ in phases), key=("warmup", "timed").index)
