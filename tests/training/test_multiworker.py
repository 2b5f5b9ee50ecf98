"""Two worker processes under ``MultiWorkerMirroredStrategy`` train as one process does.

Three processes run ``tests/programs/multiworker_train.py`` at once: two workers of a
localhost cluster (``TF_CONFIG``, ports picked free by the OS) and the
one-process reference (default strategy). Each trains the same small ``Seq2Seq``
with ``model.fit`` for 2 epochs of 9 global batches (8 pairs, length-bucketed,
reshuffled each epoch, partial batches included). The references are the
one-process run's own batches, logs and weights: the workers' halves of every
global batch must put together to it, and the loss/accuracy logged after every
step and the final weights must equal it to float rounding (the workers sum
their gradients in another order than one process sums over the batch).
All three train with the package's TensorBoard callbacks, the workers into one shared
log folder, which only the chief writes.
About 20-25 s on a lightly loaded 2-core machine (73 s at load average 8), mostly three
TensorFlow start-ups; the callbacks (one watched sentence) add about 15 s of CPU (56 s
of CPU in all, the same 64 s wall time with and without them at load average 3.5).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
WORKER = REPO / "tests" / "programs" / "multiworker_train.py"
TIMEOUT_S = 300


def free_ports(n: int) -> list[int]:
    """``n`` distinct ports the OS reports free now (all bound at once, then released)."""
    sockets = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(n)]
    try:
        for s in sockets:
            s.bind(("localhost", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def _env(tf_config: dict | None) -> dict:
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONUNBUFFERED="1")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    env.pop("TF_CONFIG", None)
    if tf_config is not None:
        env["TF_CONFIG"] = json.dumps(tf_config)
    return env


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Run the one-process reference and the two workers; returns ``{name: (json, npz)}``."""
    out = tmp_path_factory.mktemp("multiworker")
    cluster = {"worker": [f"localhost:{port}" for port in free_ports(2)]}
    configs = {
        "single": None,
        **{f"worker{i}": {"cluster": cluster, "task": {"type": "worker", "index": i}} for i in range(2)},
    }
    processes, logs = {}, {}
    start = time.monotonic()
    try:
        for name, tf_config in configs.items():
            logs[name] = open(out / f"{name}.log", "w")
            log_dir = out / ("logs-single" if tf_config is None else "logs")  # the workers share one
            processes[name] = subprocess.Popen(
                [sys.executable, str(WORKER), str(out / name), str(log_dir)],
                cwd=REPO,
                env=_env(tf_config),
                stdout=logs[name],
                stderr=subprocess.STDOUT,
            )
        for name, process in processes.items():
            remaining = max(1.0, TIMEOUT_S - (time.monotonic() - start))
            try:
                process.wait(timeout=remaining)
            except subprocess.TimeoutExpired:
                pytest.fail(
                    f"{name} did not finish within {TIMEOUT_S} s; log:\n" + (out / f"{name}.log").read_text()[-3000:]
                )
            assert process.returncode == 0, f"{name} failed:\n" + (out / f"{name}.log").read_text()[-3000:]
    finally:
        for process in processes.values():  # a worker whose peer died would wait for it forever
            if process.poll() is None:
                process.kill()
                process.wait()
        for handle in logs.values():
            handle.close()
    print(f"three processes: {time.monotonic() - start:.1f} s")
    return {
        name: (json.loads((out / f"{name}.json").read_text()), np.load(out / f"{name}.npz"), out / f"{name}.keras")
        for name in configs
    } | {"logs": out / "logs", "logs-single": out / "logs-single"}


def _weights(npz, kind: str) -> list[np.ndarray]:
    return [npz[f"{kind}_{i}"] for i in range(sum(f.startswith(kind) for f in npz.files))]


def test_each_worker_is_fed_its_half_of_every_global_batch(runs):
    single, w0, w1 = (runs[name] for name in ("single", "worker0", "worker1"))
    assert single[0]["replicas"] == 1 and w0[0]["replicas"] == w1[0]["replicas"] == 2
    steps = single[0]["steps_per_epoch"]
    assert steps == w0[0]["steps_per_epoch"] == w1[0]["steps_per_epoch"] == 9
    rows = []
    for i in range(steps):
        whole, first, second = (run[1][f"target_out_{i}"] for run in (single, w0, w1))
        np.testing.assert_array_equal(np.concatenate([first, second]), whole)
        rows.append((len(first), len(second)))
    assert all(a - b in (0, 1) for a, b in rows)  # halves (the first gets the odd row)
    assert any(a != b for a, b in rows) and any(a == 4 for a, _ in rows)  # full and partial batches both occur


