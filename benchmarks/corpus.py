"""The benchmark's data: spa-eng from the shared data folder, or the built-in corpus with a notice."""

from __future__ import annotations

import dataclasses

from seq2seq_keras.data.corpora import SentencePairs, load_corpus, shared_data_dir, split_pairs


@dataclasses.dataclass
class BenchData:
    name: str
    notice: str  # empty when the requested corpus was used
    train: SentencePairs
    validation: SentencePairs
    test: SentencePairs


def load_bench_data(data: str = "spa-eng", limit: int | None = None) -> BenchData:
    """Load and split ``data`` (Spanish -> English for spa-eng, as the tutorial).

    A named Tatoeba corpus missing from :func:`seq2seq_keras.data.corpora.shared_data_dir`
    falls back to ``builtin-ko-en`` (30,000 generated pairs, or ``limit``) with a
    notice that the report prints: its numbers are not comparable with spa-eng's.
    """
    notice = ""
    try:
        pairs = load_corpus(data, limit=limit)
    except FileNotFoundError as error:
        if data not in ("spa-eng", "kor-eng"):
            raise
        notice = (
            f"NOTICE: {data} was not found ({error}); the benchmark fell back to the built-in "
            "Korean-English corpus. Its figures are NOT comparable with spa-eng figures "
            f"(shared data folder: {shared_data_dir()})."
        )
        print(notice, flush=True)
        data = "builtin-ko-en"
        pairs = load_corpus(data, limit=limit)
    train, validation, test = split_pairs(pairs)
    return BenchData(name=data, notice=notice, train=train, validation=validation, test=test)
