"""Greedy search compiled with XLA (``jit_compile=True``), for the ``*_xla`` serving signatures.

What compiles and what does not. The whole of ``translate_graph`` cannot: tensorflow-text's
tokenizers, lookup tables and string ops have no XLA kernels. :func:`search.greedy_search`
itself, wrapped in ``tf.function(jit_compile=True)``, compiles but returns *empty* tokens
(shape ``[batch, 0]``, no error) on TF 2.21: its TensorArrays grow (``dynamic_size=True``) and
its history buffer is sized by a data-dependent step count, which XLA cannot represent. So the
compiled part is the numeric core, source ids in and token ids out (encoder, decoder start and
the decode loop), with every size a compile-time constant:

* the source length is padded to a bucket (:func:`source_bucket`: 8, 16, 32, ... up to
  ``max_source_length``) and the batch to a power of two, outside the compiled function,
  with padding (id 0, masked everywhere; a padded row has length 0 and is finished at
  once), so XLA compiles once per (batch bucket, length bucket), not once per request shape;
* the step budget ``min(max_length, 2 * S_bucket + 10)`` follows from the padded shape, so
  the loop's buffers have a static size; the loop still stops as soon as every sentence
  has ended, exactly when :func:`search.greedy_search` stops;
* text processing (tokenising, detokenising, unknown-word replacement) stays in the plain
  graph around it;
* batches of more than :data:`MAX_COMPILED_BATCH` sentences run :func:`search.greedy_search`'s
  plain loop instead (a ``tf.cond`` on the batch size, in the same signature): XLA:CPU
  multiplies with Eigen where the plain graph's MatMul uses oneDNN, and the per-step output
  projection ([batch, features] x [features, vocab]) is 1.7x slower that way, single-threaded
  as well as on 2 cores (2.5 vs 1.45 ms at [64, 512] x [512, 5000]). At one sentence the
  compiled loop wins (0.4x the plain loop's time: per-op overhead dominates); at 64 sentences
  the input-feeding model's compiled loop took 1.4-1.6x the plain one's time (docs/benchmarks.md's short
  run: 1,512 against 2,393 sentences/s through TF Serving's loader).
  With the fallback a big batch runs the plain signature's loop, and XLA compiles
  no bucket above :data:`MAX_COMPILED_BATCH` (less compile time and memory).

The tokens, lengths and log-probabilities equal :func:`search.greedy_search`'s and the
attention agrees to float rounding (tests/serving/test_export.py checks the exported signatures
through TF Serving's loader). n-gram blocking (``block_ngram_repeat > 0``) is not compiled.
"""

from __future__ import annotations

import tensorflow as tf

from ..text import END_ID, PAD_ID, START_ID
from .search import _banned_tokens, _never_generated, _start, _step_log_probs, greedy_search, output_limit

#: The smallest source-length bucket; buckets double from here up to ``max_source_length``.
MIN_BUCKET = 8
#: Larger batches run the plain (uncompiled) greedy loop: measured on 2 CPU cores, the compiled
#: loop took 0.4x the plain one's time at 1 sentence, 0.7x at 32 and 1.4x at 64 (input feeding,
#: vocabulary 5,000; fast mode 0.9x at 64), where the output projection's matmul dominates.
MAX_COMPILED_BATCH = 32


def source_bucket(length, max_source_length: int):
    """int32 scalar: the smallest power of two >= ``length`` and >= 8, capped at ``max_source_length``
    (but never below ``length``)."""
    length = tf.cast(length, tf.int32)
    bucket = _next_power_of_two(tf.maximum(length, MIN_BUCKET))
    return tf.maximum(tf.minimum(bucket, tf.constant(int(max_source_length), tf.int32)), length)


def _next_power_of_two(n):
    """int32 scalar: the smallest power of two >= ``n`` (``n >= 1``)."""
    power = tf.cast(tf.math.ceil(tf.math.log(tf.cast(n, tf.float32)) / tf.math.log(2.0)), tf.int32)
    value = tf.bitwise.left_shift(tf.constant(1, tf.int32), power)
    return tf.where(value < n, value * 2, value)  # guard against log rounding


