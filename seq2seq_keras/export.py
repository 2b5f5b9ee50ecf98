"""Export a trained model as a SavedModel that TensorFlow Serving loads as is, and check one.

Layout (what TensorFlow Serving expects)::

    saved_models/
      models.config            # text-format ModelServerConfig covering every model here
      <name>/<version>/        # saved_model.pb, variables/, assets.extra/

A new export goes to the next integer version. It is written into a hidden,
non-numeric folder next to the versions and renamed into place when complete:
TensorFlow Serving polls the model folder and loads any numeric folder the
moment it appears, so it must never see a half-written one.

Signatures (input ``text: string[batch]``; every output dense, batch-major, no
float16, padding marked by the lengths):

* ``serving_default``: ``translation: string[batch]`` (greedy);
* ``translate_with_attention``: ``translation``, ``source_tokens:
  string[batch, src_len]``, ``target_tokens: string[batch, tgt_len]``,
  ``source_length``, ``target_length: int32[batch]``, ``attention:
  float32[batch, tgt_len, src_len]``, ``log_prob: float32[batch]`` (greedy);
* ``beam_search``: the same for the best hypothesis plus ``score:
  float32[batch]`` (``log_prob / lp(length)``), and every hypothesis'
  ``beams_translation: string[batch, beam_width]`` and ``beams_score:
  float32[batch, beam_width]``. The beam width and length penalty are fixed at
  export (``--beam-width``, ``--length-penalty``).

Everything runs in the graph (tensorflow-text preprocessing included): raw
strings in, no Python at serving time. :func:`check_servable` verifies that
without a server: tags, signatures, output types and shapes, an audit of every
op in the graph, and a smoke translation in a fresh Python process that imports
neither this package nor Keras.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import textwrap
from pathlib import Path
from typing import Sequence

from .decoding import (
    DEFAULT_BEAM_WIDTH,
    DEFAULT_LENGTH_PENALTY,
    DEFAULT_MAX_LENGTH,
    DEFAULT_MAX_SOURCE_LENGTH,
)

DEFAULT_BASE_DIR = "saved_models"
MODELS_CONFIG = "models.config"
#: Where ``docker run -v $PWD/saved_models:/models`` puts the folder (base paths in models.config).
DEFAULT_SERVING_ROOT = "/models"
INPUT_NAME = "text"
SIGNATURES = ("serving_default", "translate_with_attention", "beam_search")
REQUIRED_SIGNATURES = ("serving_default", "translate_with_attention")
ATTENTION_OUTPUTS = (
    "translation",
    "source_tokens",
    "target_tokens",
    "source_length",
    "target_length",
    "attention",
    "log_prob",
)
BEAM_OUTPUTS = ATTENTION_OUTPUTS + ("score", "beams_translation", "beams_score")
WARMUP_FILE = "tf_serving_warmup_requests"
SETTINGS_FILE = "seq2seq_keras_export.json"

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
_VERSION_RE = re.compile(r"^[0-9]+$")


@dataclasses.dataclass(frozen=True)
class ExportSettings:
    """Decoding settings baked into the exported graph."""

    max_length: int = DEFAULT_MAX_LENGTH
    max_source_length: int = DEFAULT_MAX_SOURCE_LENGTH
    beam_width: int = DEFAULT_BEAM_WIDTH
    length_penalty: float = DEFAULT_LENGTH_PENALTY

    def __post_init__(self):
        for name in ("max_length", "max_source_length", "beam_width"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}.")


# ---------------------------------------------------------------------- the exported module
def _text_resources(processor) -> list:
    """The lookup tables (and WordPiece tokenizer) a TextProcessor uses in its graph."""
    resources = []
    for attribute in ("_lookup_table", "_wordpiece"):
        value = getattr(processor, attribute, None)
        if value is not None:
            resources.append(value)
    return resources


def build_translator(model, settings: ExportSettings | None = None):
    """A ``tf.Module`` with the three serving signatures as ``tf.function`` methods."""
    import tensorflow as tf

    from .decoding import translate_graph

    settings = settings or ExportSettings()

    class Translator(tf.Module):
        """Raw strings in, translations and attention out; see :mod:`seq2seq_keras.export`."""

        def __init__(self):
            super().__init__(name="seq2seq_translator")
            # The layers that hold the weights (not the whole model: its optimizer
            # state and metrics have no place on a server).
            self.encoder = model.encoder
            self.decoder = model.decoder
            # Tracked explicitly: tables held deep inside Keras layers can be left
            # out of a SavedModel silently, and a missing table only fails at load.
            self.source_text_resources = _text_resources(model.source_text)
            self.target_text_resources = _text_resources(model.target_text)

        def _run(self, text, method):
            return translate_graph(
                model,
                text,
                tf.constant(settings.max_length, tf.int32),
                method=method,
                beam_width=tf.constant(settings.beam_width, tf.int32),
                length_penalty=tf.constant(settings.length_penalty, tf.float32),
                max_source_length=tf.constant(settings.max_source_length, tf.int32),
            )

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name=INPUT_NAME)])
        def serving_default(self, text):
            return {"translation": self._run(text, "greedy")["translation"]}

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name=INPUT_NAME)])
        def translate_with_attention(self, text):
            out = self._run(text, "greedy")
            return {name: out[name] for name in ATTENTION_OUTPUTS}

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name=INPUT_NAME)])
        def beam_search(self, text):
            out = self._run(text, "beam")
            return {name: out[name] for name in BEAM_OUTPUTS}

    return Translator()


# ---------------------------------------------------------------------- versions and config
def model_versions(model_dir: str | os.PathLike) -> list[int]:
    """Numeric version folders under ``saved_models/<name>``, ascending."""
    path = Path(model_dir)
    if not path.is_dir():
        return []
    return sorted(int(p.name) for p in path.iterdir() if p.is_dir() and _VERSION_RE.match(p.name))


def next_version(model_dir: str | os.PathLike) -> int:
    versions = model_versions(model_dir)
    return versions[-1] + 1 if versions else 1


def exported_models(base_dir: str | os.PathLike) -> dict[str, list[int]]:
    """``{name: [versions]}`` for every model folder under ``base_dir`` holding a SavedModel version."""
    base = Path(base_dir)
    found = {}
    if base.is_dir():
        for child in sorted(base.iterdir()):
            versions = [v for v in model_versions(child) if (child / str(v) / "saved_model.pb").is_file()]
            if versions:
                found[child.name] = versions
    return found


def models_config_text(base_dir: str | os.PathLike, serving_root: str = DEFAULT_SERVING_ROOT) -> str:
    """A text-format ``ModelServerConfig`` serving the latest version of every model in ``base_dir``.

    ``serving_root`` is where the server sees ``base_dir`` (``/models`` in the
    ``tensorflow/serving`` container; an absolute host path for a local server).
    """
    root = serving_root.rstrip("/") or "/"
    blocks = []
    for name in exported_models(base_dir):
        blocks.append(
            "  config {\n"
            f"    name: {json.dumps(name)}\n"
            f"    base_path: {json.dumps(root + '/' + name)}\n"
            '    model_platform: "tensorflow"\n'
            "  }\n"
        )
    return "model_config_list {\n" + "".join(blocks) + "}\n"


def write_models_config(base_dir: str | os.PathLike = DEFAULT_BASE_DIR, serving_root: str = DEFAULT_SERVING_ROOT) -> Path:
    """(Re)write ``base_dir/models.config`` atomically; returns its path."""
    from .training import atomic_write_text

    path = Path(base_dir) / MODELS_CONFIG
    atomic_write_text(path, models_config_text(base_dir, serving_root))
    return path


def _write_warmup(path: Path, texts: Sequence[str]) -> bool:
    """``assets.extra/tf_serving_warmup_requests``: one PredictRequest per signature, replayed at load.

    Needs tensorflow-serving-api (the ``serving`` extra); skipped without it.
    """
    try:
        from tensorflow_serving.apis import model_pb2, predict_pb2, prediction_log_pb2
    except ImportError:
        return False
    import tensorflow as tf

    path.parent.mkdir(parents=True, exist_ok=True)
    with tf.io.TFRecordWriter(str(path)) as writer:
        for signature in SIGNATURES:
            request = predict_pb2.PredictRequest(model_spec=model_pb2.ModelSpec(signature_name=signature))
            request.inputs[INPUT_NAME].CopyFrom(tf.make_tensor_proto(list(texts), dtype=tf.string))
            log = prediction_log_pb2.PredictionLog(predict_log=prediction_log_pb2.PredictLog(request=request))
            writer.write(log.SerializeToString())
    return True


def export_model(
    model,
    name: str,
    base_dir: str | os.PathLike = DEFAULT_BASE_DIR,
    *,
    version: int | None = None,
    settings: ExportSettings | None = None,
    warmup_texts: Sequence[str] | None = None,
    write_config: bool = True,
    serving_root: str = DEFAULT_SERVING_ROOT,
) -> Path:
    """Write ``model`` to ``base_dir/name/<version>/`` as a servable SavedModel; return that folder.

    Args:
        model: a trained :class:`~seq2seq_keras.model.Seq2Seq`.
        name: the model name clients ask the server for (``[A-Za-z0-9_.-]+``).
        version: a new version number; default the next integer. An existing
            version is never overwritten (a server may be serving it).
        settings: decoding limits and beam settings baked into the graph.
        warmup_texts: sentences for TF Serving's warmup file (default: a few
            training-style placeholders); ``[]`` writes none.
        write_config: also (re)write ``base_dir/models.config``.
        serving_root: the server-side path of ``base_dir`` used in models.config.
    """
    import tensorflow as tf

    if not re.fullmatch(r"[A-Za-z0-9_.-]+", name or "") or name in (".", ".."):
        raise ValueError(f"Model name {name!r}: use letters, digits, '_', '-' or '.'.")
    settings = settings or ExportSettings()
    model_dir = Path(base_dir) / name
    model_dir.mkdir(parents=True, exist_ok=True)
    if version is None:
        version = next_version(model_dir)
    elif isinstance(version, bool) or not isinstance(version, int) or version < 0:
        raise ValueError(f"version must be a non-negative integer, got {version!r}.")
    final = model_dir / str(version)
    if final.exists():
        raise FileExistsError(
            f"{final} already exists; TensorFlow Serving may be serving it. Choose another --version "
            "or leave it out for the next one."
        )
    translator = build_translator(model, settings)
    signatures = {sig: getattr(translator, sig).get_concrete_function() for sig in SIGNATURES}
    # Hidden and non-numeric: TF Serving ignores it until the rename below.
    tmp = Path(tempfile.mkdtemp(prefix=".export-", dir=model_dir))
    try:
        tf.saved_model.save(translator, str(tmp), signatures=signatures)
        extra = tmp / "assets.extra"
        extra.mkdir(exist_ok=True)
        (extra / SETTINGS_FILE).write_text(
            json.dumps({"signatures": list(SIGNATURES), **dataclasses.asdict(settings)}, indent=2) + "\n"
        )
        texts = list(warmup_texts) if warmup_texts is not None else ["", "warm up"]
        if texts:
            _write_warmup(extra / WARMUP_FILE, texts)
        os.chmod(tmp, 0o755)
        os.rename(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if write_config:
        write_models_config(base_dir, serving_root)
    return final


def export_run(run_dir: str | os.PathLike, name: str, base_dir: str | os.PathLike = DEFAULT_BASE_DIR, **kwargs) -> Path:
    """Load a training run folder (or ``.keras`` file) and :func:`export_model` it."""
    from .training import load_model

    return export_model(load_model(run_dir), name, base_dir, **kwargs)


# ---------------------------------------------------------------------- a fresh process
def tf_text_op_libraries() -> list[str]:
    """Paths of tensorflow-text's compiled op libraries (the ops TensorFlow Serving links in)."""
    spec = importlib.util.find_spec("tensorflow_text")
    if spec is None or not spec.submodule_search_locations:
        return []
    ops_dir = Path(list(spec.submodule_search_locations)[0]) / "python" / "ops"
    return sorted(str(p) for p in ops_dir.glob("_*.so"))


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


