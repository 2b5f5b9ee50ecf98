"""The settings of a training run, :class:`TrainConfig` (saved as a run folder's ``config.json``),
and the compiled model they describe (:func:`build_model`).

Imported by the training loop, the run folder (a resume compares configurations)
and the command line; it does not import the training loop.
"""

from __future__ import annotations

import dataclasses
import json

from ..decoding.options import count, number, optional
from ..model.choices import ARCHITECTURES, ATTENTION_TYPES, RNN_TYPES, attention_name
from .hardware import JIT_COMPILE, PRECISIONS, XLA_MIN_STEPS

#: What the learning rate does after the warm-up (:class:`~seq2seq_keras.training.schedule.WarmupSchedule`).
LR_DECAYS = ("none", "inverse-sqrt")
#: ``text.RESERVED_TOKENS`` ([PAD], [UNK], [START], [END]) counted here without importing TensorFlow; a vocabulary
#: needs room for one word more (tests/training/test_config.py checks the two agree).
RESERVED_TOKEN_COUNT = 4


#: Settings whose default is not what runs did before the setting existed, with that older behaviour: a run
#: folder whose ``config.json`` lacks one resumes as it trained (``TrainConfig.from_json``).
BEFORE_THE_SETTING = {"batch_tokens": None}


def setting(default, help: str, check=None, **cli):
    """A :class:`TrainConfig` field: its default, its check and the help text of its ``train`` flag.

    ``check(name, value) -> value`` raises ValueError (or TypeError) with a one-line message naming ``name``
    (:func:`~seq2seq_keras.decoding.options.count`, :func:`~seq2seq_keras.decoding.options.number`); the
    ``train`` flag checks its value with it too (``name`` is then the flag). ``cli`` may hold ``choices``, ``metavar``, ``flag`` (another flag name, e.g.
    ``--no-input-feeding`` for a ``True`` default), ``aliases`` (more flag names),
    ``zero_is_none`` (the flag's 0 means ``None``) and argparse's ``nargs``/``const``;
    :func:`seq2seq_keras.cli.commands` builds the ``train`` command from them.
    """
    return dataclasses.field(default=default, metadata={"help": help, "check": check, **cli})


