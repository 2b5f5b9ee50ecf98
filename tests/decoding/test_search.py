"""The searches (seq2seq_keras/decoding/search.py): greedy, sampling and beam search against step-by-step
references written here and in test_decoding.py, against each other, and n-gram blocking exactly.

Each search is run through :func:`seq2seq_keras.decoding.pipeline.translate` (the graph every caller runs)
and compared with an eager NumPy reference that calls ``model.decoder.step`` one token at a time.
"""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
from conftest import TINY_SOURCE
from test_pipeline import (  # noqa: F401  (tiny_model, tiny_run, sentences, twelve_tokens: fixtures)
    _limit,
    _source_ids,
    forced_model,
    model_tokens,
    reference_beam,
    reference_greedy,
    sentences,
    teacher_forced,
    tiny_model,
    tiny_run,
    token_ids,
    twelve_tokens,
)

from seq2seq_keras.text import END_ID, PAD_ID, START_ID


# ---------------------------------------------------------------------- greedy
def test_greedy_matches_a_step_by_step_reference(tiny_model, sentences):
    from seq2seq_keras.decoding.pipeline import translate

    results = translate(tiny_model, sentences[:10])
    for t in results:
        tokens, log_prob, rows = reference_greedy(tiny_model, t.source)
        assert token_ids(tiny_model, model_tokens(t)) == tokens
        assert t.log_prob == pytest.approx(log_prob, abs=1e-4)
        assert t.attention.shape == (len(tokens), len(t.source_tokens))
        np.testing.assert_allclose(t.attention, rows, atol=1e-5)
        assert t.length == len(tokens) and t.score == t.log_prob


# ---------------------------------------------------------------------- beam search
def test_beam_width_1_is_exactly_greedy(tiny_model, sentences):
    from seq2seq_keras.decoding.pipeline import translate

    batch = sentences + ["", "   "]
    greedy = translate(tiny_model, batch)
    for alpha in (0.0, 0.6):
        beam = translate(tiny_model, batch, method="beam", beam_width=1, length_penalty=alpha)
        for g, b in zip(greedy, beam):
            assert b.target_tokens == g.target_tokens and b.text == g.text
            assert b.log_prob == g.log_prob  # bit for bit
            assert np.array_equal(b.attention, g.attention)


@pytest.mark.parametrize("beam_width,alpha", [(3, 0.0), (4, 0.6)])
def test_beam_search_matches_a_textbook_reference(tiny_model, sentences, beam_width, alpha):
    """Same hypotheses, scores and attention as a prefix-copying beam search (back-pointers followed right)."""
    from seq2seq_keras.decoding.pipeline import translate

    results = translate(
        tiny_model, sentences[:5], method="beam", beam_width=beam_width, length_penalty=alpha, n_best=beam_width
    )
    for t in results:
        reference = reference_beam(tiny_model, t.source, beam_width, alpha)
        ours = [t, *t.alternatives]
        assert len(ours) == beam_width
        for mine, ref in zip(ours, reference):
            assert token_ids(tiny_model, model_tokens(mine)) == ref["tokens"]
            assert mine.log_prob == pytest.approx(ref["log_prob"], abs=2e-4)
            assert mine.score == pytest.approx(ref["score"], abs=2e-4)
            np.testing.assert_allclose(mine.attention, ref["rows"], atol=2e-5)
        scores = [h.score for h in ours]
        assert scores == sorted(scores, reverse=True)
        assert len({tuple(h.target_tokens) for h in ours}) == len(ours)
        assert all(np.isfinite(s) and -50 < s <= 0 for s in scores)
        assert not {"", "[START]"} & {token for h in ours for token in h.target_tokens}


def _beam_arrays(model, sentences, **options):
    from seq2seq_keras.decoding.search import beam_search

    out = beam_search(model, tf.cast(model.source_text(sentences), tf.int32), **options)
    return {name: value.numpy() for name, value in out.items()}


