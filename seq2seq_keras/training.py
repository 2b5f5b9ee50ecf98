"""A whole training run: corpus -> split -> vocabularies -> model -> ``model.fit`` -> saved run folder.

Used by ``seq2seq-keras train`` and ``make demo``; from Python::

    from seq2seq_keras.training import TrainConfig, train
    model, history = train(TrainConfig(data="builtin-ko-en", epochs=5), out_dir="runs/demo")

A finished run folder holds ``model.keras`` (weights, optimizer state and both
text processors: it translates raw strings on its own), ``config.json`` (the
:class:`TrainConfig`) and ``history.json`` (per-epoch metrics).

**Interrupted runs resume.** While it trains, the folder also holds
``vocabulary.json`` (both text processors, adapted once, never re-adapted),
``state.json`` (machine-readable progress) and ``checkpoint/`` (weights,
optimizer state, dropout RNG state and the position in the data, written
atomically by :class:`~seq2seq_keras.checkpointing.SafeBackupAndRestore` at
every epoch end, every ``checkpoint_every`` steps if set, and on Ctrl-C).
Calling :func:`train` again with the same configuration and folder, after a
kill at any moment, continues from the last commit; at most one epoch is lost
(``checkpoint_every`` steps if set, nothing on Ctrl-C) and the result is the
model an uninterrupted run gives:

* each epoch's shuffle order is a function of ``seed`` and the epoch number
  only: ``tf.data``'s ``shuffle(seed=..., reshuffle_each_iteration=True)`` draws
  a new order for each *iterator* it makes, so the run feeds ``fit`` one
  ``repeat()`` iterator (``steps_per_epoch`` = batches per epoch) and a resumed
  run first makes and drops as many iterators as epochs are done. (Plain Keras
  ``BackupAndRestore`` + ``fit(dataset)`` replays epoch 1's order after a
  restart instead.) A mid-epoch checkpoint also skips the batches already seen;
* the dropout RNG state (not part of Keras weights files) is restored too.

A folder whose ``config.json``, ``vocabulary.json`` or training data no longer
match the request is refused (:class:`RunMismatchError`); ``restart=True``
discards its training state first.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Iterable

import keras
import numpy as np

from .checkpointing import (  # noqa: F401  (atomic_* are re-exported for existing callers)
    CheckpointError,
    CheckpointRecord,
    SafeBackupAndRestore,
    atomic_save_model,
    atomic_write_text,
    estimate_checkpoint_bytes,
    read_records,
    remove_temporaries,
)

MODEL_FILE = "model.keras"
CONFIG_FILE = "config.json"
HISTORY_FILE = "history.json"
VOCABULARY_FILE = "vocabulary.json"
STATE_FILE = "state.json"
CHECKPOINT_DIR = "checkpoint"
_RUN_FILES = (MODEL_FILE, CONFIG_FILE, HISTORY_FILE, VOCABULARY_FILE, STATE_FILE)
_STATE_FORMAT = 1


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
    input_feeding: bool = True  # False: the fast mode (Luong without input feeding)
    tensorboard: str | None = None  # log folder: losses + attention snapshots (callbacks.tensorboard_callbacks)

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

    def differences(self, other: "TrainConfig") -> list[tuple[str, object, object]]:
        """``(field, self value, other value)`` for every setting that differs (logging-only ones excepted)."""
        return [
            (f.name, getattr(self, f.name), getattr(other, f.name))
            for f in dataclasses.fields(self)
            if f.name not in LOGGING_ONLY and getattr(self, f.name) != getattr(other, f.name)
        ]


#: Settings that change what is logged, not the model or its training: a resume may change them.
LOGGING_ONLY = frozenset({"tensorboard"})


#: With ``jit_compile``, batches are padded to full rows and lengths to a multiple of
#: this many tokens (``make_dataset(pad_to_multiple=...)``), so XLA compiles a few
#: dozen shapes instead of one per bucketed batch shape.
XLA_PAD_MULTIPLE = 4


# --------------------------------------------------------------------------- errors
class TrainingError(Exception):
    """A training run could not start or go on; the message says why and what to do."""


class OutputFolderError(TrainingError):
    """The output folder cannot be written, lacks space, or holds something else."""


class RunMismatchError(TrainingError):
    """The output folder holds a run with another configuration, vocabulary or data."""


class NonFiniteLossError(TrainingError):
    """The training loss became NaN or infinite; the last good checkpoint is kept."""


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C (or SIGTERM) stopped ``fit``; the resumable state was saved first."""


