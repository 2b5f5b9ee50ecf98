"""Decoding: turning a trained :class:`~seq2seq_keras.model.Seq2Seq` into translations.

Strings in, :class:`~seq2seq_keras.translation.Translation` out:
:func:`translate` (the Python API behind ``model.translate`` and the CLI) and
:func:`translate_graph` (one graph from raw strings to every output, behind
:func:`translate` and every signature of the SavedModel). What a caller may ask
(method, beam width, limits, unknown-word replacement, ...) is
:class:`~seq2seq_keras.decoding.options.DecodingOptions`; the searches live in
:mod:`seq2seq_keras.decoding.search`, unknown-word replacement in
:mod:`seq2seq_keras.decoding.unknown_words`, the result type in
:mod:`seq2seq_keras.translation` and the outputs' names, dtypes and ranks in
:mod:`seq2seq_keras.serving.signatures`.

Every search returns, per sentence: target token ids, the target length
(``[END]`` included), the log-probability of the returned tokens under the model
(temperature does not change it) and the attention rows of the returned
hypothesis, ``[tgt_len, src_len]``.

Limits, with the same result everywhere (Python API, CLI, SavedModel):

* **source**: at most ``max_source_length`` tokens; longer sentences are
  truncated (the tail is dropped) before encoding, and ``source_tokens`` /
  ``source_length`` show what was kept. A source processor with its own
  ``max_length`` truncates first.
* **output**: a sentence of ``S`` source tokens produces at most
  ``min(max_length, 2 * S + 10)`` target tokens, ``[END]`` included
  (:func:`~seq2seq_keras.decoding.search.output_limit`); a hypothesis that reaches the cap
  stops there without ``[END]``.
* **no tokens** (empty string, only spaces or control characters): the
  translation is ``""``, ``target_length`` 0, log-probability 0 and a ``[0, 0]``
  attention matrix; the model is not asked to translate nothing.
* **any bytes** decode: invalid UTF-8 becomes U+FFFD, control characters
  become spaces, unknown words (emoji, other scripts) become ``[UNK]`` for the
  model while ``source_tokens`` keep the word as written (word vocabularies);
  ``Translation.unknown_source`` marks them and ``unknown_source_words`` names them
  (:meth:`TextProcessor.unknown_mask <seq2seq_keras.text.TextProcessor.unknown_mask>`).
* ``[START]`` and padding are never generated (their probability is kept in the
  softmax, so log-probabilities stay the model's own).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable

import numpy as np
import tensorflow as tf

from ..text import PAD_ID
from ..translation import Translation, as_utf8_bytes, readable, results_to_translations
from .options import DEFAULT_MAX_SOURCE_LENGTH, DecodingOptions, check_method, default_block_ngram_repeat
from .search import beam_search, greedy_search, sample_search
from .unknown_words import empty_dictionary, replace_in_hypotheses, unk_dictionary_tensors


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
    name_like = tf.strings.regex_full_match(
        dense(model.source_text.token_words_as_written(strings)), r"[\p{Lu}\p{Lt}\p{Nd}].*"
    )
    return source_ids, tokens, length, words, name_like


# ---------------------------------------------------------------------- everything out
def _target_outputs(model, tokens, length):
    """Token ids [..., tgt_len] and lengths [...] -> text [...] and token strings [..., tgt_len] ("" on padding)."""
    target_tokens = model.target_text.ids_to_tokens(tokens)
    valid = tf.sequence_mask(length, tf.shape(tokens)[-1])
    shape = tf.shape(tokens)
    flat_text = model.target_text.detokenize(tf.reshape(tokens, [-1, shape[-1]]))
    return tf.reshape(flat_text, shape[:-1]), tf.where(valid, target_tokens, "")


def translate_graph(model, strings, max_length=None, *, method: str = "greedy", search=None, **options):
    """Raw strings -> every output a caller (Python API or SavedModel) needs, dense and batch-major.

    Args:
        strings: string [batch].
        max_length: as the option of that name (may be given positionally).
        method: ``"greedy"``, ``"sample"`` or ``"beam"`` (a Python string: it picks the search).
        search: for ``method="greedy"``, a function ``(model, source_ids, max_length,
            block_ngram_repeat)`` returning :func:`~seq2seq_keras.decoding.search.greedy_search`'s dict,
            run instead of it (e.g. :func:`seq2seq_keras.decoding.xla_greedy.compiled_greedy_search`).
        options: the options that are tensors in the graph
            (:meth:`DecodingOptions.graph_fields <seq2seq_keras.decoding.options.DecodingOptions.graph_fields>`:
            ``beam_width``, ``length_penalty``, ``temperature``, ``seed``, ``max_source_length``,
            ``replace_unk``, ``copy_unknown_names``, ``unk_dictionary``, ``block_ngram_repeat``,
            ``coverage_penalty``), each a Python value or a scalar tensor of its field's dtype;
            ``unk_dictionary`` is string [2, n], the keys (standardised like the source) then
            their values. One left out takes its field's default (``block_ngram_repeat``: the
            method's; ``seed``: 0). A Python number or constant 0 for ``block_ngram_repeat`` or
            ``coverage_penalty`` keeps its bookkeeping out of the decode loop altogether.

    Returns a dict of the outputs :mod:`seq2seq_keras.serving.signatures` lists (names, dtypes, ranks),
    ``beams_*`` only for ``method="beam"``, plus ``target_ids`` int32 [batch, tgt_len]: the
    returned hypothesis' token ids before unknown-word replacement (0 after ``[END]``), what
    the decoder was fed, for recomputing its attention per head.

    Raises:
        ValueError: ``method`` is not one of :data:`~seq2seq_keras.decoding.options.METHODS`.
        TypeError: a keyword that is not a graph option.
    """
    check_method(method)
    fields = {f.name: f for f in DecodingOptions.graph_fields()}
    unknown = sorted(set(options) - set(fields))
    if unknown:
        raise TypeError(f"translate_graph: unknown option(s) {', '.join(unknown)}: choose among {', '.join(fields)}.")
    given = {name: f.default for name, f in fields.items()}
    given.update(seed=0, block_ngram_repeat=default_block_ngram_repeat(method))
    given.update(options)
    if max_length is not None:
        given["max_length"] = max_length
    if "unk_dictionary" in options:
        unk_keys, unk_values = given["unk_dictionary"][0], given["unk_dictionary"][1]
    else:
        unk_keys, unk_values = empty_dictionary()
    source_ids, source_tokens, source_length, source_words, name_like = encode_source(
        model, strings, given["max_source_length"], with_words=True
    )

    def replace(ids, text, tokens, attention, source):
        return replace_in_hypotheses(
            model,
            ids,
            text,
            tokens,
            attention,
            source,
            given["replace_unk"],
            unk_keys,
            unk_values,
            given["copy_unknown_names"],
        )

    source = (source_ids, source_words, name_like)
    # The word of every source token the model reads as [UNK] ("" elsewhere), for Translation.unknown_source.
    unknown = model.source_text.unknown_mask(strings)[:, : tf.cast(given["max_source_length"], tf.int64)]
    unknown = unknown.to_tensor(default_value=False)
    unknown = tf.pad(unknown, [[0, 0], [0, tf.shape(source_ids)[1] - tf.shape(unknown)[1]]])
    outputs = {
        "source_tokens": source_tokens,
        "source_length": source_length,
        "source_unknown_words": tf.where(unknown, source_words, ""),
    }
    max_length, block = given["max_length"], given["block_ngram_repeat"]
    if method == "beam":
        beams = beam_search(
            model,
            source_ids,
            max_length,
            given["beam_width"],
            given["length_penalty"],
            block,
            given["coverage_penalty"],
        )
        outputs.update(_every_beam_outputs(model, beams, source, replace))
        result = {name: value[:, 0] for name, value in beams.items() if name != "count"}
    elif method == "sample":
        result = sample_search(model, source_ids, max_length, given["temperature"], given["seed"], block)
    else:
        result = (search or greedy_search)(model, source_ids, max_length, block)
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
        tf.reshape(beams["tokens"], [-1, shape[2]]),
        tf.reshape(text, [-1]),
        tf.reshape(tokens, [-1, shape[2]]),
        tf.reshape(beams["attention"], [shape[0] * shape[1], shape[2], -1]),
        flat_source,
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
def graph_values(model, options: DecodingOptions) -> dict:
    """``{name: Python or NumPy value}`` of ``options``' graph fields, as :func:`translate_graph` takes them:
    ``unk_dictionary`` becomes bytes [2, n], its keys standardised like ``model``'s source."""
    values = {f.name: getattr(options, f.name) for f in DecodingOptions.graph_fields()}
    keys, texts = unk_dictionary_tensors(model, options.unk_dictionary)
    values["unk_dictionary"] = np.array([keys.numpy().tolist(), texts.numpy().tolist()], dtype=object).reshape(2, -1)
    return values


