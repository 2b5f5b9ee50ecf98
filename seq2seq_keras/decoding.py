"""Decoding: turning a trained :class:`~seq2seq_keras.model.Seq2Seq` into translations.

Strings in, :class:`~seq2seq_keras.translation.Translation` out:
:func:`translate` (the Python API behind ``model.translate`` and the CLI) and
:func:`translate_graph` (one graph from raw strings to every output, behind
:func:`translate` and every signature of the SavedModel). The searches live in
:mod:`seq2seq_keras.search`, unknown-word replacement in
:mod:`seq2seq_keras.unknown_words`, the defaults and argument checks in
:mod:`seq2seq_keras.decoding_options` and the result type in
:mod:`seq2seq_keras.translation` (NumPy only, shared with the serving clients).

``method`` picks one of three searches, all inside the TensorFlow graph and
described in :mod:`seq2seq_keras.search`: ``greedy``, ``sample`` (temperature,
seeded) and ``beam`` (GNMT length penalty, n-best; ``beam_width=1`` is exactly
greedy). Every search returns, per sentence: target token ids, the target
length (``[END]`` included), the log-probability of the returned tokens under
the model (temperature does not change it) and the attention rows of the
returned hypothesis, ``[tgt_len, src_len]``.

Limits, with the same result everywhere (Python API, CLI, SavedModel):

* **source**: at most ``max_source_length`` tokens (default
  :data:`DEFAULT_MAX_SOURCE_LENGTH`); longer sentences are truncated (the tail is
  dropped) before encoding, and ``source_tokens`` / ``source_length`` show what
  was kept. A source processor with its own ``max_length`` truncates first.
* **output**: a sentence of ``S`` source tokens produces at most
  ``min(max_length, 2 * S + 10)`` target tokens, ``[END]`` included (default
  ``max_length`` :data:`DEFAULT_MAX_LENGTH`); a hypothesis that reaches the cap
  stops there without ``[END]``.
* **no tokens** (empty string, only spaces or control characters): the
  translation is ``""``, ``target_length`` 0, log-probability 0 and a ``[0, 0]``
  attention matrix; the model is not asked to translate nothing.
* **any bytes** decode: invalid UTF-8 becomes U+FFFD, control characters
  become spaces, unknown words (emoji, other scripts) become ``[UNK]`` for the
  model while ``source_tokens`` keep the word as written (word vocabularies).
* ``[START]`` and padding are never generated (their probability is kept in the
  softmax, so log-probabilities stay the model's own).

Real-world sentences (names, numbers, rare words, long inputs):

* **unknown-word replacement** (``replace_unk``, on by default): every ``[UNK]``
  of the returned hypothesis is replaced by the source word with the highest
  attention weight at that step (Luong et al. 2015, "Addressing the Rare Word
  Problem in Neural Machine Translation"; OpenNMT's ``replace_unk``), optionally
  looked up in a user dictionary first (``unk_dictionary``: source word ->
  target text, e.g. a phrase table). Beam search uses the returned hypothesis'
  own attention (gathered through its back-pointers). The search itself, the
  log-probability and the attention are unchanged; ``target_tokens`` and the
  text carry the copied word and ``replaced`` (int32 ``[batch, tgt_len]``, 1 at a
  replaced position) says where. With ``copy_unknown_names`` (on by default) an
  out-of-vocabulary source name or number (leading capital or digit) is also
  copied over the output word attending to it most, when the model said a known
  word instead of ``[UNK]`` (what a model trained on Tatoeba does); one that no
  step attends most is written next to the step attending it most.
* **n-gram blocking** (``block_ngram_repeat=n``, OpenNMT's option of the same
  name): a token that would repeat an ``n``-gram already in the hypothesis is
  never chosen (``[END]`` always may be). Off for greedy and sampling unless
  asked (greedy stays exact greedy); beam search blocks repeated 3-grams by
  default (:data:`DEFAULT_BEAM_BLOCK_NGRAM_REPEAT`). Log-probabilities stay the
  model's own.
* **coverage penalty** (``coverage_penalty=beta``, beam only; GNMT, Wu et al.
  2016): hypotheses whose attention left source words uncovered rank lower
  (:func:`~seq2seq_keras.search.coverage_penalty`); off by default
  (:data:`DEFAULT_COVERAGE_PENALTY`).
"""

