"""The in-run baseline: TensorFlow's older "NMT with attention" tutorial, re-implemented.

This module is **not** part of ``seq2seq_keras``. It re-implements, as faithfully as
Keras 3 allows, the formulation of the TensorFlow tutorial "Neural machine
translation with attention" in its 2021-2022 version (a ``BahdanauAttention``
layer wrapping ``AdditiveAttention``, a ``train_step`` override around a
``tf.function`` with a string input signature, and an exported ``tf_translate``),
so that :mod:`benchmarks.run` can measure every speed ratio against it side by
side, in the same process, on the same data and the same machine.

What is kept from the tutorial, on purpose (it is what makes it slow):

* text processing (``TextVectorization`` with the tutorial's ``tf_lower_and_split_punct``
  standardiser, vocabulary capped at 5,000 per language) runs *inside* the train step;
* no length bucketing: ``Dataset.from_tensor_slices(...).shuffle(N).batch(64)`` of raw
  strings, each batch padded to its own longest sentence;
* the decoder is called once per target position from a Python-level ``for t in
  tf.range(...)`` loop inside the ``tf.function`` (autograph turns it into a
  ``tf.while_loop``), and every call runs Keras layers on one time step: a ``GRU``
  layer over a sequence of length 1, ``W2`` (the key projection of *all* encoder
  outputs) recomputed at every step, ``Wc`` and the output projection ``fc`` over the
  vocabulary inside the loop, and the loss per step;
* the decoder is Luong-ordered (GRU first, then attention with the new GRU output
  as the query, no input feeding) with Bahdanau's additive score.

Adaptations to Keras 3 (no change in the computation): ``tf.keras`` -> ``keras``,
``Dataclass``/``typing`` containers for the decoder input, ``self.loss`` kept as a
plain attribute ``masked_loss``. Translation (``Translator.tf_translate``) is
greedy (the tutorial's ``temperature=0`` branch) so that it is comparable with
:func:`seq2seq_keras.decoding.search.greedy_search`.
"""

from __future__ import annotations

import dataclasses

import keras
import numpy as np
import tensorflow as tf
import tensorflow_text as tf_text

#: The tutorial's vocabulary cap (per language, reserved tokens included).
MAX_VOCAB_SIZE = 5000


def tf_lower_and_split_punct(text):
    """The tutorial's standardiser: NFKD, lower-case, keep ``[ a-z.?!,¿]``, split punctuation, add START/END."""
    text = tf_text.normalize_utf8(text, "NFKD")
    text = tf.strings.lower(text)
    text = tf.strings.regex_replace(text, "[^ a-z.?!,¿]", "")
    text = tf.strings.regex_replace(text, "[.?!,¿]", r" \0 ")
    text = tf.strings.strip(text)
    return tf.strings.join(["[START]", text, "[END]"], separator=" ")


def make_text_processor(sentences, max_tokens: int = MAX_VOCAB_SIZE) -> keras.layers.TextVectorization:
    """``TextVectorization`` adapted on ``sentences`` as in the tutorial: strings [batch] -> int64 [batch, len]."""
    processor = keras.layers.TextVectorization(standardize=tf_lower_and_split_punct, max_tokens=max_tokens)
    processor.adapt(tf.data.Dataset.from_tensor_slices(list(sentences)).batch(1024))
    return processor


def make_dataset(source, target, batch_size: int = 64, seed: int = 0) -> tf.data.Dataset:
    """The tutorial's pipeline: raw string pairs, whole-corpus shuffle, batch; no bucketing, no prefetch."""
    dataset = tf.data.Dataset.from_tensor_slices((list(source), list(target)))
    return dataset.shuffle(len(source), seed=seed).batch(batch_size)


class Encoder(keras.layers.Layer):
    """Embedding + unidirectional GRU: tokens [batch, src_len] -> output [batch, src_len, units], state [batch, units]."""

    def __init__(self, input_vocab_size: int, embedding_dim: int, enc_units: int):
        super().__init__()
        self.enc_units = enc_units
        self.embedding = keras.layers.Embedding(input_vocab_size, embedding_dim)
        self.gru = keras.layers.GRU(
            enc_units, return_sequences=True, return_state=True, recurrent_initializer="glorot_uniform"
        )

    def call(self, tokens, state=None):
        vectors = self.embedding(tokens)
        output, state = self.gru(vectors, initial_state=state)
        return output, state


class BahdanauAttention(keras.layers.Layer):
    """``W1 query`` and ``W2 value`` (recomputed at every call), scored by ``AdditiveAttention``."""

    def __init__(self, units: int):
        super().__init__()
        self.W1 = keras.layers.Dense(units, use_bias=False)
        self.W2 = keras.layers.Dense(units, use_bias=False)
        self.attention = keras.layers.AdditiveAttention()
        self.supports_masking = True  # the mask is an explicit argument; silences a Keras 3 warning

    def call(self, query, value, mask):
        w1_query = self.W1(query)
        w2_key = self.W2(value)
        query_mask = tf.ones(tf.shape(query)[:-1], dtype=bool)
        context_vector, attention_weights = self.attention(
            inputs=[w1_query, value, w2_key], mask=[query_mask, mask], return_attention_scores=True
        )
        return context_vector, attention_weights


