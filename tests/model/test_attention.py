"""Attention layers against hand computations, numpy and Keras built-ins."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import PRECISIONS, using_dtype_policy

from seq2seq_keras import BahdanauAttention, LuongAttention
from seq2seq_keras.model.attention import luong_score, make_attention, masked_softmax, weighted_sum

B, S, T, QD, VD = 3, 5, 4, 6, 6


def _inputs(rng, with_padding=True):
    query = rng.normal(size=(B, T, QD)).astype("float32")
    values = rng.normal(size=(B, S, VD)).astype("float32")
    lengths = np.array([5, 3, 1]) if with_padding else np.full(B, S)
    mask = np.arange(S)[None, :] < lengths[:, None]
    return query, values, mask


def _softmax(x):
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


ALL_LAYERS = [
    lambda: BahdanauAttention(7),
    lambda: LuongAttention("dot"),
    lambda: LuongAttention("general"),
    lambda: LuongAttention("scaled_dot"),
]


@pytest.mark.parametrize("make", ALL_LAYERS)
def test_weights_sum_to_one_zero_on_padding_and_context_is_weighted_sum(make, rng):
    query, values, mask = _inputs(rng)
    context, weights = make()(query, values, mask=mask)
    context, weights = np.asarray(context), np.asarray(weights)
    assert weights.shape == (B, T, S) and context.shape == (B, T, VD)
    np.testing.assert_allclose(weights.sum(-1), 1.0, atol=1e-6)
    assert np.all(weights[~np.broadcast_to(mask[:, None, :], weights.shape)] == 0.0)
    np.testing.assert_allclose(context, np.einsum("bts,bsd->btd", weights, values), atol=1e-5)


@pytest.mark.parametrize("policy", PRECISIONS)
@pytest.mark.parametrize("make", ALL_LAYERS)
def test_weights_and_context_are_computed_in_float32_under_every_policy(make, policy, rng):
    """Under mixed_bfloat16 the weights are float32 rows that sum to 1 within 1e-6 (bfloat16 ones summed to
    0.998-1.002) and the context is their float32 weighted sum of the values, handed on in the compute dtype."""
    query, values, mask = _inputs(rng)
    with using_dtype_policy(policy):
        layer = make()
    for q in (query, query[:, 0]):  # all steps and one decoder step
        context, weights = layer(q, values, mask=mask)
        assert weights.dtype == "float32" and context.dtype == layer.compute_dtype
        weights = np.asarray(weights).reshape(B, -1, S)
        np.testing.assert_allclose(weights.sum(-1), 1.0, atol=1e-6)
        assert np.all(weights[~np.broadcast_to(mask[:, None, :], weights.shape)] == 0.0)
        seen = np.asarray(
            keras.ops.cast(keras.ops.cast(values, layer.compute_dtype), "float32")
        )  # as the layer got them
        expected = np.einsum("bts,bsd->btd", weights.astype(np.float64), seen.astype(np.float64))
        got = np.asarray(keras.ops.cast(context, "float32"), np.float64).reshape(expected.shape)
        tolerance = 1e-6 if policy == "float32" else 2.0**-8  # the context's own rounding to bfloat16
        np.testing.assert_allclose(got, expected, rtol=tolerance, atol=tolerance)


@pytest.mark.parametrize("make", ALL_LAYERS)
def test_single_query_matches_sequence_query(make, rng):
    query, values, mask = _inputs(rng)
    layer = make()
    ctx_seq, w_seq = layer(query, values, mask=mask)
    for t in range(T):
        ctx, w = layer(query[:, t], values, mask=mask)
        assert w.shape == (B, S) and ctx.shape == (B, VD)
        np.testing.assert_allclose(w, w_seq[:, t], atol=1e-6)
        np.testing.assert_allclose(ctx, ctx_seq[:, t], atol=1e-5)


@pytest.mark.parametrize("make", ALL_LAYERS)
def test_weights_permute_with_source_positions(make, rng):
    query, values, _ = _inputs(rng, with_padding=False)
    layer = make()
    ctx, w = layer(query, values)
    perm = rng.permutation(S)
    ctx_p, w_p = layer(query, values[:, perm])
    np.testing.assert_allclose(np.asarray(w_p), np.asarray(w)[..., perm], atol=1e-6)
    np.testing.assert_allclose(ctx_p, ctx, atol=1e-5)  # a weighted sum does not care about order


def test_bahdanau_score_equals_hand_computation_with_the_layers_weights(rng):
    query, values, mask = _inputs(rng)
    layer = BahdanauAttention(7)
    _, weights = layer(query, values, mask=mask)
    W1 = layer.query_dense.kernel.numpy()
    W2, b2 = layer.key_dense.kernel.numpy(), layer.key_dense.bias.numpy()
    v = layer.score_dense.kernel.numpy()[:, 0]
    expected = np.zeros((B, T, S))
    for b in range(B):
        for t in range(T):
            scores = np.array([v @ np.tanh(query[b, t] @ W1 + values[b, j] @ W2 + b2) for j in range(S)])
            scores[~mask[b]] = -np.inf
            expected[b, t] = _softmax(scores)
    np.testing.assert_allclose(weights, expected, atol=1e-5)


def test_bahdanau_precomputed_keys_give_the_same_result(rng):
    query, values, mask = _inputs(rng)
    layer = BahdanauAttention(7)
    ctx, w = layer(query, values, mask=mask)
    ctx_k, w_k = layer(query, values, mask=mask, keys=layer.keys(values))
    np.testing.assert_allclose(w_k, w, atol=1e-7)
    np.testing.assert_allclose(ctx_k, ctx, atol=1e-7)


def test_dot_and_scaled_dot_equal_numpy(rng):
    query, values, mask = _inputs(rng)
    raw = np.einsum("btd,bsd->bts", query, values)
    for score, scale in (("dot", 1.0), ("scaled_dot", 1 / np.sqrt(VD))):
        _, w = LuongAttention(score)(query, values, mask=mask)
        s = np.where(mask[:, None, :], raw * scale, -np.inf)
        np.testing.assert_allclose(w, _softmax(s), atol=1e-5)


def test_general_score_uses_W_a(rng):
    query, values, mask = _inputs(rng)
    layer = LuongAttention("general")
    _, w = layer(query, values, mask=mask)
    Wa = layer.key_dense.kernel.numpy()  # [value_dim, query_dim]
    s = np.einsum("btq,bsq->bts", query, values @ Wa)
    np.testing.assert_allclose(w, _softmax(np.where(mask[:, None, :], s, -np.inf)), atol=1e-5)


def test_scaled_dot_matches_keras_attention_layer(rng):
    """Keras' own dot-product Attention with use_scale=False on pre-scaled queries."""
    query, values, mask = _inputs(rng)
    ctx, w = LuongAttention("scaled_dot")(query, values, mask=mask)
    ref_ctx, ref_w = keras.layers.Attention()(
        [query / np.sqrt(VD), values], mask=[None, mask], return_attention_scores=True
    )
    np.testing.assert_allclose(w, ref_w, atol=1e-5)
    np.testing.assert_allclose(ctx, ref_ctx, atol=1e-5)


