"""Greedy, sampling and beam search: against step-by-step references, teacher forcing and each other.

The tiny models are trained once per test session (a few hundred built-in
pairs, 16 units, seconds) and cached under pytest's session temp folder, so
test_export.py and test_serving.py reuse them (they import the helpers below).
"""

from __future__ import annotations

import math
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from seq2seq_keras.text import END_ID, PAD_ID, START_ID

TINY_SETTINGS = dict(
    data="builtin-ko-en", limit=500, embedding_dim=16, units=16, epochs=2, batch_size=32,
    learning_rate=1e-2, max_vocabulary=None, seed=0,
)
SUBWORD_SETTINGS = dict(TINY_SETTINGS, limit=300, subword=True, max_vocabulary=300, attention="luong-general")


def tiny_run_dir(tmp_path_factory, kind: str = "word") -> Path:
    """Train (once per session) and return a run folder: ``word`` (Bahdanau) or ``subword`` (WordPiece, Luong)."""
    from seq2seq_keras.training import TrainConfig, train

    out = tmp_path_factory.getbasetemp() / "seq2seq_tiny_runs" / kind
    if not (out / "model.keras").exists():
        settings = TINY_SETTINGS if kind == "word" else SUBWORD_SETTINGS
        train(TrainConfig(**settings), out_dir=out, verbose=0)
    return out


def sample_sentences(n: int = 24, seed: int = 7) -> list[str]:
    from seq2seq_keras.data import load_corpus

    return list(load_corpus("builtin-ko-en", limit=n, seed=seed).source)


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    return tiny_run_dir(tmp_path_factory, "word")


@pytest.fixture(scope="session")
def tiny_model(tiny_run):
    from seq2seq_keras.training import load_model

    return load_model(tiny_run)


@pytest.fixture(scope="session")
def sentences():
    return sample_sentences()


# ---------------------------------------------------------------------- independent references
def _source_ids(model, sentence, max_source_length=256):
    ids = model.source_text([sentence])[:, :max_source_length]
    return ids


def _limit(source_length, max_length=100):
    return 0 if source_length == 0 else min(max_length, 2 * source_length + 10)


def reference_greedy(model, sentence, max_length=100):
    """One sentence, eager, one decoder step at a time with NumPy argmax."""
    ids = _source_ids(model, sentence)
    s = int(ids.shape[1])
    enc_out, enc_states, mask = model.encoder(ids)
    state, memory = model.decoder.start(enc_out, enc_states, mask)
    token, tokens, log_prob, rows = START_ID, [], 0.0, []
    for _ in range(_limit(s, max_length)):
        logits, state, weights = model.decoder.step(tf.constant([token]), state, memory)
        log_probs = tf.nn.log_softmax(tf.cast(logits, tf.float32))[0].numpy().astype(np.float64)
        allowed = log_probs.copy()
        allowed[[PAD_ID, START_ID]] = -np.inf
        token = int(np.argmax(allowed))
        tokens.append(token)
        log_prob += log_probs[token]
        rows.append(np.asarray(weights[0], np.float32))
        if token == END_ID:
            break
    return tokens, log_prob, np.array(rows).reshape(len(rows), s)


def reference_beam(model, sentence, beam_width, alpha, max_length=100):
    """Textbook beam search over whole prefixes (no back-pointers): a list of hypotheses, best first.

    Each hypothesis keeps its full token list and the attention row of every
    step, copied with the prefix, so there is nothing to follow backwards.
    """
    ids = _source_ids(model, sentence)
    s = int(ids.shape[1])
    limit = _limit(s, max_length)
    enc_out, enc_states, mask = model.encoder(ids)
    state, memory = model.decoder.start(enc_out, enc_states, mask)
    penalty = lambda n: ((5.0 + n) / 6.0) ** alpha  # noqa: E731
    beams = [dict(log_prob=0.0, tokens=[], rows=[], state=state, done=limit == 0)]
    for _ in range(limit):
        if all(b["done"] for b in beams):
            break
        candidates = []
        for b in beams:
            if b["done"]:
                candidates.append(b)
                continue
            last = b["tokens"][-1] if b["tokens"] else START_ID
            logits, new_state, weights = model.decoder.step(tf.constant([last]), b["state"], memory)
            log_probs = tf.nn.log_softmax(tf.cast(logits, tf.float32))[0].numpy().astype(np.float64)
            row = np.asarray(weights[0], np.float32)
            for token in range(len(log_probs)):
                if token in (PAD_ID, START_ID):
                    continue
                n = len(b["tokens"]) + 1
                candidates.append(dict(
                    log_prob=b["log_prob"] + log_probs[token], tokens=b["tokens"] + [token], rows=b["rows"] + [row],
                    state=new_state, done=token == END_ID or n >= limit,
                ))
        candidates.sort(key=lambda c: -c["log_prob"] / penalty(len(c["tokens"])))
        beams = candidates[:beam_width]
    beams.sort(key=lambda c: -c["log_prob"] / penalty(len(c["tokens"])))
    for b in beams:
        b["score"] = b["log_prob"] / penalty(len(b["tokens"]))
        b["rows"] = np.array(b["rows"]).reshape(len(b["rows"]), s)
    return beams


