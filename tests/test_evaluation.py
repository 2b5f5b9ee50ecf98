"""evaluation.py: BLEU/chrF against sacrebleu, length buckets, alignment error rate, a whole report."""

import itertools
import json

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest
import sacrebleu

from seq2seq_keras import evaluation as ev
from seq2seq_keras.builtin_ko_en import alignment_matrix, generate_pairs, word_tokens

HYPS = ["the cat sat on the mat .", "a dog barks", "i am a student ."]
REFS = ["the cat sat on the mat .", "the dog barks loudly", "i am a student ."]


# ---------------------------------------------------------------------- BLEU / chrF
def test_perfect_hypothesis_scores_100_and_matches_sacrebleu():
    scores = ev.corpus_scores(REFS, REFS)
    assert scores["bleu"] == pytest.approx(100.0)
    assert scores["bleu"] == sacrebleu.corpus_bleu(REFS, [REFS]).score
    assert scores["chrf"] == pytest.approx(100.0)
    assert scores["bleu_signature"].startswith("nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:")


def test_imperfect_scores_equal_sacrebleu_called_directly():
    scores = ev.corpus_scores(HYPS, REFS)
    assert 0 < scores["bleu"] < 100
    assert scores["bleu"] == sacrebleu.corpus_bleu(HYPS, [REFS]).score
    assert scores["chrf"] == sacrebleu.corpus_chrf(HYPS, [REFS]).score
    assert ev.corpus_bleu(HYPS, REFS) == scores["bleu"]


def test_empty_corpus_and_mismatched_lengths():
    empty = ev.corpus_scores([], [])
    assert empty["bleu"] is None and empty["chrf"] is None and empty["sentences"] == 0
    with pytest.raises(ValueError, match="pair up"):
        ev.corpus_scores(HYPS, REFS[:2])


def test_normalize_references_gives_what_a_perfect_model_prints():
    from seq2seq_keras import TextProcessor

    refs = ["I am a Student.", "¿Where is the café?", "He said (quietly) no!"]
    target = TextProcessor.for_language("en", add_start_end=True).adapt(refs)
    normalized = ev.normalize_references(target, refs)
    # Independent reference: encode each reference and detokenize the ids (all words are in the vocabulary).
    from seq2seq_keras.text import to_python_strings

    assert normalized == to_python_strings(target.detokenize(target(refs)))
    assert normalized[0] == "i am a student."
    assert "cafe" in normalized[1]  # accents stripped, as the English vocabulary does


# ---------------------------------------------------------------------- length buckets
def test_length_buckets_put_sentences_in_the_right_bucket_and_keep_empty_ones():
    lengths = [1, 5, 6, 10, 11, 60, 3, 0, 31]
    buckets = ev.length_buckets(lengths, edges=(5, 10, 20, 30))
    assert [b.label for b in buckets] == ["1-5", "6-10", "11-20", "21-30", ">30"]
    assert [b.indices for b in buckets] == [(0, 1, 6, 7), (2, 3), (4,), (), (5, 8)]
    assert sum(len(b) for b in buckets) == len(lengths)
    for b in buckets:  # independent check of the boundaries: low < n <= high
        assert all(b.low < lengths[i] or (b.low == 0 and lengths[i] == 0) for i in b.indices)
        assert all(b.high is None or lengths[i] <= b.high for i in b.indices)
    assert [len(b) for b in ev.length_buckets([], edges=(5,))] == [0, 0]


@pytest.mark.parametrize("edges", [(), (5, 5), (10, 5), (0, 5), (-1,)])
def test_bad_bucket_edges_are_rejected(edges):
    with pytest.raises(ValueError, match="increasing positive"):
        ev.length_buckets([1, 2], edges)


def test_bleu_by_length_scores_each_bucket_like_sacrebleu_and_handles_empty_buckets():
    lengths = [3, 12, 4]
    rows = ev.bleu_by_length(HYPS, REFS, lengths, edges=(5, 10))
    assert [r["label"] for r in rows] == ["1-5", "6-10", ">10"]
    assert [r["count"] for r in rows] == [2, 0, 1]
    short = [0, 2]
    assert rows[0]["bleu"] == sacrebleu.corpus_bleu([HYPS[i] for i in short], [[REFS[i] for i in short]]).score
    assert rows[0]["mean_length"] == 3.5
    assert rows[1]["bleu"] is None and rows[1]["chrf"] is None and rows[1]["mean_length"] is None
    assert rows[2]["bleu"] == sacrebleu.corpus_bleu([HYPS[1]], [[REFS[1]]]).score
    trimmed = ev.trim_empty_tail({"m": ev.bleu_by_length(HYPS, REFS, lengths, edges=(5, 20, 30, 40))})
    assert [r["label"] for r in trimmed["m"]] == ["1-5", "6-20"]


def test_source_word_counts_split_punctuation():
    assert ev.source_word_counts(["나는 학생이다.", "Hola, ¿qué tal?", ""]) == [3, 6, 0]


