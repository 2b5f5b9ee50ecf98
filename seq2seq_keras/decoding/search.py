"""The three searches, inside the TensorFlow graph: greedy, temperature sampling and beam search.

All three run a ``tf.while_loop`` over target positions, batched, stopping per
sentence at ``[END]`` or at its length cap, so the same code runs eagerly, in a
``tf.function`` and in the exported SavedModel:

* :func:`greedy_search`: the most probable next token at every step;
* :func:`sample_search`: a token drawn from ``softmax(logits / temperature)`` at
  every step (``stateless_categorical``: the same seed gives the same draws);
* :func:`beam_search`: ``beam_width`` hypotheses per sentence, the GNMT length
  penalty ``lp(n) = ((5 + n) / 6) ** alpha`` (Wu et al. 2016, "Google's Neural
  Machine Translation System", eq. 14) and n-best output. The attention returned
  for a hypothesis is gathered by following the beam back-pointers from its last
  step to its first, so every row belongs to the prefix the returned words came
  from. ``beam_width=1`` gives exactly the greedy result (same tokens, same
  log-probability, same attention). Only real hypotheses are returned (grown
  from the start beam with allowed tokens); where fewer than ``beam_width``
  exist, ``count`` says how many and the other entries are empty.

Each returns, per sentence, the target token ids, the target length (``[END]``
included), the log-probability of the returned tokens under the model
(temperature does not change it), what the search ranked by, and the attention
rows of the returned hypothesis. ``[START]`` and padding are never generated
(their probability stays in the softmax, so log-probabilities stay the model's
own). With ``block_ngram_repeat=n`` a token that would repeat an ``n``-gram
already in the hypothesis is never chosen (:func:`repeated_ngram_tokens`,
OpenNMT's option of the same name).

The model is used through three calls only: ``model.encoder(source_ids)``,
``model.decoder.start(...)`` and ``model.decoder.step(token, state, memory)``.
Strings in and out (tokenising, unknown-word replacement, text) are
:mod:`seq2seq_keras.decoding.pipeline`'s job.
"""

from __future__ import annotations

import tensorflow as tf

from ..text import END_ID, PAD_ID, START_ID
from .options import (
    DEFAULT_BEAM_BLOCK_NGRAM_REPEAT,
    DEFAULT_BEAM_WIDTH,
    DEFAULT_BLOCK_NGRAM_REPEAT,
    DEFAULT_COVERAGE_PENALTY,
    DEFAULT_LENGTH_PENALTY,
)

# A large finite negative number instead of -inf: -inf - -inf would give NaN. It only hides a token
# from top_k; which beam-search hypotheses are real is tracked by a bool, never read from this value.
_NEG = -1e9
# The coverage penalty's floor on a source word's coverage (log(1e-10) = -23, never -inf).
_MIN_COVERAGE = 1e-10


# ---------------------------------------------------------------------- starting and stepping the decoder
def output_limit(source_length, max_length):
    """Per-sentence cap on target tokens: ``min(max_length, 2 * S + 10)``, 0 when ``S == 0``."""
    cap = tf.minimum(tf.cast(max_length, tf.int32), 2 * source_length + 10)
    return tf.where(source_length > 0, cap, 0)


def _start(model, source_ids, max_length):
    """Encode ``source_ids`` [batch, src_len] and start the decoder.

    Returns (state, memory, limit int32 [batch], steps int32 scalar, source_mask
    bool [batch, src_len]): the decoder's first state and source memory
    (:meth:`Decoder.start`), each sentence's :func:`output_limit`, how many loop
    steps the search may take, and which source positions are tokens.
    """
    encoder_outputs, encoder_states, source_mask = model.encoder(source_ids, training=False)
    state, memory = model.decoder.start(encoder_outputs, encoder_states, source_mask)
    source_length = tf.reduce_sum(tf.cast(source_mask, tf.int32), axis=1)
    limit = output_limit(source_length, max_length)  # [batch]
    # At least one step, even for a batch of 0, so every output has a defined shape.
    steps = tf.maximum(tf.reduce_max(tf.concat([limit, [0]], axis=0)), 1)
    return state, memory, limit, steps, source_mask


