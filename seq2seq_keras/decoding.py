"""Decoding: turning a trained :class:`~seq2seq_keras.model.Seq2Seq` into translations.

Three searches, all inside the TensorFlow graph (``tf.while_loop``), batched,
stopping per sentence at ``[END]``, so the same code runs eagerly, in a
``tf.function`` and in the exported SavedModel:

* ``greedy``: the most probable next token at every step;
* ``sample``: a token drawn from ``softmax(logits / temperature)`` at every
  step (``stateless_categorical``: the same seed gives the same draws);
* ``beam``: beam search with ``beam_width`` hypotheses per sentence, the GNMT
  length penalty ``lp(n) = ((5 + n) / 6) ** length_penalty`` and n-best output.
  The attention returned for a hypothesis is gathered by following the beam
  back-pointers from its last step to its first, so every row belongs to the
  prefix the returned words actually came from. ``beam_width=1`` gives exactly
  the greedy result (same tokens, same log-probability, same attention).

Every search returns, per sentence: target token ids, the target length
(``[END]`` included), the log-probability of the returned tokens under the model
(temperature does not change it) and the attention rows of the returned
hypothesis, ``[tgt_len, src_len]``.

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
  word instead of ``[UNK]`` (what a model trained on Tatoeba does).
* **n-gram blocking** (``block_ngram_repeat=n``, OpenNMT's option of the same
  name): a token that would repeat an ``n``-gram already in the hypothesis is
  never chosen (``[END]`` always may be). Off for greedy and sampling unless
  asked (greedy stays exact greedy); beam search blocks repeated 3-grams by
  default (:data:`DEFAULT_BEAM_BLOCK_NGRAM_REPEAT`). Log-probabilities stay the
  model's own.
"""

from __future__ import annotations

import dataclasses
import math
import secrets
from typing import Iterable

import numpy as np
import tensorflow as tf

from .text import END_ID, PAD_ID, START_ID, UNK_ID, join_words, to_python_strings

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
METHODS = ("greedy", "sample", "beam")

