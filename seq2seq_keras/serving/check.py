"""Prove an exported SavedModel servable by TensorFlow Serving, without a server, and time it.

:func:`check_servable` checks, in order (each failure is a problem in the report):

1. the folder is ``saved_models/NAME/<integer>`` holding ``saved_model.pb``;
2. a MetaGraph tagged ``serve``; the signatures ``serving_default`` and
   ``translate_with_attention`` (``beam_search`` when present too), each with one
   input ``text: string[?]``; every output dense (no ragged or sparse encoding),
   not float16/bfloat16/variant, with the batch as an unknown dimension 0;
3. in a fresh ``python -I`` process that cannot import Keras or this package
   (the program is :mod:`seq2seq_keras.serving.check_program`, run as a file):
   an audit of every op (core TensorFlow, or tensorflow-text ops that TF Serving
   links in; no PyFunc); **TF Serving's own loader**: TensorFlow's C API
   ``TF_LoadSessionFromSavedModel`` (the C++ ``LoadSavedModel``: restore op, init
   op) and ``TF_SessionRun`` on the SignatureDef's tensor names, every signature
   on a few awkward sentences and an empty batch; the warm-up requests replayed
   through that session (TF Serving refuses a version whose warm-up fails); the
   TF2 path (``tf.saved_model.load``) on the same calls; both paths compared;
4. parity with the Python API, every translating signature (``*_xla`` included), output by
   output (:func:`signature_parity`, also what ``make bench`` runs): the model the export came
   from (recorded at export, or passed) translates the same sentences with ``model.translate``;
   tokens must be identical, attention (and a Transformer's ``attention_heads``, against
   ``model.cross_attention``) within 1e-5, one report line per signature.

A damaged export (a truncated ``saved_model.pb`` or warm-up file) is reported as a problem
in one line, never a traceback; version folders are read as TF Serving reads them
(:func:`~seq2seq_keras.serving.export.version_folders`).

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
from collections.abc import Sequence
from pathlib import Path

from .export import SETTINGS_FILE, ExportSettings, duplicate_version_folders, version_folders, version_number
from .signatures import BY_NAME, INPUT_NAME, REQUIRED_SIGNATURES, SIGNATURE_METHODS, SIGNATURES, TRANSLATION_OUTPUTS
from .tf_serving_loader import tf_text_op_libraries

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
    """Run :mod:`seq2seq_keras.serving.check_program` as a file in a new interpreter that cannot import Keras or this package.

    Isolated mode (``-I -S``: no user site, no ``PYTHON*`` variables, no current
    folder on the path) with only :func:`_shadow_site_packages` added; where that
    cannot be built, a plain isolated interpreter. Runs in a temporary folder.
    """
    program = str(Path(__file__).with_name("check_program.py"))
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
        line = next((out for out in proc.stdout.splitlines()[::-1] if out.startswith("SEQ2SEQ_KERAS_REPORT ")), None)
        if proc.returncode != 0 or line is None:
            lines = [text.strip() for text in (proc.stderr or proc.stdout).splitlines() if text.strip()]
            # The last line of a traceback names the error; a report holds one line per problem.
            return _failure(
                f"the fresh process failed (exit {proc.returncode}): {lines[-1][:600] if lines else 'no output'}"
            )
        report = json.loads(line[len("SEQ2SEQ_KERAS_REPORT ") :])
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
    from ..translation import as_utf8_bytes

    request = {
        "mode": "check",
        "path": str(Path(path).resolve()),
        "op_libraries": tf_text_op_libraries(),
        "tf_text_ops": sorted(TF_TEXT_SERVING_OPS),
        "python_ops": sorted(PYTHON_OPS),
        # Without the shadow folder TensorFlow imports Keras itself; only this package is then checked.
        "forbidden_modules": list(FORBIDDEN_MODULES)
        if _shadow_site_packages()
        else ["seq2seq_keras", "tensorflow_text"],
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
    1: "float32",
    2: "float64",
    3: "int32",
    4: "uint8",
    6: "int8",
    7: "string",
    9: "int64",
    10: "bool",
    14: "bfloat16",
    19: "float16",
    21: "variant",
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
    path = _latest_version(Path(path))
    report = ServableReport(str(path))
    signature_defs = _serve_signature_defs(path, report)
    if signature_defs is None:
        return report
    checked = _check_signature_defs(signature_defs, report)
    if smoke:
        _check_in_a_fresh_process(path, checked, report, timeout=timeout, model=model)
    return report


def _latest_version(path: Path) -> Path:
    """A model folder (``saved_models/NAME``) -> the folder of its latest version, as the server would pick
    (:func:`~seq2seq_keras.serving.export.version_folders`: ``007`` is version 7); else ``path``."""
    folders = version_folders(path)
    if not (path / "saved_model.pb").exists() and folders:
        return folders[max(folders)]
    return path


def _check_version_folder(path: Path, report: ServableReport) -> None:
    """The folder is one TF Serving loads: its name parses as a version, and no other folder of the same
    version shadows it."""
    name = path.resolve().name
    version = version_number(name)
    if version is None:
        report.problems.append(
            f"folder name {name!r} is not a version number: TF Serving only loads saved_models/NAME/<integer>/."
        )
        return
    served = version_folders(path.resolve().parent).get(version)
    if served is not None and served.name != name:
        report.problems.append(
            f"TF Serving serves version {version} from the folder {served.name!r} and ignores this one ({name!r}): "
            "remove or rename one of the two (it keeps the last name in byte order)."
        )
    elif duplicate_version_folders(path.resolve().parent).get(version):
        ignored = [p.name for p in duplicate_version_folders(path.resolve().parent)[version]]
        report.facts.append(f"version {version}: served from {name!r}; TF Serving ignores {ignored} (same version)")


def _serve_signature_defs(path: Path, report: ServableReport):
    """Step 1 and the tag of step 2: the ``serve`` MetaGraph's SignatureDefs, or ``None`` (problem reported)."""
    from google.protobuf.message import DecodeError
    from tensorflow.core.protobuf import saved_model_pb2

    pb = path / "saved_model.pb"
    if not pb.is_file():
        report.problems.append(f"no saved_model.pb in {path}: export one with 'seq2seq-keras export'.")
        return None
    _check_version_folder(path, report)
    proto = saved_model_pb2.SavedModel()
    try:
        proto.ParseFromString(pb.read_bytes())
    except (DecodeError, ValueError, OSError) as e:
        report.problems.append(
            f"saved_model.pb cannot be read ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else 'no detail'}"
            f"; {pb.stat().st_size} bytes): the file is damaged or truncated; export the model again."
        )
        return None
    metas = [m for m in proto.meta_graphs if "serve" in m.meta_info_def.tags]
    report.facts.append("tag-sets: " + "; ".join(",".join(sorted(m.meta_info_def.tags)) for m in proto.meta_graphs))
    if not metas:
        report.problems.append("no MetaGraph tagged 'serve' (TF Serving loads the 'serve' tag).")
        return None
    return metas[0].signature_def


