"""Prove an exported SavedModel servable by TensorFlow Serving, without a server, and time it.

:func:`check_servable` checks, in order (each failure is a problem in the report):

1. the folder is ``saved_models/NAME/<integer>`` holding ``saved_model.pb``;
2. a MetaGraph tagged ``serve``; the signatures ``serving_default`` and
   ``translate_with_attention`` (``beam_search`` when present too), each with one
   input ``text: string[?]``; every output dense (no ragged or sparse encoding),
   not float16/bfloat16/variant, with the batch as an unknown dimension 0;
3. in a fresh ``python -I`` process that cannot import Keras or this package
   (the program is :mod:`seq2seq_keras.serving_loader`, run as a file):
   an audit of every op (core TensorFlow, or tensorflow-text ops that TF Serving
   links in; no PyFunc); **TF Serving's own loader**: TensorFlow's C API
   ``TF_LoadSessionFromSavedModel`` (the C++ ``LoadSavedModel``: restore op, init
   op) and ``TF_SessionRun`` on the SignatureDef's tensor names, every signature
   on a few awkward sentences and an empty batch; the warm-up requests replayed
   through that session (TF Serving refuses a version whose warm-up fails); the
   TF2 path (``tf.saved_model.load``) on the same calls; both paths compared;
4. parity with the Python API: the model the export came from (recorded at
   export, or passed) translates the same sentences with ``model.translate``;
   tokens must be identical and attention within 1e-5.

:func:`benchmark_servable` times signatures in a fresh process through the same
session path (or the TF2 path, for comparison).
"""

from __future__ import annotations

import base64
import dataclasses
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path
from typing import Sequence

from .export import INPUT_NAME, REQUIRED_SIGNATURES, SETTINGS_FILE, SIGNATURES, is_version_name, model_versions
from .serving_loader import tf_text_op_libraries

#: Ops registered by tensorflow-text 2.21. All come from the cc targets of
#: ``@org_tensorflow_text//tensorflow_text:ops_lib``, which TensorFlow Serving
#: links into ``tensorflow_model_server`` (``SUPPORTED_TENSORFLOW_OPS`` in
#: tensorflow_serving/model_servers/BUILD), so the stock server runs them.
TF_TEXT_SERVING_OPS = frozenset(
    """
    CaseFoldUTF8 ConstrainedSequence FastBertNormalize FastWordpieceTokenizeWithOffsets
    FindSourceOffsets MaxSpanningTree NormalizeUTF8 NormalizeUTF8WithOffsetsMap PhraseTokenize
    RegexSplitWithOffsets RougeL SentenceFragments SentenceFragmentsV2 SentencepieceDetokenizeOp
    SentencepieceIdToStringOp SentencepieceOp SentencepieceStringToIdOp SentencepieceTokenizeOp
    SentencepieceTokenizeWithOffsetsOp SentencepieceVocabSizeOp SplitMergeTokenizeWithOffsets
    TFText>BoiseTagsToOffsets TFText>ByteSplitByOffsets TFText>ByteSplitWithOffsets
    TFText>FastSentencepieceDetokenize TFText>FastSentencepieceTokenize TFText>FastWordpieceDetokenize
    TFText>NgramsStringJoin TFText>OffsetsToBoiseTags TFText>PhraseDetokenize
    TFText>RoundRobinGenerateMasks TFText>RoundRobinTrim TFText>Utf8Binarize
    TFText>WhitespaceTokenizeWithOffsetsV2 TokenizerFromLogits UnicodeScriptTokenizeWithOffsets
    WhitespaceTokenizeWithOffsets WordpieceTokenizeWithOffsets
    """.split()
)
#: Registered in core TensorFlow but with kernels that call back into Python: never servable.
PYTHON_OPS = frozenset({"PyFunc", "PyFuncStateless", "EagerPyFunc"})
#: Modules a fresh serving process must not import (proof that the SavedModel stands alone).
FORBIDDEN_MODULES = ("seq2seq_keras", "keras", "tf_keras", "tensorflow_text")


# ---------------------------------------------------------------------- a fresh process
_SHADOW_DIR: str | None = None


