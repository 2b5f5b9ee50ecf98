"""A run folder: what :func:`~seq2seq_keras.training.train` writes, and how it is read back.

A finished run folder holds ``model.keras`` (weights, optimizer state and both
text processors: it translates raw strings on its own), ``config.json`` (the
:class:`~seq2seq_keras.training.TrainConfig`) and ``history.json`` (per-epoch
metrics). While it trains it also holds ``vocabulary.json`` (both text
processors, adapted once), ``state.json`` (machine-readable progress, see
:func:`read_state`) and ``checkpoint/`` (:mod:`seq2seq_keras.training.checkpointing`).

This module holds the paths, ``state.json``, the checks that a folder can be
written and resumed (:class:`RunFolder`), and the readers: :func:`load_model`,
:func:`load_checkpoint`, :func:`load_vocabulary`. Exporting, evaluating and the
command line load runs through it without importing the training loop.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import keras

from ..atomic import atomic_save_model, atomic_write_text, remove_temporaries
from ..variables import optimizer_step
from .config import TrainConfig

MODEL_FILE = "model.keras"
CONFIG_FILE = "config.json"
HISTORY_FILE = "history.json"
VOCABULARY_FILE = "vocabulary.json"
STATE_FILE = "state.json"
CHECKPOINT_DIR = "checkpoint"
_RUN_FILES = (MODEL_FILE, CONFIG_FILE, HISTORY_FILE, VOCABULARY_FILE, STATE_FILE)
_STATE_FORMAT = 1


# --------------------------------------------------------------------------- errors
class TrainingError(Exception):
    """A training run could not start or go on; the message says why and what to do."""


class OutputFolderError(TrainingError):
    """The output folder cannot be written, lacks space, or holds something else."""


class RunMismatchError(TrainingError):
    """The output folder holds a run with another configuration, vocabulary or data."""


class TrainingDataError(TrainingError, ValueError):
    """The corpus leaves nothing to train on (e.g. ``limit`` too small for the split)."""


# --------------------------------------------------------------------------- reading a run
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
        raise FileNotFoundError(f"No trained model at {file}. Train one first: seq2seq-keras train --out {path}")
    from ..model import seq2seq as model  # noqa: F401  (Keras needs Seq2Seq and its layers registered; the package itself is lazy)

    return keras.models.load_model(file)


def load_checkpoint(run_dir: str | os.PathLike):
    """``(model, record)``: the newest readable checkpoint of an unfinished run folder.

    The model is rebuilt from ``config.json`` and ``vocabulary.json`` and gets the
    checkpoint's weights and optimizer state; ``record`` says where training
    stood (:class:`~seq2seq_keras.training.checkpointing.CheckpointRecord`).
    """
    from .checkpointing import SafeBackupAndRestore, read_records
    from .config import build_model

    run = Path(run_dir)
    folder = run / CHECKPOINT_DIR
    if not read_records(folder):
        raise FileNotFoundError(
            f"No checkpoint in {folder}: the run has none yet, or it finished "
            f"(then load {run / MODEL_FILE} with load_model)."
        )
    config = TrainConfig.from_json((run / CONFIG_FILE).read_text(encoding="utf-8"))
    source_text, target_text = load_vocabulary(run / VOCABULARY_FILE)
    model = build_model(config, source_text, target_text)
    record = SafeBackupAndRestore(folder).restore(model)
    model._initial_epoch = None
    return model, record


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


def write_state(out: Path, state: dict) -> None:
    state["updated"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    atomic_write_text(out / STATE_FILE, json.dumps(state, indent=1, ensure_ascii=False))


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
    from .. import text  # noqa: F401  (registers TextProcessor)

    values = json.loads(Path(path).read_text(encoding="utf-8"))
    return (
        keras.saving.deserialize_keras_object(values["source"]),
        keras.saving.deserialize_keras_object(values["target"]),
    )


def save_run(model, config: TrainConfig, history: dict, out_dir: str | os.PathLike) -> None:
    """Write ``model.keras``, ``config.json`` and ``history.json`` atomically into ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    atomic_save_model(model, out / MODEL_FILE)
    atomic_write_text(out / CONFIG_FILE, config.to_json())
    clean = {k: [float(v) for v in values] for k, values in history.items()}
    atomic_write_text(out / HISTORY_FILE, json.dumps(clean, indent=2))


