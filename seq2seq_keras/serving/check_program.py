"""The fresh-process program of ``seq2seq-keras check-servable`` (and of ``benchmark_servable``).

:func:`seq2seq_keras.serving.check.run_loader_program` runs this file by path in a
new ``python -I -S`` interpreter whose path holds this environment's packages
minus Keras and ``seq2seq_keras``: what works here works without them, as in
TensorFlow Serving. It therefore imports only the standard library, NumPy,
TensorFlow (and ``tensorflow_serving``'s protos), and its sibling file
``tf_serving_loader.py``, loaded by path rather than through the package
(``tests/serving/test_tf_serving_loader.py`` checks the imports of both files).

``python -I -S check_program.py REQUEST.json`` (:func:`main`) runs, for a
``"check"`` request (:func:`check_main`): an audit of every op; TF Serving's
loader (C API ``TF_LoadSessionFromSavedModel`` + ``TF_SessionRun``) on each call;
the warm-up requests replayed through that session; the TF2 path
(``tf.saved_model.load``) on the same calls; both paths compared; and which
forbidden modules the process imported. A ``"benchmark"`` request
(:func:`benchmark_main`) times signatures through one loader.
"""

from __future__ import annotations

import os
import sys

if __package__:  # imported as seq2seq_keras.serving.check_program
    from .tf_serving_loader import (
        WARMUP_FILE,
        ServingLoaderError,
        ServingSession,
        load_callables,
        time_signatures,
        warmup_requests,
    )
else:  # run as a file: load the sibling tf_serving_loader.py by path, never the seq2seq_keras package
    import importlib.util

    _spec = importlib.util.spec_from_file_location(
        "tf_serving_loader", os.path.join(os.path.dirname(os.path.abspath(__file__)), "tf_serving_loader.py")
    )
    _serving_loader = importlib.util.module_from_spec(_spec)
    sys.modules["tf_serving_loader"] = _serving_loader
    _spec.loader.exec_module(_serving_loader)
    ServingLoaderError, ServingSession = _serving_loader.ServingLoaderError, _serving_loader.ServingSession
    load_callables, time_signatures = _serving_loader.load_callables, _serving_loader.time_signatures
    WARMUP_FILE, warmup_requests = _serving_loader.WARMUP_FILE, _serving_loader.warmup_requests


def _audit_ops(path: str, request: dict) -> dict:
    """Every op of the SavedModel's graphs and function library: core TensorFlow, tensorflow-text, or neither.

    Runs before any op library is loaded, so that "core" means registered by TensorFlow itself.
    """
    from tensorflow.core.protobuf import saved_model_pb2
    from tensorflow.python.framework import op_def_registry

    proto = saved_model_pb2.SavedModel()
    with open(os.path.join(path, "saved_model.pb"), "rb") as f:
        proto.ParseFromString(f.read())
    used = set()
    for meta in proto.meta_graphs:
        functions = {fn.signature.name for fn in meta.graph_def.library.function}
        used.update(n.op for n in meta.graph_def.node)
        for fn in meta.graph_def.library.function:
            used.update(n.op for n in fn.node_def)
        used -= functions
    core = {op for op in used if op_def_registry.get(op) is not None}
    allowed_text = set(request["tf_text_ops"])
    return {
        "total": len(used),
        "core": len(core),
        "tf_text": sorted(op for op in used - core if op in allowed_text),
        "python": sorted(op for op in used if op in set(request["python_ops"])),
        "unknown": sorted(op for op in used - core if op not in allowed_text),
    }


def _output_problems(where: str, name: str, array, batch: int) -> list[str]:
    """What a TF Serving client could not use in one output array."""
    import numpy as np

    problems = []
    if array.ndim == 0 or array.shape[0] != batch:
        problems.append(
            f"{where}/{name} has shape {list(array.shape)} for a batch of {batch}: batch must be dimension 0"
        )
    if array.dtype.kind == "f" and not np.all(np.isfinite(array)):
        problems.append(f"{where}/{name} has non-finite values")
    if array.dtype == object:
        bad = 0
        for item in array.reshape(-1):
            try:
                item.decode("utf-8")
            except UnicodeDecodeError:
                bad += 1
        if bad:
            problems.append(f"{where}/{name}: {bad} strings are not valid UTF-8 (REST cannot carry them)")
    return problems


_OP_HINT = (
    "; tensorflow-text's ops are not registered: `import tensorflow_text` before loading in Python "
    "(TF Serving links them in)"
)


def _short_error(error: Exception) -> str:
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    keep = [line for line in lines if line.startswith(("Detected at node", "ValueError", "InvalidArgument"))]
    text = " ".join(keep) or (lines[0] if lines else "")
    hint = _OP_HINT if "Op type not registered" in str(error) else ""
    return f"{type(error).__name__}: {text[:600]}{hint}"