from __future__ import annotations

from typing import Iterable

import numpy as np
import tensorflow as tf

from .decoding_options import (
    DEFAULT_BEAM_BLOCK_NGRAM_REPEAT,
    DEFAULT_BEAM_WIDTH,
    DEFAULT_BLOCK_NGRAM_REPEAT,
    DEFAULT_COPY_UNKNOWN_NAMES,
    DEFAULT_COVERAGE_PENALTY,
    DEFAULT_LENGTH_PENALTY,
    DEFAULT_MAX_LENGTH,
    DEFAULT_MAX_SOURCE_LENGTH,
    DEFAULT_REPLACE_UNK,
    DEFAULT_TEMPERATURE,
    METHODS,
    check_method,
    checked_options,
    default_block_ngram_repeat,
)
from .search import beam_search, greedy_search, sample_search
from .text import PAD_ID
from .translation import Translation, as_utf8_bytes, readable, results_to_translations
from .unknown_words import empty_dictionary, read_unk_dictionary, replace_in_hypotheses, unk_dictionary_tensors

#: The decoding API in one place: the searches, the result type and the option defaults are
#: re-exported from their modules, so ``from seq2seq_keras.decoding import ...`` keeps working.
__all__ = [
    "DEFAULT_BEAM_BLOCK_NGRAM_REPEAT",
    "DEFAULT_BEAM_WIDTH",
    "DEFAULT_BLOCK_NGRAM_REPEAT",
    "DEFAULT_COPY_UNKNOWN_NAMES",
    "DEFAULT_COVERAGE_PENALTY",
    "DEFAULT_LENGTH_PENALTY",
    "DEFAULT_MAX_LENGTH",
    "DEFAULT_MAX_SOURCE_LENGTH",
    "DEFAULT_REPLACE_UNK",
    "METHODS",
    "Translation",
    "as_utf8_bytes",
    "beam_search",
    "encode_source",
    "greedy_search",
    "read_unk_dictionary",
    "readable",
    "results_to_translations",
    "sample_search",
    "translate",
    "translate_graph",
    "unk_dictionary_tensors",
]


# ---------------------------------------------------------------------- strings in
def _pad_to_at_least_one(ids):
    """[batch, src_len] -> [batch, max(src_len, 1)]: a batch of empty strings still encodes."""
    return tf.pad(ids, [[0, 0], [0, tf.maximum(0, 1 - tf.shape(ids)[1])]])


def encode_source(model, strings, max_source_length=DEFAULT_MAX_SOURCE_LENGTH, with_words=False):
    """``string[batch]`` -> (source_ids int32 [batch, src_len], source tokens string
    [batch, src_len], source_length int32 [batch]) and, with ``with_words``, the
    source word of every token string [batch, src_len] (the token itself for a word
    vocabulary, the whole word a piece belongs to for WordPiece) and whether that
    word, as written, starts with a capital letter or a digit, bool [batch, src_len].

    Sources are truncated to ``max_source_length`` tokens; ``src_len >= 1`` even
    when every sentence is empty (padding only).
    """
    max_source_length = tf.cast(max_source_length, tf.int64)
    ragged = model.source_text.encode(strings)[:, :max_source_length]
    source_ids = _pad_to_at_least_one(tf.cast(ragged.to_tensor(default_value=PAD_ID), tf.int32))

    def dense(strings_ragged):
        out = strings_ragged[:, :max_source_length].to_tensor(default_value="")
        return tf.pad(out, [[0, 0], [0, tf.shape(source_ids)[1] - tf.shape(out)[1]]])

    tokens = dense(model.source_text.tokenize(strings))
    length = tf.cast(ragged.row_lengths(), tf.int32)
    if not with_words:
        return source_ids, tokens, length
    words = tokens if not model.source_text.subword else dense(model.source_text.token_words(strings))
    # Names and numbers: the word as written starts with a capital or a digit.
    name_like = tf.strings.regex_full_match(dense(model.source_text.token_words_as_written(strings)),
                                            r"[\p{Lu}\p{Lt}\p{Nd}].*")
    return source_ids, tokens, length, words, name_like


