"""Unknown-word replacement through attention, after the search (Luong et al. 2015; OpenNMT's ``replace_unk``).

A word vocabulary has no entry for most names, numbers and rare words: the
model reads them as ``[UNK]`` and often says ``[UNK]`` where they belong. Luong
et al. 2015, "Addressing the Rare Word Problem in Neural Machine Translation",
replace every output ``[UNK]`` by the source word the decoder attended to most
at that step, optionally looked up in a dictionary first (a phrase table).

* :func:`replace_unknown_words` does it on tensors: token ids, their strings,
  the hypothesis' own attention rows and the source words (the whole word a
  WordPiece belongs to). With ``copy_names`` an out-of-vocabulary source name
  or number (leading capital or digit) is also copied over the output word
  attending to it most, when the model said a known word instead of ``[UNK]``.
* :func:`replace_in_hypotheses` applies it to the search's output and rebuilds
  the text of the sentences that changed;
* :func:`unk_dictionary_tensors` / :func:`read_unk_dictionary`: the user's
  ``{source word: target text}`` dictionary, for the graph and from a file.

The search, the log-probability and the attention are never changed; only the
returned tokens and text are, and ``replaced`` says where.
"""

from __future__ import annotations

import tensorflow as tf

from ..text import END_ID, UNK_ID, join_words


def empty_dictionary():
    """An empty ``unk_dictionary`` for the graph: (keys, values), string [0] each."""
    return tf.zeros([0], tf.string), tf.zeros([0], tf.string)


def replace_unknown_words(
    target_ids,
    target_tokens,
    attention,
    source_words,
    enabled=True,
    dictionary_keys=None,
    dictionary_values=None,
    *,
    copy_names=False,
    source_ids=None,
    source_name_like=None,
):
    """Unknown-word replacement through attention (Luong et al. 2015; OpenNMT's ``replace_unk``).

    Every ``[UNK]`` of a hypothesis becomes the source word with the highest
    attention weight at that step; when that word is a key of the dictionary,
    its value is used instead (e.g. a phrase table; several keys: the first).

    With ``copy_names``, also every name or number the model cannot read: a source
    word outside the source vocabulary (``source_ids == [UNK]``) written with a
    leading capital or digit (``source_name_like``) is copied over the output
    word of the step that attends to it most, among the steps whose attention
    argmax it is and whose output is a word (letters or digits, not punctuation
    nor ``[END]``). A model trained on data where names are in the vocabulary
    rarely says ``[UNK]`` for a new name: it drops it or says a known one
    ("Zorvak failed" -> "it failed"); this copies it back. A name that is the
    attention argmax of no word step (the model left it out: "estamos en Trizudor
    ahora" -> "we're in now") is written next to the step attending it most,
    after a word, before punctuation ("we're in trizudor now"); that step's token
    then holds two words and is marked replaced.

    Args:
        target_ids: int [batch, tgt_len], the returned hypothesis' token ids.
        target_tokens: string [batch, tgt_len], their strings ("" on padding).
        attention: float32 [batch, tgt_len, src_len], the returned hypothesis'
            own attention rows.
        source_words: string [batch, src_len], the source word of every source
            position ("" on padding).
        enabled: bool scalar; ``False`` returns the tokens unchanged.
        dictionary_keys, dictionary_values: string [n] (standardised source
            words, target text); ``n = 0`` or ``None`` copies the source word.
        copy_names: bool scalar (see above).
        source_ids: int [batch, src_len], needed with ``copy_names``.
        source_name_like: bool [batch, src_len], needed with ``copy_names``.

    Returns (tokens string [batch, tgt_len], replaced bool [batch, tgt_len]).
    An ``[UNK]`` whose attention points at an empty source position (padding
    only) stays ``[UNK]`` and is not marked.
    """
    if dictionary_keys is None or dictionary_values is None:
        dictionary_keys, dictionary_values = empty_dictionary()
    position = tf.argmax(attention, axis=-1, output_type=tf.int32)  # [batch, tgt_len]
    translated_source = _look_up(source_words, dictionary_keys, dictionary_values)  # [batch, src_len]
    translated = tf.gather(translated_source, position, batch_dims=1)
    copied = tf.gather(source_words, position, batch_dims=1)
    replaced = tf.equal(target_ids, UNK_ID) & tf.not_equal(target_tokens, "") & tf.not_equal(copied, "")
    enabled = tf.cast(enabled, tf.bool)
    if source_ids is None or source_name_like is None:
        replaced = tf.logical_and(replaced, enabled)
        return tf.where(replaced, translated, target_tokens), replaced
    copy_names = tf.logical_and(tf.cast(copy_names, tf.bool), enabled)
    unknown = tf.logical_and(tf.equal(tf.cast(source_ids, tf.int32), UNK_ID), source_name_like)  # [batch, src_len]
    replaced = tf.logical_and(
        tf.logical_or(
            replaced, tf.logical_and(copy_names, _name_copies(target_ids, target_tokens, attention, position, unknown))
        ),
        enabled,
    )
    tokens = tf.where(replaced, translated, target_tokens)
    tokens, inserted = _insert_uncopied_names(
        target_ids,
        tokens,
        replaced,
        attention,
        position,
        tf.logical_and(unknown, copy_names),
        source_words,
        translated_source,
    )
    return tokens, tf.logical_or(replaced, inserted)