def _step_log_probs(model, token, state, memory):
    """One decoder step: log-probabilities float32 [n, vocab], the new state, weights float32 [n, src_len]."""
    logits, state, weights = model.decoder.step(token, state, memory, training=False)
    log_probs = tf.nn.log_softmax(tf.cast(logits, tf.float32), axis=-1)
    return log_probs, state, tf.cast(weights, tf.float32)


def _banned_tokens(model):
    """bool [vocab]: padding and ``[START]``, never valid outputs. Built once, before the loop."""
    ids = tf.range(model.decoder.vocabulary_size)
    return tf.logical_or(tf.equal(ids, PAD_ID), tf.equal(ids, START_ID))


def _never_generated(log_probs, banned):
    """``log_probs`` [..., vocab] with the ``banned`` [vocab] tokens hidden from the search (one op a step)."""
    return tf.where(banned, tf.cast(_NEG, log_probs.dtype), log_probs)


def _static_int(value):
    """``value`` as a Python int when it is known while tracing (a Python number or a constant tensor,
    as in an exported signature), else ``None`` (a signature input: decided at run time)."""
    static = tf.get_static_value(value)
    return None if static is None else int(static)


# ---------------------------------------------------------------------- n-gram blocking
def repeated_ngram_tokens(history, step, n, vocab):
    """Tokens that would repeat an ``n``-gram already in a hypothesis (OpenNMT's ``block_ngram_repeat``).

    Args:
        history: int32 [rows, max_steps], the tokens generated so far in
            positions ``0 .. step - 1`` (anything after is ignored).
        step: int32 scalar, the position about to be generated.
        n: int32 scalar n-gram order (``n <= 0``: nothing is banned).
        vocab: int32 scalar vocabulary size.

    Returns bool [rows, vocab]: ``True`` for every token ``t`` such that the last
    ``n - 1`` tokens followed by ``t`` already occur in the row's history.
    ``[END]`` is never banned, so every hypothesis can still end.
    """
    rows, width = tf.shape(history)[0], tf.shape(history)[1]
    j = tf.range(width)  # start of an earlier n-gram: j + n - 1 <= step - 1
    matches = tf.logical_and(tf.broadcast_to(j[None, :] <= step - n, [rows, width]), n > 0)

    def compare(o, matches):
        here = tf.gather(history, tf.minimum(j + o, width - 1), axis=1)
        prefix = tf.gather(history, tf.clip_by_value(step - n + 1 + o, 0, width - 1), axis=1)
        return o + 1, tf.logical_and(matches, tf.equal(here, prefix[:, None]))

    _, matches = tf.while_loop(lambda o, m: o < n - 1, compare, (tf.constant(0), matches))
    following = tf.gather(history, tf.clip_by_value(j + n - 1, 0, width - 1), axis=1)
    where = tf.where(matches)  # [m, 2] (row, j)
    tokens = tf.cast(tf.gather_nd(following, where), tf.int64)
    hits = tf.scatter_nd(
        tf.stack([where[:, 0], tokens], axis=1), tf.ones_like(tokens, tf.int32), tf.cast([rows, vocab], tf.int64)
    )
    return tf.logical_and(hits > 0, tf.not_equal(tf.range(vocab), END_ID)[None, :])


def _block_repeats(log_probs, history, step, n):
    """``log_probs`` [rows, vocab] with the tokens of :func:`repeated_ngram_tokens` hidden (``n > 0``)."""

    def blocked():
        banned = repeated_ngram_tokens(history, step, n, tf.shape(log_probs)[-1])
        return tf.where(banned, tf.cast(_NEG, log_probs.dtype), log_probs)

    return tf.cond(n > 0, blocked, lambda: log_probs)


def _record(history, step, token):
    """history int32 [rows, max_steps] with ``token`` [rows] written at column ``step``."""
    return tf.where(tf.equal(tf.range(tf.shape(history)[1]), step)[None, :], token[:, None], history)