# A large finite negative number instead of -inf: -inf - -inf would give NaN.
_NEG = -1e9


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
    first (empty otherwise). ``replaced[i]`` is True where ``target_tokens[i]``
    is a source word copied in place of the model's ``[UNK]`` (unknown-word
    replacement); same length as ``target_tokens``.
    """

    source: str
    text: str
    source_tokens: list[str]
    target_tokens: list[str]
    attention: np.ndarray | None
    log_prob: float
    score: float | None = None
    alternatives: list["Translation"] = dataclasses.field(default_factory=list)
    replaced: list[bool] = dataclasses.field(default_factory=list)

    @property
    def length(self) -> int:
        """Number of target tokens (``[END]`` included when emitted)."""
        return len(self.target_tokens)

    def __str__(self) -> str:
        return self.text


# ---------------------------------------------------------------------- source side
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


def output_limit(source_length, max_length):
    """Per-sentence cap on target tokens: ``min(max_length, 2 * S + 10)``, 0 when ``S == 0``."""
    cap = tf.minimum(tf.cast(max_length, tf.int32), 2 * source_length + 10)
    return tf.where(source_length > 0, cap, 0)


def _start(model, source_ids, max_length):
    encoder_outputs, encoder_states, source_mask = model.encoder(source_ids, training=False)
    state, memory = model.decoder.start(encoder_outputs, encoder_states, source_mask)
    source_length = tf.reduce_sum(tf.cast(source_mask, tf.int32), axis=1)
    limit = output_limit(source_length, max_length)  # [batch]
    # At least one step, even for a batch of 0, so every output has a defined shape.
    steps = tf.maximum(tf.reduce_max(tf.concat([limit, [0]], axis=0)), 1)
    return state, memory, limit, steps


def _step_log_probs(model, token, state, memory):
    """One decoder step: log-probabilities float32 [n, vocab], the new state, weights float32 [n, src_len]."""
    logits, state, weights = model.decoder.step(token, state, memory, training=False)
    log_probs = tf.nn.log_softmax(tf.cast(logits, tf.float32), axis=-1)
    return log_probs, state, tf.cast(weights, tf.float32)


def _never_generated(log_probs):
    """Hide padding and ``[START]`` from the search (they are never valid outputs)."""
    vocab = tf.shape(log_probs)[-1]
    banned = tf.logical_or(tf.equal(tf.range(vocab), PAD_ID), tf.equal(tf.range(vocab), START_ID))
    return tf.where(banned, tf.cast(_NEG, log_probs.dtype), log_probs)


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


# ---------------------------------------------------------------------- greedy / sampling
def _single_path_search(model, source_ids, max_length, choose, block_ngram_repeat=0):
    state, memory, limit, steps = _start(model, source_ids, max_length)
    block = tf.cast(block_ngram_repeat, tf.int32)
    batch = tf.shape(source_ids)[0]
    history = tf.zeros([batch, steps], tf.int32)
    tokens_ta = tf.TensorArray(tf.int32, size=0, dynamic_size=True)
    weights_ta = tf.TensorArray(tf.float32, size=0, dynamic_size=True)
    token = tf.fill([batch], START_ID)
    done = limit <= 0
    length = tf.zeros([batch], tf.int32)
    log_prob = tf.zeros([batch], tf.float32)

    def cond(i, token, state, done, length, log_prob, history, tokens_ta, weights_ta):
        return tf.logical_and(i < steps, tf.logical_or(i == 0, tf.logical_not(tf.reduce_all(done))))

    def body(i, token, state, done, length, log_prob, history, tokens_ta, weights_ta):
        log_probs, state, weights = _step_log_probs(model, token, state, memory)
        next_token = choose(_block_repeats(log_probs, history, i, block), i)
        next_token = tf.where(done, PAD_ID, next_token)
        history = _record(history, i, next_token)
        chosen = tf.gather(log_probs, next_token, batch_dims=1)
        log_prob = log_prob + tf.where(done, 0.0, chosen)
        weights = tf.where(done[:, None], 0.0, weights)
        length = length + tf.cast(tf.logical_not(done), tf.int32)
        done = tf.logical_or(done, tf.equal(next_token, END_ID))
        done = tf.logical_or(done, length >= limit)
        return (i + 1, next_token, state, done, length, log_prob, history,
                tokens_ta.write(i, next_token), weights_ta.write(i, weights))

    _, _, _, _, length, log_prob, _, tokens_ta, weights_ta = tf.while_loop(
        cond, body, (tf.constant(0), token, state, done, length, log_prob, history, tokens_ta, weights_ta)
    )
    src_len = tf.shape(source_ids)[1]
    tokens = tf.reshape(tf.transpose(tokens_ta.stack(), (1, 0)), [batch, -1])
    attention = tf.reshape(tf.transpose(weights_ta.stack(), (1, 0, 2)), [batch, -1, src_len])
    return {"tokens": tokens, "length": length, "attention": attention, "log_prob": log_prob, "score": log_prob}


def _argmax_token(log_probs, step):
    # top_k (lowest index first on ties) is also what beam search uses: beam_width=1 == greedy, exactly.
    return tf.math.top_k(_never_generated(log_probs), k=1).indices[:, 0]


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
    return _single_path_search(model, source_ids, max_length, _argmax_token, block_ngram_repeat)


def sample_search(model, source_ids, max_length, temperature=1.0, seed=0,
                  block_ngram_repeat=DEFAULT_BLOCK_NGRAM_REPEAT):
    """Temperature sampling in the graph; same outputs as :func:`greedy_search`.

    Each step draws from ``softmax(logits / temperature)`` with
    ``tf.random.stateless_categorical`` seeded by ``(seed, step)``: the same
    seed, inputs and batch order give the same translations. ``log_prob`` is
    under the model's own distribution (temperature 1).
    """
    temperature = tf.cast(temperature, tf.float32)
    seed = tf.cast(seed, tf.int64)

    def draw(log_probs, step):
        logits = _never_generated(log_probs) / temperature
        step_seed = tf.stack([seed, tf.cast(step, tf.int64)])
        return tf.cast(tf.random.stateless_categorical(logits, 1, seed=step_seed)[:, 0], tf.int32)

    return _single_path_search(model, source_ids, max_length, draw, block_ngram_repeat)


# ---------------------------------------------------------------------- beam search
def length_penalty_factor(length, alpha):
    """GNMT length penalty ``((5 + length) / 6) ** alpha`` (Wu et al. 2016, eq. 14); 1 for ``alpha=0``."""
    return tf.pow((5.0 + tf.cast(length, tf.float32)) / 6.0, tf.cast(alpha, tf.float32))


def beam_search(model, source_ids, max_length, beam_width=DEFAULT_BEAM_WIDTH, length_penalty=DEFAULT_LENGTH_PENALTY,
                block_ngram_repeat=DEFAULT_BEAM_BLOCK_NGRAM_REPEAT):
    """Batched beam search in the graph.

    Every step extends each unfinished hypothesis by its ``beam_width`` best
    tokens; a finished hypothesis (``[END]`` or the length cap) competes as
    itself. The ``beam_width`` best candidates by ``log_prob / lp(length)`` are
    kept. The loop ends when every kept hypothesis of every sentence is
    finished. Back-pointers are recorded per step and followed backwards at the
    end, so tokens and attention rows of a returned hypothesis all come from its
    own ancestry.

    Args:
        source_ids: int32 [batch, src_len], 0-padded.
        max_length: int32 scalar cap on target tokens per sentence.
        beam_width: int32 scalar ``k >= 1``.
        length_penalty: GNMT ``alpha`` (0 ranks by log-probability alone).
        block_ngram_repeat: int32 scalar ``n``; ``n > 0`` never extends a
            hypothesis with a token that repeats one of its own ``n``-grams.

    Returns a dict, hypotheses sorted best first along axis 1:
    ``tokens`` int32 [batch, k, tgt_len], ``length`` int32 [batch, k],
    ``attention`` float32 [batch, k, tgt_len, src_len], ``log_prob`` float32
    [batch, k], ``score`` float32 [batch, k] (``log_prob / lp(length)``).
    Beam search is not guaranteed to find a more probable translation than
    greedy search for every sentence, but with ``length_penalty=0`` it usually does.
    """
    beam_width = tf.cast(beam_width, tf.int32)
    alpha = tf.cast(length_penalty, tf.float32)
    block = tf.cast(block_ngram_repeat, tf.int32)
    state, memory, limit, steps = _start(model, source_ids, max_length)
    batch = tf.shape(source_ids)[0]
    src_len = tf.shape(source_ids)[1]
    k = beam_width

    def tile(x):  # [batch, ...] -> [batch * k, ...], hypothesis j of sentence b at row b * k + j
        return tf.repeat(x, k, axis=0)

    state = [tile(s) for s in state]
    memory = {name: tile(value) for name, value in memory.items()}
    tokens = tf.fill([batch, k], START_ID)
    log_prob = tf.concat([tf.zeros([batch, 1]), tf.fill([batch, k - 1], _NEG)], axis=1)
    length = tf.zeros([batch, k], tf.int32)
    finished = tf.tile((limit <= 0)[:, None], [1, k])
    history = tf.zeros([batch * k, steps], tf.int32)  # row b * k + j: hypothesis j's tokens so far
    tokens_ta = tf.TensorArray(tf.int32, size=0, dynamic_size=True)
    parents_ta = tf.TensorArray(tf.int32, size=0, dynamic_size=True)
    weights_ta = tf.TensorArray(tf.float32, size=0, dynamic_size=True)

    def cond(i, tokens, state, log_prob, length, finished, history, tokens_ta, parents_ta, weights_ta):
        return tf.logical_and(i < steps, tf.logical_or(i == 0, tf.logical_not(tf.reduce_all(finished))))

    def body(i, tokens, state, log_prob, length, finished, history, tokens_ta, parents_ta, weights_ta):
        step_log_probs, new_state, weights = _step_log_probs(model, tf.reshape(tokens, [-1]), state, memory)
        step_log_probs = _block_repeats(step_log_probs, history, i, block)
        vocab = tf.shape(step_log_probs)[-1]
        step_log_probs = tf.reshape(step_log_probs, [batch, k, vocab])
        per_beam = tf.minimum(k, vocab)
        # Stage 1: each hypothesis' best tokens (ranking within one hypothesis is by log-prob,
        # whatever the length penalty, since all its extensions have the same length).
        top = tf.math.top_k(_never_generated(step_log_probs), k=per_beam)  # [batch, k, per_beam]
        first = tf.equal(tf.range(per_beam), 0)
        fin = finished[:, :, None]
        candidate_log_prob = log_prob[:, :, None] + tf.where(fin, tf.where(first, 0.0, _NEG), top.values)
        candidate_token = tf.where(fin, PAD_ID, top.indices)
        candidate_length = length[:, :, None] + tf.where(fin, 0, tf.ones_like(top.indices))
        candidate_score = candidate_log_prob / length_penalty_factor(candidate_length, alpha)
        # Stage 2: the k best of the k * per_beam candidates of each sentence.
        flat = lambda x: tf.reshape(x, [batch, k * per_beam])  # noqa: E731
        best = tf.math.top_k(flat(candidate_score), k=k).indices  # [batch, k]
        parent = best // per_beam
        new_tokens = tf.gather(flat(candidate_token), best, batch_dims=1)
        new_log_prob = tf.gather(flat(candidate_log_prob), best, batch_dims=1)
        new_length = tf.gather(flat(candidate_length), best, batch_dims=1)
        parent_finished = tf.gather(finished, parent, batch_dims=1)
        new_finished = parent_finished | tf.equal(new_tokens, END_ID) | (new_length >= limit[:, None])
        rows = tf.reshape(parent + tf.range(batch)[:, None] * k, [-1])
        new_state = [tf.gather(s, rows) for s in new_state]
        history = _record(tf.gather(history, rows), i, tf.reshape(new_tokens, [-1]))
        step_weights = tf.gather(tf.reshape(weights, [batch, k, src_len]), parent, batch_dims=1)
        step_weights = tf.where(parent_finished[:, :, None], 0.0, step_weights)
        # Keep the static shapes of the loop variables (a fixed beam width at export makes them known).
        same = lambda x, like: tf.reshape(x, tf.shape(like))  # noqa: E731
        new_tokens, new_log_prob = same(new_tokens, tokens), same(new_log_prob, log_prob)
        new_length, new_finished = same(new_length, length), same(new_finished, finished)
        return (i + 1, new_tokens, new_state, new_log_prob, new_length, new_finished, history,
                tokens_ta.write(i, new_tokens), parents_ta.write(i, parent), weights_ta.write(i, step_weights))

    _, _, _, log_prob, length, _, _, tokens_ta, parents_ta, weights_ta = tf.while_loop(
        cond, body,
        (tf.constant(0), tokens, state, log_prob, length, finished, history, tokens_ta, parents_ta, weights_ta),
    )
    score = log_prob / length_penalty_factor(length, alpha)
    order = tf.math.top_k(score, k=k).indices  # [batch, k], best first
    all_tokens = tokens_ta.stack()  # [steps, batch, k]
    all_parents = parents_ta.stack()
    all_weights = tf.reshape(weights_ta.stack(), [-1, batch, k, src_len])
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
    return {
        "tokens": tokens,
        "length": tf.gather(length, order, batch_dims=1),
        "attention": attention,
        "log_prob": tf.gather(log_prob, order, batch_dims=1),
        "score": tf.gather(score, order, batch_dims=1),
    }


# ---------------------------------------------------------------------- strings in, everything out
def _target_outputs(model, tokens, length):
    """Token ids [..., tgt_len] and lengths [...] -> text [...] and token strings [..., tgt_len] ("" on padding)."""
    target_tokens = model.target_text.ids_to_tokens(tokens)
    valid = tf.sequence_mask(length, tf.shape(tokens)[-1])
    shape = tf.shape(tokens)
    flat_text = model.target_text.detokenize(tf.reshape(tokens, [-1, shape[-1]]))
    return tf.reshape(flat_text, shape[:-1]), tf.where(valid, target_tokens, "")


def _empty_dictionary():
    return tf.zeros([0], tf.string), tf.zeros([0], tf.string)


def replace_unknown_words(target_ids, target_tokens, attention, source_words, enabled=True,
                          dictionary_keys=None, dictionary_values=None, *, copy_names=False,
                          source_ids=None, source_name_like=None):
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
    ("Zorvak failed" -> "it failed"); this copies it back.

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
        dictionary_keys, dictionary_values = _empty_dictionary()
    position = tf.argmax(attention, axis=-1, output_type=tf.int32)  # [batch, tgt_len]
    copied = tf.gather(source_words, position, batch_dims=1)
    match = tf.equal(copied[..., None], dictionary_keys[None, None, :])  # [batch, tgt_len, n]
    found = tf.reduce_any(match, axis=-1)
    # One never-matching column more, so argmax and gather are defined for an empty dictionary.
    first = tf.argmax(tf.cast(tf.pad(match, [[0, 0], [0, 0], [0, 1]]), tf.int32), axis=-1, output_type=tf.int32)
    translated = tf.where(found, tf.gather(tf.concat([dictionary_values, [""]], 0), first), copied)
    replaced = tf.equal(target_ids, UNK_ID) & tf.not_equal(target_tokens, "") & tf.not_equal(copied, "")
    if source_ids is not None and source_name_like is not None:
        replaced = tf.logical_or(replaced, tf.logical_and(
            tf.cast(copy_names, tf.bool),
            _name_copies(target_ids, target_tokens, attention, position, source_ids, source_name_like),
        ))
    replaced = tf.logical_and(replaced, tf.cast(enabled, tf.bool))
    return tf.where(replaced, translated, target_tokens), replaced


def _name_copies(target_ids, target_tokens, attention, position, source_ids, source_name_like):
    """bool [batch, tgt_len]: the steps that get an unknown source name/number copied (see
    :func:`replace_unknown_words`): per such source word, the word step attending to it most."""
    unknown = tf.logical_and(tf.equal(tf.cast(source_ids, tf.int32), UNK_ID), source_name_like)  # [batch, src_len]
    is_word = tf.logical_and(tf.strings.regex_full_match(target_tokens, r"[\p{L}\p{N}].*|\[UNK\]"),
                             tf.not_equal(target_ids, END_ID))
    eligible = tf.logical_and(is_word, tf.gather(unknown, position, batch_dims=1))  # [batch, tgt_len]
    weight = tf.where(eligible, tf.gather(attention, position, axis=2, batch_dims=2), -1.0)
    # Step i loses to step i2 attending the same source word with more weight (the earlier one on a tie).
    same = tf.logical_and(tf.equal(position[:, :, None], position[:, None, :]), eligible[:, None, :])
    steps = tf.range(tf.shape(position)[1])
    stronger = tf.logical_or(weight[:, None, :] > weight[:, :, None],
                             tf.logical_and(tf.equal(weight[:, None, :], weight[:, :, None]),
                                            steps[None, None, :] < steps[None, :, None]))
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


def _replace_in(model, ids, text, tokens, attention, source, replace_unk, keys, values, copy_names):
    """(text [batch], tokens [batch, tgt_len], replaced int32 [batch, tgt_len]) after replacement.

    ``source``: (source ids, source words, name-like flags), each [batch, src_len].
    """
    enabled = tf.logical_and(tf.cast(replace_unk, tf.bool), model.has_attention)
    source_ids, source_words, name_like = source
    new_tokens, replaced = replace_unknown_words(ids, tokens, attention, source_words, enabled, keys, values,
                                                 copy_names=copy_names, source_ids=source_ids,
                                                 source_name_like=name_like)
    any_replaced = tf.reduce_any(replaced, axis=-1)
    # Sentences without a replacement keep the processor's own detokenization, bit for bit.
    text = tf.where(any_replaced, _tokens_to_text(model.target_text, ids, new_tokens), text)
    return text, new_tokens, tf.cast(replaced, tf.int32)


def translate_graph(
    model,
    strings,
    max_length=DEFAULT_MAX_LENGTH,
    *,
    method: str = "greedy",
    beam_width=DEFAULT_BEAM_WIDTH,
    length_penalty=DEFAULT_LENGTH_PENALTY,
    temperature=1.0,
    seed=0,
    max_source_length=DEFAULT_MAX_SOURCE_LENGTH,
    replace_unk=DEFAULT_REPLACE_UNK,
    unk_dictionary_keys=None,
    unk_dictionary_values=None,
    block_ngram_repeat=None,
    copy_unknown_names=DEFAULT_COPY_UNKNOWN_NAMES,
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
    ``beams_replaced`` int32 [batch, k, tgt_len]. ``target_ids`` int32 [batch,
    tgt_len] are the returned hypothesis' token ids before replacement (0 after
    ``[END]``): what the decoder was fed, for recomputing its attention per head.

    ``replace_unk`` (bool scalar), ``copy_unknown_names`` (bool scalar; only
    with ``replace_unk``) and ``unk_dictionary_keys`` / ``unk_dictionary_values``
    (string [n], keys standardised like the source): see
    :func:`replace_unknown_words`. ``block_ngram_repeat`` (int32 scalar):
    see :func:`repeated_ngram_tokens`; ``None`` is the method's default
    (:data:`DEFAULT_BEAM_BLOCK_NGRAM_REPEAT` for beam, 0 otherwise).
    """
    if method not in METHODS:
        raise ValueError(f"method={method!r}: choose one of {METHODS}.")
    if block_ngram_repeat is None:
        block_ngram_repeat = DEFAULT_BEAM_BLOCK_NGRAM_REPEAT if method == "beam" else DEFAULT_BLOCK_NGRAM_REPEAT
    if unk_dictionary_keys is None or unk_dictionary_values is None:
        unk_dictionary_keys, unk_dictionary_values = _empty_dictionary()
    source_ids, source_tokens, source_length, source_words, name_like = encode_source(
        model, strings, max_source_length, with_words=True
    )
    replace = lambda ids, text, tokens, attention, source: _replace_in(  # noqa: E731
        model, ids, text, tokens, attention, source, replace_unk, unk_dictionary_keys, unk_dictionary_values,
        copy_unknown_names,
    )
    source = (source_ids, source_words, name_like)
    outputs = {"source_tokens": source_tokens, "source_length": source_length}
    if method == "beam":
        beams = beam_search(model, source_ids, max_length, beam_width, length_penalty, block_ngram_repeat)
        text, tokens = _target_outputs(model, beams["tokens"], beams["length"])
        shape = tf.shape(beams["tokens"])  # [batch, k, tgt_len]
        flat_source = tuple(tf.repeat(x, shape[1], axis=0) for x in source)
        flat_text, flat_tokens, flat_replaced = replace(
            tf.reshape(beams["tokens"], [-1, shape[2]]), tf.reshape(text, [-1]), tf.reshape(tokens, [-1, shape[2]]),
            tf.reshape(beams["attention"], [shape[0] * shape[1], shape[2], -1]), flat_source,
        )
        outputs.update(
            beams_translation=tf.reshape(flat_text, shape[:2]),
            beams_target_tokens=tf.reshape(flat_tokens, shape),
            beams_target_length=beams["length"],
            beams_attention=beams["attention"],
            beams_log_prob=beams["log_prob"],
            beams_score=beams["score"],
            beams_replaced=tf.reshape(flat_replaced, shape),
        )
        result = {name: value[:, 0] for name, value in beams.items()}
    elif method == "sample":
        result = sample_search(model, source_ids, max_length, temperature, seed, block_ngram_repeat)
    else:
        result = greedy_search(model, source_ids, max_length, block_ngram_repeat)
    text, tokens = _target_outputs(model, result["tokens"], result["length"])
    text, tokens, replaced = replace(result["tokens"], text, tokens, result["attention"], source)
    outputs.update(
        translation=text,
        target_tokens=tokens,
        target_length=result["length"],
        target_ids=result["tokens"],
        attention=result["attention"],
        log_prob=result["log_prob"],
        score=result["score"],
        replaced=replaced,
    )
    return outputs


