"""The bench's output check: every signature, through TF Serving's loader, against the Python API.

For each of our SavedModels (plain and ``--xla`` exports) and each translating
signature, a batch of test sentences and the first few one by one go through the C
API session (:class:`seq2seq_keras.serving.tf_serving_loader.ServingSession`, TF Serving's
``LoadSavedModel`` + ``Session::Run``) and are compared with ``model.translate`` by
the package's own parity check, the one ``check-servable`` runs
(:func:`seq2seq_keras.serving.check.signature_parity`: every output the signature has,
with the decoding options the export recorded).
"""

from __future__ import annotations

from collections.abc import Sequence


def check_parity(
    savedmodel: str, model, sentences: Sequence[str], *, singles: int = 8, signatures: Sequence[str] | None = None
) -> dict:
    """Compare every translating signature of ``savedmodel`` with ``model.translate``.

    Args:
        savedmodel: a SavedModel version folder written by :func:`seq2seq_keras.serving.export.export_model`.
        model: the trained Keras model it was exported from.
        sentences: source sentences: sent as one batch, and the first ``singles`` one at a time.
        signatures: only these (default: every translating signature the SavedModel has).

    Returns:
        ``{signature: {"sentences", "max_attention_difference", "compared", "line", "problems": [...]}}``;
        an empty ``problems`` list means identical outputs.
    """
    import numpy as np

    from seq2seq_keras.serving.check import export_settings, signature_parity
    from seq2seq_keras.serving.tf_serving_loader import ServingSession, tf_text_op_libraries

    with ServingSession(savedmodel, op_libraries=tf_text_op_libraries()) as session:
        chosen = [s for s in session.signatures if signatures is None or s in signatures]
        results = signature_parity(
            lambda signature, texts: session.run(signature, {"text": np.array(texts, dtype=object)}),
            chosen,
            model,
            export_settings(savedmodel),
            list(sentences),
            singles=singles,
        )
    return {
        signature: {
            "sentences": r.sentences,
            "max_attention_difference": r.max_attention,
            "compared": r.compared,
            "line": r.line(),
            "problems": r.problems,
        }
        for signature, r in results.items()
    }
