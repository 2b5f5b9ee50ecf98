"""The exported signatures' schema: the input, and every output's name, dtype, axes and signatures.

One table (:data:`OUTPUTS`) read by the exporter (:mod:`seq2seq_keras.serving.export`: which outputs
each signature returns), the servability check (:mod:`seq2seq_keras.serving.check`: what a
translation is compared on), the clients (:mod:`seq2seq_keras.serving.client`: the dtype of a
JSON answer when the server's metadata is not at hand) and the Python API
(:func:`seq2seq_keras.decoding.pipeline.translate_graph` returns every output listed here).

Every signature takes ``text: string[batch]`` (raw sentences) and returns dense,
batch-major outputs, padding marked by the lengths. Plain Python (no TensorFlow, not
even NumPy), so the REST client can use it.
"""

from __future__ import annotations

import dataclasses

#: The one input of every signature: ``string[batch]``, raw sentences.
INPUT_NAME = "text"
SIGNATURES = ("serving_default", "translate_with_attention", "beam_search")
#: Added by ``export(..., xla=True)``: the greedy signatures with the decode loop XLA-compiled.
XLA_SIGNATURES = ("serving_default_xla", "translate_with_attention_xla")
REQUIRED_SIGNATURES = ("serving_default", "translate_with_attention")
#: The decoding each signature runs, i.e. the ``model.translate`` method that reproduces it (the parity checks
#: of :mod:`seq2seq_keras.serving.check` read it; its options are recorded in ``assets.extra``).
SIGNATURE_METHODS = {
    "serving_default": "greedy",
    "translate_with_attention": "greedy",
    "beam_search": "beam",
    "serving_default_xla": "greedy",
    "translate_with_attention_xla": "greedy",
}

_EVERY = SIGNATURES + XLA_SIGNATURES
_WITH_ATTENTION = ("translate_with_attention", "translate_with_attention_xla", "beam_search")


@dataclasses.dataclass(frozen=True)
class Output:
    """One output of :func:`~seq2seq_keras.decoding.pipeline.translate_graph`.

    Attributes:
        name: its name, in the graph's dict and in every signature that has it.
        dtype: its dtype as TF Serving's metadata names it (``DT_STRING``, ``DT_INT32``, ``DT_FLOAT``).
        axes: its named axes, batch first (the rank is their number).
        signatures: the exported signatures that return it (none: the Python API only).
        transformer: only a Transformer's export returns it.
        translation: every :class:`~seq2seq_keras.translation.Translation` is read from it.
        help: what it holds.
    """

    name: str
    dtype: str
    axes: tuple[str, ...]
    signatures: tuple[str, ...]
    help: str
    transformer: bool = False
    translation: bool = False

    @property
    def rank(self) -> int:
        return len(self.axes)


OUTPUTS = (
    Output("translation", "DT_STRING", ("batch",), _EVERY, "the text of the best hypothesis", translation=True),
    Output(
        "source_tokens",
        "DT_STRING",
        ("batch", "src_len"),
        _WITH_ATTENTION,
        "the source tokens the model read ('' on padding)",
        translation=True,
    ),
    Output(
        "target_tokens",
        "DT_STRING",
        ("batch", "tgt_len"),
        _WITH_ATTENTION,
        "the output tokens, unknown words replaced ('' on padding)",
        translation=True,
    ),
    Output("source_length", "DT_INT32", ("batch",), _WITH_ATTENTION, "source tokens kept", translation=True),
    Output("target_length", "DT_INT32", ("batch",), _WITH_ATTENTION, "output tokens, [END] included", translation=True),
    Output(
        "attention",
        "DT_FLOAT",
        ("batch", "tgt_len", "src_len"),
        _WITH_ATTENTION,
        "the hypothesis' attention rows (a Transformer: the last layer's mean over heads)",
        translation=True,
    ),
    Output(
        "log_prob", "DT_FLOAT", ("batch",), _WITH_ATTENTION, "log-probability of the output tokens", translation=True
    ),
    Output(
        "replaced",
        "DT_INT32",
        ("batch", "tgt_len"),
        _WITH_ATTENTION,
        "1 where an [UNK] was replaced by a source word (int32, not bool: every client decodes integers alike)",
    ),
    Output("score", "DT_FLOAT", ("batch",), ("beam_search",), "what the search ranked by (beam: log_prob / lp(len))"),
    Output(
        "beams_translation",
        "DT_STRING",
        ("batch", "beam"),
        ("beam_search",),
        "every hypothesis' text, best first ('' after beams_count)",
    ),
    Output(
        "beams_score", "DT_FLOAT", ("batch", "beam"), ("beam_search",), "every hypothesis' score (0 after beams_count)"
    ),
    Output("beams_count", "DT_INT32", ("batch",), ("beam_search",), "how many hypotheses are real (at least 1)"),
    Output(
        "attention_heads",
        "DT_FLOAT",
        ("batch", "layers", "heads", "tgt_len", "src_len"),
        ("translate_with_attention",),
        "every layer's and head's cross-attention (Seq2Seq.attention_heads)",
        transformer=True,
    ),
    # The Python API's own outputs (translate_graph; no signature returns them).
    Output(
        "source_unknown_words",
        "DT_STRING",
        ("batch", "src_len"),
        (),
        "the source word of every token the model read as [UNK] ('' elsewhere): Translation.unknown_source",
    ),
    Output("target_ids", "DT_INT32", ("batch", "tgt_len"), (), "the output token ids before replacement"),
    Output("beams_target_tokens", "DT_STRING", ("batch", "beam", "tgt_len"), (), "every hypothesis' tokens"),
    Output("beams_target_length", "DT_INT32", ("batch", "beam"), (), "every hypothesis' length"),
    Output("beams_attention", "DT_FLOAT", ("batch", "beam", "tgt_len", "src_len"), (), "every hypothesis' attention"),
    Output("beams_log_prob", "DT_FLOAT", ("batch", "beam"), (), "every hypothesis' log-probability"),
    Output("beams_replaced", "DT_INT32", ("batch", "beam", "tgt_len"), (), "every hypothesis' replaced marks"),
)
#: ``{name: Output}``.
BY_NAME = {output.name: output for output in OUTPUTS}
#: ``{name: "DT_*"}`` of every output.
OUTPUT_DTYPES = {output.name: output.dtype for output in OUTPUTS}
#: The outputs every :class:`~seq2seq_keras.translation.Translation` is read from.
TRANSLATION_OUTPUTS = tuple(output.name for output in OUTPUTS if output.translation)


def output_names(signature: str, transformer: bool = False) -> tuple[str, ...]:
    """The output names of ``signature`` (a Transformer's export: ``transformer=True``), in table order."""
    return tuple(o.name for o in OUTPUTS if signature in o.signatures and (transformer or not o.transformer))
