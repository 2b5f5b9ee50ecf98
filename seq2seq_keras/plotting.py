"""Attention heatmaps and evaluation plots, with Hangul that renders as glyphs.

:func:`plot_attention` draws one :class:`~seq2seq_keras.translation.Translation`'s
attention matrix ``[tgt_len, src_len]``: source tokens along the x axis (on top,
read left to right), output tokens down the y axis (first output token on the
top row), one cell per weight, a colour bar from 0 to 1. It takes what the Python
API returns (``model.translate(...)``), what a TF Serving client returns
(``seq2seq_keras.serving.RestClient(...).translate(...)``, the same dataclass),
or one raw prediction of a REST response (a dict with ``source_tokens``,
``target_tokens``, ``attention`` and optionally ``source_length`` /
``target_length``)::

    from seq2seq_keras.plotting import plot_attention
    fig = plot_attention(model.translate("나는 학생이다"), save="attention.png")

Fonts: the package registers NanumGothic, which ships with ``koreanize-matplotlib``,
and draws every label with the family list ``["NanumGothic", "DejaVu Sans"]``, so
Hangul comes from NanumGothic and anything it lacks falls back to DejaVu Sans
(matplotlib >= 3.6 falls back per glyph). Unlike ``import koreanize_matplotlib``
this does not change the global ``rcParams``.

:func:`animate_attention` turns the snapshots that
:class:`seq2seq_keras.evaluation.attention_snapshots.AttentionSnapshots` takes during training into an
animation, one frame per epoch (a GIF through Pillow, or ``to_jshtml()`` in a notebook).

Figures are built with :class:`matplotlib.figure.Figure`, not ``pyplot``: they do
not pile up in pyplot's figure list and need no display. In Jupyter or Colab, show
one with ``display(fig)`` (or as the cell's value once the inline backend is active,
as it is after ``import matplotlib.pyplot``); elsewhere ``fig.savefig(path)``.
"""

from __future__ import annotations

import base64
import importlib.util
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .text import readable_pieces

#: Appended to the tick label of a source token the model read as ``[UNK]`` (its label is also drawn in red).
UNKNOWN_MARK = " (unknown)"
UNKNOWN_COLOR = "tab:red"
HANGUL_FONT = "NanumGothic"
FONT_FAMILY = [HANGUL_FONT, "DejaVu Sans"]
_font_registered = False


# --------------------------------------------------------------------------- fonts
def hangul_font_path() -> Path:
    """The NanumGothic ``.ttf`` shipped by ``koreanize-matplotlib`` (found without importing it).

    Importing ``koreanize_matplotlib`` sets the global font and, in 0.1.1, imports
    ``distutils`` (gone in Python 3.12 without setuptools), so the file is located
    through the package's import spec instead.
    """
    spec = importlib.util.find_spec("koreanize_matplotlib")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(
            "koreanize-matplotlib is not installed; it ships the NanumGothic font used for Hangul "
            "labels. Install it with: pip install koreanize-matplotlib"
        )
    for location in spec.submodule_search_locations:
        path = Path(location) / "fonts" / "NanumGothic.ttf"
        if path.is_file():
            return path
    raise FileNotFoundError(
        f"koreanize-matplotlib is installed at {list(spec.submodule_search_locations)} but has no "
        "fonts/NanumGothic.ttf; reinstall it: pip install --force-reinstall koreanize-matplotlib"
    )


def register_fonts() -> list[str]:
    """Register NanumGothic with matplotlib (once) and return the family list to draw with."""
    global _font_registered
    if not _font_registered:
        from matplotlib import font_manager

        font_manager.fontManager.addfont(str(hangul_font_path()))
        _font_registered = True
    return list(FONT_FAMILY)


# --------------------------------------------------------------------------- inputs
def _decode(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, Mapping) and "b64" in value:  # TF Serving REST: non-UTF-8 strings
        return base64.b64decode(value["b64"]).decode("utf-8", errors="replace")
    return str(value)


def _field(obj: Any, *names: str, default: Any = None) -> Any:
    for name in names:
        if isinstance(obj, Mapping):
            if name in obj:
                return obj[name]
        elif hasattr(obj, name):
            return getattr(obj, name)
    return default


