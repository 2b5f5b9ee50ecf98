"""The quality curve: validation BLEU against training wall-clock, time to quality, and its plot.

The points come from :func:`benchmarks.quality.quality_curve` (weights snapshots
scored after training on a fixed validation slice). *Time to quality* is when our
curve first reaches the reference's validation BLEU at the end of its budget,
interpolated linearly between points; the curve starts at (0 s, BLEU 0).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

#: Curves drawn, in this order, with these labels.
CURVE_LABELS = {
    "tutorial": "tutorial (reference)",
    "feed": "ours, input feeding (default)",
    "fast": "ours, fast mode",
    "transformer": "ours, Transformer",
}


def time_to_reach(curve: Sequence[dict], bleu: float) -> float | None:
    """Training seconds at which ``curve`` first reaches ``bleu``, linearly interpolated between its points.

    ``curve``: ``{"train_seconds", "bleu"}`` points in time order; it starts at (0 s, BLEU 0).
    None when it never gets there.
    """
    if bleu <= 0:
        return 0.0
    previous_t, previous_b = 0.0, 0.0
    for point in curve:
        t, b = float(point["train_seconds"]), float(point["bleu"])
        if b >= bleu:  # previous_b < bleu <= b here
            return previous_t + (t - previous_t) * (bleu - previous_b) / (b - previous_b)
        previous_t, previous_b = t, b
    return None


def time_to_quality(quality: dict) -> dict:
    """``{family: seconds or None}``: when each of ours reached the reference's final validation BLEU.

    Empty when the reference has no curve. Also ``"reference_bleu"``: that BLEU.
    """
    reference = (quality.get("tutorial") or {}).get("curve")
    if not reference:
        return {}
    target = float(reference[-1]["bleu"])
    out: dict = {"reference_bleu": target, "reference_seconds": float(reference[-1]["train_seconds"])}
    for family, q in quality.items():
        if family != "tutorial" and q.get("curve"):
            out[family] = time_to_reach(q["curve"], target)
    return out


def write_plot(quality: dict, path: str | Path) -> Path | None:
    """Draw every model's curve (minutes on x, validation BLEU on y) into ``path`` (PNG); None if no curve."""
    curves = {family: q["curve"] for family, q in quality.items() if q.get("curve")}
    if not curves:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(7, 4.2), dpi=110)
    for family in sorted(curves, key=lambda f: list(CURVE_LABELS).index(f) if f in CURVE_LABELS else 99):
        points = curves[family]
        minutes = [0.0] + [p["train_seconds"] / 60 for p in points]
        bleu = [0.0] + [p["bleu"] for p in points]
        axes.plot(
            minutes,
            bleu,
            marker="o",
            markersize=3,
            label=CURVE_LABELS.get(family, family),
            linestyle="--" if family == "tutorial" else "-",
        )
    reached = time_to_quality(quality)
    if reached:
        axes.axhline(reached["reference_bleu"], color="grey", linewidth=0.8, linestyle=":")
    axes.set_xlabel("training wall-clock, minutes (snapshots and scoring excluded)")
    axes.set_ylabel("validation BLEU (sacrebleu, lower-cased)")
    sentences = next(iter(quality.values())).get("curve_sentences", "")
    axes.set_title(f"BLEU against training time ({sentences} validation pairs)")
    axes.grid(alpha=0.3)
    axes.legend(loc="lower right", fontsize=8)
    figure.tight_layout()
    path = Path(path)
    figure.savefig(path)
    plt.close(figure)
    return path