# ---------------------------------------------------------------------- everything out
def _target_outputs(model, tokens, length):
    """Token ids [..., tgt_len] and lengths [...] -> text [...] and token strings [..., tgt_len] ("" on padding)."""
    target_tokens = model.target_text.ids_to_tokens(tokens)
    valid = tf.sequence_mask(length, tf.shape(tokens)[-1])
    shape = tf.shape(tokens)
    flat_text = model.target_text.detokenize(tf.reshape(tokens, [-1, shape[-1]]))
    return tf.reshape(flat_text, shape[:-1]), tf.where(valid, target_tokens, "")


def translate_graph(
    model,
    strings,
    max_length=DEFAULT_MAX_LENGTH,
    *,
    method: str = "greedy",
    beam_width=DEFAULT_BEAM_WIDTH,
    length_penalty=DEFAULT_LENGTH_PENALTY,
    temperature=DEFAULT_TEMPERATURE,
    seed=0,
    max_source_length=DEFAULT_MAX_SOURCE_LENGTH,
    replace_unk=DEFAULT_REPLACE_UNK,
    unk_dictionary_keys=None,
    unk_dictionary_values=None,
    block_ngram_repeat=None,
    copy_unknown_names=DEFAULT_COPY_UNKNOWN_NAMES,
    search=None,
    coverage_penalty=DEFAULT_COVERAGE_PENALTY,
):
    """Raw strings -> every output a caller (Python API or SavedModel) needs, dense and batch-major.

    ``strings``: string [batch]. Returns a dict with ``translation`` string
    [batch], ``source_tokens`` string [batch, src_len], ``source_length`` int32
    [batch], ``target_tokens`` string [batch, tgt_len], ``target_length`` int32
    [batch], ``attention`` float32 [batch, tgt_len, src_len], ``log_prob`` and
    ``score`` float32 [batch], ``replaced`` int32 [batch, tgt_len] (1 where an
    ``[UNK]`` was replaced by a source word). For ``method="beam"`` also every
    hypothesis, best first: ``beams_translation`` string [batch, k],
    ``beams_target_tokens`` [batch, k, tgt_len], ``beams_target_length`` int32
    [batch, k], ``beams_attention`` float32 [batch, k, tgt_len, src_len],
    ``beams_log_prob`` and ``beams_score`` float32 [batch, k],
    ``beams_replaced`` int32 [batch, k, tgt_len] and ``beams_count`` int32
    [batch]: hypotheses ``0 .. beams_count - 1`` are the real ones (at least 1:
    a sentence with nothing to translate has the empty one); a sentence with
    fewer than ``k`` (a tiny vocabulary, a 1-token cap) has empty entries after
    them: text ``""``, length 0, no tokens, zero attention, ``log_prob`` and
    ``score`` 0.0 (see :func:`~seq2seq_keras.search.beam_search`). ``target_ids`` int32 [batch,
    tgt_len] are the returned hypothesis' token ids before replacement (0 after
    ``[END]``): what the decoder was fed, for recomputing its attention per head.

    ``replace_unk`` (bool scalar), ``copy_unknown_names`` (bool scalar; only
    with ``replace_unk``) and ``unk_dictionary_keys`` / ``unk_dictionary_values``
    (string [n], keys standardised like the source): see
    :func:`~seq2seq_keras.unknown_words.replace_unknown_words`. ``block_ngram_repeat``
    (int32 scalar): see :func:`~seq2seq_keras.search.repeated_ngram_tokens`; ``None``
    is the method's default (:data:`DEFAULT_BEAM_BLOCK_NGRAM_REPEAT` for beam, 0 otherwise).
    ``coverage_penalty`` (float32 scalar, beam only): GNMT ``beta``, see
    :func:`~seq2seq_keras.search.coverage_penalty`. A Python number or constant 0 for
    either option keeps its bookkeeping out of the decode loop altogether.
    ``search``: for ``method="greedy"``, a function ``(model, source_ids, max_length,
    block_ngram_repeat)`` returning :func:`~seq2seq_keras.search.greedy_search`'s dict, run
    instead of it (e.g. :func:`seq2seq_keras.compiled_search.compiled_greedy_search`, XLA-compiled).

    Raises:
        ValueError: ``method`` is not one of :data:`METHODS`.
    """
    check_method(method)
    if block_ngram_repeat is None:
        block_ngram_repeat = default_block_ngram_repeat(method)
    if unk_dictionary_keys is None or unk_dictionary_values is None:
        unk_dictionary_keys, unk_dictionary_values = empty_dictionary()
    source_ids, source_tokens, source_length, source_words, name_like = encode_source(
        model, strings, max_source_length, with_words=True
    )

    def replace(ids, text, tokens, attention, source):
        return replace_in_hypotheses(model, ids, text, tokens, attention, source, replace_unk, unk_dictionary_keys,
                                     unk_dictionary_values, copy_unknown_names)

    source = (source_ids, source_words, name_like)
    outputs = {"source_tokens": source_tokens, "source_length": source_length}
    if method == "beam":
        beams = beam_search(model, source_ids, max_length, beam_width, length_penalty, block_ngram_repeat,
                            coverage_penalty)
        outputs.update(_every_beam_outputs(model, beams, source, replace))
        result = {name: value[:, 0] for name, value in beams.items() if name != "count"}
    elif method == "sample":
        result = sample_search(model, source_ids, max_length, temperature, seed, block_ngram_repeat)
    else:
        result = (search or greedy_search)(model, source_ids, max_length, block_ngram_repeat)
    outputs.update(_hypothesis_outputs(model, result, source, replace))
    return outputs