def test_two_workers_give_the_one_process_losses_and_weights(runs):
    single, w0, w1 = (runs[name] for name in ("single", "worker0", "worker1"))
    for worker in (w0, w1):
        assert len(worker[0]["steps"]) == len(single[0]["steps"]) == 18  # 2 epochs x 9 steps
        for name in ("loss", "accuracy"):
            np.testing.assert_allclose(
                [s[name] for s in worker[0]["steps"]], [s[name] for s in single[0]["steps"]], rtol=1e-5
            )
        np.testing.assert_allclose(
            [s["weight_sum"] for s in worker[0]["steps"]],
            [s["weight_sum"] for s in single[0]["steps"]],
            rtol=1e-5,
            atol=1e-4,
        )
        for a, b in zip(_weights(worker[1], "initial"), _weights(single[1], "initial")):
            np.testing.assert_array_equal(a, b)
        for a, b in zip(_weights(worker[1], "final"), _weights(single[1], "final")):
            np.testing.assert_allclose(a, b, rtol=0, atol=1e-4)
    for a, b in zip(_weights(w0[1], "final"), _weights(w1[1], "final")):  # the replicas stay in sync
        np.testing.assert_array_equal(a, b)
    # It trained: not a comparison of two idle models.
    losses = [s["loss"] for s in single[0]["steps"]]
    assert losses[-1] < losses[0] - 0.3
    change = max(
        float(np.abs(a - b).max()) for a, b in zip(_weights(single[1], "final"), _weights(single[1], "initial"))
    )
    assert change > 1e-2


def test_every_worker_saves_the_trained_model(runs):
    """Each worker saved its model (worker 0's is the one to keep); it reloads with the final weights."""
    from seq2seq_keras.training import load_model

    for name in ("worker0", "worker1"):
        _, npz, saved = runs[name]
        for a, b in zip(load_model(saved).get_weights(), _weights(npz, "final")):
            np.testing.assert_array_equal(a, b)


def test_only_the_chief_writes_the_tensorboard_summaries(runs):
    """Both workers train with the package's TensorBoard callbacks on one log folder: the chief (worker 0)
    wrote every epoch's losses and attention summaries there once, worker 1 nothing; the losses are the
    one-process run's, and worker 1 still kept its snapshots in memory."""
    import tensorflow as tf

    from seq2seq_keras.evaluation.attention_snapshots import AER_TAG, RUN_NAME

    def events(folder):
        found = {}
        for file in sorted(folder.glob("*tfevents*")):
            for event in tf.compat.v1.train.summary_iterator(str(file)):
                for value in event.summary.value:
                    found.setdefault(value.tag, []).append(
                        (
                            event.step,
                            float(tf.make_ndarray(value.tensor))
                            if value.tensor.dtype == tf.float32.as_datatype_enum
                            else None,
                        )
                    )
        return found

    chief, other = runs["worker0"][0]["pid"], runs["worker1"][0]["pid"]
    files = sorted(p for p in runs["logs"].rglob("*") if p.is_file())
    assert {p.parent.name for p in files} == {"train", RUN_NAME}
    assert all(p.name.split(".")[-3] == str(chief) for p in files), (chief, other, [p.name for p in files])
    epochs = list(range(2))
    written = events(runs["logs"] / "train")
    assert [step for step, _ in written["epoch_loss"]] == epochs
    reference = events(runs["logs-single"] / "train")["epoch_loss"]
    np.testing.assert_allclose([v for _, v in written["epoch_loss"]], [v for _, v in reference], rtol=1e-5)
    assert [step for step, _ in events(runs["logs"] / RUN_NAME)["attention/sentence_0"]] == epochs
    assert AER_TAG not in events(runs["logs"] / RUN_NAME)  # the one watched sentence has no gold links
    assert runs["worker1"][0]["snapshot_epochs"] == runs["worker0"][0]["snapshot_epochs"] == [-1, *epochs]