def history_callback(model, values: dict) -> keras.callbacks.History:
    """A Keras ``History`` holding ``values`` (what ``train`` returns for a resumed or finished run)."""
    history = keras.callbacks.History()
    history.set_model(model)
    history.history = {k: list(v) for k, v in values.items()}
    history.epoch = list(range(len(next(iter(values.values()), []))))
    return history


# --------------------------------------------------------------------------- checks
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
        raise OutputFolderError(
            f"Cannot write to the output folder {out} ({e.strerror or e}); choose another --out."
        ) from None
    free = shutil.disk_usage(out).free
    if required_bytes > free:
        raise OutputFolderError(
            f"Not enough disk space in {out}: {free / 2**20:.1f} MiB free, but checkpoints and the final model "
            f"need about {required_bytes / 2**20:.1f} MiB. Free some space or choose another --out."
        )
    return out


def required_disk_bytes(model: keras.Model, keep: int = 2) -> int:
    """Peak disk use of a run: ``keep`` checkpoints + one being written + the final model."""
    from .checkpointing import estimate_checkpoint_bytes

    return (keep + 2) * estimate_checkpoint_bytes(model)


def discard_run(run_dir: str | os.PathLike) -> None:
    """Delete a run folder's training files (model, config, vocabulary, state, checkpoints); keep anything else."""
    out = Path(run_dir)
    shutil.rmtree(out / CHECKPOINT_DIR, ignore_errors=True)
    for name in _RUN_FILES:
        (out / name).unlink(missing_ok=True)
    remove_temporaries(out)


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


def _flag(name: str, value) -> str:
    if isinstance(value, bool):
        return f"--{name.replace('_', '-')}" if value else f"no --{name.replace('_', '-')}"
    return f"--{name.replace('_', '-')} {'none' if value is None else value}"


def check_resumable(out: Path, config: TrainConfig, state: dict) -> None:
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


# --------------------------------------------------------------------------- the folder of a run in progress
class StateFile(keras.callbacks.Callback):
    """Keeps ``state.json`` current: every commit, and ``last_step_seen`` about once a second."""

    def __init__(self, out: Path, state: dict, interval: float = 1.0):
        super().__init__()
        self.out, self.state, self.interval = out, state, interval
        self._last_write = time.monotonic()

    def write(self) -> None:
        write_state(self.out, self.state)
        self._last_write = time.monotonic()

    def commit(self, record) -> None:
        """``on_commit`` of :class:`~seq2seq_keras.training.checkpointing.SafeBackupAndRestore`."""
        self.state.update(
            checkpoint={
                "epoch": record.epoch,
                "batch": record.batch,
                "step": record.step,
                "file": f"{CHECKPOINT_DIR}/{record.weights}",
            },
            epochs_completed=record.epoch,
            history=record.history,
            last_step_seen=max(record.step, self.state.get("last_step_seen") or 0),
        )
        self.write()

    def on_train_batch_end(self, batch, logs=None):
        if time.monotonic() - self._last_write >= self.interval:
            self.state["last_step_seen"] = optimizer_step(self.model)
            self.write()


