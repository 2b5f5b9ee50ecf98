"""The command line's errors: each mistake is one line on stderr saying what was wrong and what to do, exit
status 2, and no folder left behind that the failed call made; repeat runs say what they did."""

import dataclasses
import json

import pytest

from seq2seq_keras.cli.commands import main


def run(argv, capsys) -> tuple[int, list[str], str]:
    """``(exit status, stderr lines, stdout)`` of ``seq2seq-keras ARGV`` run in this process (a parser error
    exits through SystemExit, a command's error returns)."""
    try:
        code = main([str(a) for a in argv])
    except SystemExit as e:
        code = e.code
    captured = capsys.readouterr()
    return code, captured.err.splitlines(), captured.out


def assert_one_line(code, err, *words):
    assert code == 2, err
    assert len(err) == 1, err
    for word in words:
        assert word in err[0], (word, err[0])


# ---------------------------------------------------------------------- numeric flags, at parse time
NUMERIC_MISTAKES = [
    # (command line, words the line must hold); every command's flags, each kind of bad value
    (["train", "--encoder-units", "0"], ["--encoder-units", ">= 1", "got 0"]),
    (["train", "--embedding-dim", "-3"], ["--embedding-dim", ">= 1"]),
    (["train", "--encoder-layers", "0"], ["--encoder-layers", ">= 1"]),
    (["train", "--epochs", "-1"], ["--epochs", ">= 0"]),
    (["train", "--epochs", "2.5"], ["--epochs", "integer", "'2.5'"]),
    (["train", "--batch-size", "0"], ["--batch-size", ">= 1"]),
    (["train", "--limit", "0"], ["--limit", ">= 1"]),
    (["train", "--learning-rate", "0"], ["--learning-rate", "> 0"]),
    (["train", "--learning-rate", "abc"], ["--learning-rate", "number", "'abc'"]),
    (["train", "--learning-rate", "nan"], ["--learning-rate", "finite"]),
    (["train", "--dropout", "1"], ["--dropout", "< 1"]),
    (["train", "--dropout", "-0.1"], ["--dropout", ">= 0"]),
    (["train", "--clipnorm", "-1"], ["--clipnorm", "0 disables"]),
    (["train", "--max-vocabulary", "4"], ["--max-vocabulary", ">= 5"]),
    (["train", "--min-frequency", "0"], ["--min-frequency", ">= 1"]),
    (["train", "--max-length", "0"], ["--max-length", ">= 1"]),
    (["train", "--seed", "-1"], ["--seed", ">= 0"]),
    (["train", "--num-heads", "0"], ["--num-heads", ">= 1"]),
    (["train", "--num-layers", "0"], ["--num-layers", ">= 1"]),
    (["train", "--model-dim", "0"], ["--model-dim", ">= 1"]),
    (["train", "--ff-dim", "0"], ["--ff-dim", ">= 1"]),
    (["train", "--checkpoint-every", "0"], ["--checkpoint-every", ">= 1"]),
    (["train", "--attention", "soft"], ["--attention", "invalid choice", "bahdanau"]),
    (["train", "--encoder-units"], ["--encoder-units", "expected one argument"]),
    (["translate", "--model", "m", "--beam-width", "0", "x"], ["--beam-width", ">= 1"]),
    (["translate", "--model", "m", "--max-length", "0", "x"], ["--max-length", ">= 1"]),
    (["translate", "--model", "m", "--max-source-length", "0", "x"], ["--max-source-length", ">= 1"]),
    (["translate", "--model", "m", "--temperature", "0", "x"], ["--temperature", "> 0"]),
    (["translate", "--model", "m", "--length-penalty", "inf", "x"], ["--length-penalty", "finite"]),
    (["translate", "--model", "m", "--coverage-penalty", "-1", "x"], ["--coverage-penalty", ">= 0"]),
    (["translate", "--model", "m", "--block-ngram-repeat", "-1", "x"], ["--block-ngram-repeat", ">= 0"]),
    (["translate", "--model", "m", "--batch-size", "0", "x"], ["--batch-size", ">= 1"]),
    (["translate", "--model", "m", "--seed", "x1", "x"], ["--seed", "integer"]),
    (["translate", "--model", "m", "--method", "best", "x"], ["--method", "invalid choice"]),
    (["translate", "--model", "m"], ["required", "sentences"]),
    (["plot", "--model", "m", "--out", "a.png", "--max-length", "0", "x"], ["--max-length", ">= 1"]),
    (["plot", "--model", "m", "--out", "a.png", "--ncols", "0", "x", "y"], ["--ncols", ">= 1"]),
    (["plot", "--server", "http://h:8501", "--out", "a.png", "--version", "-1", "x"], ["--version", ">= 0"]),
    (["plot", "--out", "a.png", "x"], ["--model", "--server", "required"]),
    (["evaluate", "--model", "m", "--out", "r", "--beam-width", "-1"], ["--beam-width", ">= 0"]),
    (["evaluate", "--model", "m", "--out", "r", "--batch-size", "0"], ["--batch-size", ">= 1"]),
    (["evaluate", "--model", "m", "--out", "r", "--max-sentences", "0"], ["--max-sentences", ">= 1"]),
    (["evaluate", "--model", "m", "--out", "r", "--limit", "0"], ["--limit", "positive number", "'all'"]),
    (["evaluate", "--model", "m", "--out", "r", "--max-length", "0"], ["--max-length", ">= 1"]),
    (["export", "--model", "m", "--name", "n", "--version", "-2"], ["--version", ">= 0"]),
    (["export", "--model", "m", "--name", "n", "--beam-width", "0"], ["--beam-width", ">= 1"]),
    (["export", "--model", "m", "--name", "n", "--beam-block-ngram-repeat", "-1"], ["--beam-block-ngram-repeat"]),
    (["check-servable", "p", "--timeout", "0"], ["--timeout", "> 0"]),
    (["check-servable", "p", "--timeout", "soon"], ["--timeout", "number", "'soon'"]),
    (["trian"], ["invalid choice", "'trian'", "train"]),
]


