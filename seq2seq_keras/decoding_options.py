"""What a caller may ask of decoding: the search methods, every default, and their checks.

Plain Python (no TensorFlow, Keras or tensorflow-text), so the command line
can show these defaults in ``--help`` and an exporter can bake them into a
signature without loading TensorFlow first. :func:`seq2seq_keras.decoding.translate`
checks its arguments with :func:`checked_options`; the in-graph searches
(:mod:`seq2seq_keras.search`) and unknown-word replacement
(:mod:`seq2seq_keras.unknown_words`) take the same defaults from here.
"""

from __future__ import annotations

import math
import secrets

import numpy as np

METHODS = ("greedy", "sample", "beam")
DEFAULT_MAX_LENGTH = 100
DEFAULT_MAX_SOURCE_LENGTH = 256
DEFAULT_BEAM_WIDTH = 4
DEFAULT_LENGTH_PENALTY = 0.6
#: Unknown-word replacement is on by default: it never changes the search, and on a
#: short spa-eng run it took the output's [UNK] rate from 3.4% to 0 and in-domain BLEU
#: from 39.6 to 41.6 (README, "Unknown words, repetition and robustness").
DEFAULT_REPLACE_UNK = True
#: Also copy unknown source names/numbers the model did not mark with [UNK]: on the same run,
#: names/numbers copied 16% -> 89%, in-domain BLEU 41.64 -> 41.66.
DEFAULT_COPY_UNKNOWN_NAMES = True
#: n-gram blocking for greedy and sampling: off (greedy stays exact greedy).
DEFAULT_BLOCK_NGRAM_REPEAT = 0
#: n-gram blocking for beam search: no 3-gram twice. Measured (README, "Unknown words,
#: repetition and robustness"): on the bench's 4-minute spa-eng model beam 4 repeated a 3-gram
#: in 9.3% of the long inputs, 0.0% with blocking, in-domain BLEU 30.29 -> 30.30; on a better
#: trained model (no loops to cut) in-domain BLEU unchanged, long-input BLEU -0.07.
DEFAULT_BEAM_BLOCK_NGRAM_REPEAT = 3
#: GNMT coverage penalty ``beta`` for beam search (Wu et al. 2016, eq. 14): off by default.
#: Measured (README, "Unknown words, repetition and robustness"; 30k-pair spa-eng run, validation
#: split): beta 0.2 / 1.0 took beam 4's long-input BLEU 11.95 -> 12.44 / 12.80 but in-domain BLEU
#: 33.17 -> 33.04 / 32.50, and 3-gram blocking already leaves no loops to cut.
DEFAULT_COVERAGE_PENALTY = 0.0
#: Sampling temperature (``method="sample"``): 1.0 samples from the model's own distribution.
DEFAULT_TEMPERATURE = 1.0


def check_method(method: str) -> str:
    """``method`` if it is one of :data:`METHODS`; raises ValueError otherwise."""
    if method not in METHODS:
        raise ValueError(f"method={method!r}: choose one of {METHODS}.")
    return method


def default_block_ngram_repeat(method: str) -> int:
    """The method's n-gram blocking: :data:`DEFAULT_BEAM_BLOCK_NGRAM_REPEAT` for beam, else 0 (exact greedy)."""
    return DEFAULT_BEAM_BLOCK_NGRAM_REPEAT if method == "beam" else DEFAULT_BLOCK_NGRAM_REPEAT


def check_int(name: str, value, minimum: int) -> int:
    """``value`` as an ``int``; raises TypeError when it is not an integer (``bool`` is not), ValueError below ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an integer, got {value!r}.")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}.")
    return int(value)


def checked_options(*, method, beam_width, length_penalty, n_best, temperature, seed, max_length,
                    max_source_length, batch_size, replace_unk, block_ngram_repeat, copy_unknown_names,
                    coverage_penalty=DEFAULT_COVERAGE_PENALTY) -> dict:
    """The arguments of :func:`seq2seq_keras.decoding.translate`, checked and with defaults filled in.

    ``max_length`` / ``max_source_length`` / ``block_ngram_repeat`` ``None``
    become their defaults and ``seed`` ``None`` a fresh random seed; integers
    become ``int``. Returns a dict with the same keys.

    Raises:
        ValueError: unknown ``method``; a count below its minimum; ``n_best > 1``
            without beam search or above ``beam_width``; ``temperature`` not a
            finite number > 0; ``length_penalty`` not finite; ``coverage_penalty``
            not a finite number >= 0.
        TypeError: a count that is not an integer; ``replace_unk`` or
            ``copy_unknown_names`` not a bool.
    """
    check_method(method)
    max_length = DEFAULT_MAX_LENGTH if max_length is None else check_int("max_length", max_length, 1)
    max_source_length = (
        DEFAULT_MAX_SOURCE_LENGTH if max_source_length is None else check_int("max_source_length", max_source_length, 1)
    )
    beam_width = check_int("beam_width", beam_width, 1)
    n_best = check_int("n_best", n_best, 1)
    batch_size = check_int("batch_size", batch_size, 1)
    if n_best > 1 and method != "beam":
        raise ValueError(f"n_best={n_best} needs method='beam' (greedy and sampling give one hypothesis).")
    if n_best > beam_width:
        raise ValueError(f"n_best={n_best} is more than beam_width={beam_width}: raise beam_width.")
    if not (isinstance(temperature, (int, float, np.floating)) and math.isfinite(temperature) and temperature > 0):
        raise ValueError(f"temperature must be a finite number > 0, got {temperature!r}.")
    if not (isinstance(length_penalty, (int, float, np.floating)) and math.isfinite(length_penalty)):
        raise ValueError(f"length_penalty must be a finite number, got {length_penalty!r}.")
    if not (isinstance(coverage_penalty, (int, float, np.floating)) and not isinstance(coverage_penalty, bool)
            and math.isfinite(coverage_penalty) and coverage_penalty >= 0):
        raise ValueError(f"coverage_penalty must be a finite number >= 0 (0 turns it off), got {coverage_penalty!r}.")
    if seed is None:
        seed = secrets.randbits(62)
    seed = check_int("seed", seed, -(2**63))
    for name, flag in (("replace_unk", replace_unk), ("copy_unknown_names", copy_unknown_names)):
        if not isinstance(flag, (bool, np.bool_)):
            raise TypeError(f"{name} must be True or False, got {flag!r}.")
    if block_ngram_repeat is None:
        block_ngram_repeat = default_block_ngram_repeat(method)
    block_ngram_repeat = check_int("block_ngram_repeat", block_ngram_repeat, 0)
    return dict(method=method, beam_width=beam_width, length_penalty=length_penalty, n_best=n_best,
                temperature=temperature, seed=seed, max_length=max_length, max_source_length=max_source_length,
                batch_size=batch_size, replace_unk=bool(replace_unk), block_ngram_repeat=block_ngram_repeat,
                copy_unknown_names=bool(copy_unknown_names), coverage_penalty=float(coverage_penalty))
