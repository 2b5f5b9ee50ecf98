"""``Seq2Seq``: encoder + decoder, trained with ``model.fit`` through a custom ``train_step``.

The model owns its two :class:`~seq2seq_keras.text.TextProcessor` layers, so a
saved ``.keras`` file translates raw strings on its own.

Training data are ``((source_ids, target_in), target_out)`` batches (see
:func:`seq2seq_keras.data.make_dataset`): teacher forcing feeds the gold previous
word ``target_in = [START] y_1 .. y_{T-1}`` and predicts ``target_out = y_1 .. y_{T-1} [END]``.
Padding (id 0) in ``target_out`` is excluded from the loss and the accuracy.

Under ``tf.distribute`` the loss is normalised by the number of real target
tokens in the *global* batch (summed over replicas), so a replicated run
computes the same gradient as one device with the same global batch.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
import tensorflow as tf
from keras import ops

from ..text import END_ID, PAD_ID, TextProcessor
from .choices import ARCHITECTURES, attention_name
from .decoder import Decoder
from .encoder import Encoder
from .transformer import TransformerDecoder, TransformerEncoder

#: ``attention_type`` of a Transformer model (a label: its attention is fixed, not an option).
TRANSFORMER_ATTENTION = "multi-head scaled-dot"


def masked_token_loss(target_out, logits, label_smoothing: float = 0.0):
    """Per-batch sums: (cross-entropy over real tokens, number of real tokens, correct tokens).

    ``target_out`` int [batch, tgt_len] (0 = padding), ``logits`` [batch, tgt_len, vocab].
    Logits at padded positions never influence any of the three numbers.

    ``label_smoothing`` ``e`` in [0, 1): the cross-entropy against a target distribution that
    gives ``1 - e`` to the gold token and spreads ``e`` evenly over the vocabulary (Szegedy et
    al. 2016, section 7; Vaswani et al. 2017 train with 0.1): per token
    ``(1 - e) * -log p(y) + e * mean_k(-log p(k))``. 0 is the plain cross-entropy.
    """
    mask = ops.cast(ops.not_equal(target_out, PAD_ID), "float32")
    logits = ops.cast(logits, "float32")
    per_token = keras.losses.sparse_categorical_crossentropy(target_out, logits, from_logits=True)
    if label_smoothing:
        uniform = -ops.mean(ops.log_softmax(logits, axis=-1), axis=-1)  # cross-entropy against the uniform distribution
        per_token = (1.0 - label_smoothing) * per_token + label_smoothing * uniform
    correct = ops.cast(ops.equal(ops.cast(ops.argmax(logits, axis=-1), target_out.dtype), target_out), "float32")
    return ops.sum(per_token * mask), ops.sum(mask), ops.sum(correct * mask)


def _multi_worker(strategy) -> bool:
    """``MultiWorkerMirroredStrategy`` with more than one worker (Keras' own test for its multi-worker reduce)."""
    return isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy) and strategy.extended._in_multi_worker_mode()


