"""Training that survives faults: resume after a kill, NaN guard, atomic checkpoints and models.

References are independent of the code under test: an uninterrupted run with the
same seed (weights compared bit for bit), weights captured in memory at an epoch
end, files written before a fault, and the OS (SIGKILL, SIGINT, RLIMIT_FSIZE).
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from seq2seq_keras.atomic import file_sha256
from seq2seq_keras.training.checkpointing import RECORD_FILE, read_records
from seq2seq_keras.training.config import TrainConfig
from seq2seq_keras.training.loop import XLA_PAD_MULTIPLE, NonFiniteLossError, TrainingInterrupted, train
from seq2seq_keras.training.run_folder import (
    CHECKPOINT_DIR,
    MODEL_FILE,
    VOCABULARY_FILE,
    OutputFolderError,
    RunMismatchError,
    check_output_folder,
    load_checkpoint,
    load_model,
    read_state,
)

# Tiny but real: 300 generated pairs, 8-unit GRUs, dropout on (its RNG state must survive a resume too).
TINY = TrainConfig(limit=300, embedding_dim=8, encoder_units=8, epochs=3, batch_size=16, dropout=0.1, seed=3)
REPO = Path(__file__).resolve().parents[2]


def weights_of(model) -> list[np.ndarray]:
    return [np.asarray(w) for w in model.get_weights()]


def assert_same_weights(a, b) -> None:
    assert len(a) == len(b)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)


@pytest.fixture(scope="module")
def reference_run(tmp_path_factory):
    """An uninterrupted run of TINY: the yardstick for every resumed run."""
    out = tmp_path_factory.mktemp("reference") / "run"
    model, history = train(TINY, out, verbose=0)
    return out, weights_of(model), history.history


def at_step(step: int, action):
    """A callback that calls ``action(model)`` at the end of optimizer step ``step``."""
    import keras

    class AtStep(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            if int(self.model.optimizer.iterations) == step:
                action(self.model)

    return AtStep()


# ----------------------------------------------------------------------------- atomic writes
# (the atomic-write unit tests are in test_checkpointing.py)
def test_final_model_write_failing_half_way_keeps_the_previous_model(reference_run, tmp_path):
    """``model.save`` runs out of space half way (RLIMIT_FSIZE): the old model.keras still loads."""
    ref_dir, ref_weights, _ = reference_run
    shutil.copy(ref_dir / MODEL_FILE, tmp_path / MODEL_FILE)
    size = (tmp_path / MODEL_FILE).stat().st_size
    script = f"""
        import resource, signal, sys
        import keras
        from seq2seq_keras.atomic import atomic_save_model
        from seq2seq_keras.training import load_model
        model = load_model({str(tmp_path)!r})
        model.get_layer("decoder").trainable_weights[0].assign(
            keras.ops.zeros_like(model.get_layer("decoder").trainable_weights[0]))
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)   # get EFBIG instead of being killed
        resource.setrlimit(resource.RLIMIT_FSIZE, ({size // 2}, resource.RLIM_INFINITY))
        try:
            atomic_save_model(model, {str(tmp_path / MODEL_FILE)!r})
        except Exception as e:
            print("FAILED:", type(e).__name__, e)
            sys.exit(3)
        sys.exit(0)
    """
    result = _python(script, timeout=120)
    assert result.returncode == 3, result.stdout + result.stderr
    assert "FAILED" in result.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == [MODEL_FILE]
    assert_same_weights(weights_of(load_model(tmp_path)), ref_weights)


# ----------------------------------------------------------------------------- resume
def test_crash_then_ctrl_c_mid_epoch_and_the_resumed_run_equals_an_uninterrupted_one(reference_run, tmp_path):
    """A crash (an exception, no chance to save) with ``checkpoint_every=7``, then Ctrl-C, then the rest.

    Each resume starts inside an epoch; the result equals the uninterrupted
    run bit for bit (same data order, optimizer state, dropout masks, metric totals).
    """
    _, ref_weights, ref_history = reference_run
    out = tmp_path / "run"

    def crash(model):
        raise RuntimeError("power cut")

    def ctrl_c(model):
        raise KeyboardInterrupt

    with pytest.raises(RuntimeError, match="power cut"):
        train(TINY, out, verbose=0, checkpoint_every=7, callbacks=[at_step(20, crash)])
    assert read_state(out)["checkpoint"]["step"] == 14  # the last multiple of 7 before the crash

    with pytest.raises(TrainingInterrupted, match=r"Interrupted; the training state at epoch 2, batch \d+ \(step 30\)"):
        train(TINY, out, verbose=0, callbacks=[at_step(30, ctrl_c)])
    state = read_state(out)
    assert state["status"] == "interrupted"
    steps_per_epoch = state["steps_per_epoch"]
    assert 14 < steps_per_epoch < 30 < 2 * steps_per_epoch  # step 14 is in epoch 1, step 30 in epoch 2
    assert state["checkpoint"] == {
        "epoch": 1,
        "batch": 30 - steps_per_epoch,
        "step": 30,
        "file": f"{CHECKPOINT_DIR}/{read_records(out / CHECKPOINT_DIR)[0].weights}",
    }
    assert state["resumes"][0] == {**state["resumes"][0], "from_epoch": 0, "from_batch": 14, "from_step": 14}

    model, history = train(TINY, out, verbose=0)
    state = read_state(out)
    assert state["status"] == "finished"
    assert state["resumes"][1] == {
        **state["resumes"][1],
        "from_epoch": 1,
        "from_batch": 30 - steps_per_epoch,
        "from_step": 30,
        "steps_lost": 0,
    }
    assert history.history == ref_history
    assert_same_weights(weights_of(model), ref_weights)
    assert_same_weights(weights_of(load_model(out)), ref_weights)
    assert not (out / CHECKPOINT_DIR).exists()  # removed once model.keras is safely written


@pytest.mark.slow
def test_sigkill_then_ctrl_c_then_finish_on_the_command_line(tmp_path):
    """The issue's kill test, through ``python -m seq2seq_keras.cli.commands train``.

    1. SIGKILL some time after the first epoch's checkpoint exists;
    2. the same command resumes from that epoch (not zero); Ctrl-C (SIGINT) it mid-epoch:
       exit status 130, a one-line message, no traceback;
    3. the same command finishes; the model equals an uninterrupted run's.
    """
    # Epochs of ~300 steps: several seconds even on a fast idle machine, so that state.json's
    # once-a-second progress line lands mid-epoch (with 75-step epochs a fast CPU finished an epoch
    # in 0.75 s and the whole run before the first kill).
    config = dataclasses.replace(TINY, limit=5000, epochs=3)
    out = tmp_path / "run"
    command = [
        sys.executable,
        "-m",
        "seq2seq_keras.cli.commands",
        "train",
        "--limit",
        "5000",
        "--epochs",
        "3",
        "--embedding-dim",
        "8",
        "--encoder-units",
        "8",
        "--batch-size",
        "16",
        "--dropout",
        "0.1",
        "--seed",
        "3",
        "--out",
        str(out),
    ]

    first = _start(command, tmp_path / "first.log")
    _wait_for(out, lambda s: s["epochs_completed"] >= 1 and s["last_step_seen"] > s["checkpoint"]["step"], first)
    first.kill()  # SIGKILL
    first.wait(timeout=30)
    killed_state = read_state(out)
    assert killed_state["status"] == "running" and killed_state["epochs_completed"] < config.epochs
    checkpoint_epoch = killed_state["epochs_completed"]

    second = _start(command, tmp_path / "second.log")
    # Progress by the resumed process itself: state.json still holds the killed run's last_step_seen (beyond
    # the checkpoint) until the new one writes, so "> from_step" alone could fire before fit starts (mid-epoch
    # is what this test claims; an interrupt during start-up is another case).
    seen = _wait_for(
        out, lambda s: len(s["resumes"]) == 1 and s["last_step_seen"] > killed_state["last_step_seen"], second
    )["last_step_seen"]
    second.send_signal(signal.SIGINT)
    assert second.wait(timeout=60) == 130
    log = (tmp_path / "second.log").read_text()
    assert "Traceback" not in log
    assert "seq2seq-keras train: Interrupted; the training state at " in log
    interrupted = read_state(out)
    assert interrupted["status"] == "interrupted" and interrupted["checkpoint"]["step"] >= seen

    third = subprocess.run(command, capture_output=True, text=True, timeout=600, env=_env())
    assert third.returncode == 0, third.stderr[-3000:]
    state = read_state(out)
    resumes = state["resumes"]
    assert state["status"] == "finished" and state["epochs_completed"] == config.epochs
    assert resumes[0]["from_epoch"] == checkpoint_epoch >= 1 and resumes[0]["from_batch"] == 0  # not from zero
    assert resumes[1]["from_step"] == interrupted["checkpoint"]["step"] and resumes[1]["steps_lost"] == 0
    assert len(state["history"]["loss"]) == config.epochs == len(json.loads((out / "history.json").read_text())["loss"])
    lost = killed_state["last_step_seen"] - killed_state["checkpoint"]["step"]
    print(
        f"\nSIGKILL at step >= {killed_state['last_step_seen']}, checkpoint at step "
        f"{killed_state['checkpoint']['step']} (end of epoch {checkpoint_epoch}): at least {lost} steps lost "
        f"(state says {resumes[0]['steps_lost']}); Ctrl-C lost {resumes[1]['steps_lost']}; "
        f"{state['steps_per_epoch']} steps per epoch"
    )
    # At most one epoch: a kill just before an epoch-end checkpoint loses exactly one.
    assert resumes[0]["steps_lost"] == lost <= state["steps_per_epoch"]

    reference, reference_history = train(config, tmp_path / "reference", verbose=0)
    assert state["history"] == reference_history.history
    assert_same_weights(weights_of(load_model(out)), weights_of(reference))


def test_non_finite_loss_stops_with_a_message_and_keeps_the_last_good_checkpoint(reference_run, tmp_path):
    import keras

    out = tmp_path / "run"
    at_epoch_end = {}

    class Capture(keras.callbacks.Callback):  # runs after the checkpoint's own on_epoch_end
        def on_epoch_end(self, epoch, logs=None):
            at_epoch_end[epoch] = weights_of(self.model)

    def poison(model):  # a diverged update: one decoder weight becomes NaN, so the next loss is NaN
        weight = model.decoder.trainable_weights[-1]
        weight.assign(keras.ops.full(weight.shape, float("nan")))

    steps_per_epoch = read_state(reference_run[0])["steps_per_epoch"]  # same configuration

    class Poison(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            if self.model.optimizer.iterations == steps_per_epoch + 3:
                poison(self.model)

    with pytest.raises(NonFiniteLossError) as error:
        train(TINY, out, verbose=0, callbacks=[Capture(), Poison()])
    message = str(error.value)
    assert f"the training loss became nan in epoch 2 (step {steps_per_epoch + 4})" in message
    assert f"The last good checkpoint (the end of epoch 1 (step {steps_per_epoch})) is kept" in message
    assert "--learning-rate" in message and "--restart" in message
    state = read_state(out)
    assert state["status"] == "stopped_non_finite_loss" and state["message"] == message
    assert state["epochs_completed"] == 1

    model, record = load_checkpoint(out)
    assert (record.epoch, record.batch, record.step) == (1, 0, steps_per_epoch)
    assert_same_weights(weights_of(model), at_epoch_end[0])
    assert all(np.isfinite(w).all() for w in weights_of(model))
    assert record.history["loss"] == [pytest.approx(state["history"]["loss"][0])]
    with pytest.raises(FileNotFoundError, match="unfinished run .*load_checkpoint"):
        load_model(out)


@pytest.mark.slow
@pytest.mark.parametrize("failure", ["killed", "error"])
def test_checkpoint_write_failing_half_way_leaves_the_previous_checkpoint_loadable(tmp_path, failure):
    """The second epoch's checkpoint exceeds RLIMIT_FSIZE half way through the write.

    ``killed``: the kernel's SIGXFSZ kills the process inside the HDF5 write;
    ``error``: SIGXFSZ ignored, the write fails with EFBIG (as on a full disk).
    Either way checkpoint.json still names epoch 1's file, which loads and
    equals the weights captured in memory at that epoch's end; rerunning resumes from it.
    """
    out = tmp_path / "run"
    config = dataclasses.replace(TINY, epochs=2)
    script = f"""
        import resource, signal, sys
        import keras, numpy as np
        from pathlib import Path
        from seq2seq_keras.training.checkpointing import read_records
        from seq2seq_keras.training import TrainConfig, train
        out = Path({str(out)!r})

        class FailNextCheckpoint(keras.callbacks.Callback):
            def on_epoch_end(self, epoch, logs=None):   # after epoch 1's checkpoint is committed
                if epoch == 0:
                    np.savez(out.parent / "epoch1.npz", *[np.asarray(w) for w in self.model.get_weights()])
                    size = (out / "checkpoint" / read_records(out / "checkpoint")[0].weights).stat().st_size
                    # Python ignores SIGXFSZ at start-up (writes then fail with EFBIG); "killed" restores
                    # the default action, so the kernel kills the process inside the write.
                    signal.signal(signal.SIGXFSZ, signal.SIG_DFL if {failure!r} == "killed" else signal.SIG_IGN)
                    resource.setrlimit(resource.RLIMIT_FSIZE, (size // 2, resource.RLIM_INFINITY))

        config = TrainConfig.from_json({config.to_json()!r})
        try:
            train(config, out, verbose=0, callbacks=[FailNextCheckpoint()])
        except OSError as e:
            print("ERROR:", e)
            sys.exit(3)
    """
    result = _python(script, timeout=300)
    if failure == "killed":
        assert result.returncode == -signal.SIGXFSZ, result.stdout + result.stderr[-3000:]
    else:
        assert result.returncode == 3, result.stdout + result.stderr[-3000:]
        assert "Could not write a checkpoint" in result.stdout and "File too large" in result.stdout
        assert "The previous checkpoint (the end of epoch 1" in result.stdout
        assert read_state(out)["status"] == "failed"

    folder = out / CHECKPOINT_DIR
    records = read_records(folder)
    assert [(r.epoch, r.batch) for r in records] == [(1, 0)]
    assert file_sha256(folder / records[0].weights) == records[0].sha256
    leftovers = sorted(p.name for p in folder.iterdir() if p.name not in (RECORD_FILE, records[0].weights))
    assert leftovers == ([] if failure == "error" else leftovers)  # a killed writer may leave its temporary
    if failure == "killed":
        assert all(name.startswith(".") and ".tmp" in name for name in leftovers)
    expected = np.load(tmp_path / "epoch1.npz")
    model, record = load_checkpoint(out)
    assert_same_weights(weights_of(model), [expected[f"arr_{i}"] for i in range(len(expected.files))])
    if failure == "error":
        return
    _, history = train(config, out, verbose=0)  # resumes from the intact checkpoint and finishes
    state = read_state(out)
    assert state["status"] == "finished" and state["resumes"][0]["from_epoch"] == 1
    assert len(history.history["loss"]) == 2


# ----------------------------------------------------------------------------- refusing to resume
def test_mismatched_configuration_vocabulary_or_data_is_refused(reference_run, tmp_path):
    ref_dir, ref_weights, ref_history = reference_run
    out = tmp_path / "run"
    shutil.copytree(ref_dir, out)

    other = dataclasses.replace(TINY, encoder_units=16, learning_rate=0.01)
    with pytest.raises(RunMismatchError) as error:
        train(other, out, verbose=0)
    message = str(error.value)
    assert "--encoder-units 8 in" in message and "--encoder-units 16 now" in message
    assert "--learning-rate 0.001 in" in message and "--learning-rate 0.01 now" in message
    assert "--epochs" not in message and "another --out" in message and "--restart" in message

    with pytest.raises(RunMismatchError, match="training data changed"):
        _changed_data_run(tmp_path)

    vocabulary = json.loads((out / VOCABULARY_FILE).read_text())
    vocabulary["target"]["config"]["vocabulary"].append("zebra")
    (out / VOCABULARY_FILE).write_text(json.dumps(vocabulary))
    with pytest.raises(RunMismatchError, match="vocabulary.json is not the vocabulary this run was started with"):
        train(TINY, out, verbose=0)
    # nothing was touched by the refusals
    assert_same_weights(weights_of(load_model(out)), ref_weights)


def _changed_data_run(folder: Path):
    """Same command, but the corpus file was edited since the run in ``folder`` started."""
    corpus = folder / "spa.txt"
    lines = [f"Sentence {i}.\tFrase {i}." for i in range(200)]
    corpus.write_text("\n".join(lines) + "\n")
    config = dataclasses.replace(TINY, data=str(corpus), limit=None, epochs=1)
    train(config, folder / "file-run", verbose=0)
    corpus.write_text("\n".join(lines[:-1] + ["Sentence 199, edited.\tFrase 199."]) + "\n")
    train(config, folder / "file-run", verbose=0)


def test_finished_run_is_not_retrained_and_restart_discards_it(reference_run, tmp_path, capsys):
    ref_dir, ref_weights, ref_history = reference_run
    out = tmp_path / "run"
    shutil.copytree(ref_dir, out)
    model, history = train(TINY, out, verbose=0)
    assert "already has 3 of 3 epochs; nothing to train" in capsys.readouterr().out
    assert history.history == ref_history
    assert_same_weights(weights_of(model), ref_weights)

    shorter = dataclasses.replace(TINY, epochs=1)
    with pytest.raises(RunMismatchError, match="--epochs 3 in .*--epochs 1 now"):
        train(shorter, out, verbose=0)
    _, history = train(shorter, out, verbose=0, restart=True)
    assert len(history.history["loss"]) == 1
    assert read_state(out)["resumes"] == []


# ----------------------------------------------------------------------------- output folder
def test_unwritable_or_full_output_folder_fails_before_training(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with pytest.raises(OutputFolderError, match="Cannot create the output folder .*choose another --out"):
        train(TINY, blocker / "run", verbose=0)

    free = shutil.disk_usage(tmp_path).free
    with pytest.raises(OutputFolderError, match=r"Not enough disk space .* MiB free, but .* need about"):
        check_output_folder(tmp_path / "run", required_bytes=free + 2**40)

    (tmp_path / "old").mkdir()
    (tmp_path / "old" / MODEL_FILE).write_bytes(b"someone's model")
    with pytest.raises(OutputFolderError, match="already holds a model .*without a resumable training state"):
        train(TINY, tmp_path / "old", verbose=0)
    assert (tmp_path / "old" / MODEL_FILE).read_bytes() == b"someone's model"


def test_cli_reports_folder_and_mismatch_errors_without_traceback(reference_run, tmp_path, capsys):
    from seq2seq_keras.cli import main

    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    assert main(["train", "--limit", "300", "--out", str(blocker / "run")]) == 2
    assert "seq2seq-keras train: error: Cannot create the output folder" in capsys.readouterr().err

    ref_dir, _, _ = reference_run
    out = tmp_path / "copy"
    shutil.copytree(ref_dir, out)
    argv = [
        "train",
        "--limit",
        "300",
        "--embedding-dim",
        "8",
        "--encoder-units",
        "8",
        "--epochs",
        "3",
        "--batch-size",
        "16",
        "--dropout",
        "0.1",
        "--seed",
        "3",
        "--out",
        str(out),
    ]
    assert main(argv) == 0
    assert "nothing to train" in capsys.readouterr().out
    assert main([*argv[:-2], "--seed", "4", "--out", str(out)]) == 2
    assert "--seed 3 in" in capsys.readouterr().err


# ----------------------------------------------------------------------------- data order
def test_advance_epochs_gives_the_uninterrupted_epoch_order():
    """A fresh pipeline advanced by k epochs yields exactly epoch k of a pipeline iterated k times."""
    from seq2seq_keras.data import make_dataset
    from seq2seq_keras.training.loop import advance_epochs, batches_per_epoch, build_text_processors, prepare_data

    train_pairs, _, _ = prepare_data(TINY)
    source, target = build_text_processors(TINY, train_pairs)

    def fresh():
        ds = make_dataset(train_pairs, source, target, batch_size=16, seed=TINY.seed, max_length=50)
        n = batches_per_epoch(ds)
        return ds, n

    def first_ids(ds):
        return [b[0][0].numpy().tobytes() for b in ds]

    uninterrupted, n = fresh()
    epochs = [first_ids(uninterrupted) for _ in range(3)]
    assert epochs[0] != epochs[1] != epochs[2]  # reshuffled each epoch
    assert len(epochs[2]) == n
    for k in range(3):
        resumed, _ = fresh()
        advance_epochs(resumed, k)
        assert first_ids(resumed) == epochs[k]


# ----------------------------------------------------------------------------- helpers
def _env() -> dict:
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONUNBUFFERED="1")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return env


def _python(script: str, timeout: float) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=_env(),
        cwd=REPO,
    )


def _start(command: list[str], log: Path) -> subprocess.Popen:
    handle = open(log, "w")
    return subprocess.Popen(command, stdout=handle, stderr=subprocess.STDOUT, env=_env(), cwd=REPO)


def _wait_for(out: Path, condition, process: subprocess.Popen, timeout: float = 300) -> dict:
    """Poll ``state.json`` until ``condition(state)`` holds (the process must still be running)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, f"training exited early with status {process.returncode}"
        try:
            state = read_state(out)
            if state is not None and condition(state):
                return state
        except (OSError, ValueError, KeyError, TypeError, IndexError):
            pass  # not there yet
        time.sleep(0.05)
    process.kill()
    raise AssertionError(f"state.json never reached the expected point: {read_state(out)}")


def test_jit_compile_compiles_the_model_and_pads_every_batch(monkeypatch):
    """``--jit-compile`` compiles the model with XLA and pads the training and validation batches
    to full rows and lengths a multiple of 4 (so XLA compiles a few shapes); without it, batches
    keep their bucketed shapes. ``epochs=0``: this checks the set-up only; training under XLA on
    such padded batches is test_model.py::test_fit_with_jit_compile_runs_the_fused_loops_under_xla."""
    from seq2seq_keras.data import batching

    datasets = []
    real = batching.make_dataset

    def spy(*args, **kwargs):
        datasets.append((kwargs["pad_to_multiple"], real(*args, **kwargs)))
        return datasets[-1][1]

    monkeypatch.setattr(batching, "make_dataset", spy)
    shapes = {}
    for jit in (True, False):
        datasets.clear()
        model, _ = train(dataclasses.replace(TINY, epochs=0, jit_compile=jit), verbose=0)
        assert model.jit_compile is jit
        assert len(datasets) == 2 and {pad for pad, _ in datasets} == {XLA_PAD_MULTIPLE if jit else None}
        shapes[jit] = {tuple(t.shape) for _, ds in datasets for (s, t_in), t_out in ds for t in (s, t_in, t_out)}
    assert all(rows == TINY.batch_size and length % XLA_PAD_MULTIPLE == 0 for rows, length in shapes[True])
    assert any(rows != TINY.batch_size or length % XLA_PAD_MULTIPLE for rows, length in shapes[False])


def test_batch_tokens_trains_on_token_budgeted_batches(monkeypatch):
    """``batch_tokens``: the training and validation pipelines get the token budget, their batches stay
    within it (rows x longer side), short-sentence batches have more rows than long ones, and a run trains."""
    from seq2seq_keras.data import batching

    datasets = []
    real = batching.make_dataset

    def spy(*args, **kwargs):
        datasets.append((kwargs["batch_tokens"], real(*args, **kwargs)))
        return datasets[-1][1]

    monkeypatch.setattr(batching, "make_dataset", spy)
    model, history = train(dataclasses.replace(TINY, epochs=1, batch_tokens=96), verbose=0)
    assert len(datasets) == 2 and {budget for budget, _ in datasets} == {96}
    shapes = [(s.shape[0], max(s.shape[1], t_in.shape[1])) for _, ds in datasets for (s, t_in), _ in ds]
    assert all(rows * length <= 96 and rows <= TINY.batch_size for rows, length in shapes)
    shortest, longest = min(shapes, key=lambda x: x[1]), max(shapes, key=lambda x: x[1])
    assert shortest[0] > longest[0]
    assert np.isfinite(history.history["loss"][-1])


# ----------------------------------------------------------------------------- options ("auto")
def test_train_prints_the_resolved_options_once_and_builds_the_model_with_them(capsys):
    """One line says what ``precision``/``jit_compile`` ``"auto"`` chose on this machine (the line of
    ``training_options``, whose rules test_hardware.py checks on described machines), the model
    is built with exactly those choices, and ``verbose=0`` keeps training silent."""
    from seq2seq_keras.training.loop import prepare_data, training_options

    config = dataclasses.replace(TINY, epochs=0)
    model, _ = train(config, verbose=2)
    out = capsys.readouterr().out
    expected = training_options(config, len(prepare_data(config)[0]))
    assert out.count("options:") == 1 and expected.describe() in out.splitlines()
    assert model.dtype_policy.name == expected.precision and model.jit_compile is expected.jit_compile
    train(config, verbose=0)
    assert "options:" not in capsys.readouterr().out


def test_run_folder_records_the_options_it_trained_with(reference_run):
    from seq2seq_keras.training.loop import prepare_data, training_options

    out, _, _ = reference_run
    expected = training_options(TINY, len(prepare_data(TINY)[0]))
    assert read_state(out)["options"] == {"precision": expected.precision, "jit_compile": expected.jit_compile}


def test_explicit_mixed_bfloat16_trains_every_weighted_layer_in_bf16_to_the_float32_losses():
    """``precision="mixed_bfloat16"`` wins over ``auto`` on any machine: every layer with weights
    computes in bf16 (weights stay float32), and one epoch's losses stay within bf16's
    rounding of the float32 run from the same seed."""
    runs = {}
    for precision in ("float32", "mixed_bfloat16"):
        model, history = train(dataclasses.replace(TINY, epochs=1, precision=precision, jit_compile="off"), verbose=0)
        runs[precision] = history.history
        weighted = [layer for layer in model._flatten_layers() if layer.weights]
        assert {layer.dtype_policy.name for layer in weighted} == {precision}
        assert {w.dtype for w in model.weights} == {"float32"}
    for key in ("loss", "val_loss"):
        np.testing.assert_allclose(runs["mixed_bfloat16"][key], runs["float32"][key], rtol=1e-2)
    assert runs["mixed_bfloat16"]["loss"] != runs["float32"]["loss"]  # it did compute in bf16


# A KeyboardInterrupt raised inside a finaliser or a library's broad ``except`` is swallowed; the
# Ctrl-C must still stop the run (once a start-up Ctrl-C let a resumed run train to the end, exit 0).
def _swallowed_ctrl_c():
    try:
        signal.raise_signal(signal.SIGINT)  # the command line's handler raises KeyboardInterrupt...
    except BaseException:  # ...and library code swallows it
        pass


@pytest.fixture
def terminal_sigint():
    """SIGINT handled as in a terminal; a background job (nohup, CI runners) may start with it ignored."""
    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, before)


_TRAIN_ARGS = [
    "train",
    "--limit",
    "300",
    "--epochs",
    "2",
    "--embedding-dim",
    "8",
    "--encoder-units",
    "8",
    "--batch-size",
    "16",
]


def test_ctrl_c_swallowed_during_start_up_still_stops_the_command(tmp_path, monkeypatch, capsys, terminal_sigint):
    from seq2seq_keras.cli import commands as cli

    real_start = cli.start_tensorflow

    def start_then_swallow():
        real_start()
        _swallowed_ctrl_c()

    monkeypatch.setattr(cli, "start_tensorflow", start_then_swallow)
    assert cli.main([*_TRAIN_ARGS, "--out", str(tmp_path / "run")]) == 130
    assert "interrupted" in capsys.readouterr().err
    assert not (tmp_path / "run" / "model.keras").exists()  # nothing was trained
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # the handler before it, put back


def test_ctrl_c_swallowed_before_fit_stops_training_with_the_state_saved(
    tmp_path, monkeypatch, capsys, terminal_sigint
):
    from seq2seq_keras.cli import commands as cli
    from seq2seq_keras.training import loop as training

    real_build = training.build_model

    def build_then_swallow(*args, **kwargs):
        model = real_build(*args, **kwargs)
        _swallowed_ctrl_c()
        return model

    monkeypatch.setattr(training, "build_model", build_then_swallow)
    out = tmp_path / "run"
    assert cli.main([*_TRAIN_ARGS, "--out", str(out)]) == 130  # the guard raised at fit's start
    assert "seq2seq-keras train: Interrupted" in capsys.readouterr().err
    state = read_state(out)
    assert state["status"] == "interrupted" and state["epochs_completed"] == 0 and not state["history"]


def test_progress_is_plain_lines_when_stdout_is_not_a_terminal(capsys, monkeypatch):
    """verbose="auto" (the CLI's) piped to a file: Keras' one line per epoch plus PeriodicProgress' lines at
    each tenth of an epoch, and no carriage return, backspace or escape code; on a terminal, Keras' bar."""
    import io
    import re

    from seq2seq_keras.training.loop import PeriodicProgress, fit_verbosity

    config = dataclasses.replace(TINY, epochs=2)
    every_tenth = io.StringIO()
    ours = PeriodicProgress(stream=every_tenth, min_seconds=0.0)  # the run's own waits 5 s between lines
    _, history = train(config, callbacks=[ours])  # verbose="auto"; capsys' stdout is no terminal
    out = capsys.readouterr().out
    assert not re.search(r"[\r\b\x1b]", out), out[:500]
    steps = ours.params["steps"]
    assert steps >= 10
    for epoch in (1, 2):
        assert f"Epoch {epoch}/2" in out
        lines = [line for line in every_tenth.getvalue().splitlines() if line.startswith(f"epoch {epoch}/2: ")]
        assert [int(line.split(": ")[1].split("/")[0]) for line in lines] == [
            next(b for b in range(1, steps + 1) if b / steps >= k / 10 - 1e-9) for k in range(1, 10)
        ]
        assert all(f"/{steps} batches (" in line and ", loss " in line and "accuracy" in line for line in lines)
        periodic = [line for line in out.splitlines() if line.startswith(f"epoch {epoch}/2: ")]
        assert all(re.fullmatch(rf"epoch {epoch}/2: \d+/{steps} batches \(\d+%\), \d+ s, .*", x) for x in periodic)
    end_lines = [line for line in out.splitlines() if line.startswith(f"{steps}/{steps} - ")]
    assert len(end_lines) == 2 and all("val_loss" in line for line in end_lines)
    assert f"{history.history['loss'][-1]:.4f}" in end_lines[-1]

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    monkeypatch.setattr(sys, "stdout", Terminal())
    assert fit_verbosity("auto") == (1, False)
    monkeypatch.setattr(sys, "stdout", io.StringIO())
    assert fit_verbosity("auto") == (2, True) and fit_verbosity(1) == (1, False) and fit_verbosity(0) == (0, False)