def _hypothesis_outputs(model, result, source, replace):
    """The returned hypothesis of every sentence (a search's dict, [batch, ...]) -> the main outputs."""
    text, tokens = _target_outputs(model, result["tokens"], result["length"])
    text, tokens, replaced = replace(result["tokens"], text, tokens, result["attention"], source)
    return dict(
        translation=text,
        target_tokens=tokens,
        target_length=result["length"],
        target_ids=result["tokens"],
        attention=result["attention"],
        log_prob=result["log_prob"],
        score=result["score"],
        replaced=replaced,
    )


def _every_beam_outputs(model, beams, source, replace):
    """Every hypothesis of a beam search ([batch, k, ...], best first; ``count`` [batch] real) -> the ``beams_*``
    outputs.

    Replacement works on one hypothesis per row, so the k hypotheses of a sentence
    are flattened to k rows (each with its sentence's source) and reshaped back.
    """
    text, tokens = _target_outputs(model, beams["tokens"], beams["length"])
    shape = tf.shape(beams["tokens"])  # [batch, k, tgt_len]
    flat_source = tuple(tf.repeat(x, shape[1], axis=0) for x in source)
    flat_text, flat_tokens, flat_replaced = replace(
        tf.reshape(beams["tokens"], [-1, shape[2]]), tf.reshape(text, [-1]), tf.reshape(tokens, [-1, shape[2]]),
        tf.reshape(beams["attention"], [shape[0] * shape[1], shape[2], -1]), flat_source,
    )
    return dict(
        beams_translation=tf.reshape(flat_text, shape[:2]),
        beams_target_tokens=tf.reshape(flat_tokens, shape),
        beams_target_length=beams["length"],
        beams_attention=beams["attention"],
        beams_log_prob=beams["log_prob"],
        beams_score=beams["score"],
        beams_replaced=tf.reshape(flat_replaced, shape),
        beams_count=beams["count"],
    )


