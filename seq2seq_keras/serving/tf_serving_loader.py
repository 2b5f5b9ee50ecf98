"""Run a SavedModel the way TensorFlow Serving runs it: the C API's ``LoadSavedModel`` and ``Session::Run``.

TensorFlow Serving does not use ``tf.saved_model.load`` (the TF2 object graph).
Its ``SavedModelBundleFactory`` calls the C++ ``tensorflow::LoadSavedModel``:
import the MetaGraphDef tagged ``serve``, run the saver's restore op on
``variables/``, run the init op (tables), then answer every request with
``Session::Run`` on the tensor names written in a SignatureDef. TensorFlow's C API
(``TF_LoadSessionFromSavedModel``, ``TF_SessionRun``), exported by the
``libtensorflow_cc.so.2`` in the ``tensorflow`` wheel, is a thin wrapper around
exactly that loader, so a SavedModel that loads and runs here loads and runs in
``tensorflow_model_server`` (which links tensorflow-text's ops: load them with
``op_libraries``, see :func:`tf_text_op_libraries`).

A model written the wrong way for that loader (a ``tf.Module`` holding Keras 3
layers, saved with ``tf.saved_model.save``) passes every ``tf.saved_model.load``
test and fails here at the first ``Session::Run`` with
``Could not find variable ...``: the error TF Serving users report.

The fresh-process program of ``seq2seq-keras check-servable``
(:mod:`seq2seq_keras.serving.check_program`) loads this file by path in a ``python -I -S``
process, so it imports only the standard library, NumPy and TensorFlow, never
Keras or ``seq2seq_keras`` (``tests/serving/test_tf_serving_loader.py`` checks both files).

It holds :class:`ServingSession` (load a SavedModel, ``run`` a signature), the
C API bindings it needs, and the timing loop that ``seq2seq-keras check-servable
--benchmark`` and ``make bench`` share (:func:`time_signatures`, made of
:func:`timing_plan` and :func:`time_plan`; :func:`load_callables` turns a
SavedModel into the calls it times).

Example::

    with ServingSession("saved_models/demo/1", op_libraries=tf_text_op_libraries()) as session:
        out = session.run("translate_with_attention", {"text": np.array([b"hello"], object)})
        out["translation"], out["attention"].shape    # [batch], [batch, tgt_len, src_len]
"""

from __future__ import annotations

import ctypes
import importlib.util
import os
from pathlib import Path

#: TF_DataType codes (tensorflow/c/tf_datatype.h) -> NumPy dtype names; strings are object arrays.
_DTYPES = {
    1: "float32",
    2: "float64",
    3: "int32",
    4: "uint8",
    5: "int16",
    6: "int8",
    7: "object",
    9: "int64",
    10: "bool",
    17: "uint16",
    22: "uint32",
    23: "uint64",
}
_TF_STRING = 7
_TSTRING_SIZE = 24  # sizeof(TF_TString): tensorflow/core/platform/ctstring_internal.h
_OK = 0


class ServingLoaderError(RuntimeError):
    """The C API refused to load or run the SavedModel; the message is TensorFlow's."""


class _Buffer(ctypes.Structure):
    _fields_ = [("data", ctypes.c_void_p), ("length", ctypes.c_size_t), ("data_deallocator", ctypes.c_void_p)]


class _Output(ctypes.Structure):
    _fields_ = [("oper", ctypes.c_void_p), ("index", ctypes.c_int)]


def tensorflow_library_dir() -> Path:
    """The ``tensorflow`` package folder (found without importing TensorFlow)."""
    spec = importlib.util.find_spec("tensorflow")
    if spec is None or not spec.submodule_search_locations:
        raise ServingLoaderError("TensorFlow is not installed: pip install tensorflow")
    return Path(list(spec.submodule_search_locations)[0])


def tf_text_op_libraries() -> list[str]:
    """Paths of tensorflow-text's compiled op libraries (the ops TensorFlow Serving links in)."""
    spec = importlib.util.find_spec("tensorflow_text")
    if spec is None or not spec.submodule_search_locations:
        return []
    ops_dir = Path(list(spec.submodule_search_locations)[0]) / "python" / "ops"
    return sorted(str(p) for p in ops_dir.glob("_*.so"))


_C = None


