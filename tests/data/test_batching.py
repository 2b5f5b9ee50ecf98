"""Tests for seq2seq_keras.data.batching: the teacher-forcing tf.data pipeline (encoding, length buckets, batch
counts, padding for XLA), checked against the text processors' own encodings and hand-computed buckets."""

from __future__ import annotations

import bisect
import collections
import types

import pytest

from seq2seq_keras.data import SentencePairs, batching
from seq2seq_keras.data import corpora as data


def test_the_data_package_offers_the_pipeline_with_the_corpora():
    """``from seq2seq_keras.data import load_corpus, split_pairs, make_dataset`` (README, notebooks): the package
    offers both modules' names, and the corpora module itself does not import the pipeline."""
    import seq2seq_keras.data as package

    assert package.make_dataset is batching.make_dataset
    assert package.load_corpus is data.load_corpus and package.split_pairs is data.split_pairs
    assert not hasattr(data, "make_dataset")


def test_count_batches_is_ceil_per_bucket():
    lengths = [1, 2, 3, 4, 5, 6, 9, 9, 9, 20]
    assert batching.count_batches(lengths, 4, None) == 3  # ceil(10 / 4)
    # boundaries [5, 9]: buckets {1,2,3,4} -> 1 batch, {5,6} -> 1, {9,9,9,20} -> 1
    assert batching.count_batches(lengths, 4, [5, 9]) == 3
    assert batching.count_batches(lengths, 2, [5, 9]) == 2 + 1 + 2


def test_count_batches_takes_a_size_per_bucket():
    lengths = [1, 2, 3, 4, 5, 6, 9, 9, 9, 20]
    # buckets {1,2,3,4} in batches of 3 -> 2, {5,6} of 1 -> 2, {9,9,9,20} of 4 -> 1
    assert batching.count_batches(lengths, [3, 1, 4], [5, 9]) == 2 + 2 + 1


def test_token_batch_sizes_by_hand():
    # caps 4, 8, 12 and the open bucket's longest key 20: 640 // cap
    assert batching.token_batch_sizes([5, 9, 13], 640, 20) == [160, 80, 53, 32]
    # with batch_size, a cap: only the buckets that would exceed the tokens get fewer examples
    assert batching.token_batch_sizes([5, 9, 13], 640, 20, batch_size=64) == [64, 64, 53, 32]
    # a key longer than the budget still gets a batch of one; an empty open bucket uses its boundary
    assert batching.token_batch_sizes([5, 9], 6, 3) == [1, 1, 1]
    with pytest.raises(ValueError, match="positive"):
        batching.token_batch_sizes([5], 0, 10)


def test_auto_bucket_boundaries():
    assert batching.auto_bucket_boundaries(list(range(1, 13)) * 10) == [5, 9, 13]
    assert batching.auto_bucket_boundaries([1, 2, 3]) == [5]
    assert batching.auto_bucket_boundaries([4] * 199 + [40]) == [5]  # the top 1% goes to the open bucket
    with pytest.raises(ValueError, match="empty"):
        batching.auto_bucket_boundaries([])


TOY_SOURCE = [
    "uno",
    "uno dos",
    "uno dos tres",
    "uno dos tres cuatro",
    "uno dos tres cuatro cinco",
    "uno dos tres cuatro cinco seis siete",
    "dos",
    "tres cuatro",
    "cinco seis siete ocho nueve diez once",
    "seis",
    "siete ocho",
    "nueve diez once doce",
]
TOY_TARGET = [
    "one",
    "one two",
    "one two three",
    "one two three four",
    "one two three four five",
    "one two three four five six seven",
    "two",
    "three four",
    "five six seven eight nine ten eleven",
    "six",
    "seven eight",
    "nine ten eleven twelve",
]


@pytest.fixture(scope="module")
def toy():
    from seq2seq_keras import text

    pairs = SentencePairs(source=TOY_SOURCE, target=TOY_TARGET, source_lang="es", target_lang="en", name="toy")
    src = text.TextProcessor.for_language("es").adapt(TOY_SOURCE)
    tgt = text.TextProcessor.for_language("en", add_start_end=True).adapt(TOY_TARGET)
    start, end = tgt.encode([""]).to_list()[0]  # an empty sentence encodes to [START, END]
    encoded_src = [tuple(row) for row in src.encode(TOY_SOURCE).to_list()]
    encoded_tgt = [tuple(row) for row in tgt.encode(TOY_TARGET).to_list()]
    return types.SimpleNamespace(
        pairs=pairs, src=src, tgt=tgt, start=start, end=end, encoded_src=encoded_src, encoded_tgt=encoded_tgt
    )


def rows(batch) -> list[tuple[int, ...]]:
    """Dense 0-padded [batch, len] -> rows without padding (and check padding is a suffix)."""
    out = []
    for row in batch.numpy().tolist():
        n = sum(1 for x in row if x != 0)
        assert all(x != 0 for x in row[:n]) and all(x == 0 for x in row[n:]), row
        out.append(tuple(row[:n]))
    return out


