"""The model, read next to the papers: attention (Bahdanau et al. 2014, Luong et al. 2015), the recurrent
encoder and decoder, the Transformer (Vaswani et al. 2017) and :class:`Seq2Seq`, which trains them with
``model.fit``. Reading order: ``attention`` -> ``encoder`` -> ``decoder`` -> ``seq2seq``; ``fast_gru`` holds
the speed twins of Keras' GRU equations the layers call; ``choices`` the names of the options (no Keras)."""

from .._lazy import lazy_exports

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "BahdanauAttention": "attention",
        "LuongAttention": "attention",
        "Encoder": "encoder",
        "Decoder": "decoder",
        "Seq2Seq": "seq2seq",
    },
)
