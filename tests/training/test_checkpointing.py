"""checkpointing.py and atomic.py on their own: atomic writes, temporaries, commit records, the callback.

test_training.py drives the same code through whole training runs (kills, Ctrl-C, a full disk).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import keras
import numpy as np
import pytest

from seq2seq_keras import atomic
from seq2seq_keras.atomic import atomic_path, atomic_write_text, file_sha256, remove_temporaries
from seq2seq_keras.training.checkpointing import (
    RECORD_FILE,
    CheckpointError,
    CheckpointRecord,
    SafeBackupAndRestore,
    read_records,
)


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


# ----------------------------------------------------------------------------- atomic writes
def test_atomic_write_failing_half_way_keeps_the_previous_file(tmp_path):
    target = tmp_path / "notes.txt"
    atomic_write_text(target, "previous")
    with pytest.raises(RuntimeError, match="writer died"):
        with atomic_path(target) as tmp:
            Path(tmp).write_text("half of the new cont")
            assert Path(tmp).parent == tmp_path  # same folder, so os.replace is a rename
            raise RuntimeError("writer died")
    assert target.read_text() == "previous"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]  # no temporary left behind
    atomic_write_text(target, "new")
    assert target.read_text() == "new"
    assert oct(target.stat().st_mode & 0o777) == oct(0o666 & ~_umask())  # not mkstemp's 0600


def test_ctrl_c_during_an_atomic_write_keeps_the_previous_file(tmp_path):
    target = tmp_path / "state.json"
    atomic_write_text(target, '{"epoch": 1}')
    with pytest.raises(KeyboardInterrupt):
        with atomic_path(target) as tmp:
            Path(tmp).write_text('{"epo')
            raise KeyboardInterrupt
    assert json.loads(target.read_text()) == {"epoch": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"]


def test_atomic_write_is_utf8_and_keep_suffix_ends_the_temporary_name(tmp_path):
    atomic_write_text(tmp_path / "ko.txt", "나는 학생이다.")
    assert (tmp_path / "ko.txt").read_bytes() == "나는 학생이다.".encode()
    with atomic_path(tmp_path / "model.keras", keep_suffix=".keras") as tmp:
        assert tmp.endswith(".tmp.keras") and Path(tmp).name.startswith(".model.keras.")
        Path(tmp).write_bytes(b"zip")
    assert (tmp_path / "model.keras").read_bytes() == b"zip"


def test_remove_temporaries_deletes_only_what_interrupted_writes_left(tmp_path):
    leftovers = [".model.keras.abc123.tmp.keras", ".state.json.x1.tmp", ".w.x.tmp.weights.h5"]
    keep = ["model.keras", "state.json", ".hidden", "notes.tmp", "ckpt-e0001-b000000-s00000010.keras"]
    for name in leftovers + keep:
        (tmp_path / name).write_text("x")
    (tmp_path / ".folder.tmp").mkdir()  # a folder is never a temporary file
    removed = remove_temporaries(tmp_path)
    assert sorted(p.name for p in removed) == sorted(leftovers)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(keep + [".folder.tmp"])
    assert remove_temporaries(tmp_path / "missing") == []


def test_file_sha256_and_the_atomic_module_is_what_checkpointing_re_exports(tmp_path):
    import hashlib

    (tmp_path / "f").write_bytes(b"abc" * 1000)
    assert file_sha256(tmp_path / "f") == hashlib.sha256(b"abc" * 1000).hexdigest()
    assert atomic_write_text is atomic.atomic_write_text and remove_temporaries is atomic.remove_temporaries


# ----------------------------------------------------------------------------- records
def _record(**changes) -> CheckpointRecord:
    values = dict(
        epoch=2,
        batch=0,
        step=20,
        weights="ckpt-e0002-b000000-s00000020.keras",
        sha256="0" * 64,
        seed_states=[[1, 2]],
        history={"loss": [1.5, 1.2]},
    )
    return CheckpointRecord(**{**values, **changes})


def test_records_round_trip_newest_first_and_ignore_unknown_fields(tmp_path):
    records = [_record(epoch=3, step=30, weights="b.keras"), _record()]
    values = {"format": 1, "records": [{**r.to_dict(), "added_later": True} for r in records]}
    (tmp_path / RECORD_FILE).write_text(json.dumps(values))
    assert read_records(tmp_path) == records
    assert read_records(tmp_path / "no-checkpoint-yet") == []


def test_describe_tells_an_epoch_end_from_a_mid_epoch_record():
    assert _record().at_epoch_end and _record().describe() == "the end of epoch 2 (step 20)"
    mid = _record(batch=4, step=24)
    assert not mid.at_epoch_end and mid.describe() == "epoch 3, batch 4 (step 24)"


@pytest.mark.parametrize("text", ["not json", '{"records": [{"epoch": 1}]}', '{"format": 1}', "[1, 2]"])
def test_an_unreadable_record_file_is_a_checkpoint_error_that_says_what_to_do(tmp_path, text):
    (tmp_path / RECORD_FILE).write_text(text)
    with pytest.raises(CheckpointError, match="is not a checkpoint record.*delete"):
        read_records(tmp_path)


# ----------------------------------------------------------------------------- the callback
def _tiny_model(seed=0):
    keras.utils.set_random_seed(seed)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    model.compile(keras.optimizers.Adam(0.1), loss="mse")
    return model


def test_commit_restore_keep_and_sweep(tmp_path):
    """Commits are records naming a weights file by SHA-256; ``keep`` bounds them, the sweep removes the
    rest and leftover temporaries; restore loads the newest, and falls back past a corrupt file."""
    folder = tmp_path / "checkpoint"
    x, y = np.ones((4, 3), "float32"), np.zeros((4, 2), "float32")
    model = _tiny_model()
    callback = SafeBackupAndRestore(folder, keep=2)
    callback.set_model(model)
    weights = []
    for epoch in (1, 2, 3):
        model.fit(x, y, epochs=1, verbose=0)
        (folder / ".leftover.tmp").parent.mkdir(exist_ok=True)
        (folder / ".leftover.tmp").write_text("x")
        callback._commit(epoch, 0)
        weights.append([np.asarray(w) for w in model.get_weights()])
    records = read_records(folder)
    assert [r.epoch for r in records] == [3, 2]
    assert sorted(p.name for p in folder.iterdir()) == sorted([RECORD_FILE] + [r.weights for r in records])
    assert all(file_sha256(folder / r.weights) == r.sha256 for r in records)

    fresh = _tiny_model(seed=1)
    assert SafeBackupAndRestore(folder).restore(fresh).epoch == 3
    for got, want in zip(fresh.get_weights(), weights[2]):
        np.testing.assert_array_equal(got, want)

    (folder / records[0].weights).write_bytes(b"not the committed file")
    fresh = _tiny_model(seed=1)
    with pytest.warns(UserWarning, match="Skipped unreadable checkpoints"):
        assert SafeBackupAndRestore(folder).restore(fresh).epoch == 2  # the newest is corrupt: the one before
    for got, want in zip(fresh.get_weights(), weights[1]):
        np.testing.assert_array_equal(got, want)

    (folder / records[1].weights).unlink()
    with pytest.raises(CheckpointError, match="missing"):
        SafeBackupAndRestore(folder).restore(_tiny_model())
