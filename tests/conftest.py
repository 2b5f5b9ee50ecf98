"""Shared fixtures: tiny processors and models, the shared-data location.

The tests mirror the package: ``tests/<subpackage>/test_<module>.py``, with ``fixtures/`` (files the tests
read) and ``programs/`` (scripts the tests run in fresh processes) beside them. Test modules that build a
trained tiny model or an export share it by importing each other by module name (``from test_pipeline
import tiny_run_dir``), so every test folder is put on the import path here.
"""

import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import contextlib

import numpy as np
import pytest

TESTS = Path(__file__).resolve().parent
for _folder in sorted(TESTS.iterdir()):
    if _folder.is_dir() and _folder.name not in ("fixtures", "programs") and not _folder.name.startswith((".", "_")):
        sys.path.insert(0, str(_folder))

TINY_SOURCE = ["나는 학생이다.", "그는 사과를 먹는다.", "너는 의사이다.", "우리는 책을 읽었다."]
TINY_TARGET = ["I am a student.", "He eats an apple.", "You are a doctor.", "We read a book."]

#: Precision is a test dimension: the dtype policies every precision-invariant test runs under
#: (float32, and mixed_bfloat16, what ``--precision auto`` trains in on CPUs with AMX-BF16; oneDNN
#: computes bf16 on any x86 CPU, only slower). ``SEQ2SEQ_KERAS_CPUINFO=tests/fixtures/cpuinfo-sapphire-rapids``
#: runs the whole suite with ``auto`` resolving as on such a CPU.
PRECISIONS = ("float32", "mixed_bfloat16")


@contextlib.contextmanager
def using_dtype_policy(policy: str):
    """Keras' global dtype policy set to ``policy`` inside the block (layers built there take it)."""
    import keras

    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(policy)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


@pytest.fixture(scope="session")
def tiny_processors():
    from seq2seq_keras import TextProcessor

    src = TextProcessor.for_language("ko").adapt(TINY_SOURCE)
    tgt = TextProcessor.for_language("en", add_start_end=True).adapt(TINY_TARGET)
    return src, tgt


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.fixture
def tensorflow_warnings():
    """The WARNING-or-worse messages TensorFlow's Python logger ("tensorflow") emits while the test runs."""
    import logging

    import tensorflow as tf

    messages: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record):
            messages.append(record.getMessage())

    handler = Keep(level=logging.WARNING)
    tf.get_logger().addHandler(handler)
    yield messages
    tf.get_logger().removeHandler(handler)
