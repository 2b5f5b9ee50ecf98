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
   diagonal control (:mod:`seq2seq_keras.alignment`, which defines the metric).

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
import json
import math
import os
import time
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from .alignment import alignment_quality, example_indices
from .decoding_options import DEFAULT_BEAM_WIDTH

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
      (:func:`seq2seq_keras.alignment.alignment_quality`).

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
        "data": {"name": getattr(pairs, "name", ""), "sentences": len(sources),
                 "source_lang": getattr(pairs, "source_lang", None), "target_lang": getattr(pairs, "target_lang", None)},
        "model": {"label": name, "attention": model.attention_type},
        "references": REFERENCE_NOTE,
    }
    decode = {"batch_size": batch_size, **({} if max_length is None else {"max_length": max_length})}
    methods = {"greedy": {}, **({"beam": {"beam_width": beam_width, **(beam_options or {})}} if beam_width and beam_width > 0 else {})}
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
    report["length_buckets"] = {"edges": list(edges), "decoding": "greedy", "length": "source words", "models": by_length}

    alignment_examples: list = []
    if getattr(pairs, "alignments", None) is not None and model.has_attention:
        quality = alignment_quality(model, pairs, batch_size=batch_size, progress=progress)
        alignment_examples = quality.pop("examples")
        report["alignment"] = quality
        if getattr(model, "architecture", "rnn") == "transformer":  # which layer's heads align best
            quality["by_layer"] = [alignment_quality(model, pairs, batch_size=batch_size, layer=i)["attention"]
                                   for i in range(model.num_layers)]
    if getattr(pairs, "alignments", None) is not None and compare is not None and compare.has_attention:
        quality = alignment_quality(compare, pairs, batch_size=batch_size, progress=progress)
        report["compare"]["alignment"] = {"attention": quality["attention"], "sentences": quality["sentences"]}

    report["examples"] = [{"source": sources[i], "reference": references[i],
                           **{key: out[i].text for key, out in translations.items()}}
                          for i in range(min(examples, len(sources)))]
    return Evaluation(report=report, translations=translations, alignment_examples=alignment_examples)


def _score_methods(model, sources, references, methods: Mapping[str, dict], name: str, decode: dict, progress: bool):
    """``(scores, translations)`` per decoding method: corpus BLEU/chrF, time, sentences per second."""
    from .decoding import translate

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
        extra = [(f"layer {i + 1} (mean of heads)", s) for i, s in enumerate(a.get("by_layer", []))]
        if "alignment" in report.get("compare", {}):
            extra.append((f"{report['compare']['label']}: attention argmax", report["compare"]["alignment"]["attention"]))
        for label, s in extra:
            lines.append(f"| {_md_escape(label)} | {s['precision']:.3f} | {s['recall']:.3f} | {s['f1']:.3f} | {s['aer']:.3f} | {s['gold_mass']:.3f} |")
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
        from .translation import Translation

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


# =========================================================================== a run folder, end to end
@dataclasses.dataclass
class RunSplit:
    """A trained run and the split of its corpus it is evaluated on (:func:`load_run_split`)."""

    path: str  # the run folder (or .keras file)
    model: Any
    pairs: Any  # the evaluated pairs (SentencePairs), cut to ``max_sentences``
    train: Any  # the training pairs of the same load (the robustness set avoids their names)
    loaded: int  # pairs loaded before the split
    data: str  # corpus name or path
    limit: int | None
    split: str  # "test" or "validation"
    run: dict[str, Any] | None  # run_summary(path)
    compare: Any = None  # a second model, or None
    compare_path: str | None = None
    compare_run: dict[str, Any] | None = None

    @property
    def label(self) -> str:
        return f"{self.data}, {self.split} split"


