"""Crash-safe checkpoints: a resumable training state, committed atomically.

Two pieces, used by :func:`seq2seq_keras.training.train`:

* **Atomic writes** (:func:`~seq2seq_keras.atomic.atomic_path`,
  :func:`~seq2seq_keras.atomic.atomic_write_text`,
  :func:`~seq2seq_keras.atomic.atomic_save_model`, in :mod:`seq2seq_keras.atomic`):
  a reader sees the old file or the new one, never half of one.

* :class:`SafeBackupAndRestore`, a ``keras.callbacks.BackupAndRestore`` that
  fixes what the Keras 3.15 original does not do (read
  ``keras/src/callbacks/backup_and_restore.py``):

  ============================  ==============================  =====================================
  what                          Keras ``BackupAndRestore``      :class:`SafeBackupAndRestore`
  ============================  ==============================  =====================================
  weights + optimizer slots     yes (``save_weights`` walks     yes, in a ``.keras`` archive (HDF5 built
                                the optimizer too)              in memory, so a full disk fails in
                                                                Python's ``zipfile``, not inside HDF5,
                                                                which can crash the interpreter later)
  write                         in place: ``h5py`` truncates    temporary file + fsync + ``os.replace``;
                                ``latest.weights.h5`` first,    a kill at any moment leaves the last
                                so a kill mid-write corrupts    commit loadable
                                it
  weights vs. epoch counter     two files written one after     one commit record
                                the other: a kill in between    (``checkpoint.json``) written last,
                                pairs epoch N+1 weights with    naming the weights file and its SHA-256
                                epoch N
  dropout RNG state             not saved (seed generators      saved and restored
                                are not weights)
  mid-epoch position            ``save_freq=N`` saves, but a    batch, step and metric totals saved;
                                restore restarts the epoch      :func:`~seq2seq_keras.training.train`
                                on top of the newer weights     skips the batches already seen
  non-finite loss               saved like any other state      refuses to save (the last good commit
                                                                stays)
  after ``fit``                 deletes the backup              kept until the caller deletes it
  ============================  ==============================  =====================================

Checkpoint folder layout::

    checkpoint/
      checkpoint.json                    # the commit: newest record first (``keep`` of them)
      ckpt-e0003-b000000-s00000096.keras # weights + optimizer state, one per record
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import re
import shutil
import time
import warnings
import zipfile
from collections.abc import Callable
from pathlib import Path

import keras
import numpy as np

from ..atomic import (
    atomic_save_model,
    atomic_write_text,
    file_sha256,
    remove_temporaries,
)
from ..variables import optimizer_step, variable_value

RECORD_FILE = "checkpoint.json"
_WEIGHTS_PATTERN = re.compile(r"^ckpt-e\d+-b\d+-s\d+\.keras$")
_FORMAT = 1


# --------------------------------------------------------------------------- model state
def seed_generator_states(model: keras.Model) -> list[keras.Variable]:
    """The dropout RNG states (``SeedGenerator`` variables) of ``model``, in a fixed order.

    ``save_weights`` does not include them, so without them a resumed run with
    dropout would draw different masks from an uninterrupted one.
    """
    return [v for v in model.variables if v.name == "seed_generator_state"]


def estimate_checkpoint_bytes(model: keras.Model) -> int:
    """Bytes of one checkpoint: weights plus Adam's two slots per trainable weight."""
    weights = sum(int(np.prod(v.shape)) * np.dtype(v.dtype).itemsize for v in model.weights)
    trainable = sum(int(np.prod(v.shape)) * np.dtype(v.dtype).itemsize for v in model.trainable_weights)
    return weights + 2 * trainable + 256 * 1024  # + HDF5 structure


def all_finite(values) -> bool:
    return all(np.isfinite(variable_value(v)).all() for v in values)


# --------------------------------------------------------------------------- records
@dataclasses.dataclass
class CheckpointRecord:
    """One committed checkpoint: where training stood and which file holds the state.

    ``epoch`` epochs are complete; ``batch`` batches of the next one are done
    too (0: the checkpoint is at an epoch boundary). ``step`` counts optimizer
    updates since the start (``optimizer.iterations``).
    """

    epoch: int
    batch: int
    step: int
    weights: str
    sha256: str
    seed_states: list[list[int]]
    metric_states: list[float] | None = None
    history: dict[str, list[float]] = dataclasses.field(default_factory=dict)
    saved_at: str = ""

    @property
    def at_epoch_end(self) -> bool:
        return self.batch == 0

    def describe(self) -> str:
        if self.at_epoch_end:
            return f"the end of epoch {self.epoch} (step {self.step})"
        return f"epoch {self.epoch + 1}, batch {self.batch} (step {self.step})"

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> CheckpointRecord:
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in known})


class CheckpointError(OSError):
    """A checkpoint could not be written or read; the message says what is still intact."""


