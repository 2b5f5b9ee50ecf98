"""Starting TensorFlow quietly: what the command line does before TensorFlow loads.

TensorFlow's C++ code logs to file descriptor 2. ``TF_CPP_MIN_LOG_LEVEL`` (read when
TensorFlow is imported, so it must be set before) filters most of it, but a few
lines are printed on import whatever it says, because they come before TensorFlow
sets its logging up, and a machine without a GPU driver gets an ``E`` line from the
GPU probe. :func:`quiet_tensorflow_logging` sets the level;
:func:`start_tensorflow` imports TensorFlow with those lines dropped and every
other line passed on. The README ("What the terminal shows") lists what remains.
Nothing here changes TensorFlow's numerics (oneDNN stays on). This module
imports only the standard library (TensorFlow inside :func:`start_tensorflow`).
"""

from __future__ import annotations

import os
import re
import sys

#: The user's own TF_CPP_MIN_LOG_LEVEL, if they set one (then nothing is filtered).
_user_log_level: str | None = None


def quiet_tensorflow_logging(level: str = "2") -> None:
    """Hide TensorFlow's INFO and WARNING C++ logs (level 2) unless the user set ``TF_CPP_MIN_LOG_LEVEL``.

    Call it before TensorFlow is imported: TensorFlow reads the variable once, on import.
    """
    global _user_log_level
    _user_log_level = os.environ.get("TF_CPP_MIN_LOG_LEVEL")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", level)


#: Lines TensorFlow prints on import whatever TF_CPP_MIN_LOG_LEVEL says (its C++ logging is not set up yet),
#: plus the GPU probe's error on a machine without a GPU driver; all harmless (README, "What the terminal shows").
_STARTUP_CHATTER = re.compile(
    r"WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR"
    r"|[IW]0000 .*\] oneDNN custom operations are on\."
    r"|[IW]0000 .*\] Could not find cuda drivers on your machine, GPU will not be used\."
    r"|E0000 .*\] failed call to cuInit: .*"
)


def start_tensorflow() -> None:
    """Import TensorFlow and probe its devices without the start-up lines it prints regardless of log level.

    While TensorFlow loads, file descriptor 2 (where its C++ code writes) goes to a
    temporary file; afterwards every line that is not one of :data:`_STARTUP_CHATTER`
    is written to stderr, so nothing unexpected is hidden. Filtering happens only after
    :func:`quiet_tensorflow_logging` set the level: not when the user set
    ``TF_CPP_MIN_LOG_LEVEL`` themselves (to see everything: ``TF_CPP_MIN_LOG_LEVEL=0``),
    not when TensorFlow is already loaded, not when stderr has no file descriptor.
    """
    if "tensorflow" in sys.modules:
        return
    if _user_log_level is not None or "TF_CPP_MIN_LOG_LEVEL" not in os.environ:
        return _load_tensorflow()  # the user's settings: every line shows
    import tempfile

    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no file descriptor 2 to redirect
        return _load_tensorflow()
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            _load_tensorflow()
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