class _NgramGuard:
    """n-gram blocking inside a search loop, paying for it only when it can be on.

    ``n`` known while tracing (exported signatures bake it in): 0 puts nothing in the
    loop (no history, no ops), ``n > 0`` blocks without a ``tf.cond``. ``n`` a graph
    input (the Python API's one traced function): the history is kept and both the
    blocking and the recording sit behind ``tf.cond(n > 0)``.
    """

    def __init__(self, n, rows, steps):
        self.n = tf.cast(n, tf.int32)
        self.static = _static_int(n)
        self.off = self.static is not None and self.static <= 0
        self.initial = () if self.off else (tf.zeros([rows, steps], tf.int32),)

    def block(self, log_probs, history, step):
        """``log_probs`` [rows, vocab] with the tokens that would repeat an n-gram hidden."""
        if self.off:
            return log_probs
        if self.static is not None:
            banned = repeated_ngram_tokens(history[0], step, self.n, tf.shape(log_probs)[-1])
            return tf.where(banned, tf.cast(_NEG, log_probs.dtype), log_probs)
        return _block_repeats(log_probs, history[0], step, self.n)

    def repeats(self, history, step, vocab):
        """bool [rows, vocab]: the tokens that would repeat an n-gram of their row; ``None`` when off."""
        if self.off:
            return None
        if self.static is not None:
            return repeated_ngram_tokens(history[0], step, self.n, vocab)
        return tf.cond(
            self.n > 0,
            lambda: repeated_ngram_tokens(history[0], step, self.n, vocab),
            lambda: tf.zeros([tf.shape(history[0])[0], vocab], tf.bool),
        )

    def record(self, history, step, token, rows=None):
        """The history after writing ``token`` [rows] at ``step`` (its rows first reordered by ``rows``, for beams)."""
        if self.off:
            return ()
        past = history[0] if rows is None else tf.gather(history[0], rows)
        if self.static is not None:
            return (_record(past, step, token),)
        return (tf.cond(self.n > 0, lambda: _record(past, step, token), lambda: past),)


# ---------------------------------------------------------------------- greedy / sampling
def _single_path_search(model, source_ids, max_length, choose, block_ngram_repeat=0):
    """The loop of greedy search and sampling. ``choose(log_probs, step)`` -> (token int32 [batch],
    its log-probability float32 [batch], or ``None`` to read it from ``log_probs``)."""
    state, memory, limit, steps, _ = _start(model, source_ids, max_length)
    batch = tf.shape(source_ids)[0]
    guard = _NgramGuard(block_ngram_repeat, batch, steps)
    tokens_ta = tf.TensorArray(tf.int32, size=0, dynamic_size=True)
    weights_ta = tf.TensorArray(tf.float32, size=0, dynamic_size=True)
    token = tf.fill([batch], START_ID)
    done = limit <= 0
    length = tf.zeros([batch], tf.int32)
    log_prob = tf.zeros([batch], tf.float32)

    def cond(i, token, state, done, length, log_prob, history, tokens_ta, weights_ta):
        return tf.logical_and(i < steps, tf.logical_or(i == 0, tf.logical_not(tf.reduce_all(done))))

    def body(i, token, state, done, length, log_prob, history, tokens_ta, weights_ta):
        # Lean bookkeeping: a finished row keeps stepping (its outputs are masked after the loop),
        # so only its log-probability and length need a select per step.
        log_probs, state, weights = _step_log_probs(model, token, state, memory)
        next_token, chosen = choose(guard.block(log_probs, history, i), i)
        if chosen is None:
            chosen = tf.gather(log_probs, next_token, batch_dims=1)
        if not guard.off:
            history = guard.record(history, i, tf.where(done, PAD_ID, next_token))
        log_prob = log_prob + tf.where(done, 0.0, chosen)
        step = i + 1
        length = tf.where(done, length, step)  # an unfinished row has stepped every time: its length is i + 1
        done = tf.logical_or(tf.logical_or(done, tf.equal(next_token, END_ID)), length >= limit)
        return (
            step,
            next_token,
            state,
            done,
            length,
            log_prob,
            history,
            tokens_ta.write(i, next_token),
            weights_ta.write(i, weights),
        )

    _, _, _, _, length, log_prob, _, tokens_ta, weights_ta = tf.while_loop(
        cond, body, (tf.constant(0), token, state, done, length, log_prob, guard.initial, tokens_ta, weights_ta)
    )
    src_len = tf.shape(source_ids)[1]
    tokens = tf.reshape(tf.transpose(tokens_ta.stack(), (1, 0)), [batch, -1])
    attention = tf.reshape(tf.transpose(weights_ta.stack(), (1, 0, 2)), [batch, -1, src_len])
    # After a row's last token: padding, and zero attention rows (where, not a product: exact, NaN-free).
    valid = tf.sequence_mask(length, tf.shape(tokens)[1])
    tokens = tf.where(valid, tokens, PAD_ID)
    attention = tf.where(valid[:, :, None], attention, 0.0)
    return {"tokens": tokens, "length": length, "attention": attention, "log_prob": log_prob, "score": log_prob}


