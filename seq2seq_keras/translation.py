"""The result of translating one sentence (:class:`Translation`), in NumPy and plain Python only.

:func:`seq2seq_keras.decoding.pipeline.translate` (the model in this process), the
REST and gRPC clients (:mod:`seq2seq_keras.serving.client`, a TensorFlow Serving
somewhere else) and the plots (:mod:`seq2seq_keras.plotting`) all speak this
type, so a heatmap is drawn the same way whoever translated.

This module must never import TensorFlow, Keras or tensorflow-text (nor a
module of this package that does): a REST client needs only HTTP and NumPy.
``tests/serving/test_client.py`` checks that in a fresh process that forbids those
imports.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

import numpy as np


@dataclasses.dataclass
class Translation:
    """One translated sentence.

    ``attention[i, j]`` is the weight output token ``target_tokens[i]`` put on
    ``source_tokens[j]``; shape [len(target_tokens), len(source_tokens)]; ``None``
    for a model without attention. ``target_tokens`` ends with ``[END]`` when the
    decoder emitted it (``text`` never contains it). ``log_prob`` is the sum of
    the log-probabilities of ``target_tokens``; ``score`` is what the search
    ranked by (beam search: ``log_prob / lp(len)``; otherwise ``log_prob``).
    ``alternatives`` holds the other n-best hypotheses of a beam search, best
    first (empty otherwise): real hypotheses only, so fewer than ``n_best - 1``
    where the search found fewer (e.g. none for an empty sentence). ``replaced[i]`` is True where ``target_tokens[i]``
    is a source word copied in place of the model's ``[UNK]`` (unknown-word
    replacement); same length as ``target_tokens``.

    ``unknown_source[j]`` is True where the model's source vocabulary has no
    entry for ``source_tokens[j]``, so the model read it as ``[UNK]``; same length
    as ``source_tokens``. ``unknown_source_words`` are the source words of those
    tokens, in order, repeats kept (standardised as the model reads them; with
    WordPiece the whole word, where ``source_tokens`` shows ``[UNK]``). Both are
    filled by :func:`seq2seq_keras.decoding.pipeline.translate`; a TF Serving
    answer does not carry them (the signatures do not return them and a client
    has no vocabulary), so there ``unknown_source`` is ``None``: not known,
    which is not the same as none unknown.
    """

    source: str
    text: str
    source_tokens: list[str]
    target_tokens: list[str]
    attention: np.ndarray | None
    log_prob: float
    score: float | None = None
    alternatives: list[Translation] = dataclasses.field(default_factory=list)
    replaced: list[bool] = dataclasses.field(default_factory=list)
    unknown_source: list[bool] | None = None
    unknown_source_words: tuple[str, ...] = ()

    @property
    def length(self) -> int:
        """Number of target tokens (``[END]`` included when emitted)."""
        return len(self.target_tokens)

    @property
    def unknown_source_count(self) -> int:
        """How many source tokens the model read as ``[UNK]`` (0 also where that is not known)."""
        return len(self.unknown_source_words)

    @property
    def mostly_unknown(self) -> bool:
        """More than half of the source tokens are outside the vocabulary: the translation is a guess."""
        return 2 * self.unknown_source_count > len(self.source_tokens)

    def unknown_words_note(self) -> str | None:
        """One line for a reader: how many and which source words the model never saw; ``None`` if none (or not known).

        ``"2 of 5 source tokens are outside the model's vocabulary (read as [UNK]): 오늘, 날씨가"``, with
        ``"; the translation is a guess"`` added when all or most of them are (:attr:`mostly_unknown`).
        """
        count, total = self.unknown_source_count, len(self.source_tokens)
        if not count:
            return None
        if count == total:
            amount = f"all {total} source tokens are" if total > 1 else "the one source token is"
        else:
            amount = f"{count} of {total} source tokens {'is' if count == 1 else 'are'}"
        note = f"{amount} outside the model's vocabulary (read as [UNK]): {', '.join(self.unknown_source_words)}"
        return note + ("; the translation is a guess" if self.mostly_unknown else "")

    def __str__(self) -> str:
        return self.text


# ---------------------------------------------------------------------- sentences as bytes and as text
def as_utf8_bytes(text) -> bytes:
    """A ``str`` or ``bytes`` sentence as bytes for the graph.

    ``str`` from ``sys.argv`` or a file read with ``errors="surrogateescape"``
    carries undecodable bytes as lone surrogates: they are turned back into
    those bytes (and then into U+FFFD by the graph), never an exception.

    Raises:
        TypeError: ``text`` is neither ``str`` nor ``bytes``.
    """
    if isinstance(text, bytes):
        return text
    if isinstance(text, np.str_):
        text = str(text)
    if not isinstance(text, str):
        raise TypeError(f"Sentences must be str or bytes, got {type(text).__name__}: {text!r:.80}")
    try:
        return text.encode("utf-8", errors="surrogateescape")
    except UnicodeEncodeError:
        return text.encode("utf-8", errors="surrogatepass")


def readable(text) -> str:
    """The sentence as valid Unicode (undecodable bytes shown as U+FFFD)."""
    return as_utf8_bytes(text).decode("utf-8", errors="replace")


def to_python_strings(values) -> list:
    """Strings of any rank (a NumPy array, nested lists, a tensor, a ragged tensor) -> nested ``str`` lists.

    Bytes are decoded as UTF-8 (invalid bytes become U+FFFD). Tensors are
    recognised by their methods (``to_list`` for ragged ones, ``numpy`` for the
    others), so this module never imports TensorFlow.
    """
    if hasattr(values, "to_list"):
        array = values.to_list()
    else:
        array = values.numpy() if hasattr(values, "numpy") else values
    if hasattr(array, "tolist"):
        array = array.tolist()

    def decode(x):
        if isinstance(x, list):
            return [decode(v) for v in x]
        return x.decode("utf-8", errors="replace") if isinstance(x, bytes) else str(x)

    return decode(array)


# ---------------------------------------------------------------------- batch-major outputs -> Translations
def _as_numpy(value):
    return value.numpy() if hasattr(value, "numpy") else np.asarray(value)


def _floats(out, name, default):
    return _as_numpy(out[name]).astype(np.float32).reshape(-1) if name in out else default


def _beam_columns(out) -> dict:
    """The ``beams_*`` outputs, hypothesis axis second: [batch, k, ...]; ``count`` [batch] the real ones."""
    beams = {
        "text": to_python_strings(_as_numpy(out["beams_translation"])),
        "tokens": to_python_strings(_as_numpy(out["beams_target_tokens"])),
        "length": _as_numpy(out["beams_target_length"]),
        "attention": _as_numpy(out["beams_attention"]).astype(np.float32),
        "log_prob": _as_numpy(out["beams_log_prob"]).astype(np.float32),
        "score": _as_numpy(out["beams_score"]).astype(np.float32),
    }
    beams["replaced"] = _as_numpy(out["beams_replaced"]).astype(bool)
    beams["count"] = _as_numpy(out["beams_count"]).astype(np.int64).reshape(-1)
    return beams


def _translation(
    source, text, source_tokens, s, tokens, t, weights, log_prob, score, marks, has_attention, unknown_words=None
) -> Translation:
    """One hypothesis cut to its lengths (``s`` source, ``t`` target tokens): ``weights`` [tgt_len, src_len] -> [t, s].

    ``unknown_words``: the sentence's ``source_unknown_words`` row (the word where the token is unknown, ``""``
    elsewhere), or ``None`` where the outputs do not have it.
    """
    unknown = None if unknown_words is None else list(unknown_words[:s])
    return Translation(
        source=source,
        text=text,
        source_tokens=list(source_tokens[:s]),
        target_tokens=list(tokens[:t]),
        attention=weights[:t, :s].copy() if has_attention else None,
        log_prob=float(log_prob),
        score=float(score),
        replaced=[bool(m) for m in marks[:t]],
        unknown_source=None if unknown is None else [word != "" for word in unknown],
        unknown_source_words=() if unknown is None else tuple(word for word in unknown if word),
    )


def results_to_translations(
    out: Mapping, sources: Sequence, has_attention: bool = True, n_best: int = 1
) -> list[Translation]:
    """Turn a dict of batch-major outputs (graph, SavedModel or server) into Translations.

    ``out`` holds the outputs :mod:`seq2seq_keras.serving.signatures` describes (names, dtypes, axes):
    those of :data:`~seq2seq_keras.serving.signatures.TRANSLATION_OUTPUTS` and ``replaced``, ``score``
    when there is one (else the score is ``log_prob``, as greedy search ranks), ``source_unknown_words``
    when there is one (the Python API's; else ``Translation.unknown_source`` is ``None``), and the
    ``beams_*`` outputs for ``n_best > 1``: the alternatives are the first
    ``min(n_best, beams_count) - 1`` after the best. Values may be NumPy arrays, nested lists
    or tensors; ``sources`` (``str`` or ``bytes``) fill ``Translation.source``.

    Raises:
        ValueError: ``len(sources)`` is not the batch size of ``out``.
    """
    texts = to_python_strings(_as_numpy(out["translation"]))
    batch = len(texts)
    src_tokens = to_python_strings(_as_numpy(out["source_tokens"]))
    src_len = _as_numpy(out["source_length"]).reshape(-1)
    tgt_len = _as_numpy(out["target_length"]).reshape(-1)
    log_prob = _floats(out, "log_prob", np.zeros(batch, np.float32))
    score = _floats(out, "score", log_prob)
    if len(sources) != batch:
        raise ValueError(f"{len(sources)} sources for {batch} translations: the batch dimension disagrees.")
    if batch == 0:
        return []
    tgt_tokens = to_python_strings(_as_numpy(out["target_tokens"]))
    attention = _as_numpy(out["attention"]).astype(np.float32)
    replaced = _as_numpy(out["replaced"]).astype(bool)
    unknown = to_python_strings(_as_numpy(out["source_unknown_words"])) if "source_unknown_words" in out else None
    beams = _beam_columns(out) if n_best > 1 else None
    translations = []
    for b, text in enumerate(texts):
        source = sources[b]
        if isinstance(source, bytes):
            source = source.decode("utf-8", errors="replace")
        s = int(src_len[b])
        t = _translation(
            source,
            text,
            src_tokens[b],
            s,
            tgt_tokens[b],
            int(tgt_len[b]),
            attention[b],
            log_prob[b],
            score[b],
            replaced[b],
            has_attention,
            None if unknown is None else unknown[b],
        )
        if beams is not None:
            t.alternatives = [
                _translation(
                    source,
                    beams["text"][b][j],
                    src_tokens[b],
                    s,
                    beams["tokens"][b][j],
                    int(beams["length"][b, j]),
                    beams["attention"][b, j],
                    beams["log_prob"][b, j],
                    beams["score"][b, j],
                    beams["replaced"][b, j],
                    has_attention,
                    None if unknown is None else unknown[b],
                )
                for j in range(1, min(n_best, len(beams["text"][b]), int(beams["count"][b])))
            ]
        translations.append(t)
    return translations