@keras.saving.register_keras_serializable(package="seq2seq_keras")
class Seq2Seq(keras.Model):
    """Attention encoder-decoder for translation.

    Args:
        source_text, target_text: adapted :class:`TextProcessor` layers (the target
            one with ``add_start_end=True``).
        embedding_dim: embedding size on both sides.
        encoder_units: encoder units per direction; the decoder has the encoder's
            output width, ``2 * encoder_units`` (bidirectional), so that ``luong-dot``
            can compare its state with the encoder states directly.
        attention: one of ``bahdanau``, ``luong-dot``, ``luong-general``,
            ``luong-scaled-dot`` or ``None``/``"none"`` (the fixed-context
            encoder-decoder: the bottleneck baseline, same API).
        rnn: ``gru`` or ``lstm``; encoder_layers: stacked encoder layers.
        dropout: on embeddings, between layers and before the output projection.
        input_feeding: ``True`` (default): the context enters the decoder RNN at
            every step (Bahdanau). ``False``: the fast mode (Luong without input
            feeding): the decoder RNN runs over the whole target at once and
            attention for all steps is one batched call; see
            :mod:`seq2seq_keras.model.decoder`.
        implementation: how the encoder and decoder run their GRUs, same weights and
            numbers either way: ``"auto"`` (default: each layer's measured choice),
            ``"fused"`` (:mod:`seq2seq_keras.model.fast_gru`) or ``"layers"`` (Keras' layers only).
        architecture: ``"rnn"`` (default: the recurrent encoder-decoder above) or
            ``"transformer"`` (:mod:`seq2seq_keras.model.transformer`, Vaswani et al. 2017,
            pre-norm). A Transformer uses ``num_layers`` (encoder and decoder layers
            each), ``num_heads``, ``model_dim`` (embedding and layer width, a multiple
            of ``num_heads``, even), ``ff_dim`` (feed-forward width) and ``dropout``;
            the recurrent options (``embedding_dim``, ``encoder_units``, ``attention``,
            ``rnn``, ...) are ignored. Its ``attention_type`` is ``"multi-head scaled-dot"``.

    Call: ``logits = model((source_ids, target_in))`` -> float32 [batch, tgt_len, vocab];
    ``model.call_with_attention(...)`` also returns weights [batch, tgt_len, src_len]
    (a Transformer: its last layer's cross-attention, mean over heads);
    :meth:`cross_attention` returns every layer's and head's.
    """

    def __init__(
        self,
        source_text: TextProcessor,
        target_text: TextProcessor,
        *,
        embedding_dim: int = 128,
        encoder_units: int = 256,
        attention: str | None = "bahdanau",
        attention_units: int | None = None,
        rnn: str = "gru",
        encoder_layers: int = 1,
        bidirectional: bool = True,
        dropout: float = 0.0,
        input_feeding: bool = True,
        implementation: str = "auto",
        architecture: str = "rnn",
        num_layers: int = 2,
        num_heads: int = 4,
        model_dim: int = 128,
        ff_dim: int = 512,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if isinstance(source_text, dict):
            source_text = keras.saving.deserialize_keras_object(source_text)
        if isinstance(target_text, dict):
            target_text = keras.saving.deserialize_keras_object(target_text)
        attention = attention_name(attention)
        if not target_text.add_start_end:
            raise ValueError("target_text must be built with add_start_end=True ([START]/[END] around targets).")
        self.source_text = source_text
        self.target_text = target_text
        self.embedding_dim = int(embedding_dim)
        self.encoder_units = int(encoder_units)
        self.attention_type = attention
        self.attention_units = attention_units
        self.rnn = rnn
        self.encoder_layers = int(encoder_layers)
        self.bidirectional = bool(bidirectional)
        self.dropout = float(dropout)
        self.input_feeding = bool(input_feeding)
        self.implementation = implementation

        if architecture not in ARCHITECTURES:
            raise ValueError(f"architecture={architecture!r}: choose one of {ARCHITECTURES}.")
        self.architecture = architecture
        self.num_layers, self.num_heads = int(num_layers), int(num_heads)
        self.model_dim, self.ff_dim = int(model_dim), int(ff_dim)
        if architecture == "transformer":
            self._build_transformer()
        else:
            self._build_rnn()
        self.label_smoothing = 0.0  # set by compile()
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.accuracy_tracker = keras.metrics.Mean(name="accuracy")
        self.built = True

    def _build_rnn(self):
        self.encoder = Encoder(
            self.source_text.vocabulary_size,
            self.embedding_dim,
            self.encoder_units,
            rnn=self.rnn,
            num_layers=self.encoder_layers,
            bidirectional=self.bidirectional,
            dropout=self.dropout,
            implementation=self.implementation,
            name="encoder",
            dtype=self.dtype_policy,
        )
        self.decoder = Decoder(
            self.target_text.vocabulary_size,
            self.embedding_dim,
            self.encoder.output_dim,
            attention=self.attention_type,
            attention_units=self.attention_units,
            rnn=self.rnn,
            dropout=self.dropout,
            input_feeding=self.input_feeding,
            implementation=self.implementation,
            name="decoder",
            dtype=self.dtype_policy,
        )
        # Every shape is known from the configuration: build now, so that a model
        # rebuilt from its config can load weights before it has seen data.
        self.encoder.build((None, None))
        self.decoder.build((None, None), (None, None, self.encoder.output_dim))

    def _build_transformer(self):
        sizes = dict(
            num_layers=self.num_layers,
            num_heads=self.num_heads,
            model_dim=self.model_dim,
            ff_dim=self.ff_dim,
            dropout=self.dropout,
            dtype=self.dtype_policy,
        )
        self.attention_type = TRANSFORMER_ATTENTION
        self.encoder = TransformerEncoder(self.source_text.vocabulary_size, name="encoder", **sizes)
        self.decoder = TransformerDecoder(self.target_text.vocabulary_size, name="decoder", **sizes)
        self.encoder.build((None, None))
        self.decoder.build((None, None), (None, None, self.model_dim))

    # ------------------------------------------------------------------ forward
    @property
    def has_attention(self) -> bool:
        return self.attention_type is not None

    def cross_attention(self, source, target):
        """Every layer's and head's attention from target to source, teacher-forced (inference mode).

        ``source``, ``target``: sentences (``str`` or a list of them, encoded by the
        model's text processors; the target is read as ``[START] y_1 .. y_T``, with
        ``[END]`` as the last predicted word) or int ids [batch, src_len] and
        ``target_in`` [batch, tgt_len].

        Returns float32 [batch, layers, heads, tgt_len, src_len]: row ``i`` is what the
        step predicting target token ``i + 1`` attended to. A Transformer has
        ``num_layers`` layers and ``num_heads`` heads; a recurrent model has one of
        each (its only attention; zeros without attention).
        """
        if isinstance(source, str) or (isinstance(source, (list, tuple)) and source and isinstance(source[0], str)):
            source = self.source_text([source] if isinstance(source, str) else list(source))
            target = self.target_text([target] if isinstance(target, str) else list(target))[:, :-1]
            target = ops.where(ops.equal(target, END_ID), PAD_ID, target)  # [END] is never a decoder input
        encoder_outputs, encoder_states, source_mask = self.encoder(source, training=False)
        if self.architecture == "transformer":
            weights = self.decoder.cross_attention_weights(target, encoder_outputs, source_mask)
        else:
            weights = self.decoder(target, encoder_outputs, encoder_states, source_mask, training=False)[1]
            weights = weights[:, None, None]
        return ops.cast(weights, "float32")

    def attention_heads(self, text, outputs, max_source_length: int | None = None):
        """Every layer's and head's cross-attention over a decoded hypothesis (for a Transformer).

        Args:
            text: string [batch], the sentences that were translated.
            outputs: :func:`~seq2seq_keras.decoding.pipeline.translate_graph`'s outputs for them
                (``target_ids`` int32 [batch, tgt_len], ``target_length`` int32 [batch]).
            max_source_length: the source truncation the search used (default:
                :class:`~seq2seq_keras.decoding.options.DecodingOptions`').

        Returns float32 [batch, layers, heads, tgt_len, src_len], zero on padding rows:
        one teacher-forced pass (:meth:`cross_attention`) over ``[START] y_1 ..
        y_{T-1}``. This is exactly what the search's steps attended to, because the
        decoder's self-attention is causal: row ``t`` sees only the inputs ``0..t``,
        which are the tokens the search had chosen when it took step ``t``. (Its last
        layer's mean over heads is the ``attention`` output.) Computed after the search,
        so decoding stays one code path and a step carries no per-head tensors.
        """
        from ..decoding.options import DEFAULT_MAX_SOURCE_LENGTH
        from ..decoding.pipeline import encode_source
        from ..text import START_ID

        source_ids = encode_source(self, text, max_source_length or DEFAULT_MAX_SOURCE_LENGTH)[0]
        target_ids = outputs["target_ids"]
        start = tf.fill([tf.shape(target_ids)[0], 1], tf.constant(START_ID, target_ids.dtype))
        weights = self.cross_attention(source_ids, tf.concat([start, target_ids[:, :-1]], axis=1))
        valid = tf.sequence_mask(outputs["target_length"], tf.shape(target_ids)[1], dtype=weights.dtype)
        return weights * valid[:, None, None, :, None]

    def call_with_attention(self, inputs, training=None):
        source_ids, target_in = inputs
        encoder_outputs, encoder_states, source_mask = self.encoder(source_ids, training=training)
        return self.decoder(target_in, encoder_outputs, encoder_states, source_mask, training=training)

    def call(self, inputs, training=None):
        logits, _ = self.call_with_attention(inputs, training=training)
        return logits

    # ------------------------------------------------------------------ training
    def compile(self, optimizer="adam", label_smoothing: float = 0.0, **kwargs):
        """Like ``keras.Model.compile``; the masked loss and token accuracy are built in.

        For gradient clipping pass an optimizer with ``global_clipnorm``, e.g.
        ``keras.optimizers.Adam(1e-3, global_clipnorm=5.0)``. ``label_smoothing`` in [0, 1)
        smooths the training loss (:func:`masked_token_loss`); validation and ``evaluate``
        report the plain cross-entropy, so their losses compare across settings. It is kept
        in the saved model's compile config.

        Raises:
            ValueError: ``label_smoothing`` outside [0, 1), or a ``loss=``/``metrics=`` argument.
        """
        if kwargs.get("loss") is not None or kwargs.get("metrics") is not None:
            raise ValueError(
                "Seq2Seq computes its own padding-masked loss and token accuracy; "
                "compile(optimizer=..., jit_compile=...) without loss= or metrics=."
            )
        kwargs.pop("loss", None)
        if not 0.0 <= float(label_smoothing) < 1.0:
            raise ValueError(f"label_smoothing must be >= 0 and < 1, got {label_smoothing!r}.")
        self.label_smoothing = float(label_smoothing)
        kwargs.pop("metrics", None)
        super().compile(optimizer=optimizer, **kwargs)

    def fit(self, x=None, *args, **kwargs):
        """Like ``keras.Model.fit``; ``shuffle`` defaults to False when ``x`` is a ``tf.data.Dataset``.

        Keras ignores ``shuffle`` for a dataset (shuffle it in the pipeline, as
        :func:`~seq2seq_keras.data.make_dataset` does) and warns ("`shuffle=True` was passed,
        but will be ignored") on every ``fit(dataset)`` that leaves it at its default True.
        """
        if "shuffle" not in kwargs and len(args) < 8 and isinstance(x, tf.data.Dataset):
            kwargs["shuffle"] = False  # positional arguments after x: y ... validation_data, then shuffle
        return super().fit(x, *args, **kwargs)

    def get_compile_config(self):
        """Keras' compile config plus ``label_smoothing`` (None before ``compile``)."""
        config = super().get_compile_config()
        if config is not None:
            config = {**config, "label_smoothing": self.label_smoothing}
        return config

    def compile_from_config(self, config):
        """Recompile a loaded ``.keras`` model (optimizer state included)."""
        config = keras.saving.deserialize_keras_object(config)
        keep = ("optimizer", "run_eagerly", "steps_per_execution", "jit_compile", "label_smoothing")
        self.compile(**{k: v for k, v in config.items() if k in keep and v is not None})
        self.optimizer.build(self.trainable_variables)

    @property
    def metrics(self):
        return [self.loss_tracker, self.accuracy_tracker]

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        """Keras' pre-``fit`` build under a strategy, minus the batch it pulls: every layer is built in ``__init__``.

        Under ``tf.distribute``, Keras (3.15, TensorFlow backend) takes one batch from a
        fresh iterator and averages it over replicas only to learn input shapes. Under
        ``MultiWorkerMirroredStrategy`` that reduce fails on the nested batch
        ("Attempt to convert a value (PerReplica...)", cf. keras-team/keras#20329), and
        the extra iterator shifts a reshuffling pipeline's epoch orders. Only the
        optimizer's variables are left to make, in the strategy's scope.
        """
        if self._distribute_strategy is None:
            return
        with self.distribute_strategy.scope():
            if self.optimizer is not None and not self.optimizer.built:
                self.optimizer.build(self.trainable_variables)

    def _batch_statistics(self, data, training):
        x, target_out = data[0], data[1]
        logits = self(x, training=training)
        return masked_token_loss(target_out, logits, self.label_smoothing if training else 0.0)

    def _update_metrics(self, loss_sum, tokens, correct):
        safe = ops.maximum(tokens, 1.0)
        self.loss_tracker.update_state(loss_sum / safe, sample_weight=tokens)
        self.accuracy_tracker.update_state(correct / safe, sample_weight=tokens)
        results = {m.name: m.result() for m in self.metrics}
        if _multi_worker(self.distribute_strategy):
            # Keras 3 averages each step's outputs over a multi-worker strategy's replicas with
            # strategy.reduce("MEAN", value, axis=0), which rejects scalars (tensorflow/tensorflow#72388).
            # Every replica holds the same global-batch value (_global_sums), so with a length-1
            # axis that mean is the value itself.
            results = {name: ops.reshape(value, (1,)) for name, value in results.items()}
        return results

    @staticmethod
    def _global_sums(*values):
        """Sum per-replica statistics over all replicas (identity off-strategy).

        Under ``tf.distribute`` every replica sees its share of the global batch;
        summing the loss, token and correct-token counts makes the loss
        normalisation and the reported metrics those of the whole global batch,
        exactly as one device would compute them.
        """
        return tf.distribute.get_replica_context().all_reduce("sum", list(values))

    def train_step(self, data):
        with tf.GradientTape() as tape:
            loss_sum, tokens, correct = self._batch_statistics(data, training=True)
            # Normalise by the real tokens of the *global* batch: the replicas'
            # gradients are summed, so the update equals one device's on the whole batch.
            (global_tokens,) = self._global_sums(tokens)
            loss = loss_sum / ops.maximum(global_tokens, 1.0)
            if self.losses:
                loss = loss + ops.sum(self.losses)
            scaled = self.optimizer.scale_loss(loss)
        grads = tape.gradient(scaled, self.trainable_variables)
        self.optimizer.apply_gradients(zip(grads, self.trainable_variables))
        return self._update_metrics(*self._global_sums(loss_sum, tokens, correct))

    def test_step(self, data):
        return self._update_metrics(*self._global_sums(*self._batch_statistics(data, training=False)))

    # ------------------------------------------------------------------ translation
    def translate(self, texts: str | Sequence[str], options=None, **keywords):
        """Translate raw sentences (:func:`seq2seq_keras.decoding.pipeline.translate`).

        Returns a :class:`~seq2seq_keras.translation.Translation` per sentence (a single
        one if ``texts`` is a ``str``) with the text, source and target tokens, the
        log-probability, the attention matrix [tgt_len, src_len] and the positions
        filled by unknown-word replacement (``replaced``), and the source words outside the
        source vocabulary, which the model read as ``[UNK]`` (``unknown_source``,
        ``unknown_source_words``, :meth:`~seq2seq_keras.translation.Translation.unknown_words_note`). How to decode is a
        :class:`~seq2seq_keras.decoding.options.DecodingOptions` (``options``) or its
        fields as keywords: ``model.translate(texts, method="beam", beam_width=4)``.
        """
        from ..decoding.pipeline import translate

        return translate(self, texts, options, **keywords)

    # ------------------------------------------------------------------ precision
    def with_dtype_policy(self, policy: str = "float32") -> Seq2Seq:
        """This model computing under another Keras dtype policy: the same weights, a new model
        (``self`` when it already computes under ``policy``).

        The training precision is a training option: a model trained in ``mixed_bfloat16``
        (``TrainConfig.precision``) keeps float32 weights, and ``with_dtype_policy("float32")``
        runs them in float32, as every export does (:func:`seq2seq_keras.serving.export.export_model`).
        The copy shares the text processors' vocabularies, not their lookup tables, and has no
        optimizer: it is for inference.

        Raises:
            ValueError: ``policy`` is not a Keras dtype policy name.
        """
        policy = keras.dtype_policies.get(policy)
        if policy.name == self.dtype_policy.name:
            return self
        config = self.get_config()
        config["dtype"] = keras.dtype_policies.serialize(policy)
        copy = type(self).from_config(config)
        mine, theirs = self.weights, copy.weights
        if [w.path for w in mine] != [w.path for w in theirs]:
            raise ValueError(f"with_dtype_policy({policy.name!r}): the copy's weights do not line up with the model's")
        for source, target in zip(mine, theirs):
            target.assign(source)
        return copy

    # ------------------------------------------------------------------ config
    def get_config(self):
        # The base config carries the name, trainable flag and dtype policy: a model trained under
        # mixed_float16/mixed_bfloat16 reloads mixed (and so with the same optimizer variables).
        return {
            **super().get_config(),
            "source_text": keras.saving.serialize_keras_object(self.source_text),
            "target_text": keras.saving.serialize_keras_object(self.target_text),
            "embedding_dim": self.embedding_dim,
            "encoder_units": self.encoder_units,
            "attention": self.attention_type if self.architecture == "rnn" else None,
            "attention_units": self.attention_units,
            "rnn": self.rnn,
            "encoder_layers": self.encoder_layers,
            "bidirectional": self.bidirectional,
            "dropout": self.dropout,
            "input_feeding": self.input_feeding,
            "implementation": self.implementation,
            "architecture": self.architecture,
            "num_layers": self.num_layers,
            "num_heads": self.num_heads,
            "model_dim": self.model_dim,
            "ff_dim": self.ff_dim,
        }

    @classmethod
    def from_config(cls, config):
        return cls(**config)