def _shadow_site_packages() -> str | None:
    """A folder of links to this environment's packages minus Keras and this package.

    A process started with ``python -I -S`` and only this folder on its path
    cannot import Keras or seq2seq_keras even by accident, so a SavedModel that
    works there does not depend on them. ``None`` where links cannot be made.
    """
    global _SHADOW_DIR
    if _SHADOW_DIR is not None and os.path.isdir(_SHADOW_DIR):
        return _SHADOW_DIR
    folders = []
    for key in ("purelib", "platlib"):
        folder = sysconfig.get_paths().get(key)
        if folder and os.path.isdir(folder) and folder not in folders:
            folders.append(folder)
    shadow = tempfile.mkdtemp(prefix="seq2seq_keras_fresh_")
    try:
        for folder in folders:
            for entry in os.listdir(folder):
                low = entry.lower()
                if low.endswith(".pth") or low.startswith(("keras", "tf_keras", "seq2seq_keras", "__editable__")):
                    continue
                target = os.path.join(shadow, entry)
                if not os.path.lexists(target):
                    os.symlink(os.path.join(folder, entry), target)
    except OSError:
        shutil.rmtree(shadow, ignore_errors=True)
        return None
    import atexit

    atexit.register(shutil.rmtree, shadow, True)
    _SHADOW_DIR = shadow
    return shadow


def run_loader_program(request_file: str, *, timeout: float = 600) -> subprocess.CompletedProcess:
    """Run :mod:`seq2seq_keras.serving_loader` as a file in a new interpreter that cannot import Keras or this package.

    Isolated mode (``-I -S``: no user site, no ``PYTHON*`` variables, no current
    folder on the path) with only :func:`_shadow_site_packages` added; where that
    cannot be built, a plain isolated interpreter. Runs in a temporary folder.
    """
    program = str(Path(__file__).with_name("serving_loader.py"))
    shadow = _shadow_site_packages()
    code = f"import runpy, sys; sys.argv = [{program!r}, {request_file!r}]; runpy.run_path({program!r}, run_name='__main__')"
    if shadow is not None:
        argv = [sys.executable, "-I", "-S", "-c", f"import sys; sys.path.insert(0, {shadow!r}); " + code]
    else:
        argv = [sys.executable, "-I", "-c", code]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    with tempfile.TemporaryDirectory(prefix="seq2seq_keras_run_") as cwd:
        return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, cwd=cwd, env=env)


def _failure(message: str) -> dict:
    return {"problems": [message], "facts": [], "ops": {}, "modules_leaked": [], "outputs": {}}


def _run_loader_program(request: dict, *, timeout: float) -> dict:
    """Write ``request`` to a file and run the loader program on it; returns its report."""
    with tempfile.TemporaryDirectory(prefix="seq2seq_keras_servable_") as tmp:
        request = dict(request, outputs_file=os.path.join(tmp, "outputs.npz"))
        request_file = os.path.join(tmp, "request.json")
        with open(request_file, "w", encoding="utf-8") as f:
            json.dump(request, f)
        try:
            proc = run_loader_program(request_file, timeout=timeout)
        except subprocess.TimeoutExpired:
            return _failure(f"the fresh process did not finish within {timeout:.0f} s")
        line = next((l for l in proc.stdout.splitlines()[::-1] if l.startswith("SEQ2SEQ_KERAS_REPORT ")), None)
        if proc.returncode != 0 or line is None:
            tail = (proc.stderr or proc.stdout)[-3000:]
            return _failure(f"the fresh process failed (exit {proc.returncode}):\n{tail}")
        report = json.loads(line[len("SEQ2SEQ_KERAS_REPORT "):])
        if request["mode"] == "check":
            import numpy as np

            outputs: dict[str, dict] = {}
            if os.path.exists(request["outputs_file"]):
                with np.load(request["outputs_file"], allow_pickle=True) as data:
                    for flat_key in data.files:
                        key, name = flat_key.split("|", 1)
                        outputs.setdefault(key, {})[name] = data[flat_key]
            report["outputs"] = outputs
        return report


def run_servable_fresh(
    path: str | os.PathLike,
    calls: Sequence[tuple[str, str, Sequence[str | bytes]]],
    *,
    timeout: float = 600,
) -> dict:
    """Load the SavedModel at ``path`` in a fresh process and run signatures there, through both loaders.

    ``calls``: ``(key, signature_name, sentences)`` triples. Returns a dict with
    ``problems`` (list of str), ``facts``, ``ops`` (op audit), ``modules_leaked``
    and ``outputs``: ``{"session:<key>": {output_name: numpy array}, "tf2:<key>": ...}``
    (``session``: TF Serving's loader through the C API; ``tf2``: ``tf.saved_model.load``).
    """
    from .decoding import as_utf8_bytes

    request = {
        "mode": "check",
        "path": str(Path(path).resolve()),
        "op_libraries": tf_text_op_libraries(),
        "tf_text_ops": sorted(TF_TEXT_SERVING_OPS),
        "python_ops": sorted(PYTHON_OPS),
        # Without the shadow folder TensorFlow imports Keras itself; only this package is then checked.
        "forbidden_modules": list(FORBIDDEN_MODULES) if _shadow_site_packages() else ["seq2seq_keras", "tensorflow_text"],
        "calls": [
            {"key": key, "signature": sig, "texts_b64": [base64.b64encode(as_utf8_bytes(t)).decode() for t in texts]}
            for key, sig, texts in calls
        ],
    }
    report = _run_loader_program(request, timeout=timeout)
    return report