def _compiled_translate(model, method: str):
    cache = getattr(model, "_seq2seq_translate_fns", None)
    if cache is None:
        cache = {}
        # Plain attribute (not tracked by Keras): a cache, not part of the model.
        object.__setattr__(model, "_seq2seq_translate_fns", cache)
    if method not in cache:

        def run(strings, max_length, max_source_length, beam_width, length_penalty, temperature, seed,
                replace_unk, unk_keys, unk_values, block_ngram_repeat, copy_unknown_names):
            return translate_graph(
                model, strings, max_length, method=method, beam_width=beam_width, length_penalty=length_penalty,
                temperature=temperature, seed=seed, max_source_length=max_source_length,
                replace_unk=replace_unk, unk_dictionary_keys=unk_keys, unk_dictionary_values=unk_values,
                block_ngram_repeat=block_ngram_repeat, copy_unknown_names=copy_unknown_names,
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
            ],
        )
    return cache[method]


def unk_dictionary_tensors(model, unk_dictionary):
    """A ``{source word: target text}`` mapping -> (keys, values) string [n] for the graph.

    Keys are standardised like the source side (lower-cased, accents stripped
    for Latin scripts, ...), so ``{"José": "José"}`` matches the source word
    ``jose`` the model sees. Values are used as written.
    """
    if not unk_dictionary:
        return _empty_dictionary()
    if not isinstance(unk_dictionary, dict):
        try:
            unk_dictionary = dict(unk_dictionary)
        except (TypeError, ValueError):
            raise TypeError(
                "unk_dictionary must map source words to target text, e.g. {'bruselas': 'Brussels'}."
            ) from None
    keys, values = [], []
    for key, value in unk_dictionary.items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise TypeError(f"unk_dictionary entries must be str -> str, got {key!r} -> {value!r}.")
        keys.append(key)
        values.append(value)
    standard = model.source_text.standardize(tf.constant(keys, tf.string))
    return standard, tf.constant(values, tf.string)


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


