"""The ``seq2seq-keras`` command line. Each command has ``--help``.

Commands are registered by ``_add_<command>`` functions below; each one adds a
sub-parser and sets ``func`` to the function that runs it. The command line only
parses, calls the library and prints: ``train``'s flags are generated (:mod:`seq2seq_keras.cli.flags`) from
:class:`~seq2seq_keras.training.TrainConfig`'s fields and the decoding flags of ``translate``,
``export`` and ``evaluate`` from :class:`~seq2seq_keras.decoding.options.DecodingOptions`'
(:class:`~seq2seq_keras.serving.export.ExportSettings`'), every other default is the
library's own (a flag left out is not passed on; the help shows the library's
value), and the work is done in the library (:func:`seq2seq_keras.runs.evaluate_run`, ...).

Start-up: building the parser and ``--help`` import neither TensorFlow nor Keras
(the package is lazy); a command imports what it needs when it runs. Before
TensorFlow loads, :func:`start_tensorflow` lowers its C++ log level and drops the
start-up lines it prints regardless (:mod:`seq2seq_keras.startup`).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time

from ..decoding.options import DecodingOptions
from ..startup import quiet_tensorflow_logging, start_tensorflow
from .checks import (
    CommandError,
    check_data,
    check_export_path,
    check_file_to_read,
    check_file_to_write,
    check_folder_to_write,
    check_model_path,
    removing_new_folders,
)
from .flags import (
    ArgumentParser,
    HelpFormatter,
    add_config_flags,
    add_decoding_flags,
    checked,
    given_decoding_options,
    integer,
    library_default,
    real,
    train_config_from_args,
)

quiet_tensorflow_logging()  # before TensorFlow is imported (nothing above imports it)


def _decoding_check(name: str, flag: str):
    """The argparse ``type`` of a flag that is a :class:`DecodingOptions` field by another route (plot's and
    evaluate's own flags): the field's check."""
    return checked(int, DecodingOptions.__dataclass_fields__[name].metadata["check"], flag)


def _command(sub, name: str, **kwargs) -> argparse.ArgumentParser:
    return sub.add_parser(name, formatter_class=HelpFormatter, **kwargs)


def _given(args, *names: str) -> dict:
    """The options among ``names`` the user gave (flags left out are None): the library applies its defaults."""
    return {name: getattr(args, name) for name in names if getattr(args, name) is not None}


# ---------------------------------------------------------------------- train
def _add_train(sub):
    p = _command(
        sub,
        "train",
        help="train a translation model",
        description=(
            "Train a Seq2Seq model with model.fit and save it (model.keras, config.json, history.json) to --out. "
            "Training state is checkpointed in --out (atomically, at every epoch end and on Ctrl-C): if the run "
            "is killed, the same command resumes it. Exit status: 0 done, 1 loss became NaN/inf or a checkpoint "
            "could not be written, 2 bad request (e.g. --out holds a run with other settings), 130 Ctrl-C, "
            "143 SIGTERM (state saved in both cases)."
        ),
    )
    add_config_flags(p)
    p.add_argument("--out", required=True, help="run folder to write; an interrupted run there is resumed")
    p.add_argument("--restart", action="store_true", help="discard the training state in --out and start over")
    p.add_argument(
        "--checkpoint-every",
        type=integer("--checkpoint-every", 1),
        default=None,
        metavar="STEPS",
        help="also checkpoint every STEPS batches (a kill then loses at most STEPS); default: each epoch end",
    )
    p.set_defaults(func=_run_train)


def _run_train(args):
    import signal
    import threading

    received: list[int] = []  # every SIGINT/SIGTERM, kept even if a library swallows its KeyboardInterrupt

    def on_signal(signum, frame):  # Ctrl-C, or a polite kill (docker stop, Slurm preemption): save and stop
        received.append(signum)
        raise KeyboardInterrupt

    in_main = threading.current_thread() is threading.main_thread()
    handled = (signal.SIGINT, signal.SIGTERM)
    previous = {s: signal.signal(s, on_signal) for s in handled} if in_main else {}
    try:
        return _train_command(args, received)
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def _train_command(args, received: list) -> int | None:
    try:
        config = train_config_from_args(args)  # the checks across settings (the Transformer's sizes)
    except (TypeError, ValueError) as e:
        raise CommandError(_as_flags(str(e))) from None
    check_data(config.data)  # --out: the run folder's own checks (OutputFolderError) say what is wrong with it
    if config.tensorboard is not None:
        check_folder_to_write(config.tensorboard, "--tensorboard")
    with removing_new_folders(args.out, config.tensorboard) as outcome:
        code = _train(args, config, received)
        outcome["failed"] = bool(code)
    return code


def _train(args, config, received: list) -> int | None:
    """Train ``config`` into ``args.out`` and say what happened (how many epochs this call trained)."""
    import signal

    start_tensorflow()
    if received:  # a Ctrl-C during start-up whose KeyboardInterrupt did not get out of it
        raise KeyboardInterrupt

    from ..data.corpora import CorpusFormatError
    from ..training.checkpointing import CheckpointError
    from ..training.loop import InterruptGuard, NonFiniteLossError, TrainingInterrupted, train
    from ..training.run_folder import TrainingError, read_state

    before = None if args.restart else _read_state_or_none(read_state, args.out)
    start = time.perf_counter()
    try:
        _, history = train(
            config,
            out_dir=args.out,
            restart=args.restart,
            checkpoint_every=args.checkpoint_every,
            callbacks=[InterruptGuard(received)],
        )
    except TrainingInterrupted as e:
        print(flush=True)  # end the progress bar's line
        print(f"seq2seq-keras train: {e}", file=sys.stderr)
        return 143 if signal.SIGTERM in received else 130
    except (NonFiniteLossError, CheckpointError) as e:
        print(flush=True)
        print(f"seq2seq-keras train: error: {e}", file=sys.stderr)
        return 1
    except (TrainingError, FileNotFoundError, CorpusFormatError) as e:  # the folder, the run in it, the corpus
        raise CommandError(str(e)) from None
    h = history.history
    total, done_before = len(h.get("loss", [])), _epochs_done(before)
    if before is not None and before.get("status") == "finished":
        # train() said so ("RUN already has 6 of 6 epochs; nothing to train ..."); no summary of work not done
        return None
    seconds = time.perf_counter() - start
    if done_before:
        summary = (
            f"trained {_epochs(total - done_before)} more in {seconds:.1f} s (resumed after epoch {done_before}; "
            f"{args.out} now has {total} of {config.epochs})"
        )
    else:
        summary = f"trained {_epochs(total)} in {seconds:.1f} s"
    if h.get("accuracy"):
        summary += f"; train token accuracy {h['accuracy'][-1]:.3f}"
    if h.get("val_accuracy"):
        summary += f", validation token accuracy {h['val_accuracy'][-1]:.3f}"
    print(summary)
    print(f"saved to {args.out}")
    if args.tensorboard:
        print(f"TensorBoard logs in {args.tensorboard}; view them with: tensorboard --logdir {args.tensorboard}")


def _as_flags(message: str) -> str:
    """A :class:`TrainConfig` message with its field names written as the ``train`` flags (``model_dim`` ->
    ``--model-dim``)."""
    import re

    from ..training.config import TrainConfig

    names = "|".join(f.name for f in dataclasses.fields(TrainConfig))
    return re.sub(rf"\b({names})\b", lambda m: "--" + m.group(1).replace("_", "-"), message)


def _read_state_or_none(read_state, out: str) -> dict | None:
    """``out``'s ``state.json`` before training, or ``None`` (no run there yet, or a state ``train`` will refuse
    or replace itself)."""
    try:
        return read_state(out) if os.path.isdir(out) else None
    except (OSError, ValueError):
        return None


def _epochs(n: int) -> str:
    return f"{n} epoch{'s' * (n != 1)}"


def _epochs_done(state: dict | None) -> int:
    """Whole epochs a run folder's state says were done before this call (0: none, or no state)."""
    return int((state or {}).get("epochs_completed") or 0)


