"""callbacks.py: attention snapshots in TensorBoard (tags, steps, images), AER falling, resumed runs, the CLI flag."""

import warnings
from collections import defaultdict
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

from seq2seq_keras.evaluation.attention_snapshots import (
    AER_TAG,
    GOLD_MASS_TAG,
    RUN_NAME,
    SECONDS_TAG,
    AttentionSnapshots,
    SnapshotSentence,
    default_sentences,
    tensorboard_callbacks,
)
from seq2seq_keras.training.config import TrainConfig
from seq2seq_keras.training.loop import TrainingInterrupted, train
from seq2seq_keras.training.run_folder import read_state

IMAGE_TAGS = [f"attention/sentence_{k}" for k in range(3)]
#: Small enough to train in seconds on 2 CPU cores, large enough that attention visibly learns.
LEARNS = TrainConfig(limit=1500, embedding_dim=16, encoder_units=32, epochs=4, batch_size=64, learning_rate=1e-2)
TINY = TrainConfig(limit=200, embedding_dim=8, encoder_units=8, epochs=3, batch_size=32)


def read_events(folder) -> dict[str, list[tuple[int, object]]]:
    """``tag -> [(step, value)]`` from every event file under ``folder`` (a resumed run adds files), in write order.

    Scalars come back as floats, image summaries as ``[width, height, png bytes...]`` string arrays.
    """
    found = defaultdict(list)
    for file in sorted(Path(folder).glob("events.out.tfevents.*")):
        for event in tf.compat.v1.train.summary_iterator(str(file)):
            for value in event.summary.value:
                array = tf.make_ndarray(value.tensor)
                found[value.tag].append((event.step, array.item() if array.ndim == 0 else array))
    return dict(found)


def steps(events, tag) -> list[int]:
    return sorted(step for step, _ in events.get(tag, []))


def corpus_sentences(n: int) -> list[SnapshotSentence]:
    """``n`` built-in validation pairs with gold links, for a steadier AER than three sentences give."""
    from seq2seq_keras.training import prepare_data

    _, validation, _ = prepare_data(LEARNS)
    return [
        SnapshotSentence(s, t, tuple(a))
        for s, t, a in zip(validation.source[:n], validation.target[:n], validation.alignments[:n])
    ]


@pytest.fixture(scope="module")
def logged(tmp_path_factory):
    """A tiny run watched with the default sentences, logged to TensorBoard."""
    logs = tmp_path_factory.mktemp("logs")
    callback = AttentionSnapshots(logs)
    train(TINY, callbacks=[callback], verbose=0)
    return logs, callback


# ----------------------------------------------------------------------------- TensorBoard
def test_event_file_has_images_and_scalars_at_every_epoch(logged):
    logs, callback = logged
    events = read_events(logs / RUN_NAME)
    epochs = list(range(TINY.epochs))
    for tag in [*IMAGE_TAGS, AER_TAG, GOLD_MASS_TAG, SECONDS_TAG]:
        assert steps(events, tag) == epochs, f"{tag}: steps {steps(events, tag)}, expected Keras' epoch indices"
    assert sorted(events) == sorted([*IMAGE_TAGS, AER_TAG, GOLD_MASS_TAG, SECONDS_TAG])
    # The scalars are the in-memory snapshots' numbers (the before-training one is memory-only).
    logged = [s for s in callback.snapshots if s.epoch >= 0]
    assert [s.epoch for s in callback.snapshots] == [-1, *epochs]
    np.testing.assert_allclose([v for _, v in events[AER_TAG]], [s.aer for s in logged], rtol=1e-6)
    np.testing.assert_allclose([v for _, v in events[GOLD_MASS_TAG]], [s.gold_mass for s in logged], rtol=1e-6)