# --------------------------------------------------------------------------- building blocks
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
        input_feeding=config.input_feeding,
    )
    optimizer = keras.optimizers.Adam(config.learning_rate, global_clipnorm=config.clipnorm)
    model.compile(optimizer=optimizer, jit_compile=config.jit_compile)
    return model


def prepare_data(config: TrainConfig):
    """Load and split the corpus: returns (train, validation, test) :class:`SentencePairs`."""
    from .data import load_corpus, split_pairs

    pairs = load_corpus(config.data, limit=config.limit, seed=config.seed, source=config.direction)
    return split_pairs(pairs)


def data_fingerprint(*splits) -> dict:
    """Sizes and SHA-256 of the given splits' sentence pairs (detects a changed corpus file)."""
    digest = hashlib.sha256()
    sizes = []
    for pairs in splits:
        sizes.append(len(pairs))
        for source, target in zip(pairs.source, pairs.target):
            digest.update(source.encode("utf-8") + b"\t" + target.encode("utf-8") + b"\n")
        digest.update(b"\x00")
    return {"pairs": sizes, "sha256": digest.hexdigest()}


class NonFiniteLossGuard(keras.callbacks.TerminateOnNaN):
    """Keras' ``TerminateOnNaN(raise_error=True)``, raising :class:`NonFiniteLossError`.

    It raises at the end of the first batch whose running loss is NaN or
    infinite, before any later callback (a checkpoint) sees that state; Keras'
    default ``stop_training`` mode would still run ``on_epoch_end`` and let a
    ``BackupAndRestore`` save the poisoned weights.
    """

    def __init__(self):
        super().__init__(raise_error=True)
        self.epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_batch_end(self, batch, logs=None):
        try:
            super().on_batch_end(batch, logs)
        except RuntimeError:
            loss = (logs or {}).get("loss")
            step = int(self.model.optimizer.iterations)
            raise NonFiniteLossError(
                f"the training loss became {loss} in epoch {self.epoch + 1} (step {step})"
            ) from None


# --------------------------------------------------------------------------- the run folder
def check_output_folder(out_dir: str | os.PathLike, required_bytes: int = 0) -> Path:
    """Create ``out_dir`` if needed and check that it is writable with ``required_bytes`` free.

    Raises :class:`OutputFolderError` saying what is wrong. Writability is tested
    by creating a file (``os.access`` alone is wrong for root and ACLs).
    """
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise OutputFolderError(
            f"Cannot create the output folder {out} ({e.strerror or e}); choose another --out."
        ) from None
    if not os.access(out, os.W_OK | os.X_OK):
        raise OutputFolderError(f"Cannot write to the output folder {out} (no permission); choose another --out.")
    try:
        fd, probe = tempfile.mkstemp(prefix=".write-test.", suffix=".tmp", dir=out)
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        raise OutputFolderError(f"Cannot write to the output folder {out} ({e.strerror or e}); choose another --out.") from None
    free = shutil.disk_usage(out).free
    if required_bytes > free:
        raise OutputFolderError(
            f"Not enough disk space in {out}: {free / 2**20:.1f} MiB free, but checkpoints and the final model "
            f"need about {required_bytes / 2**20:.1f} MiB. Free some space or choose another --out."
        )
    return out


def required_disk_bytes(model: keras.Model, keep: int = 2) -> int:
    """Peak disk use of a run: ``keep`` checkpoints + one being written + the final model."""
    return (keep + 2) * estimate_checkpoint_bytes(model)


def read_state(run_dir: str | os.PathLike) -> dict | None:
    """The parsed ``state.json`` of a run folder, or ``None`` if there is none.

    Keys: ``status`` (``running``, ``interrupted``, ``stopped_non_finite_loss``,
    ``failed``, ``finished``), ``epochs`` (planned), ``epochs_completed``,
    ``steps_per_epoch``, ``checkpoint`` (the newest commit: ``epoch``,
    ``batch``, ``step``, ``file``), ``last_step_seen`` (updated about once a
    second while training), ``history``, ``resumes`` (one entry per resume:
    ``from_epoch``, ``from_batch``, ``from_step``, ``steps_lost``), ``message``,
    ``data`` and ``vocabulary_sha256`` (what a resume is checked against).
    """
    file = Path(run_dir) / STATE_FILE
    if not file.is_file():
        return None
    return json.loads(file.read_text(encoding="utf-8"))


