"""The command line: every command has --help; train -> translate end to end; clear errors."""

import re

import numpy as np
import pytest

from seq2seq_keras.cli.commands import build_parser, main


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
    out = capsys.readouterr().out
    assert f"usage: seq2seq-keras {command}" in out
    assert not re.search(r"\{\w+\.\w+", out), "a library default was not filled in"


def test_help_shows_the_library_defaults_it_does_not_retype(capsys):
    """Defaults come from the library's constants and signatures; a flag left out is not passed on."""
    from seq2seq_keras import plotting
    from seq2seq_keras.decoding import options as decoding_options
    from seq2seq_keras.evaluation import scores as evaluation
    from seq2seq_keras.serving import export

    def help_of(command):
        with pytest.raises(SystemExit):
            main([command, "--help"])
        return " ".join(capsys.readouterr().out.split())

    translate = help_of("translate")
    assert f"with --method beam (default: {decoding_options.DEFAULT_BEAM_WIDTH})" in translate
    assert f"{decoding_options.DEFAULT_BEAM_BLOCK_NGRAM_REPEAT} for beam" in translate
    edges = ",".join(map(str, evaluation.DEFAULT_BUCKET_EDGES))
    assert f"(default: {edges})" in help_of("evaluate")
    exported = help_of("export")
    assert (
        f"(default: {export.DEFAULT_BASE_DIR})" in exported and f"(default: {export.DEFAULT_SERVING_ROOT}," in exported
    )
    assert f"(default: {decoding_options.DEFAULT_LENGTH_PENALTY})" in exported
    import inspect

    assert f"(default: {inspect.signature(plotting.plot_attention_grid).parameters['ncols'].default})" in help_of(
        "plot"
    )
    args = build_parser().parse_args(["export", "--model", "m", "--name", "n"])
    assert args.base_dir is None and args.beam_width is None and args.replace_unk is None  # the library decides


_HELP_IN_A_FRESH_PROCESS = (
    "import contextlib, io, json, sys\n"
    "from seq2seq_keras.cli.commands import main\n"
    "with contextlib.redirect_stdout(io.StringIO()) as out:\n"
    "    try:\n"
    "        main(sys.argv[1:])\n"
    "    except SystemExit as e:\n"
    "        code = e.code\n"
    "print(json.dumps({'code': code, 'usage': 'usage: seq2seq-keras' in out.getvalue(),\n"
    "                  'loaded': sorted(m for m in ('tensorflow', 'keras') if m in sys.modules)}))\n"
)


@pytest.mark.parametrize(
    "argv", [["--help"]] + [[command, "--help"] for command in _commands()], ids=lambda argv: " ".join(argv)
)
def test_help_of_every_command_imports_neither_tensorflow_nor_keras(argv):
    """``--help`` of the top level and of every subcommand the parser has (library defaults filled in
    included) runs in a fresh process without importing TensorFlow or Keras: it takes a fraction of a
    second instead of TensorFlow's 3-5 s start-up."""
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    result = subprocess.run(
        [sys.executable, "-c", _HELP_IN_A_FRESH_PROCESS, *argv],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": str(root)},
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.splitlines()[-1])
    assert report == {"code": 0, "usage": True, "loaded": []}, (argv, report)


