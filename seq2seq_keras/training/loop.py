"""A whole training run: corpus -> split -> vocabularies -> model -> ``model.fit`` -> saved run folder.

Used by ``seq2seq-keras train`` and ``make demo``; from Python::

    from seq2seq_keras.training import TrainConfig, train
    model, history = train(TrainConfig(data="builtin-ko-en", epochs=5), out_dir="runs/demo")

:func:`train` reads as its steps: *prepare* the data, *build* the text processors
and the model, *resume* from the run folder's checkpoint, *fit*, *save*. The run
folder (its files, ``state.json``, the resume checks, :func:`load_model`) is
:mod:`seq2seq_keras.training.run_folder`; the settings are :class:`~seq2seq_keras.training.TrainConfig`
(:mod:`seq2seq_keras.training.config`).

A finished run folder holds ``model.keras`` (weights, optimizer state and both
text processors: it translates raw strings on its own), ``config.json`` (the
:class:`TrainConfig`) and ``history.json`` (per-epoch metrics).

**Interrupted runs resume.** While it trains, the folder also holds
``vocabulary.json`` (both text processors, adapted once, never re-adapted),
``state.json`` (machine-readable progress) and ``checkpoint/`` (weights,
optimizer state, dropout RNG state and the position in the data, written
atomically by :class:`~seq2seq_keras.training.checkpointing.SafeBackupAndRestore` at
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
* the dropout RNG state (not part of Keras weights files) is restored too;
* with ``config.tensorboard``, an epoch's summaries are written and flushed before its
  checkpoint commits, and a resumed run first removes what was written after the
  checkpoint (:func:`seq2seq_keras.evaluation.attention_snapshots.discard_summaries_after`): every committed
  epoch is in TensorBoard exactly once. (A Ctrl-C during validation or while the summaries
  are written therefore redoes that epoch.)

A folder whose ``config.json``, ``vocabulary.json`` or training data no longer
match the request is refused (:class:`RunMismatchError`); ``restart=True``
discards its training state first.
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Iterable

import keras
import numpy as np

from ..progress import PeriodicLines, live_display
from ..variables import optimizer_step
from .checkpointing import CheckpointError, SafeBackupAndRestore
from .config import TrainConfig, build_model
from .run_folder import (
    CHECKPOINT_DIR,
    RunFolder,
    TrainingDataError,
    TrainingError,
    data_fingerprint,
    history_callback,
)

#: With ``jit_compile``, batches are padded to full rows and lengths to a multiple of
#: this many tokens (``make_dataset(pad_to_multiple=...)``), so XLA compiles a few
#: dozen shapes instead of one per bucketed batch shape.
XLA_PAD_MULTIPLE = 4


class NonFiniteLossError(TrainingError):
    """The training loss became NaN or infinite; the last good checkpoint is kept."""


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C (or SIGTERM) stopped ``fit``; the resumable state was saved first."""


class InterruptGuard(keras.callbacks.Callback):
    """Stops ``fit`` at the next batch if a signal was received whose ``KeyboardInterrupt`` never arrived.

    Python raises ``KeyboardInterrupt`` wherever the main thread happens to be when
    the signal handler runs; inside an object finaliser or a library's broad
    ``except`` it is swallowed (printed as "Exception ignored", or not at all), and a
    Ctrl-C sent during start-up then let a resumed run train to the end and exit 0.
    The command line's handler records each signal in ``received`` as well as raising;
    this callback raises again, before the first batch and before every batch, while
    ``received`` is not empty, so ``train()`` saves and stops as for any Ctrl-C.
    """

    def __init__(self, received: list):
        super().__init__()
        self.received = received

    def _check(self) -> None:
        if self.received:
            raise KeyboardInterrupt

    def on_train_begin(self, logs=None):
        self._check()

    def on_train_batch_begin(self, batch, logs=None):
        self._check()


# --------------------------------------------------------------------------- building blocks
def build_text_processors(config: TrainConfig, train_pairs):
    """Adapt source and target :class:`TextProcessor` layers on the training split."""
    from ..text import TextProcessor

    common = dict(subword=config.subword, max_tokens=config.max_vocabulary, min_frequency=config.min_frequency)
    source = TextProcessor.for_language(train_pairs.source_lang, name="source_text", **common)
    target = TextProcessor.for_language(train_pairs.target_lang, add_start_end=True, name="target_text", **common)
    source.adapt(train_pairs.source)
    target.adapt(train_pairs.target)
    return source, target