def token_ids(model, tokens):
    index = {t: i for i, t in enumerate(model.target_text.vocabulary)}
    return [index[t] for t in tokens]


def model_tokens(translation):
    """The tokens the model emitted: ``target_tokens`` with every replaced position back to ``[UNK]``."""
    marks = translation.replaced or [False] * len(translation.target_tokens)
    assert len(marks) == len(translation.target_tokens)
    return ["[UNK]" if r else t for t, r in zip(translation.target_tokens, marks)]


def teacher_forced(model, translation, max_source_length=256):
    """log P(target_tokens | source) and attention [tgt_len, src_len] by teacher forcing the returned tokens."""
    ids = _source_ids(model, translation.source, max_source_length)
    target = token_ids(model, model_tokens(translation))
    target_in = tf.constant([[START_ID] + target[:-1]], tf.int32)
    logits, weights = model.call_with_attention((ids, target_in))
    log_probs = tf.nn.log_softmax(tf.cast(logits, tf.float32))[0].numpy().astype(np.float64)
    return float(sum(log_probs[i, t] for i, t in enumerate(target))), np.asarray(weights[0], np.float32)


# ---------------------------------------------------------------------- greedy
def test_greedy_matches_a_step_by_step_reference(tiny_model, sentences):
    from seq2seq_keras.decoding import translate

    results = translate(tiny_model, sentences[:10])
    for t in results:
        tokens, log_prob, rows = reference_greedy(tiny_model, t.source)
        assert token_ids(tiny_model, model_tokens(t)) == tokens
        assert t.log_prob == pytest.approx(log_prob, abs=1e-4)
        assert t.attention.shape == (len(tokens), len(t.source_tokens))
        np.testing.assert_allclose(t.attention, rows, atol=1e-5)
        assert t.length == len(tokens) and t.score == t.log_prob


@pytest.mark.parametrize("method", ["greedy", "beam", "sample"])
def test_returned_tokens_log_prob_and_attention_agree_with_teacher_forcing(tiny_model, sentences, method):
    """Whatever the search, the attention and log-probability returned are those of the returned tokens."""
    from seq2seq_keras.decoding import translate

    extra = dict(beam_width=3, n_best=3) if method == "beam" else dict(seed=5) if method == "sample" else {}
    for t in translate(tiny_model, sentences[:8], method=method, **extra):
        for hypothesis in [t, *t.alternatives]:
            log_prob, weights = teacher_forced(tiny_model, hypothesis)
            assert hypothesis.log_prob == pytest.approx(log_prob, abs=2e-4)
            np.testing.assert_allclose(hypothesis.attention, weights, atol=2e-5)
            np.testing.assert_allclose(hypothesis.attention.sum(-1), 1.0, atol=1e-5)
            assert hypothesis.target_tokens[:-1].count("[END]") == 0


# ---------------------------------------------------------------------- beam search
def test_beam_width_1_is_exactly_greedy(tiny_model, sentences):
    from seq2seq_keras.decoding import translate

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
    from seq2seq_keras.decoding import translate

    results = translate(tiny_model, sentences[:5], method="beam", beam_width=beam_width, length_penalty=alpha,
                        n_best=beam_width)
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


def test_beam_log_prob_is_at_least_greedy(tiny_model, sentences):
    from seq2seq_keras.decoding import translate

    greedy = translate(tiny_model, sentences)
    beam = translate(tiny_model, sentences, method="beam", beam_width=4, length_penalty=0.0)
    for g, b in zip(greedy, beam):
        assert b.log_prob >= g.log_prob - 1e-5, (g.source, g.text, b.text)
    assert sum(b.log_prob for b in beam) > sum(g.log_prob for g in greedy)


