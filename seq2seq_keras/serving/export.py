"""Export a trained model as a SavedModel that TensorFlow Serving loads as is.

Layout (what TensorFlow Serving expects)::

    saved_models/
      models.config            # text-format ModelServerConfig covering every model here
      <name>/<version>/        # saved_model.pb, variables/, assets.extra/

A new export goes to the next integer version. It is written into a hidden,
non-numeric folder next to the versions and renamed into place when complete:
TensorFlow Serving polls the model folder and loads any numeric folder the
moment it appears, so it must never see a half-written one.

Signatures (input ``text: string[batch]``; every output dense, batch-major, no
float16, padding marked by the lengths; each output's name, dtype and axes are in
:mod:`seq2seq_keras.serving.signatures`):

* ``serving_default``: ``translation`` (greedy);
* ``translate_with_attention``: the translation with its tokens, lengths,
  attention, ``log_prob`` and ``replaced`` marks (greedy); a Transformer's export
  adds ``attention_heads``, every layer's and head's cross-attention
  (:meth:`Seq2Seq.attention_heads <seq2seq_keras.model.Seq2Seq.attention_heads>`),
  while ``attention`` stays the last layer's mean over heads;
* ``beam_search``: the same for the best hypothesis plus its ``score``, and every
  hypothesis' text and score, best first, with ``beams_count``, how many are real
  (at least 1): a sentence with fewer than ``beam_width`` (a tiny vocabulary, a short
  length cap, an empty source: 1) has empty entries after them, ``""`` scored 0.0
  (never a placeholder's -1e9, -inf or NaN).

The decoding options are fixed at export (:class:`ExportSettings`; ``export``'s flags
``--beam-width``, ``--length-penalty``, ``--no-replace-unk``, ``--unk-dictionary``,
``--block-ngram-repeat`` for the greedy signatures, ``--beam-block-ngram-repeat`` for
``beam_search``, ...) and recorded in ``assets.extra/seq2seq_keras_export.json``.

* with ``xla=True`` (``export --xla``), also ``serving_default_xla`` and
  ``translate_with_attention_xla``: the same outputs as their plain namesakes, with the
  numeric core (encoder and greedy decode loop) compiled by XLA
  (:mod:`seq2seq_keras.decoding.xla_greedy`; text processing stays in the plain graph). The
  plain signatures are unchanged. TensorFlow Serving runs them only when started with
  ``--xla_cpu_compilation_enabled=true`` (``saved_models/serve.sh --xla``): without it the
  model still loads and the plain signatures work, but every ``*_xla`` request fails
  (TF Serving calls ``tensorflow::DisableXlaCompilation()``). They are therefore not in
  the warm-up file (a failing warm-up request would stop the version from loading), and
  their first request per (batch, source-length) bucket pays the compilation.

Every signature computes in float32, whatever precision the model was trained in
(:data:`COMPUTE_DTYPE`): a model trained under ``mixed_bfloat16`` keeps float32
weights, and the export runs them through :meth:`Seq2Seq.with_dtype_policy`, so the
training precision never changes what a server answers (bfloat16 keeps about 3
significant digits: its attention rows would not sum to 1, and its XLA and plain
graphs would pick different words). The recorded settings name the compute dtype
and the training policy.

Everything runs in the graph (tensorflow-text preprocessing included): raw
strings in, no Python at serving time. The SavedModel is written by
``keras.export.ExportArchive`` (see :func:`build_archive` for why), and
:func:`seq2seq_keras.serving.check.check_servable` proves it without a server,
through the loader TensorFlow Serving runs (the C API's ``LoadSavedModel``).

Loading the export in plain Python with ``tf.saved_model.load`` needs
``import tensorflow_text`` first (TensorFlow's own behaviour: the graph uses
tensorflow-text ops, which TF Serving links in); otherwise TensorFlow fails with
"Op type not registered 'NormalizeUTF8'".
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..decoding.options import (
    DEFAULT_BEAM_BLOCK_NGRAM_REPEAT,
    DEFAULT_BLOCK_NGRAM_REPEAT,
    DecodingOptions,
    count,
    option,
)
from .signatures import INPUT_NAME, SIGNATURES, XLA_SIGNATURES, output_names

DEFAULT_BASE_DIR = "saved_models"
MODELS_CONFIG = "models.config"
#: Where ``docker run -v $PWD/saved_models:/models`` puts the folder (base paths in models.config).
DEFAULT_SERVING_ROOT = "/models"
WARMUP_FILE = "tf_serving_warmup_requests"
#: What every exported signature computes in (see the module docstring).
COMPUTE_DTYPE = "float32"
SETTINGS_FILE = "seq2seq_keras_export.json"


@dataclasses.dataclass(frozen=True)
class ExportSettings(DecodingOptions):
    """The :class:`DecodingOptions` an export bakes into its signatures, plus beam search's own n-gram blocking.

    Each signature fixes its method (greedy, or beam for ``beam_search``), so the per-call
    options (``method``, ``n_best``, ``temperature``, ``seed``, ``batch_size``) are not part of
    an export; :meth:`signature_options` gives the options a signature runs with.
    ``block_ngram_repeat`` applies to the greedy signatures (0: exact greedy),
    ``beam_block_ngram_repeat`` to ``beam_search``.
    """

    block_ngram_repeat: int = option(
        DEFAULT_BLOCK_NGRAM_REPEAT,
        "never repeat an N-gram in the greedy signatures (default: {default}; 0 is exact greedy)",
        count(0),
        graph="int32",
        metavar="N",
    )
    beam_block_ngram_repeat: int = option(
        DEFAULT_BEAM_BLOCK_NGRAM_REPEAT,
        "never repeat an N-gram in the beam_search signature (default: {default}; 0 turns it off)",
        count(0),
        metavar="N",
    )

    def __post_init__(self):
        if self.seed is None:
            object.__setattr__(self, "seed", 0)  # no signature samples: a fixed seed, not a fresh one
        super().__post_init__()
        per_call = {f.name for f in dataclasses.fields(DecodingOptions) if not f.metadata["exported"]}
        changed = sorted(
            name
            for name in per_call
            if name != "seed" and getattr(self, name) != DecodingOptions.__dataclass_fields__[name].default
        )
        if changed:
            raise ValueError(
                f"{', '.join(changed)}: not part of an export (each signature fixes its decoding); "
                f"set {', '.join(self.exported())} instead."
            )

    def signature_options(self, method: str) -> DecodingOptions:
        """The options a signature running ``method`` (``"greedy"`` or ``"beam"``) decodes with."""
        block = self.beam_block_ngram_repeat if method == "beam" else self.block_ngram_repeat
        common = {name: getattr(self, name) for name in self.exported() if name in DecodingOptions.__dataclass_fields__}
        return DecodingOptions(**dict(common, method=method, block_ngram_repeat=block, seed=0))

    @classmethod
    def from_record(cls, recorded: Mapping[str, Any]) -> ExportSettings:
        """The settings an export recorded (:meth:`exported`, e.g. ``assets.extra/seq2seq_keras_export.json``);
        other keys of ``recorded`` are ignored."""
        return cls(
            **{
                f.name: recorded[f.name]
                for f in dataclasses.fields(cls)
                if f.metadata["exported"] and f.name in recorded
            }
        )


# ---------------------------------------------------------------------- the exported module
def _text_resources(processor) -> list:
    """The lookup tables (and WordPiece tokenizer) a TextProcessor uses in its graph."""
    resources = []
    for attribute in ("_lookup_table", "_wordpiece"):
        value = getattr(processor, attribute, None)
        if value is not None:
            resources.append(value)
    return resources


def build_archive(model, settings: ExportSettings | None = None, *, xla: bool = False):
    """A ``keras.export.ExportArchive`` with the three serving signatures as endpoints
    (and the two ``*_xla`` ones with ``xla=True``), computing in :data:`COMPUTE_DTYPE`.

    Why ``ExportArchive`` and not a ``tf.Module`` saved with ``tf.saved_model.save``:
    TensorFlow Serving loads the SavedModel with the C++ ``LoadSavedModel`` (the
    saver's restore op, then ``Session::Run``), and the variables of Keras 3
    layers held by a plain ``tf.Module`` are captured by the functions but never
    restored on that path ("Could not find variable ..."; tensorflow/serving#2226,
    keras-team/keras#19274). The archive tracks every variable of the encoder and
    decoder and the text processors' lookup tables explicitly, so the saver
    restores them and the init op fills the tables; :mod:`seq2seq_keras.serving.check`
    proves it through TensorFlow's C API.
    """
    import keras
    import tensorflow as tf

    from ..decoding.pipeline import graph_constants, graph_values, translate_graph

    settings = settings or ExportSettings()
    model = model.with_dtype_policy(COMPUTE_DTYPE)
    transformer = getattr(model, "architecture", "rnn") == "transformer"
    archive = keras.export.ExportArchive()
    # The layers that hold the weights (not the whole model: its optimizer state
    # and metrics have no place on a server), and the tables of the text processors.
    archive.track(model.encoder)
    archive.track(model.decoder)
    for resource in _text_resources(model.source_text) + _text_resources(model.target_text):
        archive.track(resource)
    # Each method's options as Python values, made graph constants when a signature is traced.
    values = {method: graph_values(model, settings.signature_options(method)) for method in ("greedy", "beam")}

    def run(text, method, search=None):
        return translate_graph(model, text, method=method, search=search, **graph_constants(values[method]))

    def outputs(signature, text, out):
        """The signature's outputs (:mod:`seq2seq_keras.serving.signatures`) of ``translate_graph``'s ``out`` for ``text``."""
        names = output_names(signature, transformer)
        result = {name: out[name] for name in names if name != "attention_heads"}
        if "attention_heads" in names:
            result["attention_heads"] = model.attention_heads(text, out, settings.max_source_length)
        return result

    spec = [tf.TensorSpec([None], tf.string, name=INPUT_NAME)]

    @tf.function(input_signature=spec)
    def serving_default(text):
        return outputs("serving_default", text, run(text, "greedy"))

    @tf.function(input_signature=spec)
    def translate_with_attention(text):
        return outputs("translate_with_attention", text, run(text, "greedy"))

    @tf.function(input_signature=spec)
    def beam_search(text):
        return outputs("beam_search", text, run(text, "beam"))

    endpoints = [
        ("serving_default", serving_default),
        ("translate_with_attention", translate_with_attention),
        ("beam_search", beam_search),
    ]
    if xla:
        endpoints += _xla_endpoints(model, settings, run, outputs, spec)
    for name, fn in endpoints:
        fn.get_concrete_function()  # traced with autograph; the archive keeps this trace
        archive.add_endpoint(name, fn)
    return archive


def _xla_endpoints(model, settings: ExportSettings, run, outputs, spec) -> list:
    """``serving_default_xla`` and ``translate_with_attention_xla`` (:data:`~seq2seq_keras.serving.signatures.XLA_SIGNATURES`)."""
    import tensorflow as tf

    from ..decoding.xla_greedy import compiled_greedy_search

    if settings.block_ngram_repeat:
        raise ValueError(
            "--xla compiles exact greedy search only: export with --block-ngram-repeat 0 "
            f"(got {settings.block_ngram_repeat}), or without --xla."
        )
    search = compiled_greedy_search(model, settings.max_length, settings.max_source_length)

    @tf.function(input_signature=spec)
    def serving_default_xla(text):
        return outputs("serving_default_xla", text, run(text, "greedy", search))

    @tf.function(input_signature=spec)
    def translate_with_attention_xla(text):
        return outputs("translate_with_attention_xla", text, run(text, "greedy", search))

    return [
        ("serving_default_xla", serving_default_xla),
        ("translate_with_attention_xla", translate_with_attention_xla),
    ]


# ---------------------------------------------------------------------- versions and config
#: What TF Serving's ``FileSystemStoragePathSource`` takes for a version folder name (``ParseVersionNumber``:
#: TensorFlow's ``strings::safe_strto64``): an int64 in decimal, optionally signed, with surrounding whitespace.
_VERSION_RE = re.compile(r"\s*[-+]?[0-9]+\s*", re.ASCII)
_INT64 = 2**63


def version_number(name: str) -> int | None:
    """The version TF Serving reads from a folder name (``"7"`` and ``"007"`` are both 7), or ``None``
    for a name it skips (``"latest"``, ``".export-x"``, a number outside int64)."""
    if not _VERSION_RE.fullmatch(name):
        return None
    value = int(name.strip())
    return value if -_INT64 <= value < _INT64 else None


def is_version_name(name: str) -> bool:
    """Whether TF Serving takes a folder of this name for a version (:func:`version_number` is not None)."""
    return version_number(name) is not None


def version_folders(model_dir: str | os.PathLike) -> dict[int, Path]:
    """``{version: folder}`` of ``saved_models/<name>`` as TF Serving indexes it, ascending by version.

    Folder names are read as integers (:func:`version_number`). Two folders of the same value
    (``7`` and ``007``): TF Serving's ``IndexChildrenByVersion`` walks the names in byte order
    and keeps the last one, logging "Duplicate version directories detected" and ignoring the
    others; the same folder wins here (``7`` over ``007``). :func:`duplicate_version_folders`
    names the ignored ones.
    """
    path = Path(model_dir)
    if not path.is_dir():
        return {}
    found: dict[int, Path] = {}
    for child in sorted(path.iterdir(), key=lambda p: os.fsencode(p.name)):
        version = version_number(child.name)
        if version is not None and child.is_dir():
            found[version] = child
    return dict(sorted(found.items()))


def duplicate_version_folders(model_dir: str | os.PathLike) -> dict[int, list[Path]]:
    """``{version: [ignored folders]}`` for versions with several folders (see :func:`version_folders`)."""
    path = Path(model_dir)
    served = version_folders(path)
    ignored: dict[int, list[Path]] = {}
    for child in sorted(path.iterdir(), key=lambda p: os.fsencode(p.name)) if served else []:
        version = version_number(child.name)
        if version is not None and child.is_dir() and child != served[version]:
            ignored.setdefault(version, []).append(child)
    return ignored


def model_versions(model_dir: str | os.PathLike) -> list[int]:
    """Version numbers under ``saved_models/<name>``, ascending, read as TF Serving reads them
    (:func:`version_folders`: the folder ``007`` is version 7)."""
    return list(version_folders(model_dir))


def next_version(model_dir: str | os.PathLike) -> int:
    versions = model_versions(model_dir)
    return versions[-1] + 1 if versions else 1


def exported_models(base_dir: str | os.PathLike) -> dict[str, list[int]]:
    """``{name: [versions]}`` for every model folder under ``base_dir`` whose served folder of a version
    (:func:`version_folders`) holds a SavedModel."""
    base = Path(base_dir)
    found = {}
    if base.is_dir():
        for child in sorted(base.iterdir()):
            versions = [v for v, folder in version_folders(child).items() if (folder / "saved_model.pb").is_file()]
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


def write_models_config(
    base_dir: str | os.PathLike = DEFAULT_BASE_DIR, serving_root: str = DEFAULT_SERVING_ROOT
) -> Path:
    """(Re)write ``base_dir/models.config`` atomically; returns its path."""
    from ..atomic import atomic_write_text

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
    source_model: str | os.PathLike | None = None,
    xla: bool = False,
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
        source_model: the run folder or ``.keras`` file the model came from,
            recorded in ``assets.extra/seq2seq_keras_export.json`` so that
            ``check-servable`` can compare the export with it.
        xla: also write the ``*_xla`` signatures (:data:`XLA_SIGNATURES`; see the module
            docstring). Raises ValueError with ``settings.block_ngram_repeat > 0``.
    """
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
    existing = version_folders(model_dir).get(version)
    if final.exists() or existing is not None:
        raise FileExistsError(
            f"{existing or final} already exists as version {version}; TensorFlow Serving may be serving it. "
            "Choose another --version or leave it out for the next one."
        )
    archive = build_archive(model, settings, xla=xla)
    # Hidden and non-numeric: TF Serving ignores it until the rename below.
    tmp = Path(tempfile.mkdtemp(prefix=".export-", dir=model_dir))
    try:
        archive.write_out(str(tmp), verbose=False)
        extra = tmp / "assets.extra"
        extra.mkdir(exist_ok=True)
        recorded = {
            "signatures": list(SIGNATURES) + (list(XLA_SIGNATURES) if xla else []),
            "compute_dtype": COMPUTE_DTYPE,
            "training_dtype_policy": model.dtype_policy.name,
            **settings.exported(),
        }
        if source_model is not None:
            recorded["source_model"] = str(Path(source_model).resolve())
        (extra / SETTINGS_FILE).write_text(json.dumps(recorded, indent=2) + "\n")
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