def graph_constants(values: dict) -> dict:
    """:func:`graph_values` as tensors of their fields' dtypes (constants when called while tracing)."""
    fields = {f.name: f for f in DecodingOptions.graph_fields()}
    return {name: tf.constant(value, fields[name].metadata["graph"]) for name, value in values.items()}


def _graph_signature() -> dict:
    """The ``tf.TensorSpec`` of every graph field, the input signature of :func:`_compiled_translate`'s options."""
    return {f.name: tf.TensorSpec(f.metadata["shape"], f.metadata["graph"]) for f in DecodingOptions.graph_fields()}


def _compiled_translate(model, method: str):
    """``fn(strings, options)``: :func:`translate_graph` traced once per model and method, every graph option a
    tensor input (so new values do not retrace). A ``functools.partial``, not a lambda: TensorFlow counts traces
    per Python function, and a lambda's would add every model's one trace up to a retracing warning."""
    cache = getattr(model, "_seq2seq_translate_fns", None)
    if cache is None:
        cache = {}
        # Plain attribute (not tracked by Keras): a cache, not part of the model.
        object.__setattr__(model, "_seq2seq_translate_fns", cache)
    if method not in cache:
        cache[method] = tf.function(
            functools.partial(_translate_with_options, model, method),
            input_signature=[tf.TensorSpec([None], tf.string), _graph_signature()],
        )
    return cache[method]