def _check_signature_defs(signature_defs, report: ServableReport) -> list[str]:
    """Step 2: the required signatures are there, each with the right input and dense, batch-major outputs.

    Returns the signature names to run, in :data:`~seq2seq_keras.serving.signatures.SIGNATURES` order."""
    present = [s for s in signature_defs if not s.startswith("__")]
    report.facts.append(f"signatures: {', '.join(sorted(present))}")
    for required in REQUIRED_SIGNATURES:
        if required not in signature_defs:
            report.problems.append(f"signature {required!r} is missing.")
    checked = sorted(present, key=lambda s: (SIGNATURES.index(s) if s in SIGNATURES else len(SIGNATURES), s))
    for sig in checked:
        _check_signature_def(sig, signature_defs[sig], report)
    return checked


def _check_signature_def(sig: str, sdef, report: ServableReport) -> None:
    """One SignatureDef: input ``text: string[?]``; outputs dense, not float16/bfloat16/variant, batch first."""
    inputs = dict(sdef.inputs)
    report.facts.append(
        f"{sig}: inputs "
        + ", ".join(_info_text(n, t) for n, t in inputs.items())
        + " -> "
        + ", ".join(_info_text(n, t) for n, t in sorted(sdef.outputs.items()))
    )
    if (
        list(inputs) != [INPUT_NAME]
        or inputs[INPUT_NAME].dtype != 7
        or _shape_text(inputs[INPUT_NAME].tensor_shape) != "[?]"
    ):
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