def load_run_split(path: str | os.PathLike, *, data: str | None = None, limit: int | str | None = None,
                   split: str = "test", max_sentences: int | None = None,
                   compare: str | os.PathLike | None = None) -> RunSplit:
    """Load a run folder's model and the split of its corpus it never trained on.

    Args:
        path: run folder written by ``train`` (or a ``.keras`` file).
        data: corpus name or ``.txt`` path; default: the run's own (``config.json``).
        limit: pairs to load before the split, or ``"all"``; default: the run's own
            limit when ``data`` is the run's corpus. The split hashes the English side,
            so a larger limit gives a larger test split that still never overlaps the
            run's training pairs.
        split: ``"test"`` or ``"validation"``.
        max_sentences: keep only the first N pairs of the split.
        compare: a second run folder (or ``.keras`` file), loaded as :attr:`RunSplit.compare`.

    Raises:
        FileNotFoundError: no trained model at ``path`` or ``compare``, or no corpus file.
        ValueError: an unknown corpus or split.
    """
    from .config import TrainConfig
    from .data import load_corpus, split_pairs
    from .run_folder import load_model

    if split not in ("test", "validation"):
        raise ValueError(f"split={split!r}: choose 'test' or 'validation'.")
    path = str(path)
    run = run_summary(path) if os.path.isdir(path) else None
    config = {**dataclasses.asdict(TrainConfig()), **(run["config"] if run else {})}
    data = data or config["data"]
    if limit == "all":
        limit = None
    elif limit is None:
        limit = config["limit"] if run and data == config["data"] else None
    model = load_model(path)
    compare_model = load_model(compare) if compare else None
    pairs = load_corpus(data, limit=limit, seed=config["seed"], source=config["direction"])
    train, validation, test = split_pairs(pairs)
    chosen = test if split == "test" else validation
    if max_sentences is not None:
        chosen = chosen[:max_sentences]
    compare_run = run_summary(compare) if compare and os.path.isdir(compare) else None
    return RunSplit(path=path, model=model, pairs=chosen, train=train, loaded=len(pairs), data=data, limit=limit,
                    split=split, run=run, compare=compare_model, compare_path=None if compare is None else str(compare),
                    compare_run=compare_run)


def evaluate_run(run: RunSplit, out_dir: str | os.PathLike, **options) -> tuple[dict[str, Any], dict[str, Path]]:
    """:func:`evaluate` a loaded run (and its ``compare`` model), then :func:`write_report` to ``out_dir``.

    ``options`` go to :func:`evaluate` (``beam_width``, ``edges``, ``batch_size``,
    ``max_length``, ``progress``). The report also records where the model, the data and
    the training budget came from. Returns ``(report, paths)``.
    """
    result = evaluate(run.model, run.pairs, compare=run.compare, **options)
    report = result.report
    report["model"]["path"] = run.path
    report["data"].update(corpus=run.data, limit=run.limit, split=run.split)
    if run.run:
        report["training"] = run.run
    if run.compare_run:
        report["compare_training"] = run.compare_run
    return report, write_report(result, out_dir)


def evaluate_run_robustness(run: RunSplit, out_dir: str | os.PathLike, *, beam_width: int | None = None,
                            coverage_penalty: float | None = None, batch_size: int = 64, max_length: int | None = None,
                            log: Callable[[str], None] | None = None) -> tuple[dict[str, Any], Path]:
    """The robustness evaluation (:mod:`seq2seq_keras.robustness`) of a loaded run, written to ``out_dir``.

    Scores every :data:`~seq2seq_keras.robustness.DEFAULT_VARIANTS` system on a set built
    from ``run.train`` and ``run.pairs``; ``beam_width`` replaces the beam variant's width
    (0 leaves beam search out) and ``coverage_penalty`` its GNMT coverage penalty.
    Writes ``robustness.json`` and ``robustness.md``; returns
    ``(results, path of robustness.md)``. ``log`` gets one line per system before it runs.

    Raises:
        ValueError: the split has no pairs to build a robustness set from.
    """
    from .robustness import DEFAULT_VARIANTS, build_robustness_set, evaluate_robustness, model_translator
    from .robustness import robustness_markdown

    rset = build_robustness_set(run.train, run.pairs)
    if not rset.swapped and not rset.long:
        raise ValueError(f"{run.label}: the split has no pairs to build a robustness set from; raise --limit.")
    decode = {} if max_length is None else {"max_length": max_length}
    results = {}
    for name, options in DEFAULT_VARIANTS.items():
        if options.get("method") == "beam" and beam_width is not None:
            if not beam_width:
                continue
            options, name = dict(options, beam_width=beam_width), f"beam {beam_width}"
        if options.get("method") == "beam" and coverage_penalty is not None:
            options = dict(options, coverage_penalty=coverage_penalty)
        if log:
            log(f"robustness: {name} ...")
        translator = model_translator(run.model, batch_size=batch_size, **decode, **options)
        results[name] = evaluate_robustness(translator, rset)
    from .atomic import atomic_write_text

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "robustness.json", json.dumps(
        {"model": run.path, "data": run.label, "results": results, "set": rset.to_dict()}, indent=1, ensure_ascii=False))
    atomic_write_text(out / "robustness.md", robustness_markdown(results, rset, title=f"{run.path} on {run.label}"))
    return results, out / "robustness.md"