def as_utf8_bytes(text) -> bytes:
    """A ``str`` or ``bytes`` sentence as bytes for the graph.

    ``str`` from ``sys.argv`` or a file read with ``errors="surrogateescape"``
    carries undecodable bytes as lone surrogates: they are turned back into
    those bytes (and then into U+FFFD by the graph), never an exception.
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


def _check_int(name, value, minimum):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an integer, got {value!r}.")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}.")
    return int(value)


def translate(
    model,
    texts: str | bytes | Iterable[str | bytes],
    *,
    method: str = "greedy",
    beam_width: int = DEFAULT_BEAM_WIDTH,
    length_penalty: float = DEFAULT_LENGTH_PENALTY,
    n_best: int = 1,
    temperature: float = 1.0,
    seed: int | None = None,
    max_length: int | None = None,
    max_source_length: int | None = None,
    batch_size: int = 256,
    replace_unk: bool = DEFAULT_REPLACE_UNK,
    unk_dictionary: dict[str, str] | None = None,
    block_ngram_repeat: int | None = None,
    copy_unknown_names: bool = DEFAULT_COPY_UNKNOWN_NAMES,
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
            hypotheses in ``Translation.alternatives`` (``n_best <= beam_width``).
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

    See the module docstring for what empty, very long or malformed input gives.
    """
    if method not in METHODS:
        raise ValueError(f"method={method!r}: choose one of {METHODS}.")
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
    raw = [as_utf8_bytes(s) for s in sentences]
    max_length = DEFAULT_MAX_LENGTH if max_length is None else _check_int("max_length", max_length, 1)
    max_source_length = (
        DEFAULT_MAX_SOURCE_LENGTH if max_source_length is None else _check_int("max_source_length", max_source_length, 1)
    )
    beam_width = _check_int("beam_width", beam_width, 1)
    n_best = _check_int("n_best", n_best, 1)
    batch_size = _check_int("batch_size", batch_size, 1)
    if n_best > 1 and method != "beam":
        raise ValueError(f"n_best={n_best} needs method='beam' (greedy and sampling give one hypothesis).")
    if n_best > beam_width:
        raise ValueError(f"n_best={n_best} is more than beam_width={beam_width}: raise beam_width.")
    if not (isinstance(temperature, (int, float, np.floating)) and math.isfinite(temperature) and temperature > 0):
        raise ValueError(f"temperature must be a finite number > 0, got {temperature!r}.")
    if not (isinstance(length_penalty, (int, float, np.floating)) and math.isfinite(length_penalty)):
        raise ValueError(f"length_penalty must be a finite number, got {length_penalty!r}.")
    if seed is None:
        seed = secrets.randbits(62)
    seed = _check_int("seed", seed, -(2**63))
    for name, flag in (("replace_unk", replace_unk), ("copy_unknown_names", copy_unknown_names)):
        if not isinstance(flag, (bool, np.bool_)):
            raise TypeError(f"{name} must be True or False, got {flag!r}.")
    if block_ngram_repeat is None:
        block_ngram_repeat = DEFAULT_BEAM_BLOCK_NGRAM_REPEAT if method == "beam" else DEFAULT_BLOCK_NGRAM_REPEAT
    block_ngram_repeat = _check_int("block_ngram_repeat", block_ngram_repeat, 0)
    unk_keys, unk_values = unk_dictionary_tensors(model, unk_dictionary)

    fn = _compiled_translate(model, method)
    results: list[Translation] = []
    for chunk_index, start in enumerate(range(0, len(raw), batch_size)):
        chunk = raw[start:start + batch_size]
        out = fn(
            tf.constant(chunk, tf.string),
            tf.constant(max_length, tf.int32),
            tf.constant(max_source_length, tf.int32),
            tf.constant(beam_width, tf.int32),
            tf.constant(length_penalty, tf.float32),
            tf.constant(temperature, tf.float32),
            tf.constant((seed + chunk_index) % 2**63, tf.int64),
            tf.constant(bool(replace_unk)),
            unk_keys,
            unk_values,
            tf.constant(block_ngram_repeat, tf.int32),
            tf.constant(bool(copy_unknown_names)),
        )
        results.extend(
            results_to_translations(out, [readable(s) for s in chunk], has_attention=model.has_attention, n_best=n_best)
        )
    return results[0] if single else results