def batches(dataset):
    return [(s, ti, to) for (s, ti), to in dataset]


def test_make_dataset_structure_and_teacher_forcing(toy):
    import tensorflow as tf

    ds = batching.make_dataset(toy.pairs, toy.src, toy.tgt, batch_size=4, shuffle=False, bucket_boundaries=None)
    (src_spec, in_spec), out_spec = ds.element_spec
    for spec in (src_spec, in_spec, out_spec):
        assert spec.dtype == tf.int32 and spec.shape.as_list() == [None, None]
    targets = []
    for s, ti, to in batches(ds):
        assert s.shape[0] == ti.shape[0] == to.shape[0] <= 4
        assert ti.shape == to.shape
        for t_in, t_out in zip(rows(ti), rows(to)):
            assert t_in[0] == toy.start and t_out[-1] == toy.end
            assert toy.end not in t_in and toy.start not in t_out
            assert t_in[1:] == t_out[:-1]
            targets.append(t_in + (t_out[-1],))
    assert targets == toy.encoded_tgt  # no shuffle, no bucketing: corpus order


@pytest.mark.parametrize("shuffle", [False, True])
def test_every_pair_appears_once(toy, shuffle):
    ds = batching.make_dataset(toy.pairs, toy.src, toy.tgt, batch_size=3, shuffle=shuffle, seed=1)
    seen = collections.Counter()
    for s, ti, _ in batches(ds):
        seen.update(zip(rows(s), rows(ti)))
    expected = collections.Counter((s, t[:-1]) for s, t in zip(toy.encoded_src, toy.encoded_tgt))
    assert seen == expected


def test_bucketing_pads_each_batch_below_its_boundary(toy):
    boundaries = [3, 5, 7]
    ds = batching.make_dataset(toy.pairs, toy.src, toy.tgt, batch_size=2, shuffle=True, bucket_boundaries=boundaries)
    widths = []
    for s, ti, _ in batches(ds):
        keys = [max(len(a), len(b)) for a, b in zip(rows(s), rows(ti))]
        buckets = {bisect.bisect_right(boundaries, k) for k in keys}
        assert len(buckets) == 1, keys  # one length range per batch
        (bucket,) = buckets
        width = max(s.shape[1], ti.shape[1])
        assert width == max(keys)  # padded to the batch's longest, not to the boundary
        if bucket < len(boundaries):
            assert width < boundaries[bucket]
        widths.append(width)
    assert len(set(widths)) > 1


def test_shuffle_is_seeded_and_reshuffles_each_epoch(toy):
    def order(ds):
        return [r for s, _, _ in batches(ds) for r in rows(s)]

    def make(seed):
        return batching.make_dataset(toy.pairs, toy.src, toy.tgt, batch_size=12, seed=seed, bucket_boundaries=None)

    ds = make(3)
    first, second = order(ds), order(ds)
    assert sorted(first) == sorted(second) and first != second
    assert order(make(3)) == first


def test_max_length_and_empty_sources_are_dropped(toy):
    pairs = SentencePairs(
        source=TOY_SOURCE + ["\u200b"], target=TOY_TARGET + ["zero"], source_lang="es", target_lang="en"
    )
    ds = batching.make_dataset(pairs, toy.src, toy.tgt, batch_size=64, shuffle=False, bucket_boundaries=None)
    assert sum(s.shape[0] for s, _, _ in batches(ds)) == len(TOY_SOURCE)  # "\u200b" encodes to nothing
    ds = batching.make_dataset(toy.pairs, toy.src, toy.tgt, batch_size=64, shuffle=False, max_length=4)
    kept = [r for s, _, _ in batches(ds) for r in rows(s)]
    expected = [s for s, t in zip(toy.encoded_src, toy.encoded_tgt) if len(s) <= 4 and len(t) <= 4]
    assert sorted(kept) == sorted(expected) and 0 < len(kept) < len(TOY_SOURCE)


def test_pad_to_multiple_gives_few_shapes_and_the_same_examples(toy):
    """For XLA: every batch ``batch_size`` rows and lengths a multiple of 4; the real
    rows, their order and the number of batches are those of the unpadded pipeline."""
    args = dict(batch_size=5, shuffle=True, seed=2, bucket_boundaries=[3, 5, 7])
    plain = batches(batching.make_dataset(toy.pairs, toy.src, toy.tgt, **args))
    padded_ds = batching.make_dataset(toy.pairs, toy.src, toy.tgt, pad_to_multiple=4, **args)
    padded = batches(padded_ds)
    assert int(padded_ds.cardinality()) == len(padded) == len(plain)
    for (s, ti, to), (ps, pti, pto) in zip(plain, padded):
        for x, px in ((s, ps), (ti, pti), (to, pto)):
            assert px.shape[0] == 5 and px.shape[1] % 4 == 0 and px.shape[1] - x.shape[1] < 4
            assert rows(px) == rows(x) + [()] * (5 - x.shape[0])  # padding rows are empty
    assert len({tuple(ps.shape) for ps, _, _ in padded}) < len({tuple(s.shape) for s, _, _ in plain})


