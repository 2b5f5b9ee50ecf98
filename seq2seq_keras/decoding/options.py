"""What a caller may ask of decoding: :class:`DecodingOptions`, every option written once.

Each field of :class:`DecodingOptions` carries its default, its check, the help of
its command-line flag and what it becomes in the graph (a scalar tensor of some
dtype, or nothing for the options Python handles itself). From the fields come
:func:`seq2seq_keras.decoding.pipeline.translate`'s checks, the input signature of the graph
it calls, the options an export bakes in and records (:class:`seq2seq_keras.serving.export.ExportSettings`), and
the decoding flags of ``translate``, ``export`` and ``evaluate``.

Plain Python and NumPy (no TensorFlow, Keras or tensorflow-text), so the command
line can show these defaults in ``--help`` and the searches
(:mod:`seq2seq_keras.decoding.search`) can take their defaults from here.
"""

from __future__ import annotations

import dataclasses
import math
import secrets
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

METHODS = ("greedy", "sample", "beam")
DEFAULT_MAX_LENGTH = 100
DEFAULT_MAX_SOURCE_LENGTH = 256
DEFAULT_BEAM_WIDTH = 4
DEFAULT_LENGTH_PENALTY = 0.6
#: Unknown-word replacement is on by default: it never changes the search, and on a
#: short spa-eng run it took the output's [UNK] rate from 3.4% to 0 and in-domain BLEU
#: from 39.6 to 41.6 (docs/evaluation.md, "Unknown words, repetition and robustness").
DEFAULT_REPLACE_UNK = True
#: Also copy unknown source names/numbers the model did not mark with [UNK]: on the same run,
#: names/numbers copied 16% -> 89%, in-domain BLEU 41.64 -> 41.66.
DEFAULT_COPY_UNKNOWN_NAMES = True
#: n-gram blocking for greedy and sampling: off (greedy stays exact greedy).
DEFAULT_BLOCK_NGRAM_REPEAT = 0
#: n-gram blocking for beam search: no 3-gram twice. Measured (docs/evaluation.md, "Unknown
#: words, repetition and robustness"): on the bench's 4-minute spa-eng model beam 4 repeated a 3-gram
#: in 9.3% of the long inputs, 0.0% with blocking, in-domain BLEU 30.29 -> 30.30; on a better
#: trained model (no loops to cut) in-domain BLEU unchanged, long-input BLEU -0.07.
DEFAULT_BEAM_BLOCK_NGRAM_REPEAT = 3
#: GNMT coverage penalty ``beta`` for beam search (Wu et al. 2016, eq. 14): off by default.
#: Measured (docs/evaluation.md, "Unknown words, repetition and robustness"; 30k-pair spa-eng run, validation
#: split): beta 0.2 / 1.0 took beam 4's long-input BLEU 11.95 -> 12.44 / 12.80 but in-domain BLEU
#: 33.17 -> 33.04 / 32.50, and 3-gram blocking already leaves no loops to cut.
DEFAULT_COVERAGE_PENALTY = 0.0
#: Sampling temperature (``method="sample"``): 1.0 samples from the model's own distribution.
DEFAULT_TEMPERATURE = 1.0
#: Sentences per graph call of :func:`seq2seq_keras.decoding.pipeline.translate`.
DEFAULT_BATCH_SIZE = 256


# ---------------------------------------------------------------------- the checks
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


def count(minimum: int) -> Callable:
    """A check for :func:`option`: an integer >= ``minimum`` (:func:`check_int`)."""
    return lambda name, value: check_int(name, value, minimum)


def number(
    minimum: float | None = None, above: float | None = None, below: float | None = None, note: str = ""
) -> Callable:
    """A check for :func:`option` (and :class:`~seq2seq_keras.training.config.TrainConfig`'s settings): a finite
    real number (``bool`` is not), ``>= minimum`` / ``> above`` / ``< below`` when given; returned as ``float``."""
    bounds = [f">= {minimum:g}" if minimum is not None else f"> {above:g}" if above is not None else ""]
    bounds.append(f"< {below:g}" if below is not None else "")
    bound = " and ".join(b for b in bounds if b)
    bound = f" {bound}" if bound else ""

    def check(name, value):
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, float, np.integer, np.floating))
            or not math.isfinite(value)
            or (minimum is not None and value < minimum)
            or (above is not None and value <= above)
            or (below is not None and value >= below)
        ):
            raise ValueError(f"{name} must be a finite number{bound}{note}, got {value!r}.")
        return float(value)

    return check


