"""``model.fit`` under ``tf.distribute.MirroredStrategy`` equals one device for the same global batch.

Two logical CPU devices (``tf.config.set_logical_device_configuration``) stand in
for two GPUs. They must be configured before TensorFlow initialises its devices, so
the comparison runs in a fresh Python process. The custom ``train_step``
normalises the loss by the real target tokens of the *global* batch (an
``all_reduce`` over replicas) and the replicas' gradients are summed, so each step
must produce the same update as one device seeing the whole batch: the same loss
trajectory and final weights, to float rounding.
"""

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest

SCRIPT = textwrap.dedent(
    """
    import json, os, sys
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()]
    )
    import keras
    from seq2seq_keras import Seq2Seq, TextProcessor
    from seq2seq_keras.data import load_corpus, make_dataset

    input_feeding = sys.argv[1] == "feed"
    pairs = load_corpus("builtin-ko-en", limit=36, seed=3)
    src = TextProcessor.for_language("ko").adapt(pairs.source)
    tgt = TextProcessor.for_language("en", add_start_end=True).adapt(pairs.target)
    # Unshuffled, unbucketed: both runs see exactly the same global batches (8, 8, 8, 8, 4).
    dataset = make_dataset(pairs, src, tgt, batch_size=8, shuffle=False, bucket_boundaries=None)

    from seq2seq_keras.model.seq2seq import masked_token_loss

    batches = list(dataset)

    class Record(keras.callbacks.Callback):
        # Per step: the logged metrics, and the true loss of the global batch before the update.
        def __init__(self):
            super().__init__()
            self.batches = []
        def on_train_batch_begin(self, batch, logs=None):
            (source, target_in), target_out = batches[batch]
            loss_sum, tokens, _ = masked_token_loss(target_out, self.model((source, target_in)))
            self.batches.append({"global_batch_loss": float(loss_sum / tokens)})
        def on_train_batch_end(self, batch, logs=None):
            self.batches[-1].update({k: float(v) for k, v in logs.items()})

    def run(strategy, initial):
        with strategy.scope():
            keras.utils.set_random_seed(0)
            model = Seq2Seq(src, tgt, embedding_dim=8, encoder_units=8, attention="bahdanau", input_feeding=input_feeding)
            model.compile(keras.optimizers.Adam(1e-2, global_clipnorm=5.0))
        if initial is not None:
            model.set_weights(initial)
        start = [w.copy() for w in model.get_weights()]
        record = Record()
        model.fit(dataset, epochs=2, verbose=0, callbacks=[record])
        return start, record.batches, model.get_weights()

    mirrored = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    start, single_logs, single_weights = run(tf.distribute.get_strategy(), None)
    _, mirrored_logs, mirrored_weights = run(mirrored, start)
    print(json.dumps({
        "replicas": mirrored.num_replicas_in_sync,
        "single": single_logs,
        "mirrored": mirrored_logs,
        "max_weight_difference": max(float(abs(a - b).max()) for a, b in zip(single_weights, mirrored_weights)),
        "max_weight_change": max(float(abs(a - b).max()) for a, b in zip(start, single_weights)),
    }))
    """
)


def _run(mode):
    completed = subprocess.run([sys.executable, "-c", SCRIPT, mode], capture_output=True, text=True, timeout=600)
    assert completed.returncode == 0, completed.stderr[-3000:]
    result = json.loads(completed.stdout.strip().splitlines()[-1])
    assert result["replicas"] == 2
    assert len(result["single"]) == len(result["mirrored"]) == 10  # 2 epochs x 5 global batches
    return result


_RESULTS = {}


def _result(mode):
    if mode not in _RESULTS:
        _RESULTS[mode] = _run(mode)
    return _RESULTS[mode]


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["feed", "fast"])
def test_mirrored_strategy_gives_the_one_device_loss_trajectory(mode):
    """Same global batches -> the same loss before every step, and the same final weights."""
    result = _result(mode)
    single = [b["global_batch_loss"] for b in result["single"]]
    mirrored = [b["global_batch_loss"] for b in result["mirrored"]]
    np.testing.assert_allclose(mirrored, single, rtol=1e-5)
    assert single[-1] < single[0] - 0.1  # it trained: not a comparison of two idle models
    assert result["max_weight_change"] > 1e-2
    assert result["max_weight_difference"] < 1e-4


