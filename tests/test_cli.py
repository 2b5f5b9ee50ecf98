"""The command line: every command has --help; train -> translate end to end; clear errors."""

import numpy as np
import pytest

from seq2seq_keras.cli import build_parser, main


def _commands():
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    return sorted(sub.choices)


def test_top_level_help(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    for name in ("train", "translate"):
        assert name in out


@pytest.mark.parametrize("command", _commands())
def test_every_command_has_help(command, capsys):
    with pytest.raises(SystemExit) as e:
        main([command, "--help"])
    assert e.value.code == 0
    assert f"usage: seq2seq-keras {command}" in capsys.readouterr().out


def test_translate_without_a_model_says_what_to_do(tmp_path, capsys):
    code = main(["translate", "--model", str(tmp_path / "nothing"), "나는 학생이다"])
    assert code == 2
    err = capsys.readouterr().err
    assert "No trained model" in err and "seq2seq-keras train" in err


def test_unknown_attention_is_refused_by_the_parser(capsys):
    with pytest.raises(SystemExit) as e:
        main(["train", "--attention", "soft", "--out", "x"])
    assert e.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


def test_train_then_translate_on_the_builtin_corpus(tmp_path, capsys):
    out = tmp_path / "run"
    code = main([
        "train", "--data", "builtin-ko-en", "--limit", "300", "--epochs", "1",
        "--embedding-dim", "8", "--units", "8", "--batch-size", "32", "--out", str(out),
    ])
    assert code == 0
    assert (out / "model.keras").is_file() and (out / "config.json").is_file()
    capsys.readouterr()
    assert main(["translate", "--model", str(out), "--attention", "나는 학생이다", ""]) == 0
    lines = capsys.readouterr().out.splitlines()
    # --attention: a header of source tokens, then one row of weights per target token.
    from seq2seq_keras.training import load_model

    sentence, empty = load_model(out).translate(["나는 학생이다", ""])
    assert lines[0] == f"나는 학생이다 -> {sentence.text}"
    assert lines[1].split() == [token[:8] for token in sentence.source_tokens] == ["나는", "학생이다"]
    rows = [line.split() for line in lines[2:2 + len(sentence.target_tokens)]]
    assert len(rows) == len(sentence.target_tokens) > 0
    assert [row[0] for row in rows] == list(sentence.target_tokens)
    printed = np.array([[float(w) for w in row[1:]] for row in rows])
    np.testing.assert_allclose(printed, sentence.attention, atol=0.005 + 1e-6)  # printed with 2 decimals
    np.testing.assert_allclose(printed.sum(axis=1), 1.0, atol=0.01)
    assert lines[2 + len(rows)] == f" -> {empty.text}"  # the empty sentence gets a defined answer


def test_translate_reads_stdin_with_invalid_utf8_and_beam(tmp_path):
    import os
    import subprocess
    import sys

    out = tmp_path / "run"
    assert main([
        "train", "--data", "builtin-ko-en", "--limit", "200", "--epochs", "1",
        "--embedding-dim", "8", "--units", "8", "--out", str(out),
    ]) == 0
    proc = subprocess.run(
        [sys.executable, "-m", "seq2seq_keras.cli", "translate", "--model", str(out), "--method", "beam",
         "--beam-width", "2", "-"],
        input=b"\xff\xfe\xc0 bad bytes\n\xeb\x82\x98\xeb\x8a\x94 \xed\x95\x99\xec\x83\x9d\n",
        capture_output=True, timeout=300, env={**os.environ, "LC_ALL": "C", "PYTHONIOENCODING": "utf-8"},
    )
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")[-2000:]
    lines = proc.stdout.decode("utf-8").splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("\ufffd") and lines[1].startswith("나는 학생 -> ")


def test_train_flags_are_generated_from_train_config(capsys):
    """One source per setting: every TrainConfig field is a train flag with the field's default and help."""
    import dataclasses

    from seq2seq_keras.config import TrainConfig

    parser = build_parser()
    args = parser.parse_args(["train", "--out", "run"])
    from seq2seq_keras.cli import _train_config_from_args

    assert _train_config_from_args(args) == TrainConfig()
    assert parser.parse_args(["train", "--out", "run", "--units", "8"]).encoder_units == 8  # the old flag name
    changed = parser.parse_args(["train", "--out", "run", "--attention", "none", "--encoder-units", "8", "--clipnorm", "0",
                                 "--no-input-feeding", "--subword", "--limit", "30", "--tensorboard", "logs",
                                 "--learning-rate", "0.01", "--rnn", "lstm"])
    assert _train_config_from_args(changed) == TrainConfig(attention=None, encoder_units=8, clipnorm=None,
                                                           input_feeding=False,
                                                           subword=True, limit=30, tensorboard="logs",
                                                           learning_rate=0.01, rnn="lstm")
    with pytest.raises(SystemExit):
        parser.parse_args(["train", "--help"])
    shown = " ".join(capsys.readouterr().out.split())
    for field in dataclasses.fields(TrainConfig):
        assert field.metadata["help"].split(";")[0].split("(")[0].strip()[:30] in shown, field.name


def test_attention_names_are_normalised_in_one_place():
    from seq2seq_keras.attention import attention_name
    from seq2seq_keras.config import TrainConfig

    assert attention_name("none") is None and attention_name(None) is None
    assert attention_name("luong-dot") == "luong-dot"
    with pytest.raises(ValueError, match="choose one of"):
        attention_name("luong")
    assert TrainConfig(attention="none").attention is None
    with pytest.raises(ValueError, match="choose one of"):
        TrainConfig(attention="dot")


def test_translate_replaces_unknown_words_and_takes_the_real_world_flags(tmp_path_factory, tmp_path, capsys):
    """--no-replace-unk, --unk-dictionary FILE and --block-ngram-repeat reach the decoder; help lists them."""
    from test_decoding import forced_model, tiny_run_dir

    path = tmp_path / "unk.keras"
    forced_model(tiny_run_dir(tmp_path_factory, "word"), "[UNK]").save(path)
    sentence = "그는 홍길동 사과를 먹는다 ."
    assert main(["translate", "--model", str(path), "--no-replace-unk", sentence]) == 0
    assert capsys.readouterr().out.strip().startswith(f"{sentence} -> [UNK] [UNK]")
    assert main(["translate", "--model", str(path), "--attention", sentence]) == 0
    out = capsys.readouterr().out
    assert "[UNK]" not in out.splitlines()[0] and "*" in out  # replaced rows marked in the matrix
    dictionary = tmp_path / "dict.tsv"
    dictionary.write_text("# source<TAB>target\n그는\tHE\n먹는다\tEATS\n사과를\tAPPLE\n홍길동\tHONG\n.\t.\n")
    assert main(["translate", "--model", str(path), "--unk-dictionary", str(dictionary), sentence]) == 0
    words = capsys.readouterr().out.split(" -> ")[1].split()
    assert words and set(words) <= {"HE", "EATS", "APPLE", "HONG", "."}
    assert main(["translate", "--model", str(path), "--block-ngram-repeat", "1", "--no-replace-unk", sentence]) == 0
    assert capsys.readouterr().out.split(" -> ")[1].split().count("[UNK]") == 1
    (tmp_path / "bad.tsv").write_text("no tab here\n")
    assert main(["translate", "--model", str(path), "--unk-dictionary", str(tmp_path / "bad.tsv"), sentence]) == 2
    assert "source<TAB>target" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["translate", "--help"])
    help_text = capsys.readouterr().out
    for flag in ("--no-replace-unk", "--no-copy-unknown-names", "--unk-dictionary", "--block-ngram-repeat"):
        assert flag in help_text