def greedy_search(model, source_ids, max_length, block_ngram_repeat=DEFAULT_BLOCK_NGRAM_REPEAT):
    """Greedy decoding in the graph.

    Args:
        source_ids: int32 [batch, src_len], 0-padded.
        max_length: int32 scalar cap on target tokens per sentence.
        block_ngram_repeat: int32 scalar; ``n > 0`` never chooses a token that
            repeats an ``n``-gram of the sentence's own output (then it is no
            longer exact greedy); 0 (default) is exact greedy.

    Returns a dict: ``tokens`` int32 [batch, tgt_len] (0 after ``[END]``),
    ``length`` int32 [batch] (``[END]`` included), ``attention`` float32
    [batch, tgt_len, src_len] (0 on padding rows), ``log_prob`` and ``score``
    float32 [batch] (sum of the chosen tokens' log-probabilities).
    """
    banned = _banned_tokens(model)

    def argmax_token(log_probs, step):
        # top_k (lowest index first on ties) is also what beam search uses: beam_width=1 == greedy, exactly.
        # Its value is the chosen token's own log-probability ([END] is never hidden, so neither is the choice).
        top = tf.math.top_k(_never_generated(log_probs, banned), k=1)
        return top.indices[:, 0], top.values[:, 0]

    return _single_path_search(model, source_ids, max_length, argmax_token, block_ngram_repeat)


def sample_search(
    model, source_ids, max_length, temperature=1.0, seed=0, block_ngram_repeat=DEFAULT_BLOCK_NGRAM_REPEAT
):
    """Temperature sampling in the graph; same outputs as :func:`greedy_search`.

    Each step draws from ``softmax(logits / temperature)`` with
    ``tf.random.stateless_categorical`` seeded by ``(seed, step)``: the same
    seed, inputs and batch order give the same translations. ``log_prob`` is
    under the model's own distribution (temperature 1).
    """
    temperature = tf.cast(temperature, tf.float32)
    seed = tf.cast(seed, tf.int64)
    banned = _banned_tokens(model)

    def draw(log_probs, step):
        logits = _never_generated(log_probs, banned) / temperature
        step_seed = tf.stack([seed, tf.cast(step, tf.int64)])
        return tf.cast(tf.random.stateless_categorical(logits, 1, seed=step_seed)[:, 0], tf.int32), None

    return _single_path_search(model, source_ids, max_length, draw, block_ngram_repeat)


# ---------------------------------------------------------------------- beam search
def length_penalty_factor(length, alpha):
    """GNMT length penalty ``((5 + length) / 6) ** alpha`` (Wu et al. 2016, eq. 14); 1 for ``alpha=0``."""
    return tf.pow((5.0 + tf.cast(length, tf.float32)) / 6.0, tf.cast(alpha, tf.float32))


def _repeat_memory(memory, tile):
    """``tile`` applied to every batch-major tensor of a decoder's memory.

    The RNN decoder's :class:`~seq2seq_keras.model.decoder.DecoderMemory` maps itself (so the
    step weights it read once stay with it); the Transformer's memory is a plain dict.
    """
    if hasattr(memory, "map"):
        return memory.map(tile)
    return {name: tile(value) for name, value in memory.items()}


def coverage_penalty(coverage, source_mask, beta):
    """GNMT coverage penalty ``cp = beta * sum_i log(min(coverage_i, 1))`` (Wu et al. 2016, eq. 14).

    Args:
        coverage: float32 [..., src_len], the attention a hypothesis has paid to
            each source position so far (its rows summed over target steps).
        source_mask: bool [..., src_len] (broadcastable), the real source tokens;
            padding is left out of the sum.
        beta: float32 scalar, 0 turns the penalty off (then ``cp`` is 0 exactly).

    Returns float32 [...]: ``cp <= 0``, 0 once every source word has received a
    total weight of at least 1. A weight below ``1e-10`` counts as ``1e-10`` (an
    underflowed weight of exactly 0 would give ``log 0 = -inf``).
    """
    capped = tf.clip_by_value(coverage, _MIN_COVERAGE, 1.0)
    logs = tf.where(source_mask, tf.math.log(capped), 0.0)
    return tf.cast(beta, tf.float32) * tf.reduce_sum(logs, axis=-1)