# ---------------------------------------------------------------------- check-servable
@dataclasses.dataclass
class ServableReport:
    """What :func:`check_servable` found; ``ok`` when there are no problems."""

    path: str
    facts: list[str] = dataclasses.field(default_factory=list)
    problems: list[str] = dataclasses.field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def format(self) -> str:
        lines = [f"SavedModel {self.path}"]
        lines += [f"  {fact}" for fact in self.facts]
        if self.problems:
            lines.append(f"NOT SERVABLE: {len(self.problems)} problem(s)")
            lines += [f"  - {problem}" for problem in self.problems]
        else:
            lines.append("OK: servable by TensorFlow Serving")
        return "\n".join(lines)


_DTYPE_NAMES = {
    1: "float32", 2: "float64", 3: "int32", 4: "uint8", 6: "int8", 7: "string", 9: "int64", 10: "bool",
    14: "bfloat16", 19: "float16", 21: "variant",
}


def _info_text(name, info) -> str:
    if info.WhichOneof("encoding") != "name":
        return f"{name}: {info.WhichOneof('encoding')}"
    return f"{name}: {_DTYPE_NAMES.get(info.dtype, info.dtype)}{_shape_text(info.tensor_shape)}"


def _shape_text(shape) -> str:
    if shape.unknown_rank:
        return "unknown rank"
    return "[" + ", ".join("?" if d.size < 0 else str(d.size) for d in shape.dim) + "]"


SMOKE_SENTENCES = ("Hello.", "", "나는 학생이다", "¿Dónde está?\x00 😀")


