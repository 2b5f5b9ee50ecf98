"""The evaluation report: ``report.md`` (tables, heatmaps, the BLEU-by-length plot) and ``report.json``.

Written by :func:`write_report` from an :class:`~seq2seq_keras.evaluation.scores.Evaluation`; the same
report is rendered for a run folder evaluated from the command line (``seq2seq-keras evaluate``).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .alignment import example_indices
from .scores import trim_empty_tail

if TYPE_CHECKING:
    from .scores import Evaluation


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
    lines.append(
        f"Data: `{data['name']}`, {data['sentences']} sentence pairs "
        f"({data.get('source_lang')} -> {data.get('target_lang')}). Model: {report['model']['label']}."
    )
    for key in ("training", "compare_training"):
        if key in report:
            lines.append(
                f"Training budget ({'compared model' if key.startswith('compare') else 'model'}): "
                f"{report[key]['summary']}."
            )
    lines += ["", "## Corpus BLEU and chrF", "", "| decoding | BLEU | chrF | sentences/s |", "|---|---:|---:|---:|"]
    signatures = None
    for method, s in report["scores"].items():
        if "error" in s:
            lines.append(f"| {method} | – | – | {s['error']} |")
            continue
        label = f"beam (width {s['beam_width']})" if method == "beam" else method
        lines.append(
            f"| {label} | {_fmt(s['bleu'], 2)} | {_fmt(s['chrf'], 2)} | {_fmt(s.get('sentences_per_second'))} |"
        )
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
    header = (
        "| source words | "
        + " | ".join(f"sentences | BLEU {m}" if i == 0 else f"BLEU {m}" for i, m in enumerate(models))
        + " |"
    )
    lines += [header, "|---|" + "---:|" * (len(models) + 1)]
    for k, row in enumerate(by_model[models[0]]):
        cells = [row["label"], str(row["count"])] + [_fmt(by_model[m][k]["bleu"]) for m in models]
        lines.append("| " + " | ".join(cells) + " |")
    lines += [
        "",
        f"Greedy decoding; length = {buckets['length']}; '–' = empty bucket; buckets past the longest "
        "sentence left out (report.json has them all).",
        "",
    ]

    if "alignment" in report:
        a = report["alignment"]
        lines += [
            "## Attention vs. gold alignment",
            "",
            "| alignment | precision | recall | F1 | AER | gold attention mass |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        for key, label in (
            ("attention", "attention argmax"),
            ("uniform", "uniform control"),
            ("diagonal", "diagonal control"),
        ):
            s = a[key]
            lines.append(
                f"| {label} | {s['precision']:.3f} | {s['recall']:.3f} | {s['f1']:.3f} | {s['aer']:.3f} | {s['gold_mass']:.3f} |"
            )
        extra = [(f"layer {i + 1} (mean of heads)", s) for i, s in enumerate(a.get("by_layer", []))]
        if "alignment" in report.get("compare", {}):
            extra.append(
                (f"{report['compare']['label']}: attention argmax", report["compare"]["alignment"]["attention"])
            )
        for label, s in extra:
            lines.append(
                f"| {_md_escape(label)} | {s['precision']:.3f} | {s['recall']:.3f} | {s['f1']:.3f} | {s['aer']:.3f} | {s['gold_mass']:.3f} |"
            )
        lines += ["", f"{a['sentences']} test pairs ({a['skipped']} skipped). {a['definition']}", ""]
        if "alignment_examples" in images:
            lines += [f"![attention with gold links]({images['alignment_examples']})", ""]

    if "attention_examples" in images:
        lines += ["## Attention heatmaps", "", f"![attention heatmaps]({images['attention_examples']})", ""]
    if report.get("examples"):
        keys = [k for k in report["examples"][0] if k not in ("source", "reference")]
        lines += [
            "## Examples",
            "",
            "| source | reference | " + " | ".join(keys) + " |",
            "|---|---|" + "---|" * len(keys),
        ]
        for row in report["examples"]:
            lines.append("| " + " | ".join(_md_escape(row[k]) for k in ["source", "reference", *keys]) + " |")
        lines.append("")
    return "\n".join(lines)


def write_report(evaluation: Evaluation, out_dir: str | os.PathLike, *, heatmaps: int = 4) -> dict[str, Path]:
    """Write ``report.json``, ``report.md`` and the PNG plots into ``out_dir``; return the paths."""
    from ..plotting import plot_attention_grid, plot_bleu_by_length

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    report = evaluation.report
    images: dict[str, str] = {}
    paths: dict[str, Path] = {}

    plot_bleu_by_length(
        trim_empty_tail(report["length_buckets"]["models"]),
        save=out / "bleu_by_length.png",
        title=f"BLEU by source sentence length ({report['data']['name']}, greedy)",
    )
    images["bleu_by_length"] = "bleu_by_length.png"
    greedy = evaluation.translations.get("greedy", [])
    with_attention = [t for t in greedy if t.attention is not None and t.attention.size]
    with_attention = [
        with_attention[i] for i in example_indices([len(t.source_tokens) for t in with_attention], heatmaps)
    ]
    if with_attention:
        plot_attention_grid(
            with_attention, save=out / "attention_examples.png", suptitle="attention while translating (greedy)"
        )
        images["attention_examples"] = "attention_examples.png"
    if evaluation.alignment_examples:
        from ..translation import Translation
        from ..words import word_tokens

        views = [
            Translation(
                source=s,
                text=t,
                source_tokens=word_tokens(s),
                target_tokens=word_tokens(t),
                attention=a.astype(np.float32),
                log_prob=0.0,
            )
            for s, t, a, _ in evaluation.alignment_examples
        ]
        plot_attention_grid(
            views,
            golds=[g for *_, g in evaluation.alignment_examples],
            save=out / "alignment_examples.png",
            suptitle="teacher-forced attention on the gold English",
        )
        images["alignment_examples"] = "alignment_examples.png"
    for key, name in images.items():
        paths[key] = out / name
    from ..atomic import atomic_write_text

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