def _write_state(out: Path, state: dict) -> None:
    state["updated"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    atomic_write_text(out / STATE_FILE, json.dumps(state, indent=1, ensure_ascii=False))


def discard_run(run_dir: str | os.PathLike) -> None:
    """Delete a run folder's training files (model, config, vocabulary, state, checkpoints); keep anything else."""
    out = Path(run_dir)
    shutil.rmtree(out / CHECKPOINT_DIR, ignore_errors=True)
    for name in _RUN_FILES:
        (out / name).unlink(missing_ok=True)
    remove_temporaries(out)


def save_vocabulary(source_text, target_text, path: str | os.PathLike) -> str:
    """Write both text processors (settings + vocabulary) as JSON; returns the file's SHA-256."""
    text = json.dumps(
        {
            "source": keras.saving.serialize_keras_object(source_text),
            "target": keras.saving.serialize_keras_object(target_text),
        },
        indent=1,
        ensure_ascii=False,
    )
    atomic_write_text(path, text)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def load_vocabulary(path: str | os.PathLike):
    """``(source_text, target_text)`` from :func:`save_vocabulary`'s file."""
    from . import text  # noqa: F401  (registers TextProcessor)

    values = json.loads(Path(path).read_text(encoding="utf-8"))
    return (
        keras.saving.deserialize_keras_object(values["source"]),
        keras.saving.deserialize_keras_object(values["target"]),
    )


def _flag(name: str, value) -> str:
    if isinstance(value, bool):
        return f"--{name.replace('_', '-')}" if value else f"no --{name.replace('_', '-')}"
    return f"--{name.replace('_', '-')} {'none' if value is None else value}"


def _check_resumable(out: Path, config: TrainConfig, state: dict) -> None:
    """Raise :class:`RunMismatchError` unless ``out``'s configuration and vocabulary match."""
    advice = (
        f"Run the original command to resume it, use another --out for a new run, or add --restart "
        f"to discard the training state in {out} and start over."
    )
    try:
        saved = TrainConfig.from_json((out / CONFIG_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError, TypeError) as e:
        raise RunMismatchError(f"{out / CONFIG_FILE} is missing or unreadable ({e}). {advice}") from None
    differences = saved.differences(config)
    if differences:
        listed = "; ".join(f"{_flag(name, old)} in {out}, {_flag(name, new)} now" for name, old, new in differences)
        raise RunMismatchError(f"{out} holds a run with other settings ({listed}). {advice}")
    vocabulary = out / VOCABULARY_FILE
    try:
        sha = hashlib.sha256(vocabulary.read_bytes()).hexdigest()
    except OSError:
        sha = None
    if sha != state.get("vocabulary_sha256"):
        raise RunMismatchError(
            f"{vocabulary} is {'missing' if sha is None else 'not the vocabulary this run was started with'}: "
            f"the checkpoint's embeddings would not match it. {advice}"
        )


def _history(model, values: dict) -> keras.callbacks.History:
    history = keras.callbacks.History()
    history.set_model(model)
    history.history = {k: list(v) for k, v in values.items()}
    history.epoch = list(range(len(next(iter(values.values()), []))))
    return history


class _StateFile(keras.callbacks.Callback):
    """Keeps ``state.json`` current: every commit, and ``last_step_seen`` about once a second."""

    def __init__(self, out: Path, state: dict, interval: float = 1.0):
        super().__init__()
        self.out, self.state, self.interval = out, state, interval
        self._last_write = time.monotonic()

    def write(self) -> None:
        _write_state(self.out, self.state)
        self._last_write = time.monotonic()

    def commit(self, record: CheckpointRecord) -> None:
        self.state.update(
            checkpoint={"epoch": record.epoch, "batch": record.batch, "step": record.step,
                        "file": f"{CHECKPOINT_DIR}/{record.weights}"},
            epochs_completed=record.epoch,
            history=record.history,
            last_step_seen=max(record.step, self.state.get("last_step_seen") or 0),
        )
        self.write()

    def on_train_batch_end(self, batch, logs=None):
        if time.monotonic() - self._last_write >= self.interval:
            self.state["last_step_seen"] = int(self.model.optimizer.iterations)
            self.write()


def batches_per_epoch(dataset) -> int:
    """Batches in one pass over ``dataset``.

    Always one full pass of the input pipeline (no model): it fills the
    pipeline's ``cache()`` before :func:`advance_epochs` makes iterators that are
    never read, and checks a declared cardinality.
    """
    counted = int(dataset.reduce(np.int64(0), lambda n, _: n + 1))
    declared = int(dataset.cardinality())
    if declared >= 0 and declared != counted:
        raise ValueError(f"The training pipeline declares {declared} batches per epoch but yields {counted}.")
    return counted


def advance_epochs(dataset, epochs: int) -> None:
    """Make and drop ``epochs`` iterators, so the next one gets epoch ``epochs``' shuffle order.

    ``shuffle(seed=s, reshuffle_each_iteration=True)`` draws the seed of each new
    order from a generator shared by every iterator of the dataset, at iterator
    creation; an iterator that is never read costs nothing else.
    """
    for _ in range(epochs):
        iterator = iter(dataset)
        del iterator


# --------------------------------------------------------------------------- train
def train(
    config: TrainConfig,
    out_dir: str | os.PathLike | None = None,
    *,
    callbacks: Iterable[keras.callbacks.Callback] = (),
    verbose: int | str = "auto",
    restart: bool = False,
    checkpoint_every: int | None = None,
):
    """Train a model for ``config``; with ``out_dir``, save the run there and resume it if interrupted.

    Args:
        config: the run's settings.
        out_dir: run folder (see the module docstring); ``None`` trains in memory only.
        callbacks: extra Keras callbacks (they run after the NaN guard and the checkpoint).
        verbose: passed to ``fit``.
        restart: discard ``out_dir``'s training state first instead of resuming it.
        checkpoint_every: also commit a checkpoint every this many steps (a
            kill then loses at most that many); default: at epoch ends only.

    Returns ``(model, history)``; ``history.history`` covers every epoch of the
    run, resumed ones included.

    Extra callbacks keep no state across a resume (as with Keras'
    ``BackupAndRestore``: an ``EarlyStopping`` starts counting again), and a
    resume from inside an epoch calls ``fit`` twice (the rest of that epoch,
    then the remaining epochs), so they see ``on_train_begin`` twice.

    Raises:
        OutputFolderError: ``out_dir`` cannot be written or lacks space (before training).
        RunMismatchError: ``out_dir`` holds a run with other settings, vocabulary or data.
        NonFiniteLossError: the loss became NaN/inf; the last good checkpoint is kept.
        TrainingInterrupted: Ctrl-C; the resumable state was saved first.
        CheckpointError: a checkpoint could not be written (e.g. disk full); the previous one is intact.
    """
    from .data import make_dataset

    if checkpoint_every is not None and checkpoint_every < 1:
        raise ValueError(f"checkpoint_every={checkpoint_every}: use a positive number of steps, or None.")
    out = None if out_dir is None else check_output_folder(out_dir)
    state = None
    resuming = False
    if out is not None:
        if restart:
            discard_run(out)
        remove_temporaries(out)
        state = read_state(out)
        if state is None and (out / MODEL_FILE).exists():
            raise OutputFolderError(
                f"{out} already holds a model ({MODEL_FILE}) without a resumable training state. "
                "Use another --out, or add --restart to replace it."
            )
        if state is not None:
            _check_resumable(out, config, state)
            resuming = True

    train_pairs, val_pairs, _ = prepare_data(config)
    if len(train_pairs) == 0:
        raise ValueError(f"The corpus {config.data!r} has no training pairs after the split.")
    fingerprint = data_fingerprint(train_pairs, val_pairs)

    if state is not None:
        if state.get("data") != fingerprint:
            raise RunMismatchError(
                f"The training data changed since {out} was started (pairs {state.get('data', {}).get('pairs')} "
                f"then, {fingerprint['pairs']} now; contents differ): its vocabulary and data order no longer "
                "apply. Use another --out, or add --restart to start over on the new data."
            )
        if state.get("status") == "finished" and (out / MODEL_FILE).exists():
            print(f"{out} already holds a finished run of {state.get('epochs_completed')} epochs; nothing to do "
                  "(add --restart to train it again).", flush=True)
            model = load_model(out)
            history = json.loads((out / HISTORY_FILE).read_text(encoding="utf-8"))
            return model, _history(model, history)
        source_text, target_text = load_vocabulary(out / VOCABULARY_FILE)
    else:
        source_text, target_text = build_text_processors(config, train_pairs)

    model = build_model(config, source_text, target_text)
    if out is not None:
        check_output_folder(out, required_disk_bytes(model))
        if state is None:
            atomic_write_text(out / CONFIG_FILE, config.to_json())
            vocabulary_sha = save_vocabulary(source_text, target_text, out / VOCABULARY_FILE)
            state = {
                "format": _STATE_FORMAT, "status": "running", "epochs": config.epochs, "epochs_completed": 0,
                "steps_per_epoch": None, "checkpoint": None, "last_step_seen": 0, "history": {},
                "resumes": [], "message": "", "data": fingerprint, "vocabulary_sha256": vocabulary_sha,
            }
            _write_state(out, state)

    def epoch_data(start_epoch: int):
        """A fresh training pipeline whose next iterator gives epoch ``start_epoch``'s order."""
        dataset = make_dataset(train_pairs, source_text, target_text, shuffle=True, **dataset_args)
        batches = batches_per_epoch(dataset)
        advance_epochs(dataset, start_epoch)
        return dataset, batches

    dataset_args = dict(batch_size=config.batch_size, max_length=config.max_length, seed=config.seed,
                        # XLA compiles once per batch shape: keep the shapes few.
                        pad_to_multiple=XLA_PAD_MULTIPLE if config.jit_compile else None)
    val_ds = make_dataset(val_pairs, source_text, target_text, shuffle=False, **dataset_args) if len(val_pairs) else None

    guard = NonFiniteLossGuard()
    all_callbacks: list[keras.callbacks.Callback] = [guard]
    checkpoint = record = state_file = None
    if out is not None:
        state_file = _StateFile(out, state)
        checkpoint = SafeBackupAndRestore(
            out / CHECKPOINT_DIR, save_freq=checkpoint_every or "epoch", on_commit=state_file.commit
        )
        checkpoint.set_model(model)
        record = checkpoint.restore(model)
        model._initial_epoch = None  # train() passes initial_epoch itself
    epoch, batch = (record.epoch, record.batch) if record is not None else (0, 0)
    train_ds, steps_per_epoch = epoch_data(epoch)
    if out is not None:
        if state.get("steps_per_epoch") not in (None, steps_per_epoch):
            raise RunMismatchError(
                f"{out} was trained with {state['steps_per_epoch']} batches per epoch, the data now give "
                f"{steps_per_epoch}. Use another --out, or add --restart to start over."
            )
        checkpoint.steps_per_epoch = steps_per_epoch
        if resuming:
            step = record.step if record is not None else 0
            lost = max(0, int(state.get("last_step_seen") or 0) - step)
            state["resumes"].append(
                {"from_epoch": epoch, "from_batch": batch, "from_step": step, "steps_lost": lost,
                 "at": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
            )
            where = "the start (no checkpoint had been written)" if record is None else record.describe()
            print(f"Resuming {out} from {where}; at least {lost} steps done after it are redone.", flush=True)
        state.update(status="running", steps_per_epoch=steps_per_epoch, message="", last_step_seen=step if resuming else 0)
        state_file.write()
        all_callbacks += [checkpoint, state_file]
    if config.tensorboard:  # losses (Keras' TensorBoard) and attention snapshots; steps = absolute epochs
        from .callbacks import tensorboard_callbacks

        all_callbacks += tensorboard_callbacks(config.tensorboard, model)
    all_callbacks += list(callbacks)

    # One fresh pipeline per fit() call: Keras makes a varying number of iterators per
    # fit (one per epoch, plus one at each epoch end when the cardinality is known), so
    # the shuffle position is set explicitly before each call; inside a call the data
    # come from a single repeat() iterator: one shuffle order per epoch, in sequence.
    fit_args = dict(validation_data=val_ds, callbacks=all_callbacks, verbose=verbose, shuffle=False)
    try:
        if batch:  # finish the epoch a mid-epoch checkpoint stopped in, skipping the batches it saw
            model.fit(train_ds.skip(batch), steps_per_epoch=steps_per_epoch - batch,
                      initial_epoch=epoch, epochs=epoch + 1, **fit_args)
            epoch += 1
            model._initial_epoch = None
            del train_ds
            train_ds, _ = epoch_data(epoch) if epoch < config.epochs else (None, None)
        if epoch < config.epochs:
            model.fit(train_ds.repeat(), steps_per_epoch=steps_per_epoch,
                      initial_epoch=epoch, epochs=config.epochs, **fit_args)
    except NonFiniteLossError as e:
        last = checkpoint.latest() if checkpoint is not None else None
        if last is not None:
            where = (f"The last good checkpoint ({last.describe()}) is kept in {out / CHECKPOINT_DIR}; nothing "
                     "after it was saved.")
        else:
            where = "No checkpoint had been written yet; nothing was saved."
        message = (f"Training stopped: {e}. {where} Lower --learning-rate or --clipnorm and start again with "
                   "--restart (or another --out).")
        if state_file is not None:
            state.update(status="stopped_non_finite_loss", message=message)
            state_file.write()
        raise NonFiniteLossError(message) from None
    except KeyboardInterrupt:
        if checkpoint is None:
            raise TrainingInterrupted("Interrupted; nothing was saved (no --out).") from None
        try:
            saved = checkpoint.save_now()
        except KeyboardInterrupt:  # a second Ctrl-C during the save: the previous commit stands
            saved = checkpoint.latest()
        if saved is None:
            message = f"Interrupted before the first checkpoint; run the same command again to start over in {out}."
        else:
            message = (f"Interrupted; the training state at {saved.describe()} is saved in {out}. "
                       "Run the same command again to resume.")
        state.update(status="interrupted", message=message,
                     last_step_seen=max(int(model.optimizer.iterations), state.get("last_step_seen") or 0))
        state_file.write()
        raise TrainingInterrupted(message) from None
    except CheckpointError as e:
        if state_file is not None:
            state.update(status="failed", message=str(e))
            try:
                state_file.write()
            except OSError:
                pass
        raise

    if checkpoint is not None:
        history = checkpoint.history
    else:  # no fit call at all when epochs=0
        history = model.history.history if getattr(model, "history", None) is not None else {}
    if out is not None:
        save_run(model, config, history, out)
        state.update(status="finished", epochs_completed=config.epochs, history=history, checkpoint=None,
                     last_step_seen=int(model.optimizer.iterations), message="")
        state_file.write()
        checkpoint.delete()
    return model, _history(model, history)


def save_run(model, config: TrainConfig, history: dict, out_dir: str | os.PathLike) -> None:
    """Write ``model.keras``, ``config.json`` and ``history.json`` atomically into ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    atomic_save_model(model, out / MODEL_FILE)
    atomic_write_text(out / CONFIG_FILE, config.to_json())
    clean = {k: [float(v) for v in values] for k, values in history.items()}
    atomic_write_text(out / HISTORY_FILE, json.dumps(clean, indent=2))


def load_checkpoint(run_dir: str | os.PathLike):
    """``(model, record)``: the newest readable checkpoint of an unfinished run folder.

    The model is rebuilt from ``config.json`` and ``vocabulary.json`` and gets the
    checkpoint's weights and optimizer state; ``record`` says where training
    stood (:class:`~seq2seq_keras.checkpointing.CheckpointRecord`).
    """
    run = Path(run_dir)
    folder = run / CHECKPOINT_DIR
    if not read_records(folder):
        raise FileNotFoundError(f"No checkpoint in {folder}: the run has none yet, or it finished "
                                f"(then load {run / MODEL_FILE} with load_model).")
    config = TrainConfig.from_json((run / CONFIG_FILE).read_text(encoding="utf-8"))
    source_text, target_text = load_vocabulary(run / VOCABULARY_FILE)
    model = build_model(config, source_text, target_text)
    record = SafeBackupAndRestore(folder).restore(model)
    model._initial_epoch = None
    return model, record


def load_model(path: str | os.PathLike):
    """Load a trained :class:`Seq2Seq` from a run folder or a ``.keras`` file."""
    path = Path(path)
    file = path / MODEL_FILE if path.is_dir() else path
    if not file.exists():
        state = read_state(path) if path.is_dir() else None
        if state is not None:
            raise FileNotFoundError(
                f"{path} holds an unfinished run ({state.get('epochs_completed')} of {state.get('epochs')} epochs, "
                f"status {state.get('status')}): run the same train command to resume it, or load its last "
                "checkpoint with seq2seq_keras.training.load_checkpoint."
            )
        raise FileNotFoundError(
            f"No trained model at {file}. Train one first: seq2seq-keras train --out {path}"
        )
    import seq2seq_keras  # noqa: F401  (registers the custom layers)

    return keras.models.load_model(file)