class RunFolder:
    """The output folder of one :func:`~seq2seq_keras.training.train` call.

    :meth:`open` checks it (writable; a resumable run with the same settings and
    vocabulary, or nothing of a run); :meth:`check_data` then checks the data,
    :meth:`begin` writes a new run's files (or takes over a resumed run's
    state), :meth:`update` keeps ``state.json`` current and :meth:`finish`
    saves the model.
    """

    def __init__(self, path: Path, state: dict | None):
        self.path = path
        self.state = state
        self.resuming = state is not None
        self.state_file: StateFile | None = None

    @classmethod
    def open(cls, out_dir: str | os.PathLike, config: TrainConfig, *, restart: bool = False) -> RunFolder:
        out = check_output_folder(out_dir)
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
            check_resumable(out, config, state)
        return cls(out, state)

    def check_data(self, fingerprint: dict) -> None:
        if self.state is not None and self.state.get("data") != fingerprint:
            raise RunMismatchError(
                f"The training data changed since {self.path} was started (pairs "
                f"{self.state.get('data', {}).get('pairs')} then, {fingerprint['pairs']} now; contents differ): its "
                "vocabulary and data order no longer apply. Use another --out, or add --restart to start over on "
                "the new data."
            )

    @property
    def finished(self) -> bool:
        return bool(self.state) and self.state.get("status") == "finished" and (self.path / MODEL_FILE).exists()

    def load_finished(self):
        """``(model, history dict)`` of a finished run (``train`` has nothing to do)."""
        done = self.state.get("epochs_completed")
        print(
            f"{self.path} already has {done} of {self.state.get('epochs', done)} epochs; nothing to train "
            "(add --restart to train it again from the start, or pick a new --out).",
            flush=True,
        )
        return load_model(self.path), json.loads((self.path / HISTORY_FILE).read_text(encoding="utf-8"))

    def load_vocabulary(self):
        return load_vocabulary(self.path / VOCABULARY_FILE)

    def begin(self, model, config: TrainConfig, source_text, target_text, fingerprint: dict) -> StateFile:
        """Check the disk space for ``model``; for a new run write its config, vocabulary and state."""
        check_output_folder(self.path, required_disk_bytes(model))
        if self.state is None:
            atomic_write_text(self.path / CONFIG_FILE, config.to_json())
            vocabulary_sha = save_vocabulary(source_text, target_text, self.path / VOCABULARY_FILE)
            self.state = {
                "format": _STATE_FORMAT,
                "status": "running",
                "epochs": config.epochs,
                "epochs_completed": 0,
                "steps_per_epoch": None,
                "checkpoint": None,
                "last_step_seen": 0,
                "history": {},
                "resumes": [],
                "message": "",
                "data": fingerprint,
                "vocabulary_sha256": vocabulary_sha,
            }
            write_state(self.path, self.state)
        self.state_file = StateFile(self.path, self.state)
        return self.state_file

    def check_steps_per_epoch(self, steps_per_epoch: int) -> None:
        if self.state.get("steps_per_epoch") not in (None, steps_per_epoch):
            raise RunMismatchError(
                f"{self.path} was trained with {self.state['steps_per_epoch']} batches per epoch, the data now give "
                f"{steps_per_epoch}. Use another --out, or add --restart to start over."
            )

    def record_resume(self, record, epoch: int, batch: int) -> int:
        """Note a resume from ``record`` (None: no checkpoint yet) in the state and say so; returns its step."""
        step = record.step if record is not None else 0
        lost = max(0, int(self.state.get("last_step_seen") or 0) - step)
        self.state["resumes"].append(
            {
                "from_epoch": epoch,
                "from_batch": batch,
                "from_step": step,
                "steps_lost": lost,
                "at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            }
        )
        where = "the start (no checkpoint had been written)" if record is None else record.describe()
        print(f"Resuming {self.path} from {where}; at least {lost} steps done after it are redone.", flush=True)
        return step

    def update(self, **values) -> None:
        """Update ``state.json`` with ``values`` and write it."""
        self.state.update(values)
        self.state_file.write()

    def finish(self, model, config: TrainConfig, history: dict) -> None:
        save_run(model, config, history, self.path)
        self.update(
            status="finished",
            epochs_completed=config.epochs,
            history=history,
            checkpoint=None,
            last_step_seen=optimizer_step(model),
            message="",
        )