def attention_view(translation: Any) -> tuple[list[str], list[str], np.ndarray, str]:
    """``(source_tokens, target_tokens, attention [tgt_len, src_len], title)`` of one translation.

    Accepts a :class:`~seq2seq_keras.translation.Translation` (Python API or serving
    client), any object with the same attributes, or one prediction of a TF
    Serving REST response (a dict; padding is cut with ``source_length`` /
    ``target_length`` when present, else trailing empty tokens are dropped).
    Output words that unknown-word replacement copied from the source (the
    ``replaced`` field or output) are labelled with a trailing ``*``. WordPiece
    pieces are labelled by :func:`~seq2seq_keras.text.readable_pieces`
    (``"stud" "##ent"`` -> ``"stud-" "-ent"``); the translation keeps the raw tokens.
    Source tokens the model read as ``[UNK]`` (``Translation.unknown_source``, or
    the Python API's ``source_unknown_words`` output in a dict) are labelled with
    their word and :data:`UNKNOWN_MARK`: ``"오늘 (unknown)"`` (WordPiece: the whole
    word, where the token is ``[UNK]``). A TF Serving answer does not say which
    tokens are unknown, so its labels are unmarked.
    """
    attention = _field(translation, "attention")
    source_tokens = _field(translation, "source_tokens")
    target_tokens = _field(translation, "target_tokens")
    if source_tokens is None or target_tokens is None:
        raise TypeError(
            f"Cannot plot a {type(translation).__name__}: expected a Translation (model.translate(...) or "
            "a serving client's .translate(...)) or a dict with 'source_tokens', 'target_tokens' and 'attention'."
        )
    if attention is None:
        raise ValueError(
            "This translation has no attention weights: it comes from a model built with attention=None "
            "(the fixed-context baseline), or a serving signature without attention "
            "(use signature_name='translate_with_attention')."
        )
    source_tokens = [_decode(t) for t in np.asarray(source_tokens, dtype=object).reshape(-1)]
    target_tokens = [_decode(t) for t in np.asarray(target_tokens, dtype=object).reshape(-1)]
    attention = np.asarray(attention, dtype=np.float32)
    if attention.ndim == 3 and attention.shape[0] == 1:
        attention = attention[0]
    if attention.ndim != 2:
        raise ValueError(f"attention must be a [tgt_len, src_len] matrix, got shape {attention.shape}.")
    src_len = _field(translation, "source_length")
    tgt_len = _field(translation, "target_length")
    if src_len is None:
        while source_tokens and source_tokens[-1] == "":
            source_tokens.pop()
    else:
        source_tokens = source_tokens[: int(np.asarray(src_len).reshape(-1)[0])]
    if tgt_len is None:
        while target_tokens and target_tokens[-1] == "":
            target_tokens.pop()
    else:
        target_tokens = target_tokens[: int(np.asarray(tgt_len).reshape(-1)[0])]
    source_tokens, target_tokens = readable_pieces(source_tokens), readable_pieces(target_tokens)
    source_tokens = [
        token if word is None else word + UNKNOWN_MARK
        for token, word in zip(source_tokens, _unknown_source_words(translation, len(source_tokens)))
    ]
    replaced = _field(translation, "replaced")
    if replaced is not None and len(replaced):
        marks = np.asarray(replaced).reshape(-1)[: len(target_tokens)].astype(bool)
        target_tokens = [f"{t}*" if m else t for t, m in zip(target_tokens, marks)] + target_tokens[len(marks) :]
    attention = attention[: len(target_tokens), : len(source_tokens)]
    if attention.size == 0:
        raise ValueError(
            f"Nothing to plot: the translation of {_decode(_field(translation, 'source', default=''))!r} has "
            f"{len(target_tokens)} output and {len(source_tokens)} source tokens (an empty sentence?)."
        )
    if attention.shape != (len(target_tokens), len(source_tokens)):
        raise ValueError(
            f"attention has shape {attention.shape} but there are {len(target_tokens)} target tokens and "
            f"{len(source_tokens)} source tokens; it must be [len(target_tokens), len(source_tokens)]."
        )
    source = _field(translation, "source", default="")
    text = _field(translation, "text", "translation", default="")
    title = f"{_decode(source)}  ->  {_decode(text)}" if source or text else ""
    return source_tokens, target_tokens, attention, title


