"""What the package saves loads where users load it: dtype policies and optimizer state survive a
``.keras`` round trip into a process whose global policy is the default float32."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import keras
import numpy as np
import pytest
from conftest import TINY_SOURCE, TINY_TARGET

POLICIES = ["float32", "mixed_float16", "mixed_bfloat16"]


def _all_layers(layer):
    return [layer] + [sub for sub in layer._flatten_layers(include_self=False)]


def _build_layers(tiny_processors):
    from seq2seq_keras import BahdanauAttention, Decoder, Encoder, LuongAttention, Seq2Seq

    src, tgt = tiny_processors
    encoder = Encoder(20, 8, 6)
    encoder.build((None, None))
    decoder = Decoder(20, 8, 12, attention="bahdanau")
    decoder.build((None, None), (None, None, 12))
    bahdanau = BahdanauAttention(5)
    bahdanau.build((None, 12), (None, None, 12))
    luong = LuongAttention("general")
    luong.build((None, 12), (None, None, 12))
    model = Seq2Seq(src, tgt, embedding_dim=8, encoder_units=6)
    return {"encoder": encoder, "decoder": decoder, "bahdanau": bahdanau, "luong": luong, "seq2seq": model}


@pytest.mark.parametrize("policy", POLICIES)
def test_every_layer_keeps_its_dtype_policy_through_its_config(policy, tiny_processors):
    """Built under ``policy``, rebuilt from the config under the default float32: every sublayer is ``policy``."""
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(policy)
    try:
        layers = _build_layers(tiny_processors)
    finally:
        keras.config.set_dtype_policy(previous)
    assert keras.config.dtype_policy().name == "float32"
    for name, layer in layers.items():
        config = layer.get_config()
        assert config["dtype"]["config"]["name"] == policy, name  # the base config is kept
        assert {"name", "trainable"} <= set(config), name
        clone = type(layer).from_config(config)
        wrong = [
            (sub.name, sub.dtype_policy.name)
            for sub in _all_layers(clone)
            if sub.dtype_policy.name != policy and not type(sub).__name__ == "TextProcessor"
        ]
        assert wrong == [], (name, wrong)
        assert all(v.dtype == "float32" for v in clone.weights), name  # variables stay float32 under mixed policies


_RELOAD = textwrap.dedent(
    r"""
    import json, sys
    import numpy as np
    import keras
    from seq2seq_keras import Seq2Seq  # registers Seq2Seq and its layers (Keras needs the classes to rebuild the model)
    model = keras.saving.load_model(sys.argv[1])
    data = np.load(sys.argv[2])
    iterations = int(model.optimizer.iterations.numpy())
    loss = model.train_on_batch((data["source"], data["target_in"]), data["target_out"], return_dict=True)["loss"]
    print("RESULT " + json.dumps({
        "global_policy": keras.config.dtype_policy().name,
        "policies": sorted({layer.dtype_policy.name for layer in model._flatten_layers()
                            if type(layer).__name__ != "TextProcessor"}),
        "optimizer": type(model.optimizer).__name__,
        "optimizer_variables": len(model.optimizer.variables),
        "iterations": iterations,
        "next_loss": float(loss),
    }))
    """
)


@pytest.mark.slow
@pytest.mark.parametrize("policy", POLICIES)
def test_a_trained_model_reloads_in_a_fresh_process_with_its_policy_and_optimizer_state(
    policy, tiny_processors, tmp_path
):
    """Train under ``policy``, save ``.keras``; a fresh default-policy process loads the same policy, the same
    optimizer (loss-scaled for mixed_float16) at the same iteration, and takes the same next step."""
    from seq2seq_keras import Seq2Seq

    src, tgt = tiny_processors
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(policy)
    try:
        model = Seq2Seq(src, tgt, embedding_dim=8, encoder_units=6)
        model.compile(keras.optimizers.Adam(1e-2))
        source = np.asarray(src(TINY_SOURCE))
        target = np.asarray(tgt(TINY_TARGET))
        batch = ((source, target[:, :-1]), target[:, 1:])
        for _ in range(3):
            model.train_on_batch(*batch)
        path = tmp_path / "model.keras"
        model.save(path)
        np.savez(tmp_path / "batch.npz", source=source, target_in=target[:, :-1], target_out=target[:, 1:])
        expected_loss = model.train_on_batch(*batch, return_dict=True)["loss"]
        expected_variables = len(model.optimizer.variables)
        expected_optimizer = type(model.optimizer).__name__
    finally:
        keras.config.set_dtype_policy(previous)

    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    proc = subprocess.run(
        [sys.executable, "-c", _RELOAD, str(path), str(tmp_path / "batch.npz")],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    line = next((out for out in proc.stdout.splitlines() if out.startswith("RESULT ")), None)
    assert proc.returncode == 0 and line, proc.stderr[-3000:]
    result = json.loads(line[len("RESULT ") :])
    assert result["global_policy"] == "float32"
    assert result["policies"] == [policy]
    assert result["optimizer"] == expected_optimizer == ("LossScaleOptimizer" if policy == "mixed_float16" else "Adam")
    assert result["optimizer_variables"] == expected_variables
    assert result["iterations"] == 3
    assert "Skipping variable loading for optimizer" not in proc.stderr
    assert result["next_loss"] == pytest.approx(float(expected_loss), rel=1e-6)


# ------------------------------------------------------------------ files written by an earlier layout
BEFORE_MOVE = Path(__file__).parents[1] / "fixtures" / "saved_before_move"


@pytest.mark.parametrize("kind", ["gru-bahdanau-feeding", "transformer"])
def test_a_keras_file_saved_by_the_flat_layout_loads_and_translates_as_it_did(kind):
    """A ``.keras`` file written when the package was one flat folder loads and translates as it did then."""
    from seq2seq_keras.training import load_model

    model = load_model(BEFORE_MOVE / f"{kind}.keras")
    recorded = json.loads((BEFORE_MOVE / "translations.json").read_text(encoding="utf-8"))[kind]
    got = model.translate(["나는 학생이다", "그녀는 의사였다."])
    assert [t.text for t in got] == [r["text"] for r in recorded]
    for translation, then in zip(got, recorded):
        np.testing.assert_allclose(np.asarray(translation.attention), np.asarray(then["attention"]), atol=1e-4)


def test_a_savedmodel_exported_by_the_flat_layout_is_servable_and_equals_its_keras_file():
    """check-servable accepts an export written by the flat layout (TF Serving's loader, its recorded decoding
    options read back) and finds its every signature equal to the ``.keras`` file loaded by today's code."""
    from seq2seq_keras.serving.check import check_servable

    report = check_servable(
        BEFORE_MOVE / "saved_models" / "before_move" / "1", model=BEFORE_MOVE / "gru-bahdanau-feeding.keras"
    )
    assert report.ok, report.format()
    assert any("parity" in fact and "skipped" not in fact for fact in report.facts), report.format()
