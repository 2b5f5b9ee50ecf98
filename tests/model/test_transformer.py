"""The Transformer (seq2seq_keras.model.transformer) against independent references: a numpy multi-head
attention and a numpy pre-norm encoder layer, Keras' own MultiHeadAttention and the package's scaled-dot
Luong attention per head, the paper's sinusoids; the causal mask, cached step-by-step decoding vs
teacher forcing, padding invariance; the Seq2Seq contract (fit, .keras round trip, greedy/sample/beam
through decoding.py, the CLI's TrainConfig) and the SavedModel through TF Serving's loader with parity."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from seq2seq_keras.text import START_ID

SIZES = dict(architecture="transformer", num_layers=2, num_heads=2, model_dim=8, ff_dim=16)


def _randomize(layer, seed=0, scale=0.4):
    """Every weight of ``layer`` random (LayerNorm's gamma=1/beta=0 and zero biases would hide mistakes)."""
    rng = np.random.default_rng(seed)
    for v in layer.weights:
        v.assign(rng.normal(0.0, scale, v.shape).astype(v.dtype))


@pytest.fixture(scope="module")
def model(tiny_processors):
    from seq2seq_keras import Seq2Seq

    src, tgt = tiny_processors
    m = Seq2Seq(src, tgt, **SIZES)
    _randomize(m, seed=1, scale=0.3)
    return m


def _ids(rng, shape, vocab, low=3):
    return tf.constant(rng.integers(low, vocab, size=shape), tf.int32)


# ---------------------------------------------------------------------- numpy references
def np_softmax(scores, mask):
    scores = np.where(mask, scores, -np.inf)
    top = np.max(np.where(mask, scores, -1e30), axis=-1, keepdims=True)
    e = np.where(mask, np.exp(scores - top), 0.0)
    total = e.sum(-1, keepdims=True)
    return np.divide(e, total, out=np.zeros_like(e), where=total > 0)


def np_multi_head(layer, query, value, mask):
    """Vaswani et al. 2017, 3.2.2, in numpy: heads from W^Q, W^K, W^V, eq. 1 per head, concat, W^O.
    ``mask`` bool [batch, tgt_len, src_len] -> (output [batch, tgt_len, d], weights [batch, heads, tgt_len, src_len])."""
    w = lambda dense: (dense.kernel.numpy().astype(np.float64), dense.bias.numpy().astype(np.float64))  # noqa: E731
    (wq, bq), (wk, bk), (wv, bv), (wo, bo) = (
        w(layer.query_dense),
        w(layer.key_dense),
        w(layer.value_dense),
        w(layer.output_dense),
    )
    q = np.einsum("btd,dnh->btnh", query, wq) + bq
    k = np.einsum("bsd,dnh->bsnh", value, wk) + bk
    v = np.einsum("bsd,dnh->bsnh", value, wv) + bv
    scores = np.einsum("btnh,bsnh->bnts", q, k) / np.sqrt(q.shape[-1])
    weights = np_softmax(scores, mask[:, None])
    context = np.einsum("bnts,bsnh->btnh", weights, v)
    return np.einsum("btnh,nhd->btd", context, wo) + bo, weights


def np_layer_norm(norm, x):
    mean, var = x.mean(-1, keepdims=True), x.var(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + norm.epsilon) * norm.gamma.numpy() + norm.beta.numpy()


def test_positional_encoding_is_the_papers_sinusoid():
    from seq2seq_keras.model.transformer import positional_encoding

    dim, positions = 6, np.array([[0, 1, 7, 40]])
    expected = np.zeros((1, 4, dim))
    for j, pos in enumerate(positions[0]):
        for i in range(dim // 2):
            expected[0, j, 2 * i] = np.sin(pos / 10000 ** (2 * i / dim))
            expected[0, j, 2 * i + 1] = np.cos(pos / 10000 ** (2 * i / dim))
    np.testing.assert_allclose(positional_encoding(tf.constant(positions), dim).numpy(), expected, atol=1e-5)


def test_multi_head_attention_equals_a_numpy_reference_and_masks_exactly(rng):
    from seq2seq_keras.model.transformer import ScaledDotMultiHeadAttention

    layer = ScaledDotMultiHeadAttention(num_heads=3, key_dim=2)
    query, value = rng.normal(size=(2, 4, 5)), rng.normal(size=(2, 6, 5))
    layer.build(query.shape, value.shape)
    _randomize(layer, seed=2)
    mask = np.ones((2, 4, 6), bool)
    mask[0, :, 4:] = False  # source padding
    mask[1] = np.tril(np.ones((4, 6), bool))  # causal-like pattern
    mask[1, 0] = False  # a row with nothing to see: zero weights, not uniform
    out, weights = layer(
        tf.constant(query, tf.float32),
        tf.constant(value, tf.float32),
        attention_mask=tf.constant(mask),
        return_attention_scores=True,
    )
    expected_out, expected_weights = np_multi_head(layer, query, value, mask)
    np.testing.assert_allclose(weights.numpy(), expected_weights, atol=1e-5)
    np.testing.assert_allclose(out.numpy(), expected_out, atol=1e-4)
    assert not np.any(weights.numpy()[0, :, :, 4:]) and not np.any(weights.numpy()[1, :, 0])


def test_each_head_is_the_packages_scaled_dot_attention_and_keras_mha_agrees(rng):
    """Keras' stock MultiHeadAttention, per head, is LuongAttention('scaled_dot') on the projected q/k;
    the package's layer (same weights) gives Keras' outputs."""
    import keras

    from seq2seq_keras.model import LuongAttention
    from seq2seq_keras.model.transformer import ScaledDotMultiHeadAttention

    query = tf.constant(rng.normal(size=(2, 3, 8)), tf.float32)
    value = tf.constant(rng.normal(size=(2, 5, 8)), tf.float32)
    mask = np.ones((2, 5), bool)
    mask[1, 3:] = False
    keras_mha = keras.layers.MultiHeadAttention(num_heads=2, key_dim=4)
    ours = ScaledDotMultiHeadAttention(num_heads=2, key_dim=4)
    for layer in (keras_mha, ours):
        layer.build(query.shape, value.shape)
    _randomize(keras_mha, seed=3)
    ours.set_weights(keras_mha.get_weights())
    attention_mask = tf.constant(np.repeat(mask[:, None, :], 3, axis=1))
    keras_out, keras_weights = keras_mha(query, value, attention_mask=attention_mask, return_attention_scores=True)
    our_out, our_weights = ours(query, value, attention_mask=attention_mask, return_attention_scores=True)
    np.testing.assert_allclose(our_out.numpy(), keras_out.numpy(), atol=1e-5)
    np.testing.assert_allclose(our_weights.numpy(), keras_weights.numpy(), atol=1e-6)

    q, k = keras_mha.query_dense(query), keras_mha.key_dense(value)  # [batch, len, heads, head_dim]
    scaled_dot = LuongAttention("scaled_dot")  # score q^T k / sqrt(head_dim): head_dim is the values' width
    for head in range(2):
        _, weights = scaled_dot(q[:, :, head], k[:, :, head], mask=tf.constant(mask))
        np.testing.assert_allclose(weights.numpy(), keras_weights.numpy()[:, head], atol=1e-6)


def test_encoder_layer_is_pre_norm_as_documented(rng):
    from seq2seq_keras.model.transformer import TransformerEncoderLayer

    layer = TransformerEncoderLayer(model_dim=6, num_heads=2, ff_dim=10)
    x = rng.normal(size=(2, 4, 6))
    mask = np.array([[1, 1, 1, 1], [1, 1, 0, 0]], bool)
    layer.build(x.shape)
    _randomize(layer, seed=4)
    got = layer(tf.constant(x, tf.float32), tf.constant(mask)).numpy()
    h = np_layer_norm(layer.attention_norm, x)
    x1 = x + np_multi_head(layer.self_attention, h, h, np.repeat(mask[:, None, :], 4, axis=1))[0]
    h = np_layer_norm(layer.ff_norm, x1)
    ff = np.maximum(h @ layer.ff_inner.kernel.numpy() + layer.ff_inner.bias.numpy(), 0.0)
    expected = x1 + ff @ layer.ff_outer.kernel.numpy() + layer.ff_outer.bias.numpy()
    np.testing.assert_allclose(got, expected, atol=1e-4)


# ---------------------------------------------------------------------- masks and the cache
def test_causal_mask_a_later_target_token_never_changes_earlier_logits(model, rng):
    vocab = model.target_text.vocabulary_size
    source = _ids(rng, (2, 5), model.source_text.vocabulary_size)
    target = _ids(rng, (2, 6), vocab).numpy()
    changed = target.copy()
    changed[:, 4] = (changed[:, 4] - 3 + 1) % (vocab - 3) + 3
    before = model((source, tf.constant(target))).numpy()
    after = model((source, tf.constant(changed))).numpy()
    np.testing.assert_allclose(after[:, :4], before[:, :4], atol=1e-5)
    assert np.abs(after[:, 4:] - before[:, 4:]).max() > 1e-3  # ...while it does change its own and later ones


def test_cached_step_by_step_decoding_equals_teacher_forcing(model, rng):
    source = _ids(rng, (3, 6), model.source_text.vocabulary_size).numpy()
    source[1, 4:] = 0
    source[2, 1:] = 0
    target = _ids(rng, (3, 7), model.target_text.vocabulary_size).numpy()
    target[:, 0] = START_ID
    source, target = tf.constant(source), tf.constant(target)
    logits, weights = model.call_with_attention((source, target))
    encoder_outputs, encoder_states, mask = model.encoder(source)
    state, memory = model.decoder.start(encoder_outputs, encoder_states, mask)
    assert state[0].shape[1:] == (2 * 6 + 10, 2, 4)  # [n, cache_len, heads, head_dim], fixed for tf.while_loop
    for t in range(7):
        step_logits, state, step_weights = model.decoder.step(target[:, t], state, memory)
        np.testing.assert_allclose(step_logits.numpy(), logits.numpy()[:, t], atol=1e-4)
        np.testing.assert_allclose(step_weights.numpy(), weights.numpy()[:, t], atol=1e-5)
    assert state[-1].numpy().tolist() == [7, 7, 7]


def test_a_step_past_the_cache_raises(model, rng):
    encoder_outputs, states, mask = model.encoder(_ids(rng, (1, 2), model.source_text.vocabulary_size))
    state, memory = model.decoder.start(encoder_outputs, states, mask, max_length=2)
    for _ in range(2):
        _, state, _ = model.decoder.step(tf.constant([START_ID]), state, memory)
    with pytest.raises(tf.errors.InvalidArgumentError, match="more steps than the cache holds"):
        model.decoder.step(tf.constant([START_ID]), state, memory)


def test_extra_source_padding_changes_nothing(model, rng):
    source = _ids(rng, (2, 4), model.source_text.vocabulary_size)
    target = _ids(rng, (2, 5), model.target_text.vocabulary_size)
    padded = tf.pad(source, [[0, 0], [0, 3]])
    logits, weights = model.call_with_attention((source, target))
    padded_logits, padded_weights = model.call_with_attention((padded, target))
    np.testing.assert_allclose(padded_logits.numpy(), logits.numpy(), atol=1e-5)
    np.testing.assert_allclose(padded_weights.numpy()[..., :4], weights.numpy(), atol=1e-6)
    assert not np.any(padded_weights.numpy()[..., 4:])
    np.testing.assert_allclose(model.encoder(padded)[0].numpy()[:, :4], model.encoder(source)[0].numpy(), atol=1e-5)


def test_cross_attention_has_every_layer_and_head_and_the_heatmap_is_the_last_layers_mean(model, tiny_processors):
    sources, targets = ["나는 학생이다.", "그는 사과를 먹는다."], ["I am a student.", "He eats an apple."]
    all_weights = model.cross_attention(sources, targets).numpy()
    source_ids = model.source_text(sources)
    target_in = model.target_text(targets)[:, :-1]
    target_in = tf.where(tf.equal(target_in, 3), 0, target_in)  # [END] (id 3) is never an input
    assert all_weights.shape == (2, 2, 2, target_in.shape[1], source_ids.shape[1])  # batch, layers, heads, tgt, src
    _, weights = model.call_with_attention((source_ids, target_in))
    np.testing.assert_allclose(all_weights[:, -1].mean(axis=1), weights.numpy(), atol=1e-6)
    np.testing.assert_allclose(all_weights[0, :, :, :, :3].sum(-1), 1.0, atol=1e-5)  # 3 real source tokens
    assert not np.any(all_weights[0, ..., 3:])
    # One sentence, and the self-attention of the encoder: [batch, layers, heads, src_len, src_len].
    assert model.cross_attention(sources[0], targets[0]).shape[:3] == (1, 2, 2)
    assert model.encoder.self_attention_weights(source_ids).shape == (2, 2, 2, 4, 4)


def test_a_recurrent_model_gives_its_one_attention_as_one_layer_and_head(tiny_processors):
    from seq2seq_keras import Seq2Seq

    rnn = Seq2Seq(*tiny_processors, embedding_dim=8, encoder_units=8)
    weights = rnn.cross_attention("나는 학생이다.", "I am a student.").numpy()
    source_ids, target = rnn.source_text(["나는 학생이다."]), rnn.target_text(["I am a student."])[:, :-1]
    _, expected = rnn.call_with_attention((source_ids, tf.where(tf.equal(target, 3), 0, target)))
    np.testing.assert_allclose(weights, expected.numpy()[:, None, None], atol=1e-6)


def test_per_head_attention_of_the_decoded_hypothesis_is_what_the_steps_attended_to(model):
    """Seq2Seq.attention_heads (teacher forcing over the search's own output, after the search) equals the
    step-wise weights the search recorded: its last layer's head mean is the search's ``attention``, row by
    row, in a batch of different source and output lengths; each sentence alone gives the same weights."""
    from seq2seq_keras.decoding.pipeline import translate_graph

    sentences = tf.constant(["나는 학생이다.", "그는 사과를 먹는다. 너는 의사이다.", "", "책"])
    out = translate_graph(model, sentences, tf.constant(9), block_ngram_repeat=tf.constant(0))
    heads = model.attention_heads(sentences, out, 256).numpy()
    batch, tgt_len, src_len = out["attention"].shape
    assert heads.shape == (batch, 2, 2, tgt_len, src_len) and heads.dtype == np.float32
    np.testing.assert_allclose(heads[:, -1].mean(axis=1), out["attention"].numpy(), atol=1e-5)
    lengths, source_lengths = out["target_length"].numpy(), out["source_length"].numpy()
    assert lengths[2] == 0 and not np.any(heads[2])
    for b in range(batch):
        n, s = lengths[b], source_lengths[b]
        assert not np.any(heads[b, :, :, n:]) and not np.any(heads[b, ..., s:])
        if n:
            np.testing.assert_allclose(heads[b, :, :, :n, :s].sum(-1), 1.0, atol=1e-6)
        np.testing.assert_allclose(heads[b, :, :, :n, :s].sum(-1), 1.0, atol=1e-5)
        if n:
            alone = translate_graph(model, sentences[b : b + 1], tf.constant(9), block_ngram_repeat=tf.constant(0))
            np.testing.assert_allclose(
                model.attention_heads(sentences[b : b + 1], alone, 256).numpy()[0, :, :, :n, :s],
                heads[b, :, :, :n, :s],
                atol=1e-5,
            )


# ---------------------------------------------------------------------- the Seq2Seq contract
def test_keras_round_trip_and_configuration_errors(model, tmp_path, rng, tiny_processors):
    import keras

    from seq2seq_keras import Seq2Seq

    path = tmp_path / "transformer.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert (loaded.architecture, loaded.num_layers, loaded.num_heads, loaded.model_dim) == ("transformer", 2, 2, 8)
    source = _ids(rng, (2, 5), model.source_text.vocabulary_size)
    target = _ids(rng, (2, 4), model.target_text.vocabulary_size)
    np.testing.assert_array_equal(loaded((source, target)).numpy(), model((source, target)).numpy())
    assert loaded.translate("나는 학생이다.", max_length=5).text == model.translate("나는 학생이다.", max_length=5).text
    for bad, message in (
        (dict(architecture="lstm"), "architecture='lstm'"),
        (dict(SIZES, num_heads=3), "multiple of num_heads"),
        (dict(SIZES, model_dim=9, num_heads=3), "even"),
    ):
        with pytest.raises(ValueError, match=message):
            Seq2Seq(*tiny_processors, **bad)


def test_greedy_sampling_and_beam_run_through_decoding(model):
    from seq2seq_keras.decoding.pipeline import translate

    sentences = ["나는 학생이다.", "그는 사과를 먹는다.", ""]
    greedy = translate(model, sentences, max_length=6)
    beam1 = translate(model, sentences, method="beam", beam_width=1, max_length=6, block_ngram_repeat=0)
    assert [t.target_tokens for t in beam1] == [t.target_tokens for t in greedy]
    for g, b in zip(greedy, beam1):
        assert b.log_prob == pytest.approx(g.log_prob, abs=1e-4)
        assert g.attention.shape == (g.length, len(g.source_tokens))
    beam = translate(model, sentences, method="beam", beam_width=3, n_best=3, max_length=6)
    assert all(len(t.alternatives) == 2 for t in beam[:2]) and beam[2].text == ""
    sampled = translate(model, sentences, method="sample", seed=5, max_length=6)
    assert [t.text for t in sampled] == [
        t.text for t in translate(model, sentences, method="sample", seed=5, max_length=6)
    ]


def test_under_mixed_bfloat16_attention_is_float32_and_the_float32_copy_is_the_float32_model(model, tiny_processors):
    """Under mixed_bfloat16 (``auto`` on AMX CPUs) every head's weights and the decoded attention are float32
    rows that sum to 1 within 1e-6; ``with_dtype_policy("float32")`` of that model (what an export runs)
    computes exactly what the float32 model with the same weights does."""
    from conftest import using_dtype_policy

    from seq2seq_keras import Seq2Seq
    from seq2seq_keras.decoding.pipeline import translate

    src, tgt = tiny_processors
    with using_dtype_policy("mixed_bfloat16"):
        mixed = Seq2Seq(src, tgt, **SIZES)
    mixed.set_weights(model.get_weights())
    sentences = ["나는 학생이다.", "그는 사과를 먹는다.", "나는"]
    heads = mixed.cross_attention(sentences, ["I am a student.", "He eats an apple.", "I"])
    assert heads.dtype == "float32" and heads.shape[1:3] == (SIZES["num_layers"], SIZES["num_heads"])
    real = np.asarray(heads).sum(-1)[np.asarray(heads).sum(-1) > 0]  # rows of real target positions
    np.testing.assert_allclose(real, 1.0, atol=1e-6)
    for method, extra in (("greedy", {}), ("beam", dict(beam_width=3, n_best=2)), ("sample", dict(seed=1))):
        for t in translate(mixed, sentences, method=method, max_length=6, **extra):
            for h in [t, *t.alternatives]:
                assert h.attention.dtype == np.float32
                np.testing.assert_allclose(h.attention.sum(-1), 1.0, atol=1e-6)
    as_float32 = mixed.with_dtype_policy("float32")
    assert {
        layer.dtype_policy.name for layer in as_float32._flatten_layers() if type(layer).__name__ != "TextProcessor"
    } == {"float32"}
    ids = src(sentences)
    target = tgt(["I am a student.", "He eats an apple.", "I"])[:, :-1]
    np.testing.assert_allclose(as_float32((ids, target)), model((ids, target)), rtol=1e-5, atol=1e-5)
    assert [t.text for t in translate(as_float32, sentences, max_length=6)] == [
        t.text for t in translate(model, sentences, max_length=6)
    ]


def test_fit_lowers_the_masked_loss(tiny_processors):
    import keras
    from conftest import TINY_SOURCE, TINY_TARGET

    from seq2seq_keras import Seq2Seq

    src, tgt = tiny_processors
    keras.utils.set_random_seed(0)
    m = Seq2Seq(src, tgt, **SIZES)
    m.compile(keras.optimizers.Adam(1e-2))
    target = tgt(TINY_TARGET)
    data = tf.data.Dataset.from_tensor_slices(((src(TINY_SOURCE), target[:, :-1]), target[:, 1:])).batch(4)
    before = m.evaluate(data, verbose=0, return_dict=True)
    m.fit(data, epochs=20, verbose=0)
    after = m.evaluate(data, verbose=0, return_dict=True)
    assert after["loss"] < 0.5 * before["loss"] and after["accuracy"] > before["accuracy"] + 0.3


def test_train_config_builds_a_transformer():
    from seq2seq_keras.training import TrainConfig

    config = TrainConfig.from_json(TrainConfig(architecture="transformer", num_heads=2, model_dim=16).to_json())
    assert (config.architecture, config.num_heads, config.model_dim) == ("transformer", 2, 16)
    with pytest.raises(ValueError, match="architecture='cnn'"):
        TrainConfig(architecture="cnn")


# ---------------------------------------------------------------------- export through TF Serving's loader
TRANSFORMER_RUN = dict(
    data="builtin-ko-en",
    limit=300,
    architecture="transformer",
    num_layers=1,
    num_heads=2,
    model_dim=16,
    ff_dim=32,
    epochs=2,
    batch_size=32,
    learning_rate=1e-2,
    max_vocabulary=None,
    seed=0,
)


@pytest.mark.slow
@pytest.mark.parametrize("precision", ["float32", "mixed_bfloat16"])
def test_export_runs_through_tf_servings_loader_with_python_parity(tmp_path_factory, precision):
    """Trained under either precision, the export computes in float32: every signature equals the Python API
    on the same weights in float32, and every layer's and head's attention rows sum to 1 within 1e-6."""
    from test_export import BAD_INPUTS, EXPECTED_OUTPUTS, _as_text, assert_beams_same_as_python, assert_same_as_python
    from test_pipeline import sample_sentences

    from seq2seq_keras.decoding.pipeline import translate
    from seq2seq_keras.serving.check import check_servable, run_servable_fresh
    from seq2seq_keras.serving.export import export_model
    from seq2seq_keras.training import TrainConfig, load_model, train

    run = tmp_path_factory.mktemp("transformer_run")
    train(TrainConfig(**TRANSFORMER_RUN, precision=precision), out_dir=run, verbose=0)
    trained = load_model(run)
    assert trained.architecture == "transformer" and trained.dtype_policy.name == precision
    model = trained.with_dtype_policy("float32")  # what the export computes
    path = export_model(trained, "tiny_transformer", tmp_path_factory.mktemp("exports"), source_model=run)
    batch = sample_sentences(8) + BAD_INPUTS
    report = run_servable_fresh(path, [(sig, sig, batch) for sig in EXPECTED_OUTPUTS])
    assert report["problems"] == [] and report["modules_leaked"] == []
    out = {key[len("session:") :]: value for key, value in report["outputs"].items() if key.startswith("session:")}
    greedy = translate(model, batch)
    assert [_as_text(t) for t in out["serving_default"]["translation"]] == [t.text for t in greedy]
    assert_same_as_python(out["translate_with_attention"], greedy)
    heads = out["translate_with_attention"]["attention_heads"]  # [batch, layers, heads, tgt_len, src_len]
    assert heads.dtype == np.float32 and heads.shape[:3] == (len(batch), 1, 2)
    for b, t in enumerate(greedy):  # the last layer's head mean is the step-wise heatmap Python gives
        n, s = t.attention.shape
        np.testing.assert_allclose(heads[b, -1, :, :n, :s].mean(axis=0), t.attention, atol=1e-5)
        assert not np.any(heads[b, :, :, n:]) and not np.any(heads[b, ..., s:])
        if n:
            np.testing.assert_allclose(heads[b, :, :, :n, :s].sum(-1), 1.0, atol=1e-6)
    beam = translate(model, batch, method="beam", beam_width=4, length_penalty=0.6, n_best=4)
    assert_same_as_python(out["beam_search"], beam, with_score=True)
    assert_beams_same_as_python(out["beam_search"], beam)
    assert check_servable(path).ok


# ---------------------------------------------------------------------- evaluation on the same footing
def test_evaluate_scores_the_compared_model_and_each_layer_against_gold_alignments(tmp_path):
    """AER for the compared model too, and per decoder layer for a Transformer: layer ``i`` is the argmax of
    ``model.cross_attention``'s layer ``i`` (mean of heads) against the gold links, recomputed here pair by pair."""
    import keras

    from seq2seq_keras import Seq2Seq, TextProcessor
    from seq2seq_keras.data import load_corpus
    from seq2seq_keras.evaluation import alignment as al
    from seq2seq_keras.evaluation import scores as ev
    from seq2seq_keras.words import word_tokens

    pairs = load_corpus("builtin-ko-en", limit=200, seed=1)
    src = TextProcessor.for_language("ko").adapt(pairs.source)
    tgt = TextProcessor.for_language("en", add_start_end=True).adapt(pairs.target)
    keras.utils.set_random_seed(0)
    transformer = Seq2Seq(src, tgt, **SIZES)
    _randomize(transformer, seed=2, scale=0.5)
    gru = Seq2Seq(src, tgt, embedding_dim=8, encoder_units=8)
    test = pairs[:10]
    report = ev.evaluate(
        transformer, test, compare=gru, beam_width=0, batch_size=8, progress=False, max_length=6
    ).report
    by_layer = report["alignment"]["by_layer"]
    assert len(by_layer) == 2 and by_layer[-1] == report["alignment"]["attention"]  # the heatmap is the last layer
    golds, links = [], []
    for source, target, gold in zip(test.source, test.target, test.alignments):
        n_s, n_t = len(word_tokens(source)), len(word_tokens(target))
        first = transformer.cross_attention(source, target).numpy()[0, 0].mean(axis=0)[:n_t, :n_s]
        golds.append(al.gold_matrix(gold, n_t, n_s))
        links.append(al.argmax_links(first))
    assert by_layer[0]["aer"] == pytest.approx(al.alignment_score(golds, links).aer, abs=1e-9)
    assert report["compare"]["alignment"]["attention"] == al.alignment_quality(gru, test)["attention"]
    from seq2seq_keras.evaluation.report import report_markdown

    markdown = report_markdown(report)
    assert "| layer 1 (mean of heads) |" in markdown and "attention (bahdanau): attention argmax" in markdown