def run_fresh_python(code: str, args: Sequence[str] = (), *, timeout: float = 600) -> subprocess.CompletedProcess:
    """Run ``code`` in a new interpreter that cannot import Keras or seq2seq_keras.

    Isolated mode (``-I -S``: no user site, no ``PYTHON*`` variables, no current
    folder on the path) with only :func:`_shadow_site_packages` added; where that
    cannot be built, a plain isolated interpreter. Runs in a temporary folder.
    """
    shadow = _shadow_site_packages()
    if shadow is not None:
        prelude = f"import sys; sys.path.insert(0, {shadow!r})\n"
        argv = [sys.executable, "-I", "-S", "-c", prelude + code, *args]
    else:
        argv = [sys.executable, "-I", "-c", code, *args]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    with tempfile.TemporaryDirectory(prefix="seq2seq_keras_run_") as cwd:
        return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, cwd=cwd, env=env)


_SERVABLE_SCRIPT = textwrap.dedent(
    r'''
    import base64, json, sys
    request = json.load(open(sys.argv[1], encoding="utf-8"))
    report = {"problems": [], "facts": [], "outputs": {}}
    import numpy as np
    import tensorflow as tf
    from tensorflow.core.protobuf import saved_model_pb2
    from tensorflow.python.framework import op_def_registry

    path = request["path"]
    proto = saved_model_pb2.SavedModel()
    with open(path + "/saved_model.pb", "rb") as f:
        proto.ParseFromString(f.read())
    used = set()
    for meta in proto.meta_graphs:
        functions = {fn.signature.name for fn in meta.graph_def.library.function}
        used.update(n.op for n in meta.graph_def.node)
        for fn in meta.graph_def.library.function:
            used.update(n.op for n in fn.node_def)
        used -= functions
    core = {op for op in used if op_def_registry.get(op) is not None}
    for lib in request["op_libraries"]:
        try:
            tf.load_op_library(lib)
        except Exception as e:  # a library that does not load is reported, not fatal
            report["facts"].append(f"could not load {lib}: {e}")
    allowed_text = set(request["tf_text_ops"])
    text_ops = sorted(op for op in used - core if op in allowed_text)
    python_ops = sorted(op for op in used if op in set(request["python_ops"]))
    unknown = sorted(op for op in used - core if op not in allowed_text)
    report["ops"] = {"total": len(used), "core": len(core), "tf_text": text_ops, "python": python_ops, "unknown": unknown}
    if python_ops:
        report["problems"].append(f"Python ops in the graph (TF Serving cannot run them): {python_ops}")
    if unknown:
        report["problems"].append(f"ops that are neither core TensorFlow nor tensorflow-text ops shipped in TF Serving: {unknown}")

    loaded = tf.saved_model.load(path)
    for call in request["calls"]:
        signature, key = call["signature"], call["key"]
        texts = [base64.b64decode(t) for t in call["texts_b64"]]
        if signature not in loaded.signatures:
            report["problems"].append(f"signature {signature!r} missing at load time")
            continue
        try:
            out = loaded.signatures[signature](text=tf.constant(texts, dtype=tf.string, shape=[len(texts)]))
        except Exception as e:
            lines = [l.strip() for l in str(e).splitlines() if l.strip()]
            reason = " ".join(l for l in lines if l.startswith(("Detected at node", "ValueError", "InvalidArgument")))[:400]
            message = f"{signature} fails when called: {type(e).__name__}: {reason or lines[0][:400] if lines else ''}"
            if message not in report["problems"]:
                report["problems"].append(message)
            continue
        for name, value in out.items():
            if not isinstance(value, tf.Tensor):
                report["problems"].append(f"{signature}/{name} is a {type(value).__name__}, not a dense tensor")
                continue
            array = value.numpy()
            if array.ndim == 0 or array.shape[0] != len(texts):
                report["problems"].append(
                    f"{signature}/{name} has shape {list(array.shape)} for a batch of {len(texts)}: batch must be dimension 0"
                )
            if value.dtype in (tf.float16, tf.bfloat16):
                report["problems"].append(f"{signature}/{name} is {value.dtype.name}: TF Serving clients expect float32")
            if array.dtype.kind == "f" and not np.all(np.isfinite(array)):
                report["problems"].append(f"{signature}/{name} has non-finite values")
            if array.dtype == object:
                bad = 0
                for item in array.reshape(-1):
                    try:
                        item.decode("utf-8")
                    except UnicodeDecodeError:
                        bad += 1
                if bad:
                    report["problems"].append(f"{signature}/{name}: {bad} strings are not valid UTF-8 (REST cannot carry them)")
            report["outputs"][f"{key}/{name}"] = array
    leaked = sorted({m.split(".")[0] for m in sys.modules} & set(request["forbidden_modules"]))
    report["modules_leaked"] = leaked
    if leaked:
        report["problems"].append(f"the fresh process imported {leaked}")
    report["problems"] = list(dict.fromkeys(report["problems"]))
    outputs = report.pop("outputs")
    if request.get("outputs_file"):
        np.savez(request["outputs_file"], **{k.replace("/", "|"): v for k, v in outputs.items()})
    print("SEQ2SEQ_KERAS_REPORT " + json.dumps(report))
    '''
)


