"""Shared fixtures: tiny processors and models, the shared-data location."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import pytest

TINY_SOURCE = ["나는 학생이다.", "그는 사과를 먹는다.", "너는 의사이다.", "우리는 책을 읽었다."]
TINY_TARGET = ["I am a student.", "He eats an apple.", "You are a doctor.", "We read a book."]


@pytest.fixture(scope="session")
def tiny_processors():
    from seq2seq_keras import TextProcessor

    src = TextProcessor.for_language("ko").adapt(TINY_SOURCE)
    tgt = TextProcessor.for_language("en", add_start_end=True).adapt(TINY_TARGET)
    return src, tgt


@pytest.fixture
def rng():
    return np.random.default_rng(0)