def _c_api():
    """``libtensorflow_framework.so.2`` + ``libtensorflow_cc.so.2`` with the prototypes used here."""
    global _C
    if _C is not None:
        return _C
    folder = tensorflow_library_dir()
    framework = ctypes.CDLL(str(folder / "libtensorflow_framework.so.2"), mode=ctypes.RTLD_GLOBAL)
    cc = ctypes.CDLL(str(folder / "libtensorflow_cc.so.2"), mode=ctypes.RTLD_GLOBAL)
    p, i, sz, s = ctypes.c_void_p, ctypes.c_int, ctypes.c_size_t, ctypes.c_char_p
    signatures = {
        # name: (library, restype, argtypes)
        "TF_NewStatus": (framework, p, []),
        "TF_DeleteStatus": (framework, None, [p]),
        "TF_GetCode": (framework, i, [p]),
        "TF_Message": (framework, s, [p]),
        "TF_NewBuffer": (framework, ctypes.POINTER(_Buffer), []),
        "TF_DeleteBuffer": (framework, None, [ctypes.POINTER(_Buffer)]),
        "TF_AllocateTensor": (framework, p, [i, ctypes.POINTER(ctypes.c_int64), i, sz]),
        "TF_DeleteTensor": (framework, None, [p]),
        "TF_TensorData": (framework, p, [p]),
        "TF_TensorType": (framework, i, [p]),
        "TF_NumDims": (framework, i, [p]),
        "TF_Dim": (framework, ctypes.c_int64, [p, i]),
        "TF_NewGraph": (cc, p, []),
        "TF_DeleteGraph": (cc, None, [p]),
        "TF_NewSessionOptions": (cc, p, []),
        "TF_DeleteSessionOptions": (cc, None, [p]),
        "TF_LoadLibrary": (cc, p, [s, p]),
        "TF_LoadSessionFromSavedModel": (
            cc,
            p,
            [p, p, s, ctypes.POINTER(ctypes.c_char_p), i, p, ctypes.POINTER(_Buffer), p],
        ),
        "TF_GraphOperationByName": (cc, p, [p, s]),
        "TF_SessionRun": (
            cc,
            None,
            [
                p,
                ctypes.POINTER(_Buffer),
                ctypes.POINTER(_Output),
                ctypes.POINTER(p),
                i,
                ctypes.POINTER(_Output),
                ctypes.POINTER(p),
                i,
                p,
                i,
                ctypes.POINTER(_Buffer),
                p,
            ],
        ),
        "TF_CloseSession": (cc, None, [p, p]),
        "TF_DeleteSession": (cc, None, [p, p]),
        "TF_StringInit": (cc, None, [p]),
        "TF_StringCopy": (cc, None, [p, s, sz]),
        "TF_StringGetDataPointer": (cc, p, [p]),
        "TF_StringGetSize": (cc, sz, [p]),
        "TF_StringDealloc": (cc, None, [p]),
    }
    api = {}
    for name, (lib, restype, argtypes) in signatures.items():
        fn = getattr(lib, name)
        fn.restype, fn.argtypes = restype, argtypes
        api[name] = fn
    _C = api
    return api


class _Status:
    def __init__(self, c):
        self._c = c
        self.ptr = c["TF_NewStatus"]()

    def check(self, what: str) -> None:
        if self._c["TF_GetCode"](self.ptr) != _OK:
            message = self._c["TF_Message"](self.ptr).decode("utf-8", "replace")
            raise ServingLoaderError(f"{what}: {message}")

    def __del__(self):
        if getattr(self, "ptr", None):
            self._c["TF_DeleteStatus"](self.ptr)
            self.ptr = None


def load_op_libraries(paths) -> list[str]:
    """``TF_LoadLibrary`` each path (registering its ops, as TF Serving's link does); returns failures."""
    c = _c_api()
    failures = []
    for path in paths:
        status = _Status(c)
        c["TF_LoadLibrary"](str(path).encode(), status.ptr)
        try:
            status.check(f"TF_LoadLibrary({path})")
        except ServingLoaderError as e:
            failures.append(str(e))
    return failures


#: Where TF Serving reads a SavedModel's warm-up requests, relative to the version folder.
WARMUP_FILE = os.path.join("assets.extra", "tf_serving_warmup_requests")


