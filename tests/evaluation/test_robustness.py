"""The robustness evaluation: swapped names and numbers, long inputs, [UNK] and repetition rates."""

from __future__ import annotations

import json
import re

import pytest
from test_pipeline import tiny_run  # noqa: F401  (fixture)

from seq2seq_keras.data import SentencePairs
from seq2seq_keras.evaluation.robustness import (
    build_robustness_set,
    copy_rate,
    evaluate_robustness,
    has_repetition,
    repetition_rate,
    robustness_table,
    swappable_tokens,
    unk_rate,
)

TRAIN = SentencePairs(
    source=("Tom come una manzana.", "No tengo 3 gatos.", "Mary lee un libro.", "No tengo idea."),
    target=("Tom eats an apple.", "I don't have 3 cats.", "Mary reads a book.", "I have no idea."),
    source_lang="es",
    target_lang="en",
    name="train",
)
TEST = SentencePairs(
    source=("Tom tiene 25 años.", "No lo sé.", "Mary y Tom leen.", "Hace frío hoy en el norte del país."),
    target=("Tom is 25 years old.", "No, I don't know it.", "Mary and Tom read.", "It is cold today in the north."),
    source_lang="es",
    target_lang="en",
    name="test",
)


def test_swappable_tokens_are_names_and_numbers_on_both_sides():
    common = {"i", "don", "t", "know", "no"}  # "no" occurs in lower case: "No" is not a name
    assert swappable_tokens("Tom tiene 25 años.", "Tom is 25 years old.", common) == ["Tom", "25"]
    assert swappable_tokens("No lo sé.", "No, I don't know it.", common) == []
    assert swappable_tokens("Ella vive en París.", "She lives in Paris.", common) == []  # not verbatim


def test_the_swap_is_consistent_on_both_sides_and_unseen_in_training():
    rset = build_robustness_set(TRAIN, TEST, seed=0, longest=2, concatenations=3)
    assert [r["original"] for r in rset.swapped] in ([["Tom", "25"], ["Mary", "Tom"]], [["Mary", "Tom"], ["Tom", "25"]])
    seen = {w.lower() for t in TRAIN.source + TRAIN.target + TEST.source + TEST.target for w in re.findall(r"\w+", t)}
    for row in rset.swapped:
        for old, new in zip(row["original"], row["inserted"]):
            assert new.lower() not in seen
            assert re.search(rf"\b{new}\b", row["source"]) and re.search(rf"\b{new}\b", row["target"])
            assert not re.search(rf"\b{old}\b", row["source"]) and not re.search(rf"\b{old}\b", row["target"])
    tom = {new for row in rset.swapped for old, new in zip(row["original"], row["inserted"]) if old == "Tom"}
    assert len(tom) == 2  # every sentence gets its own unseen name
    assert [r["source"] for r in rset.long[:2]] == [TEST.source[3], TEST.source[0]]  # longest first, ties in order
    concatenations = [r for r in rset.long if r["kind"] == "concatenation"]
    assert len(concatenations) == 3
    for r in concatenations:
        parts = [s for s in TEST.source if s in r["source"]]
        assert 2 <= len(parts) <= 3 and len(r["source"]) == sum(map(len, parts)) + len(parts) - 1
    assert build_robustness_set(TRAIN, TEST, seed=0, longest=2, concatenations=3) == rset  # deterministic


def test_metrics_exact():
    assert unk_rate(["[UNK] is 25 years old.", "tom [UNK]"]) == pytest.approx(2 / 7)
    assert unk_rate([]) is None and unk_rate([""]) is None
    assert has_repetition("of the [UNK] of the [UNK] of", "a b c")
    assert not has_repetition("of the people, by the people, for the people", "of the people, by the people")
    assert not has_repetition("the the the", "the the the the")  # the reference repeats it too
    assert repetition_rate(["a b c a b c", "a b c"], ["x", "y"]) == 0.5
    assert copy_rate(["zorvak is 4127 years old", "Zorvak is old"], [["Zorvak", "4127"], ["zorvak", "12"]]) == 0.5
    assert copy_rate(["zorvakian"], [["zorvak"]]) == 0.0  # whole words only


def test_evaluate_robustness_scores_any_translate_function():
    rset = build_robustness_set(TRAIN, TEST, seed=0, longest=2, concatenations=3)
    references = {r["source"]: r["target"] for r in rset.swapped + rset.long}
    perfect = evaluate_robustness(lambda texts: [references[t] for t in texts], rset)
    assert perfect["swapped"]["copy_rate"] == 1.0 and perfect["unk_rate"] == 0.0
    assert perfect["long"]["repetition_rate"] == 0.0 and perfect["long"]["bleu"] == pytest.approx(100.0)
    looping = evaluate_robustness(lambda texts: ["of the [UNK] of the [UNK] of the"] * len(texts), rset)
    assert looping["swapped"]["copy_rate"] == 0.0 and looping["long"]["repetition_rate"] == 1.0
    assert looping["unk_rate"] == pytest.approx(2 / 8)
    table = robustness_table({"perfect": perfect, "looping": looping})
    assert "| perfect | 100.0% | 0.0% | 100.0 |" in table and "| looping | 0.0% | 25.0% |" in table


def test_cli_evaluate_robustness_writes_the_report(tiny_run, tmp_path, capsys):
    from seq2seq_keras.cli import main

    out = tmp_path / "robust"
    assert (
        main(
            [
                "evaluate",
                "--model",
                str(tiny_run),
                "--robustness",
                "--beam-width",
                "2",
                "--no-progress",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    report = json.loads((out / "robustness.json").read_text())
    assert list(report["results"]) == [
        "greedy",
        "greedy, --no-copy-unknown-names",
        "greedy, --no-replace-unk",
        "greedy, --block-ngram-repeat 3",
        "beam 2",
    ]
    assert report["results"]["greedy"]["long"]["sentences"] > 0
    assert "| greedy |" in (out / "robustness.md").read_text() and "| greedy |" in capsys.readouterr().out


@pytest.mark.shared_data
def test_spa_eng_robustness_set_has_names_numbers_and_long_inputs():
    from test_corpora import shared_file

    from seq2seq_keras.data import load_corpus, split_pairs

    shared_file("spa-eng/spa.txt")
    train, _, test = split_pairs(load_corpus("spa-eng"))
    rset = build_robustness_set(train, test)
    assert len(rset.swapped) == 300 and len(rset.long) == 300
    originals = [w for r in rset.swapped for w in r["original"]]
    assert "Tom" in originals and any(w.isdigit() for w in originals)
    assert min(len(r["source"].split()) for r in rset.long if r["kind"] == "longest") >= 10
