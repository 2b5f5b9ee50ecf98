"""Watch attention learn: attention heatmaps and alignment quality, epoch by epoch, in TensorBoard.

:class:`AttentionSnapshots` is a Keras callback. At the end of every ``every``
epochs it runs the model on a few fixed sentences (by default ``나는 학생이다``
and two longer built-in sentences with reordering), keeps the attention in
memory (:attr:`AttentionSnapshots.snapshots`, for
:func:`seq2seq_keras.plotting.animate_attention`) and, with a ``log_dir``,
writes TensorBoard summaries under ``<log_dir>/attention``::

    from seq2seq_keras.evaluation.attention_snapshots import AttentionSnapshots
    snapshots = AttentionSnapshots(log_dir="runs/demo/logs")
    model.fit(train_ds, epochs=5, callbacks=[snapshots, keras.callbacks.TensorBoard("runs/demo/logs")])
    # tensorboard --logdir runs/demo/logs      (IMAGES: attention/*, SCALARS: alignment/*)

``seq2seq-keras train --tensorboard DIR`` adds both callbacks (:func:`tensorboard_callbacks`). The
summaries of an epoch are on disk before the run's checkpoint commits that epoch, and a resumed
run first drops what a killed one wrote after its last commit (:func:`discard_summaries_after`),
so every committed epoch has each summary exactly once. Under a distribution strategy only the
process that should write summaries does (one device, ``MirroredStrategy``: the process;
``MultiWorkerMirroredStrategy``: the chief, :func:`writes_summaries`). The idea follows
tensorflow/nmt, which wrote attention images to TensorBoard while training
(``nmt/attention_model.py``, ``_create_attention_images_summary``); here the
images are the package's labelled heatmaps, with Hangul rendered.
"""

from __future__ import annotations

import dataclasses
import io
import os
import shutil
import tempfile
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import keras
import numpy as np

from ..variables import optimizer_step

#: The subfolder of ``log_dir`` the summaries go to (Keras' TensorBoard callback writes ``train``/``validation``).
RUN_NAME = "attention"
#: Every run (subfolder of ``log_dir``) :func:`tensorboard_callbacks` writes.
RUNS = ("train", "validation", RUN_NAME)
#: Keras' TensorBoard callback indexes the summaries whose tag ends so (``evaluation_loss_vs_iterations``, written
#: after each validation) by optimizer step; every other summary here is indexed by Keras' epoch index.
OPTIMIZER_STEP_SUFFIX = "_vs_iterations"
IMAGE_TAG = "attention/sentence_{index}"
AER_TAG = "alignment/aer"
GOLD_MASS_TAG = "alignment/gold_attention_mass"
SECONDS_TAG = "attention_snapshots/seconds"

#: Indices into the built-in corpus' canonical examples (``builtin_ko_en.generate_pairs``) used by default:
#: ``나는 학생이다`` -> ``I am a student`` (one Korean word becomes three English words),
#: ``나는 내일 물을 마실 것이다.`` -> ``I will drink water tomorrow.`` (the English order reverses the Korean),
#: ``나는 학생이고 그는 선생님이다.`` -> ``I am a student and he is a teacher.`` (two clauses).
DEFAULT_EXAMPLES = (8, 13, 14)


@dataclasses.dataclass(frozen=True)
class SnapshotSentence:
    """A sentence to watch: its source, and optionally its reference and gold word alignment.

    ``alignment`` holds ``(source_word, target_word)`` links over
    :func:`~seq2seq_keras.words.word_tokens` of ``source`` and ``reference``.
    """

    source: str
    reference: str | None = None
    alignment: tuple[tuple[int, int], ...] | None = None


def default_sentences(source_language: str = "ko") -> list[SnapshotSentence]:
    """The three default sentences with their gold alignments (English sources for an English -> Korean model)."""
    from ..data.builtin_ko_en import generate_pairs

    pairs = generate_pairs(n=max(DEFAULT_EXAMPLES) + 1)
    chosen = [pairs[i] for i in DEFAULT_EXAMPLES]
    if source_language == "en":
        return [SnapshotSentence(p.target, p.source, tuple(sorted((t, s) for s, t in p.alignment))) for p in chosen]
    return [SnapshotSentence(p.source, p.target, tuple(p.alignment)) for p in chosen]


