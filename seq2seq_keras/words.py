"""The package's word rule in plain Python: how evaluation, alignment and the corpus generator split text into words.

:func:`word_tokens` gives, for NFC text, the words :class:`~seq2seq_keras.text.TextProcessor` makes in the
graph (lower-cased, punctuation split off), without TensorFlow: gold alignments, source lengths and heatmap
labels are counted in the same words the model reads.
"""

from __future__ import annotations

import unicodedata


def word_tokens(text: str) -> list[str]:
    """Tokens by the package's rule: lowercase, punctuation split off, whitespace split.

    Mirrors ``TextProcessor.standardize`` (which also turns control and format
    characters into spaces) for NFC text.
    """
    pieces = []
    for ch in text.lower():
        category = unicodedata.category(ch)
        if category[0] == "P":
            pieces.append(f" {ch} ")
        elif category in ("Cc", "Cf"):
            pieces.append(" ")
        else:
            pieces.append(ch)
    return "".join(pieces).split()