def _unknown_source_words(translation: Any, n: int) -> list[str | None]:
    """Per source token (the first ``n``): the word the model read as ``[UNK]`` there, else ``None``.

    From a :class:`~seq2seq_keras.translation.Translation`'s ``unknown_source`` and
    ``unknown_source_words``, or a dict's ``source_unknown_words`` (``""`` where known);
    all ``None`` where neither is given (not known).
    """
    row = _field(translation, "source_unknown_words")
    if row is not None:
        words = [_decode(w) for w in np.asarray(row, dtype=object).reshape(-1)[:n]]
        return [w or None for w in words] + [None] * (n - len(words))
    unknown = _field(translation, "unknown_source")
    if unknown is None:
        return [None] * n
    words = iter(_field(translation, "unknown_source_words", default=()))
    marks = [next(words, "[UNK]") if u else None for u in list(unknown)[:n]]
    return marks + [None] * (n - len(marks))


# --------------------------------------------------------------------------- heatmaps
def _new_figure(figsize: tuple[float, float]):
    from matplotlib.figure import Figure

    return Figure(figsize=figsize, layout="constrained")


def _heatmap_size(src_len: int, tgt_len: int) -> tuple[float, float]:
    return (min(3.0 + 0.55 * src_len, 16.0), min(2.2 + 0.42 * tgt_len, 16.0))


def _wrap(title: str, width_inches: float) -> str:
    """Wrap a title to about the width of its axes (some 10 characters per inch at this size)."""
    import textwrap

    return "\n".join(textwrap.fill(line, width=max(20, int(width_inches * 10))) for line in title.split("\n"))


def _draw_heatmap(
    ax, source_tokens, target_tokens, attention, *, title, gold, cmap, vmax, family, legend=True, width_inches=8.0
):
    image = ax.imshow(attention, cmap=cmap, vmin=0.0, vmax=vmax, aspect="auto", interpolation="nearest")
    ax.set_xticks(
        range(len(source_tokens)),
        labels=source_tokens,
        rotation=60,
        ha="left",
        rotation_mode="anchor",
        fontfamily=family,
    )
    ax.set_yticks(range(len(target_tokens)), labels=target_tokens, fontfamily=family)
    ax.xaxis.tick_top()
    ax.xaxis.set_label_position("top")
    # Tokens never hold a space, so a label ending with UNKNOWN_MARK is a marked unknown word.
    unknown = [label for label in ax.get_xticklabels() if label.get_text().endswith(UNKNOWN_MARK)]
    for label in unknown:
        label.set_color(UNKNOWN_COLOR)
    xlabel = "source tokens" + (" (unknown: outside the model's vocabulary, read as [UNK])" if unknown else "")
    ax.set_xlabel(xlabel, fontfamily=family)
    ax.set_ylabel("output tokens", fontfamily=family)
    if title:
        ax.set_title(_wrap(title, width_inches), fontfamily=family, fontsize="medium")
    if gold is not None:
        gold = np.asarray(gold, dtype=bool)
        if gold.shape != attention.shape:
            raise ValueError(f"gold alignment has shape {gold.shape}, attention {attention.shape}; they must match.")
        rows, cols = np.nonzero(gold)
        ax.scatter(
            cols, rows, s=140, marker="s", facecolors="none", edgecolors="red", linewidths=1.5, label="gold alignment"
        )
        if legend:
            ax.legend(
                loc="upper right", bbox_to_anchor=(1.0, -0.01), fontsize="small", prop={"family": family}, frameon=False
            )
    return image