@dataclasses.dataclass
class TrainConfig:
    """Everything that defines a training run (saved as ``config.json``).

    Each field is also a flag of ``seq2seq-keras train`` (``embedding_dim`` ->
    ``--embedding-dim``), with the field's default and help: this class is the one
    place a training setting is written.
    """

    data: str = setting("builtin-ko-en", "builtin-ko-en, spa-eng, kor-eng, or a path to a Tatoeba/Anki .txt file")
    direction: str = setting(
        "other", "'other': Other -> English (as the TF tutorial); 'english': the reverse", choices=("other", "english")
    )
    limit: int | None = setting(None, "use only the first N pairs of the corpus", optional(count(1)), metavar="N")
    architecture: str = setting(
        "rnn",
        "'rnn': the recurrent encoder-decoder with attention; 'transformer': "
        "the Transformer (pre-norm), sized by --num-layers, --num-heads, --model-dim, --ff-dim "
        "and --dropout (the RNN options are then ignored)",
        choices=ARCHITECTURES,
    )
    num_layers: int = setting(2, "Transformer: encoder layers and decoder layers (each)", count(1))
    num_heads: int = setting(4, "Transformer: attention heads per layer (model-dim must be a multiple of it)", count(1))
    model_dim: int = setting(128, "Transformer: embedding and layer width (even)", count(1))
    ff_dim: int = setting(512, "Transformer: width of the feed-forward network inside each layer", count(1))
    attention: str | None = setting(
        "bahdanau", "attention score; 'none' = the fixed-context baseline", choices=ATTENTION_TYPES
    )
    rnn: str = setting("gru", "recurrent cell of the encoder and the decoder", choices=RNN_TYPES)
    embedding_dim: int = setting(128, "embedding size, source and target", count(1))
    encoder_units: int = setting(
        256,
        "encoder units per direction (the decoder gets the encoder's output width, twice this when bidirectional)",
        count(1),
    )
    encoder_layers: int = setting(1, "stacked encoder layers", count(1))
    dropout: float = setting(
        0.0,
        "dropout on embeddings, between layers and before the output projection "
        "(Transformer: also on attention weights and each sublayer's output)",
        number(minimum=0, below=1),
    )
    epochs: int = setting(10, "training epochs", count(0))
    batch_size: int = setting(64, "sentence pairs per batch", count(1))
    batch_tokens: int | None = setting(
        1024,
        "at most N tokens per batch (rows x the longer side's length) besides at most --batch-size pairs: "
        "long sentences come fewer to a batch, which lowers peak memory; with a large --batch-size, "
        "token-based batching (0: off)",
        optional(count(1)),
        zero_is_none=True,
        metavar="N",
    )
    learning_rate: float = setting(
        1e-3, "Adam's learning rate (with --warmup-steps: the rate the warm-up reaches)", number(above=0)
    )
    warmup_steps: int = setting(
        0, "optimizer updates over which the learning rate rises linearly to --learning-rate (0: none)", count(0)
    )
    lr_decay: str = setting(
        "none",
        "after the warm-up: keep the rate (none) or multiply it by sqrt(warmup-steps / step) (inverse-sqrt)",
        choices=LR_DECAYS,
    )
    label_smoothing: float = setting(
        0.0,
        "share of the training target spread evenly over the vocabulary (0: plain cross-entropy; 0.1 is usual)",
        number(minimum=0, below=1),
    )
    clipnorm: float | None = setting(
        5.0,
        "global gradient-norm clip, 0 disables",
        optional(number(minimum=0, note=" (0 disables)")),
        zero_is_none=True,
    )
    max_vocabulary: int | None = setting(
        8000,
        "vocabulary size per language, reserved tokens included",
        optional(count(RESERVED_TOKEN_COUNT + 1)),
    )
    min_frequency: int = setting(1, "drop words seen fewer times from the vocabulary", count(1))
    subword: bool = setting(
        False,
        "WordPiece vocabulary instead of whole words: better in-domain BLEU on "
        "spa-eng, but unseen names/numbers are not copied (docs/data.md: words or subwords)",
    )
    max_length: int | None = setting(50, "drop training pairs longer than this many tokens", optional(count(1)))
    seed: int = setting(0, "seed of the split, the shuffle order, the initial weights and dropout", count(0))
    precision: str = setting(
        "auto",
        "compute precision: mixed_bfloat16 (bf16 compute, float32 weights and loss) or float32; "
        "auto: bf16 where it pays (GPUs of compute capability >= 8.0; a CPU with AMX-BF16, unless XLA is on), "
        "float32 elsewhere",
        choices=PRECISIONS,
    )
    jit_compile: str = setting(
        "auto",
        "compile the train step with XLA (--jit-compile alone: on); batches are padded to full rows and "
        "lengths to multiples of 4 so it compiles a few dozen shapes, once each (about a minute at first): pays "
        f"on long runs (1.4x on spa-eng in docs/benchmarks.md), not on short ones; auto: on for runs of >= "
        f"{XLA_MIN_STEPS} steps, except on a CPU with AMX-BF16 (bf16 without XLA there)",
        choices=JIT_COMPILE,
        nargs="?",
        const="on",
    )
    input_feeding: bool = setting(
        True,
        "fast mode: Luong attention without input feeding; the decoder RNN runs over the whole target at once",
        flag="--no-input-feeding",
    )
    tensorboard: str | None = setting(
        None,
        "write TensorBoard logs to DIR: losses per epoch, and attention heatmaps with alignment error "
        "(AER) of a few fixed sentences; view them with: tensorboard --logdir DIR",
        metavar="DIR",
    )

    def __post_init__(self):
        """Checks every setting (its field's ``check``) and the Transformer's sizes.

        Raises:
            ValueError: a setting out of its range (the message names the field), or a Transformer whose
                ``model_dim`` is odd or not a multiple of ``num_heads``.
            TypeError: a setting of the wrong type (``epochs=2.5``).
        """
        for field in dataclasses.fields(self):
            if field.metadata.get("check") is not None:
                setattr(self, field.name, field.metadata["check"](field.name, getattr(self, field.name)))
        self.attention = attention_name(self.attention)  # validated; "none" -> None
        if self.architecture not in ARCHITECTURES:
            raise ValueError(f"architecture={self.architecture!r}: choose one of {ARCHITECTURES}.")
        if self.architecture == "transformer":
            check_transformer_sizes(self.model_dim, self.num_heads)
        if self.lr_decay not in LR_DECAYS:
            raise ValueError(f"lr_decay={self.lr_decay!r}: choose one of {LR_DECAYS}.")
        if self.lr_decay == "inverse-sqrt" and not self.warmup_steps:
            raise ValueError("lr_decay='inverse-sqrt' needs warmup_steps > 0: the decay is sqrt(warmup_steps / step).")
        if isinstance(self.jit_compile, bool):  # as Keras' own compile(jit_compile=...) takes it
            self.jit_compile = "on" if self.jit_compile else "off"

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> TrainConfig:
        """The configuration a ``config.json`` holds; a setting it lacks (a run folder written before the
        setting existed) takes the value that run trained with (:data:`BEFORE_THE_SETTING`), else its default."""
        values = {**BEFORE_THE_SETTING, **json.loads(text)}
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(values) - known
        if unknown:
            raise ValueError(f"Unknown training settings {sorted(unknown)} in config; known: {sorted(known)}.")
        return cls(**values)

    def differences(self, other: TrainConfig) -> list[tuple[str, object, object]]:
        """``(field, self value, other value)`` for every setting that differs (logging-only ones excepted)."""
        return [
            (f.name, getattr(self, f.name), getattr(other, f.name))
            for f in dataclasses.fields(self)
            if f.name not in LOGGING_ONLY and getattr(self, f.name) != getattr(other, f.name)
        ]


