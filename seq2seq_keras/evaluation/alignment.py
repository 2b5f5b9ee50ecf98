"""Attention against gold word alignments: are attention weights interpretable?

On the built-in Korean-English corpus, whose generator knows the gold word
alignment, the argmax of each output word's attention row is compared with the gold
links (:func:`alignment_quality`), next to a uniform-attention and a diagonal
control. :class:`~seq2seq_keras.evaluation.attention_snapshots.AttentionSnapshots` logs the same
numbers during training; :func:`seq2seq_keras.evaluation.evaluate` puts them in the
report.

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
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from ..progress import progress_batches

ALIGNMENT_DEFINITION = (
    "Predicted links A: for every output word (teacher-forced gold English; the [END] row excluded), "
    "the source word with the largest attention weight. Gold links G from the generator (Och & Ney sure "
    "links; possible = sure). Corpus sums: precision = |A&G|/|A|, recall = |A&G|/|G|, "
    "AER = 1 - 2|A&G|/(|A|+|G|). Gold attention mass = mean over output words of the attention weight on "
    "gold-linked source words. Uniform control: each row spread evenly (its argmax tie counted as a random "
    "source word, exact expectation). Diagonal control: output word i of T -> source word floor((i+0.5)S/T)."
)


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


def forced_attention(
    model,
    sources: Sequence[str],
    targets: Sequence[str],
    *,
    batch_size: int = 64,
    progress: bool = False,
    layer: int | None = None,
) -> list[np.ndarray | None]:
    """Word-level attention ``[target_words, source_words]`` under teacher forcing, one per pair.

    The gold ``targets`` are fed to the decoder (``[START] y_1 .. y_T``); row ``i``
    is the attention used to predict ``y_{i+1}``; the ``[END]`` row is dropped.
    ``None`` for a pair whose token counts the processors cut (``max_length``).
    ``layer``: the attention of that decoder layer (mean over its heads,
    ``model.cross_attention``) instead of the model's one heatmap (a Transformer's last layer).
    """
    import tensorflow as tf

    from ..translation import to_python_strings

    if not model.has_attention:
        raise ValueError("This model has no attention (attention=None): there is nothing to align.")
    fn = _teacher_forced_function(model, by_layer=layer is not None)
    out: list[np.ndarray | None] = []
    for start in progress_batches(
        range(0, len(sources), batch_size), progress, "alignment", total_items=len(sources), batch_size=batch_size
    ):
        src = list(sources[start : start + batch_size])
        tgt = list(targets[start : start + batch_size])
        src_tokens = to_python_strings(model.source_text.tokenize(tf.constant(src)))
        tgt_tokens = to_python_strings(model.target_text.tokenize(tf.constant(tgt)))
        src_ids = model.source_text(src)
        tgt_ids = model.target_text(tgt)
        weights = np.asarray(fn(src_ids, tgt_ids[:, :-1]), dtype=np.float64)
        if layer is not None:
            weights = weights[:, layer]
        tgt_lengths = np.asarray(tf.reduce_sum(tf.cast(tgt_ids > 0, tf.int32), axis=1)) - 2  # no START/END
        src_lengths = np.asarray(tf.reduce_sum(tf.cast(src_ids > 0, tf.int32), axis=1))
        for b in range(len(src)):
            s, t = int(src_lengths[b]), int(tgt_lengths[b])
            if s != len(src_tokens[b]) or t != len(tgt_tokens[b]):
                out.append(None)
                continue
            out.append(_to_words(weights[b, :t, :s], src_tokens[b], tgt_tokens[b]))
    return out


def _teacher_forced_attention(model, source_ids, target_in):
    """float [batch, tgt_len, src_len]: the model's one heatmap (a Transformer's last layer)."""
    return model.call_with_attention((source_ids, target_in), training=False)[1]


def _teacher_forced_layers(model, source_ids, target_in):
    """float32 [batch, layers, tgt_len, src_len]: every decoder layer's attention, mean over its heads."""
    import tensorflow as tf

    return tf.reduce_mean(model.cross_attention(source_ids, target_in), axis=2)


def _teacher_forced_function(model, *, by_layer: bool):
    """The model's traced teacher-forced pass, made once per model and kept on it (callers such as
    :class:`~seq2seq_keras.evaluation.attention_snapshots.AttentionSnapshots` call it every epoch).

    Its input signature (int32 ids [batch, len], both axes unknown) makes one trace serve every
    batch size and sentence length. It wraps a ``functools.partial`` of a module function, not a
    lambda: TensorFlow counts traces per Python function (a lambda's code is the same for every
    model), and each model's one trace would add up to a "triggered tf.function retracing"
    warning after a few models.
    """
    import functools

    import tensorflow as tf

    cache = "_seq2seq_forced_attention_layers_fn" if by_layer else "_seq2seq_forced_attention_fn"
    fn = getattr(model, cache, None)
    if fn is None:
        ids = tf.TensorSpec([None, None], tf.int32)
        python_function = _teacher_forced_layers if by_layer else _teacher_forced_attention
        fn = tf.function(functools.partial(python_function, model), input_signature=[ids, ids])
        object.__setattr__(model, cache, fn)  # a cache, not tracked by Keras
    return fn


def alignment_quality(
    model, pairs, *, batch_size: int = 64, progress: bool = False, layer: int | None = None
) -> dict[str, Any]:
    """Attention argmax vs. gold alignment on pairs with ``.alignments`` (the built-in corpus).

    Returns ``{"attention", "uniform", "diagonal"}`` (:class:`AlignmentScore` dicts),
    ``"sentences"``, ``"skipped"`` (pairs whose word counts did not match the gold
    tokens, e.g. cut by ``max_length``), ``"definition"`` and, for plotting,
    ``"examples"``: the first few ``(source, target, attention, gold)``. ``layer``: see
    :func:`forced_attention`.
    """
    from ..words import word_tokens

    if getattr(pairs, "alignments", None) is None:
        raise ValueError(
            f"The corpus {getattr(pairs, 'name', '')!r} has no gold alignments; alignment quality needs the "
            "built-in corpus (load_corpus('builtin-ko-en'))."
        )
    attentions = forced_attention(
        model, pairs.source, pairs.target, batch_size=batch_size, progress=progress, layer=layer
    )
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