def beam_search(
    model,
    source_ids,
    max_length,
    beam_width=DEFAULT_BEAM_WIDTH,
    length_penalty=DEFAULT_LENGTH_PENALTY,
    block_ngram_repeat=DEFAULT_BEAM_BLOCK_NGRAM_REPEAT,
    coverage_penalty_weight=DEFAULT_COVERAGE_PENALTY,
):
    """Batched beam search in the graph.

    Every step extends each unfinished hypothesis by its ``beam_width`` best
    tokens; a finished hypothesis (``[END]`` or the length cap) competes as
    itself. The ``beam_width`` best candidates by the GNMT score
    ``log_prob / lp(length) + cp(coverage)`` are kept (Wu et al. 2016, eq. 14;
    ``cp`` is :func:`coverage_penalty` of the attention the candidate has paid to
    each source word, its own step included). The loop ends when every kept
    hypothesis of every sentence is finished. Back-pointers are recorded per step
    and followed backwards at the end, so tokens and attention rows of a returned
    hypothesis all come from its own ancestry; the coverage is reordered with the
    hypotheses at every step.

    Args:
        source_ids: int32 [batch, src_len], 0-padded.
        max_length: int32 scalar cap on target tokens per sentence.
        beam_width: int32 scalar ``k >= 1``.
        length_penalty: GNMT ``alpha`` (0 ranks by log-probability alone).
        block_ngram_repeat: int32 scalar ``n``; ``n > 0`` never extends a
            hypothesis with a token that repeats one of its own ``n``-grams.
        coverage_penalty_weight: GNMT ``beta`` (float32 scalar, 0: off). When it
            is known while tracing and 0 (an exported signature's default), no
            coverage is kept at all.

    Returns a dict, hypotheses sorted best first along axis 1:
    ``tokens`` int32 [batch, k, tgt_len], ``length`` int32 [batch, k],
    ``attention`` float32 [batch, k, tgt_len, src_len], ``log_prob`` float32
    [batch, k], ``score`` float32 [batch, k] (``log_prob / lp(length) + cp``),
    and ``count`` int32 [batch], how many of the ``k`` are real hypotheses.

    A hypothesis is real when the search grew it from the sentence's start
    beam with allowed tokens only (never ``[START]``, padding or a blocked
    n-gram); the other ``k - 1`` start beams are placeholders, and a real one
    that finished is kept once, as itself. Which hypotheses are real is tracked
    in a bool beside the beams, and the ranking puts every real one before any
    other, so entries ``0 .. count - 1`` are the real hypotheses, best first,
    and the rest (when a sentence has fewer than ``k``: a tiny vocabulary, a
    1-token cap) are empty: tokens 0, length 0, zero attention, ``log_prob``
    and ``score`` 0.0. ``count >= 1``: a sentence with no source tokens has one
    hypothesis, the empty translation (length 0, log-probability 0).
    Beam search is not guaranteed to find a more probable translation than
    greedy search for every sentence, but with ``length_penalty=0`` it usually does.
    """
    k = tf.cast(beam_width, tf.int32)
    alpha = tf.cast(length_penalty, tf.float32)
    state, memory, limit, steps, source_mask = _start(model, source_ids, max_length)
    batch, src_len = tf.shape(source_ids)[0], tf.shape(source_ids)[1]
    guard = _NgramGuard(block_ngram_repeat, batch * k, steps)
    ranking = _Ranking(alpha, coverage_penalty_weight, tf.repeat(source_mask, k, axis=0), batch, k)
    banned = _banned_tokens(model)

    def tile(x):  # [batch, ...] -> [batch * k, ...], hypothesis j of sentence b at row b * k + j
        return tf.repeat(x, k, axis=0)

    state = [tile(s) for s in state]
    memory = _repeat_memory(memory, tile)
    tokens, log_prob, length, finished, real = _initial_beams(batch, k, limit)
    tokens_ta = tf.TensorArray(tf.int32, size=0, dynamic_size=True)
    parents_ta = tf.TensorArray(tf.int32, size=0, dynamic_size=True)
    weights_ta = tf.TensorArray(tf.float32, size=0, dynamic_size=True)

    def cond(i, tokens, state, log_prob, length, finished, real, history, coverage, tokens_ta, parents_ta, weights_ta):
        return tf.logical_and(i < steps, tf.logical_or(i == 0, tf.logical_not(tf.reduce_all(finished))))

    def body(i, tokens, state, log_prob, length, finished, real, history, coverage, tokens_ta, parents_ta, weights_ta):
        step_log_probs, new_state, weights = _step_log_probs(model, tf.reshape(tokens, [-1]), state, memory)
        vocab = tf.shape(step_log_probs)[-1]
        allowed = tf.logical_not(banned)[None, :]  # [1 or batch * k, vocab]
        repeats = guard.repeats(history, i, vocab)
        if repeats is not None:
            allowed = tf.logical_and(allowed, tf.logical_not(repeats))
        step_log_probs = tf.reshape(tf.where(allowed, step_log_probs, _NEG), [batch, k, vocab])
        allowed = tf.reshape(tf.broadcast_to(allowed, [batch * k, vocab]), [batch, k, vocab])
        step_weights = tf.where(tf.reshape(finished, [-1])[:, None], 0.0, weights)  # [batch * k, src_len]
        coverage, parent_penalty = ranking.extend(coverage, step_weights)
        parent, new_tokens, new_log_prob, new_length, new_finished, new_real = _best_extensions(
            step_log_probs, allowed, log_prob, length, finished, real, limit, ranking, parent_penalty
        )
        rows = tf.reshape(parent + tf.range(batch)[:, None] * k, [-1])
        new_state = [tf.gather(s, rows) for s in new_state]
        history = guard.record(history, i, tf.reshape(new_tokens, [-1]), rows)
        coverage = ranking.reorder(coverage, rows)
        step_weights = tf.reshape(tf.gather(step_weights, rows), [batch, k, src_len])
        # Keep the static shapes of the loop variables (a fixed beam width at export makes them known).
        same = lambda x, like: tf.reshape(x, tf.shape(like))  # noqa: E731
        new_tokens, new_log_prob = same(new_tokens, tokens), same(new_log_prob, log_prob)
        new_length, new_finished = same(new_length, length), same(new_finished, finished)
        new_real = same(new_real, real)
        return (
            i + 1,
            new_tokens,
            new_state,
            new_log_prob,
            new_length,
            new_finished,
            new_real,
            history,
            coverage,
            tokens_ta.write(i, new_tokens),
            parents_ta.write(i, parent),
            weights_ta.write(i, step_weights),
        )

    _, _, _, log_prob, length, _, real, _, coverage, tokens_ta, parents_ta, weights_ta = tf.while_loop(
        cond,
        body,
        (
            tf.constant(0),
            tokens,
            state,
            log_prob,
            length,
            finished,
            real,
            guard.initial,
            ranking.initial,
            tokens_ta,
            parents_ta,
            weights_ta,
        ),
    )
    score = ranking.score(log_prob, length, ranking.penalty(coverage))
    return _best_first(score, log_prob, length, real, tokens_ta, parents_ta, weights_ta, batch, k, src_len)


