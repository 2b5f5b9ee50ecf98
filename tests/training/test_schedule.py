"""The learning-rate schedule: warm-up and decay at given steps, by hand; saved with the optimizer."""

import keras
import numpy as np
import pytest

from seq2seq_keras.training.config import TrainConfig
from seq2seq_keras.training.schedule import WarmupSchedule, learning_rate


def _rates(schedule, steps):
    return [float(schedule(step)) for step in steps]  # Keras passes the updates already made: 0 first


def test_linear_warm_up_then_constant_or_inverse_square_root_decay_at_given_steps():
    # Update s = step + 1: rate 1e-3 * s / 4 while warming up, then 1e-3, or 1e-3 * sqrt(4 / s).
    flat = WarmupSchedule(1e-3, 4)
    assert _rates(flat, [0, 1, 3, 4, 99]) == pytest.approx([2.5e-4, 5e-4, 1e-3, 1e-3, 1e-3])
    decayed = WarmupSchedule(1e-3, 4, "inverse-sqrt")
    assert _rates(decayed, [0, 3, 8, 15, 399]) == pytest.approx([2.5e-4, 1e-3, 1e-3 * (4 / 9) ** 0.5, 5e-4, 1e-4])
    assert learning_rate(1e-3) == 1e-3  # neither: Adam's constant rate, no schedule object
    assert isinstance(learning_rate(1e-3, 10), WarmupSchedule)


@pytest.mark.parametrize(
    "args, words",
    [
        ((0.0, 4), "peak must be > 0"),
        ((1e-3, -1), "warmup_steps must be >= 0"),
        ((1e-3, 4, "cosine"), "choose one of"),
        ((1e-3, 0, "inverse-sqrt"), "needs warmup_steps > 0"),
    ],
)
def test_a_schedule_that_cannot_work_is_refused(args, words):
    with pytest.raises(ValueError, match=words):
        WarmupSchedule(*args)


def test_the_schedule_is_saved_with_the_optimizer_and_the_run_settings_build_it():
    optimizer = keras.optimizers.Adam(WarmupSchedule(2e-3, 10, "inverse-sqrt"))
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(optimizer))
    assert isinstance(restored._learning_rate, WarmupSchedule)
    assert restored._learning_rate.get_config() == {"peak": 2e-3, "warmup_steps": 10, "decay": "inverse-sqrt"}
    with pytest.raises(ValueError, match="needs warmup_steps > 0"):
        TrainConfig(lr_decay="inverse-sqrt")
    with pytest.raises(ValueError, match="label_smoothing must be a finite number >= 0 and < 1"):
        TrainConfig(label_smoothing=1.0)
    with pytest.raises(ValueError, match="lr_decay="):
        TrainConfig(lr_decay="cosine")


def test_train_settings_compile_the_schedule_and_the_smoothing(tiny_processors):
    from seq2seq_keras.training.config import build_model

    src, tgt = tiny_processors
    config = TrainConfig(embedding_dim=8, encoder_units=6, learning_rate=2e-3, warmup_steps=4, label_smoothing=0.1)
    model = build_model(config, src, tgt)
    assert model.label_smoothing == 0.1
    schedule = model.optimizer._learning_rate
    assert isinstance(schedule, WarmupSchedule) and float(schedule(0)) == pytest.approx(5e-4)
    plain = build_model(TrainConfig(embedding_dim=8, encoder_units=6), src, tgt)
    assert plain.label_smoothing == 0.0 and np.isclose(float(plain.optimizer.learning_rate), 1e-3)