def _translate_with_options(model, method: str, strings, options: dict):
    return translate_graph(model, strings, method=method, **options)


def translate(
    model,
    texts: str | bytes | Iterable[str | bytes],
    options: DecodingOptions | None = None,
    *,
    progress: bool | str = False,
    **keywords,
):
    """Translate raw sentences with ``model``.

    Args:
        texts: one sentence (``str`` or ``bytes``; returns one :class:`Translation`) or an
            iterable of them (returns a list, in order; an empty list gives ``[]``).
        options: how to decode (:class:`~seq2seq_keras.decoding.options.DecodingOptions`;
            default: its defaults).
        keywords: fields of :class:`~seq2seq_keras.decoding.options.DecodingOptions`
            replacing those of ``options`` (``method="beam", beam_width=4, n_best=2``, ...).
        progress: show a progress bar over the sentences (a ``str``: its label). It does not
            change the translations.

    Returns a :class:`~seq2seq_keras.translation.Translation` per sentence. With ``n_best > 1``
    (beam search) each also holds the next hypotheses in ``alternatives``: fewer where the
    search found fewer real hypotheses (never a placeholder: see
    :func:`~seq2seq_keras.decoding.search.beam_search`). Sampling: chunk ``i`` of ``batch_size``
    sentences samples with seed ``seed + i``, so the same seed and inputs give the same draws.

    Raises:
        ValueError, TypeError: an option that is unknown, out of range or of the wrong type,
            or ``texts`` that are not sentences; the message says which.

    See the module docstring for what empty, very long or malformed input gives.
    """
    options = DecodingOptions.from_keywords(options, **keywords)
    single, raw = _sentences_as_bytes(texts)
    values = graph_values(model, options)
    fn = _compiled_translate(model, options.method)
    results: list[Translation] = []
    starts = range(0, len(raw), options.batch_size)
    if progress:
        from ..progress import progress_batches

        label = progress if isinstance(progress, str) else options.method
        starts = progress_batches(starts, True, label, total_items=len(raw), batch_size=options.batch_size)
    for chunk_index, start in enumerate(starts):
        chunk = raw[start : start + options.batch_size]
        seed = (options.seed + chunk_index) % 2**63
        out = fn(tf.constant(chunk, tf.string), graph_constants(dict(values, seed=seed)))
        results.extend(
            results_to_translations(
                out, [readable(s) for s in chunk], has_attention=model.has_attention, n_best=options.n_best
            )
        )
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
