"""The robustness part of ``make bench``: names, numbers and long inputs, ours against the tutorial reference.

It reuses what the quality part trained (no extra training): our models from the
``bench_<family>.keras`` files the quality part saves, the tutorial reference from
its exported SavedModel (its ``tf_translate``, the way the tutorial translates).
The sentences and metrics are those of ``seq2seq-keras evaluate --robustness``
(:mod:`seq2seq_keras.evaluation.robustness`); ours are scored with unknown-word replacement
on and off and with n-gram blocking, so the report shows what each lever bought.
"""

from __future__ import annotations

import time

from seq2seq_keras.evaluation.robustness import build_robustness_set, evaluate_robustness, model_translator

#: Our decoding variants scored for the main model (label suffix -> translate() options).
OUR_VARIANTS = {
    "greedy": {},
    "greedy, no name copying": {"copy_unknown_names": False},
    "greedy, no [UNK] replacement": {"replace_unk": False},
    "greedy, block 3-gram repeats": {"block_ngram_repeat": 3},
    "beam 4": {"method": "beam", "beam_width": 4},
}


def tutorial_translator(savedmodel: str, batch_size: int = 64):
    """``list[str] -> list[str]`` with the tutorial reference's exported ``tf_translate``."""
    import tensorflow as tf
    import tensorflow_text  # noqa: F401  (registers NormalizeUTF8 & co. for the graph; the package imports it only where it needs it)

    module = tf.saved_model.load(savedmodel)
    fn = module.signatures["serving_default"]

    def run(texts):
        out = []
        for i in range(0, len(texts), batch_size):
            result = fn(tf.constant(list(texts[i : i + batch_size])))
            out.extend(v.decode("utf-8", errors="replace") for v in result["text"].numpy())
        return out

    return run


def robustness(
    models: dict, data, *, seed: int = 0, swapped: int = 300, longest: int = 150, concatenations: int = 150
) -> dict:
    """Score every model of the quality part on the robustness set of ``data`` (a BenchData).

    ``models``: family -> {"savedmodel", "kind", optional "keras_model"}. Returns
    {"set": sizes, "rows": {label: metrics}, "seconds"}.
    """
    from seq2seq_keras.training import load_model

    rset = build_robustness_set(
        data.train, data.test, seed=seed, swapped=swapped, longest=longest, concatenations=concatenations
    )
    rows = {}
    start = time.perf_counter()
    for family, spec in models.items():
        if spec.get("kind") == "tutorial":
            label = "tutorial reference (its sampler, [UNK] forbidden)"
            print(f"  [robustness] {label}", flush=True)
            rows[label] = evaluate_robustness(tutorial_translator(spec["savedmodel"]), rset)
            continue
        if not spec.get("keras_model"):
            print(f"  [robustness] {family}: no saved Keras model, skipped", flush=True)
            continue
        model = load_model(spec["keras_model"])
        variants = OUR_VARIANTS if family == "feed" else {"greedy": {}}
        for suffix, options in variants.items():
            label = f"ours ({family}), {suffix}"
            print(f"  [robustness] {label}", flush=True)
            rows[label] = evaluate_robustness(model_translator(model, **options), rset)
    kinds = {
        "swapped": len(rset.swapped),
        "longest": sum(r["kind"] == "longest" for r in rset.long),
        "concatenation": sum(r["kind"] == "concatenation" for r in rset.long),
    }
    return {"set": kinds, "rows": rows, "seconds": time.perf_counter() - start}
