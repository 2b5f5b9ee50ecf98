"""Starting TensorFlow quietly: what the command line and ``quiet_start()`` do before TensorFlow loads.

TensorFlow's C++ code logs to file descriptor 2. ``TF_CPP_MIN_LOG_LEVEL`` (read when
TensorFlow is imported, so it must be set before) filters most of it, but a few
lines are printed on import whatever it says, because they come before TensorFlow
sets its logging up, and a machine without a GPU driver gets an ``E`` line from the
GPU probe. :func:`quiet_tensorflow_logging` sets the level;
:func:`start_tensorflow` imports TensorFlow with those lines dropped and every
other line passed on, and spends there the one oneDNN data-type notice TensorFlow
prints later in a process (see :func:`_spend_onednn_dtype_notice`), so a command
stays quiet to its end. In an interactive session (a notebook) TensorFlow's Python
logger starts at INFO and prints, e.g., "Assets written to" for every SavedModel; the
quiet start sets it to WARNING, as in a script. ``SEQ2SEQ_KERAS_TF_LOGS=all`` turns all
of this off. docs/terminal-output.md lists what remains. Nothing here changes
TensorFlow's numerics (oneDNN stays on). This module imports only the standard
library (TensorFlow inside :func:`start_tensorflow`).
"""

from __future__ import annotations

import os
import re
import sys

#: The one switch that shows everything TensorFlow prints: ``SEQ2SEQ_KERAS_TF_LOGS=all`` (no filter, and
#: TensorFlow's own default log level unless ``TF_CPP_MIN_LOG_LEVEL`` says otherwise).
SHOW_ALL_VARIABLE = "SEQ2SEQ_KERAS_TF_LOGS"


def show_all_logs() -> bool:
    """Whether the user asked to see every TensorFlow line (``SEQ2SEQ_KERAS_TF_LOGS=all``)."""
    return os.environ.get(SHOW_ALL_VARIABLE, "").strip().lower() == "all"


def quiet_tensorflow_logging(level: str = "2") -> None:
    """Hide TensorFlow's INFO and WARNING C++ logs (level 2) unless the user set ``TF_CPP_MIN_LOG_LEVEL``.

    Call it before TensorFlow is imported: TensorFlow reads the variable once, on import.
    A level the user set is kept; with ``SEQ2SEQ_KERAS_TF_LOGS=all`` nothing is set.
    """
    if not show_all_logs():
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", level)


def quiet_start() -> None:
    """Load TensorFlow without its start-up noise: the first call in a notebook or script.

    Sets the log level (:func:`quiet_tensorflow_logging`), then imports TensorFlow with
    its known start-up lines dropped (:func:`start_tensorflow`). Call it before anything
    imports TensorFlow; afterwards it does nothing. ``SEQ2SEQ_KERAS_TF_LOGS=all`` shows
    every line instead.
    """
    quiet_tensorflow_logging()
    start_tensorflow()


#: Lines TensorFlow prints on import whatever TF_CPP_MIN_LOG_LEVEL says (its C++ logging is not set up yet),
#: the GPU probe's error on a machine without a GPU driver, TensorFlow 2.20's MLIR notice on its first graph
#: (printed whatever the level), and the oneDNN notice about an integer or bool
#: data type (see :func:`_spend_onednn_dtype_notice`); all harmless (docs/terminal-output.md).
#: TensorFlow 2.21 writes them in absl's format (``I0000 00:00:1796017403.455792   17986 port.cc:153] ...``),
#: 2.20 (Colab's) in TSL's own (``2026-12-06 09:14:17.485538: I tensorflow/core/util/port.cc:153] ...``).
_STARTUP_CHATTER = re.compile(
    r"WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR"
    r"|(?:[IW]0000 |\d{4}-\d\d-\d\d [\d:.]+: [IW] ).*\] oneDNN custom operations are on\."
    r"|(?:[IW]0000 |\d{4}-\d\d-\d\d [\d:.]+: [IW] ).*\] Could not find cuda drivers on your machine, GPU will not be used\."
    r"|(?:E0000 |\d{4}-\d\d-\d\d [\d:.]+: E ).*\] failed call to cuInit: .*"
    r"|(?:I0000 |\d{4}-\d\d-\d\d [\d:.]+: I ).*\] MLIR V1 optimization pass is not enabled"
    r"|(?:E0000 |\d{4}-\d\d-\d\d [\d:.]+: E ).*\] oneDNN supports DT_(?:BOOL|U?INT(?:8|16|32|64)) only on platforms "
    r"with AVX-512\. Falling back to the default Eigen-based implementation if present\."
)