def optional(check: Callable) -> Callable:
    """``check`` that also lets ``None`` through (a setting whose ``None`` means "no limit" or "off")."""
    return lambda name, value: None if value is None else check(name, value)


def _flag(name, value) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {value!r}.")
    return bool(value)


def _method(name, value) -> str:
    return check_method(value)


def _seed(name, value) -> int:
    return check_int(name, secrets.randbits(62) if value is None else value, -(2**63))


def _pairs(name, value) -> tuple[tuple[str, str], ...]:
    """A ``{source word: target text}`` mapping (or pairs) as sorted ``(str, str)`` pairs."""
    if not value:
        return ()
    try:
        items = value.items() if isinstance(value, Mapping) else dict(value).items()
    except (TypeError, ValueError):
        raise TypeError(f"{name} must map source words to target text, e.g. {{'bruselas': 'Brussels'}}.") from None
    for key, text in items:
        if not isinstance(key, str) or not isinstance(text, str):
            raise TypeError(f"{name} entries must be str -> str, got {key!r} -> {text!r}.")
    return tuple(sorted(items))


def option(
    default, help: str, check: Callable, *, graph: str | None = None, shape: tuple = (), exported: bool = True, **cli
):
    """A :class:`DecodingOptions` field.

    Args:
        default: its value when not given (``None`` where :meth:`DecodingOptions.__post_init__`
            resolves it: a method's default, a fresh seed).
        help: the help of its command-line flag (``{default}`` is filled in, else it is appended).
        check: ``check(name, value) -> value``: raises TypeError/ValueError with a one-line
            message, returns the value normalised (``int``, ``float``, sorted pairs).
        graph: the dtype of the tensor it is in the decoding graph (``"int32"``, ...; ``shape``
            its shape), or ``None`` for an option Python handles (``method`` picks the traced
            graph, ``n_best`` and ``batch_size`` what is returned and how it is batched).
        exported: whether an export bakes it into its signatures (:class:`seq2seq_keras.serving.export.ExportSettings`).
        cli: ``flag`` (another flag name), ``metavar``, ``choices``; ``flag=None`` for no flag.
    """
    return dataclasses.field(
        default=default,
        metadata={"help": help, "check": check, "graph": graph, "shape": shape, "exported": exported, **cli},
    )