@dataclasses.dataclass
class DecoderInput:
    new_tokens: tf.Tensor  # [batch, 1]
    enc_output: tf.Tensor  # [batch, src_len, units]
    mask: tf.Tensor  # [batch, src_len] bool


class Decoder(keras.layers.Layer):
    """One step: embed -> GRU (length-1 sequence) -> attention(query=rnn_output) -> Wc -> fc."""

    def __init__(self, output_vocab_size: int, embedding_dim: int, dec_units: int):
        super().__init__()
        self.output_vocab_size = output_vocab_size
        self.embedding = keras.layers.Embedding(output_vocab_size, embedding_dim)
        self.gru = keras.layers.GRU(
            dec_units, return_sequences=True, return_state=True, recurrent_initializer="glorot_uniform"
        )
        self.attention = BahdanauAttention(dec_units)
        self.Wc = keras.layers.Dense(dec_units, activation=tf.math.tanh, use_bias=False)
        self.fc = keras.layers.Dense(output_vocab_size)

    def call(self, new_tokens, enc_output, mask, state=None):
        vectors = self.embedding(new_tokens)  # [batch, 1, emb]
        rnn_output, state = self.gru(vectors, initial_state=state)  # [batch, 1, units]
        context_vector, attention_weights = self.attention(query=rnn_output, value=enc_output, mask=mask)
        context_and_rnn_output = tf.concat([context_vector, rnn_output], axis=-1)
        attention_vector = self.Wc(context_and_rnn_output)
        logits = self.fc(attention_vector)  # [batch, 1, vocab]
        return logits, attention_weights, state


class MaskedLoss:
    """Sum of per-token cross-entropy over non-padding targets."""

    def __init__(self):
        self.loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True, reduction=None)

    def __call__(self, y_true, y_pred):
        loss = self.loss(y_true, y_pred)
        mask = tf.cast(y_true != 0, tf.float32)
        return tf.reduce_sum(loss * mask)


class TrainTranslator(keras.Model):
    """The tutorial's training model: ``fit`` on batches of raw ``(source, target)`` strings."""

    def __init__(self, embedding_dim: int, units: int, input_text_processor, output_text_processor):
        super().__init__()
        self.encoder = Encoder(input_text_processor.vocabulary_size(), embedding_dim, units)
        self.decoder = Decoder(output_text_processor.vocabulary_size(), embedding_dim, units)
        self.input_text_processor = input_text_processor
        self.output_text_processor = output_text_processor
        self.masked_loss = MaskedLoss()
        # Build the weights (the tutorial built them on the first batch).
        tokens = tf.constant([[2, 4, 3]], tf.int64)
        enc_output, enc_state = self.encoder(tokens)
        self.decoder(tokens[:, :1], enc_output, tokens != 0, state=enc_state)

    def _preprocess(self, input_text, target_text):
        input_tokens = self.input_text_processor(input_text)
        target_tokens = self.output_text_processor(target_text)
        return input_tokens, input_tokens != 0, target_tokens, target_tokens != 0

    def _loop_step(self, new_tokens, input_mask, enc_output, dec_state):
        input_token, target_token = new_tokens[:, 0:1], new_tokens[:, 1:2]
        logits, _, dec_state = self.decoder(input_token, enc_output, input_mask, state=dec_state)
        return self.masked_loss(target_token, logits), dec_state

    def _train_step(self, inputs):
        input_text, target_text = inputs
        input_tokens, input_mask, target_tokens, target_mask = self._preprocess(input_text, target_text)
        max_target_length = tf.shape(target_tokens)[1]
        with tf.GradientTape() as tape:
            enc_output, enc_state = self.encoder(input_tokens)
            dec_state = enc_state
            loss = tf.constant(0.0)
            for t in tf.range(max_target_length - 1):
                new_tokens = target_tokens[:, t : t + 2]
                step_loss, dec_state = self._loop_step(new_tokens, input_mask, enc_output, dec_state)
                loss = loss + step_loss
            average_loss = loss / tf.reduce_sum(tf.cast(target_mask, tf.float32))
        variables = self.trainable_variables
        gradients = tape.gradient(average_loss, variables)
        self.optimizer.apply_gradients(zip(gradients, variables))
        return {"batch_loss": average_loss}

    @tf.function(
        input_signature=[[tf.TensorSpec(dtype=tf.string, shape=[None]), tf.TensorSpec(dtype=tf.string, shape=[None])]]
    )
    def _tf_train_step(self, inputs):
        return self._train_step(inputs)

    def train_step(self, data):
        return self._tf_train_step(list(data))