def _check_in_a_fresh_process(path: Path, checked: list[str], report: ServableReport, *, timeout: float, model) -> None:
    """Steps 3 and 4: every signature on :data:`SMOKE_SENTENCES` (all, one, none) in a fresh process through
    TF Serving's loader and the TF2 path, then parity of the loader's outputs with the Python API."""
    calls = [(f"{sig}@{n}", sig, list(SMOKE_SENTENCES[:n])) for sig in checked for n in (len(SMOKE_SENTENCES), 1, 0)]
    result = run_servable_fresh(path, calls, timeout=timeout)
    ops = result.get("ops") or {}
    if ops:
        report.facts.append(
            f"ops: {ops['total']} distinct, {ops['core']} core TensorFlow, tensorflow-text: {', '.join(ops['tf_text']) or 'none'}"
        )
    report.problems.extend(result["problems"])
    report.facts.extend(result.get("facts", []))
    session = {
        key[len("session:") :]: value for key, value in result.get("outputs", {}).items() if key.startswith("session:")
    }
    key = f"{SIGNATURES[0]}@{len(SMOKE_SENTENCES)}"
    if key in session and "translation" in session[key]:
        sample = [t.decode("utf-8", "replace") for t in session[key]["translation"][:3]]
        report.facts.append(
            "translation through TF Serving's loader (fresh process, no keras, no seq2seq_keras imported): "
            + "; ".join(f"{s!r} -> {t!r}" for s, t in zip(SMOKE_SENTENCES, sample))
        )
    if session:
        _check_parity(report, path, session, model)


def export_settings(path: str | os.PathLike) -> dict:
    """The settings recorded in ``assets.extra/seq2seq_keras_export.json`` ({} if absent)."""
    file = Path(path) / "assets.extra" / SETTINGS_FILE
    try:
        return json.loads(file.read_text())
    except (OSError, ValueError):
        return {}


# ---------------------------------------------------------------------- parity with the Python API
#: Largest |difference| of attention weights between a SavedModel's outputs and ``model.translate``.
ATTENTION_TOLERANCE = 1e-5
#: Largest |difference| of ``log_prob`` (and ``score``) between a SavedModel's outputs and ``model.translate``.
LOG_PROB_TOLERANCE = 1e-4


@dataclasses.dataclass
class OutputDifferences:
    """How one batch of SavedModel outputs differs from the Python API's translations of the same sentences.

    Attributes:
        problems: what differs (empty when the outputs match).
        max_attention, max_log_prob, max_score: the largest |difference| seen, over sentences whose tokens match.
    """

    problems: list[str] = dataclasses.field(default_factory=list)
    max_attention: float = 0.0
    max_log_prob: float = 0.0
    max_score: float = 0.0


def _as_str(value) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _token_mismatch(outputs: dict, b: int, expected) -> str | None:
    """What differs in the text and tokens of sentence ``b`` (None when nothing does)."""
    import numpy as np

    s, n = int(outputs["source_length"][b]), int(outputs["target_length"][b])
    text = _as_str(outputs["translation"][b])
    if text != expected.text:
        return f"translation {text!r} vs {expected.text!r}"
    if (s, n) != (len(expected.source_tokens), expected.length):
        return f"(source_length, target_length) ({s}, {n}) vs ({len(expected.source_tokens)}, {expected.length})"
    source = [_as_str(x) for x in outputs["source_tokens"][b][:s]]
    target = [_as_str(x) for x in outputs["target_tokens"][b]]
    if source != expected.source_tokens:
        return f"source_tokens {source} vs {expected.source_tokens}"
    if target[:n] != expected.target_tokens:
        return f"target_tokens {target[:n]} vs {expected.target_tokens}"
    if any(target[n:]):
        return f"target_tokens after the target_length {n} are not empty padding: {target[n:]}"
    replaced = np.asarray(outputs["replaced"][b]).astype(bool)
    if replaced[:n].tolist() != list(expected.replaced) or replaced[n:].any():
        return f"replaced {replaced.tolist()} vs {list(expected.replaced)} (then False padding)"
    return None