def warmup_requests(path) -> list[tuple[str, str, dict, list | None]]:
    """The requests of a SavedModel's warm-up file (:data:`WARMUP_FILE`), in order, as TF Serving reads them:
    ``(log type, signature, inputs, output filter)``, the signature ``serving_default`` when the request names
    none, the inputs as NumPy arrays, the output filter ``None`` when empty (every output); for a record that
    is not a ``PredictLog``, only its log type is meaningful. ``[]`` when the SavedModel has no warm-up file.

    Raises:
        ImportError: tensorflow-serving-api (the ``serving`` extra), which defines the records, is missing.
        tensorflow.errors.DataLossError, google.protobuf.message.DecodeError: a damaged file.
    """
    file = os.path.join(str(path), WARMUP_FILE)
    if not os.path.exists(file):
        return []
    import tensorflow as tf
    from tensorflow_serving.apis import prediction_log_pb2

    out = []
    for record in tf.compat.v1.io.tf_record_iterator(file):
        log = prediction_log_pb2.PredictionLog.FromString(record)
        request = log.predict_log.request
        out.append(
            (
                log.WhichOneof("log_type"),
                request.model_spec.signature_name or "serving_default",
                {name: tf.make_ndarray(proto) for name, proto in request.inputs.items()},
                list(request.output_filter) or None,
            )
        )
    return out


