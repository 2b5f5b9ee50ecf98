"""translate(): strings in, Translations out, whatever the search; limits, bad input, argument checks.

The searches themselves are checked in test_search.py and unknown-word
replacement in test_unknown_words.py; both use the tiny models and the
independent references defined here. The tiny models are trained once per test
session (a few hundred built-in pairs, 16 units, seconds) and cached under
pytest's session temp folder, so test_export.py and test_serving.py reuse them
(they import the helpers below).
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from conftest import PRECISIONS, TINY_SOURCE

from seq2seq_keras.text import END_ID, PAD_ID, START_ID

# float32 by default (the step-by-step references below compare to 1e-4); the invariants that must hold
# under every precision (attention rows, SavedModel vs Python, XLA vs plain) also train in mixed_bfloat16,
# what ``auto`` picks on AMX CPUs, through ``tiny_run_dir(..., precision=...)``.
TINY_SETTINGS = dict(
    data="builtin-ko-en",
    limit=500,
    embedding_dim=16,
    encoder_units=16,
    epochs=2,
    batch_size=32,
    learning_rate=1e-2,
    max_vocabulary=None,
    seed=0,
    precision="float32",
)
SUBWORD_SETTINGS = dict(TINY_SETTINGS, limit=300, subword=True, max_vocabulary=300, attention="luong-general")


def tiny_run_dir(tmp_path_factory, kind: str = "word", precision: str = "float32") -> Path:
    """Train (once per session) and return a run folder: ``word`` (Bahdanau) or ``subword`` (WordPiece, Luong),
    trained under ``precision`` (a ``TrainConfig.precision``)."""
    from seq2seq_keras.training import TrainConfig, train

    name = kind if precision == "float32" else f"{kind}-{precision}"
    out = tmp_path_factory.getbasetemp() / "seq2seq_tiny_runs" / name
    if not (out / "model.keras").exists():
        settings = TINY_SETTINGS if kind == "word" else SUBWORD_SETTINGS
        train(TrainConfig(**{**settings, "precision": precision}), out_dir=out, verbose=0)
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


#: Target sentences whose vocabulary is 12 tokens: the 4 reserved ones and 8 words.
TWELVE_TOKEN_TARGET = ["I am a student.", "He eats now."]


def twelve_token_model():
    """An untrained tiny model with a 12-token target vocabulary (10 tokens it may say: [UNK], [END], 8 words).

    Its output biases are drawn far apart (normal, sd 1.5), so no two next-token log-probabilities tie
    and the searches and their references rank alike.
    """
    import keras

    from seq2seq_keras import Seq2Seq, TextProcessor

    source = TextProcessor.for_language("ko").adapt(TINY_SOURCE)
    target = TextProcessor.for_language("en", add_start_end=True).adapt(TWELVE_TOKEN_TARGET)
    assert target.vocabulary_size == 12
    keras.utils.set_random_seed(3)
    model = Seq2Seq(source, target, embedding_dim=8, encoder_units=6)
    bias = model.decoder.output_layer.bias
    bias.assign(np.random.default_rng(3).normal(0.0, 1.5, bias.shape).astype(np.float32))
    return model


@pytest.fixture(scope="session")
def twelve_tokens():
    return twelve_token_model()


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


def reference_beam(model, sentence, beam_width, alpha, max_length=100, beta=0.0):
    """Textbook beam search over whole prefixes (no back-pointers): a list of hypotheses, best first.

    Each hypothesis keeps its full token list and the attention row of every
    step, copied with the prefix, so there is nothing to follow backwards.
    Ranked by the GNMT score ``log_prob / lp + beta * sum_i log(min(sum_j rows_ji, 1))``
    (Wu et al. 2016, eq. 14; coverage floored at 1e-10), computed afresh from the rows.
    """
    ids = _source_ids(model, sentence)
    s = int(ids.shape[1])
    limit = _limit(s, max_length)
    enc_out, enc_states, mask = model.encoder(ids)
    state, memory = model.decoder.start(enc_out, enc_states, mask)
    penalty = lambda n: ((5.0 + n) / 6.0) ** alpha  # noqa: E731

    def score(c):
        coverage = np.sum(np.array(c["rows"], np.float64).reshape(-1, s), axis=0)
        cp = beta * float(np.sum(np.log(np.clip(coverage, 1e-10, 1.0)))) if beta else 0.0
        return c["log_prob"] / penalty(len(c["tokens"])) + cp

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
                candidates.append(
                    dict(
                        log_prob=b["log_prob"] + log_probs[token],
                        tokens=b["tokens"] + [token],
                        rows=b["rows"] + [row],
                        state=new_state,
                        done=token == END_ID or n >= limit,
                    )
                )
        candidates.sort(key=lambda c: -score(c))
        beams = candidates[:beam_width]
    beams.sort(key=lambda c: -score(c))
    for b in beams:
        b["score"] = score(b)
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


def forced_model(run_dir, token: str, boost: float = 50.0):
    """A fresh copy of the tiny model whose output layer always prefers ``token`` (a forced decoder)."""
    from seq2seq_keras.training import load_model

    model = load_model(run_dir)
    bias = model.decoder.output_layer.bias
    value = np.array(bias.numpy())
    value[model.target_text.vocabulary.index(token)] += boost
    bias.assign(value)
    return model


# ---------------------------------------------------------------------- every search
@pytest.mark.parametrize("method", ["greedy", "beam", "sample"])
def test_returned_tokens_log_prob_and_attention_agree_with_teacher_forcing(tiny_model, sentences, method):
    """Whatever the search, the attention and log-probability returned are those of the returned tokens."""
    from seq2seq_keras.decoding.pipeline import translate

    extra = dict(beam_width=3, n_best=3) if method == "beam" else dict(seed=5) if method == "sample" else {}
    for t in translate(tiny_model, sentences[:8], method=method, **extra):
        for hypothesis in [t, *t.alternatives]:
            log_prob, weights = teacher_forced(tiny_model, hypothesis)
            assert hypothesis.log_prob == pytest.approx(log_prob, abs=2e-4)
            np.testing.assert_allclose(hypothesis.attention, weights, atol=2e-5)
            np.testing.assert_allclose(hypothesis.attention.sum(-1), 1.0, atol=1e-5)
            assert hypothesis.target_tokens[:-1].count("[END]") == 0


# ---------------------------------------------------------------------- n-best lists
def test_n_best_lists_hold_only_real_hypotheses(tiny_model, twelve_tokens, sentences):
    """Never a placeholder beam (score -1e9, [PAD], [START]) among the alternatives: fewer where fewer exist."""
    from seq2seq_keras.decoding.pipeline import translate

    empty = tiny_model.translate("", method="beam", beam_width=4, n_best=4)
    assert (empty.text, empty.target_tokens, empty.log_prob, empty.score, empty.alternatives) == ("", [], 0.0, 0.0, [])
    # 12-token vocabulary, one token at most, width 12: the 10 one-token outputs the model may say, each once.
    best = translate(
        twelve_tokens, TINY_SOURCE[0], method="beam", beam_width=12, n_best=12, max_length=1, replace_unk=False
    )
    hypotheses = [best, *best.alternatives]
    allowed = [t for t in twelve_tokens.target_text.vocabulary if t not in ("", "[START]")]
    assert sorted(h.target_tokens[0] for h in hypotheses) == sorted(allowed) and len(allowed) == 10
    assert all(h.length == 1 and -50 < h.score <= 0 and -50 < h.log_prob <= 0 for h in hypotheses)
    assert [h.score for h in hypotheses] == sorted((h.score for h in hypotheses), reverse=True)
    # Real sentences mixed with empty ones, n_best = width: every sentence has all k, distinct and finite.
    batch = sentences[:6] + ["", "   "]
    for t in translate(tiny_model, batch, method="beam", beam_width=4, n_best=4):
        hypotheses = [t, *t.alternatives]
        assert len(hypotheses) == (4 if t.source.strip() else 1)
        assert len({tuple(h.target_tokens) for h in hypotheses}) == len(hypotheses)
        for h in hypotheses:
            assert np.isfinite(h.score) and -50 < h.log_prob <= 0
            assert "[START]" not in h.target_tokens and "" not in h.target_tokens


@pytest.fixture(scope="session", params=PRECISIONS)
def precision_model(request, tmp_path_factory):
    """The tiny word model trained under each of :data:`conftest.PRECISIONS` (its saved policy kept)."""
    from seq2seq_keras.training import load_model

    model = load_model(tiny_run_dir(tmp_path_factory, "word", request.param))
    assert model.dtype_policy.name == request.param
    return model


@pytest.mark.parametrize("method", ["greedy", "beam", "sample"])
def test_attention_rows_are_float32_and_sum_to_one_under_every_precision(precision_model, sentences, method):
    """Trained in float32 or mixed_bfloat16, every returned hypothesis' attention is float32 and each row sums
    to 1 within 1e-6 (bfloat16 weights summed to 0.998-1.002)."""
    from seq2seq_keras.decoding.pipeline import translate

    extra = dict(beam_width=3, n_best=3) if method == "beam" else dict(seed=5) if method == "sample" else {}
    for t in translate(precision_model, sentences[:8] + ["나는"], method=method, **extra):
        hypotheses = [t, *t.alternatives]
        for hypothesis in hypotheses:
            assert hypothesis.attention.dtype == np.float32 and hypothesis.attention.shape[0] == hypothesis.length
            np.testing.assert_allclose(hypothesis.attention.sum(-1), 1.0, atol=1e-6)
        if method == "beam":  # n-best lists hold only real hypotheses: distinct, finite, never [PAD]/[START]
            assert len({tuple(h.target_tokens) for h in hypotheses}) == len(hypotheses) == 3
            assert all(
                np.isfinite(h.score)
                and -50 < h.log_prob <= 0
                and "[START]" not in h.target_tokens
                and "" not in h.target_tokens
                for h in hypotheses
            )


# ---------------------------------------------------------------------- limits and bad input
def test_output_and_source_limits(tiny_model, sentences):
    from seq2seq_keras.decoding.pipeline import translate

    for t in translate(tiny_model, sentences, max_length=3):
        assert 1 <= t.length <= 3
    long = " ".join(["나는 학생이다"] * 30)
    t = translate(tiny_model, long, max_source_length=7, method="beam")
    assert t.source_tokens == ["나는", "학생이다"] * 3 + ["나는"]
    assert t.attention.shape == (t.length, 7)
    assert t.length <= 2 * 7 + 10


def test_bad_input_through_the_python_api(tiny_model):
    from seq2seq_keras.decoding.options import DEFAULT_MAX_LENGTH, DEFAULT_MAX_SOURCE_LENGTH
    from seq2seq_keras.decoding.pipeline import translate

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
    from seq2seq_keras.decoding.pipeline import translate

    with pytest.raises(error, match=match):
        translate(tiny_model, ["나는 학생이다"], **kwargs)


def test_non_strings_are_rejected_clearly(tiny_model):
    from seq2seq_keras.decoding.pipeline import translate

    with pytest.raises(TypeError, match="str or bytes"):
        translate(tiny_model, ["ok", None])
    with pytest.raises(TypeError, match="sentence"):
        translate(tiny_model, 42)


def test_seq2seq_translate_forwards_the_decoding_options(tiny_model, sentences):
    from seq2seq_keras.decoding.pipeline import translate

    a = tiny_model.translate(sentences[:4], method="beam", beam_width=3, n_best=2, length_penalty=0.0)
    b = translate(tiny_model, sentences[:4], method="beam", beam_width=3, n_best=2, length_penalty=0.0)
    assert [(t.text, [x.text for x in t.alternatives]) for t in a] == [
        (t.text, [x.text for x in t.alternatives]) for t in b
    ]
    single = tiny_model.translate(sentences[0], method="sample", seed=4)
    assert single.source == sentences[0] and isinstance(single.text, str)


def test_options_are_one_object_and_an_unknown_keyword_names_the_valid_ones(tiny_model, sentences):
    """DecodingOptions, or its fields as keywords, give the same translations; a progress bar changes
    nothing; a keyword that is no option fails in one line naming every option."""
    from seq2seq_keras.decoding.options import DecodingOptions
    from seq2seq_keras.decoding.pipeline import translate

    options = DecodingOptions(method="beam", beam_width=3, n_best=2, batch_size=2)
    by_object = translate(tiny_model, sentences[:5], options)
    by_keywords = tiny_model.translate(sentences[:5], method="beam", beam_width=3, n_best=2, batch_size=2)
    with_progress = translate(tiny_model, sentences[:5], options, progress="beam")
    for a, b, c in zip(by_object, by_keywords, with_progress):
        assert (a.text, a.score, [x.text for x in a.alternatives]) == (
            b.text,
            b.score,
            [x.text for x in b.alternatives],
        )
        assert (a.text, a.score, [x.text for x in a.alternatives]) == (
            c.text,
            c.score,
            [x.text for x in c.alternatives],
        )
    with pytest.raises(TypeError, match="beam_widht.*choose among method, beam_width") as e:
        translate(tiny_model, sentences[:1], beam_widht=3)
    assert "\n" not in str(e.value)


def test_cli_translate_survives_bad_input(tiny_run):
    """Arguments with invalid UTF-8, control characters, emoji, nothing and a 2,000-word sentence."""
    args = [
        b"",
        b"   ",
        b"\x01\x02",
        b"\xff\xfe abc",
        "😀 ሰላம".encode(),
        ("학생 " * 2000).encode(),
        "나는 학생이다".encode(),
    ]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    proc = subprocess.run(
        [
            os.fsencode(sys.executable),
            b"-m",
            b"seq2seq_keras.cli.commands",
            b"translate",
            b"--model",
            os.fsencode(tiny_run),
            *args,
        ],
        capture_output=True,
        timeout=300,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")[-2000:]
    out = proc.stdout.decode("utf-8")
    assert out.count(" -> ") == len(args)
    assert "\ufffd\ufffd abc -> " in out


@pytest.mark.parametrize(
    "kwargs,error,match",
    [
        (dict(block_ngram_repeat=-1), ValueError, "block_ngram_repeat"),
        (dict(replace_unk="yes"), TypeError, "replace_unk"),
        (dict(unk_dictionary={"a": 1}), TypeError, "unk_dictionary"),
    ],
)
def test_invalid_real_world_options_say_what_is_wrong(tiny_model, kwargs, error, match):
    from seq2seq_keras.decoding.pipeline import translate

    with pytest.raises(error, match=match):
        translate(tiny_model, ["나는 학생이다"], **kwargs)


@pytest.mark.parametrize("method", ["greedy", "beam"])
def test_translations_say_which_source_words_the_model_read_as_unknown(tiny_model, sentences, method):
    """unknown_source marks exactly the source tokens missing from the source vocabulary (checked by membership
    in the vocabulary list, not through the lookup table), cut like source_tokens; alternatives share it."""
    from seq2seq_keras.decoding.pipeline import translate

    vocabulary = set(tiny_model.source_text.vocabulary)
    known = sentences[0]
    extra = dict(beam_width=3, n_best=2) if method == "beam" else {}
    results = translate(tiny_model, [known, "오늘 날씨가 정말 좋네요.", "", "I am a student."], method=method, **extra)
    n = int(tiny_model.source_text.tokenize([known]).row_lengths()[0])  # the known sentence's tokens
    results += translate(tiny_model, [f"{known} 날씨가 좋네요"], method=method, max_source_length=n + 1, **extra)
    for t in results:
        expected = [token not in vocabulary for token in t.source_tokens]
        assert t.unknown_source == expected
        assert t.unknown_source_words == tuple(w for w, u in zip(t.source_tokens, expected) if u)
        for alternative in t.alternatives:
            assert alternative.unknown_source == expected
    first, weather, empty, english, cut = results
    assert first.unknown_source_count == 0 and first.unknown_words_note() is None
    assert {"날씨가", "좋네요"} <= set(weather.unknown_source_words)  # never in the built-in corpus
    assert weather.mostly_unknown and "the translation is a guess" in weather.unknown_words_note()
    assert cut.unknown_source_words == ("날씨가",)  # "좋네요" was cut by max_source_length, as the model's input
    assert empty.unknown_source == [] and english.mostly_unknown


def test_translating_with_model_after_model_logs_no_retracing_warning(tiny_processors, tensorflow_warnings):
    """Each model traces its translate function once; TensorFlow counts traces per Python function, so the
    function is a partial per model: a notebook translating with six models gets no "retracing" warning."""
    from seq2seq_keras import Seq2Seq

    src, tgt = tiny_processors
    models = [Seq2Seq(src, tgt, embedding_dim=4, encoder_units=4) for _ in range(6)]
    for model in models:
        model.translate([TINY_SOURCE[0]], max_length=3)
        model.translate(TINY_SOURCE[:3], max_length=5)  # other batch and length: the same trace
    assert all(m._seq2seq_translate_fns["greedy"].experimental_get_tracing_count() == 1 for m in models)
    assert not [m for m in tensorflow_warnings if "retracing" in m], tensorflow_warnings