class Translator(tf.Module):
    """The tutorial's exportable translator: ``tf_translate(strings [batch]) -> {"text", "attention"}``."""

    def __init__(self, encoder, decoder, input_text_processor, output_text_processor, max_length: int = 50):
        super().__init__()
        self.encoder = encoder
        self.decoder = decoder
        self.input_text_processor = input_text_processor
        self.output_text_processor = output_text_processor
        self.max_length = max_length
        vocabulary = output_text_processor.get_vocabulary()
        self.output_token_string_from_index = keras.layers.StringLookup(
            vocabulary=vocabulary, mask_token="", invert=True
        )
        index_from_string = keras.layers.StringLookup(vocabulary=vocabulary, mask_token="")
        token_mask_ids = np.asarray(index_from_string(["", "[UNK]", "[START]"]))
        token_mask = np.zeros([index_from_string.vocabulary_size()], dtype=bool)
        token_mask[token_mask_ids] = True
        self.token_mask = tf.constant(token_mask)
        self.start_token = int(np.asarray(index_from_string(tf.constant("[START]"))))
        self.end_token = int(np.asarray(index_from_string(tf.constant("[END]"))))

    def tokens_to_text(self, result_tokens):
        result_text_tokens = self.output_token_string_from_index(result_tokens)
        result_text = tf.strings.reduce_join(result_text_tokens, axis=1, separator=" ")
        return tf.strings.strip(result_text)

    def sample(self, logits):
        """Greedy (the tutorial's ``temperature == 0`` branch), reserved tokens masked."""
        logits = tf.where(self.token_mask[tf.newaxis, tf.newaxis, :], -np.inf, logits)
        return tf.argmax(logits, axis=-1)

    def translate_symbolic(self, input_text):
        batch_size = tf.shape(input_text)[0]
        input_tokens = self.input_text_processor(input_text)
        enc_output, enc_state = self.encoder(input_tokens)
        dec_state = enc_state
        new_tokens = tf.fill([batch_size, 1], tf.constant(self.start_token, tf.int64))
        result_tokens = tf.TensorArray(tf.int64, size=1, dynamic_size=True)
        attention = tf.TensorArray(tf.float32, size=1, dynamic_size=True)
        done = tf.zeros([batch_size, 1], dtype=tf.bool)
        for t in tf.range(self.max_length):
            logits, weights, dec_state = self.decoder(new_tokens, enc_output, input_tokens != 0, state=dec_state)
            attention = attention.write(t, weights)
            new_tokens = self.sample(logits)
            done = done | (new_tokens == self.end_token)
            new_tokens = tf.where(done, tf.constant(0, dtype=tf.int64), new_tokens)
            result_tokens = result_tokens.write(t, new_tokens)
            if tf.reduce_all(done):
                break
        result_tokens = tf.transpose(tf.squeeze(result_tokens.stack(), -1), [1, 0])
        attention_stack = tf.transpose(tf.squeeze(attention.stack(), 2), [1, 0, 2])
        return {"text": self.tokens_to_text(result_tokens), "attention": attention_stack}

    @tf.function(input_signature=[tf.TensorSpec(dtype=tf.string, shape=[None])])
    def tf_translate(self, input_text):
        return self.translate_symbolic(input_text)


def build(
    train_source,
    train_target,
    *,
    embedding_dim: int = 128,
    units: int = 256,
    max_vocab_size: int = MAX_VOCAB_SIZE,
    learning_rate: float = 1e-3,
) -> TrainTranslator:
    """Adapt both text processors on the training pairs, build and compile a ``TrainTranslator``."""
    source_text = make_text_processor(train_source, max_vocab_size)
    target_text = make_text_processor(train_target, max_vocab_size)
    model = TrainTranslator(embedding_dim, units, source_text, target_text)
    model.compile(optimizer=keras.optimizers.Adam(learning_rate))
    return model


def export(model: TrainTranslator, path: str, max_length: int = 50) -> Translator:
    """Save the tutorial's ``Translator`` as a SavedModel with ``tf_translate`` as ``serving_default``.

    The tutorial itself calls ``tf.saved_model.save(translator, ...)`` on this ``tf.Module``; with Keras 3
    layers inside, TF Serving's loader then fails ("Could not find variable ..."), so the reference is
    written through ``keras.export.ExportArchive`` (the same graph, every variable and table tracked),
    which TF Serving loads: the benchmark compares two servable models.
    """
    translator = Translator(
        model.encoder, model.decoder, model.input_text_processor, model.output_text_processor, max_length=max_length
    )
    archive = keras.export.ExportArchive()
    for layer in (model.encoder, model.decoder, model.input_text_processor, model.output_text_processor):
        archive.track(layer)
    archive.track(translator.output_token_string_from_index.lookup_table)  # built from a vocabulary, never called
    translator.tf_translate.get_concrete_function()
    archive.add_endpoint("serving_default", translator.tf_translate)
    archive.write_out(path, verbose=False)
    return translator


def count_tokens(model: TrainTranslator, source, target) -> int:
    """Non-padding source + target tokens of a batch of raw strings, in the tutorial's own tokenisation."""
    return int(tf.math.count_nonzero(model.input_text_processor(source))) + int(
        tf.math.count_nonzero(model.output_text_processor(target))
    )
