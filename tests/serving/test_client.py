"""REST and gRPC clients against TensorFlow Serving's wire formats.

``tensorflow_model_server`` cannot be installed on the CI machines, so most of
this file checks compatibility offline, as deeply as possible:

* REST: the client's JSON bodies (row ``instances`` and columnar ``inputs``) are
  decoded the way TF Serving decodes them (tensorflow_serving/util/json_tensor.cc,
  re-implemented below from its source and the REST API document: ``b64``
  objects, shapes from nesting, dtypes from the signature), run through the
  SavedModel, and the answers written back to JSON by the same rules
  (``predictions`` / ``outputs``, single-output name omitted, float formatting);
* gRPC: ``PredictRequest`` / ``PredictResponse`` protos from tensorflow-serving-api,
  serialised, parsed and converted with ``tf.make_ndarray`` / ``tf.make_tensor_proto``;
* every decoded request runs where TF Serving runs it: a session made by TensorFlow's
  C API ``TF_LoadSessionFromSavedModel`` (the C++ ``LoadSavedModel`` TF Serving calls)
  and ``TF_SessionRun`` on the SignatureDef's tensor names
  (:class:`seq2seq_keras.serving.tf_serving_loader.ServingSession`), not ``tf.saved_model.load``;
* both clients over real sockets against small in-process stand-ins for the
  server's REST and gRPC front ends built on those codecs;
* and, whenever ``tensorflow_model_server`` is on PATH, the real server end to end.
"""

from __future__ import annotations

import base64
import json
import math
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
from concurrent import futures
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from test_export import exported_dir
from test_pipeline import sample_sentences, tiny_run_dir

MODEL_NAME = "tiny_word"
BEAM = dict(method="beam", beam_width=4, length_penalty=0.6)
TEXTS = sample_sentences(6) + ["", "   ", b"\xff\xfe abc", "😀 ሰላም", "제어\x01문자"]


@pytest.fixture(scope="session")
def served(tmp_path_factory):
    """(python model, SavedModel path, the SavedModel loaded by TF Serving's loader) for the tiny word model."""
    from seq2seq_keras.serving.tf_serving_loader import ServingSession, tf_text_op_libraries
    from seq2seq_keras.training import load_model

    path = exported_dir(tmp_path_factory, "word")
    session = ServingSession(path, op_libraries=tf_text_op_libraries())
    yield load_model(tiny_run_dir(tmp_path_factory, "word")), path, session
    session.close()


def assert_same_translations(actual, expected, atol=1e-5):
    assert len(actual) == len(expected)
    for a, e in zip(actual, expected):
        assert (a.source, a.text, a.source_tokens, a.target_tokens) == (
            e.source,
            e.text,
            e.source_tokens,
            e.target_tokens,
        )
        assert a.attention.shape == e.attention.shape
        np.testing.assert_allclose(a.attention, e.attention, atol=atol)
        assert a.log_prob == pytest.approx(e.log_prob, abs=1e-4)


# ---------------------------------------------------------------------- TF Serving's JSON codec (json_tensor.cc)
_DT_TO_TF = {1: tf.float32, 3: tf.int32, 7: tf.string, 9: tf.int64}


def _shape_of(value) -> list[int]:
    """GetDenseTensorShape: dimensions from the nesting, following the first element."""
    shape = []
    while isinstance(value, list):
        shape.append(len(value))
        if not value:
            break
        value = value[0]
    return shape


def _leaf(value, dtype):
    if isinstance(value, dict):  # only {"b64": ...} objects, only for DT_STRING
        if dtype != tf.string or set(value) != {"b64"}:
            raise ValueError(f"JSON Value: {value} not formatted correctly for base64 data")
        return base64.b64decode(value["b64"], validate=True)
    if dtype == tf.string:
        if not isinstance(value, str):
            raise ValueError(f"JSON Value: {value!r} is not of expected type: string")
        return value.encode("utf-8")
    return value


def _flatten(value, dtype, shape, level=0):
    if not isinstance(value, list):
        if level != len(shape):
            raise ValueError(f"JSON Value: {value!r} found at incorrect level: {level + 1}")
        return [_leaf(value, dtype)]
    if level >= len(shape) or len(value) != shape[level]:
        raise ValueError(f"Encountered list at unexpected size: {len(value)} at level: {level}")
    return [leaf for v in value for leaf in _flatten(v, dtype, shape, level + 1)]


def _tensor(value, dtype) -> np.ndarray:
    shape = _shape_of(value)
    proto = tf.make_tensor_proto(_flatten(value, dtype, shape), dtype=dtype, shape=shape)
    return tf.make_ndarray(proto)