class ServingSession:
    """A SavedModel loaded by TensorFlow's C++ ``LoadSavedModel`` (the loader TF Serving runs).

    Args:
        path: a SavedModel version folder (``saved_models/NAME/VERSION``).
        tags: MetaGraph tags to load (TF Serving loads ``serve``).
        op_libraries: custom-op libraries to register first (tensorflow-text's,
            which ``tensorflow_model_server`` links in).

    Attributes:
        meta_graph: the loaded ``MetaGraphDef`` (parsed with TensorFlow's protos).
        signatures: ``{signature name: SignatureDef}``.

    Raises:
        ServingLoaderError: TensorFlow's message when loading fails (bad folder,
            unknown op, missing tag). A variable the saver does not restore only
            fails at the first :meth:`run`, exactly as in TF Serving.
    """

    def __init__(self, path, *, tags=("serve",), op_libraries=()):
        from tensorflow.core.protobuf import meta_graph_pb2

        self._c = c = _c_api()
        self.op_library_failures = load_op_libraries(op_libraries)
        self.path = str(Path(path).resolve())
        self._graph = c["TF_NewGraph"]()
        options = self._new_session_options()
        meta = c["TF_NewBuffer"]()
        status = _Status(c)
        tag_array = (ctypes.c_char_p * len(tags))(*[t.encode() for t in tags])
        try:
            self._session = c["TF_LoadSessionFromSavedModel"](
                options, None, self.path.encode(), tag_array, len(tags), self._graph, meta, status.ptr
            )
            status.check(f"TF_LoadSessionFromSavedModel({self.path}, tags={list(tags)})")
            self.meta_graph = meta_graph_pb2.MetaGraphDef()
            self.meta_graph.ParseFromString(ctypes.string_at(meta.contents.data, meta.contents.length))
        except BaseException:
            c["TF_DeleteGraph"](self._graph)
            self._graph = self._session = None
            raise
        finally:
            c["TF_DeleteBuffer"](meta)
            c["TF_DeleteSessionOptions"](options)
        self.signatures = dict(self.meta_graph.signature_def)

    def _new_session_options(self):
        """The ``TF_SessionOptions`` the session is created with: TensorFlow's defaults, what TF Serving
        uses unless given thread or platform-config flags (a subclass may set a ``ConfigProto`` here)."""
        return self._c["TF_NewSessionOptions"]()

    # ------------------------------------------------------------------ tensors
    def _operation_output(self, tensor_name: str) -> _Output:
        op_name, _, index = tensor_name.partition(":")
        oper = self._c["TF_GraphOperationByName"](self._graph, op_name.encode())
        if not oper:
            raise ServingLoaderError(f"the graph has no operation {op_name!r} (signature tensor {tensor_name!r})")
        return _Output(oper, int(index or 0))

    def _to_tensor(self, array, dtype_code: int):
        import numpy as np

        c = self._c
        if dtype_code == _TF_STRING:
            array = np.asarray(array, dtype=object)
            items = array.reshape(-1)
            wrong = next((item for item in items if not isinstance(item, (str, bytes))), None)
            if wrong is not None:
                raise TypeError(f"a string input needs str or bytes items, got {type(wrong).__name__}: {wrong!r:.60}")
            dims = (ctypes.c_int64 * array.ndim)(*array.shape)
            tensor = c["TF_AllocateTensor"](_TF_STRING, dims, array.ndim, _TSTRING_SIZE * array.size)
            base = c["TF_TensorData"](tensor)
            for k, item in enumerate(items):
                data = item.encode("utf-8", "surrogateescape") if isinstance(item, str) else bytes(item)
                c["TF_StringInit"](base + k * _TSTRING_SIZE)
                c["TF_StringCopy"](base + k * _TSTRING_SIZE, data, len(data))
            return tensor, array.size
        if dtype_code not in _DTYPES:
            raise ServingLoaderError(f"input dtype code {dtype_code} is not supported by this runner")
        given = np.asarray(array)
        if not np.can_cast(given.dtype, _DTYPES[dtype_code], casting="same_kind"):
            raise TypeError(f"input of dtype {given.dtype} where the signature expects {_DTYPES[dtype_code]}")
        array = np.ascontiguousarray(given, dtype=_DTYPES[dtype_code])
        dims = (ctypes.c_int64 * array.ndim)(*array.shape)
        tensor = c["TF_AllocateTensor"](dtype_code, dims, array.ndim, array.nbytes)
        if array.nbytes:
            ctypes.memmove(c["TF_TensorData"](tensor), array.ctypes.data, array.nbytes)
        return tensor, array.size

    def _free_input(self, tensor, dtype_code: int, size: int) -> None:
        c = self._c
        if dtype_code == _TF_STRING:
            base = c["TF_TensorData"](tensor)
            for k in range(size):
                c["TF_StringDealloc"](base + k * _TSTRING_SIZE)
        c["TF_DeleteTensor"](tensor)

    def _from_tensor(self, tensor):
        import numpy as np

        c = self._c
        code = c["TF_TensorType"](tensor)
        shape = tuple(c["TF_Dim"](tensor, d) for d in range(c["TF_NumDims"](tensor)))
        size = int(np.prod(shape)) if shape else 1
        base = c["TF_TensorData"](tensor)
        if code == _TF_STRING:
            out = np.empty(size, dtype=object)
            for k in range(size):
                item = base + k * _TSTRING_SIZE
                out[k] = ctypes.string_at(c["TF_StringGetDataPointer"](item), c["TF_StringGetSize"](item))
            return out.reshape(shape)
        if code not in _DTYPES:
            raise ServingLoaderError(f"output dtype code {code} is not one TF Serving clients can read")
        dtype = np.dtype(_DTYPES[code])
        if size == 0:
            return np.zeros(shape, dtype)
        return np.frombuffer(ctypes.string_at(base, size * dtype.itemsize), dtype=dtype).reshape(shape).copy()

    # ------------------------------------------------------------------ run
    def inputs(self, signature: str) -> dict[str, int]:
        """``{input name: TF_DataType code}`` of a signature."""
        return {name: info.dtype for name, info in self._signature(signature).inputs.items()}

    def outputs(self, signature: str) -> dict[str, int]:
        return {name: info.dtype for name, info in self._signature(signature).outputs.items()}

    def _signature(self, name: str):
        if name not in self.signatures:
            raise ServingLoaderError(f"no signature {name!r} in {self.path}; it has {sorted(self.signatures)}")
        return self.signatures[name]

    def run(self, signature: str, inputs: dict, output_names=None) -> dict:
        """``Session::Run`` on the SignatureDef's tensor names, as TF Serving's Predict does.

        Args:
            signature: a signature key, e.g. ``"serving_default"``.
            inputs: ``{input name: array-like}`` (strings as ``str``/``bytes``).
            output_names: the outputs to fetch (default: all of the signature's).

        Returns:
            ``{output name: numpy array}`` (strings as ``bytes`` in object arrays).

        Raises:
            ServingLoaderError: a missing or extra input, an output the signature does not have, or TensorFlow's error
                from ``TF_SessionRun`` (e.g. ``Could not find variable ...``).
            TypeError: an input of the wrong type (numbers for a string input,
                floats for an integer one): rejected, as TF Serving rejects them.
        """
        sdef = self._signature(signature)
        names = list(output_names) if output_names is not None else sorted(sdef.outputs)
        unknown = [n for n in names if n not in sdef.outputs]
        if unknown:
            raise ServingLoaderError(
                f"signature {signature!r} has no output {unknown[0]!r}: it has {sorted(sdef.outputs)}"
            )
        return self._session_run(signature, inputs, {n: sdef.outputs[n].name for n in names})[0]

    def run_warmup(self) -> int:
        """Replay the SavedModel's warm-up file as TF Serving does after loading a version and before
        serving it (``RunSavedModelWarmup``): every request of :func:`warmup_requests` once, so that each
        signature's first real request finds its graph optimised.

        Returns:
            the number of requests replayed (0 when the SavedModel has no warm-up file).

        Raises:
            ServingLoaderError: a record that is not a ``PredictLog``, or a request that fails (TF
                Serving then refuses to load the version).
        """
        requests = warmup_requests(self.path)
        for log_type, signature, inputs, output_filter in requests:
            if log_type != "predict_log":
                raise ServingLoaderError(f"{self.path}: a warm-up record of type {log_type}: only Predict is replayed")
            self.run(signature, inputs, output_filter)
        return len(requests)

    def _session_run(self, signature: str, inputs: dict, fetches: dict, run_options: bytes | None = None):
        """``TF_SessionRun``: feed the signature's ``inputs``, fetch ``fetches`` (``{output name: graph tensor
        name}``), with serialized ``RunOptions`` if given. Returns ``(outputs, serialized RunMetadata or None)``."""
        sdef = self._signature(signature)
        if set(inputs) != set(sdef.inputs):
            raise ServingLoaderError(f"{signature} takes inputs {sorted(sdef.inputs)}, got {sorted(inputs)}")
        names = list(fetches)
        c = self._c
        options_buffer = metadata_buffer = None
        if run_options is not None:
            keep = ctypes.create_string_buffer(run_options, len(run_options))
            options_buffer = ctypes.pointer(_Buffer(ctypes.cast(keep, ctypes.c_void_p), len(run_options), None))
            metadata_buffer = c["TF_NewBuffer"]()
        feeds, tensors, sizes = [], [], []
        try:
            for name, value in inputs.items():
                info = sdef.inputs[name]
                feeds.append(self._operation_output(info.name))
                tensor, size = self._to_tensor(value, info.dtype)
                tensors.append(tensor)
                sizes.append((info.dtype, size))
            outputs = [self._operation_output(fetches[n]) for n in names]
            in_array = (_Output * len(feeds))(*feeds)
            in_values = (ctypes.c_void_p * len(tensors))(*tensors)
            out_array = (_Output * len(outputs))(*outputs)
            out_values = (ctypes.c_void_p * len(outputs))()
            status = _Status(c)
            c["TF_SessionRun"](
                self._session,
                options_buffer,
                in_array,
                in_values,
                len(feeds),
                out_array,
                out_values,
                len(outputs),
                None,
                0,
                metadata_buffer,
                status.ptr,
            )
            status.check(f"TF_SessionRun({signature})")
            result = {}
            for name, tensor in zip(names, out_values):
                try:
                    result[name] = self._from_tensor(tensor)
                finally:
                    c["TF_DeleteTensor"](tensor)
            metadata = None
            if metadata_buffer is not None:
                metadata = ctypes.string_at(metadata_buffer.contents.data, metadata_buffer.contents.length)
            return result, metadata
        finally:
            for tensor, (code, size) in zip(tensors, sizes):
                self._free_input(tensor, code, size)
            if metadata_buffer is not None:
                c["TF_DeleteBuffer"](metadata_buffer)

    def close(self) -> None:
        if getattr(self, "_session", None):
            status = _Status(self._c)
            self._c["TF_CloseSession"](self._session, status.ptr)
            self._c["TF_DeleteSession"](self._session, status.ptr)
            self._session = None
        if getattr(self, "_graph", None):
            self._c["TF_DeleteGraph"](self._graph)
            self._graph = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass


# ---------------------------------------------------------------------- a SavedModel timed through a loader
def time_signatures(
    functions: dict, sentences, *, single: int = 100, batches: int = 10, batch_size: int = 64, warmup: int = 5
) -> dict:
    """Latency and throughput of several serving calls, measured interleaved: :func:`time_plan` of
    :func:`timing_plan` (what ``seq2seq-keras check-servable --benchmark`` reports).

    Args:
        functions: ``{key: call}``; ``call(list of sentences)`` runs one request and
            returns its outputs (fetched to host memory).
        sentences: the pool of sentences; single calls cycle through it.
        single: one-sentence calls per key (after ``warmup`` calls and one warm-up batch).
        batches: timed batches of ``batch_size`` sentences per key.

    Returns:
        :func:`time_plan`'s ``{key: figures}``.
    """
    return time_plan(
        functions,
        timing_plan(functions, sentences, single=single, batches=batches, batch_size=batch_size, warmup=warmup),
    )


def timing_plan(
    keys, sentences, *, single: int = 100, batches: int = 10, batch_size: int = 64, warmup: int = 5
) -> list[tuple[str, object, list]]:
    """The calls of one timing run, in the order they are made: ``[(phase, key, request)]``.

    ``phase`` is ``"warmup"`` (for each key in turn: ``warmup`` single sentences and the first
    batch; caches, thread pools, a batch shape), ``"single"`` (one-sentence requests cycling
    through ``sentences``, ``single`` per key, interleaved key by key) or ``"batch"`` (``batches``
    requests of ``batch_size`` sentences per key, interleaved); interleaving lets every key see the
    same machine state.
    """
    sentences = list(sentences)
    if not sentences:
        raise ValueError("No sentences to translate.")
    keys = list(keys)
    singles = [[sentences[i % len(sentences)]] for i in range(single)]
    batch_requests = [
        [sentences[(b * batch_size + j) % len(sentences)] for j in range(batch_size)] for b in range(max(batches, 1))
    ]  # the first is also the warm-up batch
    plan = [
        ("warmup", key, request)
        for key in keys
        for request in (singles[:warmup] or [sentences[:1]]) + [batch_requests[0]]
    ]
    plan += [("single", key, request) for request in singles for key in keys]
    plan += [("batch", key, request) for request in batch_requests[:batches] for key in keys]
    return plan