def plot_attention(
    translation: Any,
    ax=None,
    save: str | os.PathLike | None = None,
    *,
    gold: np.ndarray | None = None,
    title: str | None = None,
    cmap: str = "viridis",
    vmax: float = 1.0,
    colorbar: bool = True,
):
    """Draw a translation's attention as a labelled heatmap; return the matplotlib ``Figure``.

    Args:
        translation: a :class:`~seq2seq_keras.translation.Translation` (from
            ``model.translate`` or a TF Serving client) or a REST prediction dict;
            ``attention[i, j]`` is the weight output token ``i`` put on source token ``j``.
        ax: draw into this ``Axes`` (e.g. of a grid); default: a new figure.
        save: write a PNG (or any format matplotlib knows from the suffix) there.
        gold: optional bool ``[tgt_len, src_len]`` gold alignment, drawn as red squares.
        title: default ``"source  ->  translation"``; ``""`` for none.
        cmap, vmax: colour map and the weight at full colour (weights are in [0, 1]).
        colorbar: add a colour bar labelled "attention weight".

    The image keeps the matrix orientation: row ``i`` (top to bottom) is output token
    ``i``, column ``j`` (left to right) is source token ``j``.
    """
    family = register_fonts()
    source_tokens, target_tokens, attention, default_title = attention_view(translation)
    size = _heatmap_size(len(source_tokens), len(target_tokens))
    if ax is None:
        fig = _new_figure(size)
        ax = fig.add_subplot()
    else:
        fig = ax.figure
    image = _draw_heatmap(
        ax,
        source_tokens,
        target_tokens,
        attention,
        title=default_title if title is None else title,
        gold=gold,
        cmap=cmap,
        vmax=vmax,
        family=family,
        width_inches=size[0],
    )
    if colorbar:
        cbar = fig.colorbar(image, ax=ax, fraction=0.05, pad=0.02)
        cbar.set_label("attention weight", fontfamily=family)
    if save is not None:
        save_figure(fig, save)
    return fig


def plot_attention_grid(
    translations: Sequence[Any],
    *,
    ncols: int = 2,
    save: str | os.PathLike | None = None,
    golds: Sequence[np.ndarray | None] | None = None,
    cmap: str = "viridis",
    suptitle: str | None = None,
):
    """Several translations' attention heatmaps in one figure with one shared colour bar.

    ``golds``, if given, holds one optional gold alignment per translation. Returns the Figure.
    """
    family = register_fonts()
    translations = list(translations)
    if not translations:
        raise ValueError("plot_attention_grid needs at least one translation.")
    if golds is not None and len(golds) != len(translations):
        raise ValueError(
            f"{len(golds)} gold alignments for {len(translations)} translations; pass one per translation."
        )
    views = [attention_view(t) for t in translations]
    ncols = max(1, min(ncols, len(views)))
    cell_w, cell_h = _grid_cell_size(views)
    fig = _new_figure(_grid_size(cell_w, cell_h, len(views), ncols))
    _draw_grid(fig, views, golds=golds, ncols=ncols, cmap=cmap, suptitle=suptitle, family=family, cell_w=cell_w)
    if save is not None:
        save_figure(fig, save)
    return fig


def _grid_cell_size(views) -> tuple[float, float]:
    return (
        max(_heatmap_size(len(v[0]), len(v[1]))[0] for v in views),
        max(_heatmap_size(len(v[0]), len(v[1]))[1] for v in views),
    )


def _grid_size(cell_w: float, cell_h: float, n: int, ncols: int) -> tuple[float, float]:
    nrows = math.ceil(n / ncols)
    return (min(cell_w * ncols + 1.0, 24.0), min(cell_h * nrows + 0.5, 30.0))


def _draw_grid(fig, views, *, golds, ncols, cmap, suptitle, family, cell_w, titles=None):
    """Draw ``views`` (from :func:`attention_view`) into ``fig``: one heatmap per view, one colour bar."""
    nrows = math.ceil(len(views) / ncols)
    axes = fig.subplots(nrows, ncols, squeeze=False)
    image = None
    for k, ax in enumerate(axes.flat):
        if k >= len(views):
            ax.set_axis_off()
            continue
        source_tokens, target_tokens, attention, title = views[k]
        image = _draw_heatmap(
            ax,
            source_tokens,
            target_tokens,
            attention,
            title=title if titles is None else titles[k],
            gold=None if golds is None else golds[k],
            cmap=cmap,
            vmax=1.0,
            family=family,
            legend=False,
            width_inches=cell_w,
        )
    cbar = fig.colorbar(image, ax=axes.ravel().tolist(), fraction=0.03, pad=0.02)
    cbar.set_label("attention weight", fontfamily=family)
    if golds is not None and any(g is not None for g in golds):
        suptitle = f"{suptitle}; red squares: gold alignment" if suptitle else "red squares: gold alignment"
    if suptitle:
        fig.suptitle(suptitle, fontfamily=family)


