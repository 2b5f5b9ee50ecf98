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

from .attention import ATTENTION_TYPES  # noqa: E402  (light import: no TensorFlow)


class CommandError(Exception):
    """An error for the user: printed without a traceback, exit status 2."""


# ---------------------------------------------------------------------- train
def _add_train(sub):
    from .training import TrainConfig

    d = TrainConfig()
    p = sub.add_parser(
        "train",
        help="train a translation model",
        description="Train a Seq2Seq model with model.fit and save it (model.keras, config.json, history.json) to --out.",
    )
    p.add_argument("--data", default=d.data, help="builtin-ko-en, spa-eng, kor-eng, or a path to a Tatoeba/Anki .txt file (default: %(default)s)")
    p.add_argument("--direction", choices=("other", "english"), default=d.direction, help="'other': Other -> English (default); 'english': English -> Other")
    p.add_argument("--limit", type=int, default=d.limit, help="use only the first N pairs")
    p.add_argument("--attention", choices=ATTENTION_TYPES, default=d.attention, help="attention score (default: %(default)s); 'none' = fixed-context baseline")
    p.add_argument("--rnn", choices=("gru", "lstm"), default=d.rnn)
    p.add_argument("--embedding-dim", type=int, default=d.embedding_dim)
    p.add_argument("--units", type=int, default=d.units, help="encoder units per direction (default: %(default)s)")
    p.add_argument("--encoder-layers", type=int, default=d.encoder_layers)
    p.add_argument("--dropout", type=float, default=d.dropout)
    p.add_argument("--epochs", type=int, default=d.epochs)
    p.add_argument("--batch-size", type=int, default=d.batch_size)
    p.add_argument("--learning-rate", type=float, default=d.learning_rate)
    p.add_argument("--clipnorm", type=float, default=d.clipnorm, help="global gradient-norm clip, 0 disables (default: %(default)s)")
    p.add_argument("--max-vocabulary", type=int, default=d.max_vocabulary, help="vocabulary size per language")
    p.add_argument("--min-frequency", type=int, default=d.min_frequency)
    p.add_argument("--subword", action="store_true", help="WordPiece vocabulary instead of whole words")
    p.add_argument("--max-length", type=int, default=d.max_length, help="drop training pairs longer than this many tokens")
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--jit-compile", action="store_true", help="compile the train step with XLA")
    p.add_argument("--out", required=True, help="run folder to write")
    p.set_defaults(func=_run_train)


def _train_config_from_args(args):
    from .training import TrainConfig

    return TrainConfig(
        data=args.data,
        direction=args.direction,
        limit=args.limit,
        attention=None if args.attention == "none" else args.attention,
        rnn=args.rnn,
        embedding_dim=args.embedding_dim,
        units=args.units,
        encoder_layers=args.encoder_layers,
        dropout=args.dropout,
        epochs=args.epochs,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        clipnorm=args.clipnorm or None,
        max_vocabulary=args.max_vocabulary,
        min_frequency=args.min_frequency,
        subword=args.subword,
        max_length=args.max_length,
        seed=args.seed,
        jit_compile=args.jit_compile,
    )


def _run_train(args):
    from .training import train

    config = _train_config_from_args(args)
    start = time.perf_counter()
    _, history = train(config, out_dir=args.out)
    h = history.history
    summary = f"trained {len(h.get('loss', []))} epochs in {time.perf_counter() - start:.1f} s"
    if h.get("accuracy"):
        summary += f"; train token accuracy {h['accuracy'][-1]:.3f}"
    if h.get("val_accuracy"):
        summary += f", validation token accuracy {h['val_accuracy'][-1]:.3f}"
    print(summary)
    print(f"saved to {args.out}")


# ---------------------------------------------------------------------- translate
def _add_translate(sub):
    p = sub.add_parser(
        "translate",
        help="translate sentences with a trained model",
        description="Greedy-translate sentences (arguments, or one per line on stdin with '-').",
    )
    p.add_argument("--model", required=True, help="run folder written by 'train' (or a .keras file)")
    p.add_argument("--max-length", type=int, default=None, help="cap on output tokens")
    p.add_argument("--attention", action="store_true", help="also print the attention matrix")
    p.add_argument("sentences", nargs="+", help="sentences to translate; '-' reads stdin")
    p.set_defaults(func=_run_translate)


def _run_translate(args):
    from .training import load_model

    sentences = []
    for s in args.sentences:
        sentences.extend(line.rstrip("\n") for line in sys.stdin) if s == "-" else sentences.append(s)
    try:
        model = load_model(args.model)
    except FileNotFoundError as e:
        raise CommandError(str(e)) from None
    for t in model.translate(sentences, max_length=args.max_length):
        print(f"{t.source} -> {t.text}")
        if args.attention and t.attention is not None:
            width = max([len(x) for x in t.target_tokens] + [5])
            print(" " * width + " " + " ".join(f"{s[:8]:>8}" for s in t.source_tokens))
            for tok, row in zip(t.target_tokens, t.attention):
                print(f"{tok:>{width}} " + " ".join(f"{w:8.2f}" for w in row))


# ---------------------------------------------------------------------- main
COMMANDS = [_add_train, _add_translate]


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
