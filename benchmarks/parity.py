"""The bench's output check: every signature, through TF Serving's loader, against the Python API.

For each of our SavedModels (plain and ``--xla`` exports) and each translating
signature, a batch of test sentences and the first few one by one go through the C
API session (:class:`seq2seq_keras.serving_loader.ServingSession`, TF Serving's
``LoadSavedModel`` + ``Session::Run``), and the outputs are compared with
``model.translate`` on the trained Keras model with the decoding options the export
recorded (:func:`seq2seq_keras.servable.compare_with_translations`: tokens and
lengths identical, attention within 1e-5). ``serving_default`` returns text only:
its translations must equal the Python API's texts.
"""

from __future__ import annotations

from typing import Sequence

#: Signatures compared with ``model.translate`` (greedy or beam, per the export's settings).
GREEDY_SIGNATURES = ("translate_with_attention", "translate_with_attention_xla")
TEXT_SIGNATURES = ("serving_default", "serving_default_xla")
BEAM_SIGNATURES = ("beam_search",)


def _text(value) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def check_parity(savedmodel: str, model, sentences: Sequence[str], *, singles: int = 8,
                 signatures: Sequence[str] | None = None) -> dict:
    """Compare every translating signature of ``savedmodel`` with ``model.translate``.

    Args:
        savedmodel: a SavedModel version folder written by :func:`seq2seq_keras.export.export_model`.
        model: the trained Keras model it was exported from.
        sentences: source sentences: sent as one batch, and the first ``singles`` one at a time.
        signatures: only these (default: every translating signature the SavedModel has).

    Returns:
        ``{signature: {"sentences", "max_attention_difference", "problems": [...]}}``; an
        empty ``problems`` list means identical outputs.
    """
    import numpy as np

    from seq2seq_keras.servable import exported_decoding_options, compare_with_translations, export_settings
    from seq2seq_keras.serving_loader import ServingSession, tf_text_op_libraries

    greedy, beam = exported_decoding_options(export_settings(savedmodel))
    expected = {"greedy": model.translate(list(sentences), **greedy), "beam": model.translate(list(sentences), **beam)}
    sentences = list(sentences)
    requests = [(0, sentences)] + [(i, [s]) for i, s in enumerate(sentences[:singles])]
    out: dict = {}
    with ServingSession(savedmodel, op_libraries=tf_text_op_libraries()) as session:
        for signature in session.signatures:
            kind = ("greedy" if signature in GREEDY_SIGNATURES + TEXT_SIGNATURES
                    else "beam" if signature in BEAM_SIGNATURES else None)
            if kind is None or (signatures is not None and signature not in signatures):
                continue
            result = {"sentences": 0, "max_attention_difference": 0.0, "problems": []}
            for first, request in requests:
                reference = expected[kind][first:first + len(request)]
                outputs = session.run(signature, {"text": np.array(request, dtype=object)})
                result["sentences"] += len(request)
                if signature in TEXT_SIGNATURES:
                    texts = [_text(t) for t in outputs["translation"]]
                    wrong = [i for i, (t, e) in enumerate(zip(texts, reference)) if t != e.text]
                    if wrong or len(texts) != len(reference):
                        result["problems"].append(f"{len(wrong)} of {len(request)} texts differ, e.g. "
                                                  f"{texts[wrong[0]]!r} vs {reference[wrong[0]].text!r}" if wrong
                                                  else f"{len(texts)} texts for {len(request)} sentences")
                    continue
                differences = compare_with_translations(outputs, reference)
                result["max_attention_difference"] = max(result["max_attention_difference"], differences.max_attention)
                result["problems"].extend(differences.problems)
            out[signature] = result
    return out