def test_an_empty_source_has_one_hypothesis_and_empty_entries(tiny_model, sentences):
    """A sentence with no tokens: hypothesis 0 is the empty translation (log-probability 0), count 1, and the
    other k - 1 entries are empty (length 0, tokens 0, zero attention, log_prob and score 0.0), never a
    placeholder's -1e9; the real sentence beside it in the batch keeps all k."""
    out = _beam_arrays(tiny_model, ["", sentences[0]], max_length=100, beam_width=4, length_penalty=0.6)
    assert out["score"][0].tolist() == [0.0] * 4 and out["log_prob"][0].tolist() == [0.0] * 4
    assert out["length"][0].tolist() == [0] * 4 and not out["tokens"][0].any() and not out["attention"][0].any()
    assert out["count"].tolist() == [1, 4]
    assert np.all(np.isfinite(out["score"][1])) and np.all(out["length"][1] >= 1)


def test_more_beams_than_hypotheses_returns_the_real_ones_then_empty_entries(twelve_tokens):
    """12-token vocabulary, max_length=1, width 12: 10 real one-token hypotheses (never [PAD] or [START]), the
    textbook reference's, best first; entries 10 and 11 empty. With max_length=2 all 12 are real again."""
    model, sentence = twelve_tokens, TINY_SOURCE[0]
    out = _beam_arrays(model, [sentence], max_length=1, beam_width=12, length_penalty=0.6, block_ngram_repeat=0)
    reference = reference_beam(model, sentence, 12, 0.6, max_length=1)
    assert len(reference) == 10
    for j, ref in enumerate(reference):
        assert out["tokens"][0, j, : out["length"][0, j]].tolist() == ref["tokens"]
        assert out["log_prob"][0, j] == pytest.approx(ref["log_prob"], abs=2e-5)
        assert out["score"][0, j] == pytest.approx(ref["score"], abs=2e-5)
        np.testing.assert_allclose(out["attention"][0, j, :1], ref["rows"], atol=1e-6)
    assert sorted(out["tokens"][0, :10, 0]) == sorted(set(range(12)) - {PAD_ID, START_ID})
    assert out["score"][0, 10:].tolist() == [0.0, 0.0] and out["log_prob"][0, 10:].tolist() == [0.0, 0.0]
    assert out["length"][0, 10:].tolist() == [0, 0] and not out["tokens"][0, 10:].any()
    assert not out["attention"][0, 10:].any()
    assert out["count"].tolist() == [10]
    two = _beam_arrays(model, [sentence], max_length=2, beam_width=12, length_penalty=0.6, block_ngram_repeat=0)
    reference = reference_beam(model, sentence, 12, 0.6, max_length=2)
    assert two["count"].tolist() == [12] and len(reference) == 12
    for j, ref in enumerate(reference):
        assert two["tokens"][0, j, : two["length"][0, j]].tolist() == ref["tokens"]
        assert two["score"][0, j] == pytest.approx(ref["score"], abs=2e-5)


# ---------------------------------------------------------------------- coverage penalty (GNMT)
def test_coverage_penalty_hand_computed():
    """cp = beta * sum_i log(min(coverage_i, 1)) over real source words (Wu et al. 2016, eq. 14)."""
    from seq2seq_keras.decoding.search import coverage_penalty

    coverage = tf.constant([[0.5, 1.2, 0.1, 0.0], [1.0, 1.0, 0.0, 0.7]])
    mask = tf.constant([[True, True, True, False], [True, True, True, True]])
    # row 0: 0.2 * (ln 0.5 + ln 1 + ln 0.1), padding left out = 0.2 * (-0.6931472 - 2.3025851)
    # row 1: 0.2 * (ln 1 + ln 1 + ln 1e-10 (the floor) + ln 0.7) = 0.2 * (-23.0258509 - 0.3566749)
    np.testing.assert_allclose(coverage_penalty(coverage, mask, 0.2).numpy(), [-0.5991465, -4.6765052], rtol=1e-6)
    assert coverage_penalty(coverage, mask, 0.0).numpy().tolist() == [0.0, 0.0]
    # Two finished hypotheses, alpha = 0: A (log P -1.0) left word 2 at 0.1, B (log P -1.5) covered both.
    # Without cp A ranks first; with beta = 0.3, A scores -1.0 + 0.3 ln 0.1 = -1.6907755 < -1.5 and B wins.
    cp = coverage_penalty(tf.constant([[1.0, 0.1], [1.0, 1.0]]), tf.constant([True, True]), 0.3).numpy()
    np.testing.assert_allclose(np.array([-1.0, -1.5]) + cp, [-1.6907755, -1.5], rtol=1e-6)