def run_servable_fresh(
    path: str | os.PathLike,
    calls: Sequence[tuple[str, str, Sequence[str | bytes]]],
    *,
    timeout: float = 600,
) -> dict:
    """Load the SavedModel at ``path`` in a fresh process and run signatures there.

    ``calls``: ``(key, signature_name, sentences)`` triples. Returns a dict with
    ``problems`` (list of str), ``facts``, ``ops`` (op audit), ``modules_leaked``
    and ``outputs``: ``{key: {output_name: numpy array}}``.
    """
    import base64

    import numpy as np

    from .decoding import as_utf8_bytes

    with tempfile.TemporaryDirectory(prefix="seq2seq_keras_servable_") as tmp:
        outputs_file = os.path.join(tmp, "outputs.npz")
        request = {
            "path": str(Path(path).resolve()),
            "op_libraries": tf_text_op_libraries(),
            "tf_text_ops": sorted(TF_TEXT_SERVING_OPS),
            "python_ops": sorted(PYTHON_OPS),
            # Without the shadow folder TensorFlow imports Keras itself; only this package is then checked.
            "forbidden_modules": list(FORBIDDEN_MODULES) if _shadow_site_packages() else ["seq2seq_keras", "tensorflow_text"],
            "outputs_file": outputs_file,
            "calls": [
                {"key": key, "signature": sig, "texts_b64": [base64.b64encode(as_utf8_bytes(t)).decode() for t in texts]}
                for key, sig, texts in calls
            ],
        }
        request_file = os.path.join(tmp, "request.json")
        with open(request_file, "w", encoding="utf-8") as f:
            json.dump(request, f)
        try:
            proc = run_fresh_python(_SERVABLE_SCRIPT, [request_file], timeout=timeout)
        except subprocess.TimeoutExpired:
            return {"problems": [f"the fresh process did not finish within {timeout:.0f} s"], "facts": [], "ops": {},
                    "modules_leaked": [], "outputs": {}}
        line = next((l for l in proc.stdout.splitlines()[::-1] if l.startswith("SEQ2SEQ_KERAS_REPORT ")), None)
        if proc.returncode != 0 or line is None:
            tail = (proc.stderr or proc.stdout)[-3000:]
            return {"problems": [f"the fresh process failed (exit {proc.returncode}):\n{tail}"], "facts": [], "ops": {},
                    "modules_leaked": [], "outputs": {}}
        report = json.loads(line[len("SEQ2SEQ_KERAS_REPORT "):])
        outputs: dict[str, dict] = {}
        if os.path.exists(outputs_file):
            with np.load(outputs_file, allow_pickle=True) as data:
                for flat_key in data.files:
                    key, name = flat_key.split("|", 1)
                    outputs.setdefault(key, {})[name] = data[flat_key]
        report["outputs"] = outputs
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