def test_images_decode_to_the_heatmap_size(logged):
    from seq2seq_keras.plotting import plot_attention

    logs, callback = logged
    events = read_events(logs / RUN_NAME)
    last = callback.snapshots[-1]
    for k, tag in enumerate(IMAGE_TAGS):
        ((step, value),) = [e for e in events[tag] if e[0] == last.epoch]
        width, height, png = value[0], value[1], value[2]
        image = tf.io.decode_png(png, channels=4).numpy()
        size = plot_attention(last.views[k], gold=last.golds[k]).get_size_inches() * callback.dpi
        assert image.shape[2] == 4  # RGBA, the figure's size in inches times the callback's dpi (to a pixel)
        np.testing.assert_allclose(image.shape[:2], [size[1], size[0]], atol=1)
        assert (int(width), int(height)) == (image.shape[1], image.shape[0])
        assert image[..., :3].std() > 10  # a drawn heatmap, not a blank canvas


def test_snapshots_keep_teacher_forced_word_attention_with_gold_links(logged):
    _, callback = logged
    assert [s.source for s in callback.sentences][0] == "나는 학생이다"
    for snapshot in callback.snapshots:
        assert snapshot.forced == [True, True, True] and len(snapshot.outputs) == 3
        first = snapshot.views[0]
        assert first.source_tokens == ["나는", "학생이다"] and first.target_tokens == ["i", "am", "a", "student"]
        assert first.attention.shape == (4, 2) == snapshot.golds[0].shape
        np.testing.assert_allclose(first.attention.sum(axis=1), 1.0, rtol=1e-5)
    assert all(s.seconds > 0 for s in callback.snapshots)


@pytest.mark.slow
def test_alignment_error_falls_and_attention_moves_onto_gold_words():
    """A short built-in training (about 20 s on 2 cores): AER after the last epoch well below after the first."""
    callback = AttentionSnapshots(sentences=default_sentences() + corpus_sentences(24))
    train(LEARNS, callbacks=[callback], verbose=0)
    first, last = callback.snapshots[1], callback.snapshots[-1]  # after epoch 1, after the last epoch
    assert (first.epoch, last.epoch) == (0, LEARNS.epochs - 1)
    assert last.aer < first.aer - 0.1, [round(s.aer, 3) for s in callback.snapshots]
    assert last.gold_mass > first.gold_mass + 0.05, [round(s.gold_mass, 3) for s in callback.snapshots]


def test_every_n_epochs_and_the_last_one(tmp_path):
    callback = AttentionSnapshots(tmp_path, every=2, before_training=False)
    train(TINY, callbacks=[callback], verbose=0)
    assert [s.epoch for s in callback.snapshots] == [1, 2]  # epoch index 1 (every 2nd) and 2 (the last)
    assert steps(read_events(tmp_path / RUN_NAME), AER_TAG) == [1, 2]


