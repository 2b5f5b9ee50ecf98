"""saved_models/batching_parameters.txt parsed as TensorFlow Serving's ``BatchingParameters`` proto.

The proto is TF Serving's own ``session_bundle_config.proto`` (tests/fixtures/protos, verbatim; the
tensorflow-serving-api wheel does not ship it), compiled here with ``protoc`` from grpcio-tools
into a descriptor set. Its imports (``tensorflow/core/protobuf/config.proto``,
``named_tensor.proto``, ``google/protobuf/wrappers.proto``) come from the descriptors compiled
into the installed ``tensorflow`` and ``protobuf`` wheels, so nothing is hand-written. The text is
then parsed with ``google.protobuf.text_format`` exactly as ``tensorflow_model_server`` parses
``--batching_parameters_file`` (text format, unknown fields rejected).
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PROTOS = Path(__file__).resolve().parents[1] / "fixtures" / "protos"
PROTO = "tensorflow_serving/servables/tensorflow/session_bundle_config.proto"
BATCHING_FILE = ROOT / "saved_models" / "batching_parameters.txt"


def _dependency_set(path: Path) -> None:
    """A FileDescriptorSet of the proto's imports (and theirs), from the installed wheels' own descriptors."""
    from google.protobuf import descriptor_pb2, wrappers_pb2
    from tensorflow.core.protobuf import config_pb2, named_tensor_pb2

    files, seen = descriptor_pb2.FileDescriptorSet(), set()

    def add(file_descriptor):
        if file_descriptor.name in seen:
            return
        seen.add(file_descriptor.name)
        for dependency in file_descriptor.dependencies:
            add(dependency)
        file_descriptor.CopyToProto(files.file.add())

    for module in (wrappers_pb2, config_pb2, named_tensor_pb2):
        add(module.DESCRIPTOR)
    path.write_bytes(files.SerializeToString())


@pytest.fixture(scope="module")
def batching_parameters_class(tmp_path_factory):
    """TF Serving's ``tensorflow.serving.BatchingParameters`` message class, compiled from its .proto."""
    pytest.importorskip("grpc_tools", reason="protoc comes from grpcio-tools (pip install grpcio-tools)")
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

    work = tmp_path_factory.mktemp("protos")
    dependencies, compiled = work / "deps.pb", work / "session_bundle_config.pb"
    _dependency_set(dependencies)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "grpc_tools.protoc",
            f"--descriptor_set_in={dependencies}",
            f"-I{PROTOS}",
            f"--descriptor_set_out={compiled}",
            "--include_imports",
            PROTO,
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    pool = descriptor_pool.DescriptorPool()
    files = descriptor_pb2.FileDescriptorSet.FromString(compiled.read_bytes())
    for file_proto in files.file:  # dependencies first (--include_imports writes them in order)
        pool.Add(file_proto)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("tensorflow.serving.BatchingParameters"))


def test_batching_file_parses_as_tf_serving_batching_parameters(batching_parameters_class):
    from google.protobuf import text_format

    params = text_format.Parse(BATCHING_FILE.read_text(), batching_parameters_class())
    assert params.max_batch_size.value == 64
    assert params.batch_timeout_micros.value == 0 and params.HasField("batch_timeout_micros")
    assert params.num_batch_threads.value == 2
    assert params.max_enqueued_batches.value == 8
    assert list(params.allowed_batch_sizes) == []
    assert params.pad_variable_length_inputs is False
    # Set explicitly (not left to the server's defaults), except the ones the comments say are left unset.
    assert sorted(field.name for field, _ in params.ListFields()) == [
        "batch_timeout_micros",
        "max_batch_size",
        "max_enqueued_batches",
        "num_batch_threads",
    ]


def test_the_proto_rejects_what_the_server_would(batching_parameters_class):
    """The check can fail: a misspelt field or a bare value for a wrapper field is a parse error."""
    from google.protobuf import text_format

    for bad in ("max_batch_sise { value: 64 }", "max_batch_size: 64", "allowed_batch_sizes: [8, 64]\nnope: 1"):
        with pytest.raises(text_format.ParseError):
            text_format.Parse(bad, batching_parameters_class())
    # TF Serving's rule for allowed_batch_sizes: increasing, the last equal to max_batch_size.
    ok = text_format.Parse("max_batch_size { value: 64 }\nallowed_batch_sizes: [1, 8, 64]", batching_parameters_class())
    assert list(ok.allowed_batch_sizes) == [1, 8, 64]


def test_every_value_is_explained():
    """Each setting in the file has a comment block right above it."""
    lines = BATCHING_FILE.read_text().splitlines()
    settings = [i for i, line in enumerate(lines) if line and not line.startswith("#")]
    assert len(settings) == 5
    for i in settings:
        assert lines[i - 1].startswith("#"), f"no comment above {lines[i]!r}"


def test_serve_sh_batching_flags(tmp_path):
    """``serve.sh print --batching`` shows TF Serving's flags with the file's path in the container."""
    (tmp_path / "models.config").write_text("model_config_list {\n}\n")
    (tmp_path / "batching_parameters.txt").write_text(BATCHING_FILE.read_text())
    out = subprocess.run(
        ["bash", str(ROOT / "saved_models" / "serve.sh"), "print", "--batching", "--xla"],
        capture_output=True,
        text=True,
        env={"SAVED_MODELS_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"},
    )
    assert out.returncode == 0, out.stderr
    assert "--enable_batching" in out.stdout
    assert re.search(r"--batching_parameters_file=/models/batching_parameters\.txt", out.stdout)
    assert "--xla_cpu_compilation_enabled=true" in out.stdout
    plain = subprocess.run(
        ["bash", str(ROOT / "saved_models" / "serve.sh"), "print"],
        capture_output=True,
        text=True,
        env={"SAVED_MODELS_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"},
    )
    assert "--enable_batching" not in plain.stdout and "xla" not in plain.stdout
