"""A run folder, end to end: its budget, its test split rebuilt, evaluated, checked for robustness, exported.

The functions the ``evaluate`` and ``export`` commands call on a run folder (or a ``.keras`` file). They sit
above training (they read the run folder and its :class:`~seq2seq_keras.training.TrainConfig`), evaluation
and export, and import each where it is used.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any


def run_summary(run_dir: str | os.PathLike) -> dict[str, Any] | None:
    """The training budget of a run folder (``config.json`` + ``history.json``), or None if absent."""
    from .training.config import TrainConfig
    from .training.run_folder import CONFIG_FILE, HISTORY_FILE

    run = Path(run_dir)
    if not (run / CONFIG_FILE).is_file():
        return None
    config = TrainConfig.from_json((run / CONFIG_FILE).read_text(encoding="utf-8"))
    history: dict[str, list[float]] = {}
    if (run / HISTORY_FILE).is_file():
        history = json.loads((run / HISTORY_FILE).read_text(encoding="utf-8"))
    epochs = len(history.get("loss", [])) or config.epochs
    summary = (
        f"{config.data}, limit {config.limit}, {epochs} epochs, batch {config.batch_size}, "
        f"lr {config.learning_rate:g}, {config.rnn} embedding {config.embedding_dim} units {config.encoder_units}, "
        f"attention {config.attention or 'none'}"
    )
    final = {k: v[-1] for k, v in history.items() if v}
    if "val_accuracy" in final:
        summary += f"; final validation token accuracy {final['val_accuracy']:.3f}"
    return {
        "path": str(run),
        "config": dataclasses.asdict(config),
        "epochs": epochs,
        "final": final,
        "summary": summary,
    }


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


def load_run_split(
    path: str | os.PathLike,
    *,
    data: str | None = None,
    limit: int | str | None = None,
    split: str = "test",
    max_sentences: int | None = None,
    compare: str | os.PathLike | None = None,
) -> RunSplit:
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
    from .data.corpora import load_corpus, split_pairs
    from .training.config import TrainConfig
    from .training.run_folder import load_model

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
    return RunSplit(
        path=path,
        model=model,
        pairs=chosen,
        train=train,
        loaded=len(pairs),
        data=data,
        limit=limit,
        split=split,
        run=run,
        compare=compare_model,
        compare_path=None if compare is None else str(compare),
        compare_run=compare_run,
    )


def evaluate_run(run: RunSplit, out_dir: str | os.PathLike, **options) -> tuple[dict[str, Any], dict[str, Path]]:
    """:func:`evaluate` a loaded run (and its ``compare`` model), then :func:`write_report` to ``out_dir``.

    ``options`` go to :func:`evaluate` (``beam_width``, ``edges``, ``batch_size``,
    ``max_length``, ``progress``). The report also records where the model, the data and
    the training budget came from. Returns ``(report, paths)``.
    """
    from .evaluation.report import write_report
    from .evaluation.scores import evaluate

    result = evaluate(run.model, run.pairs, compare=run.compare, **options)
    report = result.report
    report["model"]["path"] = run.path
    report["data"].update(corpus=run.data, limit=run.limit, split=run.split)
    if run.run:
        report["training"] = run.run
    if run.compare_run:
        report["compare_training"] = run.compare_run
    return report, write_report(result, out_dir)


def evaluate_run_robustness(
    run: RunSplit,
    out_dir: str | os.PathLike,
    *,
    beam_width: int | None = None,
    coverage_penalty: float | None = None,
    batch_size: int = 64,
    max_length: int | None = None,
    log: Callable[[str], None] | None = None,
) -> tuple[dict[str, Any], Path]:
    """The robustness evaluation (:mod:`seq2seq_keras.evaluation.robustness`) of a loaded run, written to ``out_dir``.

    Scores every :data:`~seq2seq_keras.evaluation.robustness.DEFAULT_VARIANTS` system on a set built
    from ``run.train`` and ``run.pairs``; ``beam_width`` replaces the beam variant's width
    (0 leaves beam search out) and ``coverage_penalty`` its GNMT coverage penalty.
    Writes ``robustness.json`` and ``robustness.md``; returns
    ``(results, path of robustness.md)``. ``log`` gets one line per system before it runs.

    Raises:
        ValueError: the split has no pairs to build a robustness set from.
    """
    from .evaluation.robustness import (
        DEFAULT_VARIANTS,
        build_robustness_set,
        evaluate_robustness,
        model_translator,
        robustness_markdown,
    )

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
    atomic_write_text(
        out / "robustness.json",
        json.dumps(
            {"model": run.path, "data": run.label, "results": results, "set": rset.to_dict()},
            indent=1,
            ensure_ascii=False,
        ),
    )
    atomic_write_text(out / "robustness.md", robustness_markdown(results, rset, title=f"{run.path} on {run.label}"))
    return results, out / "robustness.md"


def export_run(run_dir: str | os.PathLike, name: str, base_dir: str | os.PathLike | None = None, **kwargs) -> Path:
    """Load a run folder (or ``.keras`` file) and :func:`~seq2seq_keras.serving.export.export_model` it.

    ``base_dir`` defaults to the export's (``saved_models``); ``kwargs`` go to ``export_model``. The run
    folder is recorded as the export's source model, so ``check-servable`` compares the export with it.
    """
    from .serving.export import DEFAULT_BASE_DIR, export_model
    from .training.run_folder import load_model

    kwargs.setdefault("source_model", run_dir)
    return export_model(load_model(run_dir), name, DEFAULT_BASE_DIR if base_dir is None else base_dir, **kwargs)
