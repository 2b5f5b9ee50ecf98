"""Sentence pairs: the Tatoeba/Anki corpora and the built-in Korean-English one (``corpora``,
``builtin_ko_en``), and the ``tf.data`` pipeline that tokenises, buckets and batches them (``batching``)."""

from .._lazy import lazy_exports

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "SentencePairs": "corpora",
        "load_corpus": "corpora",
        "split_pairs": "corpora",
        "download_anki": "corpora",
        "make_dataset": "batching",
    },
)
