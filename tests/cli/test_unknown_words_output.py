"""What `translate` and `plot` print about source words outside the model's vocabulary.

The expected words are worked out here from the model's vocabulary list and the package's plain-Python word rule
(seq2seq_keras/words.py), not from the lookup table the model uses.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from test_pipeline import sample_sentences, tiny_run_dir

from seq2seq_keras.cli.commands import main
from seq2seq_keras.words import word_tokens

WEATHER = "오늘 날씨가 정말 좋네요."


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return tiny_run_dir(tmp_path_factory, "word")


@pytest.fixture(scope="module")
def vocabulary(run):
    from seq2seq_keras.training import load_model

    return set(load_model(run).source_text.vocabulary)


def _expected_note(sentence: str, vocabulary: set) -> tuple[str, str, bool] | None:
    """(how the note starts, the unknown words it lists, whether it calls the translation a guess); None: no note."""
    tokens = word_tokens(sentence)
    unknown = [t for t in tokens if t not in vocabulary]
    if not unknown:
        return None
    head = f"all {len(tokens)} source tokens are" if len(unknown) == len(tokens) else f"{len(unknown)} of {len(tokens)}"
    return head, ", ".join(unknown), 2 * len(unknown) > len(tokens)


def _check_note(line: str, sentence: str, vocabulary: set) -> None:
    head, words, guess = _expected_note(sentence, vocabulary)
    assert line.startswith(f"  note: {head}") and "outside the model's vocabulary (read as [UNK])" in line
    assert line.split("): ", 1)[1].removesuffix("; the translation is a guess") == words
    assert line.endswith("; the translation is a guess") == guess


def test_translate_says_which_source_words_are_unknown_and_when_the_translation_is_a_guess(run, vocabulary, capsys):
    """One stdout line per sentence (scripts read it); the notes on stderr, one per sentence with unknown words."""
    known = sample_sentences(1)[0]
    assert _expected_note(known, vocabulary) is None  # a training sentence: every word known
    assert {"날씨가", "정말", "좋네요"}.isdisjoint(vocabulary)  # never in the built-in corpus
    assert main(["translate", "--model", str(run), known, WEATHER, "I am a student."]) == 0
    captured = capsys.readouterr()
    assert [line.split(" -> ")[0] for line in captured.out.splitlines()] == [known, WEATHER, "I am a student."]
    notes = captured.err.splitlines()
    assert len(notes) == 2
    _check_note(notes[0], WEATHER, vocabulary)
    _check_note(notes[1], "I am a student.", vocabulary)


def test_each_note_follows_its_sentence_when_stdout_and_stderr_are_one_stream(run, vocabulary):
    import os
    import subprocess
    import sys

    known = sample_sentences(1)[0]
    proc = subprocess.run(
        [sys.executable, "-m", "seq2seq_keras.cli.commands", "translate", "--model", str(run), WEATHER, known, "-"],
        input=b"I am a student.\n",
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        timeout=300,
        env={**os.environ, "PYTHONIOENCODING": "utf-8", "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
    )
    assert proc.returncode == 0, proc.stdout.decode(errors="replace")[-2000:]
    lines = [line for line in proc.stdout.decode("utf-8").splitlines() if " -> " in line or "note:" in line]
    assert [line.split(" -> ")[0] if " -> " in line else "note" for line in lines] == [
        WEATHER,
        "note",
        known,
        "I am a student.",
        "note",
    ]
    _check_note(lines[1], WEATHER, vocabulary)


def test_translate_attention_marks_unknown_source_columns_and_says_what_the_marks_mean(run, vocabulary, capsys):
    assert main(["translate", "--model", str(run), "--attention", WEATHER]) == 0
    lines = capsys.readouterr().out.splitlines()
    tokens = word_tokens(WEATHER)
    header = lines[1].split()
    assert header == [f"{t[:7]}?" if t not in vocabulary else t[:8] for t in tokens]
    assert "? = outside the model's vocabulary, read as [UNK]" in lines[-1]
    rows = lines[2:-1]
    assert rows and all(len(row.split()) == len(tokens) + 1 for row in rows)  # a label, then one weight per column
    known = sample_sentences(1)[0]
    assert main(["translate", "--model", str(run), "--attention", "--no-replace-unk", known]) == 0
    captured = capsys.readouterr()
    assert captured.err == "" and "?" not in captured.out.splitlines()[1]  # nothing unknown: no mark, no key


def test_plot_prints_the_note_and_the_heatmap_marks_the_words(run, vocabulary, tmp_path, capsys, monkeypatch):
    from seq2seq_keras import plotting

    figures = []
    real = plotting.plot_attention

    def keep(*args, **kwargs):  # the real function; the figure kept to read its labels
        figures.append(real(*args, **kwargs))
        return figures[-1]

    monkeypatch.setattr(plotting, "plot_attention", keep)
    out = tmp_path / "weather.png"
    assert main(["plot", "--model", str(run), "--out", str(out), WEATHER]) == 0
    captured = capsys.readouterr()
    assert captured.out.startswith(f"{WEATHER} -> ")
    _check_note(captured.err.splitlines()[0], WEATHER, vocabulary)
    assert out.stat().st_size > 0
    (fig,) = figures
    labels = [label.get_text() for label in fig.axes[0].get_xticklabels()]
    assert labels == [t if t in vocabulary else f"{t}{plotting.UNKNOWN_MARK}" for t in word_tokens(WEATHER)]


def test_a_tf_serving_answer_says_nothing_about_unknown_words(run, capsys):
    """`plot --server` prints what the server said: its signatures do not return the unknown words and the client
    has no vocabulary, so no note (rather than a wrong 'none unknown')."""
    import numpy as np
    import tensorflow as tf

    from seq2seq_keras.cli.commands import _print_unknown_words
    from seq2seq_keras.decoding.pipeline import translate_graph
    from seq2seq_keras.serving.client import outputs_to_translations
    from seq2seq_keras.serving.signatures import output_names
    from seq2seq_keras.training import load_model

    model = load_model(run)
    out = translate_graph(model, tf.constant([WEATHER]))
    served = {name: np.asarray(out[name]) for name in output_names("translate_with_attention")}
    assert "source_unknown_words" not in served
    (answer,) = outputs_to_translations(served, [WEATHER])
    assert answer.unknown_source is None
    _print_unknown_words(answer)
    assert capsys.readouterr().err == ""
    _print_unknown_words(model.translate(WEATHER))  # the same sentence through the Python API
    assert capsys.readouterr().err.startswith("  note: ")
