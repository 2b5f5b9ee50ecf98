"""The ``tf.data`` pipeline for teacher forcing: tokenise, bucket by length, batch.

:func:`make_dataset` turns :class:`~seq2seq_keras.data.SentencePairs` into the
batches ``model.fit`` trains on::

    ds = make_dataset(train, src, tgt, batch_size=64)
    # ds yields ((source_ids [batch, src_len], target_in [batch, tgt_len]),
    #            target_out [batch, tgt_len]), int32, 0-padded.

Its steps, each a function here: encode in vectorised chunks
(:func:`_encode_chunks`) -> measure every example's length once
(:func:`_measure_lengths`; bucket boundaries, :func:`auto_bucket_boundaries`, and the
number of batches, :func:`count_batches`) -> examples (unbatch, cache, shuffle)
-> batches (length buckets, or plain padded batches) -> model inputs (and, for
XLA, :func:`pad_batch_shapes`) -> prefetch.

Reading and splitting corpora is :mod:`seq2seq_keras.data.corpora`. TensorFlow is imported inside the functions, so importing
this module is cheap.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Literal, Protocol

if TYPE_CHECKING:  # pragma: no cover
    import tensorflow as tf

    from .corpora import SentencePairs

__all__ = [
    "SupportsEncode",
    "auto_bucket_boundaries",
    "count_batches",
    "token_batch_sizes",
    "pad_batch_shapes",
    "make_dataset",
]

#: Pairs tokenised per vectorised ``map`` call.
ENCODE_CHUNK = 1024


class SupportsEncode(Protocol):
    """What :func:`make_dataset` needs from a text processor."""

    def encode(self, strings: tf.Tensor) -> tf.RaggedTensor:
        """``string[batch]`` -> ``int64[batch, (len)]`` token ids, 0 reserved for padding."""


def auto_bucket_boundaries(lengths: Sequence[int], *, step: int = 4, percentile: float = 99.0) -> list[int]:
    """Bucket boundaries every ``step`` tokens up to the ``percentile`` of ``lengths``.

    Boundaries are ``1 + step, 1 + 2*step, ...`` up to the first one above the
    percentile, so lengths ``1..step`` share the first bucket, the next ``step``
    lengths the second, and so on; the longest ~1% fall into the last,
    open-ended bucket. E.g. a 99th percentile of 12 gives ``[5, 9, 13]``.
    """
    import numpy as np

    if len(lengths) == 0:
        raise ValueError("No lengths to derive bucket boundaries from: the dataset is empty.")
    if step < 1:
        raise ValueError(f"step={step}: use a positive number of tokens.")
    top = int(np.ceil(np.percentile(np.asarray(lengths), percentile)))
    return list(range(1 + step, max(top, 1) + step + 1, step))


def _encode_chunks(
    pairs: SentencePairs, source_text: SupportsEncode, target_text: SupportsEncode, max_length: int | None
) -> tf.data.Dataset:
    """Ragged chunks ``(source [chunk, (src_len)], target_in [chunk, (tgt_len)], target_out [chunk, (tgt_len)])``.

    Vectorised over chunks of :data:`ENCODE_CHUNK` pairs: encode both sides (int32), drop pairs
    with an empty source, an encoded target shorter than 2 ids, or (with
    ``max_length``) a source or encoded target longer than ``max_length``, then
    shift the target for teacher forcing: ``target_in`` = ids without the last,
    ``target_out`` = ids without the first.
    """
    import tensorflow as tf

    def as_ragged(ids) -> tf.RaggedTensor:
        if not isinstance(ids, tf.RaggedTensor):
            ids = tf.RaggedTensor.from_tensor(ids, padding=0)
        return tf.cast(ids, tf.int32)

    def encode_chunk(source: tf.Tensor, target: tf.Tensor):
        src = as_ragged(source_text.encode(source))  # [chunk, (src_len)]
        tgt = as_ragged(target_text.encode(target))  # [chunk, (tgt_len + 1)]
        src_len, tgt_len = src.row_lengths(), tgt.row_lengths()
        keep = tf.logical_and(src_len > 0, tgt_len >= 2)
        if max_length is not None:
            keep = tf.logical_and(keep, tf.logical_and(src_len <= max_length, tgt_len <= max_length))
        src, tgt = tf.ragged.boolean_mask(src, keep), tf.ragged.boolean_mask(tgt, keep)
        return src, tgt[:, :-1], tgt[:, 1:]

    strings = tf.data.Dataset.from_tensor_slices(
        (tf.constant(pairs.source, tf.string), tf.constant(pairs.target, tf.string))
    )
    return strings.batch(ENCODE_CHUNK).map(encode_chunk, num_parallel_calls=tf.data.AUTOTUNE)


def _as_tensors(*components: tf.Tensor) -> tuple[tf.Tensor, ...]:
    """Identity map: turns unbatched ragged rows (RaggedTensorSpec, ragged_rank 0),
    which ``padded_batch`` rejects, into plain Tensors."""
    return components


def _chunk_lengths(source: tf.RaggedTensor, target_in: tf.RaggedTensor, target_out: tf.RaggedTensor) -> tf.Tensor:
    """Bucketing keys of a ragged chunk: ``max(src_len, tgt_len)``, tgt_len = len(target_in)."""
    import tensorflow as tf

    return tf.maximum(source.row_lengths(), target_in.row_lengths())


def _example_length(source: tf.Tensor, target_in: tf.Tensor, target_out: tf.Tensor) -> tf.Tensor:
    """Bucketing key of one example, as in :func:`_chunk_lengths` (int32)."""
    import tensorflow as tf

    return tf.maximum(tf.shape(source)[0], tf.shape(target_in)[0])


def _measure_lengths(chunks: tf.data.Dataset) -> list[int]:
    """Bucketing keys of every example, from the ragged chunks (one vectorised pass)."""
    import tensorflow as tf

    keys = chunks.map(_chunk_lengths, num_parallel_calls=tf.data.AUTOTUNE)
    return [int(k) for batch in keys.as_numpy_iterator() for k in batch]


def count_batches(lengths: Sequence[int], batch_size: int | Sequence[int], boundaries: Sequence[int] | None) -> int:
    """Batches per epoch: ``bucket_by_sequence_length`` emits ``ceil(n_i / size_i)``
    batches for the ``n_i`` examples of bucket ``i``, whatever the shuffle order.

    ``batch_size``: examples per batch, one number for every bucket or one per bucket
    (``len(boundaries) + 1`` of them, e.g. :func:`token_batch_sizes`).
    """
    import numpy as np

    if boundaries is None:
        return -(-len(lengths) // int(batch_size if np.ndim(batch_size) == 0 else batch_size[0]))
    sizes = [int(batch_size)] * (len(boundaries) + 1) if np.ndim(batch_size) == 0 else [int(b) for b in batch_size]
    buckets = np.searchsorted(np.asarray(boundaries), np.asarray(lengths), side="right")
    counts = np.bincount(buckets, minlength=len(boundaries) + 1)
    return int(sum(-(-int(n) // size) for n, size in zip(counts, sizes)))


def token_batch_sizes(
    boundaries: Sequence[int], batch_tokens: int, longest: int, batch_size: int | None = None
) -> list[int]:
    """Examples per batch of each length bucket for batches of at most ``batch_tokens`` tokens.

    Bucket ``i`` holds keys ``max(src_len, tgt_len)`` in ``[b[i-1], b[i])``; its batches
    get ``max(1, batch_tokens // cap_i)`` examples, ``cap_i`` the bucket's longest key
    (``b[i] - 1``; for the open-ended last bucket, ``longest``, the corpus' longest key),
    and at most ``batch_size`` of them when it is given. So no batch exceeds
    ``batch_tokens`` padded positions on either side (a key longer than that gets a
    batch of its own). Two uses, as fairseq's ``--max-tokens``/``--batch-size``:

    * token-based batching (``batch_size`` None or large): a bucket of short sentences
      gets proportionally more of them, so every step sees about the same number of
      tokens (Vaswani et al., 2017, section 5.1: "batches of approximately 25000 source
      tokens"; Ott et al., 2018);
    * a memory cap (``batch_size`` the usual 64): only the buckets whose ``batch_size``
      examples would exceed ``batch_tokens`` get fewer, so the rare long sentences no
      longer set the training's peak memory.

    E.g. boundaries ``[5, 9, 13]``, longest 20: 640 tokens give ``[160, 80, 53, 32]``;
    with ``batch_size=64``, ``[64, 64, 53, 32]``.

    Raises:
        ValueError: ``batch_tokens``, ``longest`` or ``batch_size`` below 1.
    """
    if batch_tokens < 1 or longest < 1 or (batch_size is not None and batch_size < 1):
        raise ValueError(
            f"token_batch_sizes: batch_tokens={batch_tokens}, longest={longest} and batch_size={batch_size} "
            "must be positive."
        )
    caps = [int(b) - 1 for b in boundaries] + [max(int(longest), int(boundaries[-1]) if boundaries else 1)]
    sizes = [max(1, int(batch_tokens) // max(cap, 1)) for cap in caps]
    return sizes if batch_size is None else [min(size, int(batch_size)) for size in sizes]


def _check_boundaries(bucket_boundaries: Sequence[int]) -> list[int]:
    boundaries = [int(b) for b in bucket_boundaries]
    if not boundaries or boundaries[0] < 1 or any(b <= a for a, b in zip(boundaries, boundaries[1:])):
        raise ValueError(
            f"bucket_boundaries={bucket_boundaries!r}: use strictly increasing positive "
            "lengths, 'auto', or None (no bucketing)."
        )
    return boundaries


def _to_model_inputs(source: tf.Tensor, target_in: tf.Tensor, target_out: tf.Tensor):
    """``(source, target_in, target_out)`` -> ``((source, target_in), target_out)`` for ``fit``."""
    return (source, target_in), target_out


def pad_batch_shapes(multiple: int, batch_size: int | None = None, *, batch_tokens: int | None = None):
    """A ``Dataset.map`` function for ``((source_ids, target_in), target_out)`` batches:
    lengths padded up to a multiple of ``multiple`` and short batches up to
    ``batch_size`` rows (with ``batch_tokens``: up to ``batch_tokens // L`` rows, at
    most ``batch_size``, ``L`` the batch's longer padded side, so the row count is a
    function of the padded length, as :func:`token_batch_sizes` sizes the buckets).

    XLA (``jit_compile=True``) compiles once per input shape; bucketed batches have
    hundreds of shapes, these a few dozen. Padding is masked: empty rows and padded
    positions hold no target token and add nothing to the loss, which is normalised
    by real target tokens.

    Raises:
        ValueError: ``multiple`` below 1, neither ``batch_size`` nor ``batch_tokens``
            given, or one below 1.
    """
    import tensorflow as tf

    given = [n for n in (batch_size, batch_tokens) if n is not None]
    if multiple < 1 or not given or min(given) < 1:
        raise ValueError(
            f"pad_batch_shapes({multiple}, batch_size={batch_size}, batch_tokens={batch_tokens}): "
            "give a positive multiple and a positive batch_size, batch_tokens or both."
        )

    def padded(length):
        return length + (-length) % multiple

    def up(ids, rows, length):
        return tf.pad(ids, [[0, rows - tf.shape(ids)[0]], [0, length - tf.shape(ids)[1]]])

    def pad(inputs, target_out):
        source_ids, target_in = inputs
        source_len, target_len = padded(tf.shape(source_ids)[1]), padded(tf.shape(target_in)[1])
        wanted = batch_size
        if batch_tokens is not None:
            wanted = tf.maximum(batch_tokens // tf.maximum(source_len, target_len), 1)
            if batch_size is not None:
                wanted = tf.minimum(wanted, batch_size)
        rows = tf.maximum(wanted, tf.shape(source_ids)[0])
        return (up(source_ids, rows, source_len), up(target_in, rows, target_len)), up(target_out, rows, target_len)

    return pad


def _check_arguments(pairs: SentencePairs, batch_size: int, bucket_boundaries, batch_tokens: int | None) -> None:
    """The argument errors :func:`make_dataset` can name before encoding anything."""
    if batch_size < 1:
        raise ValueError(f"batch_size={batch_size}: use a positive number of examples.")
    if batch_tokens is not None and batch_tokens < 1:
        raise ValueError(f"batch_tokens={batch_tokens}: use a positive number of tokens, or None.")
    if batch_tokens is not None and bucket_boundaries is None:
        raise ValueError("batch_tokens needs length buckets: use bucket_boundaries='auto' (or a list) with it.")
    if len(pairs) == 0:
        raise ValueError(f"make_dataset got an empty corpus {pairs.name!r}: nothing to train on.")
    if isinstance(bucket_boundaries, str) and bucket_boundaries != "auto":
        raise ValueError(f"bucket_boundaries={bucket_boundaries!r}: use 'auto', a list of lengths, or None.")


def _resolve_boundaries(
    bucket_boundaries: Literal["auto"] | Sequence[int] | None, lengths: Sequence[int]
) -> list[int] | None:
    """``"auto"`` -> :func:`auto_bucket_boundaries` of ``lengths``; a list -> checked; ``None`` -> no bucketing."""
    if bucket_boundaries == "auto":
        return auto_bucket_boundaries(lengths)
    if bucket_boundaries is not None:
        return _check_boundaries(bucket_boundaries)
    return None


def _examples(chunks: tf.data.Dataset, *, cache: bool, shuffle: bool, buffer_size: int, seed: int) -> tf.data.Dataset:
    """Ragged chunks -> single examples ``(source [src_len], target_in [tgt_len], target_out [tgt_len])``,
    cached and shuffled (whole corpus, reshuffled each epoch) as asked."""
    import tensorflow as tf

    examples = chunks.unbatch().map(_as_tensors, num_parallel_calls=tf.data.AUTOTUNE)
    if cache:  # per example, not per chunk: later epochs then skip unbatching (~10x faster)
        examples = examples.cache()
    if shuffle:
        examples = examples.shuffle(buffer_size, seed=seed, reshuffle_each_iteration=True)
    return examples


def _batches(examples: tf.data.Dataset, batch_sizes: list[int], boundaries: list[int] | None) -> tf.data.Dataset:
    """Examples -> 0-padded batches: one length bucket per batch (``boundaries``, ``batch_sizes[i]``
    examples for bucket ``i``), or in order (``None``, ``batch_sizes[0]`` examples)."""
    padded_shapes = ([None], [None], [None])
    if boundaries is None:
        return examples.padded_batch(batch_sizes[0], padded_shapes=padded_shapes)
    return examples.bucket_by_sequence_length(
        element_length_func=_example_length,
        bucket_boundaries=boundaries,
        bucket_batch_sizes=batch_sizes,
        padded_shapes=padded_shapes,
        pad_to_bucket_boundary=False,
    )


def make_dataset(
    pairs: SentencePairs,
    source_text: SupportsEncode,
    target_text: SupportsEncode,
    *,
    batch_size: int = 64,
    shuffle: bool = True,
    seed: int = 0,
    bucket_boundaries: Literal["auto"] | Sequence[int] | None = "auto",
    max_length: int | None = None,
    cache: bool = True,
    pad_to_multiple: int | None = None,
    batch_tokens: int | None = None,
) -> tf.data.Dataset:
    """A teacher-forcing ``tf.data`` pipeline for ``model.fit``.

    Yields ``((source_ids, target_in), target_out)``, all int32, dense, 0-padded:

    * ``source_ids``: ``[batch, src_len]``, ``source_text.encode(source)``.
    * ``target_in``: ``[batch, tgt_len]``, each target's ids without its last
      token (``[START] w1 ... wn``).
    * ``target_out``: ``[batch, tgt_len]``, each target's ids without its first
      token (``w1 ... wn [END]``).

    Steps: tokenise in vectorised batches (``map`` with ``AUTOTUNE``, then
    unbatch) -> drop pairs whose source encodes to nothing (and, with
    ``max_length``, pairs whose source or encoded target, ``[START]``/``[END]``
    included, is longer than ``max_length`` tokens; they are dropped, not
    truncated) -> ``cache()`` -> shuffle (whole corpus, ``seed``, reshuffled each
    epoch) -> batch -> ``prefetch(AUTOTUNE)``.

    Batching uses length bucketing (``bucket_by_sequence_length`` keyed on
    ``max(src_len, tgt_len)``, ``pad_to_bucket_boundary=False``): each batch holds
    examples from one length range and is padded only to its own longest
    example, so short sentences are not padded to the corpus' longest. Batches
    can be smaller than ``batch_size`` at the end of each bucket, and with
    shuffling the order of lengths is random per epoch. With ``batch_tokens``,
    batches also hold at most that many tokens (:func:`token_batch_sizes`: fewer
    long sentences per batch; with a large ``batch_size``, more short ones).

    Args:
        pairs: the corpus (usually the training split).
        source_text, target_text: adapted text processors; the target one must
            add ``[START]``/``[END]`` (``add_start_end=True``).
        batch_size: examples per batch.
        shuffle: shuffle the examples each epoch (deterministic given ``seed``).
        seed: shuffle seed.
        bucket_boundaries: ``"auto"`` measures every example once (an extra,
            vectorised encoding pass when this is called) and puts a boundary
            every 4 tokens up to the 99th-percentile length (see
            :func:`auto_bucket_boundaries`); a list of increasing lengths uses
            those (bucket ``i`` holds keys in ``[b[i-1], b[i])``); ``None``
            disables bucketing (plain ``padded_batch`` in corpus order).
        max_length: drop (not truncate) pairs whose source, or target with
            ``[START]``/``[END]``, has more ids; ``None`` keeps all. (A
            ``TextProcessor(max_length=...)`` truncates instead, before this.)
        cache: keep the tokenised examples in memory after the first pass
            (later epochs skip tokenisation).
        pad_to_multiple: pad every batch to ``batch_size`` rows and its lengths to
            a multiple of this many tokens (:func:`pad_batch_shapes`), for XLA;
            ``None`` (default) pads each batch only to its longest example.
        batch_tokens: a second limit: each bucket's batches get at most
            ``batch_tokens // (its longest key)`` examples (:func:`token_batch_sizes`),
            so rows x ``max(src_len, tgt_len)`` stays within ``batch_tokens``; with a
            large ``batch_size``, token-based batching. ``None`` (default): only
            ``batch_size``.

    Raises:
        ValueError: ``batch_size`` or ``batch_tokens`` below 1, ``batch_tokens``
            without bucketing, an unknown ``bucket_boundaries``, an empty corpus, or
            nothing left after the length filters.
    """
    import tensorflow as tf

    _check_arguments(pairs, batch_size, bucket_boundaries, batch_tokens)
    chunks = _encode_chunks(pairs, source_text, target_text, max_length)
    # One vectorised pass over the lengths: for "auto" boundaries, and to know the
    # number of batches (Keras then shows a full progress bar from the first epoch
    # and does not warn that the input "ran out of data").
    lengths = _measure_lengths(chunks)
    if not lengths:
        raise ValueError(
            f"No pairs of {pairs.name!r} are left after dropping empty sources"
            f"{'' if max_length is None else f' and pairs longer than max_length={max_length}'}."
        )
    boundaries = _resolve_boundaries(bucket_boundaries, lengths)
    examples = _examples(chunks, cache=cache, shuffle=shuffle, buffer_size=len(pairs), seed=seed)
    if batch_tokens is None:
        sizes = [batch_size] * (1 if boundaries is None else len(boundaries) + 1)
    else:
        sizes = token_batch_sizes(boundaries, batch_tokens, max(lengths), batch_size)
    batches = _batches(examples, sizes, boundaries)
    batches = batches.apply(tf.data.experimental.assert_cardinality(count_batches(lengths, sizes, boundaries)))
    batches = batches.map(_to_model_inputs, num_parallel_calls=tf.data.AUTOTUNE)
    if pad_to_multiple is not None:
        pad = pad_batch_shapes(pad_to_multiple, batch_size, batch_tokens=batch_tokens)
        batches = batches.map(pad, num_parallel_calls=tf.data.AUTOTUNE)
    return batches.prefetch(tf.data.AUTOTUNE)
