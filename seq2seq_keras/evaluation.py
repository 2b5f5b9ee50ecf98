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
   attention row is compared with the gold links (:func:`alignment_quality`), next
   to a uniform-attention and a diagonal control.

References. The model's vocabulary is lower-cased (and, for Latin scripts,
accent-stripped), so scoring its output against raw references would mostly
measure casing. :func:`normalize_references` passes each reference through the
model's own target standardisation and joins the tokens the way
``TextProcessor.detokenize`` does: the reference becomes exactly the string a
perfect model would print. BLEU and chrF are then sacrebleu's defaults (13a
tokenisation, exponential smoothing; chrF2), see the signature.

Alignment metric. With the gold links ``G`` as Och & Ney's *sure* links (and
*possible* = sure) and the predicted links ``A`` (one per output word: the source
word with the largest attention weight), summed over the corpus:

* precision = |A ∩ G| / |A|, recall = |A ∩ G| / |G|, F1;
* AER = 1 - (|A ∩ S| + |A ∩ P|) / (|A| + |S|) = 1 - 2 |A ∩ G| / (|A| + |G|)  (= 1 - F1 here);
* gold attention mass: the mean over output words of the attention weight that
  falls on gold-linked source words (the soft counterpart; 1 is perfect).

Attention is taken under teacher forcing (the gold English is fed in, as in
Bahdanau et al.'s alignment figures), so rows line up with the gold target words;
the row that predicts ``[END]`` is excluded. The uniform control spreads each row
evenly over the source words; its argmax is a tie, so its link is counted as a
uniformly random source word and the scores are the exact expectation
(|A| and |G| are fixed, so AER is linear in |A ∩ G|). The diagonal control links
output word ``i`` of ``T`` to source word ``floor((i + 0.5) * S / T)``.
Word-piece models are compared at word level: attention is summed over the pieces
of a source word and averaged over the pieces of an output word.
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import math
import os
import time
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

DEFAULT_BUCKET_EDGES: tuple[int, ...] = (5, 10, 15, 20, 25, 30, 40, 50)
METHODS = ("greedy", "beam")

ALIGNMENT_DEFINITION = (
    "Predicted links A: for every output word (teacher-forced gold English; the [END] row excluded), "
    "the source word with the largest attention weight. Gold links G from the generator (Och & Ney sure "
    "links; possible = sure). Corpus sums: precision = |A&G|/|A|, recall = |A&G|/|G|, "
    "AER = 1 - 2|A&G|/(|A|+|G|). Gold attention mass = mean over output words of the attention weight on "
    "gold-linked source words. Uniform control: each row spread evenly (its argmax tie counted as a random "
    "source word, exact expectation). Diagonal control: output word i of T -> source word floor((i+0.5)S/T)."
)
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
    result: dict[str, Any] = {"bleu": None, "chrf": None, "bleu_detail": None, "sentences": len(hypotheses),
                              "bleu_signature": None, "chrf_signature": None}
    if hypotheses:  # sacrebleu cannot score (or sign) an empty corpus
        b = bleu.corpus_score(hypotheses, [references])
        c = chrf.corpus_score(hypotheses, [references])
        result.update(bleu=float(b.score), chrf=float(c.score), bleu_detail=str(b),
                      bleu_signature=str(bleu.get_signature()), chrf_signature=str(chrf.get_signature()))
    return result


def corpus_bleu(hypotheses: Sequence[str], references: Sequence[str]) -> float | None:
    """sacrebleu corpus BLEU (0-100) of ``hypotheses`` against one reference each; None if empty."""
    return corpus_scores(hypotheses, references)["bleu"]


def normalize_references(target_text, references: Sequence[str]) -> list[str]:
    """References as a perfect model would print them (see the module docstring).

    ``target_text``: the model's target :class:`~seq2seq_keras.text.TextProcessor`.
    """
    import tensorflow as tf

    from .text import join_words, to_python_strings

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
        rows.append({
            "label": bucket.label,
            "low": bucket.low,
            "high": bucket.high,
            "count": len(bucket),
            "mean_length": float(np.mean([lengths[i] for i in bucket.indices])) if len(bucket) else None,
            "bleu": scores["bleu"],
            "chrf": scores["chrf"],
        })
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
    from .builtin_ko_en import word_tokens

    return [len(word_tokens(s)) for s in sources]


# =========================================================================== alignment
@dataclasses.dataclass(frozen=True)
class AlignmentScore:
    """Corpus-level alignment quality; see the module docstring for the definitions."""

    precision: float
    recall: float
    f1: float
    aer: float
    gold_mass: float
    predicted: float  # |A|
    gold: float  # |G|
    correct: float  # |A & G| (an expectation for the uniform control)
    sentences: int

    def to_dict(self) -> dict[str, float]:
        return dataclasses.asdict(self)


def gold_matrix(alignment: Iterable[tuple[int, int]], target_len: int, source_len: int) -> np.ndarray:
    """``(source_index, target_index)`` links -> bool ``[target_len, source_len]``."""
    matrix = np.zeros((target_len, source_len), dtype=bool)
    for s, t in alignment:
        if not (0 <= t < target_len and 0 <= s < source_len):
            raise ValueError(
                f"alignment link (source {s}, target {t}) is outside a {target_len} x {source_len} "
                "(target x source) sentence pair."
            )
        matrix[t, s] = True
    return matrix


def argmax_links(attention: np.ndarray) -> np.ndarray:
    """``[T, S]`` weights -> one-hot ``[T, S]`` float: each row's largest weight (first on ties)."""
    attention = np.asarray(attention, dtype=np.float64)
    links = np.zeros_like(attention)
    if attention.size:
        links[np.arange(attention.shape[0]), attention.argmax(axis=1)] = 1.0
    return links


def uniform_links(target_len: int, source_len: int) -> np.ndarray:
    """Uniform attention ``[T, S]`` (every weight 1/S): the no-information control."""
    return np.full((target_len, source_len), 1.0 / max(source_len, 1))


def diagonal_links(target_len: int, source_len: int) -> np.ndarray:
    """One-hot ``[T, S]``: output word ``i`` -> source word ``floor((i + 0.5) * S / T)``."""
    links = np.zeros((target_len, source_len))
    if target_len and source_len:
        cols = np.floor((np.arange(target_len) + 0.5) * source_len / target_len).astype(int)
        links[np.arange(target_len), np.minimum(cols, source_len - 1)] = 1.0
    return links


def alignment_score(
    golds: Sequence[np.ndarray],
    links: Sequence[np.ndarray],
    soft: Sequence[np.ndarray] | None = None,
) -> AlignmentScore:
    """Score predicted links against gold alignments, summed over sentences.

    Args:
        golds: bool ``[T, S]`` gold alignment per sentence.
        links: ``[T, S]`` predicted links per sentence: one-hot for hard links, or a
            row-stochastic matrix read as "the probability that this link is
            predicted" (then the counts and AER are exact expectations).
        soft: attention ``[T, S]`` per sentence for the gold attention mass
            (default: ``links``).
    """
    if len(golds) != len(links) or (soft is not None and len(soft) != len(golds)):
        raise ValueError("golds, links (and soft) need one matrix per sentence.")
    predicted = gold = correct = mass = 0.0
    rows = 0
    for k, (g, a) in enumerate(zip(golds, links)):
        g = np.asarray(g, dtype=bool)
        a = np.asarray(a, dtype=np.float64)
        w = a if soft is None else np.asarray(soft[k], dtype=np.float64)
        if g.shape != a.shape or g.shape != w.shape:
            raise ValueError(f"sentence {k}: gold {g.shape}, links {a.shape}, attention {w.shape}; shapes must match.")
        predicted += float(a.sum())
        gold += float(g.sum())
        correct += float((a * g).sum())
        mass += float((w * g).sum())
        rows += g.shape[0]
    precision = correct / predicted if predicted else 0.0
    recall = correct / gold if gold else 0.0
    f1 = 2 * correct / (predicted + gold) if predicted + gold else 0.0
    return AlignmentScore(
        precision=precision,
        recall=recall,
        f1=f1,
        aer=1.0 - f1 if predicted + gold else 0.0,
        gold_mass=mass / rows if rows else 0.0,
        predicted=predicted,
        gold=gold,
        correct=correct,
        sentences=len(golds),
    )


def _word_index(tokens: Sequence[str]) -> list[int]:
    """Token position -> word position (a token starting with ``##`` continues the previous word)."""
    index, word = [], -1
    for token in tokens:
        if not (token.startswith("##") and word >= 0):
            word += 1
        index.append(word)
    return index


def _to_words(attention: np.ndarray, source_tokens: Sequence[str], target_tokens: Sequence[str]) -> np.ndarray:
    """Token-level ``[T_tok, S_tok]`` -> word-level ``[T_words, S_words]`` (sum over source pieces, mean over target)."""
    s_index, t_index = _word_index(source_tokens), _word_index(target_tokens)
    if s_index == list(range(len(s_index))) and t_index == list(range(len(t_index))):
        return attention
    n_s, n_t = (s_index[-1] + 1 if s_index else 0), (t_index[-1] + 1 if t_index else 0)
    by_source = np.zeros((attention.shape[0], n_s))
    np.add.at(by_source.T, s_index, attention.T)
    words = np.zeros((n_t, n_s))
    np.add.at(words, t_index, by_source)
    counts = np.bincount(t_index, minlength=n_t)[:, None]
    return words / np.maximum(counts, 1)


def forced_attention(model, sources: Sequence[str], targets: Sequence[str], *, batch_size: int = 64,
                     progress: bool = False) -> list[np.ndarray | None]:
    """Word-level attention ``[target_words, source_words]`` under teacher forcing, one per pair.

    The gold ``targets`` are fed to the decoder (``[START] y_1 .. y_T``); row ``i``
    is the attention used to predict ``y_{i+1}``; the ``[END]`` row is dropped.
    ``None`` for a pair whose token counts the processors cut (``max_length``).
    """
    import tensorflow as tf

    from .text import to_python_strings

    if not model.has_attention:
        raise ValueError("This model has no attention (attention=None): there is nothing to align.")
    fn = getattr(model, "_seq2seq_forced_attention_fn", None)
    if fn is None:  # one traced function per model: callers such as callbacks.AttentionSnapshots call this often
        fn = tf.function(lambda s, t: model.call_with_attention((s, t), training=False)[1], reduce_retracing=True)
        object.__setattr__(model, "_seq2seq_forced_attention_fn", fn)  # a cache, not tracked by Keras
    out: list[np.ndarray | None] = []
    for start in _progress(range(0, len(sources), batch_size), progress, "alignment", total_items=len(sources),
                           batch_size=batch_size):
        src = list(sources[start:start + batch_size])
        tgt = list(targets[start:start + batch_size])
        src_tokens = to_python_strings(model.source_text.tokenize(tf.constant(src)))
        tgt_tokens = to_python_strings(model.target_text.tokenize(tf.constant(tgt)))
        src_ids = model.source_text(src)
        tgt_ids = model.target_text(tgt)
        weights = np.asarray(fn(src_ids, tgt_ids[:, :-1]), dtype=np.float64)
        tgt_lengths = np.asarray(tf.reduce_sum(tf.cast(tgt_ids > 0, tf.int32), axis=1)) - 2  # no START/END
        src_lengths = np.asarray(tf.reduce_sum(tf.cast(src_ids > 0, tf.int32), axis=1))
        for b in range(len(src)):
            s, t = int(src_lengths[b]), int(tgt_lengths[b])
            if s != len(src_tokens[b]) or t != len(tgt_tokens[b]):
                out.append(None)
                continue
            out.append(_to_words(weights[b, :t, :s], src_tokens[b], tgt_tokens[b]))
    return out


def alignment_quality(model, pairs, *, batch_size: int = 64, progress: bool = False) -> dict[str, Any]:
    """Attention argmax vs. gold alignment on pairs with ``.alignments`` (the built-in corpus).

    Returns ``{"attention", "uniform", "diagonal"}`` (:class:`AlignmentScore` dicts),
    ``"sentences"``, ``"skipped"`` (pairs whose word counts did not match the gold
    tokens, e.g. cut by ``max_length``), ``"definition"`` and, for plotting,
    ``"examples"``: the first few ``(source, target, attention, gold)``.
    """
    from .builtin_ko_en import word_tokens

    if getattr(pairs, "alignments", None) is None:
        raise ValueError(
            f"The corpus {getattr(pairs, 'name', '')!r} has no gold alignments; alignment quality needs the "
            "built-in corpus (load_corpus('builtin-ko-en'))."
        )
    attentions = forced_attention(model, pairs.source, pairs.target, batch_size=batch_size, progress=progress)
    golds, soft, kept = [], [], []
    skipped = 0
    for source, target, links, attention in zip(pairs.source, pairs.target, pairs.alignments, attentions):
        n_s, n_t = len(word_tokens(source)), len(word_tokens(target))
        if attention is None or attention.shape != (n_t, n_s):
            skipped += 1
            continue
        gold = gold_matrix(links, n_t, n_s)
        golds.append(gold)
        soft.append(attention)
        kept.append((source, target))
    chosen = example_indices([g.shape[1] for g in golds], 4)
    examples = [(*kept[i], soft[i], golds[i]) for i in chosen]
    scores = {
        "attention": alignment_score(golds, [argmax_links(a) for a in soft], soft),
        "uniform": alignment_score(golds, [uniform_links(*g.shape) for g in golds]),
        "diagonal": alignment_score(golds, [diagonal_links(*g.shape) for g in golds]),
    }
    return {
        **{k: v.to_dict() for k, v in scores.items()},
        "sentences": len(golds),
        "skipped": skipped,
        "definition": ALIGNMENT_DEFINITION,
        "examples": examples,
    }


def example_indices(lengths: Sequence[int], k: int, *, max_length: int = 14) -> list[int]:
    """``k`` indices whose lengths spread from short to long (at most ``max_length``, so a heatmap
    stays readable): the sentences at evenly spaced quantiles, in order of length."""
    candidates = sorted((n, i) for i, n in enumerate(lengths) if 0 < n <= max_length)
    if not candidates:
        candidates = sorted((n, i) for i, n in enumerate(lengths) if n > 0)
    if len(candidates) <= k:
        return [i for _, i in candidates]
    picks = np.linspace(0.2, 1.0, k) * (len(candidates) - 1)
    return [candidates[int(round(p))][1] for p in picks]


# =========================================================================== translating
def _progress(iterable, enabled: bool, desc: str, *, total_items: int, batch_size: int):
    """Yield from ``iterable`` (batch starts) with a tqdm bar counted in sentences."""
    if not enabled:
        yield from iterable
        return
    from tqdm.auto import tqdm

    with tqdm(total=total_items, desc=desc, unit="sent", leave=True) as bar:
        for item in iterable:
            yield item
            bar.update(min(batch_size, total_items - item))


def supports_method(method: str) -> bool:
    """Whether ``decoding.translate`` offers ``method=...`` (greedy always works)."""
    from . import decoding

    return method == "greedy" or "method" in inspect.signature(decoding.translate).parameters


def translate_texts(model, texts: Sequence[str], *, method: str = "greedy", batch_size: int = 64,
                    progress: bool = True, desc: str | None = None, **kwargs) -> list:
    """Translate ``texts`` in batches with a progress bar; returns a list of Translation.

    ``method`` and ``kwargs`` (``beam_width``, ``max_length``, ...) go to
    :func:`seq2seq_keras.decoding.translate`.
    """
    from . import decoding

    if method not in METHODS and method != "sample":
        raise ValueError(f"method={method!r}: choose greedy, beam or sample.")
    if not supports_method(method):
        raise NotImplementedError(
            f"decoding.translate in this version has no method= argument, so {method!r} search is not "
            "available; evaluate with greedy decoding only (--beam-width 0)."
        )
    if method != "greedy":
        kwargs["method"] = method
    results: list = []
    for start in _progress(range(0, len(texts), batch_size), progress, desc or method,
                           total_items=len(texts), batch_size=batch_size):
        results.extend(decoding.translate(model, list(texts[start:start + batch_size]), **kwargs))
    return results


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
    beam_width: int = 4,
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
    * alignment quality if ``pairs`` has gold alignments and ``model`` has attention.
    """
    if len(pairs) == 0:
        raise ValueError(f"The evaluation set {getattr(pairs, 'name', '')!r} is empty: nothing to evaluate.")
    sources, raw_references = list(pairs.source), list(pairs.target)
    references = normalize_references(model.target_text, raw_references)
    lengths = source_word_counts(sources)
    name = labels[0] or model_label(model)
    report: dict[str, Any] = {
        "data": {"name": getattr(pairs, "name", ""), "sentences": len(sources),
                 "source_lang": getattr(pairs, "source_lang", None), "target_lang": getattr(pairs, "target_lang", None)},
        "model": {"label": name, "attention": model.attention_type},
        "references": REFERENCE_NOTE,
        "scores": {},
    }
    translations: dict[str, list] = {}
    decode_args = {} if max_length is None else {"max_length": max_length}
    methods = [("greedy", {})]
    if beam_width and beam_width > 0:
        methods.append(("beam", {"beam_width": beam_width, **(beam_options or {})}))
    for method, extra in methods:
        if not supports_method(method):
            report["scores"][method] = {"error": "decoding.translate has no method= argument yet (beam search unavailable)"}
            continue
        start = time.perf_counter()
        out = translate_texts(model, sources, method=method, batch_size=batch_size, progress=progress,
                              desc=f"{name}: {method}", **decode_args, **extra)
        seconds = time.perf_counter() - start
        translations[method] = out
        scores = corpus_scores([t.text for t in out], references)
        scores.update(seconds=seconds, sentences_per_second=len(out) / seconds if seconds else None, **extra)
        report["scores"][method] = scores

    by_length = {name: bleu_by_length([t.text for t in translations["greedy"]], references, lengths, edges)}
    if compare is not None:
        compare_name = labels[1] or model_label(compare)
        if compare_name == name:
            compare_name += " (compare)"
        compare_refs = normalize_references(compare.target_text, raw_references)
        start = time.perf_counter()
        out = translate_texts(compare, sources, batch_size=batch_size, progress=progress,
                              desc=f"{compare_name}: greedy", **decode_args)
        translations[f"{compare_name}, greedy"] = out
        scores = corpus_scores([t.text for t in out], compare_refs)
        scores.update(seconds=time.perf_counter() - start)
        report["compare"] = {"label": compare_name, "attention": compare.attention_type, "greedy": scores}
        by_length[compare_name] = bleu_by_length([t.text for t in out], compare_refs, lengths, edges)
    report["length_buckets"] = {"edges": list(edges), "decoding": "greedy", "length": "source words", "models": by_length}

    alignment_examples: list = []
    if getattr(pairs, "alignments", None) is not None and model.has_attention:
        quality = alignment_quality(model, pairs, batch_size=batch_size, progress=progress)
        alignment_examples = quality.pop("examples")
        report["alignment"] = quality

    rows = []
    for i in range(min(examples, len(sources))):
        row = {"source": sources[i], "reference": references[i]}
        for key, out in translations.items():
            row[key] = out[i].text
        rows.append(row)
    report["examples"] = rows
    return Evaluation(report=report, translations=translations, alignment_examples=alignment_examples)


# =========================================================================== report files
def _fmt(value: Any, digits: int = 1) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _md_escape(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def report_markdown(report: Mapping[str, Any], images: Mapping[str, str] = {}) -> str:
    """The human-readable ``report.md`` for a report dict from :func:`evaluate`."""
    lines = [f"# Evaluation: {report['model'].get('path', report['model']['label'])}", ""]
    data = report["data"]
    lines.append(f"Data: `{data['name']}`, {data['sentences']} sentence pairs "
                 f"({data.get('source_lang')} -> {data.get('target_lang')}). Model: {report['model']['label']}.")
    for key in ("training", "compare_training"):
        if key in report:
            lines.append(f"Training budget ({'compared model' if key.startswith('compare') else 'model'}): "
                         f"{report[key]['summary']}.")
    lines += ["", "## Corpus BLEU and chrF", "", "| decoding | BLEU | chrF | sentences/s |", "|---|---:|---:|---:|"]
    signatures = None
    for method, s in report["scores"].items():
        if "error" in s:
            lines.append(f"| {method} | – | – | {s['error']} |")
            continue
        label = f"beam (width {s['beam_width']})" if method == "beam" else method
        lines.append(f"| {label} | {_fmt(s['bleu'], 2)} | {_fmt(s['chrf'], 2)} | {_fmt(s.get('sentences_per_second'))} |")
        signatures = signatures or (s["bleu_signature"], s["chrf_signature"])
    if "compare" in report:
        c = report["compare"]
        lines.append(f"| {c['label']}, greedy | {_fmt(c['greedy']['bleu'], 2)} | {_fmt(c['greedy']['chrf'], 2)} | |")
    lines.append("")
    if signatures:
        lines.append(f"sacrebleu signatures: BLEU `{signatures[0]}`, chrF `{signatures[1]}`.")
    lines += [report["references"], ""]

    buckets = report["length_buckets"]
    by_model = trim_empty_tail(buckets["models"])
    models = list(by_model)
    lines += ["## BLEU by source sentence length", ""]
    if "bleu_by_length" in images:
        lines += [f"![BLEU by sentence length]({images['bleu_by_length']})", ""]
    header = "| source words | " + " | ".join(f"sentences | BLEU {m}" if i == 0 else f"BLEU {m}"
                                                 for i, m in enumerate(models)) + " |"
    lines += [header, "|---|" + "---:|" * (len(models) + 1)]
    for k, row in enumerate(by_model[models[0]]):
        cells = [row["label"], str(row["count"])] + [_fmt(by_model[m][k]["bleu"]) for m in models]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", f"Greedy decoding; length = {buckets['length']}; '–' = empty bucket; buckets past the longest "
              "sentence left out (report.json has them all).", ""]

    if "alignment" in report:
        a = report["alignment"]
        lines += ["## Attention vs. gold alignment", "",
                  "| alignment | precision | recall | F1 | AER | gold attention mass |", "|---|---:|---:|---:|---:|---:|"]
        for key, label in (("attention", "attention argmax"), ("uniform", "uniform control"), ("diagonal", "diagonal control")):
            s = a[key]
            lines.append(f"| {label} | {s['precision']:.3f} | {s['recall']:.3f} | {s['f1']:.3f} | {s['aer']:.3f} | {s['gold_mass']:.3f} |")
        lines += ["", f"{a['sentences']} test pairs ({a['skipped']} skipped). {a['definition']}", ""]
        if "alignment_examples" in images:
            lines += [f"![attention with gold links]({images['alignment_examples']})", ""]

    if "attention_examples" in images:
        lines += ["## Attention heatmaps", "", f"![attention heatmaps]({images['attention_examples']})", ""]
    if report.get("examples"):
        keys = [k for k in report["examples"][0] if k not in ("source", "reference")]
        lines += ["## Examples", "", "| source | reference | " + " | ".join(keys) + " |",
                  "|---|---|" + "---|" * len(keys)]
        for row in report["examples"]:
            lines.append("| " + " | ".join(_md_escape(row[k]) for k in ["source", "reference", *keys]) + " |")
        lines.append("")
    return "\n".join(lines)


def write_report(evaluation: Evaluation, out_dir: str | os.PathLike, *, heatmaps: int = 4) -> dict[str, Path]:
    """Write ``report.json``, ``report.md`` and the PNG plots into ``out_dir``; return the paths."""
    from .plotting import plot_attention_grid, plot_bleu_by_length

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    report = evaluation.report
    images: dict[str, str] = {}
    paths: dict[str, Path] = {}

    plot_bleu_by_length(trim_empty_tail(report["length_buckets"]["models"]), save=out / "bleu_by_length.png",
                        title=f"BLEU by source sentence length ({report['data']['name']}, greedy)")
    images["bleu_by_length"] = "bleu_by_length.png"
    greedy = evaluation.translations.get("greedy", [])
    with_attention = [t for t in greedy if t.attention is not None and t.attention.size]
    with_attention = [with_attention[i] for i in example_indices([len(t.source_tokens) for t in with_attention],
                                                                 heatmaps)]
    if with_attention:
        plot_attention_grid(with_attention, save=out / "attention_examples.png",
                            suptitle="attention while translating (greedy)")
        images["attention_examples"] = "attention_examples.png"
    if evaluation.alignment_examples:
        from .builtin_ko_en import word_tokens
        from .decoding import Translation

        views = [Translation(source=s, text=t, source_tokens=word_tokens(s), target_tokens=word_tokens(t),
                             attention=a.astype(np.float32), log_prob=0.0)
                 for s, t, a, _ in evaluation.alignment_examples]
        plot_attention_grid(views, golds=[g for *_, g in evaluation.alignment_examples],
                            save=out / "alignment_examples.png",
                            suptitle="teacher-forced attention on the gold English")
        images["alignment_examples"] = "alignment_examples.png"
    for key, name in images.items():
        paths[key] = out / name
    from .atomic import atomic_write_text

    atomic_write_text(out / "report.json", json.dumps(report, indent=2, ensure_ascii=False, default=_json_default))
    atomic_write_text(out / "report.md", report_markdown(report, images))
    paths["report.json"] = out / "report.json"
    paths["report.md"] = out / "report.md"
    return paths


def _json_default(value: Any):
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def run_summary(run_dir: str | os.PathLike) -> dict[str, Any] | None:
    """The training budget of a run folder (``config.json`` + ``history.json``), or None if absent."""
    from .run_folder import CONFIG_FILE, HISTORY_FILE, TrainConfig

    run = Path(run_dir)
    if not (run / CONFIG_FILE).is_file():
        return None
    config = TrainConfig.from_json((run / CONFIG_FILE).read_text(encoding="utf-8"))
    history: dict[str, list[float]] = {}
    if (run / HISTORY_FILE).is_file():
        history = json.loads((run / HISTORY_FILE).read_text(encoding="utf-8"))
    epochs = len(history.get("loss", [])) or config.epochs
    summary = (f"{config.data}, limit {config.limit}, {epochs} epochs, batch {config.batch_size}, "
               f"lr {config.learning_rate:g}, {config.rnn} embedding {config.embedding_dim} units {config.units}, "
               f"attention {config.attention or 'none'}")
    final = {k: v[-1] for k, v in history.items() if v}
    if "val_accuracy" in final:
        summary += f"; final validation token accuracy {final['val_accuracy']:.3f}"
    return {"path": str(run), "config": dataclasses.asdict(config), "epochs": epochs, "final": final,
            "summary": summary}