@pytest.mark.parametrize("argv, words", NUMERIC_MISTAKES, ids=lambda v: " ".join(v) if isinstance(v, list) else "")
def test_a_bad_flag_value_is_one_line_naming_the_flag_and_the_help(argv, words, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    argv = argv if argv[0] != "train" else argv + ["--out", "run"]
    code, err, out = run(argv, capsys)
    command = "seq2seq-keras" if argv[0] == "trian" else f"seq2seq-keras {argv[0]}"
    assert_one_line(code, err, f"{command}: error: ", f"see {command} --help", *words)
    assert out == "" and list(tmp_path.iterdir()) == []  # parse time: nothing ran, nothing made


def test_the_flag_checks_are_the_settings_own():
    """A flag's range is its setting's: the same value is refused by TrainConfig / DecodingOptions from Python,
    with the same words (the field's name where the CLI says the flag)."""
    from seq2seq_keras.decoding.options import DecodingOptions
    from seq2seq_keras.training.config import TrainConfig

    with pytest.raises(ValueError, match="encoder_units must be >= 1, got 0"):
        TrainConfig(encoder_units=0)
    with pytest.raises(ValueError, match="dropout must be a finite number >= 0 and < 1"):
        TrainConfig(dropout=1.0)
    with pytest.raises(ValueError, match="beam_width must be >= 1, got 0"):
        DecodingOptions(beam_width=0)


def test_help_still_answers(capsys):
    code, err, out = run(["train", "--help"], capsys)
    assert code == 0 and err == [] and "usage: seq2seq-keras train" in out


# ---------------------------------------------------------------------- train
def test_train_with_an_unknown_corpus_says_which_exist_and_leaves_no_folder(tmp_path, capsys):
    out = tmp_path / "X"
    code, err, _ = run(["train", "--data", "nope-eng", "--out", out], capsys)
    assert_one_line(code, err, "seq2seq-keras train: error: --data nope-eng", "builtin-ko-en", ".txt")
    assert not out.exists()


def test_train_with_encoder_units_0_leaves_no_folder(tmp_path, capsys):
    out = tmp_path / "X"
    code, err, _ = run(["train", "--encoder-units", "0", "--out", out], capsys)
    assert_one_line(code, err, "--encoder-units must be >= 1, got 0")
    assert not out.exists()


@pytest.mark.parametrize(
    "flags, words",
    [
        (["--architecture", "transformer", "--model-dim", "130"], ["--model-dim=130", "multiple of --num-heads=4"]),
        (["--architecture", "transformer", "--model-dim", "9", "--num-heads", "3"], ["--model-dim must be even"]),
    ],
)
def test_train_settings_that_disagree_are_one_line_in_flag_names(flags, words, tmp_path, capsys):
    out = tmp_path / "X"
    code, err, _ = run(["train", *flags, "--out", out], capsys)
    assert_one_line(code, err, *words)
    assert not out.exists()


def _path_cases(tmp_path):
    (tmp_path / "a_file.txt").write_text("not a folder\n")
    (tmp_path / "a_folder").mkdir()
    return tmp_path / "a_file.txt", tmp_path / "a_folder"


@pytest.mark.parametrize(
    "flags, words",
    [
        (["--data", "{folder}"], ["--data", "is a folder", ".txt"]),
        (["--data", "{missing}"], ["--data", "neither a known corpus nor an existing file"]),
        (["--out", "{file}"], ["Cannot create the output folder", "choose another --out"]),
        (["--out", "{file}/run"], ["Cannot create the output folder", "choose another --out"]),
        (["--tensorboard", "{file}"], ["--tensorboard", "is a file"]),
        (["--tensorboard", "{file}/logs"], ["--tensorboard", "is below", "which is a file"]),
    ],
)
def test_train_paths(flags, words, tmp_path, capsys):
    file, folder = _path_cases(tmp_path)
    values = dict(file=file, folder=folder, missing=tmp_path / "missing.txt")
    argv = ["train", *(f.format(**values) for f in flags)]
    if "--out" not in flags:
        argv += ["--out", tmp_path / "new" / "run"]
    code, err, _ = run(argv, capsys)
    assert_one_line(code, err, *words)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_file.txt", "a_folder"]


def _no_training_pairs_corpus(tmp_path):
    """A one-pair Tatoeba file whose pair the split puts outside the training split (found, not assumed)."""
    from seq2seq_keras.data.corpora import load_corpus, split_pairs

    for i in range(200):
        path = tmp_path / "one.txt"
        path.write_text(f"Sentence number {i}.\tFrase número {i}.\n", encoding="utf-8")
        if len(split_pairs(load_corpus(path))[0]) == 0:
            return path
    raise AssertionError("no one-pair corpus without training pairs among 200")


def test_train_failing_after_making_its_folders_removes_them_and_keeps_a_users(tmp_path, capsys):
    """The run folder (and its parents) are made before the corpus is read: a corpus with no training pairs then
    fails, and the folders this call made go again; a folder the user had made stays."""
    corpus = _no_training_pairs_corpus(tmp_path)
    out = tmp_path / "new" / "deeper" / "run"
    code, err, _ = run(["train", "--data", corpus, "--out", out], capsys)
    assert_one_line(code, err, "no training pairs", "raise --limit")
    assert not (tmp_path / "new").exists()
    mine = tmp_path / "mine"
    mine.mkdir()
    code, err, _ = run(["train", "--data", corpus, "--out", mine], capsys)
    assert_one_line(code, err, "no training pairs")
    assert mine.is_dir() and list(mine.iterdir()) == []


def test_train_with_a_named_corpus_that_is_not_on_this_machine_says_how_to_get_it(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("SEQ2SEQ_KERAS_DATA", str(tmp_path / "empty"))
    out = tmp_path / "run"
    code, err, _ = run(["train", "--data", "kor-eng", "--out", out], capsys)
    assert_one_line(code, err, "Corpus 'kor-eng' not found", "download_anki", "SEQ2SEQ_KERAS_DATA")
    assert not out.exists()


def test_train_with_a_malformed_corpus_file_names_the_line(tmp_path, capsys):
    corpus = tmp_path / "bad.txt"
    corpus.write_text("Hello.\tHola.\nno tab on this line\n", encoding="utf-8")
    code, err, _ = run(["train", "--data", corpus, "--out", tmp_path / "run"], capsys)
    assert_one_line(code, err, f"{corpus}, line 2", "tab-separated")
    assert not (tmp_path / "run").exists()


TINY_TRAIN = ["--limit", "100", "--embedding-dim", "8", "--encoder-units", "8", "--batch-size", "32", "--epochs", "2"]


def test_a_resumed_run_says_how_much_it_trained_and_a_repeat_run_that_it_trained_nothing(tmp_path, capsys):
    """A run stopped after epoch 1 of 2 and run again says it trained 1 more epoch and how many the folder now
    has; running it once more trains nothing and says so (not "trained 2 epochs in 0.1 s")."""
    import keras

    from seq2seq_keras.training.config import TrainConfig
    from seq2seq_keras.training.loop import TrainingInterrupted, train
    from seq2seq_keras.training.run_folder import read_state

    class StopAfterFirstEpoch(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            if epoch == 1:
                raise KeyboardInterrupt

    out = tmp_path / "run"
    config = TrainConfig(limit=100, embedding_dim=8, encoder_units=8, batch_size=32, epochs=2)
    with pytest.raises(TrainingInterrupted):
        train(config, out_dir=out, callbacks=[StopAfterFirstEpoch()], verbose=0)
    assert read_state(out)["epochs_completed"] == 1
    code, err, printed = run(["train", *TINY_TRAIN, "--out", out], capsys)
    assert code == 0, err
    summary = next(line for line in printed.splitlines() if line.startswith("trained"))
    assert summary.startswith("trained 1 epoch more in "), summary
    assert f"(resumed after epoch 1; {out} now has 2 of 2)" in summary
    assert len(json.loads((out / "history.json").read_text())["loss"]) == 2

    code, err, printed = run(["train", *TINY_TRAIN, "--out", out], capsys)
    assert code == 0, err
    assert printed.splitlines() == [
        f"{out} already has 2 of 2 epochs; nothing to train (add --restart to train it again from the start, "
        "or pick a new --out)."
    ]


# ---------------------------------------------------------------------- a model path: translate, plot, evaluate, export
def _model_commands(model, tmp_path):
    return {
        "translate": ["translate", "--model", model, "나는 학생이다"],
        "plot": ["plot", "--model", model, "--out", tmp_path / "a.png", "나는 학생이다"],
        "evaluate": ["evaluate", "--model", model, "--out", tmp_path / "report"],
        "export": ["export", "--model", model, "--name", "x", "--base-dir", tmp_path / "saved"],
    }


@pytest.mark.parametrize("command", ["translate", "plot", "evaluate", "export"])
def test_a_model_that_is_no_model_file(command, tmp_path, capsys):
    readme = tmp_path / "README.md"
    readme.write_text("# not a model\n")
    code, err, _ = run(_model_commands(readme, tmp_path)[command], capsys)
    assert_one_line(code, err, f"seq2seq-keras {command}: error: {readme} is not a Keras model", "run folder")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["README.md"]


@pytest.mark.parametrize("command", ["translate", "plot", "evaluate", "export"])
def test_a_model_that_does_not_exist(command, tmp_path, capsys):
    code, err, _ = run(_model_commands(tmp_path / "nothing", tmp_path)[command], capsys)
    assert_one_line(code, err, "No trained model at", "seq2seq-keras train --out")
    assert list(tmp_path.iterdir()) == []


def test_a_damaged_keras_file_is_one_line(tmp_path, capsys):
    damaged = tmp_path / "model.keras"
    damaged.write_bytes(b"PK\x03\x04 not really a zip")
    code, err, _ = run(["translate", "--model", damaged, "x"], capsys)
    assert_one_line(code, err, f"{damaged} could not be read as a Keras model", "train again")


@pytest.fixture(scope="module")
def export_version(tmp_path_factory):
    """A real export of the session's tiny model: ``.../tiny_word/1`` (its run folder recorded)."""
    from test_export import exported_dir

    return exported_dir(tmp_path_factory, "word")


@pytest.mark.parametrize("command", ["translate", "plot", "evaluate", "export"])
@pytest.mark.parametrize("level", ["version folder", "model folder"])
def test_a_savedmodel_given_as_model_says_how_to_query_it(command, level, export_version, tmp_path, capsys):
    """``--model saved_models/demo/1`` (or ``saved_models/demo``): an export, not a run folder; the line says so,
    how to check and query it, and which run folder it came from."""
    path = export_version if level == "version folder" else export_version.parent
    code, err, _ = run(_model_commands(path, tmp_path)[command], capsys)
    assert_one_line(
        code,
        err,
        f"{path} is a SavedModel export for TF Serving, not a run folder",
        f"seq2seq-keras check-servable {export_version}",
        "REST or gRPC",
        "--server",
    )
    recorded = json.loads((export_version / "assets.extra" / "seq2seq_keras_export.json").read_text())["source_model"]
    assert f"--model {recorded}" in err[0]
    assert list(tmp_path.iterdir()) == []


def test_an_unfinished_run_folder_says_to_resume_it(tmp_path, capsys):
    """A run folder with state.json but no model: the library's message (resume with the same command)."""
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "state.json").write_text(json.dumps({"status": "interrupted", "epochs": 4, "epochs_completed": 1}))
    code, err, _ = run(["translate", "--model", run_dir, "x"], capsys)
    assert_one_line(code, err, "unfinished run (1 of 4 epochs", "run the same train command")


# ---------------------------------------------------------------------- the other paths of each command
def test_plot_out_paths(tmp_path, capsys):
    model = tmp_path / "model.keras"
    model.write_bytes(b"")  # exists and ends with .keras: the --out checks come before loading it
    cases = [
        (tmp_path / "pictures", ["--out", "is a folder", "attention.png"]),
        (tmp_path / "missing" / "a.png", ["--out", "does not exist", "create it"]),
        (tmp_path / "a.xyz", ["--out", "cannot write a .xyz", ".png"]),
        (tmp_path / "attention", ["--out", "without an extension", ".png"]),
    ]
    (tmp_path / "pictures").mkdir()
    for out, words in cases:
        code, err, _ = run(["plot", "--model", model, "--out", out, "x"], capsys)
        assert_one_line(code, err, "seq2seq-keras plot: error: ", *words)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.keras", "pictures"]


def test_unk_dictionary_that_does_not_exist(tmp_path, capsys):
    model = tmp_path / "model.keras"
    model.write_bytes(b"")
    for command in (["translate", "--model", model, "x"], ["export", "--model", model, "--name", "n"]):
        code, err, _ = run([*command, "--unk-dictionary", tmp_path / "nope.tsv"], capsys)
        assert_one_line(code, err, "--unk-dictionary", "does not exist", "source<TAB>target")


@pytest.mark.parametrize(
    "extra, words",
    [
        (["--data", "{missing}"], ["--data", "neither a known corpus"]),
        (["--compare", "{missing}"], ["No trained model at", "{missing}"]),
        (["--out", "{file}"], ["--out", "is a file"]),
    ],
)
def test_evaluate_paths(extra, words, tmp_path, capsys):
    model = tmp_path / "model.keras"
    model.write_bytes(b"")
    file = tmp_path / "a_file"
    file.write_text("x")
    values = dict(missing=tmp_path / "missing", file=file)
    argv = ["evaluate", "--model", model, *(e.format(**values) for e in extra)]
    if "--out" not in extra:
        argv += ["--out", tmp_path / "report"]
    code, err, _ = run(argv, capsys)
    assert_one_line(code, err, *(w.format(**values) for w in words))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_file", "model.keras"]


def test_export_base_dir_that_is_a_file(tmp_path, capsys):
    model = tmp_path / "model.keras"
    model.write_bytes(b"")
    code, err, _ = run(["export", "--model", model, "--name", "n", "--base-dir", model], capsys)
    assert_one_line(code, err, "--base-dir", "is a file")


def test_check_servable_paths(tmp_path, capsys):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "model.keras").write_bytes(b"")
    (tmp_path / "empty").mkdir()
    (tmp_path / "file").write_text("x")
    cases = [
        (tmp_path / "missing", ["does not exist", "saved_models/demo/1", "seq2seq-keras export"]),
        (tmp_path / "file", ["is not a folder"]),
        (tmp_path / "empty", ["holds no SavedModel", "saved_models/demo/1", "seq2seq-keras export"]),
        (tmp_path / "run", ["is a run folder, not an export", f"seq2seq-keras export --model {tmp_path / 'run'}"]),
    ]
    for path, words in cases:
        code, err, _ = run(["check-servable", path], capsys)
        assert_one_line(code, err, "seq2seq-keras check-servable: error: ", *words)


def test_check_servable_other_paths(export_version, tmp_path, capsys):
    code, err, _ = run(["check-servable", export_version, "--model", tmp_path / "gone"], capsys)
    assert_one_line(code, err, "No trained model at")
    code, err, _ = run(["check-servable", export_version, "--benchmark", "--benchmark-data", "nope"], capsys)
    assert_one_line(code, err, "--benchmark-data nope", "builtin-ko-en")


# ---------------------------------------------------------------------- check-servable's skipped parts
def test_check_servable_says_why_parity_was_skipped_and_how_to_turn_it_on(tmp_path):
    from seq2seq_keras.serving.check import ServableReport, _parity_model

    report = ServableReport("x")
    assert _parity_model(None, {}, report) == (None, "")
    assert "skipped: the export records no run folder" in report.facts[-1]
    assert "--model RUN_FOLDER" in report.facts[-1]
    gone = str(tmp_path / "gone")
    assert _parity_model(None, {"source_model": gone}, report) == (None, "")
    assert f"skipped: the run folder recorded at export, {gone}, no longer exists" in report.facts[-1]
    assert "--model RUN_FOLDER" in report.facts[-1]


def test_check_servable_no_smoke_says_what_it_skipped(export_version, capsys):
    code, err, printed = run(["check-servable", "--no-smoke", export_version], capsys)
    assert code == 0, err
    assert "parity with the Python API: skipped (--no-smoke; run without it" in printed


def test_every_numeric_flag_is_checked():
    """No int/float flag of any command is left to argparse's bare int()/float() (which take 0 and -1)."""
    from seq2seq_keras.cli.commands import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    bare = [
        f"{name} {action.option_strings[0]}"
        for name, command in sub.choices.items()
        for action in command._actions
        if action.type in (int, float)
    ]
    assert bare == []


def test_config_fields_all_have_a_check_or_choices():
    from seq2seq_keras.training.config import TrainConfig

    unchecked = [
        f.name
        for f in dataclasses.fields(TrainConfig)
        if f.metadata.get("check") is None
        and not f.metadata.get("choices")
        and f.type not in ("bool", "str", "str | None")
    ]
    assert unchecked == []