def start_tensorflow() -> None:
    """Import TensorFlow and probe its devices without the start-up lines it prints regardless of log level.

    While TensorFlow loads, file descriptor 2 (where its C++ code writes) goes to a
    temporary file; afterwards every line that is not one of :data:`_STARTUP_CHATTER`
    is written to stderr, so nothing unexpected is hidden. Inside that window the
    oneDNN data-type notice is spent too (:func:`_spend_onednn_dtype_notice`), so it
    does not appear later in the command. The filter applies whatever
    ``TF_CPP_MIN_LOG_LEVEL`` says (users set it to see *less*); it is off with
    ``SEQ2SEQ_KERAS_TF_LOGS=all``, when TensorFlow is already loaded, and when stderr has
    no file descriptor.
    """
    if "tensorflow" in sys.modules:
        return
    if show_all_logs():
        return _load_tensorflow()  # the user asked for every line
    import tempfile

    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no file descriptor 2 to redirect
        _load_tensorflow()
        return _python_logger_at_warning()
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            _load_tensorflow()
            _python_logger_at_warning()
            _spend_onednn_dtype_notice()
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            for line in captured.read().decode("utf-8", errors="replace").splitlines(keepends=True):
                if not _STARTUP_CHATTER.match(line):
                    sys.stderr.write(line)
            sys.stderr.flush()


def _load_tensorflow() -> None:
    import tensorflow as tf

    tf.config.list_physical_devices()  # the GPU probe (cuInit) logs here, not on first use


def _python_logger_at_warning() -> None:
    """Raise TensorFlow's Python logger to WARNING where it starts lower.

    ``tf.get_logger()`` starts at INFO, writing to stdout, in an interactive session (a
    notebook, ``python -i``), and WARNING in a script; INFO lines such as "Assets written
    to ..." from every SavedModel export are then the only TensorFlow lines a notebook
    shows. A level the program set higher (ERROR) is kept.
    """
    import logging

    import tensorflow as tf

    logger = tf.get_logger()
    if logger.getEffectiveLevel() < logging.WARNING:
        logger.setLevel(logging.WARNING)


def _spend_onednn_dtype_notice() -> None:
    """Make TensorFlow print its once-per-process oneDNN data-type notice now, while the start-up filter listens.

    With oneDNN on, TensorFlow's graph rewrite logs ``E ... oneDNN supports DT_BOOL only on
    platforms with AVX-512. Falling back to the default Eigen-based implementation if
    present.`` the first time a graph holds an op oneDNN has a kernel for with a data type
    it has none for, on every CPU (AVX-512 or not): here a ``Transpose`` of integers or
    bools, such as Keras' recurrent layers' transpose of the bool padding mask (the
    encoder's GRUs) or the decoding loop's token ids. TensorFlow then runs its own
    kernel, as it would without oneDNN, so the line says nothing about this program; it
    is logged once per process (an ``absl::call_once``). One int32 transpose spends it
    here, where :data:`_STARTUP_CHATTER` drops it; no other line is hidden for the rest
    of the process, and a notice about a floating-point type (``DT_HALF``,
    ``DT_BFLOAT16``) that came first would still show.

    The transpose runs in a graph session of its own on the CPU (no GPU device, one
    thread), not eagerly: that leaves TensorFlow's runtime uninitialised, so a script or
    notebook may still set thread counts, visible or virtual devices, or a
    ``MultiWorkerMirroredStrategy`` after :func:`quiet_start`.
    """
    import tensorflow as tf

    graph = tf.Graph()
    with graph.as_default():
        ids = tf.compat.v1.placeholder(tf.int32, [None, None])  # unknown shape: Grappler cannot drop the op
        transposed = tf.transpose(ids)
    config = tf.compat.v1.ConfigProto(
        device_count={"GPU": 0}, intra_op_parallelism_threads=1, inter_op_parallelism_threads=1
    )
    with tf.compat.v1.Session(graph=graph, config=config) as session:
        session.run(transposed, {ids: [[0, 1]]})
