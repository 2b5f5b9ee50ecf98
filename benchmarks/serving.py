"""Serving speed, memory and time breakdown through the exported SavedModels, the way TensorFlow Serving runs them.

Each SavedModel is loaded by TF Serving's own loader, TensorFlow's C API
(``TF_LoadSessionFromSavedModel``: the C++ ``LoadSavedModel``, restore and init ops)
with tensorflow-text's ops registered as the model server links them, and every call
is a ``TF_SessionRun`` on the signature's tensor names
(:class:`seq2seq_keras.serving.tf_serving_loader.ServingSession`): no Keras, no Python model
code. The same SavedModels are also measured through the TF2 path
(``tf.saved_model.load``) as a second column. All models are loaded in one process
and measured interleaved, sentence by sentence, so the ratios see the same machine
state:

* latency: one sentence per call, over the same test sentences for every model
  (median and 90th percentile);
* throughput: batches of 64 test sentences (median sentences/s over batches);
* beam search (ours): the ``beam_search`` signature, one sentence per call;
* the XLA signatures (``*_xla``, from a second export of our models with ``xla=True``,
  :func:`export_for_serving`) as rows of their own. They compile once per (batch,
  source-length) bucket, so their warm-up sends every input the timed calls will send;
  the XLA compilations are counted from TensorFlow's own log
  (``device_compiler``'s "Compilation of XLA executable" line, one per compilation),
  split into warm-up and timed calls (the latter should be 0), and each row has its
  first call's latency (compilation included; for plain graphs, Grappler's optimisation
  at the first ``Session::Run``).

Peak RSS is measured separately, one fresh process per SavedModel and signature
(:func:`serving_rss`), and the "where the time goes" table by
:mod:`benchmarks.serving_breakdown`.
"""

from __future__ import annotations

import ast
import os
import re
import sys
import tempfile
from collections.abc import Sequence
from contextlib import contextmanager
from pathlib import Path

from .measure import peak_rss_mb

#: (signature, label) measured per kind of SavedModel; the first is the comparison row.
SIGNATURES = {
    "tutorial": [("serving_default", "greedy, text + attention")],
    "seq2seq_keras": [
        ("translate_with_attention", "greedy, text + attention + tokens"),
        ("serving_default", "greedy, text only"),
        ("beam_search", "beam search"),
    ],
    # The `export --xla` SavedModel of the same model (export_for_serving): only its XLA signatures
    # are measured from it (its plain ones are the plain export's, unchanged).
    "seq2seq_keras_xla": [
        ("translate_with_attention_xla", "greedy, XLA-compiled loop, text + attention + tokens"),
        ("serving_default_xla", "greedy, XLA-compiled loop, text only"),
    ],
}
#: The suffix of the model name under which an XLA export is measured (``feed`` -> ``feed`` rows from
#: both SavedModels: the XLA signatures are reported under the same model name).
XLA_SUFFIX = "-xla"
LOADERS = ("session", "tf2")
#: One line per XLA compilation in TensorFlow's log (tensorflow/compiler/jit/device_compiler.h, VLOG 1).
_COMPILE_LINE = re.compile(rb"Compilation of XLA executable time")
_MARK = b"@@seq2seq-bench "


def compile_log_environment() -> None:
    """Make TensorFlow log one line per XLA compilation (``device_compiler``'s VLOG 1), which
    :func:`serving_speed` counts. TensorFlow reads ``TF_CPP_VMODULE`` and ``TF_CPP_MIN_LOG_LEVEL``
    once, when it first logs: call this before TensorFlow runs anything (the bench's serving child
    does). Without it the compilations are reported as not counted (None), never as 0."""
    if "device_compiler" not in os.environ.get("TF_CPP_VMODULE", ""):
        os.environ["TF_CPP_VMODULE"] = ",".join(filter(None, [os.environ.get("TF_CPP_VMODULE"), "device_compiler=1"]))
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "0"


def _load(path: str, loader: str):
    """``{signature: call(sentences)}`` for one SavedModel through one loader (tensorflow-text's ops
    registered); through TF Serving's loader, its warm-up file is replayed first, as TF Serving does."""
    import tensorflow_text  # noqa: F401  (registers the ops the graphs use, for the TF2 path)

    from seq2seq_keras.serving.tf_serving_loader import load_callables, tf_text_op_libraries

    session = loader == "session"
    return load_callables(path, loader, tf_text_op_libraries() if session else (), warmup=session)