# ---------------------------------------------------------------------- sampling
def test_sampling_is_reproducible_with_a_seed_and_varies_without(tiny_model, sentences):
    from seq2seq_keras.decoding import translate

    a = translate(tiny_model, sentences, method="sample", seed=11, temperature=1.5)
    b = translate(tiny_model, sentences, method="sample", seed=11, temperature=1.5)
    c = translate(tiny_model, sentences, method="sample", seed=12, temperature=1.5)
    assert [t.target_tokens for t in a] == [t.target_tokens for t in b]
    assert [t.target_tokens for t in a] != [t.target_tokens for t in c]


def test_sampling_at_low_temperature_is_greedy(tiny_model, sentences):
    from seq2seq_keras.decoding import translate

    greedy = translate(tiny_model, sentences)
    cold = translate(tiny_model, sentences, method="sample", seed=3, temperature=1e-4)
    assert [t.target_tokens for t in cold] == [t.target_tokens for t in greedy]


@pytest.mark.parametrize("temperature", [1.0, 2.5])
def test_sampled_first_tokens_follow_the_tempered_softmax(tiny_model, sentences, temperature):
    """2,000 independent draws of the first token follow softmax(logits / T) (binned z-test)."""
    from seq2seq_keras.decoding import translate

    n = 2000
    draws = translate(tiny_model, [sentences[0]] * n, method="sample", seed=21, temperature=temperature,
                      max_length=1, batch_size=n)
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


# ---------------------------------------------------------------------- limits and bad input
def test_output_and_source_limits(tiny_model, sentences):
    from seq2seq_keras.decoding import translate

    for t in translate(tiny_model, sentences, max_length=3):
        assert 1 <= t.length <= 3
    long = " ".join(["나는 학생이다"] * 30)
    t = translate(tiny_model, long, max_source_length=7, method="beam")
    assert t.source_tokens == ["나는", "학생이다"] * 3 + ["나는"]
    assert t.attention.shape == (t.length, 7)
    assert t.length <= 2 * 7 + 10


def test_bad_input_through_the_python_api(tiny_model):
    from seq2seq_keras.decoding import DEFAULT_MAX_LENGTH, DEFAULT_MAX_SOURCE_LENGTH, translate

    long = " ".join(["학생"] * 2000)
    inputs = ["", "   \t ", "\x00\x01\x1f", b"\xff\xfe \xc3(", "\udcff abc", "😀 ሰላም ∑ 漢字", "나는\n학생이다", long]
    for method in ("greedy", "beam", "sample"):
        out = translate(tiny_model, inputs, method=method, seed=0)
        assert len(out) == len(inputs)
        for t in out[:3]:  # nothing to translate: defined empty result
            assert (t.text, t.target_tokens, t.log_prob, t.attention.shape) == ("", [], 0.0, (0, 0))
        assert out[3].source == "\ufffd\ufffd \ufffd(" and out[3].source_tokens[0] == "\ufffd\ufffd"
        assert out[4].source == "\ufffd abc"
        assert out[5].source_tokens == ["😀", "ሰላም", "∑", "漢字"]  # unknown words kept as written
        assert out[6].source_tokens == ["나는", "학생이다"]
        assert out[7].attention.shape[1] == DEFAULT_MAX_SOURCE_LENGTH == len(out[7].source_tokens)
        assert out[7].length <= DEFAULT_MAX_LENGTH
        for t in out[3:]:
            assert 1 <= t.length and np.isfinite(t.log_prob) and t.attention.shape == (t.length, len(t.source_tokens))
    assert translate(tiny_model, []) == []
    many = translate(tiny_model, ["나는 학생이다"] * 1000, batch_size=300)
    assert len(many) == 1000 and len({tuple(t.target_tokens) for t in many}) == 1


@pytest.mark.parametrize(
    "kwargs,error,match",
    [
        (dict(method="topk"), ValueError, "method"),
        (dict(method="sample", temperature=0.0), ValueError, "temperature"),
        (dict(method="sample", temperature=float("nan")), ValueError, "temperature"),
        (dict(method="beam", beam_width=0), ValueError, "beam_width"),
        (dict(method="beam", beam_width=2, n_best=3), ValueError, "n_best"),
        (dict(n_best=2), ValueError, "n_best"),
        (dict(max_length=0), ValueError, "max_length"),
        (dict(max_source_length=1.5), TypeError, "max_source_length"),
        (dict(length_penalty=math.inf, method="beam"), ValueError, "length_penalty"),
    ],
)
def test_invalid_arguments_say_what_is_wrong(tiny_model, kwargs, error, match):
    from seq2seq_keras.decoding import translate

    with pytest.raises(error, match=match):
        translate(tiny_model, ["나는 학생이다"], **kwargs)


