"""Decoding: turning a trained :class:`~seq2seq_keras.model.Seq2Seq` into translations.

All search runs inside the TensorFlow graph (``tf.while_loop``), batched, and
stops per sentence at ``[END]``: raw strings in, tokens and attention out.

Output length: a sentence of ``S`` source tokens may produce at most
``min(max_length, 2 * S + 10)`` target tokens (``[END]`` included), where
``max_length`` defaults to :data:`DEFAULT_MAX_LENGTH`. Sources longer than the
source processor's ``max_length`` (if set) are truncated before encoding.
"""

from __future__ import annotations

import dataclasses
from typing import Sequence

import numpy as np
import tensorflow as tf
from keras import ops

from .text import END_ID, PAD_ID, START_ID, to_python_strings

DEFAULT_MAX_LENGTH = 100


@dataclasses.dataclass
class Translation:
    """One translated sentence.

    ``attention[i, j]`` is the weight output token ``target_tokens[i]`` put on
    ``source_tokens[j]``; shape [len(target_tokens), len(source_tokens)]; ``None``
    for a model without attention. ``target_tokens`` ends with ``[END]`` when the
    decoder emitted it (``text`` never contains it).
    """

    source: str
    text: str
    source_tokens: list[str]
    target_tokens: list[str]
    attention: np.ndarray | None
    log_prob: float

    def __str__(self) -> str:
        return self.text


def _pad_to_at_least_one(ids):
    """[batch, src_len] -> [batch, max(src_len, 1)]: a batch of empty strings still encodes."""
    return tf.pad(ids, [[0, 0], [0, tf.maximum(0, 1 - tf.shape(ids)[1])]])


def encode_source(model, strings):
    """``string[batch]`` -> (source_ids int32 [batch, src_len], source tokens string [batch, src_len],
    source_length int32 [batch])."""
    ragged = model.source_text.encode(strings)
    source_ids = _pad_to_at_least_one(tf.cast(ragged.to_tensor(default_value=PAD_ID), tf.int32))
    tokens = model.source_text.tokenize(strings).to_tensor(default_value="")
    tokens = tf.pad(tokens, [[0, 0], [0, tf.shape(source_ids)[1] - tf.shape(tokens)[1]]])
    return source_ids, tokens, tf.cast(ragged.row_lengths(), tf.int32)


def greedy_search(model, source_ids, max_length):
    """Greedy decoding in the graph.

    Args:
        source_ids: int32 [batch, src_len], 0-padded.
        max_length: int32 scalar cap on target tokens per sentence.

    Returns a dict: ``tokens`` int32 [batch, tgt_len] (0 after ``[END]``),
    ``length`` int32 [batch] (``[END]`` included), ``attention`` float32
    [batch, tgt_len, src_len] (0 on padding rows), ``log_prob`` float32 [batch]
    (sum of the chosen tokens' log-probabilities).
    """
    encoder_outputs, encoder_states, source_mask = model.encoder(source_ids, training=False)
    state, memory = model.decoder.start(encoder_outputs, encoder_states, source_mask)
    batch = tf.shape(source_ids)[0]
    source_length = tf.reduce_sum(tf.cast(source_mask, tf.int32), axis=1)
    limit = tf.minimum(max_length, 2 * source_length + 10)  # [batch]
    # At least one step, even for a batch of 0, so every output has a defined shape.
    steps = tf.reduce_max(tf.concat([limit, [1]], axis=0))

    tokens_ta = tf.TensorArray(tf.int32, size=0, dynamic_size=True)
    weights_ta = tf.TensorArray(tf.float32, size=0, dynamic_size=True)
    token = tf.fill([batch], START_ID)
    done = tf.zeros([batch], tf.bool)
    length = tf.zeros([batch], tf.int32)
    log_prob = tf.zeros([batch], tf.float32)

    def cond(i, token, state, done, length, log_prob, tokens_ta, weights_ta):
        return tf.logical_and(i < steps, tf.logical_or(i == 0, tf.logical_not(tf.reduce_all(done))))

    def body(i, token, state, done, length, log_prob, tokens_ta, weights_ta):
        logits, state, weights = model.decoder.step(token, state, memory, training=False)
        log_probs = tf.nn.log_softmax(tf.cast(logits, tf.float32), axis=-1)
        next_token = tf.cast(tf.argmax(log_probs, axis=-1), tf.int32)
        next_token = tf.where(done, PAD_ID, next_token)
        chosen = tf.gather(log_probs, next_token, batch_dims=1)
        log_prob = log_prob + tf.where(done, 0.0, chosen)
        weights = tf.where(done[:, None], 0.0, tf.cast(weights, tf.float32))
        length = length + tf.cast(tf.logical_not(done), tf.int32)
        done = tf.logical_or(done, tf.equal(next_token, END_ID))
        done = tf.logical_or(done, length >= limit)
        return i + 1, next_token, state, done, length, log_prob, tokens_ta.write(i, next_token), weights_ta.write(i, weights)

    _, _, _, _, length, log_prob, tokens_ta, weights_ta = tf.while_loop(
        cond, body, (tf.constant(0), token, state, done, length, log_prob, tokens_ta, weights_ta)
    )
    src_len = tf.shape(source_ids)[1]
    tokens = tf.reshape(tf.transpose(tokens_ta.stack(), (1, 0)), [batch, -1])
    attention = tf.reshape(tf.transpose(weights_ta.stack(), (1, 0, 2)), [batch, -1, src_len])
    return {"tokens": tokens, "length": length, "attention": attention, "log_prob": log_prob}