def _as_sentence(item: Any) -> SnapshotSentence:
    if isinstance(item, SnapshotSentence):
        return item
    if isinstance(item, str):
        return SnapshotSentence(item)
    if hasattr(item, "source") and hasattr(item, "target") and hasattr(item, "alignment"):  # builtin AlignedPair
        return SnapshotSentence(item.source, item.target, tuple(item.alignment))
    if isinstance(item, (tuple, list)) and len(item) in (2, 3) and all(isinstance(x, str) for x in item[:2]):
        return SnapshotSentence(item[0], item[1], None if len(item) == 2 else tuple(tuple(link) for link in item[2]))
    raise TypeError(
        f"Cannot watch {item!r}: give a source string, a (source, reference) or (source, reference, alignment) "
        "tuple, or a builtin_ko_en.AlignedPair."
    )


def _check_not_blank(index: int, sentence: SnapshotSentence) -> None:
    """Refuse a source (or a given reference) without a word: its attention has no row or column to draw."""
    from ..words import word_tokens

    for part in ("source", "reference"):
        text = getattr(sentence, part)
        if text is not None and not word_tokens(text):
            raise ValueError(
                f"sentences[{index}] has a blank {part} ({text!r}): there is no attention to watch on it; "
                f"remove that entry or give it words."
            )


@dataclasses.dataclass
class AttentionSnapshot:
    """The attention on the watched sentences at one moment of training.

    Attributes:
        epoch: Keras' 0-based epoch index after which it was taken (the TensorBoard
            step); ``-1``: before training.
        views: one :class:`~seq2seq_keras.translation.Translation` per sentence whose
            ``attention`` is the matrix drawn, ``[target_words, source_words]``:
            teacher-forced on the reference where the sentence has one (word
            level, ``[END]`` row dropped), else the greedy translation's
            ``[output_tokens, source_tokens]``.
        outputs: the greedy translation of each sentence (what the model says now).
        golds: bool ``[target_words, source_words]`` gold alignment per sentence, or None.
        forced: per sentence, whether its view is teacher-forced on the reference.
        aer, gold_mass: alignment error rate and mean attention mass on gold-linked
            source words over the sentences with a gold alignment (None if none has one).
        seconds: wall time this snapshot took (translation, scoring, images).
    """

    epoch: int
    views: list
    outputs: list[str]
    golds: list[np.ndarray | None]
    forced: list[bool] = dataclasses.field(default_factory=list)
    aer: float | None = None
    gold_mass: float | None = None
    seconds: float = 0.0

    @property
    def label(self) -> str:
        return "before training" if self.epoch < 0 else f"after epoch {self.epoch + 1}"