# ---------------------------------------------------------------------- the Python API
def _compiled_translate(model, method: str):
    cache = getattr(model, "_seq2seq_translate_fns", None)
    if cache is None:
        cache = {}
        # Plain attribute (not tracked by Keras): a cache, not part of the model.
        object.__setattr__(model, "_seq2seq_translate_fns", cache)
    if method not in cache:

        def run(strings, max_length, max_source_length, beam_width, length_penalty, temperature, seed,
                replace_unk, unk_keys, unk_values, block_ngram_repeat, copy_unknown_names, coverage_penalty):
            return translate_graph(
                model, strings, max_length, method=method, beam_width=beam_width, length_penalty=length_penalty,
                temperature=temperature, seed=seed, max_source_length=max_source_length,
                replace_unk=replace_unk, unk_dictionary_keys=unk_keys, unk_dictionary_values=unk_values,
                block_ngram_repeat=block_ngram_repeat, copy_unknown_names=copy_unknown_names,
                coverage_penalty=coverage_penalty,
            )

        cache[method] = tf.function(
            run,
            input_signature=[
                tf.TensorSpec([None], tf.string),
                tf.TensorSpec([], tf.int32),
                tf.TensorSpec([], tf.int32),
                tf.TensorSpec([], tf.int32),
                tf.TensorSpec([], tf.float32),
                tf.TensorSpec([], tf.float32),
                tf.TensorSpec([], tf.int64),
                tf.TensorSpec([], tf.bool),
                tf.TensorSpec([None], tf.string),
                tf.TensorSpec([None], tf.string),
                tf.TensorSpec([], tf.int32),
                tf.TensorSpec([], tf.bool),
                tf.TensorSpec([], tf.float32),
            ],
        )
    return cache[method]