def test_package_names_still_import_on_first_use():
    """The package is lazy (what keeps ``--help`` light), and the public names still import on first use."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    code = (
        "import sys\n"
        "import seq2seq_keras, seq2seq_keras.cli.commands\n"
        "seq2seq_keras.cli.commands.build_parser()\n"
        "print(sorted(m for m in ('tensorflow', 'keras') if m in sys.modules))\n"
        "from seq2seq_keras import Seq2Seq\n"
        "import seq2seq_keras.model.seq2seq\n"
        "print(Seq2Seq is seq2seq_keras.Seq2Seq is seq2seq_keras.model.Seq2Seq, 'keras' in sys.modules,\n"
        "      set(seq2seq_keras.__all__) <= set(dir(seq2seq_keras)))\n"
    )
    root = Path(__file__).resolve().parents[2]
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": str(root)},
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-2:] == ["[]", "True True True"]


def test_library_defaults_are_read_from_the_source_as_the_modules_define_them():
    """The statically read defaults equal the imported ones, names followed across modules."""
    import inspect

    from seq2seq_keras import plotting
    from seq2seq_keras.cli import flags as cli_flags
    from seq2seq_keras.decoding import options as decoding_options
    from seq2seq_keras.evaluation import scores as evaluation
    from seq2seq_keras.serving import check as servable
    from seq2seq_keras.serving import export

    assert cli_flags.static_default("evaluation.scores", "DEFAULT_BUCKET_EDGES") == evaluation.DEFAULT_BUCKET_EDGES
    assert cli_flags.static_default("serving.export", "DEFAULT_BASE_DIR") == export.DEFAULT_BASE_DIR
    for function, parameter in [
        (evaluation.evaluate, "beam_width"),
        (evaluation.evaluate, "batch_size"),
        (servable.check_servable, "timeout"),
        (servable.benchmark_servable, "timeout"),
        (plotting.plot_attention_grid, "ncols"),
    ]:
        module = function.__module__.split(".", 1)[1]  # below the package: "evaluation.scores"
        expected = inspect.signature(function).parameters[parameter].default
        assert cli_flags.static_default(module, function.__name__, parameter) == expected
        assert cli_flags.library_default(f"{module}.{function.__name__}({parameter})") == expected
    assert cli_flags.library_default("evaluation.scores.evaluate(beam_width)") == decoding_options.DEFAULT_BEAM_WIDTH
    with pytest.raises(cli_flags._NotStatic):  # a name the module does not bind: nothing to read
        cli_flags.static_default("evaluation.scores", "REFERENCE_NOTE_MISSING")


def test_startup_chatter_is_dropped_and_other_lines_are_kept():
    """start_tensorflow drops exactly TensorFlow's known start-up lines, also under the user's own
    TF_CPP_MIN_LOG_LEVEL; SEQ2SEQ_KERAS_TF_LOGS=all shows them (so the filter is what removes them)."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    from seq2seq_keras.startup import _STARTUP_CHATTER

    known = [
        "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
        "I0000 00:00:1796017403.455792   17986 port.cc:153] oneDNN custom operations are on. You may see slightly "
        "different numerical results due to floating-point round-off errors from different computation orders.",
        "I0000 00:00:1796017403.456110   17986 cudart_stub.cc:31] Could not find cuda drivers on your machine, GPU "
        "will not be used.",
        "E0000 00:00:1796017405.221169   17986 cuda_platform.cc:52] failed call to cuInit: INTERNAL: CUDA error: "
        "Failed call to cuInit: UNKNOWN ERROR (303)",
        # TensorFlow 2.20 (Colab's) logs in TSL's format
        "2026-12-06 09:14:17.485538: I tensorflow/core/util/port.cc:153] oneDNN custom operations are on. You may "
        "see slightly different numerical results due to floating-point round-off errors from different computation orders.",
        "2026-12-06 09:14:17.485177: I external/local_xla/xla/tsl/cuda/cudart_stub.cc:31] Could not find cuda drivers "
        "on your machine, GPU will not be used.",
        "2026-12-06 09:14:36.324748: E external/local_xla/xla/stream_executor/cuda/cuda_platform.cc:51] failed call to "
        "cuInit: INTERNAL: CUDA error: Failed call to cuInit: UNKNOWN ERROR (303)",
        # TensorFlow 2.20 on its first graph (the start-up spends it), whatever TF_CPP_MIN_LOG_LEVEL says
        "I0000 00:00:1796553923.385133   19654 mlir_graph_optimization_pass.cc:437] MLIR V1 optimization pass is not "
        "enabled",
    ]
    assert all(_STARTUP_CHATTER.match(line) for line in known)
    kept = [
        "E0000 00:00:1796017405.221169   17986 bfc_allocator.cc:1] Allocator ran out of memory",
        "Traceback (most recent call last):",
        "W0000 00:00:1 port.cc:1] something else",
        "2026-12-06 09:14:36.324748: E external/local_xla/xla/tsl/framework/bfc_allocator.cc:1] Allocator ran out",
    ]
    assert not any(_STARTUP_CHATTER.match(line) for line in kept)

    code = (
        "import sys\nimport seq2seq_keras.cli.commands\nfrom seq2seq_keras.startup import start_tensorflow\n"
        "start_tensorflow()\nprint('tensorflow' in sys.modules)\n"
    )
    root = Path(__file__).resolve().parents[2]
    env = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL", "SEQ2SEQ_KERAS_TF_LOGS")}
    quiet = subprocess.run(
        [sys.executable, "-c", code],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=300,
        env={**env, "PYTHONPATH": str(root), "TF_CPP_MIN_LOG_LEVEL": "1"},  # a level the user set: still quiet
    )
    assert quiet.returncode == 0 and quiet.stdout.strip() == "True", quiet.stderr
    assert not any(_STARTUP_CHATTER.match(line) for line in quiet.stderr.splitlines()), quiet.stderr
    loud = subprocess.run(
        [sys.executable, "-c", code],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=300,
        env={**env, "PYTHONPATH": str(root), "SEQ2SEQ_KERAS_TF_LOGS": "all"},
    )
    assert loud.returncode == 0
    # printed before TensorFlow sets up logging, whatever the level (which lines depends on the TensorFlow version)
    assert any(_STARTUP_CHATTER.match(line) for line in loud.stderr.splitlines()), loud.stderr


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
    code = main(
        [
            "train",
            "--data",
            "builtin-ko-en",
            "--limit",
            "300",
            "--epochs",
            "1",
            "--embedding-dim",
            "8",
            "--encoder-units",
            "8",
            "--batch-size",
            "32",
            "--out",
            str(out),
        ]
    )
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
    rows = [line.split() for line in lines[2 : 2 + len(sentence.target_tokens)]]
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
    assert (
        main(
            [
                "train",
                "--data",
                "builtin-ko-en",
                "--limit",
                "200",
                "--epochs",
                "1",
                "--embedding-dim",
                "8",
                "--encoder-units",
                "8",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "seq2seq_keras.cli.commands",
            "translate",
            "--model",
            str(out),
            "--method",
            "beam",
            "--beam-width",
            "2",
            "-",
        ],
        input=b"\xff\xfe\xc0 bad bytes\n\xeb\x82\x98\xeb\x8a\x94 \xed\x95\x99\xec\x83\x9d\n",
        capture_output=True,
        timeout=300,
        env={**os.environ, "LC_ALL": "C", "PYTHONIOENCODING": "utf-8"},
    )
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")[-2000:]
    lines = proc.stdout.decode("utf-8").splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("\ufffd") and lines[1].startswith("나는 학생 -> ")


def test_train_flags_are_generated_from_train_config(capsys):
    """One source per setting: every TrainConfig field is a train flag with the field's default and help."""
    import dataclasses

    from seq2seq_keras.training import TrainConfig

    parser = build_parser()
    args = parser.parse_args(["train", "--out", "run"])
    from seq2seq_keras.cli.flags import train_config_from_args as _train_config_from_args

    assert _train_config_from_args(args) == TrainConfig()
    assert (
        _train_config_from_args(parser.parse_args(["train", "--out", "run", "--batch-tokens", "0"])).batch_tokens
        is None
    )
    changed = parser.parse_args(
        [
            "train",
            "--out",
            "run",
            "--attention",
            "none",
            "--encoder-units",
            "8",
            "--clipnorm",
            "0",
            "--no-input-feeding",
            "--subword",
            "--limit",
            "30",
            "--tensorboard",
            "logs",
            "--learning-rate",
            "0.01",
            "--rnn",
            "lstm",
            "--batch-tokens",
            "640",
        ]
    )
    assert _train_config_from_args(changed) == TrainConfig(
        batch_tokens=640,
        attention=None,
        encoder_units=8,
        clipnorm=None,
        input_feeding=False,
        subword=True,
        limit=30,
        tensorboard="logs",
        learning_rate=0.01,
        rnn="lstm",
    )
    with pytest.raises(SystemExit):
        parser.parse_args(["train", "--help"])
    shown = " ".join(capsys.readouterr().out.split())
    for field in dataclasses.fields(TrainConfig):
        assert field.metadata["help"].split(";")[0].split("(")[0].strip()[:30] in shown, field.name


def test_flag_types_of_config_fields():
    """What a new TrainConfig field's annotation becomes: a value type, choices, or a comma-separated list."""
    import argparse
    from typing import Literal

    from seq2seq_keras.cli.flags import _flag_type

    assert _flag_type(int) == (int, None) and _flag_type(float | None) == (float, None)
    assert _flag_type(Literal["rnn", "transformer"]) == (str, ("rnn", "transformer"))
    parse, choices = _flag_type(tuple[int, ...] | None)
    assert choices is None and parse("5,10, 20") == (5, 10, 20)
    with pytest.raises(argparse.ArgumentTypeError, match="int values separated by commas"):
        parse("5,x")


def test_attention_names_are_normalised_in_one_place():
    from seq2seq_keras.model import attention, decoder
    from seq2seq_keras.model import seq2seq as model
    from seq2seq_keras.model.choices import attention_name
    from seq2seq_keras.training import TrainConfig

    # One function, defined without Keras (the parser lists the names) and used by the layers too.
    assert attention.attention_name is decoder.attention_name is model.attention_name is attention_name

    assert attention_name("none") is None and attention_name(None) is None
    assert attention_name("luong-dot") == "luong-dot"
    with pytest.raises(ValueError, match="choose one of"):
        attention_name("luong")
    assert TrainConfig(attention="none").attention is None
    with pytest.raises(ValueError, match="choose one of"):
        TrainConfig(attention="dot")


def test_translate_replaces_unknown_words_and_takes_the_real_world_flags(tmp_path_factory, tmp_path, capsys):
    """--no-replace-unk, --unk-dictionary FILE and --block-ngram-repeat reach the decoder; help lists them."""
    from test_pipeline import forced_model, tiny_run_dir

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