def prepare_data(config: TrainConfig):
    """Load and split the corpus: returns (train, validation, test) :class:`SentencePairs`."""
    from ..data.corpora import load_corpus, split_pairs

    pairs = load_corpus(config.data, limit=config.limit, seed=config.seed, source=config.direction)
    return split_pairs(pairs)


class PeriodicProgress(keras.callbacks.Callback):
    """Plain progress lines inside each epoch, for output that is not a terminal (with ``fit(verbose=2)``,
    which prints one line at each epoch's end).

    A line ``epoch <e>/<epochs>: <b>/<steps> batches (<p>%), <s> s, loss ..., accuracy ...`` (the running
    metrics of the epoch) at each tenth of the epoch, at most one per
    :data:`~seq2seq_keras.progress.LINE_MIN_SECONDS` (:class:`~seq2seq_keras.progress.PeriodicLines`);
    ``stream`` defaults to ``sys.stdout``, where Keras writes.
    """

    def __init__(self, stream=None, **line_options):
        super().__init__()
        self.stream, self.line_options = stream, line_options
        self._lines: PeriodicLines | None = None

    def on_epoch_begin(self, epoch, logs=None):
        params = self.params or {}
        self._lines = PeriodicLines(
            params.get("steps"),
            f"epoch {epoch + 1}/{params.get('epochs')}",
            "batches",
            stream=sys.stdout if self.stream is None else self.stream,
            **self.line_options,
        )

    def on_train_batch_end(self, batch, logs=None):
        if self._lines is not None:
            self._lines.update(batch + 1, lambda: ", ".join(f"{k} {float(v):.4f}" for k, v in (logs or {}).items()))


def fit_verbosity(verbose: int | str) -> tuple[int | str, bool]:
    """``(verbose for fit, whether to add PeriodicProgress)``: ``"auto"`` is Keras' live bar (1) on a terminal
    or in a notebook (:func:`~seq2seq_keras.progress.live_display` of ``sys.stdout``), else one line per
    epoch (2) plus the periodic lines; any other value is fit's own."""
    if verbose != "auto":
        return verbose, False
    return (1, False) if live_display(sys.stdout) else (2, True)


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
            step = optimizer_step(self.model)
            raise NonFiniteLossError(
                f"the training loss became {loss} in epoch {self.epoch + 1} (step {step})"
            ) from None


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
        callbacks: extra Keras callbacks (they run after the NaN guard, the TensorBoard callbacks of
            ``config.tensorboard`` and the checkpoint).
        verbose: ``"auto"``: Keras' live progress bar on a terminal or in a notebook; elsewhere (a file,
            a pipe, a CI log) one line per epoch and plain lines within it (:func:`fit_verbosity`,
            :class:`PeriodicProgress`), no escape codes. 0, 1 or 2: passed to ``fit`` as given.
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
        FileNotFoundError: ``config.data`` names a corpus that is not on this machine, or no file
            (:func:`~seq2seq_keras.data.corpora.load_corpus`).
        CorpusFormatError: a line of the corpus file is malformed.
        TrainingDataError: the corpus leaves no training pairs after the split.
        NonFiniteLossError: the loss became NaN/inf; the last good checkpoint is kept.
        TrainingInterrupted: Ctrl-C; the resumable state was saved first.
        CheckpointError: a checkpoint could not be written (e.g. disk full); the previous one is intact.
    """
    if checkpoint_every is not None and checkpoint_every < 1:
        raise ValueError(f"checkpoint_every={checkpoint_every}: use a positive number of steps, or None.")
    run = None if out_dir is None else RunFolder.open(out_dir, config, restart=restart)
    train_pairs, val_pairs = _prepare(config, run)
    if run is not None and run.finished:
        model, history = run.load_finished()
        return model, history_callback(model, history)
    source_text, target_text = (
        run.load_vocabulary() if run is not None and run.resuming else build_text_processors(config, train_pairs)
    )
    options = training_options(config, len(train_pairs))
    if verbose != 0:
        print(options.describe(), flush=True)
    model = build_model(config, source_text, target_text, options)
    if run is not None:
        run.begin(model, config, source_text, target_text, data_fingerprint(train_pairs, val_pairs))
    fit = _Fit(model, config, options, run, train_pairs, val_pairs, callbacks=callbacks, verbose=verbose)
    fit.resume(checkpoint_every)
    history = fit.run()
    if run is not None:
        run.finish(model, config, history)
        fit.checkpoint.delete()
    return model, history_callback(model, history)


def training_options(config: TrainConfig, train_pairs: int, machine=None):
    """``config``'s ``precision`` and ``jit_compile`` resolved for this machine (or ``machine``).

    The run's length, for the XLA rule, is ``epochs * ceil(train_pairs / batch_size)``
    steps (length bucketing adds a few partial batches; with ``batch_tokens`` it is an
    estimate): the whole run, so a resumed run resolves as it did at its start. See :mod:`seq2seq_keras.training.hardware`.
    """
    from .hardware import detect_machine, resolve_options

    planned_steps = config.epochs * math.ceil(train_pairs / config.batch_size)
    return resolve_options(config.precision, config.jit_compile, machine or detect_machine(), planned_steps)


def _prepare(config: TrainConfig, run: RunFolder | None):
    """The training and validation pairs, checked against a resumed run's."""
    train_pairs, val_pairs, _ = prepare_data(config)
    if len(train_pairs) == 0:
        raise TrainingDataError(
            f"The corpus {config.data!r} leaves no training pairs after the split into training, validation "
            "and test pairs: raise --limit, or use a larger corpus."
        )
    if run is not None:
        run.check_data(data_fingerprint(train_pairs, val_pairs))
    return train_pairs, val_pairs