def _replay_warmup(session: ServingSession, path: str) -> tuple[list[str], list[str]]:
    """Replay ``assets.extra/tf_serving_warmup_requests`` through the session, as TF Serving does at load.

    TF Serving refuses the whole version when one warm-up request fails.
    Returns (facts, problems).
    """
    if not os.path.exists(os.path.join(path, WARMUP_FILE)):
        return ["warm-up: no assets.extra/tf_serving_warmup_requests (TF Serving loads without warming up)"], []
    replayed, problems = [], []
    try:
        requests = warmup_requests(path)
    except Exception as e:  # noqa: BLE001 - DataLossError (CRC, truncation) or DecodeError: reported in one line
        message = (str(e).splitlines() or [""])[0][:300]
        return [], [
            f"assets.extra/tf_serving_warmup_requests is damaged ({type(e).__name__}: {message}): TF Serving "
            "refuses to load a version whose warm-up file cannot be read; export the model again (or delete "
            "the file to serve without warm-up)"
        ]
    for log_type, signature, inputs, output_filter in requests:
        if log_type != "predict_log":
            problems.append(f"warm-up record of type {log_type}: only predict requests are written")
            continue
        try:
            session.run(signature, inputs, output_filter)
            replayed.append(signature)
        except Exception as e:  # noqa: BLE001 - reported, as TF Serving would refuse the version
            problems.append(
                f"warm-up request for {signature} fails in the session (TF Serving would refuse the "
                f"version): {_short_error(e)}"
            )
    facts = [
        f"warm-up: {len(replayed)} PredictionLog request(s) replayed through the session"
        + (f" ({', '.join(replayed)})" if replayed else "")
    ]
    return facts, problems


def _compare(a: dict, b: dict, label: str) -> tuple[float, list[str]]:
    """Max |difference| of float outputs and the list of outputs that differ beyond 1e-5."""
    import numpy as np

    worst, problems = 0.0, []
    for name in sorted(set(a) & set(b)):
        x, y = a[name], b[name]
        if x.shape != y.shape:
            problems.append(f"{label}/{name}: shapes {list(x.shape)} and {list(y.shape)} differ")
        elif x.dtype.kind == "f":
            diff = float(np.max(np.abs(x - y))) if x.size else 0.0
            worst = max(worst, diff)
            if diff > 1e-5:
                problems.append(f"{label}/{name}: differs by {diff:.3g} (> 1e-5)")
        elif not np.array_equal(x, y):
            problems.append(f"{label}/{name}: values differ")
    return worst, problems


def _decode_calls(request: dict) -> list[tuple[str, str, object]]:
    """``(key, signature, texts: object[batch] of bytes)`` for each call of the request (texts sent base64)."""
    import base64

    import numpy as np

    return [
        (c["key"], c["signature"], np.array([base64.b64decode(t) for t in c["texts_b64"]], dtype=object).reshape(-1))
        for c in request["calls"]
    ]


def _record_outputs(report: dict, prefix: str, signature: str, outputs: dict, batch: int) -> None:
    """Store one call's output arrays in the report (``"<prefix>/<name>"``) and what a client could not use."""
    for name, array in outputs.items():
        report["problems"].extend(_output_problems(signature, name, array, batch))
        report["outputs"][f"{prefix}/{name}"] = array


def _add_problem_once(report: dict, message: str) -> None:
    if message not in report["problems"]:
        report["problems"].append(message)


def _run_session_path(path: str, calls, op_libraries, report: dict) -> list[str]:
    """TensorFlow Serving's loader: C++ ``LoadSavedModel`` + ``Session::Run`` on the SignatureDef's tensor names,
    then the warm-up replay. Returns the signatures that ran."""
    try:
        session = ServingSession(path, op_libraries=op_libraries)
    except ServingLoaderError as e:
        hint = _OP_HINT if "Op type not registered" in str(e) else ""
        report["problems"].append(f"TF Serving's loader (C API LoadSavedModel) cannot load it: {e}{hint}")
        return []
    ran = []
    report["facts"].extend(f"could not load an op library: {f}" for f in session.op_library_failures)
    for key, signature, texts in calls:
        try:
            out = session.run(signature, {"text": texts})
        except ServingLoaderError as e:
            _add_problem_once(report, f"{signature} fails in TF Serving's loader (C API Session::Run): {e}"[:900])
            continue
        ran.append(signature)
        _record_outputs(report, f"session:{key}", signature, out, len(texts))
    facts, problems = _replay_warmup(session, path)
    report["facts"].extend(facts)
    report["problems"].extend(problems)
    session.close()
    if ran:
        report["facts"].append(
            "session path (C API TF_LoadSessionFromSavedModel + TF_SessionRun, the loader TF Serving runs): "
            f"{', '.join(dict.fromkeys(ran))} ran for batches of {sorted({len(t) for *_, t in calls})}"
        )
    return ran


