"""The learning rate over training: an optional linear warm-up, then constant or inverse-square-root decay.

:class:`WarmupSchedule` is a Keras ``LearningRateSchedule`` (saved with the optimizer in
``model.keras``, so a resumed run continues on the same curve). :func:`learning_rate` gives what
:class:`~seq2seq_keras.training.config.TrainConfig` asks for: a plain float (Adam's constant rate,
the default) or a schedule.
"""

from __future__ import annotations

import keras
from keras import ops

from .config import LR_DECAYS as DECAYS  # after the warm-up: "none" keeps the peak, "inverse-sqrt" decays it


@keras.saving.register_keras_serializable(package="seq2seq_keras")
class WarmupSchedule(keras.optimizers.schedules.LearningRateSchedule):
    """``lr(s) = peak * min(s / warmup_steps, 1)`` over optimizer updates ``s = 1, 2, ...``, then,
    with ``decay="inverse-sqrt"``, ``peak * sqrt(warmup_steps / s)`` after the warm-up.

    Keras calls a schedule with the number of updates already made (0 for the first), so update
    ``s`` uses ``step + 1``: the first update is made at ``peak / warmup_steps``, never at 0.

    Args:
        peak: the rate reached at the end of the warm-up (> 0).
        warmup_steps: updates of linear warm-up (0: none; the decay, if any, then counts from 1).
        decay: one of :data:`DECAYS`.

    Raises:
        ValueError: a rate <= 0, negative warm-up steps, an unknown decay, or ``"inverse-sqrt"``
            without warm-up steps (its curve is defined by them).
    """

    def __init__(self, peak: float, warmup_steps: int, decay: str = "none"):
        if not peak > 0:
            raise ValueError(f"peak must be > 0, got {peak!r}.")
        if int(warmup_steps) < 0:
            raise ValueError(f"warmup_steps must be >= 0, got {warmup_steps!r}.")
        if decay not in DECAYS:
            raise ValueError(f"decay={decay!r}: choose one of {DECAYS}.")
        if decay == "inverse-sqrt" and int(warmup_steps) == 0:
            raise ValueError("decay='inverse-sqrt' needs warmup_steps > 0: the decay is sqrt(warmup_steps / step).")
        self.peak, self.warmup_steps, self.decay = float(peak), int(warmup_steps), decay

    def __call__(self, step):
        s = ops.cast(step, "float32") + 1.0
        warm = float(max(self.warmup_steps, 1))
        factor = ops.minimum(s / warm, 1.0) if self.warmup_steps else ops.ones_like(s)
        if self.decay == "inverse-sqrt":
            factor = ops.minimum(factor, ops.sqrt(warm / s))
        return self.peak * factor

    def get_config(self):
        return {"peak": self.peak, "warmup_steps": self.warmup_steps, "decay": self.decay}


def learning_rate(rate: float, warmup_steps: int = 0, decay: str = "none"):
    """Adam's ``learning_rate`` argument: ``rate`` itself when there is neither warm-up nor decay,
    else a :class:`WarmupSchedule` peaking at ``rate``."""
    if not warmup_steps and decay == "none":
        return rate
    return WarmupSchedule(rate, warmup_steps, decay)