# ---------------------------------------------------------------------- the options
@dataclasses.dataclass(frozen=True)
class DecodingOptions:
    """How :func:`seq2seq_keras.decoding.pipeline.translate` decodes (``model.translate(texts, **options)``).

    Every field is checked when the object is made (TypeError or ValueError, naming the
    field); ``max_length``, ``max_source_length`` and ``block_ngram_repeat`` given as
    ``None`` take their defaults (the method's, for blocking) and ``seed`` ``None`` a fresh
    random seed. The searches are described in :mod:`seq2seq_keras.decoding.search`, unknown-word
    replacement in :mod:`seq2seq_keras.decoding.unknown_words`.
    """

    method: str = option(
        "greedy", "search: greedy, beam or sample (default: {default})", _method, choices=METHODS, exported=False
    )
    beam_width: int = option(
        DEFAULT_BEAM_WIDTH,
        "beam search: hypotheses kept per sentence, with --method beam "
        "(default: {default}); export: the beam_search signature's",
        count(1),
        graph="int32",
    )
    length_penalty: float = option(
        DEFAULT_LENGTH_PENALTY,
        "GNMT length penalty alpha of beam search: 0 ranks "
        "by log-probability alone, larger favours longer outputs (default: {default})",
        number(),
        graph="float32",
        metavar="ALPHA",
    )
    n_best: int = option(
        1,
        "with beam search, also return the next n_best - 1 hypotheses (Translation.alternatives; at most beam_width)",
        count(1),
        exported=False,
        flag=None,
    )
    temperature: float = option(
        DEFAULT_TEMPERATURE,
        "with --method sample: divides the logits; < 1 is closer to greedy, > 1 more varied",
        number(above=0),
        graph="float32",
        exported=False,
    )
    seed: int | None = option(
        None,
        "with --method sample: the same seed and inputs give the same draws (default: a fresh one)",
        _seed,
        graph="int64",
        exported=False,
    )
    max_length: int = option(
        DEFAULT_MAX_LENGTH,
        "cap on output tokens; each sentence is also capped at 2 x its source tokens + 10 (default: {default})",
        count(1),
        graph="int32",
    )
    max_source_length: int = option(
        DEFAULT_MAX_SOURCE_LENGTH,
        "longer sources are truncated to this many tokens (default: {default})",
        count(1),
        graph="int32",
    )
    batch_size: int = option(DEFAULT_BATCH_SIZE, "sentences per graph call", count(1), exported=False)
    replace_unk: bool = option(
        DEFAULT_REPLACE_UNK,
        "keep [UNK] in the output instead of copying the source word "
        "under the attention argmax (Luong et al. 2015; replacing by default: {default})",
        _flag,
        graph="bool",
        flag="--no-replace-unk",
    )
    copy_unknown_names: bool = option(
        DEFAULT_COPY_UNKNOWN_NAMES,
        "do not copy an unknown source name or number "
        "(leading capital or digit) over the output word attending to it most when "
        "the model did not say [UNK] (copying by default: {default})",
        _flag,
        graph="bool",
        flag="--no-copy-unknown-names",
    )
    unk_dictionary: tuple = option(
        (),
        "source<TAB>target lines looked up before copying an unknown word (e.g. a phrase table)",
        _pairs,
        graph="string",
        shape=(2, None),
        metavar="FILE",
    )
    block_ngram_repeat: int | None = option(
        None,
        "never output a token that repeats an N-gram of the output (OpenNMT's option; 0 off; default: "
        f"{DEFAULT_BLOCK_NGRAM_REPEAT} for greedy and sample, {DEFAULT_BEAM_BLOCK_NGRAM_REPEAT} for beam)",
        count(0),
        graph="int32",
        metavar="N",
    )
    coverage_penalty: float = option(
        DEFAULT_COVERAGE_PENALTY,
        "beam search: GNMT coverage penalty beta (Wu et "
        "al. 2016), ranks down hypotheses that left source words unattended "
        "(default: {default}, off)",
        number(minimum=0, note=" (0 turns it off)"),
        graph="float32",
        metavar="BETA",
    )

    def __post_init__(self):
        defaults = {
            "max_length": DEFAULT_MAX_LENGTH,
            "max_source_length": DEFAULT_MAX_SOURCE_LENGTH,
            "block_ngram_repeat": default_block_ngram_repeat(self.method),
        }
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if value is None and field.name in defaults:
                value = defaults[field.name]
            object.__setattr__(self, field.name, field.metadata["check"](field.name, value))
        if self.n_best > 1 and self.method != "beam":
            raise ValueError(f"n_best={self.n_best} needs method='beam' (greedy and sampling give one hypothesis).")
        if self.n_best > self.beam_width:
            raise ValueError(f"n_best={self.n_best} is more than beam_width={self.beam_width}: raise beam_width.")

    @classmethod
    def from_keywords(cls, options: DecodingOptions | None = None, **keywords):
        """``options`` (default: the defaults) with ``keywords`` replacing fields, checked.

        Raises:
            TypeError: a keyword that is not a field (the message names the valid ones).
        """
        names = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(set(keywords) - set(names))
        if unknown:
            raise TypeError(f"unknown decoding option(s) {', '.join(unknown)}: choose among {', '.join(names)}.")
        if options is None:
            return cls(**keywords)
        return dataclasses.replace(options, **keywords)

    @classmethod
    def graph_fields(cls) -> list[dataclasses.Field]:
        """The fields that are tensors in the decoding graph (``metadata["graph"]`` their dtype), in field order."""
        return [f for f in dataclasses.fields(cls) if f.metadata["graph"] is not None]

    def exported(self) -> dict[str, Any]:
        """``{name: value}`` of the options an export bakes in and records (JSON-ready)."""
        return {
            f.name: (list(map(list, getattr(self, f.name))) if f.name == "unk_dictionary" else getattr(self, f.name))
            for f in dataclasses.fields(self)
            if f.metadata["exported"]
        }