# =========================================================================== the XLA export
def export_for_serving(models: dict[str, dict], workdir: str, families=None) -> dict[str, dict]:
    """``models`` plus, for each of ours with a saved Keras model (named in ``families``, default: all),
    its ``export(..., xla=True)`` SavedModel as ``"<name>-xla": {"savedmodel", "kind": "seq2seq_keras_xla"}``.

    A model that cannot be exported with XLA keeps its plain rows; the error is printed.
    """
    from seq2seq_keras.serving.export import export_model
    from seq2seq_keras.training import load_model

    out = dict(models)
    for name, spec in models.items():
        if spec.get("kind") != "seq2seq_keras" or not spec.get("keras_model"):
            continue
        if families is not None and name not in families:
            continue
        try:
            path = export_model(
                load_model(spec["keras_model"]),
                f"bench_{name}_xla",
                workdir,
                version=1,
                settings=_export_settings(spec["savedmodel"]),
                warmup_texts=[],
                write_config=False,
                xla=True,
            )
        except Exception as error:  # the plain rows stand without it
            print(f"  [{name}] no XLA export: {type(error).__name__}: {error}", flush=True)
            continue
        out[name + XLA_SUFFIX] = {"savedmodel": str(path), "kind": "seq2seq_keras_xla"}
    return out


def _export_settings(savedmodel: str):
    """The decoding settings the plain export recorded (so both exports decode alike)."""
    import dataclasses
    import json

    from seq2seq_keras.serving.export import SETTINGS_FILE, ExportSettings

    recorded = json.loads((Path(savedmodel) / "assets.extra" / SETTINGS_FILE).read_text())
    fields = {f.name for f in dataclasses.fields(ExportSettings)}
    return ExportSettings(**{k: v for k, v in recorded.items() if k in fields})


def report_name(name: str) -> str:
    """The model name a row is reported under (``feed-xla`` -> ``feed``)."""
    return name[: -len(XLA_SUFFIX)] if name.endswith(XLA_SUFFIX) else name


# =========================================================================== XLA compilations from the log
@contextmanager
def _compile_log(enabled: bool):
    """While active, TensorFlow's log (file descriptor 2) goes to a file; yields ``mark(phase, key)``
    to write markers into it and, afterwards, ``counts``: ``{(phase, key): compilations}`` (the
    compilation lines after each marker). Other warnings and errors are echoed to stderr afterwards.
    Needs :func:`compile_log_environment` before TensorFlow started."""
    counts: dict = {}
    if not enabled:
        yield (lambda phase, key: None), counts
        return
    sys.stderr.flush()
    saved = os.dup(2)
    log = tempfile.TemporaryFile()
    os.dup2(log.fileno(), 2)

    def mark(phase, key):
        os.write(2, _MARK + repr((phase, key)).encode() + b"\n")

    try:
        yield mark, counts
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
        log.seek(0)
        current = ("load", None)
        for line in log.read().splitlines():
            if line.startswith(_MARK):
                current = ast.literal_eval(line[len(_MARK) :].decode())
            elif _COMPILE_LINE.search(line):
                counts[current] = counts.get(current, 0) + 1
            elif not re.match(rb"^I\d{4} ", line):
                sys.stderr.write(line.decode("utf-8", "replace") + "\n")
        log.close()


# =========================================================================== speed
def serving_speed(
    models: dict[str, dict],
    sentences: Sequence[str],
    *,
    single: int = 200,
    batches: int = 10,
    batch_size: int = 64,
    warmup: int = 5,
) -> dict[str, dict]:
    """``models``: name -> {"savedmodel": path, "kind": "tutorial" | "seq2seq_keras" | "seq2seq_keras_xla"}.

    Returns name -> signature -> {"label", "latency_ms_median", "latency_ms_p90",
    "batch_sentences_per_s", "calls", "first_call_ms", "warmup_calls", "tf2": {the same figures
    through tf.saved_model.load}}; the top-level figures are TF Serving's path (C API session).
    ``*_xla`` rows also have "xla_compilations_warmup" and "xla_compilations_timed" (counted in
    TensorFlow's log, None when it logged none: see :func:`compile_log_environment`; a SavedModel's
    two XLA signatures share one compiled function, so the second one's count is that of the
    buckets the first did not reach) and are reported under the
    plain model's name (``feed-xla`` -> ``feed``). Beam search is measured on a quarter of the
    single sentences (it is the slowest) and not in batches. The timing loop is the package's own
    (:func:`seq2seq_keras.serving.tf_serving_loader.time_plan`), the one ``seq2seq-keras check-servable
    --benchmark`` runs, on :func:`bench_plan`'s calls.
    """
    from seq2seq_keras.serving.tf_serving_loader import time_plan, timing_plan

    xla = any(spec["kind"] == "seq2seq_keras_xla" for spec in models.values())
    with _compile_log(xla) as (mark, counts):
        functions, labels = {}, {}
        for name, spec in models.items():
            for loader in LOADERS:
                loaded = _load(spec["savedmodel"], loader)
                for signature, label in SIGNATURES[spec["kind"]]:
                    if signature in loaded:
                        functions[(name, signature, loader)] = loaded[signature]
                        labels[(name, signature, loader)] = label
        beams = {key for key in functions if key[1] == "beam_search"}
        compiled = {key for key in functions if key[1].endswith("_xla")}
        plan = timing_plan(functions, sentences, single=single, batches=batches, batch_size=batch_size, warmup=warmup)
        plan = bench_plan(plan, single_only=beams, every={key: 4 for key in beams}, warm_every_input=compiled)
        figures = time_plan(functions, _marked(plan, mark) if xla else plan)
    results: dict[str, dict] = {}
    for (name, signature, loader), f in figures.items():
        if (name, signature, loader) in compiled:
            # Every XLA SavedModel compiles at least once per loader: no line at all means no log (None).
            logged = any(k[1][0] == name and k[1][2] == loader for k in counts if isinstance(k[1], tuple))
            f = dict(
                f,
                **{
                    f"xla_compilations_{phase}": counts.get((phase, (name, signature, loader)), 0) if logged else None
                    for phase in ("warmup", "timed")
                },
            )
        entry = results.setdefault(report_name(name), {}).setdefault(signature, {})
        if loader == "session":
            entry.update(label=labels[(name, signature, loader)], **f)
        else:
            entry["tf2"] = dict(label=labels[(name, signature, loader)], **f)
    return results