def read_records(folder: str | os.PathLike) -> list[CheckpointRecord]:
    """The committed records of a checkpoint folder, newest first (empty if none)."""
    file = Path(folder) / RECORD_FILE
    if not file.exists():
        return []
    try:
        values = json.loads(file.read_text(encoding="utf-8"))
        return [CheckpointRecord.from_dict(r) for r in values["records"]]
    except (ValueError, KeyError, TypeError) as e:  # cannot happen with atomic writes; say so clearly
        raise CheckpointError(f"{file} is not a checkpoint record ({e}); delete {folder} to start over.") from None


# --------------------------------------------------------------------------- the callback
class SafeBackupAndRestore(keras.callbacks.BackupAndRestore):
    """``BackupAndRestore`` with atomic commits, RNG and mid-epoch state, and a NaN refusal.

    Args:
        backup_dir: folder for this run's checkpoints only.
        save_freq: ``"epoch"``, or an integer: also commit every that many
            batches (a kill then loses at most that many steps).
        keep: committed checkpoints to keep (newest first); if the newest cannot
            be read (its file is missing or its SHA-256 differs), the next one
            is used.
        steps_per_epoch: batches per epoch; needed to tell a mid-epoch position
            from a finished epoch in :meth:`save_now`.
        on_commit: called with each new :class:`CheckpointRecord` after it is
            committed.

    Restoring happens in ``on_train_begin`` (as in Keras: weights, optimizer
    state, epoch counter via ``model._initial_epoch``), or earlier by calling
    :meth:`restore` yourself; a mid-epoch record also needs the data position,
    which :func:`seq2seq_keras.training.train` takes care of.
    """

    def __init__(
        self,
        backup_dir: str | os.PathLike,
        save_freq: str | int = "epoch",
        *,
        keep: int = 2,
        steps_per_epoch: int | None = None,
        on_commit: Callable[[CheckpointRecord], None] | None = None,
    ):
        super().__init__(os.fspath(backup_dir), save_freq=save_freq, double_checkpoint=False, delete_checkpoint=False)
        if keep < 1:
            raise ValueError(f"keep={keep}: keep at least one checkpoint.")
        self.folder = Path(backup_dir)
        self.keep = int(keep)
        self.steps_per_epoch = steps_per_epoch
        self.on_commit = on_commit
        self.history: dict[str, list[float]] = {}
        self.restored: CheckpointRecord | None = None
        self._restore_done = False
        self._resume_pending: CheckpointRecord | None = None
        self._epoch = 0
        self._epoch_start_step = 0
        self._in_epoch = False
        self._pending_epoch_end: tuple[int, dict] | None = None

    # ------------------------------------------------------------------ reading
    def records(self) -> list[CheckpointRecord]:
        return read_records(self.folder)

    def latest(self) -> CheckpointRecord | None:
        records = self.records()
        return records[0] if records else None

    def restore(self, model: keras.Model | None = None) -> CheckpointRecord | None:
        """Load the newest readable checkpoint into ``model``; ``None`` if there is none.

        Raises :class:`CheckpointError` if records exist but none can be read.
        """
        model = model if model is not None else self.model
        self._restore_done = True
        records = self.records()
        problems = []
        for record in records:
            path = self.folder / record.weights
            if not path.is_file():
                problems.append(f"{path.name}: missing")
                continue
            if file_sha256(path) != record.sha256:
                problems.append(f"{path.name}: SHA-256 differs from the record")
                continue
            if model.optimizer is not None and not model.optimizer.built:
                model.optimizer.build(model.trainable_variables)
            try:
                model.load_weights(path)
            except (OSError, zipfile.BadZipFile, ValueError) as e:
                problems.append(f"{path.name}: {e}")
                continue
            states = seed_generator_states(model)
            if len(states) != len(record.seed_states):
                raise CheckpointError(
                    f"{path} holds {len(record.seed_states)} dropout RNG states but the model has "
                    f"{len(states)}: the checkpoint is from another architecture."
                )
            for variable, value in zip(states, record.seed_states):
                variable.assign(np.asarray(value, dtype=variable.dtype))
            if problems:
                warnings.warn(
                    f"Skipped unreadable checkpoints ({'; '.join(problems)}); restored {record.describe()}.",
                    stacklevel=2,
                )
            model._initial_epoch = record.epoch  # the Keras BackupAndRestore mechanism
            self.history = {k: list(v) for k, v in record.history.items()}
            self.restored = record
            self._resume_pending = record if record.batch else None
            self._epoch, self._epoch_start_step = record.epoch, record.step - record.batch
            return record
        if records:
            raise CheckpointError(
                f"No readable checkpoint in {self.folder} ({'; '.join(problems)}). "
                "Start over with --restart (or delete the folder)."
            )
        return None

    # ------------------------------------------------------------------ Keras hooks
    def on_train_begin(self, logs=None):
        if not self._restore_done:
            self.restore()

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch
        step = optimizer_step(self.model)
        resume = self._resume_pending
        if resume is not None and epoch == resume.epoch:
            # Continue a mid-epoch checkpoint: the epoch started `batch` steps ago and its
            # running loss/accuracy totals continue (Keras has just reset them).
            self._epoch_start_step = step - resume.batch
            if resume.metric_states is not None:
                for variable, value in zip(self.model.metrics_variables, resume.metric_states):
                    variable.assign(np.asarray(value, dtype=variable.dtype))
        else:
            self._epoch_start_step = step
        self._resume_pending = None
        self._in_epoch = True

    def on_epoch_end(self, epoch, logs=None):
        logs = dict(logs or {})
        self._in_epoch = False
        self._pending_epoch_end = (epoch, logs)
        self._commit_epoch_end(epoch, logs)
        self._pending_epoch_end = None

    def on_train_batch_end(self, batch, logs=None):
        if self._should_save_on_batch(batch):
            loss = (logs or {}).get("loss")
            if loss is not None and not math.isfinite(float(loss)):
                return  # the non-finite-loss guard stops training; never save this state
            position = self._batch_in_epoch()
            if self.steps_per_epoch is None or position < self.steps_per_epoch:  # else on_epoch_end commits
                self._commit(self._epoch, position)

    def on_train_end(self, logs=None):
        pass  # keep the checkpoint: the caller deletes it once the final model is safely written

    def _save_model(self):  # the Keras entry point; route it through the atomic commit
        self._commit(self._epoch, self._batch_in_epoch())

    # ------------------------------------------------------------------ writing
    def _batch_in_epoch(self) -> int:
        return optimizer_step(self.model) - self._epoch_start_step

    def _commit_epoch_end(self, epoch: int, logs: dict) -> CheckpointRecord | None:
        loss = logs.get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            return None
        history = {k: list(v) for k, v in self.history.items()}
        for key, value in logs.items():
            history.setdefault(key, []).append(float(value))
        record = self._commit(epoch + 1, 0, history=history)
        if record is not None:
            self.history = history
        return record

    def save_now(self) -> CheckpointRecord | None:
        """Commit the current position, e.g. after ``KeyboardInterrupt`` stopped ``fit``.

        An epoch whose end-of-epoch commit was cut short is committed as such; a
        position inside an epoch (``0 < batch < steps_per_epoch``) is committed
        mid-epoch; otherwise (nothing new since the last commit, or an
        interruption during validation) nothing is written. Returns the newest
        committed record.
        """
        if self.model is None or self.model.optimizer is None:
            return self.latest()
        if self._pending_epoch_end is not None:
            epoch, logs = self._pending_epoch_end
            self._pending_epoch_end = None
            self._commit_epoch_end(epoch, logs)
            return self.latest()
        batch = self._batch_in_epoch()
        if self._in_epoch and batch > 0 and (self.steps_per_epoch is None or batch < self.steps_per_epoch):
            self._commit(self._epoch, batch)
        return self.latest()

    def _commit(self, epoch: int, batch: int, history: dict | None = None) -> CheckpointRecord | None:
        """Write the model's state as a new record; ``None`` (nothing written) if it is not finite."""
        model = self.model
        step = optimizer_step(model)
        previous = self.records()
        if previous and (previous[0].epoch, previous[0].batch, previous[0].step) == (epoch, batch, step):
            return previous[0]
        if not all_finite(model.weights):
            return None  # never write a poisoned state over a good one
        self.folder.mkdir(parents=True, exist_ok=True)
        name = f"ckpt-e{epoch:04d}-b{batch:06d}-s{step:08d}.keras"
        path = self.folder / name
        try:
            atomic_save_model(model, path)
            record = CheckpointRecord(
                epoch=epoch,
                batch=batch,
                step=step,
                weights=name,
                sha256=file_sha256(path),
                seed_states=[variable_value(v).tolist() for v in seed_generator_states(model)],
                metric_states=None if batch == 0 else [float(variable_value(v)) for v in model.metrics_variables],
                history={k: list(v) for k, v in (self.history if history is None else history).items()},
                saved_at=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            )
            records = [record] + [r for r in previous if r.weights != name][: self.keep - 1]
            atomic_write_text(
                self.folder / RECORD_FILE,
                json.dumps({"format": _FORMAT, "records": [r.to_dict() for r in records]}, indent=1),
            )
        except OSError as e:
            last = previous[0].describe() if previous else "none yet"
            raise CheckpointError(
                f"Could not write a checkpoint to {self.folder} ({e.strerror or e}). The previous checkpoint "
                f"({last}) is intact. Free some space (or fix the folder) and run the same command to resume."
            ) from e
        self._sweep({r.weights for r in records})
        if self.on_commit is not None:
            self.on_commit(record)
        return record

    def _sweep(self, referenced: set[str]) -> None:
        """Remove weights files no record names and temporaries of interrupted writes."""
        remove_temporaries(self.folder)
        for entry in self.folder.iterdir():
            if _WEIGHTS_PATTERN.match(entry.name) and entry.name not in referenced:
                entry.unlink(missing_ok=True)

    def delete(self) -> None:
        """Remove the checkpoint folder (after the final model is safely written)."""
        shutil.rmtree(self.folder, ignore_errors=True)