# --------------------------------------------------------------------------- animation
def _shorten(text: str, limit: int = 48) -> str:
    """``text``, cut to ``limit`` characters with an ellipsis (an untrained model repeats words up to its cap)."""
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def animate_attention(
    snapshots: Any,
    *,
    ncols: int | None = None,
    interval: int = 900,
    save: str | os.PathLike | None = None,
    cmap: str = "viridis",
    dpi: int = 80,
):
    """Animate attention snapshots taken during training: one frame per snapshot; returns a ``FuncAnimation``.

    Args:
        snapshots: :class:`~seq2seq_keras.evaluation.attention_snapshots.AttentionSnapshot` objects in
            order (``AttentionSnapshots(...).snapshots``), or the callback itself.
            Each frame is a grid with one heatmap per watched sentence,
            ``[target_words, source_words]`` (teacher-forced on the reference
            where there is one, with the gold links as red squares), titled with
            the model's greedy translation at that moment; the figure title names
            the epoch and, where gold links exist, AER and attention mass on gold words.
        ncols: grid columns (default: all sentences in one row, up to 3).
        interval: milliseconds per frame.
        save: also write the animation there: ``.gif`` through Pillow (which
            matplotlib depends on), any other suffix through matplotlib's default writer.
        cmap, dpi: colour map; resolution of a saved file.

    In Jupyter or Colab show it with ``IPython.display.HTML(anim.to_jshtml())``
    (no extra dependency), or save a GIF and show it with ``IPython.display.Image``.
    Built on a :class:`matplotlib.figure.Figure` (no pyplot). Raises ValueError
    for no snapshots, and for snapshots that watched different numbers of sentences.
    """
    from matplotlib.animation import FuncAnimation, PillowWriter

    family = register_fonts()
    snapshots = list(getattr(snapshots, "snapshots", snapshots))
    if not snapshots:
        raise ValueError(
            "animate_attention needs at least one snapshot; train with the AttentionSnapshots callback "
            "first (its .snapshots fill at each epoch end)."
        )
    counts = {len(s.views) for s in snapshots}
    if len(counts) != 1:
        raise ValueError(
            f"the snapshots watched different numbers of sentences ({sorted(counts)}); animate the "
            "snapshots of one AttentionSnapshots callback."
        )
    n = counts.pop()
    ncols = max(1, min(ncols or min(n, 3), n))
    frames = [[attention_view(v) for v in s.views] for s in snapshots]
    cell_w, cell_h = _grid_cell_size([v for frame in frames for v in frame])
    fig = _new_figure(_grid_size(cell_w, cell_h + 0.3, n, ncols))

    def draw(i):
        snapshot = snapshots[i]
        fig.clear()
        titles, any_forced = [], False
        for k, (source_tokens, *_) in enumerate(frames[i]):
            forced = bool(getattr(snapshot, "forced", [False] * n)[k])
            output = snapshot.outputs[k] if getattr(snapshot, "outputs", None) else ""
            source = _decode(_field(snapshot.views[k], "source", default="") or " ".join(source_tokens))
            titles.append(f"{source}\nmodel says: {_shorten(output)}")
            any_forced = any_forced or forced
        heading = snapshot.label if hasattr(snapshot, "label") else f"epoch {snapshot.epoch + 1}"
        if getattr(snapshot, "aer", None) is not None:
            heading += f": AER {snapshot.aer:.2f}, attention on gold words {snapshot.gold_mass:.2f}"
        if any_forced:
            heading += "\nrows: the reference, fed in (teacher forcing)"
        _draw_grid(
            fig,
            frames[i],
            golds=list(snapshot.golds),
            ncols=ncols,
            cmap=cmap,
            suptitle=heading,
            family=family,
            cell_w=cell_w,
            titles=titles,
        )
        return []

    draw(0)  # the figure itself shows the first frame (e.g. display(anim._fig)) before anything plays
    anim = FuncAnimation(fig, draw, frames=len(snapshots), interval=interval, repeat=True, blit=False)
    if save is not None:
        path = Path(save)
        path.parent.mkdir(parents=True, exist_ok=True)
        writer = PillowWriter(fps=max(1000.0 / interval, 0.1)) if path.suffix.lower() == ".gif" else None
        anim.save(str(path), writer=writer, dpi=dpi)
    return anim