def _numeric_differences(outputs: dict, b: int, expected, differences: OutputDifferences, with_score: bool) -> None:
    """Attention (and its zero padding), log_prob and score of sentence ``b``, into ``differences``."""
    import numpy as np

    s, n = len(expected.source_tokens), expected.length
    if expected.attention is not None:
        attention = np.asarray(outputs["attention"][b], dtype=np.float64)
        if attention[:n, :s].shape != np.shape(expected.attention):
            differences.problems.append(
                f"sentence {b}: attention {list(attention[:n, :s].shape)} vs {list(np.shape(expected.attention))}"
            )
        else:
            difference = float(np.max(np.abs(attention[:n, :s] - expected.attention), initial=0.0))
            differences.max_attention = max(differences.max_attention, difference)
        if np.any(attention[n:]) or np.any(attention[:, s:]):
            differences.problems.append(f"sentence {b}: attention is not 0 outside [:{n}, :{s}] (the padding)")
    differences.max_log_prob = max(differences.max_log_prob, abs(float(outputs["log_prob"][b]) - expected.log_prob))
    if with_score:
        differences.max_score = max(differences.max_score, abs(float(outputs["score"][b]) - expected.score))


def compare_with_translations(outputs: dict, translations: Sequence, *, with_score: bool = False) -> OutputDifferences:
    """Compare one batch of a translating signature's outputs with the Python API's Translations.

    ``outputs``: ``{name: array [batch, ...]}`` as TF Serving returns them (``translation``,
    ``source_tokens``, ``source_length``, ``target_tokens``, ``target_length``, ``attention``,
    ``log_prob``; ``replaced`` when present; ``score`` with ``with_score``). ``translations``: what
    ``model.translate`` returned for the same sentences (the reference). Per sentence: text, lengths and
    tokens identical, token and attention padding empty, ``replaced`` marks identical; attention within
    :data:`ATTENTION_TOLERANCE`, ``log_prob`` (and ``score``) within :data:`LOG_PROB_TOLERANCE`.
    Reads the raw arrays (not :func:`~seq2seq_keras.translation.results_to_translations`), so the clients'
    parser is not part of what is trusted.
    """
    import numpy as np

    outputs = {k: v.numpy() if hasattr(v, "numpy") else np.asarray(v) for k, v in outputs.items()}
    with_attention = any(t.attention is not None for t in translations)
    needed = [name for name in TRANSLATION_OUTPUTS if name != "attention" or with_attention]
    needed += ["replaced"] + ["score"] * with_score
    differences = OutputDifferences()
    missing = [name for name in needed if name not in outputs]
    if missing:
        differences.problems.append(f"outputs {missing} are missing")
        return differences
    if len(outputs["translation"]) != len(translations):
        differences.problems.append(f"{len(outputs['translation'])} translations for {len(translations)} sentences")
        return differences
    for b, expected in enumerate(translations):
        mismatch = _token_mismatch(outputs, b, expected)
        if mismatch is not None:
            differences.problems.append(f"sentence {b} ({expected.source!r}): {mismatch}")
            continue
        _numeric_differences(outputs, b, expected, differences, with_score)
    for what, worst, tolerance in (
        ("attention", differences.max_attention, ATTENTION_TOLERANCE),
        ("log_prob", differences.max_log_prob, LOG_PROB_TOLERANCE),
        ("score", differences.max_score, LOG_PROB_TOLERANCE),
    ):
        if worst > tolerance:
            differences.problems.append(f"{what} differs by {worst:.3g} (> {tolerance:g})")
    return differences


def _parity_model(model, settings: dict, report: ServableReport):
    """``(model, label)`` to compare with: the one given, else the run recorded at export; ``(None, "")`` if none."""
    if model is None:
        recorded = settings.get("source_model")
        if not recorded or not os.path.exists(recorded):
            why = (
                f"the run folder recorded at export, {recorded}, no longer exists"
                if recorded
                else "the export records no run folder (it was exported from a model object without source_model)"
            )
            report.facts.append(
                f"parity with the Python API: skipped: {why}; to compare, pass the run folder it came from: "
                "check-servable --model RUN_FOLDER (Python: check_servable(path, model=RUN_FOLDER))"
            )
            return None, ""
        model = recorded
    label = str(model) if isinstance(model, (str, os.PathLike)) else f"{type(model).__name__} object"
    if isinstance(model, (str, os.PathLike)):
        from ..training.run_folder import load_model

        model = load_model(model)
    return model, label