def _real_first(score, real):
    """The ranking key [..., n]: ``score`` for real hypotheses, ``-inf`` (below every real one) for the others.

    Only ever passed to ``top_k``, never added to: a placeholder cannot outrank a real hypothesis
    whatever the length and coverage penalties make of its ``_NEG`` log-probability.
    """
    return tf.where(real, score, tf.constant(-float("inf"), score.dtype))


def _best_first(score, log_prob, length, real, tokens_ta, parents_ta, weights_ta, batch, k, src_len):
    """The finished beams ([batch, k] scores and real flags, per-step TensorArrays) -> :func:`beam_search`'s
    dict, real hypotheses first and best first among them, the other entries emptied."""
    order = tf.math.top_k(_real_first(score, real), k=k).indices  # [batch, k]
    tokens, attention = _follow_back_pointers(
        tokens_ta.stack(), parents_ta.stack(), weights_ta.stack(), order, batch, k, src_len
    )
    real = tf.gather(real, order, batch_dims=1)

    def kept(x, empty):  # [batch, k, ...]: the real entries, ``empty`` in the others
        return tf.where(tf.reshape(real, [batch, k] + [1] * (x.shape.rank - 2)), x, tf.cast(empty, x.dtype))

    return {
        "tokens": kept(tokens, PAD_ID),
        "length": kept(tf.gather(length, order, batch_dims=1), 0),
        "attention": kept(attention, 0.0),
        "log_prob": kept(tf.gather(log_prob, order, batch_dims=1), 0.0),
        "score": kept(tf.gather(score, order, batch_dims=1), 0.0),
        "count": tf.reduce_sum(tf.cast(real, tf.int32), axis=1),
    }