def _look_up(words, keys, values):
    """string [...] -> string [...]: each word's dictionary value (the first matching key), else the word."""
    match = tf.equal(words[..., None], keys)  # [..., n]
    found = tf.reduce_any(match, axis=-1)
    # One never-matching column more, so argmax and gather are defined for an empty dictionary.
    pad = [[0, 0]] * (len(words.shape)) + [[0, 1]]
    first = tf.argmax(tf.cast(tf.pad(match, pad), tf.int32), axis=-1, output_type=tf.int32)
    return tf.where(found, tf.gather(tf.concat([values, [""]], 0), first), words)


def _insert_uncopied_names(target_ids, tokens, replaced, attention, position, unknown, source_words, translated_source):
    """Unknown names/numbers that no step attends most (so :func:`_name_copies` had no step for them),
    written next to the step attending them most: after it when it is a word, before punctuation.

    Args: ``tokens`` string [batch, tgt_len] (after replacement), ``replaced`` bool [batch, tgt_len],
    ``attention`` [batch, tgt_len, src_len], ``position`` int32 [batch, tgt_len] (each step's argmax),
    ``unknown`` bool [batch, src_len] (the names to copy), ``source_words`` and ``translated_source``
    string [batch, src_len] (the words, and what to write for them). A name already in the output is
    left alone; ``[END]`` and padding steps never take one. Returns (tokens, inserted bool [batch, tgt_len]).
    """
    src_len, tgt_len = tf.shape(source_words)[1], tf.shape(tokens)[1]
    valid = tf.logical_and(tf.not_equal(tokens, ""), tf.not_equal(target_ids, END_ID))  # [batch, tgt_len]
    points = tf.equal(position[:, :, None], tf.range(src_len)[None, None, :])  # [batch, tgt_len, src_len]
    covered = tf.reduce_any(tf.logical_and(points, replaced[:, :, None]), axis=1)  # [batch, src_len]
    already = tf.reduce_any(tf.equal(tokens[:, :, None], translated_source[:, None, :]), axis=1)
    missing = unknown & ~covered & ~already & tf.reduce_any(valid, axis=1)[:, None]
    step = tf.argmax(tf.where(valid[:, :, None], attention, -1.0), axis=1, output_type=tf.int32)  # [batch, src_len]
    at = missing[:, None, :] & tf.equal(step[:, None, :], tf.range(tgt_len)[None, :, None])  # [batch, tgt, src]
    names = tf.strings.reduce_join(tf.where(at, translated_source[:, None, :], ""), axis=-1, separator=" ")
    names = tf.strings.strip(tf.strings.regex_replace(names, " +", " "))
    inserted = tf.reduce_any(at, axis=-1)
    after = tf.strings.regex_full_match(tokens, r"[\p{L}\p{N}].*|\[UNK\]|##.+")
    written = tf.where(after, tf.strings.join([tokens, names], " "), tf.strings.join([names, tokens], " "))
    return tf.where(inserted, written, tokens), inserted