def exported_decoding_options(settings: dict) -> dict:
    """``{"greedy": options, "beam": options}``: the :class:`~seq2seq_keras.decoding.options.DecodingOptions`
    with which ``model.translate`` reproduces what the export baked in.

    ``settings``: :func:`export_settings` of the SavedModel (read back into
    :class:`~seq2seq_keras.serving.export.ExportSettings`). Used by the parity checks here and in
    ``benchmarks/parity.py``.
    """
    exported = ExportSettings.from_record(settings)
    return {method: exported.signature_options(method) for method in ("greedy", "beam")}


#: Outputs :func:`signature_parity` compares with ``model.translate``; any other output of a signature is
#: named in its report line as not compared.
COMPARED_OUTPUTS = frozenset(name for name, output in BY_NAME.items() if output.signatures)


@dataclasses.dataclass
class SignatureParity:
    """How one signature's outputs compare with ``model.translate`` (:func:`signature_parity`).

    Attributes:
        signature, method: the signature and the decoding ``model.translate`` reproduces (``greedy``/``beam``).
        sentences: sentences compared (over every request).
        compared, not_compared: output names checked against Python, and those it has no reference for.
        max_attention, max_log_prob, max_score, max_heads: the largest |difference| seen.
        problems: what differs, one line each (empty: identical within the tolerances).
    """

    signature: str
    method: str
    sentences: int = 0
    compared: list[str] = dataclasses.field(default_factory=list)
    not_compared: list[str] = dataclasses.field(default_factory=list)
    max_attention: float = 0.0
    max_log_prob: float = 0.0
    max_score: float = 0.0
    max_heads: float = 0.0
    problems: list[str] = dataclasses.field(default_factory=list)

    def line(self) -> str:
        """One line for a report: what was compared and the largest differences."""
        worst = [f"attention {self.max_attention:.2g}", f"log_prob {self.max_log_prob:.2g}"]
        worst += [f"score {self.max_score:.2g}"] * ("score" in self.compared)
        worst += [f"attention_heads {self.max_heads:.2g}"] * ("attention_heads" in self.compared)
        verdict = f"{len(self.problems)} difference(s)" if self.problems else "identical"
        line = (
            f"{self.signature} ({self.method}): {verdict} on {self.sentences} sentences; outputs "
            f"{', '.join(self.compared)}"
        )
        if self.compared != ["translation"]:
            line += f"; max |difference| {', '.join(worst)}"
        if self.not_compared:
            line += f"; not compared (no Python reference): {', '.join(self.not_compared)}"
        return line


def signature_parity(
    run, signatures: Sequence[str], model, settings: dict, sentences: Sequence[str], *, singles: int = 1
) -> dict[str, SignatureParity]:
    """Compare translating signatures of an export with ``model.translate``: the one parity check of
    ``check-servable`` and ``make bench`` (``benchmarks/parity.py``).

    Args:
        run: ``run(signature, sentences) -> {output name: array [batch, ...]}``: one call through the
            loader under test (TF Serving's, :class:`~seq2seq_keras.serving.tf_serving_loader.ServingSession`).
        signatures: the signatures to compare; those of :data:`~seq2seq_keras.serving.signatures.SIGNATURE_METHODS`
            (every signature the package exports, ``*_xla`` included) are, others are left out.
        model: the Python model the export came from; it is run in the export's recorded
            ``compute_dtype`` (:meth:`Seq2Seq.with_dtype_policy`), as the export is.
        settings: :func:`export_settings` of the export (the decoding options it baked in).
        sentences: sent as one batch, then the first ``singles`` one at a time.

    Every output a signature returns is compared with what the Python API gives for the same
    sentences, the way the output is defined: text, tokens, lengths, ``replaced``, attention and
    ``log_prob``, ``score`` (:func:`compare_with_translations`), ``beams_translation`` and
    ``beams_score`` against the n-best list, ``attention_heads`` against the model's own per-head
    cross-attention (``model.cross_attention``) over the same tokens; an output with no Python
    reference is named in ``not_compared``.

    Returns:
        ``{signature: SignatureParity}`` in the order of ``signatures``.
    """
    sentences = list(sentences)
    # The export computes in its recorded dtype (float32) whatever the model trained in: compare like with like.
    model = model.with_dtype_policy(settings.get("compute_dtype", "float32"))
    options = exported_decoding_options(settings)
    options["beam"] = dataclasses.replace(options["beam"], n_best=options["beam"].beam_width)
    expected: dict[str, list] = {}
    unreplaced: dict[str, list] = {}  # the model's own tokens, before unknown-word replacement
    requests = [sentences] + [[s] for s in sentences[:singles]]
    starts = [0] + list(range(min(singles, len(sentences))))
    results = {}
    for signature in signatures:
        method = SIGNATURE_METHODS.get(signature)
        if method is None:
            continue
        if method not in expected:
            expected[method] = model.translate(sentences, options[method])
        result = results[signature] = SignatureParity(signature, method)
        for first, request in zip(starts, requests):
            if not request:
                continue
            reference = expected[method][first : first + len(request)]
            try:
                outputs = run(signature, request)
            except Exception as e:  # noqa: BLE001 - the loader's failure is this signature's problem
                result.problems.append(f"the call failed: {type(e).__name__}: {str(e).splitlines()[0][:300]}")
                break
            if "attention_heads" in outputs and method not in unreplaced:
                unreplaced[method] = model.translate(sentences, options[method], replace_unk=False)
            own = unreplaced[method][first : first + len(request)] if "attention_heads" in outputs else None
            _compare_outputs(result, outputs, reference, own, model, settings)
            result.sentences += len(request)
    return results


