"""alignment.py: gold links, AER by hand and against its exact expectation, teacher-forced attention
checked step by step against the decoder."""

import itertools

import numpy as np
import pytest
from test_scores import tiny_model  # noqa: F401  (fixture)

from seq2seq_keras.data.builtin_ko_en import alignment_matrix, generate_pairs
from seq2seq_keras.evaluation import alignment as al
from seq2seq_keras.words import word_tokens


# ---------------------------------------------------------------------- alignment
def _gold_pairs(n=40):
    pairs = generate_pairs(n=n, seed=3)
    return pairs, [alignment_matrix(p) for p in pairs]


def test_gold_matrix_matches_the_generator():
    pairs, golds = _gold_pairs()
    for p, g in zip(pairs, golds):
        np.testing.assert_array_equal(al.gold_matrix(p.alignment, len(p.target_tokens), len(p.source_tokens)), g)
    with pytest.raises(ValueError, match="outside"):
        al.gold_matrix([(3, 0)], 2, 2)


def test_aer_of_gold_is_zero_and_of_reversed_alignment_is_high():
    _, golds = _gold_pairs()
    # Every output word of the built-in corpus has a gold link: attention spread over them has mass 1.
    on_gold = [g / g.sum(axis=1, keepdims=True) for g in golds]
    perfect = al.alignment_score(golds, [g.astype(float) for g in golds], soft=on_gold)
    assert perfect.aer == 0.0 and perfect.precision == perfect.recall == perfect.f1 == 1.0
    assert perfect.gold_mass == pytest.approx(1.0)
    reversed_ = al.alignment_score(golds, [g[:, ::-1].astype(float) for g in golds])
    # Reversing the source order keeps only links that sit on the middle column by chance.
    assert reversed_.aer > 0.7
    assert reversed_.aer == pytest.approx(1 - 2 * reversed_.correct / (reversed_.predicted + reversed_.gold))


def test_aer_hand_computed():
    gold = np.zeros((3, 3), bool)
    gold[0, 0] = gold[1, 1] = gold[1, 2] = True  # |G| = 3
    links = np.zeros((3, 3))
    links[0, 0] = links[2, 1] = 1.0  # |A| = 2, |A & G| = 1
    s = al.alignment_score([gold], [links])
    assert (s.predicted, s.gold, s.correct) == (2, 3, 1)
    assert s.precision == 0.5 and s.recall == pytest.approx(1 / 3)
    assert s.aer == pytest.approx(1 - 2 / 5)


def test_uniform_control_is_the_exact_expectation_of_a_random_argmax():
    rng = np.random.default_rng(0)
    golds = [rng.random((2, 3)) < 0.4 for _ in range(2)]
    expected = al.alignment_score(golds, [al.uniform_links(*g.shape) for g in golds])
    # Enumerate every way of picking one source word per output word (3^4 choices), average the AER.
    aers = []
    for choice in itertools.product(range(3), repeat=4):
        links = [np.eye(3)[list(choice[:2])], np.eye(3)[list(choice[2:])]]
        aers.append(al.alignment_score(golds, links).aer)
    assert expected.aer == pytest.approx(np.mean(aers))


def test_argmax_and_diagonal_links():
    attention = np.array([[0.1, 0.7, 0.2], [0.5, 0.5, 0.0]])
    np.testing.assert_array_equal(al.argmax_links(attention), [[0, 1, 0], [1, 0, 0]])
    np.testing.assert_array_equal(al.diagonal_links(3, 3), np.eye(3))
    np.testing.assert_array_equal(al.diagonal_links(2, 4).argmax(axis=1), [1, 3])
    assert al.diagonal_links(0, 3).shape == (0, 3)


def test_word_pieces_are_merged_to_words():
    attention = np.array([[0.1, 0.2, 0.7], [0.3, 0.3, 0.4], [0.5, 0.5, 0.0]])
    words = al._to_words(attention, ["학생", "##이다", "."], ["stud", "##ent", "."])
    # Source: sum the pieces of a word; target: average the pieces of a word.
    np.testing.assert_allclose(words, [[(0.3 + 0.6) / 2, (0.7 + 0.4) / 2], [1.0, 0.0]])
    np.testing.assert_allclose(words.sum(axis=1), 1.0)


# ---------------------------------------------------------------------- with a (tiny, untrained) model
@pytest.fixture(scope="module")
def sharp_model(tiny_model):
    """The tiny model with random weights of scale 1: an initialised model's attention is nearly
    the same at every step, so a row taken from the wrong step would go unnoticed."""
    from seq2seq_keras import Seq2Seq

    tiny, pairs = tiny_model
    model = Seq2Seq(tiny.source_text, tiny.target_text, embedding_dim=8, encoder_units=8)
    rng = np.random.default_rng(0)
    model.set_weights([rng.normal(size=w.shape).astype("float32") for w in model.get_weights()])
    return model, pairs


def test_forced_attention_has_one_row_per_gold_word_and_rows_sum_to_one(sharp_model):
    model, pairs = sharp_model
    attention = al.forced_attention(model, pairs.source[:10], pairs.target[:10], batch_size=4)
    for a, s, t in zip(attention, pairs.source[:10], pairs.target[:10]):
        assert a.shape == (len(word_tokens(t)), len(word_tokens(s)))  # the [END] row is not there
        np.testing.assert_allclose(a.sum(axis=1), 1.0, atol=1e-5)
    # Row i is the attention while predicting gold word i: compare one sentence step by step.
    import tensorflow as tf

    src_ids, tgt_ids = model.source_text(pairs.source[:1]), model.target_text(pairs.target[:1])
    enc_out, enc_states, mask = model.encoder(src_ids)
    state, memory = model.decoder.start(enc_out, enc_states, mask)
    rows = []
    for i in range(attention[0].shape[0]):
        _, state, w = model.decoder.step(tgt_ids[:, i], state, memory)
        rows.append(np.asarray(w)[0])
    np.testing.assert_allclose(np.stack(rows), attention[0], atol=1e-5)
    assert tf.reduce_all(tgt_ids[0, attention[0].shape[0] + 1] == 3)  # the next gold token is [END]


