"""Quality after a fixed wall-clock training budget, and the SavedModel each run exports.

Each model trains in its own process (so that its peak RSS is its own) for the same
wall-clock budget, counted from the first call of ``fit`` (tracing and XLA
compilation included: they are part of what a user waits for). Then, outside the
budget: greedy translation of the test split, corpus BLEU and chrF with sacrebleu
(lower-cased, BLEU's default 13a tokenisation) against the raw English references,
the same for every model, and a SavedModel export for the serving measurements.

The quality curve (BLEU against training wall-clock): at fixed fractions of the budget
(:data:`CURVE_FRACTIONS`; for 15 minutes: 0.5, 1, 1.5, 2, 3, 4, 5, 6, 7.5, 10 and
12.5 minutes, and the end) the weights are saved, with the clock paused; after
training, each snapshot is loaded back and scored on a fixed validation slice (the
first :data:`CURVE_SENTENCES` pairs of the validation split: the test split is never
used for anything but the final figures). Scoring outside the training process's
clock and after its peak-RSS reading keeps both figures what they were without it.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from . import tutorial_reference
from .measure import peak_rss_mb
from .training_speed import ModelSize, Variant, build_our_model, our_dataset, our_text_processors

#: When the quality curve takes a weights snapshot, as fractions of the training budget.
CURVE_FRACTIONS = (1 / 30, 1 / 15, 1 / 10, 2 / 15, 1 / 5, 4 / 15, 1 / 3, 2 / 5, 1 / 2, 2 / 3, 5 / 6)
#: Validation pairs each snapshot is scored on (the first ones of the validation split).
CURVE_SENTENCES = 500


class TimeBudget(keras.callbacks.Callback):
    """Stops ``fit`` after the first batch that ends past ``seconds`` of training time; prints progress.

    With ``snapshot`` (a function of the snapshot's index returning nothing), calls it
    at the first batch end past each of ``snapshot_at`` seconds and once more when the
    budget runs out; the time a snapshot takes is not training time (the clock pauses).
    ``snapshots`` lists ``{"index", "train_seconds", "steps"}`` for each one taken.
    """

    def __init__(
        self,
        seconds: float,
        report_every_s: float = 60.0,
        label: str = "",
        snapshot=None,
        snapshot_at: Sequence[float] = (),
    ):
        super().__init__()
        self.seconds = float(seconds)
        self.report_every_s = report_every_s
        self.label = label
        self.steps = 0
        self.epochs_done = 0  # epochs completed before the budget ran out
        self.stopped = False
        self.last_logs: dict = {}
        self.snapshot = snapshot
        self.pending = sorted(float(t) for t in snapshot_at if 0 < t < seconds)
        self.snapshots: list[dict] = []
        self.paused = 0.0

    def on_train_begin(self, logs=None):
        self.start = self.last_report = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        self.steps += 1
        self.last_logs = dict(logs or {})
        now = time.perf_counter()
        elapsed = self.elapsed
        if now - self.last_report >= self.report_every_s:
            print(
                f"  [{self.label}] {elapsed:.0f}/{self.seconds:.0f} s, {self.steps} steps, "
                f"epoch {self.epochs_done + 1}, loss {self.loss:.3f}",
                flush=True,
            )
            self.last_report = now
        if elapsed >= self.seconds:
            self.model.stop_training = True
            self.stopped = True
            self._take_snapshot(elapsed)
        elif self.pending and elapsed >= self.pending[0]:
            while self.pending and elapsed >= self.pending[0]:
                self.pending.pop(0)
            self._take_snapshot(elapsed)

    def _take_snapshot(self, elapsed: float) -> None:
        if self.snapshot is None:
            return
        start = time.perf_counter()
        index = len(self.snapshots)
        self.snapshot(index)
        self.snapshots.append({"index": index, "train_seconds": elapsed, "steps": self.steps})
        self.paused += time.perf_counter() - start

    def on_epoch_end(self, epoch, logs=None):
        if not self.stopped:  # Keras also ends the epoch that the budget cut short
            self.epochs_done += 1

    @property
    def loss(self) -> float:
        """The last logged training loss (ours: ``loss``, the tutorial's: ``batch_loss``)."""
        return float(self.last_logs.get("loss", self.last_logs.get("batch_loss", float("nan"))))

    @property
    def elapsed(self) -> float:
        """Training seconds since ``fit`` began, snapshot pauses excluded."""
        return time.perf_counter() - self.start - self.paused


def corpus_scores(hypotheses: Sequence[str], references: Sequence[str]) -> dict:
    """sacrebleu corpus BLEU and chrF, both lower-cased; with their signatures."""
    from sacrebleu.metrics import BLEU, CHRF

    bleu, chrf = BLEU(lowercase=True), CHRF(lowercase=True)
    b = bleu.corpus_score(list(hypotheses), [list(references)])
    c = chrf.corpus_score(list(hypotheses), [list(references)])
    return {
        "bleu": float(b.score),
        "chrf": float(c.score),
        "bleu_signature": str(bleu.get_signature()),
        "chrf_signature": str(chrf.get_signature()),
    }


def _decode(values) -> list[str]:
    return [v.decode("utf-8", errors="replace") if isinstance(v, bytes) else str(v) for v in values]


def train_and_evaluate(
    family: str,
    variant: Variant,
    data,
    size: ModelSize,
    budget_s: float,
    workdir: str | Path,
    *,
    eval_limit: int | None = None,
    seed: int = 0,
    beam_width: int = 4,
    curve: bool = True,
    export: bool = True,
) -> dict:
    """Train one model for ``budget_s`` seconds, score the test split, export a SavedModel.

    Returns a JSON-able dict: steps, epochs, seconds, final loss, peak RSS after
    training (MiB), BLEU/chrF (and signatures), the SavedModel path and kind (with
    ``export``; without it, no SavedModel or ``.keras`` file is written); with
    ``curve``, also ``curve``: validation BLEU/chrF of the weights at each snapshot
    (:class:`TimeBudget`), with its training seconds and steps.
    """
    keras.utils.set_random_seed(seed)
    workdir = Path(workdir)
    test = data.test if eval_limit is None else data.test[:eval_limit]
    snapshots = workdir / f"curve-{family}"
    if curve:
        snapshots.mkdir(parents=True, exist_ok=True)
    budget = TimeBudget(
        budget_s,
        label=family,
        snapshot_at=[f * budget_s for f in CURVE_FRACTIONS] if curve else (),
        snapshot=(lambda i: save_weights(model, snapshots / f"{i}.npz")) if curve else None,
    )
    if family == "tutorial":
        model = tutorial_reference.build(
            data.train.source,
            data.train.target,
            embedding_dim=size.embedding_dim,
            units=size.units,
            max_vocab_size=size.vocabulary,
            learning_rate=size.learning_rate,
        )
        dataset = tutorial_reference.make_dataset(data.train.source, data.train.target, size.batch_size, seed=seed)
    else:
        source_text, target_text = our_text_processors(data.train, size.vocabulary)
        model = build_our_model(variant, size, source_text, target_text, seed)
        dataset = our_dataset(variant, data.train, source_text, target_text, size, seed)
    # shuffle=False: the datasets shuffle themselves; Keras ignores the flag for a dataset and warns when it is True
    model.fit(dataset, epochs=1_000_000, callbacks=[budget], verbose=0, shuffle=False)
    trained_s = budget.elapsed
    result = {
        "family": family,
        "variant": variant.to_dict(),
        "steps": budget.steps,
        "epochs": budget.epochs_done,
        "train_seconds": trained_s,
        "final_loss": budget.loss,
        "train_peak_rss_mb": peak_rss_mb(),
        "test_sentences": len(test),
    }
    print(
        f"  [{family}] trained {budget.steps} steps ({budget.epochs_done} full epochs) in {trained_s:.0f} s; "
        f"peak RSS {result['train_peak_rss_mb']:.0f} MiB; translating {len(test)} test sentences",
        flush=True,
    )
    start = time.perf_counter()
    if family == "tutorial":
        path = workdir / "tutorial_savedmodel"
        translator = tutorial_reference.export(model, str(path))
        hypotheses = []
        for i in range(0, len(test), 64):
            out = translator.tf_translate(tf.constant(list(test.source[i : i + 64])))
            hypotheses.extend(_decode(out["text"].numpy()))
        result.update(savedmodel=str(path), kind="tutorial")
    else:
        from seq2seq_keras.decoding.pipeline import translate
        from seq2seq_keras.serving.export import ExportSettings, export_model

        hypotheses = [t.text for t in translate(model, list(test.source))]
    if family != "tutorial" and export:
        path = export_model(
            model,
            f"bench_{family}",
            workdir,
            version=1,
            settings=ExportSettings(beam_width=beam_width),
            write_config=False,  # the warm-up file as `export` writes it: TF Serving replays it at load
        )
        result.update(savedmodel=str(path), kind="seq2seq_keras")
    result["translate_seconds"] = time.perf_counter() - start
    if family != "tutorial" and export:
        # The trained model too, so that a later export (e.g. after a change to the
        # decoding graph) can be served and compared without training again.
        keras_path = workdir / f"bench_{family}.keras"
        try:
            model.save(keras_path)
            result["keras_model"] = str(keras_path)
        except Exception as error:  # the measurements above stand without it
            print(f"  [{family}] could not save {keras_path}: {error}", flush=True)
    result.update(corpus_scores(hypotheses, test.target))
    if curve:
        result["curve"] = quality_curve(family, model, budget.snapshots, snapshots, data.validation[:CURVE_SENTENCES])
        result["curve_sentences"] = min(CURVE_SENTENCES, len(data.validation))
    result["examples"] = [
        {"source": s, "reference": r, "hypothesis": h}
        for s, r, h in list(zip(test.source, test.target, hypotheses))[:5]
    ]
    print(f"  [{family}] BLEU {result['bleu']:.1f}, chrF {result['chrf']:.1f}", flush=True)
    return result


def save_weights(model, path: Path) -> None:
    """Every variable of ``model`` in order, to an ``.npz`` file (the tutorial's model is never
    "built" in Keras' sense, so ``model.save_weights`` refuses it)."""
    np.savez(path, *[v.numpy() for v in model.weights])


def load_weights(model, path: Path) -> None:
    """Assign what :func:`save_weights` wrote back to ``model``'s variables."""
    with np.load(path) as saved:
        values = [saved[f"arr_{i}"] for i in range(len(saved.files))]
    if len(values) != len(model.weights):
        raise ValueError(f"{path} holds {len(values)} arrays for {len(model.weights)} variables")
    for variable, value in zip(model.weights, values):
        variable.assign(value)


def quality_curve(family: str, model, snapshots: list[dict], folder: Path, validation) -> list[dict]:
    """Validation BLEU/chrF of each weights snapshot of ``model`` (loaded back in turn, then deleted).

    Leaves ``model`` holding the last snapshot's weights (the end of the budget).
    """
    if family == "tutorial":
        translator = tutorial_reference.Translator(
            model.encoder, model.decoder, model.input_text_processor, model.output_text_processor
        )

        def hypotheses() -> list[str]:
            out = []
            for i in range(0, len(validation), 64):
                out.extend(
                    _decode(translator.tf_translate(tf.constant(list(validation.source[i : i + 64])))["text"].numpy())
                )
            return out
    else:
        from seq2seq_keras.decoding.pipeline import translate

        def hypotheses() -> list[str]:
            return [t.text for t in translate(model, list(validation.source))]

    points = []
    for snapshot in snapshots:
        path = folder / f"{snapshot['index']}.npz"
        load_weights(model, path)
        scores = corpus_scores(hypotheses(), validation.target)
        points.append(
            {
                "train_seconds": snapshot["train_seconds"],
                "steps": snapshot["steps"],
                "bleu": scores["bleu"],
                "chrf": scores["chrf"],
            }
        )
        path.unlink()
        print(
            f"  [{family}] curve: {snapshot['train_seconds']:.0f} s, {snapshot['steps']} steps: "
            f"validation BLEU {scores['bleu']:.1f}",
            flush=True,
        )
    return points