# ---------------------------------------------------------------------- alignment
def _gold_pairs(n=40):
    pairs = generate_pairs(n=n, seed=3)
    return pairs, [alignment_matrix(p) for p in pairs]


def test_gold_matrix_matches_the_generator():
    pairs, golds = _gold_pairs()
    for p, g in zip(pairs, golds):
        np.testing.assert_array_equal(ev.gold_matrix(p.alignment, len(p.target_tokens), len(p.source_tokens)), g)
    with pytest.raises(ValueError, match="outside"):
        ev.gold_matrix([(3, 0)], 2, 2)


def test_aer_of_gold_is_zero_and_of_reversed_alignment_is_high():
    _, golds = _gold_pairs()
    # Every output word of the built-in corpus has a gold link: attention spread over them has mass 1.
    on_gold = [g / g.sum(axis=1, keepdims=True) for g in golds]
    perfect = ev.alignment_score(golds, [g.astype(float) for g in golds], soft=on_gold)
    assert perfect.aer == 0.0 and perfect.precision == perfect.recall == perfect.f1 == 1.0
    assert perfect.gold_mass == pytest.approx(1.0)
    reversed_ = ev.alignment_score(golds, [g[:, ::-1].astype(float) for g in golds])
    # Reversing the source order keeps only links that sit on the middle column by chance.
    assert reversed_.aer > 0.7
    assert reversed_.aer == pytest.approx(1 - 2 * reversed_.correct / (reversed_.predicted + reversed_.gold))


def test_aer_hand_computed():
    gold = np.zeros((3, 3), bool)
    gold[0, 0] = gold[1, 1] = gold[1, 2] = True  # |G| = 3
    links = np.zeros((3, 3))
    links[0, 0] = links[2, 1] = 1.0  # |A| = 2, |A & G| = 1
    s = ev.alignment_score([gold], [links])
    assert (s.predicted, s.gold, s.correct) == (2, 3, 1)
    assert s.precision == 0.5 and s.recall == pytest.approx(1 / 3)
    assert s.aer == pytest.approx(1 - 2 / 5)


def test_uniform_control_is_the_exact_expectation_of_a_random_argmax():
    rng = np.random.default_rng(0)
    golds = [rng.random((2, 3)) < 0.4 for _ in range(2)]
    expected = ev.alignment_score(golds, [ev.uniform_links(*g.shape) for g in golds])
    # Enumerate every way of picking one source word per output word (3^4 choices), average the AER.
    aers = []
    for choice in itertools.product(range(3), repeat=4):
        links = [np.eye(3)[list(choice[:2])], np.eye(3)[list(choice[2:])]]
        aers.append(ev.alignment_score(golds, links).aer)
    assert expected.aer == pytest.approx(np.mean(aers))


def test_argmax_and_diagonal_links():
    attention = np.array([[0.1, 0.7, 0.2], [0.5, 0.5, 0.0]])
    np.testing.assert_array_equal(ev.argmax_links(attention), [[0, 1, 0], [1, 0, 0]])
    np.testing.assert_array_equal(ev.diagonal_links(3, 3), np.eye(3))
    np.testing.assert_array_equal(ev.diagonal_links(2, 4).argmax(axis=1), [1, 3])
    assert ev.diagonal_links(0, 3).shape == (0, 3)


def test_word_pieces_are_merged_to_words():
    attention = np.array([[0.1, 0.2, 0.7], [0.3, 0.3, 0.4], [0.5, 0.5, 0.0]])
    words = ev._to_words(attention, ["학생", "##이다", "."], ["stud", "##ent", "."])
    # Source: sum the pieces of a word; target: average the pieces of a word.
    np.testing.assert_allclose(words, [[(0.3 + 0.6) / 2, (0.7 + 0.4) / 2], [1.0, 0.0]])
    np.testing.assert_allclose(words.sum(axis=1), 1.0)


# ---------------------------------------------------------------------- with a (tiny, untrained) model
@pytest.fixture(scope="module")
def tiny_model():
    import keras

    from seq2seq_keras import Seq2Seq, TextProcessor
    from seq2seq_keras.data import load_corpus

    pairs = load_corpus("builtin-ko-en", limit=200, seed=1)
    src = TextProcessor.for_language("ko").adapt(pairs.source)
    tgt = TextProcessor.for_language("en", add_start_end=True).adapt(pairs.target)
    keras.utils.set_random_seed(0)
    return Seq2Seq(src, tgt, embedding_dim=8, units=8), pairs


@pytest.fixture(scope="module")
def sharp_model(tiny_model):
    """The tiny model with random weights of scale 1: an initialised model's attention is nearly
    the same at every step, so a row taken from the wrong step would go unnoticed."""
    from seq2seq_keras import Seq2Seq

    tiny, pairs = tiny_model
    model = Seq2Seq(tiny.source_text, tiny.target_text, embedding_dim=8, units=8)
    rng = np.random.default_rng(0)
    model.set_weights([rng.normal(size=w.shape).astype("float32") for w in model.get_weights()])
    return model, pairs