def server_decode_predict(body: str, signatures: dict[str, dict[str, tf.DType]]):
    """FillPredictRequestFromJson: -> (signature name, request format, {input name: ndarray})."""
    doc = json.loads(body)  # rapidjson with kParseNanAndInfFlag accepts what Python's json accepts here
    if not isinstance(doc, dict):
        raise ValueError("Is not object")
    signature = doc.get("signature_name", "serving_default")
    inputs = signatures[signature]
    if "instances" in doc and "inputs" in doc:
        raise ValueError("Not formatted correctly expecting only one of 'inputs' or 'instances' keys to exist")
    if "instances" in doc:
        rows = doc["instances"]
        if not isinstance(rows, list):
            raise ValueError("Excepting 'instances' to be an list/array")
        if not rows:
            raise ValueError("No values in 'instances' array")
        named = isinstance(rows[0], dict) and set(rows[0]) != {"b64"}
        if not named and len(inputs) > 1:
            raise ValueError("instances is a plain list, but expecting list of objects")
        columns = {name: [] for name in inputs}
        for row in rows:
            if named:
                if set(row) != set(inputs):
                    raise ValueError(f"keys must be equal to: {','.join(sorted(inputs))}")
                for name in inputs:
                    columns[name].append(row[name])
            else:
                columns[next(iter(inputs))].append(row)
        return signature, "row", {name: _tensor(values, inputs[name]) for name, values in columns.items()}
    if "inputs" in doc:
        value = doc["inputs"]
        if not isinstance(value, dict) or set(value) == {"b64"}:
            if len(inputs) > 1:
                raise ValueError("inputs is a plain value/list, but expecting an object")
            value = {next(iter(inputs)): value}
        return signature, "columnar", {name: _tensor(value[name], dtype) for name, dtype in inputs.items()}
    raise ValueError("Missing 'inputs' or 'instances' key")


def _decimal(x: float) -> str:
    """WriteDecimal for float32: six significant digits, full precision if that does not round-trip, '.0'."""
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "-Infinity" if x < 0 else "Infinity"
    text = f"{x:g}"
    if np.float32(float(text)) != np.float32(x):
        text = f"{x:.9g}"
    if "." not in text and "e" not in text:
        text += ".0"
    return text


def _json_values(array, as_bytes: bool) -> str:
    array = np.asarray(array, dtype=object if isinstance(array, bytes) else None)
    if array.ndim == 0:
        value = array.item()
        if isinstance(value, bytes):
            if as_bytes:
                return json.dumps({"b64": base64.b64encode(value).decode()})
            return json.dumps(value.decode("utf-8"), ensure_ascii=False)  # TF Serving writes the bytes as they are
        if array.dtype.kind == "f":
            return _decimal(float(value))
        if array.dtype.kind == "b":
            return "true" if value else "false"
        return str(int(value))
    return "[" + ",".join(_json_values(a, as_bytes) for a in array) + "]"


def server_encode_predict(outputs: dict[str, np.ndarray], request_format: str) -> str:
    """MakeJsonFromTensors: row -> ``predictions``, columnar -> ``outputs``; one output: its name omitted."""
    protos = {name: tf.make_ndarray(tf.make_tensor_proto(value)) for name, value in outputs.items()}
    many = len(protos) > 1
    if request_format == "row":
        sizes = {v.shape[0] for v in protos.values()}
        if len(sizes) != 1:
            raise ValueError(f"inconsistent batch sizes {sizes}")
        rows = []
        for i in range(sizes.pop()):
            cells = {n: _json_values(v[i], n.endswith("_bytes")) for n, v in protos.items()}
            rows.append(
                "{" + ",".join(f"{json.dumps(n)}:{c}" for n, c in cells.items()) + "}"
                if many
                else next(iter(cells.values()))
            )
        return '{"predictions":[' + ",".join(rows) + "]}"
    cells = {n: _json_values(v, n.endswith("_bytes")) for n, v in protos.items()}
    body = (
        "{" + ",".join(f"{json.dumps(n)}:{c}" for n, c in cells.items()) + "}" if many else next(iter(cells.values()))
    )
    return '{"outputs":' + body + "}"


def _signature_inputs(session) -> dict[str, dict[str, tf.DType]]:
    return {
        name: {k: tf.as_dtype(code) for k, code in session.inputs(name).items()}
        for name in session.signatures
        if not name.startswith("__")
    }


def serve_rest(session, body: str) -> str:
    """TF Serving's REST predict: decode the JSON, ``Session::Run`` the signature, encode the answer."""
    signature, request_format, inputs = server_decode_predict(body, _signature_inputs(session))
    return server_encode_predict(session.run(signature, inputs), request_format)


# ---------------------------------------------------------------------- REST, offline
def test_rest_bodies_follow_the_rest_api_document():
    from seq2seq_keras.serving import RestClient

    client = RestClient("http://127.0.0.1:1", "m")
    texts = ["나는 학생이다", b"\xff\xfe", "\udcff"]
    assert client.build_predict_body(texts, "beam_search", "row") == {
        "signature_name": "beam_search",
        "instances": [{"text": "나는 학생이다"}, {"text": {"b64": "//4="}}, {"text": {"b64": "/w=="}}],
    }
    assert client.build_predict_body(texts[:1], request_format="columnar") == {
        "signature_name": "translate_with_attention",
        "inputs": {"text": ["나는 학생이다"]},
    }
    assert client.build_predict_body([], request_format="columnar")["inputs"] == {"text": []}
    with pytest.raises(ValueError, match="columnar"):
        client.build_predict_body([], request_format="row")
    assert client.model_url == "http://127.0.0.1:1/v1/models/m"
    assert RestClient("http://h:8501/", "m", version=3).model_url == "http://h:8501/v1/models/m/versions/3"