def _compare_outputs(
    result: SignatureParity, outputs: dict, reference: list, own: list | None, model, settings: dict
) -> None:
    """One request's outputs against the Python translations of the same sentences, into ``result``
    (``own``: the same translations without unknown-word replacement, for ``attention_heads``)."""
    import numpy as np

    outputs = {k: v.numpy() if hasattr(v, "numpy") else np.asarray(v) for k, v in outputs.items()}
    for name in outputs:
        target = result.compared if name in COMPARED_OUTPUTS else result.not_compared
        if name not in target:
            target.append(name)
    if set(outputs) & COMPARED_OUTPUTS == {"translation"}:
        texts = [_as_str(t) for t in outputs["translation"]]
        wrong = [b for b, (text, t) in enumerate(zip(texts, reference)) if text != t.text]
        if len(texts) != len(reference):
            result.problems.append(f"{len(texts)} translations for {len(reference)} sentences")
        result.problems.extend(
            f"sentence {reference[b].source!r}: translation {texts[b]!r} vs {reference[b].text!r}" for b in wrong
        )
        return
    differences = compare_with_translations(outputs, reference, with_score="score" in outputs)
    result.problems.extend(differences.problems)
    result.max_attention = max(result.max_attention, differences.max_attention)
    result.max_log_prob = max(result.max_log_prob, differences.max_log_prob)
    result.max_score = max(result.max_score, differences.max_score)
    if differences.problems:
        return
    if {"beams_translation", "beams_score", "beams_count"} & set(outputs):
        _compare_beams(result, outputs, reference)
    if "attention_heads" in outputs:
        _compare_heads(result, outputs["attention_heads"], own, model, settings)


def _compare_beams(result: SignatureParity, outputs: dict, reference: list) -> None:
    """``beams_translation`` / ``beams_score`` [batch, beam_width]: their first ``beams_count`` entries are the
    n-best list ``model.translate(..., n_best=beam_width)`` gives (the best, then its ``alternatives``), the
    others empty ("" scored 0)."""
    for b, t in enumerate(reference):
        hypotheses = [t] + list(t.alternatives)
        if "beams_count" in outputs and int(outputs["beams_count"][b]) != len(hypotheses):
            result.problems.append(
                f"sentence {t.source!r}: beams_count {int(outputs['beams_count'][b])} vs "
                f"{len(hypotheses)} hypotheses in the n-best list"
            )
            continue
        if "beams_translation" in outputs:
            texts = [_as_str(x) for x in outputs["beams_translation"][b]]
            if texts[: len(hypotheses)] != [h.text for h in hypotheses] or any(texts[len(hypotheses) :]):
                result.problems.append(
                    f"sentence {t.source!r}: beams_translation {texts} vs the n-best list "
                    f"{[h.text for h in hypotheses]}"
                )
                continue
        if "beams_score" in outputs:
            scores = [float(x) for x in outputs["beams_score"][b]]
            worst = max((abs(x - h.score) for x, h in zip(scores, hypotheses)), default=0.0)
            worst = max([worst] + [abs(x) for x in scores[len(hypotheses) :]])  # empty entries score 0
            result.max_score = max(result.max_score, worst)
            if worst > LOG_PROB_TOLERANCE:
                result.problems.append(
                    f"sentence {t.source!r}: beams_score {scores} vs the n-best scores {[h.score for h in hypotheses]}"
                )