def check_transformer_sizes(model_dim: int, num_heads: int, names=("model_dim", "num_heads")) -> None:
    """Raise ValueError unless ``model_dim`` is even (sinusoidal positions) and a multiple of ``num_heads``
    (each head gets ``model_dim / num_heads`` dimensions); ``names`` name the two in the message."""
    if model_dim % 2:
        raise ValueError(f"{names[0]} must be even for the sinusoidal positions, got {model_dim}.")
    if model_dim % num_heads:
        raise ValueError(
            f"{names[0]}={model_dim} must be a multiple of {names[1]}={num_heads} (each head gets "
            f"{names[0]} / {names[1]} dimensions)."
        )


#: Settings that change what is logged, not the model or its training: a resume may change them.
LOGGING_ONLY = frozenset({"tensorboard"})


def build_model(config: TrainConfig, source_text, target_text, options=None):
    """A compiled :class:`Seq2Seq` for ``config``.

    ``options`` (:class:`~seq2seq_keras.training.hardware.TrainingOptions`) are the resolved
    ``precision`` and ``jit_compile``; without them, ``"auto"`` resolves for this
    machine as for a short run (:func:`~seq2seq_keras.training.hardware.resolve_options`).
    """
    import keras

    from ..model.seq2seq import Seq2Seq
    from .hardware import detect_machine, resolve_options
    from .schedule import learning_rate

    if options is None:
        options = resolve_options(config.precision, config.jit_compile, detect_machine(), planned_steps=0)
    keras.utils.set_random_seed(config.seed)
    model = Seq2Seq(
        source_text,
        target_text,
        embedding_dim=config.embedding_dim,
        encoder_units=config.encoder_units,
        attention=config.attention,
        rnn=config.rnn,
        encoder_layers=config.encoder_layers,
        dropout=config.dropout,
        input_feeding=config.input_feeding,
        architecture=config.architecture,
        num_layers=config.num_layers,
        num_heads=config.num_heads,
        model_dim=config.model_dim,
        ff_dim=config.ff_dim,
        dtype=options.precision,
    )
    rate = learning_rate(config.learning_rate, config.warmup_steps, config.lr_decay)
    optimizer = keras.optimizers.Adam(rate, global_clipnorm=config.clipnorm or None)  # 0: no clipping, as None
    model.compile(optimizer=optimizer, jit_compile=options.jit_compile, label_smoothing=config.label_smoothing)
    return model