class _Ranking:
    """Beam search's score ``log_prob / lp(length) + cp(coverage)`` and the coverage it needs.

    The coverage (float32 [batch * k, src_len]: attention summed over each
    hypothesis' steps) is a loop variable only when ``beta`` may be non-zero:
    ``beta`` known while tracing and 0 leaves it out (``()``) and ``cp`` is 0.
    """

    def __init__(self, alpha, beta, source_mask, batch, k):
        self.alpha, self.beta, self.source_mask = alpha, tf.cast(beta, tf.float32), source_mask
        self.batch, self.k = batch, k
        static = tf.get_static_value(beta)
        self.off = static is not None and float(static) == 0.0
        self.initial = () if self.off else tf.zeros(tf.shape(source_mask), tf.float32)

    def extend(self, coverage, step_weights):
        """(every hypothesis' coverage with this step's rows added, its cp [batch, k] or ``None`` when off)."""
        if self.off:
            return coverage, None
        coverage = coverage + step_weights
        return coverage, tf.reshape(self.penalty(coverage), [self.batch, self.k])

    def reorder(self, coverage, rows):
        return coverage if self.off else tf.gather(coverage, rows)

    def penalty(self, coverage):
        """cp [batch, k] of a coverage [batch * k, src_len] (``None`` when off)."""
        if self.off:
            return None
        return tf.reshape(coverage_penalty(coverage, self.source_mask, self.beta), [self.batch, self.k])

    def score(self, log_prob, length, penalty):
        """``log_prob / lp(length)`` (+ ``penalty``, broadcast against it, unless ``None``)."""
        score = log_prob / length_penalty_factor(length, self.alpha)
        return score if penalty is None else score + penalty


def _initial_beams(batch, k, limit):
    """The loop's start: ``k`` hypotheses per sentence, only the first real (the others placeholders).

    Returns tokens int32 [batch, k] (``[START]``), log_prob float32 [batch, k]
    (placeholders at ``_NEG``), length int32 [batch, k], finished bool [batch, k]
    (the placeholders, and every beam of a sentence with nothing to translate)
    and real bool [batch, k] (the first beam of every sentence).
    """
    tokens = tf.fill([batch, k], START_ID)
    log_prob = tf.concat([tf.zeros([batch, 1]), tf.fill([batch, k - 1], _NEG)], axis=1)
    length = tf.zeros([batch, k], tf.int32)
    real = tf.broadcast_to(tf.equal(tf.range(k), 0)[None, :], [batch, k])
    finished = tf.logical_or(tf.logical_not(real), (limit <= 0)[:, None])
    return tokens, log_prob, length, finished, real


