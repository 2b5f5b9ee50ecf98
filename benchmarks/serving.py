"""Serving speed through the exported SavedModels, as TensorFlow Serving would run them.

Each SavedModel is loaded with ``tf.saved_model.load`` (plus tensorflow-text's ops,
as the model server links them) and called through its signatures: no Keras, no
Python model code. All models are loaded in one process and measured interleaved,
sentence by sentence, so the ratios see the same machine state:

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


def _load(path: str):
    import tensorflow as tf
    import tensorflow_text  # noqa: F401  (registers the ops the graphs use)

    return tf.saved_model.load(path)


def _call(signature, sentences: Sequence[str]):
    import tensorflow as tf

    out = signature(tf.constant(list(sentences)))
    for value in out.values():
        value.numpy()
    return out


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
    "batch_sentences_per_s", "calls"}. Beam search is measured on a quarter of the
    single sentences (it is the slowest) and not in batches.
    """
    loaded = {}
    for name, spec in models.items():
        module = _load(spec["savedmodel"])
        for signature, label in SIGNATURES[spec["kind"]]:
            if signature in module.signatures:
                loaded[(name, signature)] = (module.signatures[signature], label)
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
    results: dict[str, dict] = {}
    for (name, signature), (_, label) in loaded.items():
        results.setdefault(name, {})[signature] = {
            "label": label,
            "latency_ms_median": median(latencies[(name, signature)]),
            "latency_ms_p90": percentile(latencies[(name, signature)], 90),
            "batch_sentences_per_s": median(throughput[(name, signature)]) if throughput[(name, signature)] else None,
            "calls": len(latencies[(name, signature)]),
        }
    return results


def serving_rss(savedmodel: str, kind: str, sentences: Sequence[str], batch_size: int = 64, single: int = 50) -> dict:
    """Peak RSS (MiB) of a process that loads one SavedModel and serves single sentences and batches."""
    module = _load(savedmodel)
    signature = module.signatures[SIGNATURES[kind][0][0]]
    sentences = list(sentences)
    for s in sentences[:single]:
        _call(signature, [s])
    for i in range(0, min(len(sentences), 10 * batch_size), batch_size):
        _call(signature, sentences[i:i + batch_size])
    return {"serving_peak_rss_mb": peak_rss_mb()}