def test_non_strings_are_rejected_clearly(tiny_model):
    from seq2seq_keras.decoding import translate

    with pytest.raises(TypeError, match="str or bytes"):
        translate(tiny_model, ["ok", None])
    with pytest.raises(TypeError, match="sentence"):
        translate(tiny_model, 42)


def test_seq2seq_translate_forwards_the_decoding_options(tiny_model, sentences):
    from seq2seq_keras.decoding import translate

    a = tiny_model.translate(sentences[:4], method="beam", beam_width=3, n_best=2, length_penalty=0.0)
    b = translate(tiny_model, sentences[:4], method="beam", beam_width=3, n_best=2, length_penalty=0.0)
    assert [(t.text, [x.text for x in t.alternatives]) for t in a] == [(t.text, [x.text for x in t.alternatives]) for t in b]
    single = tiny_model.translate(sentences[0], method="sample", seed=4)
    assert single.source == sentences[0] and isinstance(single.text, str)


def test_cli_translate_survives_bad_input(tiny_run):
    """Arguments with invalid UTF-8, control characters, emoji, nothing and a 2,000-word sentence."""
    args = [b"", b"   ", b"\x01\x02", b"\xff\xfe abc", "😀 ሰላம".encode(), ("학생 " * 2000).encode(), "나는 학생이다".encode()]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    proc = subprocess.run(
        [os.fsencode(sys.executable), b"-m", b"seq2seq_keras.cli", b"translate", b"--model", os.fsencode(tiny_run), *args],
        capture_output=True, timeout=300, env=env,
    )
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")[-2000:]
    out = proc.stdout.decode("utf-8")
    assert out.count(" -> ") == len(args)
    assert "\ufffd\ufffd abc -> " in out


# ---------------------------------------------------------------------- unknown-word replacement
def forced_model(run_dir, token: str, boost: float = 50.0):
    """A fresh copy of the tiny model whose output layer always prefers ``token`` (a forced decoder)."""
    from seq2seq_keras.training import load_model

    model = load_model(run_dir)
    bias = model.decoder.output_layer.bias
    value = np.array(bias.numpy())
    value[model.target_text.vocabulary.index(token)] += boost
    bias.assign(value)
    return model


@pytest.fixture(scope="session")
def unk_model(tiny_run):
    """The tiny model forced to emit ``[UNK]`` at every step (it never ends: it runs to the length cap)."""
    return forced_model(tiny_run, "[UNK]")


def test_replace_unknown_words_copies_the_source_word_under_the_attention_argmax():
    """Exact values on a hand-made case: two [UNK]s, one through the dictionary, one copied; padding untouched."""
    from seq2seq_keras.decoding import replace_unknown_words

    ids = tf.constant([[5, 1, 7, 1, 3, 0]])
    tokens = tf.constant([["i", "[UNK]", "in", "[UNK]", "[END]", ""]])
    attention = tf.constant([[
        [0.7, 0.1, 0.1, 0.1], [0.1, 0.2, 0.1, 0.6], [0.1, 0.1, 0.7, 0.1],
        [0.2, 0.5, 0.2, 0.1], [0.25, 0.25, 0.25, 0.25], [0.0, 0.0, 0.0, 0.0],
    ]])
    words = tf.constant([["yo", "vivo", "en", "bruselas"]])
    out, replaced = replace_unknown_words(ids, tokens, attention, words)
    assert [t.decode() for t in out.numpy()[0]] == ["i", "bruselas", "in", "vivo", "[END]", ""]
    assert replaced.numpy().tolist() == [[False, True, False, True, False, False]]
    keys, values = tf.constant(["bruselas"]), tf.constant(["Brussels"])
    out, replaced = replace_unknown_words(ids, tokens, attention, words, True, keys, values)
    assert [t.decode() for t in out.numpy()[0]] == ["i", "Brussels", "in", "vivo", "[END]", ""]
    out, replaced = replace_unknown_words(ids, tokens, attention, words, False, keys, values)
    assert [t.decode() for t in out.numpy()[0]] == ["i", "[UNK]", "in", "[UNK]", "[END]", ""]
    assert not replaced.numpy().any()


