"""The ``seq2seq-keras`` command line. Each command has ``--help``.

Commands are registered by ``_add_<command>`` functions below; each one adds a
sub-parser and sets ``func`` to the function that runs it.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


class CommandError(Exception):
    """An error for the user: printed without a traceback, exit status 2."""


# ---------------------------------------------------------------------- train
def _add_train(sub):
    p = sub.add_parser(
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
    _add_config_flags(p)
    p.add_argument("--out", required=True, help="run folder to write; an interrupted run there is resumed")
    p.add_argument("--restart", action="store_true", help="discard the training state in --out and start over")
    p.add_argument("--checkpoint-every", type=int, default=None, metavar="STEPS",
                   help="also checkpoint every STEPS batches (a kill then loses at most STEPS); default: each epoch end")
    p.set_defaults(func=_run_train)


def _add_config_flags(parser) -> None:
    """One flag per :class:`~seq2seq_keras.config.TrainConfig` field: its name, type, default and help."""
    import dataclasses
    import typing

    from .config import TrainConfig

    types = typing.get_type_hints(TrainConfig)
    for field in dataclasses.fields(TrainConfig):
        meta, flag = field.metadata, "--" + field.name.replace("_", "-")
        help_text = meta.get("help", "")
        if types[field.name] is bool:
            negative = field.default is True
            parser.add_argument(meta.get("flag", f"--no-{field.name.replace('_', '-')}" if negative else flag),
                                dest=field.name, action="store_false" if negative else "store_true",
                                default=field.default, help=help_text)
            continue
        kind = next(t for t in typing.get_args(types[field.name]) or (types[field.name],) if t is not type(None))
        if field.default is not None:
            help_text += " (default: %(default)s)"
        parser.add_argument(meta.get("flag", flag), *meta.get("aliases", ()), dest=field.name, type=kind,
                            default=field.default,
                            choices=meta.get("choices"), metavar=meta.get("metavar"), help=help_text)


def _train_config_from_args(args):
    """The :class:`TrainConfig` of parsed ``train`` flags (``zero_is_none`` fields: 0 -> None)."""
    import dataclasses

    from .config import TrainConfig

    values = {f.name: getattr(args, f.name) for f in dataclasses.fields(TrainConfig)}
    for f in dataclasses.fields(TrainConfig):
        if f.metadata.get("zero_is_none") and not values[f.name]:
            values[f.name] = None
    return TrainConfig(**values)


def _run_train(args):
    import signal
    import threading

    from .checkpointing import CheckpointError
    from .training import NonFiniteLossError, OutputFolderError, RunMismatchError, TrainingInterrupted, train

    config = _train_config_from_args(args)
    start = time.perf_counter()
    terminated = []

    def on_sigterm(signum, frame):  # a polite kill (docker stop, Slurm preemption): save like Ctrl-C
        terminated.append(signum)
        raise KeyboardInterrupt

    in_main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, on_sigterm) if in_main else None
    try:
        _, history = train(config, out_dir=args.out, restart=args.restart, checkpoint_every=args.checkpoint_every)
    except TrainingInterrupted as e:
        print(flush=True)  # end the progress bar's line
        print(f"seq2seq-keras train: {e}", file=sys.stderr)
        return 143 if terminated else 130
    except (NonFiniteLossError, CheckpointError) as e:
        print(flush=True)
        print(f"seq2seq-keras train: error: {e}", file=sys.stderr)
        return 1
    except (OutputFolderError, RunMismatchError) as e:
        raise CommandError(str(e)) from None
    finally:
        if in_main:
            signal.signal(signal.SIGTERM, previous)
    h = history.history
    summary = f"trained {len(h.get('loss', []))} epochs in {time.perf_counter() - start:.1f} s"
    if h.get("accuracy"):
        summary += f"; train token accuracy {h['accuracy'][-1]:.3f}"
    if h.get("val_accuracy"):
        summary += f", validation token accuracy {h['val_accuracy'][-1]:.3f}"
    print(summary)
    print(f"saved to {args.out}")
    if args.tensorboard:
        print(f"TensorBoard logs in {args.tensorboard}; view them with: tensorboard --logdir {args.tensorboard}")


# ---------------------------------------------------------------------- real-world decoding options
def _add_real_world_flags(p, export: bool = False):
    """--no-replace-unk, --unk-dictionary and n-gram blocking (translate, export)."""
    p.add_argument("--no-replace-unk", dest="replace_unk", action="store_false",
                   help="keep [UNK] in the output instead of copying the source word under the attention argmax "
                   "(Luong et al. 2015; replacement is on by default)")
    p.add_argument("--no-copy-unknown-names", dest="copy_unknown_names", action="store_false",
                   help="do not copy an unknown source name or number (leading capital or digit) over the output "
                   "word attending to it most when the model did not say [UNK] (copying is on by default)")
    p.add_argument("--unk-dictionary", default=None, metavar="FILE",
                   help="source<TAB>target lines looked up before copying an unknown word (e.g. a phrase table)")
    if export:
        p.add_argument("--block-ngram-repeat", type=int, default=None, metavar="N",
                       help="never repeat an N-gram in the greedy signatures (default: 0, exact greedy)")
        p.add_argument("--beam-block-ngram-repeat", type=int, default=None, metavar="N",
                       help="never repeat an N-gram in the beam_search signature (default: 3, "
                       "seq2seq_keras.decoding.DEFAULT_BEAM_BLOCK_NGRAM_REPEAT; 0 turns it off)")
        p.add_argument("--coverage-penalty", type=float, default=None, metavar="BETA",
                       help="GNMT coverage penalty beta of the beam_search signature (default: 0, off)")
    else:
        p.add_argument("--block-ngram-repeat", type=int, default=None, metavar="N",
                       help="never output a token that repeats an N-gram of the output (OpenNMT's option; 0 off; "
                       "default: off for greedy and sample, 3 for beam)")
        _add_coverage_flag(p)


def _add_coverage_flag(p):
    p.add_argument("--coverage-penalty", type=float, default=0.0, metavar="BETA",
                   help="beam search: GNMT coverage penalty beta (Wu et al. 2016), ranks down hypotheses that "
                   "left source words unattended (default: %(default)s, off)")


def _unk_dictionary(args):
    if not getattr(args, "unk_dictionary", None):
        return None
    from .decoding import read_unk_dictionary

    try:
        return read_unk_dictionary(args.unk_dictionary)
    except OSError as e:
        raise CommandError(f"--unk-dictionary {args.unk_dictionary}: {e.strerror or e}") from None


# ---------------------------------------------------------------------- translate
def _add_translate(sub):
    p = sub.add_parser(
        "translate",
        help="translate sentences with a trained model",
        description="Translate sentences (arguments, or one per line on stdin with '-') with greedy search, "
        "beam search or sampling.",
    )
    p.add_argument("--model", required=True, help="run folder written by 'train' (or a .keras file)")
    p.add_argument("--method", choices=("greedy", "beam", "sample"), default="greedy", help="search (default: %(default)s)")
    p.add_argument("--beam-width", type=int, default=4, help="with --method beam (default: %(default)s)")
    p.add_argument("--temperature", type=float, default=1.0, help="with --method sample (default: %(default)s)")
    p.add_argument("--seed", type=int, default=None, help="with --method sample: reproducible draws")
    p.add_argument("--max-length", type=int, default=None, help="cap on output tokens")
    p.add_argument("--attention", action="store_true", help="also print the attention matrix")
    _add_real_world_flags(p)
    p.add_argument("sentences", nargs="+", help="sentences to translate; '-' reads stdin")
    p.set_defaults(func=_run_translate)


def _read_stdin_lines() -> list[str]:
    # Bytes, then a lenient decode: invalid UTF-8 becomes U+FFFD instead of a crash.
    return [line.decode("utf-8", errors="replace").rstrip("\r\n") for line in sys.stdin.buffer]


def _run_translate(args):
    from .run_folder import load_model

    sentences: list[str] = []
    for s in args.sentences:
        if s == "-":
            sentences.extend(_read_stdin_lines())
        else:
            sentences.append(s)
    try:
        model = load_model(args.model)
    except FileNotFoundError as e:
        raise CommandError(str(e)) from None
    try:
        unk_dictionary = _unk_dictionary(args)
    except ValueError as e:
        raise CommandError(str(e)) from None
    options = {"max_length": args.max_length, "replace_unk": args.replace_unk, "unk_dictionary": unk_dictionary,
               "copy_unknown_names": args.copy_unknown_names,
               "block_ngram_repeat": args.block_ngram_repeat}
    if args.method == "beam":
        options.update(beam_width=args.beam_width, coverage_penalty=args.coverage_penalty)
    elif args.method == "sample":
        options.update(temperature=args.temperature, seed=args.seed)
    try:
        translations = model.translate(sentences, method=args.method, **options)
    except ValueError as e:
        raise CommandError(str(e)) from None
    for t in translations:
        print(f"{t.source} -> {t.text}")
        if args.attention and t.attention is not None:
            width = max([len(x) for x in t.target_tokens] + [5])
            print(" " * (width + 1) + " " + " ".join(f"{s[:8]:>8}" for s in t.source_tokens))
            for tok, row, copied in zip(t.target_tokens, t.attention, t.replaced or [False] * len(t.target_tokens)):
                label = f"{tok}*" if copied else tok  # * = an [UNK] replaced by the source word
                print(f"{label:>{width + 1}} " + " ".join(f"{w:8.2f}" for w in row))


# ---------------------------------------------------------------------- plot
def _add_plot(sub):
    p = sub.add_parser(
        "plot",
        help="save the attention heatmap of sentences (local model or TF Serving)",
        description="Translate sentences with a run folder (--model) or a TF Serving server (--server) and save "
        "their attention heatmap: one sentence per figure, several as a grid. Hangul renders with NanumGothic.",
    )
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--model", help="run folder written by 'train' (or a .keras file)")
    where.add_argument("--server", help="TF Serving: http://HOST:8501 (REST) or HOST:8500 / grpc://HOST:8500 (gRPC)")
    p.add_argument("--model-name", help="served model name (with --server)")
    p.add_argument("--version", type=int, default=None, help="served model version (with --server; default: latest)")
    p.add_argument("--method", choices=("greedy", "beam"), default="greedy", help="decoding with --model (default: %(default)s)")
    p.add_argument("--max-length", type=int, default=None, help="cap on output tokens (with --model)")
    p.add_argument("--ncols", type=int, default=2, help="grid columns for several sentences (default: %(default)s)")
    p.add_argument("--out", required=True, help="image to write (.png; .pdf/.svg also work)")
    p.add_argument("sentences", nargs="+", help="sentences to translate; '-' reads stdin")
    p.set_defaults(func=_run_plot)


def _server_translate(args, sentences):
    if not args.model_name:
        raise CommandError("--server needs --model-name (the name TF Serving serves the model under).")
    url = args.server
    try:
        from .serving import GrpcClient, RestClient, ServingError

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


def _run_plot(args):
    from .plotting import plot_attention, plot_attention_grid

    sentences = []
    for s in args.sentences:
        sentences.extend(line.rstrip("\n") for line in sys.stdin) if s == "-" else sentences.append(s)
    if args.server:
        translations = _server_translate(args, sentences)
    else:
        from .evaluation import translate_texts
        from .run_folder import load_model

        try:
            model = load_model(args.model)
        except FileNotFoundError as e:
            raise CommandError(str(e)) from None
        if not model.has_attention:
            raise CommandError(f"{args.model} was trained with --attention none: it has no attention weights to plot.")
        try:
            translations = translate_texts(model, sentences, method=args.method, progress=False,
                                           **({} if args.max_length is None else {"max_length": args.max_length}))
        except NotImplementedError as e:
            raise CommandError(str(e)) from None
    for t in translations:
        print(f"{t.source} -> {t.text}")
    try:
        if len(translations) == 1:
            plot_attention(translations[0], save=args.out)
        else:
            plot_attention_grid(translations, ncols=args.ncols, save=args.out)
    except (ValueError, OSError) as e:
        raise CommandError(str(e)) from None
    what = f"of {sentences[0]!r}" if len(sentences) == 1 else f"of {len(sentences)} sentences"
    print(f"attention heatmap {what} saved to {args.out}")


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
    p = sub.add_parser(
        "evaluate",
        help="BLEU/chrF (greedy and beam), BLEU by sentence length, attention vs. gold alignment",
        description="Evaluate a run on the test split of its corpus and write report.md, report.json and PNG plots "
        "to --out. With --compare RUN2 (e.g. the same budget with --attention none) the BLEU-by-length plot has "
        "one line per model. On builtin-ko-en the attention is also scored against the gold word alignment.",
    )
    p.add_argument("--model", required=True, help="run folder written by 'train'")
    p.add_argument("--data", default=None, help="corpus or .txt path (default: the run's own, from config.json)")
    p.add_argument("--limit", type=_limit_value, default=None, help="pairs to load before the split, or 'all' "
                   "(default: the run's own limit); the split hashes the English side, so a larger value gives a "
                   "larger test split that still never overlaps the run's training pairs")
    p.add_argument("--split", choices=("test", "validation"), default="test")
    p.add_argument("--max-sentences", type=int, default=None, help="evaluate only the first N pairs of the split")
    p.add_argument("--compare", default=None, help="a second run folder for the length-bucket comparison")
    p.add_argument("--beam-width", type=int, default=4, help="beam width; 0 skips beam search (default: %(default)s)")
    p.add_argument("--buckets", default=",".join(str(e) for e in (5, 10, 15, 20, 25, 30, 40, 50)),
                   help="source-length bucket edges in words (default: %(default)s)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--max-length", type=int, default=None, help="cap on output tokens")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("--robustness", action="store_true",
                   help="instead: the robustness evaluation (test pairs with names/numbers swapped for unseen ones, "
                   "the longest test sentences and concatenations of 2-3 test pairs; copy rate, [UNK] rate, BLEU/chrF "
                   "and repetition rate), with and without unknown-word replacement and n-gram blocking; writes "
                   "robustness.md and robustness.json to --out")
    _add_coverage_flag(p)
    p.add_argument("--out", required=True, help="report folder to write")
    p.set_defaults(func=_run_evaluate)


def _run_robustness(args, model, train, test, label):
    import json

    from .robustness import DEFAULT_VARIANTS, build_robustness_set, evaluate_robustness, model_translator
    from .robustness import robustness_markdown, robustness_table

    rset = build_robustness_set(train, test)
    if not rset.swapped and not rset.long:
        raise CommandError(f"{label}: the test split has no pairs to build a robustness set from; raise --limit.")
    decode = {} if args.max_length is None else {"max_length": args.max_length}
    results = {}
    for name, options in DEFAULT_VARIANTS.items():
        if options.get("method") == "beam":
            if not args.beam_width:
                continue
            options = dict(options, beam_width=args.beam_width, coverage_penalty=args.coverage_penalty)
            name = f"beam {args.beam_width}"
        print(f"robustness: {name} ...", flush=True)
        results[name] = evaluate_robustness(model_translator(model, batch_size=args.batch_size, **decode, **options),
                                            rset)
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "robustness.json"), "w", encoding="utf-8") as f:
        json.dump({"model": args.model, "data": label, "results": results, "set": rset.to_dict()}, f, indent=1,
                  ensure_ascii=False)
    with open(os.path.join(args.out, "robustness.md"), "w", encoding="utf-8") as f:
        f.write(robustness_markdown(results, rset, title=f"{args.model} on {label}"))
    print(robustness_table(results))
    print(f"report: {os.path.join(args.out, 'robustness.md')}")


def _run_evaluate(args):
    from .data import load_corpus, split_pairs
    from .evaluation import check_bucket_edges, evaluate, run_summary, write_report
    from .run_folder import load_model

    try:
        edges = check_bucket_edges([int(x) for x in args.buckets.split(",") if x.strip()])
    except ValueError:
        raise CommandError(f"--buckets {args.buckets!r}: give increasing whole numbers, e.g. 5,10,15,20.") from None
    run = run_summary(args.model) if os.path.isdir(args.model) else None
    config = run["config"] if run else {}
    data = args.data or config.get("data") or "builtin-ko-en"
    if args.limit == "all":
        limit = None
    elif args.limit is not None:
        limit = args.limit
    else:
        limit = config.get("limit") if data == config.get("data") else None
    try:
        model = load_model(args.model)
        compare = load_model(args.compare) if args.compare else None
        pairs = load_corpus(data, limit=limit, seed=config.get("seed", 0), source=config.get("direction", "other"))
    except (FileNotFoundError, ValueError) as e:
        raise CommandError(str(e)) from None
    train, validation, test = split_pairs(pairs)
    pairs = test if args.split == "test" else validation
    if args.max_sentences is not None:
        pairs = pairs[: args.max_sentences]
    if args.robustness:
        return _run_robustness(args, model, train, pairs, f"{data}, {args.split} split")
    print(f"evaluating {args.model} on {pairs.name}: {len(pairs)} pairs (of {len(train) + len(validation) + len(test)} loaded)")
    try:
        result = evaluate(model, pairs, compare=compare, beam_width=args.beam_width, edges=edges,
                          beam_options={"coverage_penalty": args.coverage_penalty},
                          batch_size=args.batch_size, max_length=args.max_length, progress=not args.no_progress)
    except ValueError as e:
        raise CommandError(str(e)) from None
    report = result.report
    report["model"]["path"] = args.model
    report["data"].update(corpus=data, limit=limit, split=args.split)
    if run:
        report["training"] = run
    if args.compare and os.path.isdir(args.compare):
        compare_run = run_summary(args.compare)
        if compare_run:
            report["compare_training"] = compare_run
    paths = write_report(result, args.out)
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
        print(f"alignment AER: attention {a['attention']['aer']:.3f}, uniform {a['uniform']['aer']:.3f}, "
              f"diagonal {a['diagonal']['aer']:.3f} (lower is better)")
    print(f"report written to {paths['report.md']} (and report.json, {len(paths) - 2} plots)")


# ---------------------------------------------------------------------- export
def _add_export(sub):
    p = sub.add_parser(
        "export",
        help="export a trained model as a SavedModel for TensorFlow Serving",
        description="Write saved_models/NAME/<version>/ (next integer version by default; written to a hidden "
        "folder and renamed into place) with the signatures serving_default, translate_with_attention and "
        "beam_search, and rewrite saved_models/models.config. Exit status: 0 done, 2 bad request.",
    )
    p.add_argument("--model", required=True, help="run folder written by 'train' (or a .keras file)")
    p.add_argument("--name", required=True, help="model name clients ask the server for (letters, digits, _ - .)")
    p.add_argument("--base-dir", default="saved_models", help="folder holding the served models (default: %(default)s)")
    p.add_argument("--version", type=int, default=None, help="version number (default: the next integer)")
    p.add_argument("--max-length", type=int, default=None, help="cap on output tokens (default: 100)")
    p.add_argument("--max-source-length", type=int, default=None, help="longer sources are truncated (default: 256 tokens)")
    p.add_argument("--beam-width", type=int, default=None, help="beam width of the beam_search signature (default: 4)")
    p.add_argument("--length-penalty", type=float, default=None, help="GNMT length penalty alpha of beam_search (default: 0.6)")
    _add_real_world_flags(p, export=True)
    p.add_argument("--serving-root", default="/models",
                   help="where the server sees --base-dir, for models.config (default: %(default)s, the docker mount)")
    p.add_argument("--xla", action="store_true",
                   help="also write serving_default_xla and translate_with_attention_xla (greedy decode loop "
                        "compiled by XLA); TF Serving needs --xla_cpu_compilation_enabled=true for them "
                        "(saved_models/serve.sh --xla)")
    p.set_defaults(func=_run_export)


def _run_export(args):
    from .export import ExportSettings, export_run

    given = {
        "max_length": args.max_length,
        "max_source_length": args.max_source_length,
        "beam_width": args.beam_width,
        "length_penalty": args.length_penalty,
        "block_ngram_repeat": args.block_ngram_repeat,
        "beam_block_ngram_repeat": args.beam_block_ngram_repeat,
        "coverage_penalty": args.coverage_penalty,
    }
    try:
        given["replace_unk"] = args.replace_unk
        given["copy_unknown_names"] = args.copy_unknown_names
        given["unk_dictionary"] = _unk_dictionary(args)
        settings = ExportSettings(**{k: v for k, v in given.items() if v is not None})
        path = export_run(args.model, args.name, args.base_dir, version=args.version, settings=settings,
                          serving_root=args.serving_root, xla=args.xla)
    except (FileNotFoundError, FileExistsError, ValueError) as e:
        raise CommandError(str(e)) from None
    print(f"exported {args.model} to {path}")
    print(f"models.config: {os.path.join(args.base_dir, 'models.config')}; check it with: seq2seq-keras check-servable {path}")


# ---------------------------------------------------------------------- check-servable
def _add_check_servable(sub):
    p = sub.add_parser(
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
    p.add_argument("path", help="an exported version folder (saved_models/demo/1), or a model folder (saved_models/demo: its latest version)")
    p.add_argument("--no-smoke", action="store_true",
                   help="only check the files and signatures (skip the fresh process: loaders, warm-up, parity)")
    p.add_argument("--model", default=None,
                   help="run folder (or .keras file) to compare translations with (default: the one recorded at export)")
    p.add_argument("--timeout", type=float, default=600, help="seconds allowed for the fresh process (default: %(default)s)")
    p.add_argument("--benchmark", action="store_true",
                   help="also time it through TF Serving's loader (fresh process, C API): 1-sentence latency "
                   "(median, p90) and sentences/s at batch 64, greedy (serving_default) and beam_search")
    p.add_argument("--benchmark-data", default="builtin-ko-en",
                   help="corpus whose source sentences are timed (default: %(default)s)")
    p.set_defaults(func=_run_check_servable)


def _run_check_servable(args):
    from .servable import check_servable

    if not os.path.isdir(args.path):
        raise CommandError(f"{args.path} is not a folder: pass an exported version folder such as saved_models/demo/1.")
    if args.model is not None and not os.path.exists(args.model):
        raise CommandError(f"--model {args.model} does not exist: pass the run folder the export came from.")
    report = check_servable(args.path, smoke=not args.no_smoke, timeout=args.timeout, model=args.model)
    print(report.format())
    if not report.ok:
        return 1
    args.path = report.path
    if args.benchmark:
        from .data import load_corpus
        from .servable import benchmark_servable

        try:
            sentences = list(load_corpus(args.benchmark_data, limit=640).source)
        except (FileNotFoundError, ValueError) as e:
            raise CommandError(str(e)) from None
        timings = benchmark_servable(args.path, sentences, timeout=max(args.timeout, 1200))
        for signature, t in timings.items():
            print(f"{signature} (TF Serving's loader): 1 sentence {t['latency_median_ms']:.1f} ms median, {t['latency_p90_ms']:.1f} ms p90; "
                  f"batch of 64: {t['sentences_per_second']:.0f} sentences/s")
    return 0


# ---------------------------------------------------------------------- main
COMMANDS = [_add_train, _add_translate, _add_plot, _add_evaluate, _add_export, _add_check_servable]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
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
    except CommandError as e:
        print(f"seq2seq-keras {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"seq2seq-keras {args.command}: interrupted", file=sys.stderr)
        return 130
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