@pytest.mark.parametrize("pad", [None, 4])
@pytest.mark.parametrize("batch_size", [1000, 3])
def test_token_batches_hold_at_most_batch_tokens(toy, pad, batch_size):
    """``batch_tokens``: every batch's rows x longer side stays within the budget (padding for XLA
    included) and its rows within ``batch_size``; short buckets get more rows than long ones, each
    pair appears once, and the cardinality is the true number of batches."""
    boundaries, budget = [3, 5, 7], 16
    expected_sizes = [min(n, batch_size) for n in (8, 4, 2, 2)]  # caps 2, 4, 6 and the longest key 8
    ds = batching.make_dataset(
        toy.pairs,
        toy.src,
        toy.tgt,
        batch_size=batch_size,
        seed=4,
        bucket_boundaries=boundaries,
        batch_tokens=budget,
        pad_to_multiple=pad,
    )
    seen, rows_by_bucket = collections.Counter(), collections.defaultdict(set)
    got = batches(ds)
    assert int(ds.cardinality()) == len(got)
    for s, ti, _ in got:
        real = [(a, b) for a, b in zip(rows(s), rows(ti)) if a]
        seen.update(real)
        bucket = bisect.bisect_right(boundaries, max(max(len(a), len(b)) for a, b in real))
        assert s.shape[0] * max(s.shape[1], ti.shape[1]) <= budget or s.shape[0] == 1
        assert s.shape[0] <= batch_size
        if pad is None:
            rows_by_bucket[bucket].add(len(real))
        else:
            assert s.shape[1] % pad == 0 and ti.shape[1] % pad == 0
            assert s.shape[0] == min(max(budget // max(s.shape[1], ti.shape[1]), 1), batch_size)
    assert seen == collections.Counter((s, t[:-1]) for s, t in zip(toy.encoded_src, toy.encoded_tgt))
    if pad is None:  # caps 2, 4, 6 and the longest key 8: 8, 4, 2 and 2 rows per full batch
        keys = [max(len(s), len(t) - 1) for s, t in zip(toy.encoded_src, toy.encoded_tgt)]
        assert batching.token_batch_sizes(boundaries, budget, max(keys), batch_size) == expected_sizes
        in_bucket = collections.Counter(bisect.bisect_right(boundaries, k) for k in keys)
        assert {b: max(r) for b, r in rows_by_bucket.items()} == {
            b: min(n, expected_sizes[b]) for b, n in in_bucket.items()
        }


def test_make_dataset_rejects_bad_arguments(toy):
    with pytest.raises(ValueError, match="batch_tokens=0"):
        batching.make_dataset(toy.pairs, toy.src, toy.tgt, batch_tokens=0)
    with pytest.raises(ValueError, match="needs length buckets"):
        batching.make_dataset(toy.pairs, toy.src, toy.tgt, batch_tokens=64, bucket_boundaries=None)
    with pytest.raises(ValueError, match="increasing"):
        batching.make_dataset(toy.pairs, toy.src, toy.tgt, bucket_boundaries=[5, 3])
    with pytest.raises(ValueError, match="'auto', a list of lengths, or None"):
        batching.make_dataset(toy.pairs, toy.src, toy.tgt, bucket_boundaries="fixed")
    with pytest.raises(ValueError, match="batch_size=0"):
        batching.make_dataset(toy.pairs, toy.src, toy.tgt, batch_size=0)
    with pytest.raises(ValueError, match="empty corpus"):
        batching.make_dataset(toy.pairs[:0], toy.src, toy.tgt)
    with pytest.raises(ValueError, match="max_length"):
        batching.make_dataset(toy.pairs, toy.src, toy.tgt, max_length=1)
    with pytest.raises(ValueError, match="positive"):
        batching.make_dataset(toy.pairs, toy.src, toy.tgt, pad_to_multiple=0)


def test_cardinality_is_the_true_number_of_batches():
    """Keras needs it for progress bars; a wrong one would cut epochs short."""
    from seq2seq_keras import TextProcessor
    from seq2seq_keras.data import load_corpus, make_dataset

    pairs = load_corpus("builtin-ko-en", limit=700, seed=2)
    src = TextProcessor.for_language("ko").adapt(pairs.source)
    tgt = TextProcessor.for_language("en", add_start_end=True).adapt(pairs.target)
    for boundaries in ("auto", None, [4, 8]):
        ds = make_dataset(pairs, src, tgt, batch_size=32, bucket_boundaries=boundaries)
        assert int(ds.cardinality()) == sum(1 for _ in ds) == sum(1 for _ in ds)
