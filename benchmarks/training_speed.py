"""Training speed, lever by lever, measured side by side with the tutorial formulation.

Every row of the table is a :class:`Variant`: a model, a data pipeline and a way of
running the step. All rows are built in one process, warmed up (tracing, XLA
compilation, shuffle buffers, one unrecorded round of every row), then measured in
*interleaved* windows of ``steps`` training steps, round-robin, ``repeats`` times:
slow drifts of the machine (other
processes, thermal limits) hit every row alike, and each ratio is the median of the
per-round ratios to the reference in the same round.

The input-feeding rows form a ladder: the first row is our model run the tutorial's
way, and each next row adds one lever, so the gain of each lever is the ratio of
two neighbouring rows. Fast-mode, XLA, mixed-precision and tf.data rows change one
thing from the default configuration (the row marked as such). The ``transformer``
row is the package's Transformer (``Seq2Seq(architecture="transformer")``) on the
same data pipeline and optimizer, sized by :class:`ModelSize`'s Transformer fields.
"""

from __future__ import annotations

import dataclasses
import gc
import time
from collections.abc import Callable, Sequence

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from seq2seq_keras import Seq2Seq, TextProcessor
from seq2seq_keras.data import make_dataset
from seq2seq_keras.model import fast_gru
from seq2seq_keras.model.attention import masked_softmax
from seq2seq_keras.training.config import TrainConfig

from . import tutorial_reference
from .measure import TutorialSizes, forward_macs, median, sizes_of, training_flops, tutorial_forward_macs

#: Training pairs longer than this (tokens) are dropped, as ``seq2seq-keras train`` does.
MAX_LENGTH = 50