def test_forced_attention_has_one_row_per_gold_word_and_rows_sum_to_one(sharp_model):
    model, pairs = sharp_model
    attention = ev.forced_attention(model, pairs.source[:10], pairs.target[:10], batch_size=4)
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
    quality = ev.alignment_quality(model, pairs[:30], batch_size=16)
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
        ev.alignment_quality(model, type("P", (), {"alignments": None, "name": "spa-eng"})())


def test_evaluate_and_write_report(tiny_model, tmp_path):
    from seq2seq_keras import Seq2Seq

    model, pairs = tiny_model
    baseline = Seq2Seq(model.source_text, model.target_text, embedding_dim=8, units=8, attention=None)
    test = pairs[:12]
    result = ev.evaluate(model, test, compare=baseline, beam_width=2, edges=(5, 10), batch_size=8,
                         progress=False, max_length=8)
    report = result.report
    refs = ev.normalize_references(model.target_text, test.target)
    greedy = [t.text for t in result.translations["greedy"]]
    assert report["scores"]["greedy"]["bleu"] == sacrebleu.corpus_bleu(greedy, [refs]).score
    assert report["scores"]["beam"]["beam_width"] == 2 and "bleu" in report["scores"]["beam"]
    models = report["length_buckets"]["models"]
    assert list(models) == ["attention (bahdanau)", "no attention"]
    assert sum(r["count"] for r in models["no attention"]) == 12
    assert report["alignment"]["sentences"] == 12
    paths = ev.write_report(result, tmp_path / "report")
    for name in ("report.md", "report.json", "bleu_by_length", "attention_examples", "alignment_examples"):
        assert paths[name].stat().st_size > 0
    loaded = json.loads(paths["report.json"].read_text(encoding="utf-8"))
    assert loaded["scores"]["greedy"]["bleu_signature"] == report["scores"]["greedy"]["bleu_signature"]
    md = paths["report.md"].read_text(encoding="utf-8")
    assert "nrefs:1|case:mixed" in md and "| 1-5 |" in md and "uniform control" in md


def test_cli_evaluate_writes_the_report(tiny_model, tmp_path, capsys):
    from seq2seq_keras import Seq2Seq
    from seq2seq_keras.cli import main
    from seq2seq_keras.training import TrainConfig, save_run

    model, _ = tiny_model
    baseline = Seq2Seq(model.source_text, model.target_text, embedding_dim=8, units=8, attention=None)
    for m, name, attention in ((model, "att", "bahdanau"), (baseline, "none", None)):
        save_run(m, TrainConfig(limit=200, seed=1, embedding_dim=8, units=8, epochs=0, attention=attention),
                 {"loss": [5.0], "val_accuracy": [0.1]}, tmp_path / name)
    out = tmp_path / "report"
    code = main(["evaluate", "--model", str(tmp_path / "att"), "--compare", str(tmp_path / "none"),
                 "--limit", "600", "--max-sentences", "8", "--beam-width", "2", "--max-length", "6",
                 "--no-progress", "--out", str(out)])
    assert code == 0
    printed = capsys.readouterr().out
    assert "greedy: BLEU" in printed and "alignment AER: attention" in printed and str(out / "report.md") in printed
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert report["data"]["sentences"] == 8 and report["data"]["split"] == "test"
    assert report["training"]["config"]["attention"] == "bahdanau" and report["compare_training"]["epochs"] == 1
    assert sorted(p.name for p in out.glob("*.png")) == ["alignment_examples.png", "attention_examples.png",
                                                         "bleu_by_length.png"]
    assert "Training budget (compared model)" in (out / "report.md").read_text(encoding="utf-8")


def test_cli_evaluate_errors_say_what_to_do(tmp_path, capsys):
    from seq2seq_keras.cli import main

    assert main(["evaluate", "--model", str(tmp_path / "nothing"), "--out", str(tmp_path / "r")]) == 2
    assert "No trained model" in capsys.readouterr().err
    assert main(["evaluate", "--model", str(tmp_path), "--buckets", "5,x", "--out", str(tmp_path / "r")]) == 2
    assert "--buckets" in capsys.readouterr().err


def test_example_indices_spread_from_short_to_long_and_skip_very_long():
    lengths = [30, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0]
    picked = ev.example_indices(lengths, 3, max_length=14)
    # Quantiles 0.2, 0.6, 1.0 of the 9 candidates (lengths 1..9): positions 1.6, 4.8, 8 -> 2, 5, 8.
    assert [lengths[i] for i in picked] == [3, 6, 9]
    assert ev.example_indices([3, 0, 2], 4) == [2, 0]
    assert ev.example_indices([20, 30], 1) == [0]  # only long ones: still something to show