# ---------------------------------------------------------------------- decoding options
def _decoding_options(args, options_class) -> dict:
    """The decoding flags the user gave, ``--unk-dictionary FILE`` read into its mapping."""
    given = given_decoding_options(args, options_class)
    if "unk_dictionary" in given:
        from ..decoding.unknown_words import read_unk_dictionary

        try:
            given["unk_dictionary"] = read_unk_dictionary(given["unk_dictionary"])
        except OSError as e:
            raise CommandError(f"--unk-dictionary {args.unk_dictionary}: {e.strerror or e}") from None
        except ValueError as e:
            raise CommandError(str(e)) from None
    return given


# ---------------------------------------------------------------------- translate
def _add_translate(sub):
    p = _command(
        sub,
        "translate",
        help="translate sentences with a trained model",
        description="Translate sentences (arguments, or one per line on stdin with '-') with greedy search, "
        "beam search or sampling.",
    )
    p.add_argument("--model", required=True, help="run folder written by 'train' (or a .keras file)")
    add_decoding_flags(p, DecodingOptions)
    p.add_argument("--attention", action="store_true", help="also print the attention matrix")
    p.add_argument("sentences", nargs="+", help="sentences to translate; '-' reads stdin")
    p.set_defaults(func=_run_translate)


def _sentences(args) -> list[str]:
    """The sentence arguments, '-' replaced by stdin's lines (read as bytes and decoded leniently:
    invalid UTF-8 becomes U+FFFD instead of a crash)."""
    sentences: list[str] = []
    for s in args.sentences:
        if s == "-":
            sentences.extend(line.decode("utf-8", errors="replace").rstrip("\r\n") for line in sys.stdin.buffer)
        else:
            sentences.append(s)
    return sentences