class AttentionSnapshots(keras.callbacks.Callback):
    """Snapshots of the attention on a few fixed sentences while a :class:`~seq2seq_keras.model.Seq2Seq` trains.

    At the end of every ``every`` epochs (and of the last one), and once before
    training starts from scratch (``before_training``), it

    * translates each sentence greedily (``model.translate``) and, for sentences
      with a reference, computes the teacher-forced attention on the reference
      (:func:`seq2seq_keras.evaluation.alignment.forced_attention`). Teacher forcing is the
      sound choice for scoring: the gold alignment indexes the *reference*'s
      words, and a free translation's words need not be those words (early in
      training it is "i i i i"); it is also what Bahdanau et al. plot, and it
      keeps every frame of a sentence the same shape;
    * keeps an :class:`AttentionSnapshot` in :attr:`snapshots` (in memory: a few
      small matrices per epoch);
    * with ``log_dir``, writes to ``<log_dir>/attention`` (a run next to Keras'
      ``train``/``validation``), at step = Keras' epoch index (0-based, as Keras'
      own TensorBoard callback, so the images line up with ``epoch_loss``; a
      resumed ``fit(initial_epoch=k)`` continues at step ``k``):

      - ``attention/sentence_<i>``: PNG image summary ``[1, height, width, 4]``,
        the :func:`~seq2seq_keras.plotting.plot_attention` heatmap of sentence
        ``i`` (Hangul rendered with NanumGothic; gold links as red squares; the
        title names the epoch and the model's current greedy translation);
      - ``alignment/aer`` and ``alignment/gold_attention_mass``: scalars over the
        sentences with a gold alignment (see :mod:`seq2seq_keras.evaluation.alignment`:
        argmax links vs. gold; AER 0 is perfect; the mass is the mean attention
        weight on gold-linked source words, 1 is perfect);
      - ``attention_snapshots/seconds``: the time the snapshot took.

    The before-training snapshot is kept in memory only (TensorBoard steps are
    Keras' epoch indices; it has none).

    Args:
        log_dir: TensorBoard log folder (the one passed to ``tensorboard --logdir``);
            None keeps the snapshots in memory only, as does a process that should not
            write summaries (a non-chief worker, :func:`writes_summaries`).
        sentences: what to watch: source strings, ``(source, reference)`` or
            ``(source, reference, alignment)`` tuples (``alignment``:
            ``(source_word, target_word)`` links over
            :func:`~seq2seq_keras.words.word_tokens`), or
            ``builtin_ko_en.AlignedPair``. Default: :func:`default_sentences`
            (``나는 학생이다`` and two longer built-in sentences, with gold links).
        every: take a snapshot every this many epochs (and after the last one).
        before_training: also take one in ``on_train_begin`` when the optimizer has
            not made a step yet (not on a resumed run).
        max_length: cap on output tokens of the greedy translations.
        dpi: resolution of the TensorBoard images.

    Raises:
        ValueError: ``every < 1``, no sentences, or a sentence whose source (or given
            reference) is blank, i.e. has no word (here, naming the entry); in ``on_train_begin``, a
            model without attention (``attention=None``: there is nothing to watch;
            remove the callback) or an alignment that does not fit its sentence.
    """

    def __init__(
        self,
        log_dir: str | Path | None = None,
        sentences: Sequence[Any] | None = None,
        *,
        every: int = 1,
        before_training: bool = True,
        max_length: int | None = None,
        dpi: int = 80,
    ):
        super().__init__()
        if every < 1:
            raise ValueError(f"every={every}: take a snapshot every 1 or more epochs.")
        self._given = None if sentences is None else [_as_sentence(s) for s in sentences]
        if self._given is not None and not self._given:
            raise ValueError("sentences is empty: give at least one sentence to watch, or None for the defaults.")
        for index, sentence in enumerate(self._given or []):
            _check_not_blank(index, sentence)
        self.log_dir = None if log_dir is None else Path(log_dir)
        self.every = every
        self.before_training = before_training
        self.max_length = max_length
        self.dpi = dpi
        self.snapshots: list[AttentionSnapshot] = []
        self.sentences: list[SnapshotSentence] = list(self._given or [])
        self._writer = None

    # ------------------------------------------------------------------ keras hooks
    def on_train_begin(self, logs=None):
        model = self.model
        if not getattr(model, "has_attention", False):
            raise ValueError(
                "AttentionSnapshots needs a Seq2Seq model with attention; this model was built with attention=None "
                "(the fixed-context baseline) and has no attention weights to watch. Remove the callback, or train "
                "with attention='bahdanau' (or a Luong score)."
            )
        if self._given is None:
            self.sentences = default_sentences(getattr(model.source_text, "language", "ko"))
        self._check_alignments()
        if self.log_dir is not None and self._writer is None and writes_summaries(model):
            import tensorflow as tf

            self._writer = tf.summary.create_file_writer(str(self.log_dir / RUN_NAME))
        if self.before_training and not self.snapshots and optimizer_step(model) == 0:
            self.snapshots.append(self.snapshot(-1))

    def on_epoch_end(self, epoch, logs=None):
        epochs = (self.params or {}).get("epochs")
        if (epoch + 1) % self.every and not (epochs is not None and epoch + 1 >= epochs):
            return
        snapshot = self.snapshot(epoch, write=self._writer is not None)
        self.snapshots = [s for s in self.snapshots if s.epoch != epoch] + [snapshot]

    def on_train_end(self, logs=None):
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    # ------------------------------------------------------------------ the work
    @property
    def seconds(self) -> list[float]:
        """Seconds each snapshot took, in order (the callback's cost per epoch)."""
        return [s.seconds for s in self.snapshots]

    def snapshot(self, epoch: int, *, write: bool = False) -> AttentionSnapshot:
        """Translate and score the sentences now; with ``write``, log the summaries at step ``epoch``."""
        from ..translation import Translation
        from ..words import word_tokens
        from .alignment import alignment_score, argmax_links, forced_attention, gold_matrix

        start = time.perf_counter()
        model = self.model
        options = {} if self.max_length is None else {"max_length": self.max_length}
        greedy = model.translate([s.source for s in self.sentences], **options)
        with_reference = [k for k, s in enumerate(self.sentences) if s.reference is not None]
        forced = (
            forced_attention(
                model,
                [self.sentences[k].source for k in with_reference],
                [self.sentences[k].reference for k in with_reference],
            )
            if with_reference
            else []
        )
        forced_of = dict(zip(with_reference, forced))
        views, golds = [], []
        for k, (sentence, translation) in enumerate(zip(self.sentences, greedy)):
            attention = forced_of.get(k)
            if attention is None:  # no reference (or cut by max_length): the greedy translation's own attention
                views.append(translation)
                golds.append(None)
                continue
            src, tgt = word_tokens(sentence.source), word_tokens(sentence.reference)
            views.append(
                Translation(
                    source=sentence.source,
                    text=sentence.reference,
                    source_tokens=src,
                    target_tokens=tgt,
                    attention=attention.astype(np.float32),
                    log_prob=0.0,
                )
            )
            golds.append(None if sentence.alignment is None else gold_matrix(sentence.alignment, len(tgt), len(src)))
        scored = [(g, v.attention) for g, v in zip(golds, views) if g is not None]
        aer = mass = None
        if scored:
            score = alignment_score(
                [g for g, _ in scored], [argmax_links(a) for _, a in scored], [a for _, a in scored]
            )
            aer, mass = score.aer, score.gold_mass
        snapshot = AttentionSnapshot(
            epoch=epoch,
            views=views,
            outputs=[t.text for t in greedy],
            golds=golds,
            forced=[k in forced_of and forced_of[k] is not None for k in range(len(views))],
            aer=aer,
            gold_mass=mass,
        )
        if write:
            self._write(snapshot)
        snapshot.seconds = time.perf_counter() - start
        if write:
            import tensorflow as tf

            with self._writer.as_default(step=epoch):
                tf.summary.scalar(SECONDS_TAG, snapshot.seconds)
            self._writer.flush()
        return snapshot

    def _write(self, snapshot: AttentionSnapshot) -> None:
        import tensorflow as tf

        with self._writer.as_default(step=snapshot.epoch):
            for k, image in enumerate(self.images(snapshot)):
                sentence = self.sentences[k]
                description = f"{sentence.source} -> {snapshot.outputs[k]}"
                if snapshot.forced[k]:
                    description += f" (teacher-forced on the reference: {sentence.reference})"
                tf.summary.image(IMAGE_TAG.format(index=k), image[None], description=description)
            if snapshot.aer is not None:
                tf.summary.scalar(
                    AER_TAG,
                    snapshot.aer,
                    description="alignment error rate of the attention argmax "
                    "against the gold links (teacher-forced; 0 is perfect)",
                )
                tf.summary.scalar(
                    GOLD_MASS_TAG,
                    snapshot.gold_mass,
                    description="mean attention weight on gold-linked source words (teacher-forced; 1 is perfect)",
                )

    def images(self, snapshot: AttentionSnapshot) -> list[np.ndarray]:
        """The heatmaps of ``snapshot`` as uint8 RGBA arrays ``[height, width, 4]``, one per sentence."""
        import tensorflow as tf

        return [tf.io.decode_png(png, channels=4).numpy() for png in self.png_images(snapshot)]

    def png_images(self, snapshot: AttentionSnapshot) -> list[bytes]:
        """The heatmaps of ``snapshot`` as PNG files (bytes), one per sentence."""
        from ..plotting import _shorten, plot_attention

        out = []
        for k, view in enumerate(snapshot.views):
            title = f"{snapshot.label}: {view.source}\nmodel says: {_shorten(snapshot.outputs[k])}"
            if snapshot.forced[k]:
                title += "\nrows: the reference, fed in (teacher forcing)"
            fig = plot_attention(view, gold=snapshot.golds[k], title=title)
            buffer = io.BytesIO()
            fig.savefig(buffer, format="png", dpi=self.dpi)
            out.append(buffer.getvalue())
        return out

    def _check_alignments(self) -> None:
        from ..words import word_tokens
        from .alignment import gold_matrix

        for s in self.sentences:
            if s.alignment is None:
                continue
            if s.reference is None:
                raise ValueError(
                    f"{s.source!r} has a gold alignment but no reference: give (source, reference, alignment)."
                )
            gold_matrix(s.alignment, len(word_tokens(s.reference)), len(word_tokens(s.source)))  # raises if outside