def _best_extensions(step_log_probs, allowed, log_prob, length, finished, real, limit, ranking, parent_penalty):
    """One beam step's choice: the ``k`` best one-token extensions of a sentence's ``k`` hypotheses.

    Args:
        step_log_probs: float32 [batch, k, vocab], the next token's log-probabilities
            per hypothesis (tokens that may not follow already hidden at ``_NEG``).
        allowed: bool [batch, k, vocab], the tokens that may follow each hypothesis.
        log_prob, length, finished, real: [batch, k], the hypotheses so far.
        limit: int32 [batch], each sentence's length cap.
        ranking: the search's :class:`_Ranking`.
        parent_penalty: float32 [batch, k], the coverage penalty every extension of
            a hypothesis shares (its coverage after this step), or ``None``.

    Returns (parent, tokens, log_prob, length, finished, real), each [batch, k]:
    ``parent`` is the index of the hypothesis each new one extends. A candidate is
    real when its parent is, and it either extends an unfinished parent by an
    allowed token or is a finished parent kept as itself (its first candidate; the
    others would repeat it). Real candidates are chosen before any other; one that
    is not real is finished, so it never holds the loop open.
    """
    batch, k = ranking.batch, ranking.k
    per_beam = tf.minimum(k, tf.shape(step_log_probs)[-1])
    # Stage 1: each hypothesis' best tokens (ranking within one hypothesis is by log-prob,
    # whatever the length and coverage penalties, since all its extensions share them).
    top = tf.math.top_k(step_log_probs, k=per_beam)  # [batch, k, per_beam]
    first = tf.equal(tf.range(per_beam), 0)
    fin = finished[:, :, None]
    candidate_log_prob = log_prob[:, :, None] + tf.where(fin, tf.where(first, 0.0, _NEG), top.values)
    candidate_token = tf.where(fin, PAD_ID, top.indices)
    candidate_length = length[:, :, None] + tf.where(fin, 0, tf.ones_like(top.indices))
    candidate_real = tf.logical_and(
        real[:, :, None], tf.where(fin, first, tf.gather(allowed, top.indices, batch_dims=2))
    )
    candidate_score = ranking.score(
        candidate_log_prob, candidate_length, None if parent_penalty is None else parent_penalty[:, :, None]
    )
    # Stage 2: the k best of the k * per_beam candidates of each sentence, real ones first.
    flat = lambda x: tf.reshape(x, [batch, k * per_beam])  # noqa: E731
    best = tf.math.top_k(_real_first(flat(candidate_score), flat(candidate_real)), k=k).indices  # [batch, k]
    parent = best // per_beam
    new_tokens = tf.gather(flat(candidate_token), best, batch_dims=1)
    new_log_prob = tf.gather(flat(candidate_log_prob), best, batch_dims=1)
    new_length = tf.gather(flat(candidate_length), best, batch_dims=1)
    new_real = tf.gather(flat(candidate_real), best, batch_dims=1)
    parent_finished = tf.gather(finished, parent, batch_dims=1)
    new_finished = (
        parent_finished | tf.equal(new_tokens, END_ID) | (new_length >= limit[:, None]) | tf.logical_not(new_real)
    )
    return parent, new_tokens, new_log_prob, new_length, new_finished, new_real


def _follow_back_pointers(all_tokens, all_parents, all_weights, order, batch, k, src_len):
    """Each returned hypothesis' own tokens and attention rows, read backwards through its parents.

    Args:
        all_tokens, all_parents: int32 [steps, batch, k], per step the kept
            hypotheses' last token and the index of the hypothesis they extend.
        all_weights: float32 [steps, batch * k, src_len] or [steps, batch, k, src_len].
        order: int32 [batch, k], the hypotheses to return (best first).
        batch, k, src_len: int32 scalars.

    Returns tokens int32 [batch, k, steps] and attention float32 [batch, k, steps, src_len].
    """
    all_weights = tf.reshape(all_weights, [-1, batch, k, src_len])
    n_steps = tf.shape(all_tokens)[0]

    def back_cond(t, beam, out_tokens, out_weights):
        return t >= 0

    def back_body(t, beam, out_tokens, out_weights):
        out_tokens = out_tokens.write(t, tf.gather(all_tokens[t], beam, batch_dims=1))
        out_weights = out_weights.write(t, tf.gather(all_weights[t], beam, batch_dims=1))
        return t - 1, tf.gather(all_parents[t], beam, batch_dims=1), out_tokens, out_weights

    _, _, out_tokens, out_weights = tf.while_loop(
        back_cond,
        back_body,
        (n_steps - 1, order, tf.TensorArray(tf.int32, size=n_steps), tf.TensorArray(tf.float32, size=n_steps)),
    )
    tokens = tf.reshape(tf.transpose(out_tokens.stack(), (1, 2, 0)), [batch, k, -1])
    attention = tf.reshape(tf.transpose(out_weights.stack(), (1, 2, 0, 3)), [batch, k, -1, src_len])
    return tokens, attention