@pytest.mark.parametrize("beta", [0.4, 2.0])
def test_coverage_penalty_matches_a_textbook_reference(tiny_model, sentences, beta):
    """Same hypotheses and GNMT scores as a prefix-copying beam search that sums each prefix's rows afresh
    (so the coverage the graph carries in its beam state, reordered with the parents, is checked)."""
    from seq2seq_keras.decoding.pipeline import translate

    results = translate(
        tiny_model,
        sentences[:6],
        method="beam",
        beam_width=3,
        length_penalty=0.6,
        n_best=3,
        block_ngram_repeat=0,
        coverage_penalty=beta,
    )
    for t in results:
        reference = reference_beam(tiny_model, t.source, 3, 0.6, beta=beta)
        for mine, ref in zip([t, *t.alternatives], reference):
            assert token_ids(tiny_model, model_tokens(mine)) == ref["tokens"]
            assert mine.log_prob == pytest.approx(ref["log_prob"], abs=2e-4)
            assert mine.score == pytest.approx(ref["score"], abs=2e-4)
            np.testing.assert_allclose(mine.attention, ref["rows"], atol=2e-5)


def test_coverage_penalty_flips_the_ranking_toward_covered_sources(tiny_model, sentences):
    """Where beta changes the returned hypothesis, the new one has the higher coverage penalty (it attended
    more of the source) and the lower length-normalised log-probability: cp decided the ranking."""
    from seq2seq_keras.decoding.pipeline import translate

    def cp(t):
        return float(np.sum(np.log(np.clip(t.attention.sum(axis=0), 1e-10, 1.0))))

    def normalised(t):
        return t.log_prob / ((5.0 + t.length) / 6.0) ** 0.6

    options = dict(method="beam", beam_width=4, length_penalty=0.6, block_ngram_repeat=0)
    plain = translate(tiny_model, sentences, coverage_penalty=0.0, **options)
    covered = translate(tiny_model, sentences, coverage_penalty=1.0, **options)
    flipped = [(p, c) for p, c in zip(plain, covered) if p.target_tokens != c.target_tokens]
    assert flipped, "no sentence changed: the coverage penalty did not reach the ranking"
    for p, c in flipped:
        assert cp(c) > cp(p) and normalised(c) <= normalised(p) + 1e-6
        assert c.score == pytest.approx(normalised(c) + cp(c), abs=2e-4)
    assert all(p.score == pytest.approx(normalised(p), abs=1e-5) for p in plain)


def test_beam_log_prob_is_at_least_greedy(tiny_model, sentences):
    from seq2seq_keras.decoding.pipeline import translate

    greedy = translate(tiny_model, sentences)
    beam = translate(tiny_model, sentences, method="beam", beam_width=4, length_penalty=0.0)
    for g, b in zip(greedy, beam):
        assert b.log_prob >= g.log_prob - 1e-5, (g.source, g.text, b.text)
    assert sum(b.log_prob for b in beam) > sum(g.log_prob for g in greedy)