# --------------------------------------------------------------------------- evaluation plots
def plot_bleu_by_length(
    buckets: Mapping[str, Sequence[Mapping[str, Any]]],
    *,
    save: str | os.PathLike | None = None,
    title: str = "BLEU by source sentence length",
):
    """BLEU against sentence length, one line per model (after Bahdanau et al. 2014, Figure 2).

    ``buckets`` maps a model label to its rows from
    :func:`seq2seq_keras.evaluation.scores.bleu_by_length` (``low``, ``high``, ``count``,
    ``bleu``). Each point sits at the bucket's mean source length, and the x ticks
    name the bucket and its number of sentences; empty buckets (``bleu`` None)
    leave a gap. Returns the Figure.
    """
    family = register_fonts()
    fig = _new_figure((6.4, 4.2))
    ax = fig.add_subplot()
    markers = "osD^v<>"
    ticks: dict[float, str] = {}
    for k, (name, rows) in enumerate(buckets.items()):
        xs, ys = [], []
        for row in rows:
            x = row.get("mean_length")
            if x is None:
                x = row["low"] + 0.5 if row.get("high") is None else (row["low"] + 1 + row["high"]) / 2
            ticks.setdefault(float(x), f"{row['label']}\nn={row.get('count', '?')}")
            xs.append(float(x))
            ys.append(np.nan if row.get("bleu") is None else float(row["bleu"]))
        ax.plot(xs, ys, marker=markers[k % len(markers)], label=name)
    ax.set_xticks(list(ticks), labels=list(ticks.values()), fontsize="small")
    ax.set_xlabel("source sentence length (words; bucket and number of sentences)", fontfamily=family)
    ax.set_ylabel("BLEU", fontfamily=family)
    ax.set_title(title, fontfamily=family)
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.legend(prop={"family": family})
    if save is not None:
        save_figure(fig, save)
    return fig


def save_figure(fig, path: str | os.PathLike, dpi: int = 120) -> Path:
    """Save ``fig`` (PNG by default), creating the folder; returns the path."""
    path = Path(path)
    if path.parent and not path.parent.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi)
    return path


# --------------------------------------------------------------------------- heads of a Transformer
def _as_heads(weights, rows: int, cols: int, what: str) -> np.ndarray:
    """``weights`` [layers, heads, >=rows, >=cols] (or with a leading batch of 1) -> [layers, heads, rows, cols]."""
    weights = np.asarray(weights, dtype=np.float32)
    if weights.ndim == 5 and weights.shape[0] == 1:
        weights = weights[0]
    if weights.ndim != 4:
        raise ValueError(f"{what} must be [layers, heads, rows, columns] (one sentence), got shape {weights.shape}.")
    if weights.shape[2] < rows or weights.shape[3] < cols:
        raise ValueError(f"{what} has shape {weights.shape}, too small for {rows} x {cols} tokens.")
    return weights[:, :, :rows, :cols]


def _draw_head_grid(fig, weights, row_tokens, column_tokens, *, family, cmap, ylabel, suptitle):
    """One heatmap per (layer, head): ``axes[layer, head]`` shows ``weights[layer, head]``, one colour bar."""
    layers, heads = weights.shape[:2]
    axes = fig.subplots(layers, heads, squeeze=False)
    image = None
    for (layer, head), ax in np.ndenumerate(axes):
        image = _draw_heatmap(
            ax,
            column_tokens,
            row_tokens,
            weights[layer, head],
            title=f"layer {layer + 1}, head {head + 1}",
            gold=None,
            cmap=cmap,
            vmax=1.0,
            family=family,
            legend=False,
        )
        ax.set_xlabel("")
        ax.set_ylabel(ylabel if head == 0 else "", fontfamily=family)
    cbar = fig.colorbar(image, ax=axes.ravel().tolist(), fraction=0.03, pad=0.02)
    cbar.set_label("attention weight", fontfamily=family)
    if suptitle:
        fig.suptitle(suptitle, fontfamily=family)
    return axes