def _run_tf2_path(path: str, calls, report: dict) -> list[str]:
    """The TF2 object path (``tf.saved_model.load``), what Python users and most tools use. Returns the signatures
    that ran; outputs must be dense tensors, not float16/bfloat16."""
    import tensorflow as tf

    try:
        loaded = tf.saved_model.load(path)
    except Exception as e:  # noqa: BLE001 - reported
        report["problems"].append(f"tf.saved_model.load fails: {_short_error(e)}")
        return []
    ran = []
    for key, signature, texts in calls:
        if signature not in loaded.signatures:
            report["problems"].append(f"signature {signature!r} missing at load time")
            continue
        try:
            out = loaded.signatures[signature](text=tf.constant(list(texts), dtype=tf.string, shape=[len(texts)]))
        except Exception as e:  # noqa: BLE001 - reported
            _add_problem_once(report, f"{signature} fails when called through tf.saved_model.load: {_short_error(e)}")
            continue
        ran.append(signature)
        for name, value in out.items():
            if not isinstance(value, tf.Tensor):
                report["problems"].append(f"{signature}/{name} is a {type(value).__name__}, not a dense tensor")
                continue
            if value.dtype in (tf.float16, tf.bfloat16):
                report["problems"].append(
                    f"{signature}/{name} is {value.dtype.name}: TF Serving clients expect float32"
                )
            _record_outputs(report, f"tf2:{key}", signature, {name: value.numpy()}, len(texts))
    if ran:
        report["facts"].append(f"TF2 path (tf.saved_model.load): {', '.join(dict.fromkeys(ran))} ran")
    return ran


def _compare_paths(calls, report: dict) -> None:
    """Both paths give the same numbers: tokens identical, floats within 1e-5, call by call."""
    worst, compared = 0.0, 0
    for key, _, _ in calls:
        a = {k.split("/", 1)[1]: v for k, v in report["outputs"].items() if k.startswith(f"session:{key}/")}
        b = {k.split("/", 1)[1]: v for k, v in report["outputs"].items() if k.startswith(f"tf2:{key}/")}
        if a and b:
            diff, problems = _compare(a, b, key)
            worst, compared = max(worst, diff), compared + 1
            report["problems"].extend(problems)
    report["facts"].append(
        f"session path vs TF2 path: {compared} calls compared, tokens identical, max |float difference| {worst:.2g}"
    )


def check_main(request: dict) -> dict:
    """The check-servable program: op audit, session path, warm-up replay, TF2 path, and their comparison.

    Returns ``{"problems", "facts", "ops", "outputs": {"session:<key>/<name>" | "tf2:<key>/<name>": array},
    "modules_leaked"}``.
    """
    path = request["path"]
    report = {"problems": [], "facts": [], "outputs": {}}
    ops = report["ops"] = _audit_ops(path, request)
    if ops["python"]:
        report["problems"].append(f"Python ops in the graph (TF Serving cannot run them): {ops['python']}")
    if ops["unknown"]:
        report["problems"].append(
            f"ops that are neither core TensorFlow nor tensorflow-text ops shipped in TF Serving: {ops['unknown']}"
        )
    calls = _decode_calls(request)
    session_ok = _run_session_path(path, calls, request["op_libraries"], report)
    tf2_ok = _run_tf2_path(path, calls, report)
    if session_ok and tf2_ok:
        _compare_paths(calls, report)
    leaked = sorted({m.split(".")[0] for m in sys.modules} & set(request["forbidden_modules"]))
    report["modules_leaked"] = leaked
    if leaked:
        report["problems"].append(f"the fresh process imported {leaked}")
    report["problems"] = list(dict.fromkeys(report["problems"]))
    return report


def benchmark_main(request: dict) -> dict:
    """Latency and throughput of one SavedModel's signatures, through TF Serving's loader or the TF2 path."""
    functions = load_callables(request["path"], request.get("loader", "session"), request["op_libraries"])
    missing = [s for s in request["signatures"] if s not in functions]
    if missing:
        raise ServingLoaderError(f"no signature {missing} in {request['path']}")
    figures = time_signatures(
        {s: functions[s] for s in request["signatures"]},
        request["sentences"],
        single=request["calls"],
        batches=request["batch_calls"],
        batch_size=request["batch_size"],
        warmup=request["warmup"],
    )
    return {
        signature: {
            "latency_median_ms": f["latency_ms_median"],
            "latency_p90_ms": f["latency_ms_p90"],
            "sentences_per_second": f["batch_sentences_per_s"],
        }
        for signature, f in figures.items()
    }


def main(argv=None) -> int:
    """``python -I -S check_program.py REQUEST.json``: run the check or the benchmark a request file asks for.

    Prints one line ``SEQ2SEQ_KERAS_REPORT {json}`` and writes output arrays to
    the request's ``outputs_file`` (``.npz``).
    """
    import json
    import sys

    argv = sys.argv[1:] if argv is None else argv
    with open(argv[0], encoding="utf-8") as f:
        request = json.load(f)
    if request["mode"] == "benchmark":
        print("SEQ2SEQ_KERAS_REPORT " + json.dumps(benchmark_main(request)))
        return 0
    report = check_main(request)
    outputs = report.pop("outputs")
    if request.get("outputs_file"):
        import numpy as np

        np.savez(request["outputs_file"], **{k.replace("/", "|"): v for k, v in outputs.items()})
    print("SEQ2SEQ_KERAS_REPORT " + json.dumps(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