def _load_model(path: str):
    """The model of a run folder (or ``.keras`` file) checked by :func:`check_model_path`; a folder without a
    model, or a file Keras cannot read, is a :class:`CommandError`."""
    import zipfile

    from ..training.run_folder import load_model

    try:
        return load_model(path)
    except FileNotFoundError as e:
        raise CommandError(str(e)) from None
    except (ValueError, OSError, zipfile.BadZipFile) as e:  # Keras' "File format not supported", a damaged zip
        reason = str(e).split(". ")[0].splitlines()[0] if str(e) else type(e).__name__
        raise CommandError(
            f"{path} could not be read as a Keras model ({reason}): pass a run folder written by "
            "'seq2seq-keras train', or train again if the file is damaged."
        ) from None


def _run_translate(args):
    check_model_path(args.model)
    if args.unk_dictionary is not None:
        check_file_to_read(args.unk_dictionary, "--unk-dictionary", "source<TAB>target lines")
    start_tensorflow()
    sentences = _sentences(args)
    model = _load_model(args.model)
    options = _decoding_options(args, DecodingOptions)
    try:
        translations = model.translate(sentences, **options)
    except (ValueError, TypeError) as e:
        raise CommandError(str(e)) from None
    for t in translations:
        _print_translation(t, args.attention)


def _print_translation(t, attention: bool) -> None:
    """``source -> text`` (stdout), a note on stderr when the model read source words as ``[UNK]``, and with
    ``attention`` the matrix: an unknown source word's column ends with ``?``, a copied output word's row with ``*``."""
    print(f"{t.source} -> {t.text}", flush=True)
    _print_unknown_words(t)
    if not attention or t.attention is None:
        return
    width = max([len(x) for x in t.target_tokens] + [5])
    words = iter(t.unknown_source_words)
    unknown = t.unknown_source or [False] * len(t.source_tokens)
    columns = [f"{next(words, s)[:7]}?" if u else s[:8] for s, u in zip(t.source_tokens, unknown)]
    print(" " * (width + 1) + " " + " ".join(f"{c:>8}" for c in columns))
    for tok, row, copied in zip(t.target_tokens, t.attention, t.replaced or [False] * len(t.target_tokens)):
        label = f"{tok}*" if copied else tok
        print(f"{label:>{width + 1}} " + " ".join(f"{w:8.2f}" for w in row))
    keys = ["? = outside the model's vocabulary, read as [UNK]"] if any(unknown) else []
    keys += ["* = an [UNK] output replaced by a source word"] if any(t.replaced) else []
    if keys:
        print(" " * (width + 1) + " (" + "; ".join(keys) + ")")