def translate_graph(model, strings, max_length):
    """Raw strings -> every output a caller (Python API or SavedModel) needs, dense and batch-major."""
    source_ids, source_tokens, source_length = encode_source(model, strings)
    result = greedy_search(model, source_ids, max_length)
    target_tokens = model.target_text.ids_to_tokens(result["tokens"])
    valid = tf.sequence_mask(result["length"], tf.shape(result["tokens"])[1])
    return {
        "translation": model.target_text.detokenize(result["tokens"]),
        "source_tokens": source_tokens,
        "source_length": source_length,
        "target_tokens": tf.where(valid, target_tokens, ""),
        "target_length": result["length"],
        "attention": result["attention"],
        "log_prob": result["log_prob"],
    }


def _compiled_translate(model):
    fn = getattr(model, "_seq2seq_translate_fn", None)
    if fn is None:
        fn = tf.function(
            lambda strings, max_length: translate_graph(model, strings, max_length),
            input_signature=[tf.TensorSpec([None], tf.string), tf.TensorSpec([], tf.int32)],
            reduce_retracing=True,
        )
        # Plain attribute (not tracked by Keras): a cache, not part of the model.
        object.__setattr__(model, "_seq2seq_translate_fn", fn)
    return fn


def translate(model, texts: str | Sequence[str], *, max_length: int | None = None, batch_size: int = 256):
    """Greedy-translate raw sentences with ``model``; see :meth:`Seq2Seq.translate`."""
    single = isinstance(texts, (str, bytes))
    sentences = [texts] if single else list(texts)
    if max_length is None:
        max_length = DEFAULT_MAX_LENGTH
    if max_length < 1:
        raise ValueError(f"max_length must be >= 1, got {max_length}.")
    fn = _compiled_translate(model)
    results: list[Translation] = []
    for start in range(0, len(sentences), batch_size):
        chunk = sentences[start:start + batch_size]
        out = fn(tf.constant(chunk, tf.string), tf.constant(max_length, tf.int32))
        results.extend(results_to_translations(out, chunk, has_attention=model.has_attention))
    return results[0] if single else results


def results_to_translations(out, sources, has_attention=True) -> list[Translation]:
    """Turn a dict of batch-major outputs (graph, SavedModel or server) into Translations."""
    texts = to_python_strings(out["translation"])
    src_tokens = to_python_strings(out["source_tokens"])
    tgt_tokens = to_python_strings(out["target_tokens"])
    src_len = np.asarray(out["source_length"]).reshape(-1)
    tgt_len = np.asarray(out["target_length"]).reshape(-1)
    attention = np.asarray(out["attention"], dtype=np.float32)
    log_prob = np.asarray(out.get("log_prob", out.get("score", np.zeros(len(texts)))), dtype=np.float32).reshape(-1)
    translations = []
    for b, text in enumerate(texts):
        s, t = int(src_len[b]), int(tgt_len[b])
        source = sources[b]
        if isinstance(source, bytes):
            source = source.decode("utf-8", errors="replace")
        translations.append(
            Translation(
                source=source,
                text=text,
                source_tokens=src_tokens[b][:s],
                target_tokens=tgt_tokens[b][:t],
                attention=attention[b, :t, :s].copy() if has_attention else None,
                log_prob=float(log_prob[b]),
            )
        )
    return translations