@dataclasses.dataclass(frozen=True)
class ModelSize:
    """Sizes shared by every row. ``units`` is the tutorial's GRU width; ours gets
    ``encoder_units`` per direction (default ``units // 2``, so that the bidirectional
    encoder's output and our decoder are ``units`` wide, as the tutorial's)."""

    embedding_dim: int = 128
    units: int = 256
    encoder_units: int | None = None
    batch_size: int = 64
    vocabulary: int = 5000
    learning_rate: float = 1e-3
    # The Transformer row: 2 + 2 layers of width 192 have about the parameters of the
    # default GRU model at units 256 (4.9 M and 4.7 M with 5,000-word vocabularies).
    num_layers: int = 2
    num_heads: int = 4
    model_dim: int = 192
    ff_dim: int = 768

    @property
    def our_encoder_units(self) -> int:
        return self.encoder_units or max(1, self.units // 2)


#: `seq2seq-keras train`'s defaults, which every row keeps unless it is about changing one.
_TRAIN_DEFAULTS = TrainConfig()


@dataclasses.dataclass(frozen=True)
class Variant:
    """One row of the speed table (see the module docstring)."""

    key: str
    family: str  # "tutorial", "feed" (input feeding), "fast" (no input feeding) or "transformer"
    label: str
    attention: str | None = "bahdanau"
    input_feeding: bool = True
    stepwise: str | None = None  # "keys-every-step" / "keys-once": a per-step loop through the step API
    no_precompute: bool = False  # the fused step with the whole GRU input multiply in the loop
    encoder_impl: str = "auto"  # Encoder(implementation=...)
    decoder_impl: str = "auto"  # Decoder(implementation=...)
    bucketing: bool = True
    cache: bool = True
    jit_compile: bool = False
    pad_multiple: int | None = None
    policy: str = "float32"
    default: bool = False  # the configuration `seq2seq-keras train` uses
    architecture: str = "rnn"  # Seq2Seq(architecture=...)
    # Training levers: TrainConfig's fields of the same names, with `seq2seq-keras train`'s defaults.
    peak_lr: float | None = None  # None: the bench's --learning-rate
    warmup_steps: int = _TRAIN_DEFAULTS.warmup_steps
    lr_decay: str = _TRAIN_DEFAULTS.lr_decay
    label_smoothing: float = _TRAIN_DEFAULTS.label_smoothing
    batch_tokens: int | None = _TRAIN_DEFAULTS.batch_tokens

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


TUTORIAL = Variant("tutorial", "tutorial", "tutorial formulation (in-run reference)")
TRANSFORMER = Variant(
    "transformer",
    "transformer",
    "Transformer (pre-norm; sizes below), same pipeline and Adam",
    attention=None,
    input_feeding=False,
    architecture="transformer",
)


def ladder(*, quick: bool = False, bfloat16: bool = False, xla: bool = True) -> list[Variant]:
    """The rows of the speed table.

    ``quick``: the reference and, per family, the default and its XLA / bfloat16 options
    (the candidates for the quality runs). ``xla=False`` leaves XLA rows out.
    """
    feed = Variant("feed", "feed", "our default: all levers below (input feeding, Bahdanau)", default=True)
    fast = Variant(
        "fast",
        "fast",
        "fast mode: no input feeding, Luong general, fused scans",
        attention="luong-general",
        input_feeding=False,
    )
    padded = "batches padded to 64 x multiples of 4 tokens"
    feed_xla = Variant("feed-xla", "feed", f"default + XLA ({padded})", jit_compile=True, pad_multiple=4)
    fast_xla = Variant(
        "fast-xla",
        "fast",
        f"fast mode + XLA ({padded})",
        attention="luong-general",
        input_feeding=False,
        jit_compile=True,
        pad_multiple=4,
    )
    feed_bf16 = Variant("feed-bf16", "feed", "default + mixed_bfloat16 (float32 logits)", policy="mixed_bfloat16")
    fast_bf16 = Variant(
        "fast-bf16",
        "fast",
        "fast mode + mixed_bfloat16 (float32 logits)",
        attention="luong-general",
        input_feeding=False,
        policy="mixed_bfloat16",
    )
    rows = [TUTORIAL]
    if quick:
        rows += [feed] + ([feed_xla] if xla else []) + ([feed_bf16] if bfloat16 else [])
        rows += [fast] + ([fast_xla] if xla else []) + ([fast_bf16] if bfloat16 else [])
        return rows + [TRANSFORMER]
    rows += [
        Variant(
            "feed-0",
            "feed",
            "ours run the tutorial's way: per-step layer calls, keys every step, "
            "output projection in the loop, no bucketing",
            stepwise="keys-every-step",
            encoder_impl="layers",
            decoder_impl="layers",
            bucketing=False,
        ),
        Variant(
            "feed-1",
            "feed",
            "+ key projection once per sentence",
            stepwise="keys-once",
            encoder_impl="layers",
            decoder_impl="layers",
            bucketing=False,
        ),
        Variant(
            "feed-2",
            "feed",
            "+ output projection after the loop (one matmul)",
            encoder_impl="layers",
            decoder_impl="layers",
            bucketing=False,
        ),
        Variant(
            "feed-3",
            "feed",
            "+ single fused step function (raw ops)",
            encoder_impl="layers",
            decoder_impl="layers",
            no_precompute=True,
            bucketing=False,
        ),
        Variant(
            "feed-4",
            "feed",
            "+ GRU input part precomputed outside the loop",
            encoder_impl="layers",
            decoder_impl="fused",
            bucketing=False,
        ),
        Variant(
            "feed-5",
            "feed",
            "+ encoder: both directions in one scan, hand-written gradient",
            decoder_impl="fused",
            bucketing=False,
        ),
        dataclasses.replace(feed, label="+ length bucketing = " + feed.label),
        Variant("feed-nocache", "feed", "default without tf.data cache (tokenise every epoch)", cache=False),
    ]
    rows += ([feed_xla] if xla else []) + ([feed_bf16] if bfloat16 else [])
    rows += [
        Variant(
            "fast-layers",
            "fast",
            "fast mode with Keras' GRU layers (cuDNN on a GPU; generic loop on a CPU)",
            attention="luong-general",
            input_feeding=False,
            encoder_impl="layers",
            decoder_impl="layers",
        ),
        fast,
        Variant("fast-bahdanau", "fast", "fast mode with Bahdanau's score", input_feeding=False),
    ]
    rows += ([fast_xla] if xla else []) + ([fast_bf16] if bfloat16 else [])
    if bfloat16 and xla:
        rows.append(
            Variant(
                "fast-bf16-xla",
                "fast",
                "fast mode + mixed_bfloat16 + XLA",
                attention="luong-general",
                input_feeding=False,
                policy="mixed_bfloat16",
                jit_compile=True,
                pad_multiple=4,
            )
        )
    return rows + [TRANSFORMER]


def default_variant(family: str, planned_steps: int, machine=None):
    """The configuration ``seq2seq-keras train``'s ``"auto"`` options choose for ``family`` on this machine.

    ``planned_steps``: the run's length in optimizer steps (XLA pays only for long runs);
    ``machine``: a :class:`seq2seq_keras.training.hardware.Machine` (default: this one). Returns
    ``(Variant, TrainingOptions)``: the ladder's row for the choice (e.g. ``feed-xla``), or the
    family's default row with the chosen precision and ``jit_compile`` where the ladder has none.
    """
    from seq2seq_keras.training.hardware import detect_machine, resolve_options

    options = resolve_options("auto", "auto", machine or detect_machine(), planned_steps)
    rows = {v.key: v for v in ladder(bfloat16=True)}
    base = rows[family]
    key = family + ("-bf16" if options.precision == "mixed_bfloat16" else "") + ("-xla" if options.jit_compile else "")
    if key in rows:
        return rows[key], options
    label = f"{base.label}; {options.precision}{', XLA' if options.jit_compile else ''}"
    return dataclasses.replace(
        base,
        key=key,
        label=label,
        policy=options.precision,
        jit_compile=options.jit_compile,
        pad_multiple=4 if options.jit_compile else None,
    ), options


# --------------------------------------------------------------------------- models
class StepwiseSeq2Seq(Seq2Seq):
    """Our model trained the tutorial's way: a per-step loop over the public step API.

    Each step calls :meth:`Decoder.step_embedded` (Keras layer calls) and projects
    onto the vocabulary inside the loop; with ``recompute_keys`` the attention keys
    ``W2 h`` are recomputed at every step. Same weights and numbers as
    :class:`Seq2Seq`; only for measuring what the levers are worth.
    """

    recompute_keys = True

    def call_with_attention(self, inputs, training=None):
        source_ids, target_in = inputs
        encoder_outputs, encoder_states, source_mask = self.encoder(source_ids, training=training)
        state, memory = self.decoder.start(encoder_outputs, encoder_states, source_mask)
        if self.recompute_keys and memory.keys is not None:
            memory = memory._replace(keys=None)  # the attention layer then projects the values at every call
        embedded = self.decoder.dropout_layer(self.decoder.embedding(target_in), training=training)
        embedded = tf.transpose(embedded, (1, 0, 2))
        steps = tf.shape(target_in)[1]
        logits_ta = tf.TensorArray(tf.float32, size=steps)
        weights_ta = tf.TensorArray(self.decoder.compute_dtype, size=steps)

        def body(i, state, logits_ta, weights_ta):
            features, state, weights = self.decoder.step_embedded(embedded[i], state, memory, training)
            logits = self.decoder.logits(self.decoder.dropout_layer(features, training=training))
            return i + 1, state, logits_ta.write(i, logits), weights_ta.write(i, weights)

        _, _, logits_ta, weights_ta = tf.while_loop(
            lambda i, *_: i < steps, body, (tf.constant(0), state, logits_ta, weights_ta)
        )
        return tf.transpose(logits_ta.stack(), (1, 0, 2)), tf.transpose(weights_ta.stack(), (1, 0, 2))


def no_precompute_step(decoder, embedded, state, memory):
    """The fused input-feeding GRU step without its precomputation (the ``feed-3`` rung).

    The decoder's fast GRU step (:meth:`seq2seq_keras.model.Decoder.input_feeding_step`)
    without its speed tricks: the whole GRU input ``[embed(y) ; c_i] W + b_in`` is
    multiplied here, at every step, and the weights are read in the step. Same weights
    and numbers as the decoder.
    """
    h = state[0]
    dtype = h.dtype
    cell = decoder.cell
    kernel, recurrent_kernel, input_bias, recurrent_bias = fast_gru.gru_weights(
        cell.kernel, cell.recurrent_kernel, cell.bias, dtype
    )
    values = ops.cast(memory.values, dtype)
    if decoder.attention is None:
        weights = ops.zeros(ops.shape(values)[:2], dtype=dtype)
        context = ops.cast(memory.context, dtype)
    else:
        weights = masked_softmax(decoder.attention.score(h, ops.cast(memory.keys, dtype)), memory.mask)
        context = ops.squeeze(ops.matmul(ops.expand_dims(weights, 1), values), 1)
    inputs_part = ops.matmul(ops.concatenate([ops.cast(embedded, dtype), context], axis=-1), kernel) + input_bias
    new_h = fast_gru.gru_update(inputs_part, ops.matmul(h, recurrent_kernel) + recurrent_bias, h)
    return ops.concatenate([new_h, context], axis=-1), [new_h], weights


def no_precompute_decode(decoder, target_in, encoder_outputs, encoder_states, source_mask, training=None):
    """Teacher forcing with :func:`no_precompute_step` -> logits, weights (as ``Decoder.call``)."""
    state, memory = decoder.start(encoder_outputs, encoder_states, source_mask)
    embedded = decoder.dropout_layer(decoder.embedding(target_in), training=training)
    steps = tf.shape(target_in)[1]
    inputs = tf.TensorArray(embedded.dtype, size=steps).unstack(tf.transpose(embedded, (1, 0, 2)))
    features_ta = tf.TensorArray(decoder.compute_dtype, size=steps, element_shape=[None, decoder.output_features_dim])
    weights_ta = tf.TensorArray(decoder.compute_dtype, size=steps)

    def body(i, state, features_ta, weights_ta):
        features, state, weights = no_precompute_step(decoder, inputs.read(i), state, memory)
        return i + 1, state, features_ta.write(i, features), weights_ta.write(i, weights)

    _, _, features_ta, weights_ta = tf.while_loop(
        lambda i, *_: i < steps, body, (tf.constant(0), state, features_ta, weights_ta), maximum_iterations=steps
    )
    features = tf.transpose(features_ta.stack(), (1, 0, 2))
    logits = decoder.logits(decoder.dropout_layer(features, training=training))
    return logits, tf.transpose(weights_ta.stack(), (1, 0, 2))


class NoPrecomputeSeq2Seq(Seq2Seq):
    """The ``feed-3`` rung: the decoder runs :func:`no_precompute_step` (a GRU input-feeding
    decoder; build it with ``implementation="layers"`` so that :meth:`Decoder.start` does
    not precompute ``H W_c``). Same weights and numbers as :class:`Seq2Seq`."""

    def call_with_attention(self, inputs, training=None):
        source_ids, target_in = inputs
        encoder_outputs, encoder_states, source_mask = self.encoder(source_ids, training=training)
        return no_precompute_decode(self.decoder, target_in, encoder_outputs, encoder_states, source_mask, training)


def our_text_processors(train, vocabulary: int):
    """Source and target :class:`TextProcessor` adapted on the training split, ``vocabulary`` tokens each."""
    source = TextProcessor.for_language(train.source_lang, max_tokens=vocabulary, name="source_text")
    target = TextProcessor.for_language(
        train.target_lang, add_start_end=True, max_tokens=vocabulary, name="target_text"
    )
    return source.adapt(train.source), target.adapt(train.target)


def build_our_model(variant: Variant, size: ModelSize, source_text, target_text, seed: int = 0) -> Seq2Seq:
    """A compiled model for ``variant`` (mixed precision only inside its construction)."""
    keras.utils.set_random_seed(seed)
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(variant.policy)
    try:
        if variant.architecture == "transformer":
            model = Seq2Seq(
                source_text,
                target_text,
                architecture="transformer",
                num_layers=size.num_layers,
                num_heads=size.num_heads,
                model_dim=size.model_dim,
                ff_dim=size.ff_dim,
            )
            model.compile(
                keras.optimizers.Adam(_learning_rate(variant, size), global_clipnorm=5.0),
                jit_compile=variant.jit_compile,
                label_smoothing=variant.label_smoothing,
            )
            return model
        cls = StepwiseSeq2Seq if variant.stepwise else NoPrecomputeSeq2Seq if variant.no_precompute else Seq2Seq
        model = cls(
            source_text,
            target_text,
            embedding_dim=size.embedding_dim,
            encoder_units=size.our_encoder_units,
            attention=variant.attention,
            input_feeding=variant.input_feeding,
        )
    finally:
        keras.config.set_dtype_policy(previous)
    if variant.stepwise:
        model.recompute_keys = variant.stepwise == "keys-every-step"
    model.encoder.implementation = variant.encoder_impl
    model.decoder.implementation = variant.decoder_impl
    model.compile(
        keras.optimizers.Adam(_learning_rate(variant, size), global_clipnorm=5.0),
        jit_compile=variant.jit_compile,
        label_smoothing=variant.label_smoothing,
    )
    return model


def _learning_rate(variant: Variant, size: ModelSize):
    """The variant's learning rate as ``seq2seq-keras train`` builds it (a float, or a warm-up schedule)."""
    from seq2seq_keras.training.schedule import learning_rate

    peak = size.learning_rate if variant.peak_lr is None else variant.peak_lr
    return learning_rate(peak, variant.warmup_steps, variant.lr_decay)


def our_dataset(variant: Variant, pairs, source_text, target_text, size: ModelSize, seed: int = 0) -> tf.data.Dataset:
    dataset = make_dataset(
        pairs,
        source_text,
        target_text,
        batch_size=size.batch_size,
        seed=seed,
        bucket_boundaries="auto" if variant.bucketing else None,
        max_length=MAX_LENGTH,
        cache=variant.cache,
        pad_to_multiple=variant.pad_multiple,
        batch_tokens=variant.batch_tokens if variant.bucketing else None,  # a token cap sizes length buckets
    )
    return dataset


# --------------------------------------------------------------------------- runners
@dataclasses.dataclass
class Window:
    steps: int
    wall_s: float
    cpu_s: float
    pairs: int
    tokens: int
    flops: float


class Runner:
    """Runs training steps of one variant and accounts pairs, tokens and FLOPs of each batch."""

    def __init__(
        self, variant: Variant, model, dataset: tf.data.Dataset, account: Callable[[object], tuple[int, int, float]]
    ):
        self.variant = variant
        self.model = model
        self.iterator = iter(dataset.repeat())
        self.account = account
        self.windows: list[Window] = []
        self.warmup_s = 0.0
        model.make_train_function()

    def run(self, steps: int) -> tuple[float, float, list]:
        batches = []
        wall, cpu = time.perf_counter(), time.process_time()
        for _ in range(steps):
            batch = next(self.iterator)
            logs = self.model.train_function(iter([batch]))
            batches.append(batch)
        float(next(iter(logs.values())))  # the step has finished (CPU eager ops are synchronous anyway)
        return time.perf_counter() - wall, time.process_time() - cpu, batches

    def warm_up(self, steps: int) -> None:
        start = time.perf_counter()
        self.run(max(1, steps))
        self.warmup_s = time.perf_counter() - start

    def measure(self, steps: int) -> Window:
        wall, cpu, batches = self.run(steps)
        pairs = tokens = 0
        flops = 0.0
        for batch in batches:  # accounted after the timed window
            p, t, f = self.account(batch)
            pairs, tokens, flops = pairs + p, tokens + t, flops + f
        window = Window(steps, wall, cpu, pairs, tokens, flops)
        self.windows.append(window)
        return window


def tutorial_runner(train, size: ModelSize, seed: int = 0, model=None) -> Runner:
    keras.utils.set_random_seed(seed)
    if model is None:
        model = tutorial_reference.build(
            train.source,
            train.target,
            embedding_dim=size.embedding_dim,
            units=size.units,
            max_vocab_size=size.vocabulary,
            learning_rate=size.learning_rate,
        )
    sizes = TutorialSizes(size.embedding_dim, size.units, model.output_text_processor.vocabulary_size())

    def account(batch):
        source, target = batch
        source_ids = model.input_text_processor(source)
        target_ids = model.output_text_processor(target)
        b = int(source_ids.shape[0])
        tokens = int(tf.math.count_nonzero(source_ids)) + int(tf.math.count_nonzero(target_ids))
        macs = tutorial_forward_macs(sizes, b, int(source_ids.shape[1]), max(int(target_ids.shape[1]) - 1, 0))
        return b, tokens, training_flops(macs)

    dataset = tutorial_reference.make_dataset(train.source, train.target, size.batch_size, seed=seed)
    return Runner(TUTORIAL, model, dataset, account)


def our_runner(variant: Variant, train, size: ModelSize, source_text, target_text, seed: int = 0) -> Runner:
    model = build_our_model(variant, size, source_text, target_text, seed)
    sizes = sizes_of(model)

    def account(batch):
        (source_ids, target_in), _ = batch
        source_ids, target_in = source_ids.numpy(), target_in.numpy()
        b, s = source_ids.shape  # computed shape (XLA rows pad it)
        t = target_in.shape[1]
        pairs = int(np.count_nonzero(target_in[:, 0]))  # real sentences start with [START]
        # Source tokens, and target tokens with [START] and [END] (= target_in's + 1 per sentence).
        tokens = int(np.count_nonzero(source_ids) + np.count_nonzero(target_in) + pairs)
        return pairs, tokens, training_flops(forward_macs(sizes, int(b), int(s), int(t)))

    return Runner(variant, model, our_dataset(variant, train, source_text, target_text, size, seed), account)


# --------------------------------------------------------------------------- the table
@dataclasses.dataclass
class SpeedRow:
    variant: Variant
    steps_per_s: float
    pairs_per_s: float
    tokens_per_s: float
    flops_per_s: float
    cpu_ms_per_step: float
    ratio: float  # pairs/s over the reference's, median of per-round ratios
    efficiency: float  # flops_per_s / peak float32 matmul FLOP/s
    warmup_s: float
    parameters: int
    windows: int

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["variant"] = self.variant.to_dict()
        return d


def measure_speed(
    variants: Sequence[Variant],
    data,
    size: ModelSize,
    *,
    steps: int = 10,
    repeats: int = 5,
    warmup: int = 5,
    xla_warmup: int = 40,
    peak_flops: float = float("nan"),
    seed: int = 0,
    progress: Callable[[str], None] = print,
) -> list[SpeedRow]:
    """Build every variant, warm each up, then measure ``repeats`` interleaved rounds of ``steps`` steps.

    XLA rows warm up for ``xla_warmup`` steps (one compilation per new batch shape); the
    quality part, which times whole training runs, includes all compilations.

    The first variant is the reference of the ratios (normally :data:`TUTORIAL`).
    """
    our_text = None
    runners: list[Runner] = []
    for variant in variants:
        progress(f"building {variant.key}: {variant.label}")
        if variant.family == "tutorial":
            runners.append(tutorial_runner(data.train, size, seed))
        else:
            if our_text is None:
                our_text = our_text_processors(data.train, size.vocabulary)
            runners.append(our_runner(variant, data.train, size, *our_text, seed=seed))
        # XLA compiles once per batch shape: warm up long enough to meet the common ones.
        runners[-1].warm_up(max(warmup, xla_warmup) if variant.jit_compile else warmup)
        progress(f"  warmed up in {runners[-1].warmup_s:.1f} s")
    # One unrecorded round-robin round: the first window after all rows are built is slow for
    # every row (allocator growth, caches, thread pools settling), whatever its position.
    for runner in runners:
        runner.run(steps)
    for round_index in range(repeats):
        order = runners[round_index % len(runners) :] + runners[: round_index % len(runners)]
        for runner in order:
            runner.measure(steps)
        reference = runners[0].windows[-1]
        progress(
            f"round {round_index + 1}/{repeats}: "
            + ", ".join(f"{r.variant.key} {r.windows[-1].pairs / r.windows[-1].wall_s:.0f}" for r in runners)
            + f" pairs/s (reference {reference.pairs / reference.wall_s:.0f})"
        )
    rows = []
    reference = runners[0]
    for runner in runners:
        w = runner.windows
        pairs_per_s = [x.pairs / x.wall_s for x in w]
        ratios = [p / (r.pairs / r.wall_s) for p, r in zip(pairs_per_s, reference.windows)]
        flops_per_s = median([x.flops / x.wall_s for x in w])
        rows.append(
            SpeedRow(
                variant=runner.variant,
                steps_per_s=median([x.steps / x.wall_s for x in w]),
                pairs_per_s=median(pairs_per_s),
                tokens_per_s=median([x.tokens / x.wall_s for x in w]),
                flops_per_s=flops_per_s,
                cpu_ms_per_step=median([1000 * x.cpu_s / x.steps for x in w]),
                ratio=median(ratios),
                efficiency=flops_per_s / peak_flops if peak_flops == peak_flops else float("nan"),
                warmup_s=runner.warmup_s,
                parameters=int(sum(np.prod(v.shape) for v in runner.model.trainable_variables)),
                windows=len(w),
            )
        )
    runners.clear()
    gc.collect()
    return rows


def fastest(rows: Sequence[SpeedRow], family: str) -> Variant | None:
    """The configuration of ``family`` with the highest pairs/s (stepwise rows excluded)."""
    candidates = [r for r in rows if r.variant.family == family and not r.variant.stepwise]
    return max(candidates, key=lambda r: r.pairs_per_s).variant if candidates else None
