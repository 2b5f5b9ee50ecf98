"""One process of ``tests/training/test_multiworker.py``: a small ``Seq2Seq`` trained with ``model.fit``.

    python tests/programs/multiworker_train.py OUT_PREFIX LOG_DIR

With ``TF_CONFIG`` set, the process is one worker of
``tf.distribute.MultiWorkerMirroredStrategy`` (one CPU replica per worker);
without it, the same training runs in one process under the default strategy:
the reference. Both feed ``fit`` the same stream of *global* batches (8 pairs,
length-bucketed, reshuffled every epoch from a fixed seed, one ``repeat()``
iterator as :func:`seq2seq_keras.training.train` does).

Sharding: the dataset's auto-shard policy is ``DATA``. ``tf.distribute`` first
splits every global batch into one piece per replica (its rebatch step; a batch
of 5 gives 3 + 2), *then* shards the stream of pieces, so worker ``i`` keeps
piece ``i`` of every global batch. Every worker runs the whole (cheap) input
pipeline with the same seed, so all of them, and the one-process run, see the
same global batches in the same order. ``Seq2Seq.train_step`` normalises the loss
by the real target tokens of the global batch (an all-reduce) and the workers'
gradients are summed, so each step is the one-process step up to float rounding.
(``FILE`` would shard input files, which this in-memory corpus has none of;
``OFF`` would feed every worker whole global batches.)

It trains with the package's TensorBoard callbacks (losses, attention snapshots) logging
to ``LOG_DIR``, the same folder for both workers: only the chief writes there.

Writes ``OUT_PREFIX.json`` (per step: the logged loss and accuracy, and the sum of
all weights after the step; the process id, which TensorBoard's event file names
carry), ``OUT_PREFIX.npz`` (initial and final weights, and the target batches this
process's replica was fed in epoch 1) and ``OUT_PREFIX.keras``.
"""

from __future__ import annotations

import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

GLOBAL_BATCH = 8
EPOCHS = 2


def strategy() -> tf.distribute.Strategy:
    """``MultiWorkerMirroredStrategy`` under ``TF_CONFIG`` (made first: it sets up the cluster), else the default."""
    if os.environ.get("TF_CONFIG"):
        return tf.distribute.MultiWorkerMirroredStrategy()
    return tf.distribute.get_strategy()


def main(out_prefix: str, log_dir: str) -> None:
    chosen = strategy()
    import keras

    from seq2seq_keras import Seq2Seq, TextProcessor
    from seq2seq_keras.data import load_corpus, make_dataset
    from seq2seq_keras.evaluation.attention_snapshots import tensorboard_callbacks

    pairs = load_corpus("builtin-ko-en", limit=44, seed=3)
    src = TextProcessor.for_language("ko").adapt(pairs.source)
    tgt = TextProcessor.for_language("en", add_start_end=True).adapt(pairs.target)

    def global_batches():
        """A fresh pipeline (its own shuffle-seed generator): the same epochs every time it is made."""
        dataset = make_dataset(pairs, src, tgt, batch_size=GLOBAL_BATCH, shuffle=True, seed=5)
        options = tf.data.Options()
        options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
        return dataset.with_options(options), int(dataset.cardinality())

    # What this process's replica is fed in epoch 1, read from a second, identical pipeline
    # distributed as fit distributes its own: the test checks that the workers' pieces put
    # together are the one-process run's global batches.
    probe, steps_per_epoch = global_batches()
    iterator = iter(chosen.experimental_distribute_dataset(probe))
    pieces = [chosen.experimental_local_results(next(iterator)[1])[0].numpy() for _ in range(steps_per_epoch)]

    dataset, _ = global_batches()
    dataset = dataset.repeat()

    with chosen.scope():
        keras.utils.set_random_seed(0)
        model = Seq2Seq(src, tgt, embedding_dim=8, encoder_units=8, attention="bahdanau")
        model.compile(keras.optimizers.Adam(1e-2, global_clipnorm=5.0))
    initial = [np.asarray(w) for w in model.get_weights()]

    steps = []

    class Record(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            weight_sum = sum(float(np.sum(w, dtype=np.float64)) for w in self.model.get_weights())
            steps.append({**{k: float(v) for k, v in (logs or {}).items()}, "weight_sum": weight_sum})

    # One watched sentence keeps the callbacks' cost small.
    logging = tensorboard_callbacks(log_dir, model, sentences=["나는 학생이다"])
    model.fit(dataset, steps_per_epoch=steps_per_epoch, epochs=EPOCHS, verbose=0, callbacks=[Record(), *logging])
    final = [np.asarray(w) for w in model.get_weights()]
    model.save(out_prefix + ".keras")  # every worker saves (its own path), as docs/training.md says
    np.savez(
        out_prefix + ".npz",
        **{f"initial_{i}": w for i, w in enumerate(initial)},
        **{f"final_{i}": w for i, w in enumerate(final)},
        **{f"target_out_{i}": piece for i, piece in enumerate(pieces)},
    )
    with open(out_prefix + ".json", "w", encoding="utf-8") as f:
        json.dump(
            {
                "replicas": chosen.num_replicas_in_sync,
                "steps_per_epoch": steps_per_epoch,
                "steps": steps,
                "pid": os.getpid(),
                "snapshot_epochs": [s.epoch for s in logging[1].snapshots],
            },
            f,
        )


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