def time_plan(functions: dict, plan) -> dict:
    """Make the calls of ``plan`` (``(phase, key, request)`` in order, as from :func:`timing_plan`)
    and time each one (``time.perf_counter`` around ``functions[key](request)``).

    ``plan`` is read one call at a time, just before the call, outside the timing.

    Returns:
        ``{key: {"latency_ms_median", "latency_ms_p90", "batch_sentences_per_s", "calls",
        "first_call_ms", "warmup_calls"}}``: latency over the ``"single"`` calls (``calls`` of
        them; NaN without any), the median over ``"batch"`` calls of sentences per second
        (``None`` without any), ``first_call_ms`` the key's very first call (graph optimisation,
        XLA compilation and cold caches included).
    """
    import time

    import numpy as np

    first, warm_calls = {}, dict.fromkeys(functions, 0)
    latencies = {key: [] for key in functions}
    throughput = {key: [] for key in functions}
    for phase, key, request in plan:
        call = functions[key]
        start = time.perf_counter()
        call(request)
        seconds = time.perf_counter() - start
        first.setdefault(key, 1000 * seconds)
        if phase == "warmup":
            warm_calls[key] += 1
        elif phase == "single":
            latencies[key].append(1000 * seconds)
        else:
            throughput[key].append(len(request) / seconds)
    return {
        key: {
            "latency_ms_median": float(np.median(latencies[key])) if latencies[key] else float("nan"),
            "latency_ms_p90": float(np.percentile(latencies[key], 90)) if latencies[key] else float("nan"),
            "batch_sentences_per_s": float(np.median(throughput[key])) if throughput[key] else None,
            "calls": len(latencies[key]),
            "first_call_ms": first.get(key),
            "warmup_calls": warm_calls[key],
        }
        for key in functions
    }


def load_callables(path: str, loader: str = "session", op_libraries=(), *, warmup: bool = False) -> dict:
    """``{signature: call(sentences) -> outputs}`` for one SavedModel through one loader.

    ``loader="session"``: TF Serving's loader (:class:`ServingSession`), with ``warmup`` its
    warm-up file replayed after loading, as TF Serving does (:meth:`ServingSession.run_warmup`);
    ``"tf2"``: ``tf.saved_model.load`` (op libraries loaded first).
    """
    import numpy as np

    if loader == "session":
        session = ServingSession(path, op_libraries=op_libraries)
        if warmup:
            session.run_warmup()

        def make(signature):
            (name,) = session.inputs(signature)
            return lambda sentences: session.run(signature, {name: np.array(list(sentences), dtype=object)})

        return {sig: make(sig) for sig in session.signatures if not sig.startswith("__")}
    if loader != "tf2":
        raise ValueError(f"loader={loader!r}: choose 'session' (TF Serving's C API path) or 'tf2'.")
    import tensorflow as tf

    for lib in op_libraries:
        tf.load_op_library(lib)
    module = tf.saved_model.load(path)

    def make_tf2(fn):
        def call(sentences):
            return {k: v.numpy() for k, v in fn(tf.constant(list(sentences), dtype=tf.string)).items()}

        return call

    return {sig: make_tf2(fn) for sig, fn in module.signatures.items()}