@pytest.mark.parametrize("method", ["greedy", "beam"])
def test_every_unk_becomes_the_source_word_under_the_attention_argmax(unk_model, method):
    """A decoder forced to say [UNK]: each output word is the source word its own attention row points at."""
    from seq2seq_keras.decoding import translate

    sentence = "그는 홍길동 사과를 먹는다 ."
    # All [UNK]: beam's default 3-gram blocking would turn it into other words; this test is about replacement.
    extra = dict(beam_width=3, n_best=3, block_ngram_repeat=0) if method == "beam" else {}
    t = translate(unk_model, sentence, method=method, **extra)
    raw = translate(unk_model, sentence, method=method, replace_unk=False, **extra)
    assert raw.target_tokens == ["[UNK]"] * raw.length and not any(raw.replaced) and all(t.replaced)
    assert raw.text == " ".join(["[UNK]"] * raw.length)
    for hypothesis, plain in zip([t, *t.alternatives], [raw, *raw.alternatives]):
        assert plain.target_tokens == model_tokens(hypothesis)  # the same search
        unk = [tok == "[UNK]" for tok in plain.target_tokens]
        expected = [hypothesis.source_tokens[j] if u else tok
                    for tok, u, j in zip(plain.target_tokens, unk, np.argmax(hypothesis.attention, axis=1))]
        assert hypothesis.target_tokens == expected and hypothesis.replaced == unk
        np.testing.assert_array_equal(hypothesis.attention, plain.attention)  # the attention is unchanged
        assert hypothesis.log_prob == plain.log_prob
    if method == "greedy":
        tokens, _, rows = reference_greedy(unk_model, sentence)
        assert tokens == [1] * len(tokens)
        words = ["그는", "홍길동", "사과를", "먹는다", "."]
        assert t.target_tokens == [words[j] for j in rows.argmax(axis=1)]
        assert t.text == " ".join(words[j] for j in rows.argmax(axis=1)).replace(" .", ".")
    # The dictionary is looked up first (keys standardised like the source).
    d = translate(unk_model, sentence, method=method, unk_dictionary={"홍길동": "Hong Gildong"}, **extra)
    assert d.target_tokens == ["Hong Gildong" if w == "홍길동" else w for w in t.target_tokens]


def test_unknown_names_are_copied_over_the_step_attending_them_most():
    """Exact values: source word 2 is an unknown name; steps 0, 1 and 3 attend it most, step 1 the most
    of the word steps (step 3 is punctuation); nothing else changes. Known or lower-case words are not copied."""
    from seq2seq_keras.decoding import replace_unknown_words

    ids = tf.constant([[9, 10, 11, 12, 3]])
    tokens = tf.constant([["it", "he", "failed", ".", "[END]"]])
    attention = tf.constant([[[0.1, 0.1, 0.8], [0.05, 0.05, 0.9], [0.8, 0.1, 0.1], [0.0, 0.05, 0.95],
                              [0.2, 0.2, 0.6]]])
    words = tf.constant([["hace", "frio", "zorvak"]])
    source_ids = tf.constant([[7, 8, 1]])
    args = dict(source_ids=source_ids, copy_names=True)
    out, replaced = replace_unknown_words(ids, tokens, attention, words, source_name_like=tf.constant([[True, False, True]]),
                                          **args)
    assert [t.decode() for t in out.numpy()[0]] == ["it", "zorvak", "failed", ".", "[END]"]
    assert replaced.numpy().tolist() == [[False, True, False, False, False]]
    keys, values = tf.constant(["zorvak"]), tf.constant(["Zorvak"])
    out, _ = replace_unknown_words(ids, tokens, attention, words, True, keys, values,
                                   source_name_like=tf.constant([[True, False, True]]), **args)
    assert [t.decode() for t in out.numpy()[0]] == ["it", "Zorvak", "failed", ".", "[END]"]
    for name_like, known in (([[True, True, False]], [[7, 8, 1]]), ([[True, True, True]], [[7, 8, 6]])):
        out, replaced = replace_unknown_words(ids, tokens, attention, words, source_ids=tf.constant(known),
                                              source_name_like=tf.constant(name_like), copy_names=True)
        assert not replaced.numpy().any()  # lower-case unknown word, or a known word: left alone
    out, replaced = replace_unknown_words(ids, tokens, attention, words, source_ids=source_ids,
                                          source_name_like=tf.constant([[True, False, True]]), copy_names=False)
    assert not replaced.numpy().any()