# ---------------------------------------------------------------------- sampling
def test_sampling_is_reproducible_with_a_seed_and_varies_without(tiny_model, sentences):
    from seq2seq_keras.decoding.pipeline import translate

    a = translate(tiny_model, sentences, method="sample", seed=11, temperature=1.5)
    b = translate(tiny_model, sentences, method="sample", seed=11, temperature=1.5)
    c = translate(tiny_model, sentences, method="sample", seed=12, temperature=1.5)
    assert [t.target_tokens for t in a] == [t.target_tokens for t in b]
    assert [t.target_tokens for t in a] != [t.target_tokens for t in c]


def test_sampling_at_low_temperature_is_greedy(tiny_model, sentences):
    from seq2seq_keras.decoding.pipeline import translate

    greedy = translate(tiny_model, sentences)
    cold = translate(tiny_model, sentences, method="sample", seed=3, temperature=1e-4)
    assert [t.target_tokens for t in cold] == [t.target_tokens for t in greedy]


@pytest.mark.parametrize("temperature", [1.0, 2.5])
def test_sampled_first_tokens_follow_the_tempered_softmax(tiny_model, sentences, temperature):
    """2,000 independent draws of the first token follow softmax(logits / T) (binned z-test)."""
    from seq2seq_keras.decoding.pipeline import translate

    n = 2000
    draws = translate(
        tiny_model, [sentences[0]] * n, method="sample", seed=21, temperature=temperature, max_length=1, batch_size=n
    )
    ids = _source_ids(tiny_model, sentences[0])
    enc_out, enc_states, mask = tiny_model.encoder(ids)
    state, memory = tiny_model.decoder.start(enc_out, enc_states, mask)
    logits, _, _ = tiny_model.decoder.step(tf.constant([START_ID]), state, memory)
    logits = tf.cast(logits[0], tf.float64).numpy() / temperature
    logits[[PAD_ID, START_ID]] = -np.inf
    expected = np.exp(logits - logits.max())
    expected /= expected.sum()
    counts = np.bincount(token_ids(tiny_model, [model_tokens(t)[0] for t in draws]), minlength=len(expected))
    # Tokens with p >= 1% get their own bin, the rest share one; every bin within 4.5 standard errors.
    big = expected >= 0.01
    observed = np.append(counts[big], counts[~big].sum()) / n
    p = np.append(expected[big], expected[~big].sum())
    z = np.abs(observed - p) / np.sqrt(p * (1 - p) / n)
    assert big.sum() >= 3 and np.all(z < 4.5), (observed, p)


# ---------------------------------------------------------------------- n-gram blocking
def test_repeated_ngram_tokens_exact():
    from seq2seq_keras.decoding.search import repeated_ngram_tokens

    history = tf.constant([[5, 6, 5, 0, 0], [7, 8, 9, 7, 8]])

    def banned(step, n, row):
        return np.flatnonzero(repeated_ngram_tokens(history, step, n, 12).numpy()[row]).tolist()

    assert banned(3, 2, 0) == [6]  # "5 6 5": another 6 would repeat "5 6"
    assert banned(3, 2, 1) == []  # "7 8 9": no bigram starts with 9
    assert banned(4, 2, 1) == [8]  # "7 8 9 7": "7 8"
    assert banned(5, 2, 1) == [9]  # "7 8 9 7 8": "8 9"
    assert banned(5, 3, 1) == [9]  # "7 8 9 7 8": "7 8 9"
    assert banned(4, 3, 1) == []  # "7 8 9 7": no trigram starts with "9 7"
    assert banned(3, 1, 0) == [5, 6] and banned(3, 1, 1) == [7, 8, 9]
    assert banned(3, 0, 0) == [] and banned(5, 0, 1) == []  # n = 0: off
    assert banned(1, 2, 0) == []  # nothing to repeat yet
    end = tf.constant([[3, 4, 3, 0]])  # [END] (id 3) is never banned
    assert np.flatnonzero(repeated_ngram_tokens(end, 3, 2, 6).numpy()[0]).tolist() == [4]