def bench_plan(plan: list, *, single_only=(), every: dict | None = None, warm_every_input=()) -> list:
    """The package's :func:`~seq2seq_keras.serving.tf_serving_loader.timing_plan` adapted to the bench's rows.

    Args:
        plan: ``[(phase, key, request)]`` from ``timing_plan``.
        single_only: keys timed on single sentences only (beam search): their batches are dropped.
        every: ``{key: n}`` to time a key on every n-th of its single sentences only.
        warm_every_input: keys warmed up on *every* request their timed calls will send (each
            single sentence and each batch once), instead of the usual warm-up: for the XLA
            signatures, which compile once per (batch, source-length) bucket, so that no
            compilation lands in a timed call.

    Returns:
        the calls, in the plan's order (the warm-up of each key where its usual warm-up was).
    """
    every = every or {}
    seen: dict = {}
    timed = []
    for phase, key, request in plan:
        if phase == "single":
            index = seen[key] = seen.get(key, -1) + 1
            if index % every.get(key, 1):
                continue
        elif phase == "batch" and key in single_only:
            continue
        if phase != "warmup":
            timed.append((phase, key, request))
    warm = []
    for key in dict.fromkeys(key for phase, key, _ in plan if phase == "warmup"):
        source = timed if key in warm_every_input else [c for c in plan if c[0] == "warmup"]
        warm += [("warmup", key, request) for _, k, request in source if k == key]
    return warm + timed


def _marked(plan, mark):
    """``plan``, one call at a time, with ``mark(phase, key)`` (``"warmup"`` or ``"timed"``) written into
    TensorFlow's log before each call (outside its timing: :func:`time_plan` reads the next call first)."""
    for phase, key, request in plan:
        mark("warmup" if phase == "warmup" else "timed", key)
        yield phase, key, request


# =========================================================================== memory
def rss_specs(models: dict[str, dict]) -> dict[str, dict]:
    """One fresh-process RSS measurement per model and signature kind: ``{label: spec}`` for
    :func:`serving_rss` (the plain comparison signature of every model, the XLA one of XLA exports)."""
    return {
        name: {"savedmodel": spec["savedmodel"], "kind": spec["kind"], "signature": SIGNATURES[spec["kind"]][0][0]}
        for name, spec in models.items()
    }


def serving_rss(
    savedmodel: str,
    kind: str,
    sentences: Sequence[str],
    batch_size: int = 64,
    single: int = 50,
    signature: str | None = None,
) -> dict:
    """Peak RSS (MiB) of a process that loads one SavedModel (TF Serving's loader) and serves
    ``single`` sentences one by one and 10 batches of ``batch_size`` through ``signature``
    (default: the kind's comparison signature): ``getrusage`` peak after the load and after the calls."""
    signature = signature or SIGNATURES[kind][0][0]
    call = _load(savedmodel, "session")[signature]
    after_load = peak_rss_mb()
    sentences = list(sentences)
    for s in sentences[:single]:
        call([s])
    for i in range(0, min(len(sentences), 10 * batch_size), batch_size):
        call(sentences[i : i + batch_size])
    return {"serving_peak_rss_mb": peak_rss_mb(), "after_load_rss_mb": after_load, "signature": signature}
