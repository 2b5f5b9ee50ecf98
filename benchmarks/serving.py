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

from typing import Sequence

from .measure import peak_rss_mb

#: (signature, label) measured per kind of SavedModel; the first is the comparison row.
SIGNATURES = {
    "tutorial": [("serving_default", "greedy, text + attention")],
    "seq2seq_keras": [
        ("translate_with_attention", "greedy, text + attention + tokens"),
        ("serving_default", "greedy, text only"),
        ("beam_search", "beam search"),
        # Only in an `export --xla` SavedModel (measured when present): the decode loop compiled by XLA.
        ("translate_with_attention_xla", "greedy, XLA-compiled loop, text + attention + tokens"),
        ("serving_default_xla", "greedy, XLA-compiled loop, text only"),
    ],
}


LOADERS = ("session", "tf2")


def _load(path: str, loader: str):
    """``{signature: call(sentences)}`` for one SavedModel through one loader (tensorflow-text's ops registered)."""
    import tensorflow_text  # noqa: F401  (registers the ops the graphs use, for the TF2 path)

    from seq2seq_keras.serving_loader import load_callables, tf_text_op_libraries

    return load_callables(path, loader, tf_text_op_libraries() if loader == "session" else ())


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
    quarter of the single sentences (it is the slowest) and not in batches. The timing loop is
    the package's own (:func:`seq2seq_keras.serving_loader.time_signatures`), the one
    ``seq2seq-keras check-servable --benchmark`` runs.
    """
    from seq2seq_keras.serving_loader import time_signatures

    functions, labels = {}, {}
    for name, spec in models.items():
        for loader in LOADERS:
            loaded = _load(spec["savedmodel"], loader)
            for signature, label in SIGNATURES[spec["kind"]]:
                if signature in loaded:
                    functions[(name, signature, loader)] = loaded[signature]
                    labels[(name, signature, loader)] = label
    beams = {key for key in functions if key[1] == "beam_search"}
    figures = time_signatures(functions, sentences, single=single, batches=batches, batch_size=batch_size,
                              warmup=warmup, single_only=beams, every={key: 4 for key in beams})
    results: dict[str, dict] = {}
    for (name, signature, loader), f in figures.items():
        entry = results.setdefault(name, {}).setdefault(signature, {})
        if loader == "session":
            entry.update(label=labels[(name, signature, loader)], **f)
        else:
            entry["tf2"] = dict(label=labels[(name, signature, loader)], **f)
    return results


def serving_rss(savedmodel: str, kind: str, sentences: Sequence[str], batch_size: int = 64, single: int = 50) -> dict:
    """Peak RSS (MiB) of a process that loads one SavedModel (TF Serving's loader) and serves sentences and batches."""
    call = _load(savedmodel, "session")[SIGNATURES[kind][0][0]]
    sentences = list(sentences)
    for s in sentences[:single]:
        call([s])
    for i in range(0, min(len(sentences), 10 * batch_size), batch_size):
        call(sentences[i:i + batch_size])
    return {"serving_peak_rss_mb": peak_rss_mb()}