def _as_numpy(value):
    return value.numpy() if hasattr(value, "numpy") else np.asarray(value)


def results_to_translations(out, sources, has_attention=True, n_best: int = 1) -> list[Translation]:
    """Turn a dict of batch-major outputs (graph, SavedModel or server) into Translations.

    Needs ``translation``, ``source_tokens``, ``source_length``,
    ``target_tokens``, ``target_length``, ``attention``; uses ``log_prob``,
    ``score`` and ``replaced`` when present, and the ``beams_*`` outputs for ``n_best > 1``.
    """
    texts = to_python_strings(_as_numpy(out["translation"]))
    batch = len(texts)
    src_tokens = to_python_strings(_as_numpy(out["source_tokens"]))
    src_len = _as_numpy(out["source_length"]).reshape(-1)
    tgt_len = _as_numpy(out["target_length"]).reshape(-1)
    log_prob = _as_numpy(out["log_prob"]).astype(np.float32).reshape(-1) if "log_prob" in out else np.zeros(batch, np.float32)
    score = _as_numpy(out["score"]).astype(np.float32).reshape(-1) if "score" in out else log_prob
    if len(sources) != batch:
        raise ValueError(f"{len(sources)} sources for {batch} translations: the batch dimension disagrees.")
    if batch == 0:
        return []
    tgt_tokens = to_python_strings(_as_numpy(out["target_tokens"]))
    attention = _as_numpy(out["attention"]).astype(np.float32)
    # Exports and servers from before unknown-word replacement have no "replaced" output.
    replaced = _as_numpy(out["replaced"]).astype(bool) if "replaced" in out else np.zeros(attention.shape[:2], bool)

    def make(b, source, text, tokens, t, weights, lp, sc, marks):
        s = int(src_len[b])
        return Translation(
            source=source,
            text=text,
            source_tokens=list(src_tokens[b][:s]),
            target_tokens=list(tokens[:t]),
            attention=weights[:t, :s].copy() if has_attention else None,
            log_prob=float(lp),
            score=float(sc),
            replaced=[bool(m) for m in marks[:t]],
        )

    beams = None
    if n_best > 1:
        beams = {
            "text": to_python_strings(_as_numpy(out["beams_translation"])),
            "tokens": to_python_strings(_as_numpy(out["beams_target_tokens"])),
            "length": _as_numpy(out["beams_target_length"]),
            "attention": _as_numpy(out["beams_attention"]).astype(np.float32),
            "log_prob": _as_numpy(out["beams_log_prob"]).astype(np.float32),
            "score": _as_numpy(out["beams_score"]).astype(np.float32),
        }
        beams["replaced"] = (
            _as_numpy(out["beams_replaced"]).astype(bool) if "beams_replaced" in out
            else np.zeros(beams["attention"].shape[:3], bool)
        )
    translations = []
    for b, text in enumerate(texts):
        source = sources[b]
        if isinstance(source, bytes):
            source = source.decode("utf-8", errors="replace")
        t = make(b, source, text, tgt_tokens[b], int(tgt_len[b]), attention[b], log_prob[b], score[b], replaced[b])
        if beams is not None:
            t.alternatives = [
                make(b, source, beams["text"][b][j], beams["tokens"][b][j], int(beams["length"][b, j]),
                     beams["attention"][b, j], beams["log_prob"][b, j], beams["score"][b, j],
                     beams["replaced"][b, j])
                for j in range(1, min(n_best, len(beams["text"][b])))
            ]
        translations.append(t)
    return translations
