"""The names a user picks a model's parts by: architecture, attention scores and recurrent cells.

They live here, apart from the layers, because the command line lists them
(``seq2seq-keras train --help``) and :class:`~seq2seq_keras.training.TrainConfig`
checks them without importing Keras or TensorFlow; the layers import them from here.
This module imports nothing.
"""

from __future__ import annotations

#: Attention scores by name (:func:`seq2seq_keras.model.attention.make_attention` builds them);
#: ``"none"`` is the fixed-context baseline (no attention).
ATTENTION_TYPES = ("bahdanau", "luong-dot", "luong-general", "luong-scaled-dot", "none")

#: Model families under the one :class:`~seq2seq_keras.model.Seq2Seq` contract: the RNN
#: encoder-decoder with attention, and the Transformer (:mod:`seq2seq_keras.model.transformer`).
ARCHITECTURES = ("rnn", "transformer")

#: Recurrent cells of the encoder and the decoder.
RNN_TYPES = ("gru", "lstm")


def attention_name(kind: str | None) -> str | None:
    """An attention name validated and normalised: ``None``/``"none"`` -> ``None`` (no attention).

    The one place attention names are checked and normalised:
    :class:`~seq2seq_keras.model.Seq2Seq`, :class:`~seq2seq_keras.model.Decoder`,
    :func:`~seq2seq_keras.model.attention.make_attention` and
    :class:`~seq2seq_keras.training.TrainConfig` all call it.

    Raises:
        ValueError: ``kind`` is not one of :data:`ATTENTION_TYPES` (or ``None``).
    """
    if kind is None or kind == "none":
        return None
    if kind not in ATTENTION_TYPES:
        raise ValueError(f"attention={kind!r}: choose one of {ATTENTION_TYPES}.")
    return kind