def reference_blocked_greedy(model, sentence, n, max_length=100):
    """Greedy, eager, one step at a time, skipping every token that would repeat an n-gram."""
    ids = _source_ids(model, sentence)
    enc_out, enc_states, mask = model.encoder(ids)
    state, memory = model.decoder.start(enc_out, enc_states, mask)
    token, tokens = START_ID, []
    for _ in range(_limit(int(ids.shape[1]), max_length)):
        logits, state, _ = model.decoder.step(tf.constant([token]), state, memory)
        scores = tf.nn.log_softmax(tf.cast(logits, tf.float32))[0].numpy().astype(np.float64)
        scores[[PAD_ID, START_ID]] = -np.inf
        prefix = tuple(tokens[len(tokens) - n + 1 :]) if n > 1 else ()
        if len(tokens) >= n:
            for j in range(len(tokens) - n + 1):
                if tuple(tokens[j : j + n - 1]) == prefix and tokens[j + n - 1] != END_ID:
                    scores[tokens[j + n - 1]] = -np.inf
        token = int(np.argmax(scores))
        tokens.append(token)
        if token == END_ID:
            break
    return tokens


def _ngrams(tokens, n):
    return [tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]


@pytest.mark.parametrize("n", [1, 2, 3])
def test_a_forced_loop_is_cut_by_ngram_blocking(tiny_run, n):
    """A decoder forced to say 'the' forever: exact greedy loops; blocking gives the reference's output, no repeat."""
    from seq2seq_keras.decoding.pipeline import translate

    model = forced_model(tiny_run, "the", boost=8.0)
    sentence = "우리는 책을 읽었다."
    loop = translate(model, sentence)
    assert loop.target_tokens.count("the") >= loop.length - 1 >= 10  # the loop, as exact greedy gives it
    guarded = translate(model, sentence, block_ngram_repeat=n)
    assert token_ids(model, model_tokens(guarded)) == reference_blocked_greedy(model, sentence, n)
    grams = _ngrams(guarded.target_tokens, n)
    assert len(grams) == len(set(grams)), guarded.target_tokens
    log_prob, _ = teacher_forced(model, guarded)  # the log-probability is still the model's own
    assert guarded.log_prob == pytest.approx(log_prob, abs=2e-4)
    beam = translate(model, sentence, method="beam", beam_width=3, n_best=3, block_ngram_repeat=n)
    for hypothesis in [beam, *beam.alternatives]:
        grams = _ngrams(hypothesis.target_tokens, n)
        assert len(grams) == len(set(grams)), hypothesis.target_tokens
    one = translate(model, sentence, method="beam", beam_width=1, block_ngram_repeat=n)
    assert one.target_tokens == guarded.target_tokens and one.log_prob == guarded.log_prob


def test_greedy_stays_exact_greedy_by_default_and_beam_blocks_3_grams(tiny_run, tiny_model, sentences):
    from seq2seq_keras.decoding.options import DEFAULT_BEAM_BLOCK_NGRAM_REPEAT
    from seq2seq_keras.decoding.pipeline import translate

    default, off = translate(tiny_model, sentences), translate(tiny_model, sentences, block_ngram_repeat=0)
    assert [(t.target_tokens, t.log_prob) for t in default] == [(t.target_tokens, t.log_prob) for t in off]
    assert DEFAULT_BEAM_BLOCK_NGRAM_REPEAT == 3
    model = forced_model(tiny_run, "the", boost=8.0)
    beam = translate(model, "우리는 책을 읽었다.", method="beam", beam_width=2)
    explicit = translate(model, "우리는 책을 읽었다.", method="beam", beam_width=2, block_ngram_repeat=3)
    assert beam.target_tokens == explicit.target_tokens
    assert len(set(_ngrams(beam.target_tokens, 3))) == len(_ngrams(beam.target_tokens, 3))
