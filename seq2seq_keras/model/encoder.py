"""The encoder: source token ids -> one hidden state per source token.

``x_1..x_S`` are embedded and read by a (by default bidirectional) recurrent
network; each annotation ``h_j = [h_j^fwd ; h_j^bwd]`` summarises the whole
sentence with a focus on word ``j`` (Bahdanau et al. 2014, section 3.2). The
final states are returned too: a plain encoder-decoder squeezes the sentence into
them alone, which is the information bottleneck attention removes.

:meth:`Encoder.call` is the one place that chooses how the recurrence runs: Keras'
``GRU``/``LSTM`` layers (``Bidirectional`` around them), or, to train a GRU encoder
on a CPU, :func:`seq2seq_keras.model.fast_gru.gru_layer` on the same layers' weights (same
numbers, both directions in one loop with a hand-written gradient).
"""

from __future__ import annotations

import keras
from keras import ops

from . import fast_gru
from .choices import RNN_TYPES


def _rnn_layer(rnn: str, units: int, dropout: float, name: str, dtype=None):
    # Default activations, reset_after=True, no recurrent dropout and no unroll keep
    # the layer eligible for the fused cuDNN kernel on a GPU.
    cls = {"gru": keras.layers.GRU, "lstm": keras.layers.LSTM}[rnn]
    return cls(units, return_sequences=True, return_state=True, dropout=dropout, name=name, dtype=dtype)


@keras.saving.register_keras_serializable(package="seq2seq_keras")
class Encoder(keras.layers.Layer):
    """Embedding (``mask_zero``) then ``num_layers`` recurrent layers.

    Call: ``outputs, states, mask = encoder(source_ids)`` with

    * ``source_ids`` int [batch, src_len], 0 = padding;
    * ``outputs`` [batch, src_len, output_dim] with ``output_dim = units * (2 if bidirectional else 1)``;
    * ``states`` list of [batch, output_dim] final states of the last layer
      (one tensor for GRU, ``[h, c]`` for LSTM), forward and backward concatenated;
    * ``mask`` bool [batch, src_len], True on real tokens.

    ``implementation`` says how a GRU encoder runs its recurrence (same weights, same
    numbers): ``"layers"``, Keras' ``GRU``/``Bidirectional`` layers (cuDNN on a GPU);
    ``"fused"``, :func:`seq2seq_keras.model.fast_gru.gru_layer` (both directions in one scan
    with a hand-written gradient); ``"auto"`` (default), the fused scan to train on a
    CPU and Keras' layers otherwise (see :meth:`uses_fused_gru`). LSTM encoders always
    use Keras' layers.
    """

    def __init__(
        self,
        vocabulary_size: int,
        embedding_dim: int = 128,
        units: int = 256,
        *,
        rnn: str = "gru",
        num_layers: int = 1,
        bidirectional: bool = True,
        dropout: float = 0.0,
        implementation: str = "auto",
        **kwargs,
    ):
        super().__init__(**kwargs)
        if rnn not in RNN_TYPES:
            raise ValueError(f"rnn={rnn!r}: choose one of {RNN_TYPES}.")
        if num_layers < 1:
            raise ValueError(f"num_layers must be >= 1, got {num_layers}.")
        self.vocabulary_size = int(vocabulary_size)
        self.embedding_dim = int(embedding_dim)
        self.units = int(units)
        self.rnn = rnn
        self.num_layers = int(num_layers)
        self.bidirectional = bool(bidirectional)
        self.dropout = float(dropout)
        self.supports_masking = True
        # Sublayers share this layer's dtype policy, so that a saved mixed-precision model reloads mixed.
        policy = self.dtype_policy
        self.embedding = keras.layers.Embedding(
            self.vocabulary_size, self.embedding_dim, mask_zero=True, name="embedding", dtype=policy
        )
        self.rnn_layers = []
        for i in range(self.num_layers):
            layer = _rnn_layer(rnn, self.units, self.dropout, name=f"{rnn}_{i}", dtype=policy)
            if self.bidirectional:
                layer = keras.layers.Bidirectional(layer, merge_mode="concat", name=f"bi{rnn}_{i}", dtype=policy)
            self.rnn_layers.append(layer)
        self.implementation = fast_gru.check_implementation(implementation)

    @property
    def output_dim(self) -> int:
        return self.units * (2 if self.bidirectional else 1)

    @property
    def num_states(self) -> int:
        return 2 if self.rnn == "lstm" else 1

    def build(self, input_shape):
        self.embedding.build(input_shape)
        shape = (input_shape[0], input_shape[1], self.embedding_dim)
        for layer in self.rnn_layers:
            layer.build(shape)
            shape = (input_shape[0], input_shape[1], self.output_dim)
        self.built = True

    def uses_fused_gru(self, training=True) -> bool:
        """Whether :meth:`call` runs the fused scan instead of Keras' recurrent layers.

        ``"auto"`` uses the scan only for training on a CPU, where its hand-written
        gradient pays. Forward only (validation, translation, the exported
        SavedModel), Keras' layers are faster on a CPU: with the spa-eng benchmark
        model, 0.6 vs 0.9 ms for one sentence and 3.6 vs 5.2 ms for 64 (the scan's
        transposes, reversal and stacking cost more than its one batched matmul
        saves when there is no backward pass).
        """
        return fast_gru.uses_fast_gru(self.rnn, self.implementation, auto=training and not fast_gru.gpu_available())

    def call(self, source_ids, training=None):
        mask = ops.not_equal(source_ids, 0)
        x = self.embedding(source_ids)
        if self.uses_fused_gru(training):
            return (*self._fast_gru_layers(x, mask, training), mask)
        for layer in self.rnn_layers:
            x, *states = layer(x, mask=mask, training=training)
        if self.bidirectional:
            # Bidirectional returns [fwd states..., bwd states...]; pair them up.
            n = self.num_states
            states = [ops.concatenate([f, b], axis=-1) for f, b in zip(states[:n], states[n:])]
        return x, states, mask

    def _fast_gru_layers(self, x, mask, training):
        """The GRU layers through :func:`~seq2seq_keras.model.fast_gru.gru_layer`, on the layers' own
        weights -> outputs [batch, src_len, output_dim], ``[final state]``."""
        state = None
        for layer in self.rnn_layers:
            cells = [layer.forward_layer.cell, layer.backward_layer.cell] if self.bidirectional else [layer.cell]
            weights = [fast_gru.gru_weights(c.kernel, c.recurrent_kernel, c.bias, x.dtype) for c in cells]
            input_dropout = None
            if training and self.dropout > 0:  # one dropout mask per sequence and direction, as Keras' GRU(dropout=...)
                ones = ops.ones_like(x[:, 0, :])
                input_dropout = [keras.random.dropout(ones, self.dropout, seed=c.seed_generator) for c in cells]
            x, state = fast_gru.gru_layer(x, mask, weights, input_dropout)
        return x, [state]

    def compute_mask(self, source_ids, mask=None):
        return None

    def get_config(self):
        config = super().get_config()
        config.update(
            vocabulary_size=self.vocabulary_size,
            embedding_dim=self.embedding_dim,
            units=self.units,
            rnn=self.rnn,
            num_layers=self.num_layers,
            bidirectional=self.bidirectional,
            dropout=self.dropout,
            implementation=self.implementation,
        )
        return config
