"""TrainConfig: every setting checked when the configuration is made, by its field's own check."""

import dataclasses

import pytest

from seq2seq_keras.training.config import RESERVED_TOKEN_COUNT, TrainConfig


def test_reserved_token_count_is_the_text_processors():
    from seq2seq_keras.text import RESERVED_TOKENS, TextProcessor

    assert RESERVED_TOKEN_COUNT == len(RESERVED_TOKENS)
    TrainConfig(max_vocabulary=RESERVED_TOKEN_COUNT + 1)  # the smallest the config takes, TextProcessor takes too
    TextProcessor.for_language("en", max_tokens=RESERVED_TOKEN_COUNT + 1)
    with pytest.raises(ValueError, match="max_vocabulary must be >= 5"):
        TrainConfig(max_vocabulary=RESERVED_TOKEN_COUNT)
    with pytest.raises(ValueError, match="max_tokens"):
        TextProcessor.for_language("en", max_tokens=RESERVED_TOKEN_COUNT)


@pytest.mark.parametrize(
    "values, error, words",
    [
        (dict(encoder_units=0), ValueError, "encoder_units must be >= 1, got 0"),
        (dict(epochs=2.5), TypeError, "epochs must be an integer"),
        (dict(epochs=True), TypeError, "epochs must be an integer"),
        (dict(dropout=1.0), ValueError, "dropout must be a finite number >= 0 and < 1"),
        (dict(learning_rate=float("nan")), ValueError, "learning_rate must be a finite number > 0"),
        (dict(clipnorm=-1.0), ValueError, "clipnorm must be a finite number >= 0 (0 disables)"),
        (dict(batch_tokens=0), ValueError, "batch_tokens must be >= 1, got 0"),
        (dict(limit=0), ValueError, "limit must be >= 1"),
        (dict(seed=-1), ValueError, "seed must be >= 0"),
        (
            dict(architecture="transformer", model_dim=130),
            ValueError,
            "model_dim=130 must be a multiple of num_heads=4",
        ),
        (dict(architecture="transformer", model_dim=9, num_heads=3), ValueError, "model_dim must be even"),
    ],
)
def test_a_setting_out_of_range_is_refused_naming_it(values, error, words):
    with pytest.raises(error, match=words.replace("(", r"\(").replace(")", r"\)")):
        TrainConfig(**values)


def test_valid_settings_pass_through_and_none_means_no_limit():
    config = TrainConfig(limit=None, max_vocabulary=None, max_length=None, clipnorm=None, epochs=0, learning_rate=1)
    assert config.learning_rate == 1.0 and config.epochs == 0 and config.limit is None
    assert TrainConfig.from_json(config.to_json()) == config
    # RNN runs ignore the Transformer's sizes, so they are not held to its rule
    assert TrainConfig(model_dim=130).model_dim == 130
    assert dataclasses.replace(TrainConfig(), encoder_units=8).encoder_units == 8


def test_a_config_written_before_a_setting_existed_resumes_as_it_trained():
    """``batch_tokens`` (default 1024) did not exist before: a run folder without it trained uncapped."""
    import json

    old = json.loads(TrainConfig().to_json())
    del old["batch_tokens"]
    assert TrainConfig.from_json(json.dumps(old)).batch_tokens is None
    assert TrainConfig.from_json(TrainConfig().to_json()).batch_tokens == 1024