def writes_summaries(model) -> bool:
    """Whether this process writes ``model``'s TensorBoard summaries.

    The model's distribution strategy decides (``strategy.extended.should_save_summary``):
    yes on one device and under ``MirroredStrategy`` (one process); under
    ``MultiWorkerMirroredStrategy`` only on the chief (worker 0, or the ``chief`` task), as
    for Keras' checkpoints and tf.keras' TensorBoard, so that the workers do not write the
    same steps into one log folder.
    """
    strategy = getattr(model, "distribute_strategy", None)
    return bool(getattr(getattr(strategy, "extended", None), "should_save_summary", True))


class EpochTensorBoard(keras.callbacks.TensorBoard):
    """Keras' ``TensorBoard`` that has each epoch's summaries on disk at the end of the epoch, on the chief only.

    * Keras' callback leaves its writers' buffers to TensorFlow (flushed every 2 minutes or
      10 events, and at the end of ``fit``), so a kill lost the last epochs' ``epoch_loss``.
      This one flushes its writers at the end of every epoch: a checkpoint callback that
      runs after it commits an epoch whose losses are written.
    * A process that should not write summaries (:func:`writes_summaries`: a non-chief worker)
      writes into a temporary folder, removed at the end of ``fit`` (as tf.keras' TensorBoard
      did), so every worker runs the same callbacks and only the chief's summaries reach
      ``log_dir``.

    Args: those of ``keras.callbacks.TensorBoard``.
    """

    def __init__(self, log_dir="logs", **options):
        super().__init__(log_dir=str(log_dir), **options)
        self.requested_log_dir = str(log_dir)
        self._temporary_dir: str | None = None

    def set_model(self, model):
        if writes_summaries(model):
            self.log_dir = self.requested_log_dir
        else:
            self._temporary_dir = self._temporary_dir or tempfile.mkdtemp(prefix="seq2seq-keras-worker-tensorboard-")
            self.log_dir = self._temporary_dir
        super().set_model(model)

    def on_epoch_end(self, epoch, logs=None):
        super().on_epoch_end(epoch, logs)
        for writer in self._writers.values():  # the train (and validation) writers Keras has made
            writer.flush()

    def on_train_end(self, logs=None):
        super().on_train_end(logs)
        if self._temporary_dir is not None:
            shutil.rmtree(self._temporary_dir, ignore_errors=True)
            self._temporary_dir = None