# ----------------------------------------------------------------------------- training runs
def test_resumed_run_continues_the_steps(tmp_path):
    """Ctrl-C after epoch 1, then the same command (with another log folder: not a model setting)."""
    logs = tmp_path / "logs"
    config = TrainConfig(**{**TINY.__dict__, "tensorboard": str(logs)})

    class CtrlCAtSecondEpoch(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            if epoch == 1:
                raise KeyboardInterrupt

    with pytest.raises(TrainingInterrupted):
        train(config, tmp_path / "run", verbose=0, callbacks=[CtrlCAtSecondEpoch()])
    events = read_events(logs / RUN_NAME)
    assert steps(events, AER_TAG) == [0] and steps(events, IMAGE_TAGS[0]) == [0]

    model, history = train(config, tmp_path / "run", verbose=0)
    assert read_state(tmp_path / "run")["status"] == "finished"
    events = read_events(logs / RUN_NAME)
    for tag in [AER_TAG, GOLD_MASS_TAG, *IMAGE_TAGS]:
        assert steps(events, tag) == [0, 1, 2], tag
    assert steps(read_events(logs / "train"), "epoch_loss") == [0, 1, 2]  # Keras' own TensorBoard callback
    assert steps(read_events(logs / "validation"), "epoch_loss") == [0, 1, 2]


def test_log_folder_is_not_a_model_setting():
    a, b = TrainConfig(tensorboard="runs/a"), TrainConfig(tensorboard=None)
    assert a.differences(b) == []
    assert TrainConfig.from_json(a.to_json()) == a
    assert [d[0] for d in TrainConfig(encoder_units=8, tensorboard="x").differences(b)] == ["encoder_units"]


def test_cli_train_with_tensorboard_writes_losses_and_attention_and_says_how_to_open_them(tmp_path, capsys):
    from seq2seq_keras.cli import main

    logs = tmp_path / "logs"
    code = main(
        [
            "train",
            "--limit",
            "200",
            "--embedding-dim",
            "8",
            "--encoder-units",
            "8",
            "--epochs",
            "2",
            "--batch-size",
            "32",
            "--tensorboard",
            str(logs),
            "--out",
            str(tmp_path / "run"),
        ]
    )
    assert code == 0
    assert f"tensorboard --logdir {logs}" in capsys.readouterr().out
    events = read_events(logs / RUN_NAME)
    assert steps(events, AER_TAG) == [0, 1] and steps(events, IMAGE_TAGS[2]) == [0, 1]
    assert steps(read_events(logs / "train"), "epoch_loss") == [0, 1]


# ----------------------------------------------------------------------------- errors and inputs
def test_model_without_attention_is_refused_with_what_to_do(tiny_no_attention):
    callback = AttentionSnapshots()
    callback.set_model(tiny_no_attention)
    with pytest.raises(ValueError, match="attention=None.*Remove the callback"):
        callback.on_train_begin()  # what fit() calls first
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        callbacks = tensorboard_callbacks("unused", tiny_no_attention)
    assert [type(c).__name__ for c in callbacks] == ["EpochTensorBoard"]  # Keras' TensorBoard, flushed per epoch
    assert any("no attention" in str(w.message) for w in caught)


@pytest.fixture
def tiny_no_attention():
    from seq2seq_keras.training.config import build_model
    from seq2seq_keras.training.loop import build_text_processors, prepare_data

    config = TrainConfig(limit=60, embedding_dim=4, encoder_units=4, attention=None)
    source, target = build_text_processors(config, prepare_data(config)[0])
    return build_model(config, source, target)


def test_bad_arguments_say_what_to_give():
    with pytest.raises(ValueError, match="every=0"):
        AttentionSnapshots(every=0)
    with pytest.raises(ValueError, match="at least one sentence"):
        AttentionSnapshots(sentences=[])
    with pytest.raises(TypeError, match="give a source string"):
        AttentionSnapshots(sentences=[42])
    mixed = AttentionSnapshots(sentences=["너는 학생이다", ("나는 학생이다", "I am a student", [(0, 0), (1, 1)])])
    assert mixed.sentences[0] == SnapshotSentence("너는 학생이다")
    assert mixed.sentences[1].alignment == ((0, 0), (1, 1))


@pytest.mark.parametrize("blank", ["", "   ", "\t\n", ("", ""), ("", "I am a student"), SnapshotSentence("\u200b ")])
def test_blank_sentences_are_refused_in_the_constructor_naming_the_entry(blank):
    """A blank source has no attention to draw: refused at once (it used to stop ``fit`` after the first
    epoch with 'Nothing to plot'), in one line that names the entry and what to do."""
    with pytest.raises(ValueError, match=r"^sentences\[1\] has a blank source \(.*\).*remove that entry") as e:
        AttentionSnapshots(sentences=["나는 학생이다", blank])
    assert "\n" not in str(e.value)
    with pytest.raises(ValueError, match=r"^sentences\[0\] has a blank reference"):
        AttentionSnapshots(sentences=[("나는 학생이다", "  ")])


def test_alignment_outside_its_sentence_is_refused_before_training():
    callback = AttentionSnapshots(sentences=[("나는 학생이다", "I am a student", [(5, 0)])])
    with pytest.raises(ValueError, match="outside"):
        train(TINY, callbacks=[callback], verbose=0)


def test_sentences_without_reference_show_the_greedy_attention():
    callback = AttentionSnapshots(
        sentences=["나는 학생이다", ("그는 사과를 먹는다.", "He eats an apple.")], max_length=5
    )
    train(TrainConfig(**{**TINY.__dict__, "epochs": 1}), callbacks=[callback], verbose=0)
    snapshot = callback.snapshots[-1]
    assert snapshot.forced == [False, True] and snapshot.aer is None and snapshot.golds == [None, None]
    greedy = snapshot.views[0]
    assert greedy.attention.shape == (len(greedy.target_tokens), len(greedy.source_tokens))
    assert len(callback.png_images(snapshot)) == 2


def test_default_sentences_follow_the_model_direction():
    ko = default_sentences("ko")
    en = default_sentences("en")
    assert [s.source for s in ko] == ["나는 학생이다", "나는 내일 물을 마실 것이다.", "나는 학생이고 그는 선생님이다."]
    assert [s.source for s in en] == [s.reference for s in ko]
    assert en[0].alignment == ((0, 0), (1, 1), (2, 1), (3, 1))


# ----------------------------------------------------------------------------- kill -9 and resume
#: ``python -c KILL_SCRIPT CONFIG_JSON OUT MODE EPOCH``: ``train(CONFIG, OUT)`` killed by SIGKILL at the worst
#: moments for the summaries: ``after_commit``, just after the end-of-epoch checkpoint of Keras' epoch index EPOCH
#: is committed; ``before_commit``, just before that commit starts (the epoch's summaries are written by then);
#: ``none`` runs to the end. The kill is the real signal; the hook only chooses the moment.
KILL_SCRIPT = """
import os, signal, sys
from seq2seq_keras.training import checkpointing
from seq2seq_keras.training import TrainConfig, train

config, out, mode, at = TrainConfig.from_json(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4])
commit_epoch_end = checkpointing.SafeBackupAndRestore._commit_epoch_end

def killing_commit_epoch_end(self, epoch, logs):
    if (mode, epoch) == ("before_commit", at):
        os.kill(os.getpid(), signal.SIGKILL)
    record = commit_epoch_end(self, epoch, logs)
    if (mode, epoch) == ("after_commit", at):
        os.kill(os.getpid(), signal.SIGKILL)
    return record

checkpointing.SafeBackupAndRestore._commit_epoch_end = killing_commit_epoch_end
train(config, out, verbose=0)
"""


def _train_process(config: TrainConfig, out: Path, mode: str, epoch: int = -1):
    import os
    import subprocess
    import sys

    repo = Path(__file__).resolve().parents[2]
    env = dict(
        os.environ,
        TF_CPP_MIN_LOG_LEVEL="3",
        PYTHONPATH=os.pathsep.join(filter(None, [str(repo), os.environ.get("PYTHONPATH")])),
    )
    return subprocess.run(
        [sys.executable, "-c", KILL_SCRIPT, config.to_json(), str(out), mode, str(epoch)],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
        cwd=repo,
    )


def accumulated(folder) -> dict[str, list[int]]:
    """``tag -> [step]`` as TensorBoard shows the run: its event loader, purging orphaned data as the server does."""
    from tensorboard.backend.event_processing.plugin_event_accumulator import EventAccumulator

    accumulator = EventAccumulator(str(folder), size_guidance={"tensors": 0}, purge_orphaned_data=True)
    accumulator.Reload()
    return {tag: [e.step for e in accumulator.Tensors(tag)] for tag in accumulator.Tags()["tensors"]}


@pytest.mark.slow
def test_sigkill_at_the_worst_moments_leaves_every_committed_epoch_logged_exactly_once(tmp_path):
    """kill -9 just after epoch 1's checkpoint commit, then (resumed) just before epoch 3's commit, with its
    summaries written; the third run finishes. Every epoch's loss scalars, AER and images are then in the event
    files exactly once (read raw, file by file, and as TensorBoard's loader shows them), with the losses the
    checkpoints recorded. (About 40 s: three TensorFlow start-ups.)"""
    logs, out = tmp_path / "logs", tmp_path / "run"
    config = TrainConfig(**{**TINY.__dict__, "epochs": 4, "tensorboard": str(logs)})
    for mode, epoch in [("after_commit", 0), ("before_commit", 2)]:
        killed = _train_process(config, out, mode, epoch)
        assert killed.returncode == -9, killed.stderr[-3000:]
    finished = _train_process(config, out, "none")
    assert finished.returncode == 0, finished.stderr[-3000:]
    state = read_state(out)
    assert state["status"] == "finished"
    assert [(r["from_epoch"], r["from_batch"]) for r in state["resumes"]] == [(1, 0), (2, 0)]  # the kills' moments

    epochs = list(range(config.epochs))
    per_run = {
        "train": ["epoch_loss", "epoch_accuracy"],
        "validation": ["epoch_loss", "epoch_accuracy"],
        RUN_NAME: [AER_TAG, GOLD_MASS_TAG, SECONDS_TAG, *IMAGE_TAGS],
    }
    for run, tags in per_run.items():
        raw, shown = read_events(logs / run), accumulated(logs / run)
        for tag in tags:
            assert [step for step, _ in raw.get(tag, [])] == epochs, (run, tag, "in the event files")
            assert shown.get(tag) == epochs, (run, tag, "as TensorBoard shows it")
    iterations = [(e + 1) * state["steps_per_epoch"] for e in epochs]  # Keras' optimizer-step-indexed series
    assert steps(read_events(logs / "validation"), "evaluation_loss_vs_iterations") == iterations
    for run, key in [("train", "loss"), ("validation", "val_loss")]:  # the values of the committed epochs
        np.testing.assert_allclose(
            [v for _, v in read_events(logs / run)["epoch_loss"]], state["history"][key], rtol=1e-6
        )


def test_discard_summaries_after_keeps_the_committed_steps_of_each_kind_and_drops_a_cut_off_record(tmp_path):
    """A checkpoint at 2 epochs / 16 optimizer steps: epoch-indexed summaries at steps 0-1 stay, later ones go;
    Keras' ``*_vs_iterations`` points at steps <= 16 stay; a record cut off by a kill is dropped; a file with
    nothing to drop is left byte for byte; the file header stays (TensorBoard still reads the files)."""
    from seq2seq_keras.evaluation.attention_snapshots import discard_summaries_after

    def write(run, points):
        writer = tf.summary.create_file_writer(str(tmp_path / run))
        with writer.as_default():
            for tag, step in points:
                tf.summary.scalar(tag, float(step), step=step)
        writer.close()
        return next((tmp_path / run).glob("*tfevents*"))

    validation = write(
        "validation",
        [
            ("epoch_loss", 0),
            ("evaluation_loss_vs_iterations", 8),
            ("epoch_loss", 1),
            ("evaluation_loss_vs_iterations", 16),
            ("epoch_loss", 2),
            ("evaluation_loss_vs_iterations", 24),
        ],
    )
    attention = write(RUN_NAME, [(AER_TAG, 0), (AER_TAG, 1), (AER_TAG, 2)])
    with open(attention, "ab") as f:  # a record the kill cut off: its length field and half its payload
        f.write(validation.read_bytes()[-40:-10])
    train_file = write("train", [("epoch_loss", 0), ("epoch_loss", 1)])
    untouched = train_file.read_bytes()
    write("elsewhere", [("epoch_loss", 5)])  # not a run this package writes

    with pytest.raises(tf.errors.DataLossError):
        read_events(tmp_path / RUN_NAME)
    assert discard_summaries_after(tmp_path, epochs=2, steps=16) == 3
    kept = read_events(tmp_path / "validation")
    assert steps(kept, "epoch_loss") == [0, 1] and steps(kept, "evaluation_loss_vs_iterations") == [8, 16]
    assert steps(read_events(tmp_path / RUN_NAME), AER_TAG) == [0, 1]
    assert train_file.read_bytes() == untouched
    assert steps(read_events(tmp_path / "elsewhere"), "epoch_loss") == [5]
    assert accumulated(tmp_path / "validation") == {"epoch_loss": [0, 1], "evaluation_loss_vs_iterations": [8, 16]}
    assert sorted(p.name for p in (tmp_path / RUN_NAME).iterdir()) == [attention.name]  # no temporary left
    assert discard_summaries_after(tmp_path, epochs=2, steps=16) == 0  # idempotent
