"""Clients for a running TensorFlow Serving: REST (``:predict``, JSON) and gRPC (``PredictionService``).

Both return the same :class:`~seq2seq_keras.translation.Translation` objects as
``model.translate``, attention included, so the plotting code works on a
server's answer::

    from seq2seq_keras.serving.client import RestClient, GrpcClient

    rest = RestClient("http://localhost:8501", "demo")
    rest.translate(["나는 학생이다"])[0].attention       # [tgt_len, src_len]
    grpc_client = GrpcClient("localhost:8500", "demo")
    grpc_client.translate("나는 학생이다", signature_name="beam_search")

REST bodies follow TensorFlow Serving's REST API document: row format
``{"signature_name": ..., "instances": [...]}`` or columnar format
``{"signature_name": ..., "inputs": {"text": [...]}}``; sentences that are not
valid UTF-8 travel as ``{"b64": ...}``. TF Serving rejects an empty
``instances`` list, so an empty batch is answered locally (``[]``) without a
request. Large batches are sent in chunks of ``batch_size`` sentences.

Needs the ``serving`` extra (``pip install seq2seq_keras[serving]``):
``requests`` for REST and ``tensorflow-serving-api`` (with ``grpcio``) for gRPC.

Importing this module loads neither TensorFlow nor Keras: the REST client
needs only ``requests`` and NumPy (the result type comes from
:mod:`seq2seq_keras.translation`). The gRPC client imports tensorflow-serving-api
when it is created; its protos live in the ``tensorflow`` package, so that
loads TensorFlow.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Mapping, Sequence

import numpy as np

from ..translation import Translation, as_utf8_bytes, readable, results_to_translations
from .signatures import INPUT_NAME, OUTPUT_DTYPES, output_names

DEFAULT_SIGNATURE = "translate_with_attention"
#: TensorFlow dtype names (``DT_*``, as TF Serving's metadata writes them) -> NumPy dtypes of decoded JSON.
_NUMPY_DTYPES = {
    "DT_STRING": object,
    "DT_FLOAT": np.float32,
    "DT_DOUBLE": np.float64,
    "DT_INT32": np.int32,
    "DT_INT64": np.int64,
    "DT_INT16": np.int16,
    "DT_INT8": np.int8,
    "DT_UINT8": np.uint8,
    "DT_BOOL": np.bool_,
    "DT_HALF": np.float16,
}
_GRPC_MESSAGE_LIMIT = 256 * 1024 * 1024


class ServingError(RuntimeError):
    """The server answered with an error (its message included)."""


def _texts_list(texts) -> tuple[bool, list]:
    if isinstance(texts, (str, bytes, np.str_)):
        return True, [texts]
    return False, list(texts)


def json_text_value(text: str | bytes):
    """A sentence as a TF Serving JSON value: a string, or ``{"b64": ...}`` when not valid UTF-8."""
    raw = as_utf8_bytes(text)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return {"b64": base64.b64encode(raw).decode("ascii")}


def _decode_json_strings(value):
    if isinstance(value, list):
        return [_decode_json_strings(v) for v in value]
    if isinstance(value, dict) and set(value) == {"b64"}:
        return base64.b64decode(value["b64"])
    return value


def signature_outputs(metadata: Mapping | None, signature_name: str) -> dict[str, str]:
    """``{output name: "DT_*" dtype}`` of one signature.

    ``metadata``: a :meth:`RestClient.metadata` / :meth:`GrpcClient.metadata` answer (the served
    model's own SignatureDefs). Without it, or for a signature it lacks: the signatures this package
    exports (the table of :mod:`seq2seq_keras.serving.signatures`; a Transformer's ``attention_heads`` is read
    by its name), else ``{}`` (unknown: read as JSON gives it).
    """
    defs = ((metadata or {}).get("metadata") or {}).get("signature_def", {}).get("signature_def", {})
    if signature_name in defs:
        outputs = defs[signature_name].get("outputs", {})
        return {name: info.get("dtype", "DT_INVALID") for name, info in sorted(outputs.items())}
    return {name: OUTPUT_DTYPES[name] for name in output_names(signature_name)}


def _column_to_array(value, dtype: str | None) -> np.ndarray:
    value = _decode_json_strings(value)
    if dtype in _NUMPY_DTYPES:
        return np.asarray(value, dtype=_NUMPY_DTYPES[dtype])
    return np.array(value, dtype=object) if _holds_strings(value) else np.asarray(value)


def _dtype(outputs: Mapping[str, str], name: str) -> str | None:
    """An output's dtype: the signature's, else that of the package's output of this name (a Transformer's
    ``attention_heads`` is in no signature's fixed list), else None."""
    return outputs.get(name) or OUTPUT_DTYPES.get(name)


def _holds_strings(value) -> bool:
    while isinstance(value, list) and value:
        value = value[0]
    return isinstance(value, (str, bytes))


def parse_rest_predict_response(
    body: Mapping, signature_name: str = DEFAULT_SIGNATURE, outputs: Mapping[str, str] | None = None
) -> dict[str, np.ndarray]:
    """A ``:predict`` JSON answer (row or columnar) -> ``{output name: numpy array}``, batch first.

    Args:
        body: the decoded JSON answer.
        signature_name: the signature that answered.
        outputs: its ``{output name: "DT_*" dtype}`` (:func:`signature_outputs`; default: from the
            signatures this package exports). TF Serving leaves the name out for a signature with
            one output (``{"outputs": [...]}``, ``{"predictions": [...]}``): that output's name is
            used; every array gets its output's dtype (``attention_heads`` float32, not objects).

    Raises:
        ServingError: the answer is an error, or not a ``:predict`` answer.
    """
    if "error" in body:
        raise ServingError(str(body["error"]))
    outputs = dict(signature_outputs(None, signature_name) if outputs is None else outputs)
    single = next(iter(outputs)) if len(outputs) == 1 else "output"
    if "outputs" in body:
        columns = body["outputs"]
        if not isinstance(columns, dict) or (len(outputs) == 1 and single not in columns):
            columns = {single: columns}
        return {name: _column_to_array(value, _dtype(outputs, name)) for name, value in columns.items()}
    if "predictions" in body:
        rows = body["predictions"]
        if len(outputs) != 1 and rows and isinstance(rows[0], dict) and set(rows[0]) != {"b64"}:
            return {name: _column_to_array([row[name] for row in rows], _dtype(outputs, name)) for name in rows[0]}
        return {single: _column_to_array(rows, _dtype(outputs, single))}
    raise ServingError(f"Not a :predict answer (no 'outputs' or 'predictions'): {str(body)[:200]}")


def outputs_to_translations(outputs: Mapping[str, np.ndarray], sources: Sequence) -> list[Translation]:
    """Server outputs -> Translations; a signature without attention outputs gives text only."""
    if "attention" in outputs:
        return results_to_translations(outputs, [readable(s) for s in sources], has_attention=True)
    texts = outputs["translation"]
    if len(texts) != len(sources):
        raise ServingError(f"{len(texts)} translations for {len(sources)} sentences: the batch dimension disagrees.")
    return [
        Translation(
            source=readable(s),
            text=t.decode("utf-8", "replace") if isinstance(t, bytes) else str(t),
            source_tokens=[],
            target_tokens=[],
            attention=None,
            log_prob=float("nan"),
        )
        for s, t in zip(sources, texts)
    ]


# ---------------------------------------------------------------------- REST
class RestClient:
    """TensorFlow Serving's REST API (default port 8501).

    Args:
        base_url: e.g. ``"http://localhost:8501"``.
        model_name: the ``name`` in models.config (``--name`` of ``seq2seq-keras export``).
        version: a fixed version; ``None`` lets the server pick the latest.
        timeout: seconds per HTTP request.
        request_format: ``"columnar"`` (``inputs``) or ``"row"`` (``instances``).
        batch_size: sentences per request.
    """

    def __init__(
        self,
        base_url: str = "http://localhost:8501",
        model_name: str = "demo",
        version: int | None = None,
        *,
        timeout: float = 60.0,
        request_format: str = "columnar",
        batch_size: int = 64,
    ):
        if request_format not in ("columnar", "row"):
            raise ValueError(f"request_format={request_format!r}: use 'columnar' (inputs) or 'row' (instances).")
        self.base_url = base_url.rstrip("/")
        self.model_name = model_name
        self.version = version
        self.timeout = timeout
        self.request_format = request_format
        self.batch_size = int(batch_size)
        self._session = None
        self._metadata: dict | None = None  # the model's /metadata answer, fetched once

    @property
    def model_url(self) -> str:
        url = f"{self.base_url}/v1/models/{self.model_name}"
        return url if self.version is None else f"{url}/versions/{int(self.version)}"

    def _http(self):
        if self._session is None:
            try:
                import requests
            except ImportError as e:  # pragma: no cover - depends on the environment
                raise ImportError("RestClient needs requests: pip install 'seq2seq_keras[serving]'") from e
            self._session = requests.Session()
        return self._session

    def _request(self, method: str, url: str, body: Mapping | None = None) -> dict:
        import requests

        try:
            if body is None:
                response = self._http().request(method, url, timeout=self.timeout)
            else:
                data = json.dumps(body, ensure_ascii=True, allow_nan=False).encode("ascii")
                response = self._http().request(
                    method, url, data=data, timeout=self.timeout, headers={"Content-Type": "application/json"}
                )
        except requests.RequestException as e:
            raise ServingError(
                f"{method} {url} failed: {e}. Is tensorflow_model_server running with --rest_api_port?"
            ) from e
        try:
            answer = response.json()  # Python's json accepts NaN/Infinity as TF Serving writes them
        except ValueError:
            answer = {"error": response.text[:500]}
        if response.status_code != 200 or "error" in answer:
            raise ServingError(f"{method} {url}: HTTP {response.status_code}: {answer.get('error', answer)}")
        return answer

    def status(self) -> dict:
        """The model status API: ``{"model_version_status": [{"version", "state", ...}]}``."""
        return self._request("GET", self.model_url)

    def metadata(self) -> dict:
        """The model metadata API: ``{"model_spec": ..., "metadata": {"signature_def": ...}}``."""
        return self._request("GET", f"{self.model_url}/metadata")

    def signature_outputs(self, signature_name: str = DEFAULT_SIGNATURE) -> dict[str, str]:
        """``{output name: "DT_*" dtype}`` of a signature, from the server's metadata (asked once, then
        cached); a server that does not answer it gets the package's own table
        (:func:`signature_outputs`)."""
        if self._metadata is None:
            try:
                self._metadata = self.metadata()
            except ServingError:
                self._metadata = {}
        return signature_outputs(self._metadata, signature_name)

    def wait_until_available(self, timeout: float = 120.0, interval: float = 0.5) -> None:
        """Poll :meth:`status` until a version is ``AVAILABLE``; raise :class:`ServingError` after ``timeout``."""
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            try:
                states = [v.get("state") for v in self.status().get("model_version_status", [])]
                if "AVAILABLE" in states:
                    return
                last = states
            except ServingError as e:
                last = str(e)
            time.sleep(interval)
        raise ServingError(f"model {self.model_name!r} not AVAILABLE after {timeout:.0f} s (last: {last})")

    def build_predict_body(
        self, texts: Sequence, signature_name: str = DEFAULT_SIGNATURE, request_format: str | None = None
    ) -> dict:
        """The JSON body of a ``:predict`` request for ``texts``."""
        request_format = request_format or self.request_format
        values = [json_text_value(t) for t in texts]
        if request_format == "row":
            if not values:
                raise ValueError(
                    "TF Serving rejects an empty 'instances' list; use the columnar format for a batch of 0."
                )
            return {"signature_name": signature_name, "instances": [{INPUT_NAME: v} for v in values]}
        return {"signature_name": signature_name, "inputs": {INPUT_NAME: values}}

    def predict(
        self, texts: Sequence, signature_name: str = DEFAULT_SIGNATURE, request_format: str | None = None
    ) -> dict[str, np.ndarray]:
        """One ``:predict`` call; returns ``{output name: numpy array}``."""
        body = self.build_predict_body(texts, signature_name, request_format)
        answer = self._request("POST", f"{self.model_url}:predict", body)
        return parse_rest_predict_response(answer, signature_name, self.signature_outputs(signature_name))

    def translate(self, texts, signature_name: str = DEFAULT_SIGNATURE, request_format: str | None = None):
        """Like ``model.translate``, through the server: a Translation for a str, else a list."""
        single, sentences = _texts_list(texts)
        results: list[Translation] = []
        for start in range(0, len(sentences), self.batch_size):
            chunk = sentences[start : start + self.batch_size]
            outputs = self.predict(chunk, signature_name, request_format)
            results.extend(outputs_to_translations(outputs, chunk))
        return results[0] if single else results

    def close(self) -> None:
        if self._session is not None:
            self._session.close()
            self._session = None


# ---------------------------------------------------------------------- gRPC
class GrpcClient:
    """TensorFlow Serving's gRPC API (default port 8500) through tensorflow-serving-api's stubs.

    Args:
        target: ``"host:port"``.
        model_name, version: as for :class:`RestClient`.
        timeout: seconds per call.
        batch_size: sentences per request.
        channel: an existing ``grpc.Channel`` (default: an insecure channel
            with 256 MiB message limits, attention grows with batch x lengths).
    """

    def __init__(
        self,
        target: str = "localhost:8500",
        model_name: str = "demo",
        version: int | None = None,
        *,
        timeout: float = 60.0,
        batch_size: int = 64,
        channel=None,
    ):
        try:
            import grpc
            from tensorflow_serving.apis import prediction_service_pb2_grpc
        except ImportError as e:  # pragma: no cover - depends on the environment
            raise ImportError("GrpcClient needs tensorflow-serving-api: pip install 'seq2seq_keras[serving]'") from e
        self.target = target
        self.model_name = model_name
        self.version = version
        self.timeout = timeout
        self.batch_size = int(batch_size)
        self._own_channel = channel is None
        self.channel = channel or grpc.insecure_channel(
            target,
            options=[
                ("grpc.max_receive_message_length", _GRPC_MESSAGE_LIMIT),
                ("grpc.max_send_message_length", _GRPC_MESSAGE_LIMIT),
            ],
        )
        self.stub = prediction_service_pb2_grpc.PredictionServiceStub(self.channel)

    def _model_spec(self, spec, signature_name: str | None = None):
        spec.name = self.model_name
        if signature_name is not None:
            spec.signature_name = signature_name
        if self.version is not None:
            spec.version.value = int(self.version)

    def build_request(self, texts: Sequence, signature_name: str = DEFAULT_SIGNATURE):
        """A ``PredictRequest`` with ``text: string[batch]``."""
        import tensorflow as tf
        from tensorflow_serving.apis import predict_pb2

        request = predict_pb2.PredictRequest()
        self._model_spec(request.model_spec, signature_name)
        raw = [as_utf8_bytes(t) for t in texts]
        request.inputs[INPUT_NAME].CopyFrom(tf.make_tensor_proto(raw, dtype=tf.string, shape=[len(raw)]))
        return request

    @staticmethod
    def parse_response(response) -> dict[str, np.ndarray]:
        """A ``PredictResponse`` -> ``{output name: numpy array}`` (``tf.make_ndarray``): each TensorProto
        carries its output's name and dtype, so every signature reads back as the server ran it."""
        import tensorflow as tf

        return {name: tf.make_ndarray(proto) for name, proto in response.outputs.items()}

    def _call(self, method, request):
        import grpc

        try:
            return method(request, timeout=self.timeout)
        except grpc.RpcError as e:
            raise ServingError(f"gRPC {self.target}: {e.code().name}: {e.details()}") from e

    def predict(self, texts: Sequence, signature_name: str = DEFAULT_SIGNATURE) -> dict[str, np.ndarray]:
        return self.parse_response(self._call(self.stub.Predict, self.build_request(texts, signature_name)))

    def translate(self, texts, signature_name: str = DEFAULT_SIGNATURE):
        """Like ``model.translate``, through the server: a Translation for a str, else a list."""
        single, sentences = _texts_list(texts)
        results: list[Translation] = []
        for start in range(0, len(sentences), self.batch_size):
            chunk = sentences[start : start + self.batch_size]
            results.extend(outputs_to_translations(self.predict(chunk, signature_name), chunk))
        return results[0] if single else results

    def metadata(self) -> dict:
        """``GetModelMetadata`` (signature_def), as the same dict the REST metadata API returns."""
        from google.protobuf import json_format
        from tensorflow_serving.apis import get_model_metadata_pb2

        request = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
        self._model_spec(request.model_spec)
        response = self._call(self.stub.GetModelMetadata, request)
        return json_format.MessageToDict(response, preserving_proto_field_name=True)

    def status(self) -> dict:
        """``ModelService.GetModelStatus`` as a dict (``model_version_status``)."""
        from google.protobuf import json_format
        from tensorflow_serving.apis import get_model_status_pb2, model_service_pb2_grpc

        request = get_model_status_pb2.GetModelStatusRequest()
        self._model_spec(request.model_spec)
        response = self._call(model_service_pb2_grpc.ModelServiceStub(self.channel).GetModelStatus, request)
        return json_format.MessageToDict(response, preserving_proto_field_name=True)

    def close(self) -> None:
        if self._own_channel:
            self.channel.close()


def signature_names(metadata: Mapping) -> list[str]:
    """Signature names from a :meth:`RestClient.metadata` / :meth:`GrpcClient.metadata` answer."""
    defs = metadata.get("metadata", {}).get("signature_def", {}).get("signature_def", {})
    return sorted(defs)