def test_mask_taken_from_keras_mask_when_not_given(rng):
    ids = np.array([[3, 4, 0, 0, 0]])
    emb = keras.layers.Embedding(10, VD, mask_zero=True)
    values = emb(ids)
    _, w = LuongAttention("dot")(rng.normal(size=(1, VD)).astype("float32"), values)
    assert np.all(np.asarray(w)[0, 2:] == 0)


def test_fully_masked_row_gives_zero_weights_not_nan():
    scores = tf.constant([[1.0, 2.0, 3.0]])
    w = masked_softmax(scores, tf.constant([[False, False, False]]))
    assert np.all(np.asarray(w) == 0)


def test_dot_with_mismatched_sizes_explains_itself(rng):
    with pytest.raises(ValueError, match="query_dim == value_dim"):
        LuongAttention("dot")(np.zeros((1, 3), "float32"), np.zeros((1, 4, 5), "float32"))


def test_unknown_scores_are_refused():
    with pytest.raises(ValueError, match="choose one of"):
        LuongAttention("cosine")
    with pytest.raises(ValueError, match="choose one of"):
        make_attention("multihead", 8)


@pytest.mark.parametrize("make", ALL_LAYERS)
def test_get_config_from_config_round_trip(make, rng):
    query, values, mask = _inputs(rng)
    layer = make()
    ctx, w = layer(query, values, mask=mask)
    clone = layer.__class__.from_config(layer.get_config())
    clone(query, values, mask=mask)
    clone.set_weights(layer.get_weights())
    ctx2, w2 = clone(query, values, mask=mask)
    np.testing.assert_allclose(w2, w, atol=1e-7)
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer))
    assert type(restored) is type(layer) and restored.get_config() == layer.get_config()


def _graph_ops(f, *args):
    return {node.op for node in tf.function(f).get_concrete_function(*args).graph.as_graph_def().node}


@pytest.mark.parametrize("leading", [(3,), (2, 4)], ids=["batch", "batch-heads"])
def test_one_query_is_averaged_by_multiply_and_sum_with_the_matmuls_numbers(leading, rng):
    """A decoder step's single query takes the multiply-and-sum kernel (no BatchMatMulV2 in its graph:
    oneDNN's costs 80-150 us a call at batch 1) and gives the matrix product's numbers (numpy, float64)."""
    weights = rng.random((*leading, 1, 5)).astype("float32")
    values = rng.normal(size=(*leading, 5, 7)).astype("float32")
    np.testing.assert_allclose(weighted_sum(weights, values), weights.astype("float64") @ values, rtol=1e-5, atol=1e-6)
    assert "BatchMatMulV2" not in _graph_ops(weighted_sum, weights, values)
    many = rng.random((*leading, 4, 5)).astype("float32")  # teacher forcing: still one matrix product
    np.testing.assert_allclose(weighted_sum(many, values), many.astype("float64") @ values, rtol=1e-5, atol=1e-6)
    assert "BatchMatMulV2" in _graph_ops(weighted_sum, many, values)


def test_one_query_is_scored_by_multiply_and_sum_with_the_matmuls_numbers(rng):
    keys = rng.normal(size=(3, 5, 7)).astype("float32")
    query = rng.normal(size=(3, 1, 7)).astype("float32")
    expected = 0.5 * (query.astype("float64") @ np.swapaxes(keys, -1, -2))  # [3, 1, 5]
    np.testing.assert_allclose(luong_score(query, keys, 0.5), expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(luong_score(query[:, 0], keys, 0.5), expected[:, 0], rtol=1e-5, atol=1e-6)
    for q in (query, query[:, 0]):
        assert "BatchMatMulV2" not in _graph_ops(lambda q, k: luong_score(q, k, 0.5), q, keys)
