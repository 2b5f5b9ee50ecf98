"""Serving speed through the exported SavedModels, the way TensorFlow Serving runs them.

Each SavedModel is loaded by TF Serving's own loader, TensorFlow's C API
(``TF_LoadSessionFromSavedModel``: the C++ ``LoadSavedModel``, restore and init ops)
with tensorflow-text's ops registered as the model server links them, and every call
is a ``TF_SessionRun`` on the signature's tensor names
(:class:`seq2seq_keras.serving_loader.ServingSession`): no Keras, no Python model
code. The same SavedModels are also measured through the TF2 path
(``tf.saved_model.load``) as a second column. All models are loaded in one process
and measured interleaved, sentence by sentence, so the ratios see the same machine
state:

* latency: one sentence per call, over the same test sentences for every model
  (median and 90th percentile);
* throughput: batches of 64 test sentences (median sentences/s over batches);
* beam search (ours): the ``beam_search`` signature, one sentence per call.

Peak RSS is measured separately, one process per model (:func:`serving_rss`).
"""

from __future__ import annotations

import time
from typing import Sequence

from .measure import median, peak_rss_mb, percentile

#: (signature, label) measured per kind of SavedModel; the first is the comparison row.
SIGNATURES = {
    "tutorial": [("serving_default", "greedy, text + attention")],
    "seq2seq_keras": [
        ("translate_with_attention", "greedy, text + attention + tokens"),
        ("serving_default", "greedy, text only"),
        ("beam_search", "beam search"),
    ],
}


LOADERS = ("session", "tf2")


def _load(path: str, loader: str):
    """``{signature: call(sentences)}`` for one SavedModel through one loader."""
    import numpy as np
    import tensorflow as tf
    import tensorflow_text  # noqa: F401  (registers the ops the graphs use, for the TF2 path)

    from seq2seq_keras.serving_loader import ServingSession, tf_text_op_libraries

    if loader == "session":
        session = ServingSession(path, op_libraries=tf_text_op_libraries())

        def make(signature):
            (name,) = session.inputs(signature)
            return lambda sentences: session.run(signature, {name: np.array(list(sentences), dtype=object)})

        return {sig: make(sig) for sig in session.signatures if not sig.startswith("__")}
    module = tf.saved_model.load(path)

    def make_tf2(fn):
        def call(sentences):
            out = fn(tf.constant(list(sentences)))
            return {k: v.numpy() for k, v in out.items()}
        return call

    return {sig: make_tf2(fn) for sig, fn in module.signatures.items()}


def _call(fn, sentences: Sequence[str]):
    return fn(sentences)


def serving_speed(
    models: dict[str, dict],
    sentences: Sequence[str],
    *,
    single: int = 200,
    batches: int = 10,
    batch_size: int = 64,
    warmup: int = 5,
) -> dict[str, dict]:
    """``models``: name -> {"savedmodel": path, "kind": "tutorial" | "seq2seq_keras"}.

    Returns name -> signature -> {"label", "latency_ms_median", "latency_ms_p90",
    "batch_sentences_per_s", "calls", "tf2": {the same figures through tf.saved_model.load}};
    the top-level figures are TF Serving's path (C API session). Beam search is measured on a
    quarter of the single sentences (it is the slowest) and not in batches.
    """
    loaded = {}
    for name, spec in models.items():
        for loader in LOADERS:
            functions = _load(spec["savedmodel"], loader)
            for signature, label in SIGNATURES[spec["kind"]]:
                if signature in functions:
                    loaded[(name, signature, loader)] = (functions[signature], label)
    sentences = list(sentences)
    if not sentences:
        raise ValueError("No sentences to translate: the test split is empty.")
    singles = [sentences[i % len(sentences)] for i in range(single)]
    for fn, _ in loaded.values():  # warm-up: tracing caches, thread pools, a batch shape
        for s in singles[:warmup]:
            _call(fn, [s])
        _call(fn, singles[:batch_size])
    latencies: dict = {key: [] for key in loaded}
    for i, sentence in enumerate(singles):
        for key, (fn, _) in loaded.items():
            if key[1] == "beam_search" and i % 4:
                continue
            start = time.perf_counter()
            _call(fn, [sentence])
            latencies[key].append(1000 * (time.perf_counter() - start))
    throughput: dict = {key: [] for key in loaded}
    for b in range(batches):
        batch = [sentences[(b * batch_size + j) % len(sentences)] for j in range(batch_size)]
        for key, (fn, _) in loaded.items():
            if key[1] == "beam_search":
                continue
            start = time.perf_counter()
            _call(fn, batch)
            throughput[key].append(batch_size / (time.perf_counter() - start))
    def figures(key, label):
        return {
            "label": label,
            "latency_ms_median": median(latencies[key]),
            "latency_ms_p90": percentile(latencies[key], 90),
            "batch_sentences_per_s": median(throughput[key]) if throughput[key] else None,
            "calls": len(latencies[key]),
        }

    results: dict[str, dict] = {}
    for (name, signature, loader), (_, label) in loaded.items():
        if loader == "session":
            entry = results.setdefault(name, {}).setdefault(signature, {})
            entry.update(figures((name, signature, loader), label))
        else:
            results.setdefault(name, {}).setdefault(signature, {})["tf2"] = figures((name, signature, loader), label)
    return results


def serving_rss(savedmodel: str, kind: str, sentences: Sequence[str], batch_size: int = 64, single: int = 50) -> dict:
    """Peak RSS (MiB) of a process that loads one SavedModel (TF Serving's loader) and serves sentences and batches."""
    signature = _load(savedmodel, "session")[SIGNATURES[kind][0][0]]
    sentences = list(sentences)
    for s in sentences[:single]:
        _call(signature, [s])
    for i in range(0, min(len(sentences), 10 * batch_size), batch_size):
        _call(signature, sentences[i:i + batch_size])
    return {"serving_peak_rss_mb": peak_rss_mb()}