def test_an_unknown_name_is_copied_end_to_end(tiny_model):
    from seq2seq_keras.decoding import translate

    sentences = ["Zorvak 는 사과를 먹는다.", "나는 Zorvak 를 만났다", "그는 학생이다 Zorvak 1945"]
    plain = translate(tiny_model, sentences, copy_unknown_names=False)
    copied = translate(tiny_model, sentences)
    found = 0
    for p, c in zip(plain, copied):
        unknown = [j for j, w in enumerate(p.source_tokens) if w in ("zorvak", "1945")]
        arg = np.argmax(p.attention, axis=1)
        expected = list(p.target_tokens)
        for j in unknown:
            steps = [i for i in range(p.length) if arg[i] == j and re.match(r"\w", p.target_tokens[i])
                     and p.target_tokens[i] != "[END]"]
            if steps:
                expected[max(steps, key=lambda i: (p.attention[i, j], -i))] = p.source_tokens[j]
        assert c.target_tokens == expected and c.replaced == [a != b for a, b in zip(expected, p.target_tokens)]
        assert c.log_prob == p.log_prob
        found += sum(c.replaced)
    assert found >= 1


def test_replacement_changes_nothing_without_unk(tiny_model, sentences):
    from seq2seq_keras.decoding import translate

    on, off = translate(tiny_model, sentences), translate(tiny_model, sentences, replace_unk=False)
    for a, b in zip(on, off):
        if "[UNK]" not in b.target_tokens:
            assert (a.text, a.target_tokens, a.replaced) == (b.text, b.target_tokens, [False] * b.length)


def test_subword_replacement_copies_whole_words(tmp_path_factory):
    """WordPiece: the copied word is the whole source word the attended piece belongs to, never a '##' piece."""
    model = forced_model(tiny_run_dir(tmp_path_factory, "subword"), "[UNK]")
    t = model.translate("그는 사과를 먹는다 xyzzyq 12345.")
    words = model.source_text.token_words(tf.constant(["그는 사과를 먹는다 xyzzyq 12345."])).to_list()[0]
    words = [w.decode() for w in words]
    assert len(words) == len(t.source_tokens)
    assert t.target_tokens == [words[j] for j in np.argmax(t.attention, axis=1)]
    assert all(not w.startswith("##") for w in t.target_tokens) and all(t.replaced)


# ---------------------------------------------------------------------- repetition guard
def test_repeated_ngram_tokens_exact():
    from seq2seq_keras.decoding import repeated_ngram_tokens

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
        prefix = tuple(tokens[len(tokens) - n + 1:]) if n > 1 else ()
        if len(tokens) >= n:
            for j in range(len(tokens) - n + 1):
                if tuple(tokens[j:j + n - 1]) == prefix and tokens[j + n - 1] != END_ID:
                    scores[tokens[j + n - 1]] = -np.inf
        token = int(np.argmax(scores))
        tokens.append(token)
        if token == END_ID:
            break
    return tokens


def _ngrams(tokens, n):
    return [tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1)]


@pytest.mark.parametrize("n", [1, 2, 3])
def test_a_forced_loop_is_cut_by_ngram_blocking(tiny_run, n):
    """A decoder forced to say 'the' forever: exact greedy loops; blocking gives the reference's output, no repeat."""
    from seq2seq_keras.decoding import translate

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
    from seq2seq_keras.decoding import DEFAULT_BEAM_BLOCK_NGRAM_REPEAT, translate

    default, off = translate(tiny_model, sentences), translate(tiny_model, sentences, block_ngram_repeat=0)
    assert [(t.target_tokens, t.log_prob) for t in default] == [(t.target_tokens, t.log_prob) for t in off]
    assert DEFAULT_BEAM_BLOCK_NGRAM_REPEAT == 3
    model = forced_model(tiny_run, "the", boost=8.0)
    beam = translate(model, "우리는 책을 읽었다.", method="beam", beam_width=2)
    explicit = translate(model, "우리는 책을 읽었다.", method="beam", beam_width=2, block_ngram_repeat=3)
    assert beam.target_tokens == explicit.target_tokens
    assert len(set(_ngrams(beam.target_tokens, 3))) == len(_ngrams(beam.target_tokens, 3))


@pytest.mark.parametrize(
    "kwargs,error,match",
    [
        (dict(block_ngram_repeat=-1), ValueError, "block_ngram_repeat"),
        (dict(replace_unk="yes"), TypeError, "replace_unk"),
        (dict(unk_dictionary={"a": 1}), TypeError, "unk_dictionary"),
    ],
)
def test_invalid_real_world_options_say_what_is_wrong(tiny_model, kwargs, error, match):
    from seq2seq_keras.decoding import translate

    with pytest.raises(error, match=match):
        translate(tiny_model, ["나는 학생이다"], **kwargs)
