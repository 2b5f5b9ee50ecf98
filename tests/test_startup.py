"""startup.py: the CLI is quiet from start to end, whatever TF_CPP_MIN_LOG_LEVEL says, and
SEQ2SEQ_KERAS_TF_LOGS=all shows every line."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from seq2seq_keras.startup import _STARTUP_CHATTER

ROOT = Path(__file__).resolve().parents[1]
_NOTICE = (
    "E0000 00:00:1796545478.345080   22535 util.cc:131] oneDNN supports {} only on platforms with AVX-512. "
    "Falling back to the default Eigen-based implementation if present."
)


def test_the_onednn_notice_is_dropped_for_integer_and_bool_types_only():
    """The notice about an integer or bool type says nothing (TensorFlow's own kernel runs, as without
    oneDNN); one about a floating-point type would mean a slower mixed-precision run, so it is kept."""
    for dtype in ("DT_BOOL", "DT_INT32", "DT_INT64", "DT_UINT8", "DT_INT8", "DT_UINT16"):
        assert _STARTUP_CHATTER.match(_NOTICE.format(dtype)), dtype
    for dtype in ("DT_HALF", "DT_BFLOAT16", "DT_FLOAT", "DT_STRING"):
        assert not _STARTUP_CHATTER.match(_NOTICE.format(dtype)), dtype
    assert not _STARTUP_CHATTER.match("E0000 00:00:1 util.cc:131] oneDNN supports DT_BOOL only on platforms")


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    from seq2seq_keras.cli.commands import main

    out = tmp_path_factory.mktemp("startup") / "run"
    argv = ["train", "--data", "builtin-ko-en", "--limit", "200", "--epochs", "1", "--out", str(out)]
    assert main(argv + ["--embedding-dim", "8", "--encoder-units", "8"]) == 0
    return out


def _translate(run: Path, **env) -> subprocess.CompletedProcess:
    """``seq2seq-keras translate`` in a fresh process (TensorFlow's C++ logs go to its fd 2)."""
    base = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL", "SEQ2SEQ_KERAS_TF_LOGS")}
    result = subprocess.run(
        [sys.executable, "-m", "seq2seq_keras.cli", "translate", "--model", str(run), "나는 학생이다"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={**base, "PYTHONPATH": str(ROOT), **env},
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("나는 학생이다 -> "), result.stdout
    return result


@pytest.mark.parametrize("level", [None, "2"], ids=["default", "TF_CPP_MIN_LOG_LEVEL=2"])
def test_a_command_prints_nothing_on_stderr(tiny_run, level):
    """translate runs the encoder's GRUs (Keras transposes their bool mask) and the decoding loop (int32
    transposes): without the start-up filter TensorFlow prints ``oneDNN supports DT_BOOL only on platforms with
    AVX-512`` in the middle of the run. With the user's own level (notebook 02 sets 2) it stays quiet too."""
    result = _translate(tiny_run, **({} if level is None else {"TF_CPP_MIN_LOG_LEVEL": level}))
    assert "oneDNN supports" not in result.stderr
    assert result.stderr == ""


def test_show_all_shows_the_lines_the_filter_drops(tiny_run):
    """SEQ2SEQ_KERAS_TF_LOGS=all: TensorFlow's start-up lines and the oneDNN notice are there (so the quiet
    run above is quiet because of the filter, not because nothing was said)."""
    stderr = _translate(tiny_run, SEQ2SEQ_KERAS_TF_LOGS="all").stderr
    assert "absl::InitializeLog" in stderr
    notices = [line for line in stderr.splitlines() if "oneDNN supports DT_" in line]
    assert len(notices) == 1 and _STARTUP_CHATTER.match(notices[0]), stderr


_AFTER_QUIET_START = """
import sys
from seq2seq_keras.startup import quiet_start
quiet_start()
import tensorflow as tf
tf.config.threading.set_intra_op_parallelism_threads(2)  # raises once TensorFlow's runtime is initialised
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
mask = tf.function(lambda m: tf.transpose(m), input_signature=[tf.TensorSpec([None, None], tf.bool)])
print(mask(tf.constant([[True, False]])).shape, len(tf.config.list_logical_devices("CPU")))
"""


def test_quiet_start_leaves_the_runtime_configurable_and_spends_the_notice():
    """After quiet_start() a script can still set thread counts and virtual devices (the notice is spent in a
    graph session of its own, not by initialising TensorFlow's runtime), and a bool transpose, the op that
    printed it in the middle of a run, prints nothing."""
    base = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL", "SEQ2SEQ_KERAS_TF_LOGS")}
    result = subprocess.run(
        [sys.executable, "-c", _AFTER_QUIET_START],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={**base, "PYTHONPATH": str(ROOT)},
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "(2, 1) 2"
    assert result.stderr == ""


_INTERACTIVE = """
import logging
import sys
sys.ps1 = ">>> "  # what a notebook kernel or `python -i` has: TensorFlow's Python logger then starts at INFO
{start}
import tensorflow as tf
print(logging.getLevelName(tf.get_logger().getEffectiveLevel()))
"""


@pytest.mark.parametrize(
    "start,level",
    [
        ("", "INFO"),  # the reference: plain TensorFlow in an interactive session logs INFO ("Assets written to")
        ("from seq2seq_keras.startup import quiet_start; quiet_start()", "WARNING"),
    ],
)
def test_quiet_start_keeps_tensorflows_python_info_lines_out_of_a_notebook(start, level):
    base = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL", "SEQ2SEQ_KERAS_TF_LOGS")}
    result = subprocess.run(
        [sys.executable, "-c", _INTERACTIVE.format(start=start)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={**base, "PYTHONPATH": str(ROOT)},
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == level