def test_the_server_codec_decodes_the_documented_examples():
    """The JSON codec used below reproduces the REST API document's own examples."""
    sig = {"serving_default": {"tag": tf.string, "signal": tf.int32, "sensor": tf.int32}}
    row = {
        "instances": [
            {"tag": "foo", "signal": [1, 2, 3, 4, 5], "sensor": [[1, 2], [3, 4]]},
            {"tag": "bar", "signal": [3, 4, 1, 2, 5], "sensor": [[4, 5], [6, 8]]},
        ]
    }
    col = {
        "inputs": {
            "tag": ["foo", "bar"],
            "signal": [[1, 2, 3, 4, 5], [3, 4, 1, 2, 5]],
            "sensor": [[[1, 2], [3, 4]], [[4, 5], [6, 8]]],
        }
    }
    (_, f1, a), (_, f2, b) = server_decode_predict(json.dumps(row), sig), server_decode_predict(json.dumps(col), sig)
    assert (f1, f2) == ("row", "columnar")
    for name in ("tag", "signal", "sensor"):
        np.testing.assert_array_equal(a[name], b[name])
    assert a["sensor"].shape == (2, 2, 2) and a["tag"].tolist() == [b"foo", b"bar"]
    single = server_decode_predict('{"instances": [1.0, 2.0, 5.0]}', {"serving_default": {"x": tf.float32}})
    np.testing.assert_array_equal(single[2]["x"], [1.0, 2.0, 5.0])
    assert server_encode_predict({"y": np.array([3.5, 4.0, 5.5], np.float32)}, "row") == '{"predictions":[3.5,4.0,5.5]}'
    assert _decimal(np.float32(0.2)) == "0.2" and _decimal(np.float32(9000000)) == "9e+06"
    with pytest.raises(ValueError, match="No values"):
        server_decode_predict('{"instances": []}', {"serving_default": {"text": tf.string}})


@pytest.mark.parametrize("request_format", ["row", "columnar"])
@pytest.mark.parametrize("signature,options", [("translate_with_attention", {}), ("beam_search", BEAM)])
def test_rest_round_trip_gives_the_python_translations(served, request_format, signature, options):
    from seq2seq_keras.decoding.pipeline import translate
    from seq2seq_keras.serving.client import RestClient, outputs_to_translations, parse_rest_predict_response

    model, _, session = served
    client = RestClient("http://127.0.0.1:1", MODEL_NAME)
    body = json.dumps(client.build_predict_body(TEXTS, signature, request_format))
    answer = serve_rest(session, body)
    outputs = parse_rest_predict_response(json.loads(answer), signature)
    assert outputs["attention"].dtype == np.float32 and outputs["target_length"].dtype == np.int32
    ours = outputs_to_translations(outputs, TEXTS)
    assert_same_translations(ours, translate(model, TEXTS, **options))
    # Floats survive TF Serving's decimal formatting bit for bit.
    direct = session.run(
        signature, {"text": np.array([t if isinstance(t, bytes) else t.encode() for t in TEXTS], object)}
    )
    np.testing.assert_array_equal(outputs["attention"], direct["attention"])


@pytest.mark.parametrize("request_format", ["row", "columnar"])
def test_rest_single_output_signature(served, request_format):
    from seq2seq_keras.decoding.pipeline import translate
    from seq2seq_keras.serving.client import RestClient, outputs_to_translations, parse_rest_predict_response

    model, _, session = served
    body = json.dumps(RestClient().build_predict_body(TEXTS, "serving_default", request_format))
    answer = json.loads(serve_rest(session, body))
    key = "predictions" if request_format == "row" else "outputs"
    assert isinstance(answer[key], list) and all(isinstance(x, str) for x in answer[key])  # name omitted
    ours = outputs_to_translations(parse_rest_predict_response(answer, "serving_default"), TEXTS)
    assert [t.text for t in ours] == [t.text for t in translate(model, TEXTS)]
    assert all(t.attention is None for t in ours)


def test_rest_errors_are_raised_with_the_server_message():
    from seq2seq_keras.serving.client import ServingError, parse_rest_predict_response

    with pytest.raises(ServingError, match="Servable not found"):
        parse_rest_predict_response({"error": "Servable not found for request: Latest(x)"})