@pytest.mark.slow
def test_mirrored_strategy_reports_the_one_device_metrics():
    """The logged loss and token accuracy are those of the global batch, as on one device."""
    result = _result("feed")
    for name in ("loss", "accuracy"):
        np.testing.assert_allclose(
            [b[name] for b in result["mirrored"]], [b[name] for b in result["single"]], rtol=1e-5
        )


TENSORBOARD_SCRIPT = textwrap.dedent(
    """
    import json, os, sys
    from pathlib import Path
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()]
    )
    import keras
    from seq2seq_keras import Seq2Seq, TextProcessor
    from seq2seq_keras.evaluation.attention_snapshots import tensorboard_callbacks
    from seq2seq_keras.data import load_corpus, make_dataset
    from seq2seq_keras.training import TrainConfig, train

    out = Path(sys.argv[1])
    mirrored = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])

    # The recipe of docs/training.md ("Distributed training"), with the package's TensorBoard callbacks (losses and attention snapshots).
    pairs = load_corpus("builtin-ko-en", limit=36, seed=3)
    src = TextProcessor.for_language("ko").adapt(pairs.source)
    tgt = TextProcessor.for_language("en", add_start_end=True).adapt(pairs.target)
    dataset = make_dataset(pairs, src, tgt, batch_size=8, shuffle=False, bucket_boundaries=None)
    with mirrored.scope():
        model = Seq2Seq(src, tgt, embedding_dim=8, encoder_units=8, attention="bahdanau")
        model.compile(keras.optimizers.Adam(1e-2, global_clipnorm=5.0))
    logging = tensorboard_callbacks(out / "fit-logs", model, before_training=True)
    model.fit(dataset, epochs=2, verbose=0, callbacks=logging)

    # train() (checkpoints every 2 steps, state.json, --tensorboard) with its model built under the strategy.
    config = TrainConfig(limit=120, embedding_dim=8, encoder_units=8, epochs=2, batch_size=16, precision="float32",
                         jit_compile=False, tensorboard=str(out / "train-logs"))
    with mirrored.scope():
        trained, history = train(config, out / "run", verbose=0, checkpoint_every=2)
    print(json.dumps({
        "iterations": type(model.optimizer.iterations.value).__name__,
        "trained_iterations": type(trained.optimizer.iterations.value).__name__,
        "snapshot_epochs": [s.epoch for s in logging[1].snapshots],
        "history": history.history["loss"],
    }))
    """
)


@pytest.mark.slow
def test_tensorboard_callbacks_and_train_run_under_mirrored_strategy(tmp_path):
    """``fit`` with the package's TensorBoard callbacks, and ``train(..., --tensorboard)`` with checkpoints,
    on two mirrored replicas: every epoch's losses and attention summaries are written (the optimizer's
    step counter is a ``MirroredVariable`` there, which ``int()`` cannot read)."""
    import tensorflow as tf

    from seq2seq_keras.evaluation.attention_snapshots import AER_TAG, RUN_NAME
    from seq2seq_keras.training.run_folder import read_state

    completed = subprocess.run(
        [sys.executable, "-c", TENSORBOARD_SCRIPT, str(tmp_path)], capture_output=True, text=True, timeout=600
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    result = json.loads(completed.stdout.strip().splitlines()[-1])
    assert result["iterations"] == result["trained_iterations"] == "MirroredVariable"
    assert result["snapshot_epochs"] == [-1, 0, 1]
    assert read_state(tmp_path / "run")["status"] == "finished" and len(result["history"]) == 2

    def steps(folder, tag):
        return [
            event.step
            for file in sorted(folder.glob("*tfevents*"))
            for event in tf.compat.v1.train.summary_iterator(str(file))
            for value in event.summary.value
            if value.tag == tag
        ]

    for logs in (tmp_path / "fit-logs", tmp_path / "train-logs"):
        assert steps(logs / "train", "epoch_loss") == [0, 1], logs
        assert steps(logs / RUN_NAME, AER_TAG) == [0, 1] and steps(logs / RUN_NAME, "attention/sentence_0") == [0, 1]