def _compare_heads(result: SignatureParity, heads, own: list, model, settings: dict) -> None:
    """``attention_heads`` [batch, layers, heads, tgt_len, src_len] against ``model.cross_attention`` over the
    tokens the model chose (``own``: the Python translations without unknown-word replacement, which
    changes words after the search; ``[START]`` then their ids), zero outside each sentence's ``[:tgt, :src]``."""
    import numpy as np

    from ..text import START_ID

    heads = np.asarray(heads, dtype=np.float64)
    index = {token: i for i, token in enumerate(model.target_text.vocabulary)}
    max_source_length = ExportSettings.from_record(settings).max_source_length
    for b, t in enumerate(own):
        n, s = t.length, len(t.source_tokens)
        where = f"sentence {t.source!r}: attention_heads"
        if np.any(heads[b, :, :, n:]) or np.any(heads[b, ..., s:]):
            result.problems.append(f"{where} is not 0 outside [:{n}, :{s}] (the padding)")
        if not n or not s:
            continue
        unknown = [w for w in t.target_tokens if w not in index]
        if unknown:
            result.problems.append(f"{where}: target tokens {unknown} are not in the model's vocabulary")
            continue
        ids = [index[w] for w in t.target_tokens]
        source = model.source_text.encode([t.source]).to_tensor()[:, :max_source_length]
        target_in = np.array([[START_ID] + ids[:-1]], np.int32)
        expected = np.asarray(model.cross_attention(np.asarray(source, np.int32), target_in))[0]
        got = heads[b, :, :, :n, :s]
        if got.shape != expected.shape:
            result.problems.append(f"{where} {list(got.shape)} vs model.cross_attention's {list(expected.shape)}")
            continue
        result.max_heads = max(result.max_heads, float(np.max(np.abs(got - expected))))
    if result.max_heads > ATTENTION_TOLERANCE and not any("attention_heads differs" in p for p in result.problems):
        result.problems.append(
            f"attention_heads differs by {result.max_heads:.3g} (> {ATTENTION_TOLERANCE:g}) from model.cross_attention"
        )


def _check_parity(report: ServableReport, path: Path, session: dict, model) -> None:
    """Compare what TF Serving's loader returned (``session``: ``{"<signature>@<batch>": outputs}``, the
    batches being the first ``batch`` of :data:`SMOKE_SENTENCES`) with ``model.translate``, signature by
    signature, one report line each."""
    settings = export_settings(path)
    model, label = _parity_model(model, settings, report)
    if model is None:
        return
    signatures = list(dict.fromkeys(key.split("@", 1)[0] for key in session))
    results = signature_parity(
        lambda signature, texts: session[f"{signature}@{len(texts)}"],
        signatures,
        model,
        settings,
        list(SMOKE_SENTENCES),
        singles=1,
    )
    report.facts.append(
        f"parity with the Python API ({label}), every translating signature through TF Serving's "
        f"loader against model.translate:"
    )
    for signature in signatures:
        if signature not in results:
            report.facts.append(f"  {signature}: not compared (not a signature seq2seq_keras exports)")
            continue
        report.facts.append(f"  {results[signature].line()}")
        report.problems.extend(
            f"{signature} through TF Serving's loader differs from model.translate: {problem}"
            for problem in results[signature].problems
        )


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
        RuntimeError: the fresh process failed (the last line of its error output is in the message).
    """
    from ..translation import readable

    if loader not in ("session", "tf2"):
        raise ValueError(f"loader={loader!r}: choose 'session' (TF Serving's C API path) or 'tf2'.")
    sentences = [readable(s) for s in sentences]
    if not sentences:
        raise ValueError("benchmark_servable needs sentences to translate.")
    request = {
        "mode": "benchmark",
        "path": str(Path(path).resolve()),
        "op_libraries": tf_text_op_libraries(),
        "loader": loader,
        "sentences": sentences,
        "signatures": list(signatures),
        "calls": calls,
        "batch_size": batch_size,
        "batch_calls": batch_calls,
        "warmup": warmup,
    }
    report = _run_loader_program(request, timeout=timeout)
    if "problems" in report:
        raise RuntimeError(f"benchmark process failed: {report['problems'][0]}")
    return report