def check_servable(
    path: str | os.PathLike,
    *,
    smoke: bool = True,
    timeout: float = 600,
    model=None,
) -> ServableReport:
    """Check that ``path`` (``saved_models/NAME/VERSION``, or ``saved_models/NAME`` for its latest
    version) is a SavedModel TensorFlow Serving can serve; see the module docstring for the checks.

    Args:
        smoke: run the fresh-process part (op audit, TF Serving's loader, warm-up,
            TF2 path, parity); ``False`` checks only the files and signatures.
        timeout: seconds allowed for the fresh process.
        model: the Python model to compare with: a ``Seq2Seq``, or a run folder /
            ``.keras`` file. Default: the one recorded at export in
            ``assets.extra/seq2seq_keras_export.json``, when it still exists.

    Returns:
        a :class:`ServableReport`; ``report.ok`` is False with the reasons in
        ``report.problems`` (a variable TF Serving's loader cannot restore is
        named there, e.g. "Could not find variable encoder/...").
    """
    from tensorflow.core.protobuf import saved_model_pb2

    path = Path(path)
    if not (path / "saved_model.pb").exists() and model_versions(path):
        path = path / str(model_versions(path)[-1])  # a model folder: its latest version, as the server would
    report = ServableReport(str(path))
    pb = path / "saved_model.pb"
    if not pb.is_file():
        report.problems.append(f"no saved_model.pb in {path}: export one with 'seq2seq-keras export'.")
        return report
    if not is_version_name(path.resolve().name):
        report.problems.append(
            f"folder name {path.resolve().name!r} is not a version number: TF Serving only loads "
            "saved_models/NAME/<integer>/."
        )
    proto = saved_model_pb2.SavedModel()
    proto.ParseFromString(pb.read_bytes())
    metas = [m for m in proto.meta_graphs if "serve" in m.meta_info_def.tags]
    report.facts.append("tag-sets: " + "; ".join(",".join(sorted(m.meta_info_def.tags)) for m in proto.meta_graphs))
    if not metas:
        report.problems.append("no MetaGraph tagged 'serve' (TF Serving loads the 'serve' tag).")
        return report
    signature_defs = metas[0].signature_def
    present = [s for s in signature_defs if not s.startswith("__")]
    report.facts.append(f"signatures: {', '.join(sorted(present))}")
    for required in REQUIRED_SIGNATURES:
        if required not in signature_defs:
            report.problems.append(f"signature {required!r} is missing.")
    checked = sorted(present, key=lambda s: (SIGNATURES.index(s) if s in SIGNATURES else len(SIGNATURES), s))
    for sig in checked:
        sdef = signature_defs[sig]
        inputs = dict(sdef.inputs)
        report.facts.append(
            f"{sig}: inputs "
            + ", ".join(_info_text(n, t) for n, t in inputs.items())
            + " -> "
            + ", ".join(_info_text(n, t) for n, t in sorted(sdef.outputs.items()))
        )
        if list(inputs) != [INPUT_NAME] or inputs[INPUT_NAME].dtype != 7 or _shape_text(inputs[INPUT_NAME].tensor_shape) != "[?]":
            report.problems.append(f"{sig}: expected one input 'text: string[?]', got {sorted(inputs)}.")
        for name, info in sdef.outputs.items():
            where = f"{sig}/{name}"
            encoding = info.WhichOneof("encoding")
            if encoding != "name":
                report.problems.append(f"{where} is {encoding} (not dense): TF Serving's REST API needs dense tensors.")
            if info.dtype in (14, 19):
                report.problems.append(f"{where} is {_DTYPE_NAMES[info.dtype]}: export float32.")
            if info.dtype == 21:
                report.problems.append(f"{where} is a variant (ragged or nested) tensor: export dense tensors.")
            shape = info.tensor_shape
            if shape.unknown_rank or not shape.dim:
                report.problems.append(f"{where} has {_shape_text(shape)} shape: outputs need the batch as dimension 0.")
            elif shape.dim[0].size != -1:
                report.problems.append(f"{where} has a fixed dimension 0 ({shape.dim[0].size}): it must be the batch.")
    if not smoke:
        return report
    calls = [(f"{sig}@{n}", sig, list(SMOKE_SENTENCES[:n])) for sig in checked for n in (len(SMOKE_SENTENCES), 1, 0)]
    result = run_servable_fresh(path, calls, timeout=timeout)
    ops = result.get("ops") or {}
    if ops:
        report.facts.append(
            f"ops: {ops['total']} distinct, {ops['core']} core TensorFlow, tensorflow-text: {', '.join(ops['tf_text']) or 'none'}"
        )
    report.problems.extend(result["problems"])
    report.facts.extend(result.get("facts", []))
    session = {key[len("session:"):]: value for key, value in result.get("outputs", {}).items() if key.startswith("session:")}
    key = f"{SIGNATURES[0]}@{len(SMOKE_SENTENCES)}"
    if key in session and "translation" in session[key]:
        sample = [t.decode("utf-8", "replace") for t in session[key]["translation"][:3]]
        report.facts.append(
            "translation through TF Serving's loader (fresh process, no keras, no seq2seq_keras imported): "
            + "; ".join(f"{s!r} -> {t!r}" for s, t in zip(SMOKE_SENTENCES, sample))
        )
    if session:
        _check_parity(report, path, session, model)
    return report


def export_settings(path: str | os.PathLike) -> dict:
    """The settings recorded in ``assets.extra/seq2seq_keras_export.json`` ({} if absent)."""
    file = Path(path) / "assets.extra" / SETTINGS_FILE
    try:
        return json.loads(file.read_text())
    except (OSError, ValueError):
        return {}