def _head_grid_size(src_len: int, tgt_len: int, layers: int, heads: int) -> tuple[float, float]:
    w, h = _heatmap_size(src_len, tgt_len)
    return (min(w * heads * 0.8 + 1.0, 30.0), min(h * layers * 0.8 + 0.8, 30.0))


def plot_attention_heads(
    translation: Any,
    heads: np.ndarray | None = None,
    *,
    save: str | os.PathLike | None = None,
    title: str | None = None,
    cmap: str = "viridis",
):
    """Every layer's and head's cross-attention of one translation: a ``layers x heads`` grid; returns the Figure.

    Args:
        translation: what :func:`plot_attention` takes (a ``Translation`` or a TF
            Serving prediction dict), for the tokens and the title.
        heads: float [layers, heads, tgt_len, src_len] (a leading batch of 1 is
            dropped); default ``translation["attention_heads"]``, the output a
            Transformer's exported ``translate_with_attention`` adds. From Python:
            ``model.cross_attention(source, target)[0]`` or
            :meth:`Seq2Seq.attention_heads <seq2seq_keras.model.Seq2Seq.attention_heads>` over a search's output.
        save, title, cmap: as in :func:`plot_attention` (default title: the translation).

    Subplot ``[layer, head]`` (rows: layers from the first, columns: heads) shows
    ``heads[layer, head]`` with the source tokens on top and the output tokens
    down the side, like :func:`plot_attention`; the mean of the last row's
    heatmaps is the one heatmap :func:`plot_attention` draws for a Transformer.
    Raises ValueError when ``heads`` is missing or its shape does not fit the tokens.
    """
    family = register_fonts()
    source_tokens, target_tokens, _, default_title = attention_view(translation)
    if heads is None:
        heads = _field(translation, "attention_heads")
    if heads is None:
        raise ValueError(
            "No per-head weights: pass heads=[layers, heads, tgt_len, src_len] (model.cross_attention) "
            "or a prediction of a Transformer's translate_with_attention (its 'attention_heads')."
        )
    weights = _as_heads(heads, len(target_tokens), len(source_tokens), "heads")
    fig = _new_figure(_head_grid_size(len(source_tokens), len(target_tokens), *weights.shape[:2]))
    _draw_head_grid(
        fig,
        weights,
        target_tokens,
        source_tokens,
        family=family,
        cmap=cmap,
        ylabel="output tokens",
        suptitle="\n".join(
            filter(None, [default_title if title is None else title, "cross-attention, rows: layers, columns: heads"])
        ),
    )
    if save is not None:
        save_figure(fig, save)
    return fig


def plot_self_attention(
    source_tokens: Sequence[str],
    weights: np.ndarray,
    *,
    save: str | os.PathLike | None = None,
    title: str | None = None,
    cmap: str = "viridis",
):
    """The encoder's self-attention of one sentence: a ``layers x heads`` grid of ``src_len x src_len`` heatmaps.

    Args:
        source_tokens: the sentence's tokens (``len = src_len``; padding cut off).
        weights: float [layers, heads, src_len, src_len] (a leading batch of 1 is
            dropped), e.g. ``model.encoder.self_attention_weights(model.source_text([s]))``;
            ``weights[l, h, i, j]`` is what token ``i`` took from token ``j``.
        save, title, cmap: as in :func:`plot_attention_heads`.

    Rows of each heatmap are the attending tokens (top to bottom), columns the
    attended ones (left to right, labels on top). Returns the Figure; raises
    ValueError for a shape that does not fit the tokens.
    """
    family = register_fonts()
    tokens = [_decode(t) for t in source_tokens]
    if not tokens:
        raise ValueError("Nothing to plot: no source tokens (an empty sentence?).")
    weights = _as_heads(weights, len(tokens), len(tokens), "weights")
    fig = _new_figure(_head_grid_size(len(tokens), len(tokens), *weights.shape[:2]))
    heading = " ".join(tokens) if title is None else title
    _draw_head_grid(
        fig,
        weights,
        tokens,
        tokens,
        family=family,
        cmap=cmap,
        ylabel="attending token",
        suptitle="\n".join(filter(None, [heading, "encoder self-attention, rows: layers, columns: heads"])),
    )
    if save is not None:
        save_figure(fig, save)
    return fig