def _greedy_core(model, source_ids, max_length: int):
    """The compiled body: source ids [B, S] (static shape at compile time) -> tokens [B, T_cap],
    length [B], attention [B, T_cap, S], log_prob [B], steps run (scalar)."""
    state, memory, limit, _, _ = _start(model, source_ids, max_length)
    batch, src_len = tf.shape(source_ids)[0], tf.shape(source_ids)[1]
    cap = tf.maximum(output_limit(src_len, max_length), 1)  # compile-time constant: the padded shape's cap
    tokens_ta = tf.TensorArray(tf.int32, size=cap, element_shape=[None])
    weights_ta = tf.TensorArray(tf.float32, size=cap, element_shape=[None, None])
    banned = _banned_tokens(model)  # [PAD] and [START] are never generated

    def cond(i, token, state, done, length, log_prob, tokens_ta, weights_ta):
        return tf.logical_and(i < cap, tf.logical_or(i == 0, tf.logical_not(tf.reduce_all(done))))

    def body(i, token, state, done, length, log_prob, tokens_ta, weights_ta):
        log_probs, state, weights = _step_log_probs(model, token, state, memory)
        # top_k, lowest index first on ties: search.greedy_search's choice exactly.
        next_token = tf.math.top_k(_never_generated(log_probs, banned), k=1).indices[:, 0]
        next_token = tf.where(done, PAD_ID, next_token)
        chosen = tf.gather(log_probs, next_token, batch_dims=1)
        log_prob = log_prob + tf.where(done, 0.0, chosen)
        weights = tf.where(done[:, None], 0.0, weights)
        length = length + tf.cast(tf.logical_not(done), tf.int32)
        done = tf.logical_or(tf.logical_or(done, tf.equal(next_token, END_ID)), length >= limit)
        return (
            i + 1,
            next_token,
            state,
            done,
            length,
            log_prob,
            tokens_ta.write(i, next_token),
            weights_ta.write(i, weights),
        )

    initial = (
        tf.constant(0),
        tf.fill([batch], START_ID),
        state,
        limit <= 0,
        tf.zeros([batch], tf.int32),
        tf.zeros([batch], tf.float32),
        tokens_ta,
        weights_ta,
    )
    steps, _, _, _, length, log_prob, tokens_ta, weights_ta = tf.while_loop(cond, body, initial, maximum_iterations=cap)
    tokens = tf.transpose(tokens_ta.stack(), (1, 0))  # [B, cap]; steps >= i only hold zeros
    attention = tf.transpose(weights_ta.stack(), (1, 0, 2))
    return tokens, length, attention, log_prob, steps


def compiled_greedy_search(
    model, max_length: int, max_source_length: int, max_compiled_batch: int = MAX_COMPILED_BATCH
):
    """A search function for ``translate_graph(..., search=...)``: greedy, XLA-compiled.

    Returns ``search(model, source_ids, max_length, block_ngram_repeat)`` -> the dict of
    :func:`search.greedy_search` (``tokens``, ``length``, ``attention``, ``log_prob``,
    ``score``), with the same shapes. ``max_length`` and ``max_source_length`` are fixed
    here (Python ints: they size the compiled loop). Batches of more than
    ``max_compiled_batch`` sentences run :func:`search.greedy_search` itself, uncompiled
    (the same outputs; faster there on a CPU: see the module docstring).

    Raises ValueError (when tracing) for ``block_ngram_repeat`` other than 0, or for
    ``max_compiled_batch`` < 1.
    """
    max_length, max_source_length = int(max_length), int(max_source_length)
    if int(max_compiled_batch) < 1:
        raise ValueError(f"max_compiled_batch must be >= 1, got {max_compiled_batch}.")
    core = tf.function(lambda ids: _greedy_core(model, ids, max_length), jit_compile=True, autograph=False)

    def search(model_, source_ids, max_length_, block_ngram_repeat):
        block = tf.get_static_value(block_ngram_repeat)
        if block is None or int(block) != 0:
            raise ValueError(
                "The XLA-compiled greedy search does not block n-gram repeats: export with "
                "--block-ngram-repeat 0 (the default) to add the *_xla signatures."
            )
        return tf.cond(
            tf.shape(source_ids)[0] <= int(max_compiled_batch),
            lambda: compiled(source_ids),
            lambda: greedy_search(model_, source_ids, max_length_, block_ngram_repeat=0),
        )

    def compiled(source_ids):
        batch, src_len = tf.shape(source_ids)[0], tf.shape(source_ids)[1]
        padded_batch = _next_power_of_two(tf.maximum(batch, 1))
        bucket = source_bucket(src_len, max_source_length)
        padded = tf.pad(source_ids, [[0, padded_batch - batch], [0, bucket - src_len]])
        tokens, length, attention, log_prob, steps = core(padded)
        tokens, attention = tokens[:batch, :steps], attention[:batch, :steps, :src_len]
        length, log_prob = length[:batch], log_prob[:batch]
        return {"tokens": tokens, "length": length, "attention": attention, "log_prob": log_prob, "score": log_prob}

    return search