def _print_unknown_words(t) -> None:
    """The line saying which source words the model never saw (:meth:`Translation.unknown_words_note`), if any.

    On stderr, right after the sentence's line (stdout is flushed first): stdout stays one line per sentence for
    scripts. Only the Python API knows them: a TF Serving answer (``plot --server``) does not say, and nothing is
    printed.
    """
    note = t.unknown_words_note()
    if note:
        print(f"  note: {note}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------- plot
def _add_model_or_server(p: argparse.ArgumentParser, server_help: str) -> None:
    """``--model RUN`` or ``--server URL`` (one of them), with ``--model-name`` and ``--version`` for the server."""
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--model", help="run folder written by 'train' (or a .keras file)")
    where.add_argument("--server", help=server_help)
    p.add_argument("--model-name", help="served model name (with --server)")
    p.add_argument(
        "--version",
        type=integer("--version", 0),
        default=None,
        help="served model version (with --server; default: latest)",
    )


def _add_plot(sub):
    p = _command(
        sub,
        "plot",
        help="save the attention heatmap of sentences (local model or TF Serving)",
        description="Translate sentences with a run folder (--model) or a TF Serving server (--server) and save "
        "their attention heatmap: one sentence per figure, several as a grid. Hangul renders with NanumGothic.",
    )
    _add_model_or_server(p, "TF Serving: http://HOST:8501 (REST) or HOST:8500 / grpc://HOST:8500 (gRPC)")
    p.add_argument(
        "--method", choices=("greedy", "beam"), default="greedy", help="decoding with --model (default: %(default)s)"
    )
    p.add_argument(
        "--max-length",
        type=_decoding_check("max_length", "--max-length"),
        default=None,
        help="cap on output tokens (with --model; default: {decoding.options.DEFAULT_MAX_LENGTH})",
    )
    p.add_argument(
        "--ncols",
        type=integer("--ncols", 1),
        help="grid columns for several sentences (default: {plotting.plot_attention_grid(ncols)})",
    )
    heads = p.add_mutually_exclusive_group()
    heads.add_argument(
        "--heads",
        action="store_true",
        help="one sentence: every layer's and head's cross-attention as a layers x heads grid (with --model)",
    )
    heads.add_argument(
        "--self-attention",
        action="store_true",
        help="one sentence: a Transformer encoder's self-attention, layers x heads (with --model)",
    )
    p.add_argument("--out", required=True, help="image to write (.png; .pdf/.svg also work)")
    p.add_argument("sentences", nargs="+", help="sentences to translate; '-' reads stdin")
    p.set_defaults(func=_run_plot)


def _server_translate(args, sentences):
    if not args.model_name:
        raise CommandError("--server needs --model-name (the name TF Serving serves the model under).")
    url = args.server
    try:
        from ..serving.client import GrpcClient, RestClient, ServingError

        if url.startswith(("http://", "https://")):
            client = RestClient(url, args.model_name, version=args.version)
        else:
            client = GrpcClient(url.removeprefix("grpc://"), args.model_name, version=args.version)
    except ImportError as e:
        raise CommandError(f"--server needs the serving extras ({e}): pip install 'seq2seq_keras[serving]'") from None
    try:
        return client.translate(sentences, signature_name="translate_with_attention")
    except (ServingError, OSError) as e:  # connection refused, unknown model, ...: a message, not a traceback
        raise CommandError(f"TF Serving at {url} (model {args.model_name!r}) did not translate: {e}") from None


_IMAGE_FORMATS = {"png": "PNG", "pdf": "PDF", "svg": "SVG", "jpg": "JPEG", "jpeg": "JPEG", "eps": "EPS"}


def _run_plot(args):
    if args.model is not None:
        check_model_path(args.model)
    check_file_to_write(args.out, "--out", _IMAGE_FORMATS)
    sentences = _sentences(args)
    if (args.heads or args.self_attention) and (args.server or len(sentences) != 1):
        raise CommandError("--heads and --self-attention plot one sentence of a local --model; pass exactly one.")
    if args.server:
        translations = _server_translate(args, sentences)
    else:
        start_tensorflow()
        model = _load_model(args.model)
        if not model.has_attention:
            raise CommandError(f"{args.model} was trained with --attention none: it has no attention weights to plot.")
        if args.heads or args.self_attention:
            return _plot_heads(args, model, sentences)
        try:
            translations = model.translate(sentences, method=args.method, **_given(args, "max_length"))
        except (ValueError, TypeError) as e:
            raise CommandError(str(e)) from None
    for t in translations:
        print(f"{t.source} -> {t.text}", flush=True)
        _print_unknown_words(t)
    from ..plotting import plot_attention, plot_attention_grid

    try:
        if len(translations) == 1:
            plot_attention(translations[0], save=args.out)
        else:
            plot_attention_grid(translations, save=args.out, **_given(args, "ncols"))
    except (ValueError, OSError) as e:
        raise CommandError(str(e)) from None
    what = f"of {sentences[0]!r}" if len(sentences) == 1 else f"of {len(sentences)} sentences"
    print(f"attention heatmap {what} saved to {args.out}")


def _plot_heads(args, model, sentences):
    """``plot --heads`` / ``--self-attention``: the layers x heads grids of one sentence (plotting.py)."""
    import tensorflow as tf

    from ..decoding.options import DEFAULT_MAX_LENGTH
    from ..decoding.pipeline import encode_source, translate_graph
    from ..plotting import plot_attention_heads, plot_self_attention

    text = tf.constant(sentences)
    if args.self_attention:
        if getattr(model, "architecture", "rnn") != "transformer":
            raise CommandError(f"{args.model} is a recurrent model: --self-attention needs --architecture transformer.")
        ids, tokens, length = encode_source(model, text)
        n = int(length[0])
        weights = model.encoder.self_attention_weights(ids).numpy()[0]
        plot_self_attention([t.decode("utf-8") for t in tokens.numpy()[0][:n]], weights, save=args.out)
    else:
        out = translate_graph(model, text, tf.constant(args.max_length or DEFAULT_MAX_LENGTH), method=args.method)
        row = {k: v.numpy()[0] for k, v in out.items() if not k.startswith("beams_")}
        row.update(source=sentences[0], attention_heads=model.attention_heads(text, out)[0])
        print(f"{sentences[0]} -> {row['translation'].decode('utf-8')}")
        plot_attention_heads(row, save=args.out)
    print(f"{'self' if args.self_attention else 'cross'}-attention heads of {sentences[0]!r} saved to {args.out}")
    return 0


# ---------------------------------------------------------------------- evaluate
def _limit_value(text: str) -> int | str:
    if text == "all":
        return text
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: give a positive number of pairs, or 'all'")
    return value


def _add_evaluate(sub):
    p = _command(
        sub,
        "evaluate",
        help="BLEU/chrF (greedy and beam), BLEU by sentence length, attention vs. gold alignment",
        description="Evaluate a run on the test split of its corpus and write report.md, report.json and PNG plots "
        "to --out. With --compare RUN2 (e.g. the same budget with --attention none) the BLEU-by-length plot has "
        "one line per model. On builtin-ko-en the attention is also scored against the gold word alignment.",
    )
    p.add_argument("--model", required=True, help="run folder written by 'train'")
    p.add_argument("--data", default=None, help="corpus or .txt path (default: the run's own, from config.json)")
    p.add_argument(
        "--limit",
        type=_limit_value,
        default=None,
        help="pairs to load before the split, or 'all' "
        "(default: the run's own limit); the split hashes the English side, so a larger value gives a "
        "larger test split that still never overlaps the run's training pairs",
    )
    p.add_argument("--split", choices=("test", "validation"), default="test", help="(default: %(default)s)")
    p.add_argument(
        "--max-sentences",
        type=integer("--max-sentences", 1),
        default=None,
        help="evaluate only the first N pairs of the split",
    )
    p.add_argument("--compare", default=None, help="a second run folder for the length-bucket comparison")
    p.add_argument(
        "--beam-width",
        type=integer("--beam-width", 0),
        help="beam width; 0 skips beam search (default: {evaluation.scores.evaluate(beam_width)})",
    )
    p.add_argument(
        "--buckets",
        metavar="EDGES",
        help="source-length bucket edges in words (default: {evaluation.scores.DEFAULT_BUCKET_EDGES})",
    )
    p.add_argument(
        "--batch-size",
        type=_decoding_check("batch_size", "--batch-size"),
        help="sentences per batch (default: {evaluation.scores.evaluate(batch_size)})",
    )
    add_decoding_flags(p, DecodingOptions, ["max_length", "coverage_penalty"])
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument(
        "--robustness",
        action="store_true",
        help="instead: the robustness evaluation (test pairs with names/numbers swapped for unseen ones, "
        "the longest test sentences and concatenations of 2-3 test pairs; copy rate, [UNK] rate, BLEU/chrF "
        "and repetition rate), with and without unknown-word replacement and n-gram blocking; writes "
        "robustness.md and robustness.json to --out",
    )
    p.add_argument("--out", required=True, help="report folder to write")
    p.set_defaults(func=_run_evaluate)


def _run_evaluate(args):
    check_model_path(args.model)
    if args.compare is not None and not args.robustness:
        check_model_path(args.compare, "--compare")
    if args.data is not None:
        check_data(args.data)
    check_folder_to_write(args.out, "--out")
    with removing_new_folders(args.out):
        return _evaluate(args)


def _evaluate(args):
    start_tensorflow()
    from ..evaluation.scores import check_bucket_edges
    from ..runs import evaluate_run, evaluate_run_robustness, load_run_split

    options = _given(args, "beam_width", "batch_size", "max_length")
    if args.buckets is not None:
        try:
            options["edges"] = check_bucket_edges([x for x in args.buckets.split(",") if x.strip()])
        except ValueError:
            raise CommandError(f"--buckets {args.buckets!r}: give increasing whole numbers, e.g. 5,10,15,20.") from None
    try:
        run = load_run_split(
            args.model,
            data=args.data,
            limit=args.limit,
            split=args.split,
            max_sentences=args.max_sentences,
            compare=None if args.robustness else args.compare,
        )
    except (FileNotFoundError, ValueError) as e:
        raise CommandError(str(e)) from None
    if args.robustness:
        from ..evaluation.robustness import robustness_table

        options.pop("edges", None)
        try:
            results, path = evaluate_run_robustness(
                run, args.out, **options, **_given(args, "coverage_penalty"), log=lambda line: print(line, flush=True)
            )
        except ValueError as e:
            raise CommandError(str(e)) from None
        print(robustness_table(results))
        print(f"report: {path}")
        return
    print(f"evaluating {args.model} on {run.pairs.name}: {len(run.pairs)} pairs (of {run.loaded} loaded)")
    try:
        report, paths = evaluate_run(
            run,
            args.out,
            progress=not args.no_progress,
            **options,
            beam_options=_given(args, "coverage_penalty") or None,
        )
    except ValueError as e:
        raise CommandError(str(e)) from None
    _print_evaluation(report)
    print(f"report written to {paths['report.md']} (and report.json, {len(paths) - 2} plots)")


def _print_evaluation(report) -> None:
    for method, s in report["scores"].items():
        if "error" in s:
            print(f"{method}: {s['error']}")
        else:
            print(f"{method}: BLEU {s['bleu']:.2f}  chrF {s['chrf']:.2f}")
    if "compare" in report:
        c = report["compare"]
        print(f"{c['label']} (greedy): BLEU {c['greedy']['bleu']:.2f}  chrF {c['greedy']['chrf']:.2f}")
    if "alignment" in report:
        a = report["alignment"]
        print(
            f"alignment AER: attention {a['attention']['aer']:.3f}, uniform {a['uniform']['aer']:.3f}, "
            f"diagonal {a['diagonal']['aer']:.3f} (lower is better)"
        )


# ---------------------------------------------------------------------- export
def _add_export(sub):
    p = _command(
        sub,
        "export",
        help="export a trained model as a SavedModel for TensorFlow Serving",
        description="Write BASE_DIR/NAME/<version>/ (next integer version by default; written to a hidden "
        "folder and renamed into place) with the signatures serving_default, translate_with_attention and "
        "beam_search, and rewrite BASE_DIR/models.config. Exit status: 0 done, 2 bad request.",
    )
    p.add_argument("--model", required=True, help="run folder written by 'train' (or a .keras file)")
    p.add_argument("--name", required=True, help="model name clients ask the server for (letters, digits, _ - .)")
    p.add_argument(
        "--base-dir",
        metavar="BASE_DIR",
        help="folder holding the served models (default: {serving.export.DEFAULT_BASE_DIR})",
    )
    p.add_argument(
        "--version", type=integer("--version", 0), default=None, help="version number (default: the next integer)"
    )
    from ..serving.export import ExportSettings

    add_decoding_flags(
        p, ExportSettings, [f.name for f in dataclasses.fields(ExportSettings) if f.metadata["exported"]]
    )
    p.add_argument(
        "--serving-root",
        help="where the server sees --base-dir, for models.config "
        "(default: {serving.export.DEFAULT_SERVING_ROOT}, the docker mount)",
    )
    p.add_argument(
        "--xla",
        action="store_true",
        help="also write serving_default_xla and translate_with_attention_xla (greedy decode loop "
        "compiled by XLA); TF Serving needs --xla_cpu_compilation_enabled=true for them "
        "(saved_models/serve.sh --xla)",
    )
    p.set_defaults(func=_run_export)


def _run_export(args):
    check_model_path(args.model)
    if args.unk_dictionary is not None:
        check_file_to_read(args.unk_dictionary, "--unk-dictionary", "source<TAB>target lines")
    if args.base_dir is not None:
        check_folder_to_write(args.base_dir, "--base-dir")
    with removing_new_folders(args.base_dir):
        return _export(args)


def _export(args):
    start_tensorflow()
    from ..runs import export_run
    from ..serving.export import MODELS_CONFIG, ExportSettings

    try:
        settings = ExportSettings(**_decoding_options(args, ExportSettings))
        path = export_run(
            args.model,
            args.name,
            settings=settings,
            xla=args.xla,
            **_given(args, "base_dir", "version", "serving_root"),
        )
    except (FileNotFoundError, FileExistsError, ValueError, TypeError) as e:
        raise CommandError(str(e)) from None
    print(f"exported {args.model} to {path}")
    print(f"models.config: {path.parent.parent / MODELS_CONFIG}; check it with: seq2seq-keras check-servable {path}")


# ---------------------------------------------------------------------- check-servable
def _add_check_servable(sub):
    p = _command(
        sub,
        "check-servable",
        help="check that an exported SavedModel is servable by TensorFlow Serving (no server needed)",
        description="Report tags and signatures, check that outputs are dense, batch-major and not float16, then, in a "
        "fresh Python process that cannot import Keras or this package: audit every op (core TensorFlow or "
        "tensorflow-text ops shipped in TF Serving; no PyFunc), load the SavedModel with TF Serving's own loader "
        "(TensorFlow's C API: TF_LoadSessionFromSavedModel) and run every signature with TF_SessionRun, replay the "
        "warm-up requests, run the same calls through tf.saved_model.load and compare; finally compare with the "
        "Python model's translations (tokens identical, attention within 1e-5). Exit status: 0 servable, 1 not "
        "servable (reasons printed), 2 bad request.",
    )
    p.add_argument(
        "path",
        help="an exported version folder (saved_models/demo/1), or a model folder (saved_models/demo: its latest version)",
    )
    p.add_argument(
        "--no-smoke",
        action="store_true",
        help="only check the files and signatures (skip the fresh process: loaders, warm-up, parity)",
    )
    p.add_argument(
        "--model",
        default=None,
        help="run folder (or .keras file) to compare translations with (default: the one recorded at export)",
    )
    p.add_argument(
        "--timeout",
        type=real("--timeout", above=0),
        help="seconds allowed for the fresh process "
        "(default: {serving.check.check_servable(timeout)}; --benchmark: at least {serving.check.benchmark_servable(timeout)})",
    )
    p.add_argument(
        "--benchmark",
        action="store_true",
        help="also time it through TF Serving's loader (fresh process, C API): 1-sentence latency "
        "(median, p90) and sentences/s at batch 64, greedy (serving_default) and beam_search",
    )
    p.add_argument(
        "--benchmark-data",
        default="builtin-ko-en",
        help="corpus whose source sentences are timed (default: %(default)s)",
    )
    p.set_defaults(func=_run_check_servable)


def _run_check_servable(args):
    check_export_path(args.path)
    if args.model is not None:
        check_model_path(args.model)
    if args.benchmark:
        check_data(args.benchmark_data, "--benchmark-data")
    start_tensorflow()
    from ..serving.check import check_servable

    report = check_servable(args.path, smoke=not args.no_smoke, model=args.model, **_given(args, "timeout"))
    print(report.format())
    if args.no_smoke:
        print(
            "TF Serving's loader, the warm-up requests and parity with the Python API: skipped (--no-smoke; "
            "run without it to check them)"
        )
    if not report.ok:
        return 1
    args.path = report.path
    if args.benchmark:
        from ..data.corpora import load_corpus
        from ..serving.check import benchmark_servable

        try:
            sentences = list(load_corpus(args.benchmark_data, limit=640).source)
        except (FileNotFoundError, ValueError) as e:
            raise CommandError(str(e)) from None
        longer = (
            {}
            if args.timeout is None
            else {"timeout": max(args.timeout, library_default("serving.check.benchmark_servable(timeout)"))}
        )
        timings = benchmark_servable(args.path, sentences, **longer)
        for signature, t in timings.items():
            print(
                f"{signature} (TF Serving's loader): 1 sentence {t['latency_median_ms']:.1f} ms median, {t['latency_p90_ms']:.1f} ms p90; "
                f"batch of 64: {t['sentences_per_second']:.0f} sentences/s"
            )
    return 0


# ---------------------------------------------------------------------- explore
def _add_explore(sub):
    p = _command(
        sub,
        "explore",
        help="a web page to type sentences and point at their attention (local model or TF Serving)",
        description="Serve the attention explorer (needs the explore extra: pip install 'seq2seq_keras[explore]'): "
        "type a sentence, see its translation, hover an output word to light up the source words it attended to, "
        "with the heatmap, beam hypotheses and decoding controls. Translates with a run folder (--model, the Python "
        "API) or a running TF Serving (--server URL --model-name NAME, its REST API: what the deployed SavedModel "
        "answers). Serves until Ctrl-C, on 127.0.0.1 unless --host says otherwise.",
    )
    _add_model_or_server(p, "TF Serving's REST API: http://HOST:8501")
    p.add_argument(
        "--timeout",
        type=real("--timeout", above=0),
        default=None,
        metavar="SECONDS",
        help="with --server: seconds to wait for an answer before the page says the server is slow "
        "(default: {explorer.DEFAULT_TIMEOUT})",
    )
    p.add_argument(
        "--max-source-length",
        type=_decoding_check("max_source_length", "--max-source-length"),
        default=None,
        help="with --server: the export's cap on source tokens, which the page states "
        "(default: {decoding.options.DEFAULT_MAX_SOURCE_LENGTH}, export's default)",
    )
    p.add_argument(
        "--host",
        default=None,
        help="address to listen on (default: {explorer.DEFAULT_HOST}, this machine only; 0.0.0.0 opens it to the network)",
    )
    p.add_argument("--port", type=integer("--port", 1), default=None, help="port (default: {explorer.DEFAULT_PORT})")
    p.add_argument(
        "--sentence", default=None, help="the sentence the page opens with (default: {explorer.DEFAULT_SENTENCE})"
    )
    p.set_defaults(func=_run_explore)


def _run_explore(args):
    from .. import explorer

    if args.model is not None:
        check_model_path(args.model)
        if args.model_name or args.version is not None or args.timeout is not None:
            raise CommandError("--model-name, --version and --timeout go with --server, not --model.")
    elif not args.server.startswith(("http://", "https://")):
        raise CommandError(f"--server {args.server}: give TF Serving's REST address, e.g. http://localhost:8501.")
    elif not args.model_name:
        raise CommandError("--server needs --model-name (the name TF Serving serves the model under).")
    if args.port is not None and args.port > 65535:
        raise CommandError(f"--port {args.port}: a port is at most 65535.")
    try:
        explorer.require_gradio()
    except explorer.ExplorerError as e:
        raise CommandError(str(e)) from None
    if args.model is not None:
        start_tensorflow()
        backend = explorer.LocalBackend(_load_model(args.model), args.model)
    else:
        try:
            backend = explorer.RestBackend(
                args.server, args.model_name, args.version, **_given(args, "timeout", "max_source_length")
            )
        except ImportError as e:
            raise CommandError(
                f"--server needs the serving extras ({e}): pip install 'seq2seq_keras[serving]'"
            ) from None
    host = args.host or explorer.DEFAULT_HOST
    port = args.port or explorer.DEFAULT_PORT
    print(f"attention explorer on {backend.describe()}", flush=True)
    try:
        explorer.launch(backend, host, port, **_given(args, "sentence"))
    except OSError as e:  # the port is taken, the address is not this machine's
        raise CommandError(f"cannot serve on {host}:{port}: {e}. Pick another --port.") from None
    return 0


# ---------------------------------------------------------------------- main
COMMANDS = [_add_train, _add_translate, _add_plot, _add_evaluate, _add_export, _add_check_servable, _add_explore]


def build_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(
        prog="seq2seq-keras",
        description="Sequence-to-sequence translation with attention: train, translate, export, serve.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for add in COMMANDS:
        add(sub)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        result = args.func(args)
    except CommandError as e:  # one line, whatever the library's message holds
        print(f"seq2seq-keras {args.command}: error: {' '.join(str(e).split())}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"seq2seq-keras {args.command}: interrupted", file=sys.stderr)
        return 130
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