def test_a_rest_answer_with_attention_heads_parses_to_float32_without_the_servers_metadata():
    """A Transformer's translate_with_attention answer read with the package's own table
    (seq2seq_keras.serving.signatures): attention_heads is float32 [batch, layers, heads, tgt_len, src_len],
    not an object array, in both answer formats."""
    from seq2seq_keras.serving.client import parse_rest_predict_response

    heads = [[[[[0.25, 0.75], [1.0, 0.0]]]]]  # [1, 1, 1, 2, 2]
    row = {
        "translation": "a",
        "source_tokens": ["x", "y"],
        "target_tokens": ["a", "[END]"],
        "source_length": 2,
        "target_length": 2,
        "attention": [[0.25, 0.75], [1.0, 0.0]],
        "log_prob": -0.5,
        "replaced": [0, 0],
        "attention_heads": heads[0],
    }
    for body in ({"predictions": [row]}, {"outputs": {name: [value] for name, value in row.items()}}):
        parsed = parse_rest_predict_response(body, "translate_with_attention")
        assert parsed["attention_heads"].dtype == np.float32 and parsed["attention_heads"].shape == (1, 1, 1, 2, 2)
        assert parsed["attention"].dtype == np.float32 and parsed["replaced"].dtype == np.int32


# ---------------------------------------------------------------------- REST without TensorFlow
def test_rest_client_imports_no_tensorflow_or_keras(tmp_path):
    """The REST path needs HTTP and NumPy only: serving.py and translation.py import no TensorFlow, Keras or
    tensorflow-text, and a canned TF Serving answer still becomes Translations.

    tests/programs/rest_client_without_tensorflow.py runs in a fresh ``python -I`` process that refuses those
    imports. It imports ``seq2seq_keras.serving.client`` under a bare ``seq2seq_keras`` package (the package's
    ``__init__`` not run), so what is checked is exactly serving.py's and translation.py's own imports:
    the package ``__init__`` (which decides what ``import seq2seq_keras`` loads) is not this test's subject.
    """
    import importlib.util

    pytest.importorskip("requests")
    package_dir = importlib.util.find_spec("seq2seq_keras").submodule_search_locations[0]
    attention = [[0.9, 0.1], [0.2, 0.8], [0.3, 0.7], [0.4, 0.6], [0.5, 0.5], [0.6, 0.4]]
    answer = {
        "outputs": {  # columnar, as TF Serving writes translate_with_attention's outputs for a batch of 2
            "translation": ["i am a student.", ""],
            "source_tokens": [["나는", "학생이다"], ["", ""]],
            "source_length": [2, 0],
            "target_tokens": [["i", "am", "a", "student", ".", "[END]"], [""] * 6],
            "target_length": [6, 0],
            "attention": [attention, [[0.0, 0.0]] * 6],
            "log_prob": [-1.25, 0.0],
            "score": [-1.25, 0.0],
            "replaced": [[0, 0, 0, 1, 0, 0], [0] * 6],
        }
    }
    proc = subprocess.run(
        [
            sys.executable,
            "-I",
            str(Path(__file__).parents[1] / "programs" / "rest_client_without_tensorflow.py"),
            package_dir,
            json.dumps(answer),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout)
    assert result["forbidden_loaded"] == []
    assert [Path(f) for f in result["files"]] == [
        Path(package_dir) / "serving" / "client.py",
        Path(package_dir) / "translation.py",
    ]  # this checkout's modules
    assert result["requests"] == [
        [
            "/v1/models/tiny:predict",
            {
                "signature_name": "translate_with_attention",
                "inputs": {"text": ["나는 학생이다", {"b64": base64.b64encode(b"\xff\xfe").decode()}]},
            },
        ]
    ]
    first, empty = result["translations"]
    np.testing.assert_array_equal(np.float32(first.pop("attention")), np.float32(attention))
    assert first == {
        "source": "나는 학생이다",
        "text": "i am a student.",
        "source_tokens": ["나는", "학생이다"],
        "target_tokens": ["i", "am", "a", "student", ".", "[END]"],
        "attention_dtype": "float32",
        "log_prob": -1.25,
        "score": -1.25,
        "alternatives": [],
        "replaced": [False, False, False, True, False, False],
        # a server's answer does not say which source words were unknown: not known, never "none"
        "unknown_source": None,
        "unknown_source_words": [],
    }
    assert empty == {
        "source": "\ufffd\ufffd",
        "text": "",
        "source_tokens": [],
        "target_tokens": [],
        "attention": [],
        "attention_dtype": "float32",
        "log_prob": 0.0,
        "score": 0.0,
        "alternatives": [],
        "replaced": [],
        "unknown_source": None,
        "unknown_source_words": [],
    }


# ---------------------------------------------------------------------- gRPC, offline
def run_predict(session, request):
    """What the server does with a PredictRequest: make_ndarray, ``Session::Run`` the signature, make_tensor_proto."""
    from tensorflow_serving.apis import predict_pb2

    signature = request.model_spec.signature_name or "serving_default"
    inputs = {name: tf.make_ndarray(proto) for name, proto in request.inputs.items()}
    outputs = session.run(signature, inputs, list(request.output_filter) or None)
    response = predict_pb2.PredictResponse()
    response.model_spec.CopyFrom(request.model_spec)
    for name, value in outputs.items():
        response.outputs[name].CopyFrom(tf.make_tensor_proto(value))
    return response


@pytest.mark.parametrize("signature,options", [("translate_with_attention", {}), ("beam_search", BEAM)])
def test_grpc_round_trip_gives_the_python_translations(served, signature, options):
    from tensorflow_serving.apis import predict_pb2

    from seq2seq_keras.decoding.pipeline import translate
    from seq2seq_keras.serving import GrpcClient, outputs_to_translations

    model, _, session = served
    client = GrpcClient("127.0.0.1:1", MODEL_NAME, version=1)
    wire = client.build_request(TEXTS, signature).SerializeToString()
    request = predict_pb2.PredictRequest.FromString(wire)
    assert (request.model_spec.name, request.model_spec.signature_name, request.model_spec.version.value) == (
        MODEL_NAME,
        signature,
        1,
    )
    assert tf.make_ndarray(request.inputs["text"]).shape == (len(TEXTS),)
    response = predict_pb2.PredictResponse.FromString(run_predict(session, request).SerializeToString())
    outputs = client.parse_response(response)
    assert_same_translations(outputs_to_translations(outputs, TEXTS), translate(model, TEXTS, **options))
    client.close()


# ---------------------------------------------------------------------- both clients over sockets
def _signature_def_map(path):
    from tensorflow.core.protobuf import saved_model_pb2
    from tensorflow_serving.apis import get_model_metadata_pb2

    proto = saved_model_pb2.SavedModel.FromString((path / "saved_model.pb").read_bytes())
    defs = get_model_metadata_pb2.SignatureDefMap()
    for name, sdef in proto.meta_graphs[0].signature_def.items():
        if not name.startswith("__"):
            defs.signature_def[name].CopyFrom(sdef)
    return defs


def _metadata_response(path, version):
    from tensorflow_serving.apis import get_model_metadata_pb2

    response = get_model_metadata_pb2.GetModelMetadataResponse()
    response.model_spec.name = MODEL_NAME
    response.model_spec.version.value = version
    response.metadata["signature_def"].Pack(_signature_def_map(path))
    return response


@pytest.fixture(scope="module")
def servers(served):
    """In-process REST and gRPC front ends (the codecs above) on 127.0.0.1 ports: (rest_url, grpc_target)."""
    import grpc
    from google.protobuf import json_format
    from tensorflow_serving.apis import (
        get_model_status_pb2,
        model_service_pb2_grpc,
        prediction_service_pb2_grpc,
    )

    from seq2seq_keras.serving.tf_serving_loader import ServingLoaderError

    _, path, session = served
    lock = threading.Lock()

    class Prediction(prediction_service_pb2_grpc.PredictionServiceServicer):
        def Predict(self, request, context):
            if request.model_spec.name != MODEL_NAME:
                context.abort(
                    grpc.StatusCode.NOT_FOUND, f"Servable not found for request: Latest({request.model_spec.name})"
                )
            with lock:
                return run_predict(session, request)

        def GetModelMetadata(self, request, context):
            return _metadata_response(path, 1)

    class Models(model_service_pb2_grpc.ModelServiceServicer):
        def GetModelStatus(self, request, context):
            status = get_model_status_pb2.GetModelStatusResponse()
            status.model_version_status.add(version=1, state=get_model_status_pb2.ModelVersionStatus.AVAILABLE)
            return status

    grpc_server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(Prediction(), grpc_server)
    model_service_pb2_grpc.add_ModelServiceServicer_to_server(Models(), grpc_server)
    grpc_port = grpc_server.add_insecure_port("127.0.0.1:0")
    grpc_server.start()

    route = re.compile(r"^/v1/models/(?P<name>[^/:]+)(?:/versions/(?P<version>\d+))?(?P<verb>:predict|/metadata)?$")

    class Rest(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def _answer(self, code, text):
            data = text.encode("utf-8")
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _route(self):
            match = route.match(self.path)
            if not match or match["name"] != MODEL_NAME:
                self._answer(404, json.dumps({"error": f"Servable not found for request: Latest({self.path})"}))
                return None
            return match

        def do_GET(self):
            match = self._route()
            if match is None:
                return
            if match["verb"] == "/metadata":
                body = json_format.MessageToJson(_metadata_response(path, 1), preserving_proto_field_name=True)
            else:
                body = json.dumps(
                    {
                        "model_version_status": [
                            {"version": "1", "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}
                        ]
                    }
                )
            self._answer(200, body)

        def do_POST(self):
            match = self._route()
            if match is None:
                return
            body = self.rfile.read(int(self.headers["Content-Length"])).decode("utf-8")
            try:
                with lock:
                    self._answer(200, serve_rest(session, body))
            except (ValueError, ServingLoaderError) as e:
                self._answer(400, json.dumps({"error": str(e)}))

    http = ThreadingHTTPServer(("127.0.0.1", 0), Rest)
    thread = threading.Thread(target=http.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{http.server_address[1]}", f"127.0.0.1:{grpc_port}"
    http.shutdown()
    http.server_close()
    grpc_server.stop(None)


def check_clients(model, rest_url, grpc_target, name=MODEL_NAME):
    """Both clients, both REST formats, three signatures, metadata and status: same as the Python API."""
    from seq2seq_keras.decoding.pipeline import translate
    from seq2seq_keras.serving.client import GrpcClient, RestClient, signature_names

    greedy, beam = translate(model, TEXTS), translate(model, TEXTS, **BEAM)
    rest = RestClient(rest_url, name, batch_size=4)
    rest.wait_until_available(timeout=120)
    grpc_client = GrpcClient(grpc_target, name, batch_size=4)
    try:
        for request_format in ("row", "columnar"):
            assert_same_translations(rest.translate(TEXTS, request_format=request_format), greedy)
            assert_same_translations(rest.translate(TEXTS, "beam_search", request_format), beam)
        assert_same_translations(grpc_client.translate(TEXTS), greedy)
        assert_same_translations(grpc_client.translate(TEXTS, "beam_search"), beam)
        assert [t.text for t in grpc_client.translate(TEXTS, "serving_default")] == [t.text for t in greedy]
        single = rest.translate("나는 학생이다")
        assert single.text == translate(model, "나는 학생이다").text
        assert rest.translate([]) == [] and grpc_client.translate([]) == []
        expected = ["beam_search", "serving_default", "translate_with_attention"]
        assert signature_names(rest.metadata()) == signature_names(grpc_client.metadata()) == expected
        assert (
            rest.metadata()["metadata"]["signature_def"]["signature_def"]["translate_with_attention"]["outputs"][
                "attention"
            ]["dtype"]
            == "DT_FLOAT"
        )
        assert grpc_client.status()["model_version_status"][0]["state"] == "AVAILABLE"
    finally:
        rest.close()
        grpc_client.close()


def test_clients_over_sockets(served, servers):
    check_clients(served[0], *servers)


def test_client_errors_are_clear(servers):
    from seq2seq_keras.serving import GrpcClient, RestClient, ServingError

    rest_url, grpc_target = servers
    with pytest.raises(ServingError, match="Servable not found"):
        RestClient(rest_url, "nope").translate(["x"])
    with pytest.raises(ServingError, match="NOT_FOUND"):
        GrpcClient(grpc_target, "nope").translate(["x"])
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    with pytest.raises(ServingError, match="rest_api_port"):
        RestClient(f"http://127.0.0.1:{closed}", MODEL_NAME, timeout=5).translate(["x"])
    with pytest.raises(ServingError, match="UNAVAILABLE"):
        GrpcClient(f"127.0.0.1:{closed}", MODEL_NAME, timeout=5).translate(["x"])
    with pytest.raises(ServingError, match="not AVAILABLE"):
        RestClient(f"http://127.0.0.1:{closed}", MODEL_NAME, timeout=1).wait_until_available(timeout=1, interval=0.2)


def test_plotting_works_on_a_server_translation(servers):
    import matplotlib

    from seq2seq_keras import plotting

    matplotlib.use("Agg")
    from seq2seq_keras.serving import RestClient

    translation = RestClient(servers[0], MODEL_NAME).translate("나는 학생이다")
    figure = plotting.plot_attention(translation)
    assert figure.axes and translation.attention.shape == (translation.length, len(translation.source_tokens))


# ---------------------------------------------------------------------- the real server
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_real_tensorflow_model_server(served, tmp_path):
    binary = shutil.which("tensorflow_model_server")
    if binary is None:
        pytest.skip(
            "tensorflow_model_server is not on PATH (it cannot be installed on the CI machines); "
            "install it as in saved_models/serve.sh to run this end-to-end test"
        )
    from seq2seq_keras.serving.export import models_config_text

    model, path, _ = served
    base = path.parent.parent
    config = tmp_path / "models.config"
    config.write_text(models_config_text(base, serving_root=str(base.resolve())))
    grpc_port, rest_port = _free_port(), _free_port()
    log = open(tmp_path / "server.log", "w")
    server = subprocess.Popen(
        [
            binary,
            f"--port={grpc_port}",
            f"--rest_api_port={rest_port}",
            f"--model_config_file={config}",
            "--rest_api_num_threads=2",
            "--file_system_poll_wait_seconds=1",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        time.sleep(1)
        assert server.poll() is None, (tmp_path / "server.log").read_text()[-3000:]
        check_clients(model, f"http://127.0.0.1:{rest_port}", f"127.0.0.1:{grpc_port}")
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


# ---------------------------------------------------------------------- saved_models/serve.sh
SERVE_SH = __import__("pathlib").Path(__file__).resolve().parents[2] / "saved_models" / "serve.sh"


def test_serve_script_docker_command_mounts_the_exported_folder(served):
    path = served[1]
    base = path.parent.parent
    proc = subprocess.run(
        ["bash", str(SERVE_SH), "print"],
        capture_output=True,
        text=True,
        timeout=30,
        env={"PATH": "/usr/bin:/bin", "SAVED_MODELS_DIR": str(base), "REST_PORT": "9501"},
    )
    assert proc.returncode == 0, proc.stderr
    assert f"-v {base.resolve()}:/models:ro" in proc.stdout and "tensorflow/serving:latest" in proc.stdout
    assert "--model_config_file=/models/models.config" in proc.stdout and "-p 9501:8501" in proc.stdout
    assert "install-apt" in proc.stdout


def test_serve_script_local_mode_rewrites_base_paths_for_the_host(served, tmp_path):
    """A stand-in tensorflow_model_server on PATH records its arguments and the config it was given."""
    from google.protobuf import text_format
    from tensorflow_serving.config import model_server_config_pb2

    base = served[1].parent.parent
    fake = tmp_path / "bin" / "tensorflow_model_server"
    fake.parent.mkdir()
    fake.write_text(
        '#!/bin/sh\nfor a in "$@"; do echo "$a"; done\n'
        'cat "$(echo "$@" | tr " " "\\n" | sed -n "s/^--model_config_file=//p")"\n'
    )
    fake.chmod(0o755)
    proc = subprocess.run(
        ["bash", str(SERVE_SH), "local"],
        capture_output=True,
        text=True,
        timeout=30,
        env={"PATH": f"{fake.parent}:/usr/bin:/bin", "SAVED_MODELS_DIR": str(base), "GRPC_PORT": "9500"},
    )
    assert proc.returncode == 0, proc.stderr
    assert "--port=9500" in proc.stdout and "--rest_api_port=8501" in proc.stdout
    config_text = proc.stdout[proc.stdout.index("model_config_list") :]
    config = text_format.Parse(config_text, model_server_config_pb2.ModelServerConfig())
    paths = {c.name: c.base_path for c in config.model_config_list.config}
    assert paths[MODEL_NAME] == str(base.resolve() / MODEL_NAME)
    missing = subprocess.run(
        ["bash", str(SERVE_SH), "local"],
        capture_output=True,
        text=True,
        timeout=30,
        env={"PATH": "/usr/bin:/bin", "SAVED_MODELS_DIR": str(tmp_path)},
    )
    assert missing.returncode == 2 and "export a model first" in missing.stderr


# ---------------------------------------------------------------------- outputs read from the signature
def test_the_issue_example_single_output_xla_signature():
    from seq2seq_keras.serving.client import outputs_to_translations, parse_rest_predict_response

    for body in ({"outputs": ["i am a student"]}, {"predictions": ["i am a student"]}):
        (t,) = outputs_to_translations(parse_rest_predict_response(body, "serving_default_xla"), ["나는 학생이다"])
        assert t.text == "i am a student" and t.source == "나는 학생이다"


def _exports(tmp_path_factory):
    from test_check import transformer_exported_dir, xla_exported_dir

    return {"gru": xla_exported_dir(tmp_path_factory), "transformer": transformer_exported_dir(tmp_path_factory)}


@pytest.fixture(scope="module")
def every_export(tmp_path_factory):
    """``{kind: (path, TF Serving's loader on it, the metadata answer TF Serving gives for it)}``."""
    from google.protobuf import json_format

    from seq2seq_keras.serving.tf_serving_loader import ServingSession, tf_text_op_libraries

    out = {}
    for kind, path in _exports(tmp_path_factory).items():
        metadata = {
            "model_spec": {"name": kind},
            "metadata": {
                "signature_def": json_format.MessageToDict(_signature_def_map(path), preserving_proto_field_name=True)
            },
        }
        out[kind] = (path, ServingSession(path, op_libraries=tf_text_op_libraries()), metadata)
    yield out
    for _, session, _ in out.values():
        session.close()


def test_the_package_output_table_matches_the_exports_signature_defs(every_export):
    """The clients' fallback when the server's metadata is not at hand (export.SIGNATURE_OUTPUTS, OUTPUT_DTYPES)
    says what the real SignatureDefs say, for every signature of a GRU (plain, xla) and a Transformer export."""
    from tensorflow.core.framework import types_pb2

    from seq2seq_keras.serving.client import signature_outputs

    for kind, (_, session, metadata) in every_export.items():
        for signature in (s for s in session.signatures if not s.startswith("__")):
            real = signature_outputs(metadata, signature)
            expected = {name: types_pb2.DataType.Name(code) for name, code in session.outputs(signature).items()}
            assert real == expected, (kind, signature)
            table = signature_outputs(None, signature)
            if kind == "transformer" and signature == "translate_with_attention":
                table["attention_heads"] = "DT_FLOAT"
            assert table == real, (kind, signature)


@pytest.mark.parametrize("request_format", ["row", "columnar"])
@pytest.mark.parametrize("with_metadata", [True, False])
def test_rest_answers_of_every_signature_are_read_with_the_signatures_names_and_dtypes(
    every_export, request_format, with_metadata
):
    """Every signature the package exports, GRU (plain and xla) and Transformer: the REST answer TF Serving writes
    (one-output signatures without the output's name) is read back to the loader's own arrays, dtypes included
    (attention_heads float32, lengths int32), and becomes Translations."""
    from seq2seq_keras.serving.client import (
        RestClient,
        outputs_to_translations,
        parse_rest_predict_response,
        signature_outputs,
    )

    texts = TEXTS[:4] + ["", "😀 ሰላム"]
    raw = np.array([t if isinstance(t, bytes) else t.encode() for t in texts], object)
    for kind, (_, session, metadata) in every_export.items():
        for signature in (s for s in session.signatures if not s.startswith("__")):
            body = json.dumps(RestClient().build_predict_body(texts, signature, request_format))
            answer = json.loads(serve_rest(session, body))
            outputs = signature_outputs(metadata, signature) if with_metadata else None
            parsed = parse_rest_predict_response(answer, signature, outputs)
            direct = session.run(signature, {"text": raw})
            assert sorted(parsed) == sorted(direct), (kind, signature)
            for name, value in direct.items():
                assert parsed[name].dtype == value.dtype and parsed[name].shape == value.shape, (kind, signature, name)
                if value.dtype == object:  # JSON strings come back as str, b64 objects as bytes
                    value = np.vectorize(lambda b: b.decode("utf-8"), otypes=[object])(value) if value.size else value
                    got = (
                        np.vectorize(lambda x: x.decode("utf-8") if isinstance(x, bytes) else x, otypes=[object])(
                            parsed[name]
                        )
                        if value.size
                        else parsed[name]
                    )
                else:
                    got = parsed[name]
                np.testing.assert_array_equal(got, value, err_msg=f"{kind} {signature} {name}")
            translations = outputs_to_translations(parsed, texts)
            assert [t.text for t in translations] == [x.decode() for x in direct["translation"]]


def test_rest_client_asks_the_metadata_once_and_reads_a_signature_it_describes(every_export):
    """A one-output signature the package does not export (here: serving_default served under another name) is
    read with the server's metadata, asked once: its output keeps its name; a server without the metadata API
    gets the answer under TF Serving's nameless key."""
    from seq2seq_keras.serving import RestClient, ServingError

    _, session, metadata = every_export["gru"]
    renamed = json.loads(json.dumps(metadata))
    defs = renamed["metadata"]["signature_def"]["signature_def"]
    defs["text_only"] = defs["serving_default"]
    asked = []

    class Client(RestClient):
        has_metadata = True

        def _request(self, method, url, body=None):
            asked.append(method)
            if method == "GET":
                if not self.has_metadata:
                    raise ServingError(f"GET {url}: HTTP 404")
                return renamed
            return json.loads(serve_rest(session, json.dumps(dict(body, signature_name="serving_default"))))

    client = Client("http://127.0.0.1:1", "m")
    for _ in range(2):
        out = client.predict(["나는 학생이다."], "text_only", "row")
        assert list(out) == ["translation"] and out["translation"].dtype == object
    assert asked == ["POST", "GET", "POST"]
    old_server = Client("http://127.0.0.1:1", "m")
    old_server.has_metadata = False
    assert list(old_server.predict(["나는 학생이다."], "text_only")) == ["output"]


def test_grpc_answers_of_every_signature_keep_the_signatures_names_and_dtypes(every_export):
    """gRPC carries each output's name and dtype in its TensorProto: every signature (GRU plain and xla,
    Transformer) reads back to the loader's own arrays, and becomes Translations."""
    from tensorflow_serving.apis import predict_pb2

    from seq2seq_keras.serving import GrpcClient, outputs_to_translations

    client = GrpcClient("127.0.0.1:1", "m")
    texts = ["나는 학생이다.", "", b"\xff\xfe abc"]
    for kind, (_, session, _) in every_export.items():
        for signature in (s for s in session.signatures if not s.startswith("__")):
            request = predict_pb2.PredictRequest.FromString(client.build_request(texts, signature).SerializeToString())
            response = predict_pb2.PredictResponse.FromString(run_predict(session, request).SerializeToString())
            parsed = client.parse_response(response)
            direct = session.run(
                signature, {"text": np.array([t if isinstance(t, bytes) else t.encode() for t in texts], object)}
            )
            assert sorted(parsed) == sorted(direct), (kind, signature)
            for name, value in direct.items():
                assert parsed[name].dtype == value.dtype, (kind, signature, name)
                np.testing.assert_array_equal(parsed[name], value, err_msg=f"{kind} {signature} {name}")
            assert len(outputs_to_translations(parsed, texts)) == len(texts)
    client.close()
