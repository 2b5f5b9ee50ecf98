"""Evaluation: corpus BLEU/chrF, BLEU by sentence length, attention against gold alignments.

Three questions, three measurements:

1. **How good are the translations?** Corpus BLEU and chrF from ``sacrebleu``
   (its signature string goes into the report, so numbers can be compared), on
   the test split, for greedy and beam search.
2. **Does a fixed-size context vector lose information on long sentences?**
   BLEU per source-length bucket (:func:`length_buckets`, :func:`bleu_by_length`)
   for an attention model and a no-attention model (``Seq2Seq(attention=None)``)
   trained with the same budget: the plot of Bahdanau et al. 2014, Figure 2.
3. **Are attention weights interpretable?** On the built-in Korean-English corpus,
   whose generator knows the gold word alignment, the argmax of each output word's
   attention row is compared with the gold links, next to a uniform-attention and a
   diagonal control (:mod:`seq2seq_keras.evaluation.alignment`, which defines the metric).

References. The model's vocabulary is lower-cased (and, for Latin scripts,
accent-stripped), so scoring its output against raw references would mostly
measure casing. :func:`normalize_references` passes each reference through the
model's own target standardisation and joins the tokens the way
``TextProcessor.detokenize`` does: the reference becomes exactly the string a
perfect model would print. BLEU and chrF are then sacrebleu's defaults (13a
tokenisation, exponential smoothing; chrF2), see the signature.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ..decoding.options import DEFAULT_BEAM_WIDTH
from .alignment import alignment_quality

DEFAULT_BUCKET_EDGES: tuple[int, ...] = (5, 10, 15, 20, 25, 30, 40, 50)

REFERENCE_NOTE = (
    "References are normalised by the model's own target standardisation (lower case, accents stripped for "
    "Latin scripts, punctuation split off and re-attached as in detokenize), i.e. the string a perfect model "
    "would print."
)


# =========================================================================== corpus scores
def corpus_scores(hypotheses: Sequence[str], references: Sequence[str]) -> dict[str, Any]:
    """Corpus BLEU and chrF with sacrebleu's default settings, one reference per hypothesis.

    Returns ``{"bleu", "chrf", "bleu_signature", "chrf_signature", "bleu_detail",
    "sentences"}``; scores and signatures are ``None`` for an empty corpus.
    """
    from sacrebleu.metrics import BLEU, CHRF

    hypotheses, references = list(hypotheses), list(references)
    if len(hypotheses) != len(references):
        raise ValueError(f"{len(hypotheses)} hypotheses but {len(references)} references; they must pair up.")
    bleu, chrf = BLEU(), CHRF()
    result: dict[str, Any] = {
        "bleu": None,
        "chrf": None,
        "bleu_detail": None,
        "sentences": len(hypotheses),
        "bleu_signature": None,
        "chrf_signature": None,
    }
    if hypotheses:  # sacrebleu cannot score (or sign) an empty corpus
        b = bleu.corpus_score(hypotheses, [references])
        c = chrf.corpus_score(hypotheses, [references])
        result.update(
            bleu=float(b.score),
            chrf=float(c.score),
            bleu_detail=str(b),
            bleu_signature=str(bleu.get_signature()),
            chrf_signature=str(chrf.get_signature()),
        )
    return result


def corpus_bleu(hypotheses: Sequence[str], references: Sequence[str]) -> float | None:
    """sacrebleu corpus BLEU (0-100) of ``hypotheses`` against one reference each; None if empty."""
    return corpus_scores(hypotheses, references)["bleu"]


def normalize_references(target_text, references: Sequence[str]) -> list[str]:
    """References as a perfect model would print them (see the module docstring).

    ``target_text``: the model's target :class:`~seq2seq_keras.text.TextProcessor`.
    """
    import tensorflow as tf

    from ..text import join_words
    from ..translation import to_python_strings

    if not references:
        return []
    words = target_text.tokenize_words(tf.constant(list(references), tf.string))
    return to_python_strings(join_words(tf.strings.reduce_join(words, axis=-1, separator=" ")))


# =========================================================================== length buckets
@dataclasses.dataclass(frozen=True)
class Bucket:
    """Sentences whose length ``n`` satisfies ``low < n <= high`` (``high`` None: no upper bound)."""

    low: int
    high: int | None
    indices: tuple[int, ...]

    @property
    def label(self) -> str:
        if self.high is None:
            return f">{self.low}"
        return f"{self.low + 1}-{self.high}"

    def __len__(self) -> int:
        return len(self.indices)


def check_bucket_edges(edges: Sequence[int]) -> list[int]:
    """``edges`` as a list of ints, or a ValueError unless strictly increasing and positive."""
    edges = [int(e) for e in edges]
    if not edges or any(e <= 0 for e in edges) or any(b <= a for a, b in zip(edges, edges[1:])):
        raise ValueError(f"bucket edges {edges}: give strictly increasing positive lengths, e.g. 5,10,15,20.")
    return edges


def length_buckets(lengths: Sequence[int], edges: Sequence[int] = DEFAULT_BUCKET_EDGES) -> list[Bucket]:
    """Split sentence indices into length buckets.

    With ``edges = (e_1, ..., e_k)`` there are ``k + 1`` buckets: ``n <= e_1`` (labelled
    ``"1-e_1"``; empty sentences go here too), ``e_1 < n <= e_2``, ..., ``n > e_k``.
    Every bucket is returned, empty ones included, in order; each keeps its
    sentences' indices in input order.
    """
    edges = check_bucket_edges(edges)
    lows = [0] + edges
    highs: list[int | None] = edges + [None]
    members: list[list[int]] = [[] for _ in lows]
    for index, n in enumerate(lengths):
        k = int(np.searchsorted(edges, int(n), side="left"))  # first edge >= n
        members[k].append(index)
    return [Bucket(low, high, tuple(m)) for low, high, m in zip(lows, highs, members)]


def bleu_by_length(
    hypotheses: Sequence[str],
    references: Sequence[str],
    lengths: Sequence[int],
    edges: Sequence[int] = DEFAULT_BUCKET_EDGES,
) -> list[dict[str, Any]]:
    """Corpus BLEU and chrF within each source-length bucket.

    Returns one row per bucket: ``label``, ``low``, ``high``, ``count``,
    ``mean_length`` and ``bleu`` / ``chrf`` (all ``None`` for an empty bucket).
    """
    if not len(hypotheses) == len(references) == len(lengths):
        raise ValueError(
            f"{len(hypotheses)} hypotheses, {len(references)} references and {len(lengths)} lengths: "
            "give one of each per sentence."
        )
    rows = []
    for bucket in length_buckets(lengths, edges):
        scores = corpus_scores([hypotheses[i] for i in bucket.indices], [references[i] for i in bucket.indices])
        rows.append(
            {
                "label": bucket.label,
                "low": bucket.low,
                "high": bucket.high,
                "count": len(bucket),
                "mean_length": float(np.mean([lengths[i] for i in bucket.indices])) if len(bucket) else None,
                "bleu": scores["bleu"],
                "chrf": scores["chrf"],
            }
        )
    return rows


def trim_empty_tail(by_model: Mapping[str, Sequence[Mapping[str, Any]]]) -> dict[str, list]:
    """Drop the trailing buckets that are empty for every model (for plots and tables; the JSON keeps all)."""
    keep = 0
    for rows in by_model.values():
        for k, row in enumerate(rows):
            if row["count"]:
                keep = max(keep, k + 1)
    return {name: list(rows[:keep]) for name, rows in by_model.items()}


def source_word_counts(sources: Sequence[str]) -> list[int]:
    """Words per sentence by the package's rule (lower-case, punctuation split off, whitespace split).

    Model-independent, so two models are bucketed identically.
    """
    from ..words import word_tokens

    return [len(word_tokens(s)) for s in sources]


# =========================================================================== a whole evaluation
def model_label(model) -> str:
    """``"attention (bahdanau)"`` or ``"no attention"``."""
    return f"attention ({model.attention_type})" if model.has_attention else "no attention"


@dataclasses.dataclass
class Evaluation:
    """What :func:`evaluate` measured: ``report`` (JSON-ready) and the objects behind the plots."""

    report: dict[str, Any]
    translations: dict[str, list]  # "greedy" / "beam" / "<compare label>, greedy" -> list[Translation]
    alignment_examples: list = dataclasses.field(default_factory=list)


def evaluate(
    model,
    pairs,
    *,
    compare=None,
    beam_width: int = DEFAULT_BEAM_WIDTH,
    edges: Sequence[int] = DEFAULT_BUCKET_EDGES,
    batch_size: int = 64,
    max_length: int | None = None,
    progress: bool = True,
    examples: int = 8,
    labels: tuple[str | None, str | None] = (None, None),
    beam_options: Mapping[str, Any] | None = None,
) -> Evaluation:
    """Evaluate ``model`` on ``pairs`` (a :class:`~seq2seq_keras.data.SentencePairs` test split).

    * corpus BLEU/chrF for greedy and (``beam_width > 0``) beam search;
    * BLEU by source length for ``model`` and, if given, the ``compare`` model
      (e.g. the no-attention baseline trained with the same budget), greedy;
    * alignment quality if ``pairs`` has gold alignments and ``model`` has attention
      (:func:`seq2seq_keras.evaluation.alignment.alignment_quality`).

    Raises:
        ValueError: ``pairs`` is empty.
    """
    if len(pairs) == 0:
        raise ValueError(f"The evaluation set {getattr(pairs, 'name', '')!r} is empty: nothing to evaluate.")
    sources, raw_references = list(pairs.source), list(pairs.target)
    references = normalize_references(model.target_text, raw_references)
    lengths = source_word_counts(sources)
    name = labels[0] or model_label(model)
    report: dict[str, Any] = {
        "data": {
            "name": getattr(pairs, "name", ""),
            "sentences": len(sources),
            "source_lang": getattr(pairs, "source_lang", None),
            "target_lang": getattr(pairs, "target_lang", None),
        },
        "model": {"label": name, "attention": model.attention_type},
        "references": REFERENCE_NOTE,
    }
    decode = {"batch_size": batch_size, **({} if max_length is None else {"max_length": max_length})}
    methods = {
        "greedy": {},
        **({"beam": {"beam_width": beam_width, **(beam_options or {})}} if beam_width and beam_width > 0 else {}),
    }
    report["scores"], translations = _score_methods(model, sources, references, methods, name, decode, progress)

    by_length = {name: bleu_by_length([t.text for t in translations["greedy"]], references, lengths, edges)}
    if compare is not None:
        compare_name = labels[1] or model_label(compare)
        if compare_name == name:
            compare_name += " (compare)"
        compare_refs = normalize_references(compare.target_text, raw_references)
        scores, out = _score_methods(compare, sources, compare_refs, {"greedy": {}}, compare_name, decode, progress)
        translations[f"{compare_name}, greedy"] = out["greedy"]
        report["compare"] = {"label": compare_name, "attention": compare.attention_type, "greedy": scores["greedy"]}
        by_length[compare_name] = bleu_by_length([t.text for t in out["greedy"]], compare_refs, lengths, edges)
    report["length_buckets"] = {
        "edges": list(edges),
        "decoding": "greedy",
        "length": "source words",
        "models": by_length,
    }

    alignment_examples: list = []
    if getattr(pairs, "alignments", None) is not None and model.has_attention:
        quality = alignment_quality(model, pairs, batch_size=batch_size, progress=progress)
        alignment_examples = quality.pop("examples")
        report["alignment"] = quality
        if getattr(model, "architecture", "rnn") == "transformer":  # which layer's heads align best
            quality["by_layer"] = [
                alignment_quality(model, pairs, batch_size=batch_size, layer=i)["attention"]
                for i in range(model.num_layers)
            ]
    if getattr(pairs, "alignments", None) is not None and compare is not None and compare.has_attention:
        quality = alignment_quality(compare, pairs, batch_size=batch_size, progress=progress)
        report["compare"]["alignment"] = {"attention": quality["attention"], "sentences": quality["sentences"]}

    report["examples"] = [
        {"source": sources[i], "reference": references[i], **{key: out[i].text for key, out in translations.items()}}
        for i in range(min(examples, len(sources)))
    ]
    return Evaluation(report=report, translations=translations, alignment_examples=alignment_examples)


def _score_methods(model, sources, references, methods: Mapping[str, dict], name: str, decode: dict, progress: bool):
    """``(scores, translations)`` per decoding method: corpus BLEU/chrF, time, sentences per second."""
    from ..decoding.pipeline import translate

    scores: dict[str, Any] = {}
    translations: dict[str, list] = {}
    for method, extra in methods.items():
        start = time.perf_counter()
        out = translate(model, sources, method=method, progress=progress and f"{name}: {method}", **decode, **extra)
        seconds = time.perf_counter() - start
        translations[method] = out
        scores[method] = corpus_scores([t.text for t in out], references)
        scores[method].update(seconds=seconds, sentences_per_second=len(out) / seconds if seconds else None, **extra)
    return scores, translations
