"""evaluation.py: BLEU/chrF against sacrebleu, length buckets, a whole report, the evaluate command."""

import json

import matplotlib

matplotlib.use("Agg")

import pytest
import sacrebleu

from seq2seq_keras.evaluation import scores as ev
from seq2seq_keras.evaluation.report import write_report
from seq2seq_keras.runs import load_run_split

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
    from seq2seq_keras.translation import to_python_strings

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
    return Seq2Seq(src, tgt, embedding_dim=8, encoder_units=8), pairs


def test_evaluate_and_write_report(tiny_model, tmp_path):
    from seq2seq_keras import Seq2Seq

    model, pairs = tiny_model
    baseline = Seq2Seq(model.source_text, model.target_text, embedding_dim=8, encoder_units=8, attention=None)
    test = pairs[:12]
    result = ev.evaluate(
        model, test, compare=baseline, beam_width=2, edges=(5, 10), batch_size=8, progress=False, max_length=8
    )
    report = result.report
    refs = ev.normalize_references(model.target_text, test.target)
    greedy = [t.text for t in result.translations["greedy"]]
    assert report["scores"]["greedy"]["bleu"] == sacrebleu.corpus_bleu(greedy, [refs]).score
    assert report["scores"]["beam"]["beam_width"] == 2 and "bleu" in report["scores"]["beam"]
    models = report["length_buckets"]["models"]
    assert list(models) == ["attention (bahdanau)", "no attention"]
    assert sum(r["count"] for r in models["no attention"]) == 12
    assert report["alignment"]["sentences"] == 12
    paths = write_report(result, tmp_path / "report")
    for name in ("report.md", "report.json", "bleu_by_length", "attention_examples", "alignment_examples"):
        assert paths[name].stat().st_size > 0
    loaded = json.loads(paths["report.json"].read_text(encoding="utf-8"))
    assert loaded["scores"]["greedy"]["bleu_signature"] == report["scores"]["greedy"]["bleu_signature"]
    md = paths["report.md"].read_text(encoding="utf-8")
    assert "nrefs:1|case:mixed" in md and "| 1-5 |" in md and "uniform control" in md


def test_cli_evaluate_writes_the_report(tiny_model, tmp_path, capsys):
    from seq2seq_keras import Seq2Seq
    from seq2seq_keras.cli import main
    from seq2seq_keras.training.config import TrainConfig
    from seq2seq_keras.training.run_folder import save_run

    model, _ = tiny_model
    baseline = Seq2Seq(model.source_text, model.target_text, embedding_dim=8, encoder_units=8, attention=None)
    for m, name, attention in ((model, "att", "bahdanau"), (baseline, "none", None)):
        save_run(
            m,
            TrainConfig(limit=200, seed=1, embedding_dim=8, encoder_units=8, epochs=0, attention=attention),
            {"loss": [5.0], "val_accuracy": [0.1]},
            tmp_path / name,
        )
    out = tmp_path / "report"
    code = main(
        [
            "evaluate",
            "--model",
            str(tmp_path / "att"),
            "--compare",
            str(tmp_path / "none"),
            "--limit",
            "600",
            "--max-sentences",
            "8",
            "--beam-width",
            "2",
            "--max-length",
            "6",
            "--no-progress",
            "--out",
            str(out),
        ]
    )
    assert code == 0
    printed = capsys.readouterr().out
    assert "greedy: BLEU" in printed and "alignment AER: attention" in printed and str(out / "report.md") in printed
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert report["data"]["sentences"] == 8 and report["data"]["split"] == "test"
    assert report["training"]["config"]["attention"] == "bahdanau" and report["compare_training"]["epochs"] == 1
    assert sorted(p.name for p in out.glob("*.png")) == [
        "alignment_examples.png",
        "attention_examples.png",
        "bleu_by_length.png",
    ]
    assert "Training budget (compared model)" in (out / "report.md").read_text(encoding="utf-8")


def test_cli_evaluate_errors_say_what_to_do(tmp_path, capsys):
    from seq2seq_keras.cli import main

    assert main(["evaluate", "--model", str(tmp_path / "nothing"), "--out", str(tmp_path / "r")]) == 2
    assert "No trained model" in capsys.readouterr().err
    assert main(["evaluate", "--model", str(tmp_path), "--buckets", "5,x", "--out", str(tmp_path / "r")]) == 2
    assert "--buckets" in capsys.readouterr().err


def test_load_run_split_reads_the_runs_corpus_settings(tiny_model, tmp_path):
    """The run's own corpus, limit, seed and direction by default; 'all', another split and bad input on request."""
    from seq2seq_keras.data import load_corpus, split_pairs
    from seq2seq_keras.training.config import TrainConfig
    from seq2seq_keras.training.run_folder import save_run

    model, _ = tiny_model
    save_run(
        model,
        TrainConfig(limit=200, seed=1, embedding_dim=8, encoder_units=8, epochs=0),
        {"loss": [5.0]},
        tmp_path / "run",
    )
    run = load_run_split(tmp_path / "run", max_sentences=3)
    train, validation, test = split_pairs(load_corpus("builtin-ko-en", limit=200, seed=1))
    assert (run.data, run.limit, run.split, run.loaded) == ("builtin-ko-en", 200, "test", 200)
    assert list(run.pairs.source) == list(test.source[:3]) and list(run.train.source) == list(train.source)
    assert run.run["config"]["limit"] == 200 and run.compare is None and run.label == "builtin-ko-en, test split"
    other = load_run_split(tmp_path / "run", limit=400, split="validation")
    assert list(other.pairs.source) == list(split_pairs(load_corpus("builtin-ko-en", limit=400, seed=1))[1].source)
    with pytest.raises(ValueError, match="'test' or 'validation'"):
        load_run_split(tmp_path / "run", split="train")
    with pytest.raises(FileNotFoundError, match="No trained model"):
        load_run_split(tmp_path / "run", compare=tmp_path / "nothing")