def _name_copies(target_ids, target_tokens, attention, position, unknown):
    """bool [batch, tgt_len]: the steps that get an unknown source name/number copied (see
    :func:`replace_unknown_words`): per such source word (``unknown`` [batch, src_len]), the word step
    attending to it most."""
    is_word = tf.logical_and(
        tf.strings.regex_full_match(target_tokens, r"[\p{L}\p{N}].*|\[UNK\]"), tf.not_equal(target_ids, END_ID)
    )
    eligible = tf.logical_and(is_word, tf.gather(unknown, position, batch_dims=1))  # [batch, tgt_len]
    weight = tf.where(eligible, tf.gather(attention, position, axis=2, batch_dims=2), -1.0)
    # Step i loses to step i2 attending the same source word with more weight (the earlier one on a tie).
    same = tf.logical_and(tf.equal(position[:, :, None], position[:, None, :]), eligible[:, None, :])
    steps = tf.range(tf.shape(position)[1])
    stronger = tf.logical_or(
        weight[:, None, :] > weight[:, :, None],
        tf.logical_and(tf.equal(weight[:, None, :], weight[:, :, None]), steps[None, None, :] < steps[None, :, None]),
    )
    return tf.logical_and(eligible, tf.logical_not(tf.reduce_any(tf.logical_and(same, stronger), axis=2)))


def _tokens_to_text(processor, ids, tokens):
    """ids int [batch, tgt_len] and their strings (possibly replaced) -> text string [batch].

    The same rules as :meth:`TextProcessor.detokenize` (reading stops at
    ``[END]``, specials dropped, pieces joined, punctuation tidied), on strings.
    """
    ids = tf.cast(ids, tf.int64)
    ended = tf.cumsum(tf.cast(tf.equal(ids, END_ID), tf.int32), axis=-1) > 0
    keep = tf.logical_and(tf.logical_not(ended), tf.logical_or(ids > END_ID, tf.equal(ids, UNK_ID)))
    text = tf.strings.reduce_join(tf.ragged.boolean_mask(tokens, keep), axis=-1, separator=" ")
    if processor.subword:
        text = tf.strings.regex_replace(text, r" ##", "")
    return join_words(text)


def replace_in_hypotheses(model, ids, text, tokens, attention, source, replace_unk, keys, values, copy_names):
    """One hypothesis per sentence, after :func:`replace_unknown_words`.

    Args:
        model: the :class:`~seq2seq_keras.model.Seq2Seq` (its target processor
            and whether it has attention: without, nothing is replaced).
        ids: int [batch, tgt_len], the hypothesis' token ids; ``text`` string
            [batch] and ``tokens`` string [batch, tgt_len] their detokenization.
        attention: float32 [batch, tgt_len, src_len], the hypothesis' own rows.
        source: (source ids, source words, name-like flags), each [batch, src_len].
        replace_unk, copy_names: bool scalars; ``keys``, ``values``: string [n].

    Returns (text string [batch], tokens string [batch, tgt_len], replaced int32
    [batch, tgt_len]); a sentence without a replacement keeps its text bit for bit.
    """
    enabled = tf.logical_and(tf.cast(replace_unk, tf.bool), model.has_attention)
    source_ids, source_words, name_like = source
    new_tokens, replaced = replace_unknown_words(
        ids,
        tokens,
        attention,
        source_words,
        enabled,
        keys,
        values,
        copy_names=copy_names,
        source_ids=source_ids,
        source_name_like=name_like,
    )
    any_replaced = tf.reduce_any(replaced, axis=-1)
    # Sentences without a replacement keep the processor's own detokenization, bit for bit.
    text = tf.where(any_replaced, _tokens_to_text(model.target_text, ids, new_tokens), text)
    return text, new_tokens, tf.cast(replaced, tf.int32)


# ---------------------------------------------------------------------- the user's dictionary
def unk_dictionary_tensors(model, pairs):
    """``(source word, target text)`` pairs -> (keys, values) string [n] for the graph.

    ``pairs`` as :class:`~seq2seq_keras.decoding.options.DecodingOptions` holds them (checked
    there: ``str`` to ``str``). Keys are standardised like the source side (lower-cased, accents
    stripped for Latin scripts, ...), so ``{"José": "José"}`` matches the source word ``jose``
    the model sees. Values are used as written.
    """
    if not pairs:
        return empty_dictionary()
    keys, values = zip(*pairs)
    return model.source_text.standardize(tf.constant(keys, tf.string)), tf.constant(values, tf.string)


def read_unk_dictionary(path) -> dict[str, str]:
    """A dictionary file for ``--unk-dictionary``: one ``source<TAB>target`` pair per line (UTF-8).

    Empty lines and lines starting with ``#`` are skipped; the first entry of a
    repeated source word wins.
    """
    entries: dict[str, str] = {}
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            line = line.rstrip("\n")
            if not line.strip() or line.startswith("#"):
                continue
            if "\t" not in line:
                raise ValueError(f"{path}:{number}: expected 'source<TAB>target', got {line!r:.80}.")
            key, value = line.split("\t", 1)
            entries.setdefault(key.strip(), value.strip())
    return entries