def translate(
    model, texts: str | bytes | Iterable[str | bytes], *, method: str = "greedy",
    beam_width: int = DEFAULT_BEAM_WIDTH, length_penalty: float = DEFAULT_LENGTH_PENALTY, n_best: int = 1,
    temperature: float = DEFAULT_TEMPERATURE, seed: int | None = None, max_length: int | None = None,
    max_source_length: int | None = None, batch_size: int = 256, replace_unk: bool = DEFAULT_REPLACE_UNK,
    unk_dictionary: dict[str, str] | None = None, block_ngram_repeat: int | None = None,
    copy_unknown_names: bool = DEFAULT_COPY_UNKNOWN_NAMES, coverage_penalty: float = DEFAULT_COVERAGE_PENALTY,
):
    """Translate raw sentences with ``model``.

    Args:
        texts: one sentence (``str`` or ``bytes``; returns one
            :class:`Translation`) or an iterable of them (returns a list, in
            order; an empty list gives ``[]``).
        method: ``"greedy"``, ``"sample"`` or ``"beam"``.
        beam_width: hypotheses kept per sentence (``method="beam"``).
        length_penalty: GNMT ``alpha`` for beam search; 0 ranks by
            log-probability alone, larger values favour longer outputs.
        n_best: with beam search, also return the next ``n_best - 1``
            hypotheses in ``Translation.alternatives`` (``n_best <= beam_width``);
            fewer where the search found fewer real hypotheses (never a
            placeholder: see :func:`~seq2seq_keras.search.beam_search`).
        temperature: ``method="sample"``: divides the logits; < 1 is closer to
            greedy, > 1 more varied. Must be > 0.
        seed: ``method="sample"``: the same seed (and the same inputs in the same
            order) gives the same translations; ``None`` draws a fresh seed.
        max_length: cap on target tokens (default :data:`DEFAULT_MAX_LENGTH`);
            each sentence is also capped at ``2 * source tokens + 10``.
        max_source_length: longer sources are truncated to this many tokens
            (default :data:`DEFAULT_MAX_SOURCE_LENGTH`).
        batch_size: sentences per graph call.
        replace_unk: replace every ``[UNK]`` of the output by the source word
            under the attention argmax at that step (default on; a model
            without attention leaves ``[UNK]`` as it is). The replaced positions
            are in ``Translation.replaced``.
        copy_unknown_names: with ``replace_unk``, also copy a source word
            outside the source vocabulary that starts with a capital or a digit
            (a name or number) over the output word attending to it most, when
            the model did not say ``[UNK]`` there (default on).
        unk_dictionary: ``{source word: target text}`` looked up before copying
            (e.g. ``{"bruselas": "Brussels"}``); keys are standardised like the
            source.
        block_ngram_repeat: ``n > 0`` never outputs a token that repeats an
            ``n``-gram already in the output (OpenNMT's option); ``0`` turns it
            off; ``None`` is the method's default (0 for greedy and sampling:
            greedy stays exact greedy; :data:`DEFAULT_BEAM_BLOCK_NGRAM_REPEAT`
            for beam).
        coverage_penalty: GNMT coverage penalty ``beta`` for beam search (Wu et
            al. 2016): hypotheses whose attention has left source words uncovered
            rank lower (``+ beta * sum_i log(min(coverage_i, 1))``); 0 turns it off
            (default :data:`DEFAULT_COVERAGE_PENALTY`).

    Returns a :class:`~seq2seq_keras.translation.Translation` per sentence.

    Raises:
        ValueError, TypeError: an argument that is out of range or of the wrong
            type (:func:`~seq2seq_keras.decoding_options.checked_options`), or
            ``texts`` that are not sentences; the message says which.

    See the module docstring for what empty, very long or malformed input gives.
    """
    check_method(method)
    single, raw = _sentences_as_bytes(texts)
    options = checked_options(
        method=method, beam_width=beam_width, length_penalty=length_penalty, n_best=n_best, temperature=temperature,
        seed=seed, max_length=max_length, max_source_length=max_source_length, batch_size=batch_size,
        replace_unk=replace_unk, block_ngram_repeat=block_ngram_repeat, copy_unknown_names=copy_unknown_names,
        coverage_penalty=coverage_penalty,
    )
    unk_keys, unk_values = unk_dictionary_tensors(model, unk_dictionary)
    fn = _compiled_translate(model, method)
    results: list[Translation] = []
    for chunk_index, start in enumerate(range(0, len(raw), options["batch_size"])):
        chunk = raw[start:start + options["batch_size"]]
        out = fn(*_graph_arguments(chunk, chunk_index, options, unk_keys, unk_values))
        results.extend(results_to_translations(
            out, [readable(s) for s in chunk], has_attention=model.has_attention, n_best=options["n_best"]
        ))
    return results[0] if single else results


def _sentences_as_bytes(texts) -> tuple[bool, list[bytes]]:
    """(whether ``texts`` is one sentence, the sentences as UTF-8 bytes); raises TypeError for anything else."""
    single = isinstance(texts, (str, bytes, np.str_))
    if single:
        sentences = [texts]
    else:
        try:
            sentences = list(texts)
        except TypeError:
            raise TypeError(
                f"translate() takes a sentence (str or bytes) or a list of them, got {type(texts).__name__}."
            ) from None
    return single, [as_utf8_bytes(s) for s in sentences]


def _graph_arguments(chunk, chunk_index, options, unk_keys, unk_values) -> tuple:
    """The inputs of :func:`_compiled_translate`'s function for one chunk of sentences, in its signature's order.

    Chunk ``i`` samples with seed ``seed + i``, so a long list does not repeat the first chunk's draws.
    """
    return (
        tf.constant(chunk, tf.string),
        tf.constant(options["max_length"], tf.int32),
        tf.constant(options["max_source_length"], tf.int32),
        tf.constant(options["beam_width"], tf.int32),
        tf.constant(options["length_penalty"], tf.float32),
        tf.constant(options["temperature"], tf.float32),
        tf.constant((options["seed"] + chunk_index) % 2**63, tf.int64),
        tf.constant(options["replace_unk"]),
        unk_keys,
        unk_values,
        tf.constant(options["block_ngram_repeat"], tf.int32),
        tf.constant(options["copy_unknown_names"]),
        tf.constant(options["coverage_penalty"], tf.float32),
    )