def tensorboard_callbacks(log_dir: str | Path, model=None, **snapshot_options) -> list[keras.callbacks.Callback]:
    """:class:`EpochTensorBoard` (losses and metrics per epoch) and, for a model with attention, :class:`AttentionSnapshots`.

    A model without attention gets the losses only (with a warning). Both write only where
    :func:`writes_summaries` says so, and have an epoch's summaries flushed to disk when their
    ``on_epoch_end`` returns: a checkpoint callback belongs after them.
    """
    callbacks: list[keras.callbacks.Callback] = [
        EpochTensorBoard(log_dir=str(log_dir), write_graph=False, profile_batch=0)
    ]
    if model is None or getattr(model, "has_attention", False):
        callbacks.append(AttentionSnapshots(log_dir, **snapshot_options))
    else:
        warnings.warn(
            "This model has no attention (attention=None): TensorBoard gets losses and metrics only, "
            "no attention heatmaps or alignment scores.",
            stacklevel=2,
        )
    return callbacks


def discard_summaries_after(log_dir: str | Path, epochs: int, steps: int) -> int:
    """Remove the summaries of work after a checkpoint from the event files of ``log_dir``'s runs (:data:`RUNS`).

    A resumed :func:`~seq2seq_keras.training.train` calls it with its checkpoint's position
    before it writes anything: ``epochs`` epochs complete, ``steps`` optimizer steps done.
    An epoch's summaries are flushed before its checkpoint commits, so those of committed
    epochs are all on disk; what a killed run wrote after its last commit (the summaries of
    an epoch it did not commit, a record cut off mid-write) belongs to work the resumed run
    redoes, and is removed here, so that each step appears exactly once: epoch-indexed
    summaries at step ``>= epochs``, and Keras' optimizer-step-indexed ones (tags ending in
    :data:`OPTIMIZER_STEP_SUFFIX`) at step ``> steps``. Other events (file headers) stay.

    Why rewrite the files: ``tf.summary`` has no purge, and TensorBoard's own mechanism (a
    ``SessionLog.START`` event at step ``s`` makes its loader drop the run's earlier events
    at step ``>= s``) applies one step number to every tag of a run, while Keras'
    ``validation`` run holds epoch indices and optimizer steps side by side (it would drop
    every ``evaluation_*_vs_iterations`` point); and it helps only readers that implement
    it. A rewritten file reads the same to every reader. Each file is replaced atomically
    (a synced temporary file whose name TensorBoard ignores, then a rename), so a kill
    during the rewrite leaves the old file or the new one.

    Returns the number of summary values removed.
    """
    import tensorflow as tf

    from ..atomic import fsync_directory

    removed = 0
    for run in RUNS:
        folder = Path(log_dir) / run
        if not folder.is_dir():
            continue
        for leftover in folder.glob(".*.rewrite.tmp"):  # an interrupted rewrite
            leftover.unlink(missing_ok=True)
        for file in sorted(folder.glob("*tfevents*")):
            kept, dropped, changed = [], 0, False
            try:
                for record in tf.data.TFRecordDataset(str(file)):
                    raw = record.numpy()
                    event = tf.compat.v1.Event.FromString(raw)
                    values = [v for v in event.summary.value if not _after(v.tag, event.step, epochs, steps)]
                    if len(values) == len(event.summary.value):
                        kept.append(raw)
                        continue
                    dropped += len(event.summary.value) - len(values)
                    changed = True
                    if values:
                        del event.summary.value[:]
                        event.summary.value.extend(values)
                        kept.append(event.SerializeToString())
            except tf.errors.DataLossError:  # the last record was cut off by the kill
                changed = True
            if not changed:
                continue
            temporary = folder / f".{file.name.replace('tfevents', 'events')}.rewrite.tmp"
            with tf.io.TFRecordWriter(str(temporary)) as writer:
                for raw in kept:
                    writer.write(raw)
            with open(temporary, "rb") as f:
                os.fsync(f.fileno())
            os.replace(temporary, file)
            fsync_directory(folder)
            removed += dropped
    return removed


def _after(tag: str, step: int, epochs: int, steps: int) -> bool:
    return step > steps if tag.endswith(OPTIMIZER_STEP_SUFFIX) else step >= epochs