def check_servable(path: str | os.PathLike, *, smoke: bool = True, timeout: float = 600) -> ServableReport:
    """Check that ``path`` (``saved_models/NAME/VERSION``, or ``saved_models/NAME`` for its latest
    version) is a SavedModel TensorFlow Serving can serve.

    Checks, each failure recorded in ``problems``:

    1. the folder name is a version number and holds ``saved_model.pb``;
    2. a MetaGraph tagged ``serve``; the signatures ``serving_default`` and
       ``translate_with_attention`` (``beam_search`` when present too), each
       with one input ``text: string[?]``;
    3. every output dense (no sparse or composite/ragged encoding), not
       float16/bfloat16/variant, with a known rank >= 1 and an unknown
       dimension 0 (the batch);
    4. op audit of the graph and its function library: each op is core
       TensorFlow or a tensorflow-text op shipped in TF Serving; no PyFunc;
    5. (``smoke``) in a fresh process that cannot import Keras or this package:
       load, translate a few sentences and an empty batch with every signature,
       and check that every output's dimension 0 equals the batch, strings are
       valid UTF-8 and floats finite.
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
    if not _VERSION_RE.match(path.resolve().name):
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
    outputs = result.get("outputs", {})
    key = f"{SIGNATURES[0]}@{len(SMOKE_SENTENCES)}"
    if key in outputs and "translation" in outputs[key]:
        sample = [t.decode("utf-8", "replace") for t in outputs[key]["translation"][:3]]
        report.facts.append(
            "fresh-process smoke translation (no keras, no seq2seq_keras imported): "
            + "; ".join(f"{s!r} -> {t!r}" for s, t in zip(SMOKE_SENTENCES, sample))
        )
    return report


# ---------------------------------------------------------------------- latency and throughput
_BENCHMARK_SCRIPT = textwrap.dedent(
    r'''
    import json, statistics, sys, time
    request = json.load(open(sys.argv[1], encoding="utf-8"))
    import tensorflow as tf
    for lib in request["op_libraries"]:
        tf.load_op_library(lib)
    loaded = tf.saved_model.load(request["path"])
    sentences = request["sentences"]
    result = {}
    for signature in request["signatures"]:
        fn = loaded.signatures[signature]
        run = lambda batch: fn(text=tf.constant(batch, dtype=tf.string, shape=[len(batch)]))
        for i in range(request["warmup"]):
            run([sentences[i % len(sentences)]])
            run(sentences[:request["batch_size"]])
        single = []
        for i in range(request["calls"]):
            start = time.perf_counter()
            run([sentences[i % len(sentences)]])
            single.append(time.perf_counter() - start)
        single.sort()
        batches = [sentences[(i * request["batch_size"]) % len(sentences):][:request["batch_size"]]
                   for i in range(request["batch_calls"])]
        batches = [b if len(b) == request["batch_size"] else sentences[:request["batch_size"]] for b in batches]
        start = time.perf_counter()
        for b in batches:
            run(b)
        elapsed = time.perf_counter() - start
        result[signature] = {
            "latency_median_ms": 1000 * statistics.median(single),
            "latency_p90_ms": 1000 * single[int(0.9 * (len(single) - 1))],
            "sentences_per_second": len(batches) * request["batch_size"] / elapsed,
        }
    print("SEQ2SEQ_KERAS_BENCHMARK " + json.dumps(result))
    '''
)


def benchmark_servable(
    path: str | os.PathLike,
    sentences: Sequence[str],
    *,
    signatures: Sequence[str] = ("serving_default", "beam_search"),
    calls: int = 100,
    batch_size: int = 64,
    batch_calls: int = 10,
    warmup: int = 5,
    timeout: float = 1200,
) -> dict:
    """Time a SavedModel in a fresh process (no Keras), the way a server runs it.

    For each signature: the median and 90th-percentile latency of ``calls``
    one-sentence calls (after ``warmup`` calls), and sentences per second over
    ``batch_calls`` batches of ``batch_size``. Returns
    ``{signature: {"latency_median_ms", "latency_p90_ms", "sentences_per_second"}}``.
    """
    from .decoding import readable

    sentences = [readable(s) for s in sentences]
    if not sentences:
        raise ValueError("benchmark_servable needs sentences to translate.")
    with tempfile.TemporaryDirectory(prefix="seq2seq_keras_bench_") as tmp:
        request_file = os.path.join(tmp, "request.json")
        with open(request_file, "w", encoding="utf-8") as f:
            json.dump(
                {"path": str(Path(path).resolve()), "op_libraries": tf_text_op_libraries(), "sentences": sentences,
                 "signatures": list(signatures), "calls": calls, "batch_size": batch_size,
                 "batch_calls": batch_calls, "warmup": warmup},
                f,
            )
        proc = run_fresh_python(_BENCHMARK_SCRIPT, [request_file], timeout=timeout)
    line = next((l for l in proc.stdout.splitlines()[::-1] if l.startswith("SEQ2SEQ_KERAS_BENCHMARK ")), None)
    if proc.returncode != 0 or line is None:
        raise RuntimeError(f"benchmark process failed (exit {proc.returncode}):\n{(proc.stderr or proc.stdout)[-3000:]}")
    return json.loads(line[len("SEQ2SEQ_KERAS_BENCHMARK "):])