def test_alignment_quality_reports_model_and_controls(sharp_model):
    """The model's AER, precision, recall and gold mass and both controls', counted in numpy from
    step-by-step decoder attention (the built-in corpus has one token per word)."""
    model, pairs = sharp_model
    quality = al.alignment_quality(model, pairs[:30], batch_size=16)
    assert quality["sentences"] == 30 and quality["skipped"] == 0
    assert set(quality) >= {"attention", "uniform", "diagonal", "definition", "examples"}
    golds = [alignment_matrix(p) for p in generate_pairs(n=200, seed=1)[:30]]
    src_ids, tgt_ids = model.source_text(pairs.source[:30]), model.target_text(pairs.target[:30])
    enc_out, enc_states, mask = model.encoder(src_ids)
    state, memory = model.decoder.start(enc_out, enc_states, mask)
    steps = []  # row i: the attention while feeding gold token i ([START] first), i.e. predicting word i
    for i in range(max(g.shape[0] for g in golds)):
        _, state, weights = model.decoder.step(tgt_ids[:, i], state, memory)
        steps.append(np.asarray(weights))
    attention = np.stack(steps, 1)
    rows = sum(g.shape[0] for g in golds)
    gold_links = sum(int(g.sum()) for g in golds)
    counts = {"attention": 0.0, "uniform": 0.0, "diagonal": 0.0}
    mass = 0.0
    for b, g in enumerate(golds):
        t, s = g.shape
        assert np.count_nonzero(src_ids[b]) == s and np.count_nonzero(tgt_ids[b]) == t + 2  # [START], [END]
        a = attention[b, :t, :s]
        counts["attention"] += g[np.arange(t), a.argmax(1)].sum()
        counts["uniform"] += g.sum() / s  # the expected hits of a uniformly random source word per row
        counts["diagonal"] += g[np.arange(t), np.minimum(((np.arange(t) + 0.5) * s / t).astype(int), s - 1)].sum()
        mass += (a * g).sum()
    for name, correct in counts.items():
        got = quality[name]
        assert (got["predicted"], got["gold"]) == (rows, gold_links), name  # one link per target word
        assert got["correct"] == pytest.approx(correct), name
        assert got["precision"] == pytest.approx(correct / rows), name
        assert got["recall"] == pytest.approx(correct / gold_links), name
        assert got["aer"] == pytest.approx(1 - 2 * correct / (rows + gold_links), abs=1e-12), name
    assert quality["attention"]["gold_mass"] == pytest.approx(mass / rows, rel=1e-5)
    assert quality["attention"]["aer"] != pytest.approx(quality["uniform"]["aer"])
    with pytest.raises(ValueError, match="no gold alignments"):
        al.alignment_quality(model, type("P", (), {"alignments": None, "name": "spa-eng"})())


def test_example_indices_spread_from_short_to_long_and_skip_very_long():
    lengths = [30, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0]
    picked = al.example_indices(lengths, 3, max_length=14)
    # Quantiles 0.2, 0.6, 1.0 of the 9 candidates (lengths 1..9): positions 1.6, 4.8, 8 -> 2, 5, 8.
    assert [lengths[i] for i in picked] == [3, 6, 9]
    assert al.example_indices([3, 0, 2], 4) == [2, 0]
    assert al.example_indices([20, 30], 1) == [0]  # only long ones: still something to show


def test_forced_attention_traces_once_per_model_whatever_the_batches(tiny_model, tensorflow_warnings):
    """Batches of every size and length, a Transformer's layers one by one, and several fresh models one
    batch each (as a notebook evaluates model after model): one trace per model and kind, and no
    "triggered tf.function retracing" warning (the three notebook 01 showed)."""
    from seq2seq_keras import Seq2Seq

    model, pairs = tiny_model
    for size, start in [(3, 0), (5, 10), (16, 40), (7, 100), (1, 150), (30, 160)]:
        sources, targets = pairs.source[start : start + size], pairs.target[start : start + size]
        got = al.forced_attention(model, sources, targets, batch_size=4 if size > 5 else 64)
        assert len(got) == size
    assert model._seq2seq_forced_attention_fn.experimental_get_tracing_count() == 1

    transformer = Seq2Seq(
        model.source_text, model.target_text, architecture="transformer", num_layers=3, num_heads=2, model_dim=8
    )
    by_layer = [al.forced_attention(transformer, pairs.source[:9], pairs.target[:9], layer=i) for i in range(3)]
    by_layer.append(al.forced_attention(transformer, pairs.source[:20], pairs.target[:20], batch_size=8, layer=2))
    assert transformer._seq2seq_forced_attention_layers_fn.experimental_get_tracing_count() == 1
    # The last layer's mean over heads is the model's one heatmap.
    heatmap = al.forced_attention(transformer, pairs.source[:9], pairs.target[:9])
    for a, b in zip(by_layer[2], heatmap):
        np.testing.assert_allclose(a, b, atol=1e-6)
    assert not np.allclose(by_layer[0][0], by_layer[2][0])  # a layer is picked, not the same one each time

    for seed in range(6):
        fresh = Seq2Seq(model.source_text, model.target_text, embedding_dim=8, encoder_units=8)
        al.forced_attention(fresh, pairs.source[seed : seed + 2], pairs.target[seed : seed + 2])
    assert not [m for m in tensorflow_warnings if "retracing" in m], tensorflow_warnings
