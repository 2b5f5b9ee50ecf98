"""A whole training run: corpus -> split -> vocabularies -> model -> ``model.fit`` -> saved run folder.

Used by ``seq2seq-keras train`` and ``make demo``; from Python::

    from seq2seq_keras.training import TrainConfig, train
    model, history = train(TrainConfig(data="builtin-ko-en", epochs=5), out_dir="runs/demo")

A run folder holds ``model.keras`` (weights, optimizer state and both text
processors: it translates raw strings on its own), ``config.json`` (the
:class:`TrainConfig`) and ``history.json`` (per-epoch metrics).
"""

from __future__ import annotations

import dataclasses
import json
import os
import tempfile
from pathlib import Path
from typing import Iterable

import keras

MODEL_FILE = "model.keras"
CONFIG_FILE = "config.json"
HISTORY_FILE = "history.json"


@dataclasses.dataclass
class TrainConfig:
    """Everything that defines a training run (saved as ``config.json``)."""

    data: str = "builtin-ko-en"
    direction: str = "other"  # "other": Other -> English (as the TF tutorial); "english": the reverse
    limit: int | None = None  # use only the first N pairs of the corpus
    attention: str | None = "bahdanau"
    rnn: str = "gru"
    embedding_dim: int = 128
    units: int = 256
    encoder_layers: int = 1
    dropout: float = 0.0
    epochs: int = 10
    batch_size: int = 64
    learning_rate: float = 1e-3
    clipnorm: float | None = 5.0
    max_vocabulary: int | None = 8000  # per language, reserved tokens included
    min_frequency: int = 1
    subword: bool = False
    max_length: int | None = 50  # training pairs longer than this (tokens) are dropped
    seed: int = 0
    jit_compile: bool = False

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "TrainConfig":
        values = json.loads(text)
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(values) - known
        if unknown:
            raise ValueError(f"Unknown training settings {sorted(unknown)} in config; known: {sorted(known)}.")
        return cls(**values)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` to ``path`` so that a reader sees the old file or the new one, never half."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_save_model(model: keras.Model, path: str | os.PathLike) -> None:
    """``model.save`` to a temporary file in the same folder, then rename into place."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".keras", dir=path.parent)
    os.close(fd)
    try:
        model.save(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def build_text_processors(config: TrainConfig, train_pairs):
    """Adapt source and target :class:`TextProcessor` layers on the training split."""
    from .text import TextProcessor

    common = dict(subword=config.subword, max_tokens=config.max_vocabulary, min_frequency=config.min_frequency)
    source = TextProcessor.for_language(train_pairs.source_lang, name="source_text", **common)
    target = TextProcessor.for_language(
        train_pairs.target_lang, add_start_end=True, name="target_text", **common
    )
    source.adapt(train_pairs.source)
    target.adapt(train_pairs.target)
    return source, target


def build_model(config: TrainConfig, source_text, target_text):
    """A compiled :class:`Seq2Seq` for ``config``."""
    from .model import Seq2Seq

    keras.utils.set_random_seed(config.seed)
    model = Seq2Seq(
        source_text,
        target_text,
        embedding_dim=config.embedding_dim,
        units=config.units,
        attention=config.attention,
        rnn=config.rnn,
        encoder_layers=config.encoder_layers,
        dropout=config.dropout,
    )
    optimizer = keras.optimizers.Adam(config.learning_rate, global_clipnorm=config.clipnorm)
    model.compile(optimizer=optimizer, jit_compile=config.jit_compile)
    return model


def prepare_data(config: TrainConfig):
    """Load and split the corpus: returns (train, validation, test) :class:`SentencePairs`."""
    from .data import load_corpus, split_pairs

    pairs = load_corpus(config.data, limit=config.limit, seed=config.seed, source=config.direction)
    return split_pairs(pairs)


def train(
    config: TrainConfig,
    out_dir: str | os.PathLike | None = None,
    *,
    callbacks: Iterable[keras.callbacks.Callback] = (),
    verbose: int | str = "auto",
):
    """Train a model for ``config``; save the run to ``out_dir`` if given.

    Returns ``(model, history)`` where ``history`` is the ``keras.callbacks.History``.
    """
    from .data import make_dataset

    out = None
    if out_dir is not None:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        if not os.access(out, os.W_OK):
            raise PermissionError(f"Cannot write to the output folder {out}: choose another --out.")
    train_pairs, val_pairs, _ = prepare_data(config)
    if len(train_pairs) == 0:
        raise ValueError(f"The corpus {config.data!r} has no training pairs after the split.")
    source_text, target_text = build_text_processors(config, train_pairs)
    model = build_model(config, source_text, target_text)
    dataset_args = dict(batch_size=config.batch_size, max_length=config.max_length, seed=config.seed)
    train_ds = make_dataset(train_pairs, source_text, target_text, shuffle=True, **dataset_args)
    val_ds = make_dataset(val_pairs, source_text, target_text, shuffle=False, **dataset_args) if len(val_pairs) else None
    history = model.fit(train_ds, validation_data=val_ds, epochs=config.epochs, callbacks=list(callbacks), verbose=verbose)
    if out is not None:
        save_run(model, config, history.history, out)
    return model, history


def save_run(model, config: TrainConfig, history: dict, out_dir: str | os.PathLike) -> None:
    """Write ``model.keras``, ``config.json`` and ``history.json`` atomically into ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    atomic_save_model(model, out / MODEL_FILE)
    atomic_write_text(out / CONFIG_FILE, config.to_json())
    clean = {k: [float(v) for v in values] for k, values in history.items()}
    atomic_write_text(out / HISTORY_FILE, json.dumps(clean, indent=2))


def load_model(path: str | os.PathLike):
    """Load a trained :class:`Seq2Seq` from a run folder or a ``.keras`` file."""
    path = Path(path)
    file = path / MODEL_FILE if path.is_dir() else path
    if not file.exists():
        raise FileNotFoundError(
            f"No trained model at {file}. Train one first: seq2seq-keras train --out {path}"
        )
    import seq2seq_keras  # noqa: F401  (registers the custom layers)

    return keras.models.load_model(file)