def _check_parity(report: ServableReport, path: Path, session: dict, model) -> None:
    """Compare what TF Serving's loader returned with ``model.translate`` on the same sentences."""
    from .decoding import DEFAULT_BEAM_WIDTH, DEFAULT_LENGTH_PENALTY, results_to_translations

    settings = export_settings(path)
    if model is None:
        recorded = settings.get("source_model")
        if not recorded or not os.path.exists(recorded):
            report.facts.append(
                "parity with the Python API: skipped (no model given and none recorded at export that still exists; "
                "pass --model RUN_FOLDER)")
            return
        model = recorded
    label = str(model) if isinstance(model, (str, os.PathLike)) else f"{type(model).__name__} object"
    if isinstance(model, (str, os.PathLike)):
        from .run_folder import load_model

        model = load_model(model)
    limits = {k: settings[k] for k in ("max_length", "max_source_length") if k in settings}
    # Unknown-word replacement and n-gram blocking as baked in (exports from before them: off).
    limits["replace_unk"] = bool(settings.get("replace_unk", False))
    limits["unk_dictionary"] = {k: v for k, v in settings.get("unk_dictionary", [])}
    limits["copy_unknown_names"] = bool(settings.get("copy_unknown_names", False))
    greedy_options = dict(block_ngram_repeat=int(settings.get("block_ngram_repeat", 0)))
    beam = dict(method="beam", beam_width=settings.get("beam_width", DEFAULT_BEAM_WIDTH),
                length_penalty=settings.get("length_penalty", DEFAULT_LENGTH_PENALTY),
                block_ngram_repeat=int(settings.get("beam_block_ngram_repeat", 0)))
    sentences = list(SMOKE_SENTENCES)
    key_n = len(sentences)
    compared, worst_attention, worst_log_prob = [], 0.0, 0.0
    for signature, options in (("translate_with_attention", greedy_options), ("beam_search", beam)):
        out = session.get(f"{signature}@{key_n}")
        if out is None:
            continue
        expected = model.translate(sentences, **options, **limits)
        actual = results_to_translations(out, sentences, has_attention=model.has_attention)
        for a, e in zip(actual, expected):
            if (a.text, a.source_tokens, a.target_tokens, a.replaced) != (e.text, e.source_tokens, e.target_tokens,
                                                                          e.replaced):
                report.problems.append(
                    f"{signature} through TF Serving's loader differs from model.translate for {e.source!r}: "
                    f"{a.target_tokens} vs {e.target_tokens}")
                continue
            if e.attention is not None:
                worst_attention = max(worst_attention, float(abs(a.attention - e.attention).max(initial=0.0)))
            worst_log_prob = max(worst_log_prob, abs(a.log_prob - e.log_prob))
        compared.append(signature)
    out = session.get(f"serving_default@{key_n}")
    if out is not None:
        greedy = [t.text for t in model.translate(sentences, **greedy_options, **limits)]
        if [t.decode("utf-8", "replace") for t in out["translation"]] != greedy:
            report.problems.append("serving_default through TF Serving's loader differs from model.translate")
        compared.append("serving_default")
    if worst_attention > 1e-5:
        report.problems.append(f"attention through TF Serving's loader differs from Python by {worst_attention:.3g} (> 1e-5)")
    if worst_log_prob > 1e-4:
        report.problems.append(f"log_prob through TF Serving's loader differs from Python by {worst_log_prob:.3g} (> 1e-4)")
    report.facts.append(
        f"parity with the Python API ({label}): {', '.join(compared)} on {key_n} sentences; tokens identical, "
        f"max |attention difference| {worst_attention:.2g}, max |log_prob difference| {worst_log_prob:.2g}")


# ---------------------------------------------------------------------- latency and throughput
def benchmark_servable(
    path: str | os.PathLike,
    sentences: Sequence[str],
    *,
    signatures: Sequence[str] = ("serving_default", "beam_search"),
    loader: str = "session",
    calls: int = 100,
    batch_size: int = 64,
    batch_calls: int = 10,
    warmup: int = 5,
    timeout: float = 1200,
) -> dict:
    """Time a SavedModel in a fresh process (no Keras), the way TensorFlow Serving runs it.

    ``loader="session"`` (default) runs each call through the C API's
    ``TF_SessionRun`` on a session made by ``TF_LoadSessionFromSavedModel`` (TF
    Serving's path); ``loader="tf2"`` through ``tf.saved_model.load``. For each
    signature: the median and 90th-percentile latency of ``calls`` one-sentence
    calls (after ``warmup`` calls), and sentences per second over ``batch_calls``
    batches of ``batch_size``. Returns ``{signature: {"latency_median_ms",
    "latency_p90_ms", "sentences_per_second"}}``.

    Raises:
        ValueError: no sentences, or an unknown loader.
        RuntimeError: the fresh process failed (its error output is in the message).
    """
    from .decoding import readable

    if loader not in ("session", "tf2"):
        raise ValueError(f"loader={loader!r}: choose 'session' (TF Serving's C API path) or 'tf2'.")
    sentences = [readable(s) for s in sentences]
    if not sentences:
        raise ValueError("benchmark_servable needs sentences to translate.")
    request = {"mode": "benchmark", "path": str(Path(path).resolve()), "op_libraries": tf_text_op_libraries(),
               "loader": loader, "sentences": sentences, "signatures": list(signatures), "calls": calls,
               "batch_size": batch_size, "batch_calls": batch_calls, "warmup": warmup}
    report = _run_loader_program(request, timeout=timeout)
    if "problems" in report:
        raise RuntimeError(f"benchmark process failed: {report['problems'][0]}")
    return report