class _Fit:
    """The ``fit`` calls of one :func:`train`: pipelines, callbacks, checkpoint and resume position.

    One fresh pipeline per ``fit`` call: Keras makes a varying number of iterators per
    fit (one per epoch, plus one at each epoch end when the cardinality is known), so
    the shuffle position is set explicitly before each call; inside a call the data
    come from a single ``repeat()`` iterator: one shuffle order per epoch, in sequence.
    """

    def __init__(
        self,
        model,
        config: TrainConfig,
        options,
        run: RunFolder | None,
        train_pairs,
        val_pairs,
        *,
        callbacks: Iterable[keras.callbacks.Callback],
        verbose,
    ):
        from ..data.batching import make_dataset

        self.model, self.config, self.folder, self.train_pairs = model, config, run, train_pairs
        self.options = options
        self.source_text, self.target_text = model.source_text, model.target_text
        self.extra_callbacks = list(callbacks)
        self.verbose, periodic_lines = fit_verbosity(verbose)
        self.dataset_args = dict(
            batch_size=config.batch_size,
            batch_tokens=config.batch_tokens,
            max_length=config.max_length,
            seed=config.seed,
            # XLA compiles once per batch shape: keep the shapes few.
            pad_to_multiple=XLA_PAD_MULTIPLE if options.jit_compile else None,
        )
        self.val_ds = (
            make_dataset(val_pairs, self.source_text, self.target_text, shuffle=False, **self.dataset_args)
            if len(val_pairs)
            else None
        )
        self.checkpoint: SafeBackupAndRestore | None = None
        self.epoch = self.batch = 0
        self.callbacks: list[keras.callbacks.Callback] = [NonFiniteLossGuard()]
        if periodic_lines:
            self.callbacks.append(PeriodicProgress())

    def epoch_data(self, start_epoch: int):
        """A fresh training pipeline whose next iterator gives epoch ``start_epoch``'s order."""
        from ..data.batching import make_dataset

        dataset = make_dataset(self.train_pairs, self.source_text, self.target_text, shuffle=True, **self.dataset_args)
        batches = batches_per_epoch(dataset)
        advance_epochs(dataset, start_epoch)
        return dataset, batches

    def resume(self, checkpoint_every: int | None) -> None:
        """Restore the run folder's newest checkpoint (if any) and set up the callbacks."""
        run, record = self.folder, None
        if run is not None:
            self.checkpoint = SafeBackupAndRestore(
                run.path / CHECKPOINT_DIR, save_freq=checkpoint_every or "epoch", on_commit=run.state_file.commit
            )
            self.checkpoint.set_model(self.model)
            record = self.checkpoint.restore(self.model)
            self.model._initial_epoch = None  # train() passes initial_epoch itself
        self.epoch, self.batch = (record.epoch, record.batch) if record is not None else (0, 0)
        self.train_ds, self.steps_per_epoch = self.epoch_data(self.epoch)
        if self.config.tensorboard:
            # Losses (Keras' TensorBoard) and attention snapshots, at steps = absolute epochs. They run before
            # the checkpoint: an epoch's summaries are flushed when the commit of that epoch begins, and a
            # resumed run first drops what was written after its checkpoint (work it redoes), so a kill at any
            # moment leaves every committed epoch's summaries exactly once.
            from ..evaluation.attention_snapshots import discard_summaries_after, tensorboard_callbacks

            if run is not None and run.resuming:
                discard_summaries_after(self.config.tensorboard, self.epoch, record.step if record else 0)
            self.callbacks += tensorboard_callbacks(self.config.tensorboard, self.model)
        if run is not None:
            run.check_steps_per_epoch(self.steps_per_epoch)
            self.checkpoint.steps_per_epoch = self.steps_per_epoch
            step = run.record_resume(record, self.epoch, self.batch) if run.resuming else 0
            run.update(
                status="running",
                steps_per_epoch=self.steps_per_epoch,
                message="",
                last_step_seen=step,
                options={"precision": self.options.precision, "jit_compile": self.options.jit_compile},
            )
            self.callbacks += [self.checkpoint, run.state_file]
        self.callbacks += self.extra_callbacks

    def run(self) -> dict:
        """Train up to ``config.epochs``; returns the history of every epoch of the run."""
        model, epochs = self.model, self.config.epochs
        fit_args = dict(validation_data=self.val_ds, callbacks=self.callbacks, verbose=self.verbose, shuffle=False)
        try:
            if self.batch:  # finish the epoch a mid-epoch checkpoint stopped in, skipping the batches it saw
                model.fit(
                    self.train_ds.skip(self.batch),
                    steps_per_epoch=self.steps_per_epoch - self.batch,
                    initial_epoch=self.epoch,
                    epochs=self.epoch + 1,
                    **fit_args,
                )
                self.epoch += 1
                model._initial_epoch = None
                del self.train_ds
                self.train_ds, _ = self.epoch_data(self.epoch) if self.epoch < epochs else (None, None)
            if self.epoch < epochs:
                model.fit(
                    self.train_ds.repeat(),
                    steps_per_epoch=self.steps_per_epoch,
                    initial_epoch=self.epoch,
                    epochs=epochs,
                    **fit_args,
                )
        except NonFiniteLossError as e:
            raise self._stopped_by_non_finite_loss(e) from None
        except KeyboardInterrupt:
            raise self._interrupted() from None
        except CheckpointError as e:
            if self.folder is not None:
                self.folder.state.update(status="failed", message=str(e))
                try:
                    self.folder.state_file.write()
                except OSError:
                    pass
            raise
        if self.checkpoint is not None:
            return self.checkpoint.history
        # no fit call at all when epochs=0
        return model.history.history if getattr(model, "history", None) is not None else {}

    def _stopped_by_non_finite_loss(self, error: NonFiniteLossError) -> NonFiniteLossError:
        last = self.checkpoint.latest() if self.checkpoint is not None else None
        if last is not None:
            where = (
                f"The last good checkpoint ({last.describe()}) is kept in {self.folder.path / CHECKPOINT_DIR}; "
                "nothing after it was saved."
            )
        else:
            where = "No checkpoint had been written yet; nothing was saved."
        message = (
            f"Training stopped: {error}. {where} Lower --learning-rate or --clipnorm and start again with "
            "--restart (or another --out)."
        )
        if self.folder is not None:
            self.folder.update(status="stopped_non_finite_loss", message=message)
        return NonFiniteLossError(message)

    def _interrupted(self) -> TrainingInterrupted:
        """Ctrl-C: commit the state reached (a second Ctrl-C keeps the previous commit)."""
        if self.checkpoint is None:
            return TrainingInterrupted("Interrupted; nothing was saved (no --out).")
        try:
            saved = self.checkpoint.save_now()
        except KeyboardInterrupt:  # a second Ctrl-C during the save: the previous commit stands
            saved = self.checkpoint.latest()
        out = self.folder.path
        if saved is None:
            message = f"Interrupted before the first checkpoint; run the same command again to start over in {out}."
        else:
            message = (
                f"Interrupted; the training state at {saved.describe()} is saved in {out}. "
                "Run the same command again to resume."
            )
        steps = max(optimizer_step(self.model), self.folder.state.get("last_step_seen") or 0)
        self.folder.update(status="interrupted", message=message, last_step_seen=steps)
        return TrainingInterrupted(message)
