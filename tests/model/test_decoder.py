"""Decoder: the fused step against Keras layer calls, the fast mode (no input feeding), mixed precision."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import TINY_SOURCE, TINY_TARGET

from seq2seq_keras import Decoder, Seq2Seq

ATTENTIONS = ["bahdanau", "luong-dot", "luong-general", "luong-scaled-dot", None]


def _batch(src, tgt):
    s_ids, t_ids = src(TINY_SOURCE), tgt(TINY_TARGET)
    return s_ids, t_ids[:, :-1], t_ids[:, 1:]


@pytest.fixture
def float32_matmuls():
    """Full float32 matrix multiplies on a GPU for the numpy comparisons (TensorFlow's default
    TF32 keeps 10 mantissa bits, errors of ~1e-3)."""
    previous = tf.config.experimental.tensor_float_32_execution_enabled()
    tf.config.experimental.enable_tensor_float_32_execution(False)
    yield
    tf.config.experimental.enable_tensor_float_32_execution(previous)


def _logits_weights_grads(model, s_ids, t_in, implementation):
    model.decoder.implementation = implementation
    model.encoder.implementation = "layers" if implementation == "layers" else "auto"
    with tf.GradientTape() as tape:
        logits, weights = model.call_with_attention((s_ids, t_in))
        loss = tf.reduce_sum(logits * tf.random.stateless_normal(logits.shape, [7, 8]))
    grads = [tf.convert_to_tensor(g) for g in tape.gradient(loss, model.trainable_variables)]
    return logits, weights, grads


@pytest.mark.parametrize("input_feeding", [True, False])
@pytest.mark.parametrize("attention", ATTENTIONS)
def test_implementations_agree_on_logits_weights_and_gradients(attention, input_feeding, tiny_processors):
    """Keras layer calls per step (the reference) vs the fused step / scans (the fused step without its
    precomputation, a benchmark rung, is compared the same way in test_benchmarks.py)."""
    src, tgt = tiny_processors
    model = Seq2Seq(src, tgt, embedding_dim=8, encoder_units=6, attention=attention, input_feeding=input_feeding)
    s_ids, t_in, _ = _batch(src, tgt)
    ref = _logits_weights_grads(model, s_ids, t_in, "layers")
    for implementation in ("fused",):
        got = _logits_weights_grads(model, s_ids, t_in, implementation)
        np.testing.assert_allclose(got[0], ref[0], atol=1e-5)
        np.testing.assert_allclose(got[1], ref[1], atol=1e-6)
        for g, r in zip(got[2], ref[2]):
            np.testing.assert_allclose(g, r, atol=1e-4)


def test_fast_mode_equals_luong_equations_computed_with_numpy(tiny_processors, float32_matmuls):
    """s_i = GRU(embed(y_{i-1}), s_{i-1}); a_i = softmax(s_i . h); h~ = tanh(W_c [s_i; c_i]); W_o h~ + b."""
    src, tgt = tiny_processors
    model = Seq2Seq(src, tgt, embedding_dim=8, encoder_units=6, attention="luong-dot", input_feeding=False)
    s_ids, t_in, _ = _batch(src, tgt)
    logits = np.asarray(model((s_ids, t_in)))
    dec = model.decoder
    enc_out, enc_states, mask = (
        np.asarray(x) if not isinstance(x, list) else np.asarray(x[0]) for x in model.encoder(s_ids)
    )
    sig = lambda x: 1 / (1 + np.exp(-x))  # noqa: E731
    emb = dec.embedding.embeddings.numpy()
    kernel, rec, bias = (
        v.numpy()
        for v in (dec.sequence_rnn.cell.kernel, dec.sequence_rnn.cell.recurrent_kernel, dec.sequence_rnn.cell.bias)
    )
    u = dec.units
    h = np.tanh(enc_states @ dec.bridges[0].kernel.numpy() + dec.bridges[0].bias.numpy())
    for t in range(t_in.shape[1]):
        x = emb[np.asarray(t_in)[:, t]] @ kernel + bias[0]
        r_all = h @ rec + bias[1]
        z, r = sig(x[:, :u] + r_all[:, :u]), sig(x[:, u : 2 * u] + r_all[:, u : 2 * u])
        h = z * h + (1 - z) * np.tanh(x[:, 2 * u :] + r * r_all[:, 2 * u :])
        scores = np.einsum("bu,bsu->bs", h, enc_out)
        scores = np.where(mask, scores, -np.inf)
        a = np.exp(scores - scores.max(-1, keepdims=True))
        a /= a.sum(-1, keepdims=True)
        c = np.einsum("bs,bsv->bv", a, enc_out)
        attentional = np.tanh(np.concatenate([h, c], -1) @ dec.attentional_layer.kernel.numpy())
        expected = attentional @ dec.output_layer.kernel.numpy() + dec.output_layer.bias.numpy()
        np.testing.assert_allclose(logits[:, t], expected, atol=1e-5)


def _sigmoid(x):
    return 1 / (1 + np.exp(-x))


def _input_feeding_reference(dec, target_ids, enc_out, enc_states, mask):
    """Bahdanau et al. 2014, appendix A, in float64 numpy from the layer's weights.

    s_0 = tanh(W_s h_final + b_s) (and c_0 = tanh(W_c c_final + b_c) for an LSTM); per step i:
    e_ij = v^T tanh(W1 s_{i-1} + W2 h_j + b) (Luong ``general``: s_{i-1}^T W_a h_j),
    a_i = softmax over real source tokens, c_i = sum_j a_ij h_j (the fixed h_final without attention);
    s_i = RNN([embed(y_{i-1}) ; c_i], s_{i-1}): Keras' GRU (reset_after: r gates h U_h + b_rec_h)
    or LSTM (gates i, f, candidate, o); logits_i = W_o [s_i ; c_i] + b_o.
    Returns logits [batch, steps, vocab], weights [batch, steps, src_len].
    """
    w = lambda v: np.asarray(v, np.float64)  # noqa: E731
    emb = w(dec.embedding.embeddings)
    kernel, rec, bias = w(dec.cell.kernel), w(dec.cell.recurrent_kernel), w(dec.cell.bias)
    u = dec.units
    state = [np.tanh(h @ w(b.kernel) + w(b.bias)) for b, h in zip(dec.bridges, enc_states)]
    logits, weights = [], []
    for i in range(target_ids.shape[1]):
        s = state[0]
        if dec.attention_type is None:
            a, c = np.zeros(mask.shape), enc_states[0]
        else:
            if dec.attention_type == "bahdanau":
                att = dec.attention
                keys = enc_out @ w(att.key_dense.kernel) + w(att.key_dense.bias)  # [batch, src, att]
                hidden = np.tanh((s @ w(att.query_dense.kernel))[:, None, :] + keys)
                scores = hidden @ w(att.score_dense.kernel)[:, 0]
            else:  # luong-general
                scores = np.einsum("bu,bsu->bs", s, enc_out @ w(dec.attention.key_dense.kernel))
            scores = np.where(mask, scores, -np.inf)
            top = np.max(scores, -1, keepdims=True)
            e = np.exp(scores - np.where(np.isfinite(top), top, 0))
            a = e / np.maximum(e.sum(-1, keepdims=True), 1e-300)  # a row without real tokens: all 0
            c = np.einsum("bs,bsv->bv", a, enc_out)
        x = np.concatenate([emb[target_ids[:, i]], c], -1) @ kernel
        if dec.rnn == "gru":
            x, h = x + bias[0], s @ rec + bias[1]
            z = _sigmoid(x[:, :u] + h[:, :u])
            r = _sigmoid(x[:, u : 2 * u] + h[:, u : 2 * u])
            state = [z * s + (1 - z) * np.tanh(x[:, 2 * u :] + r * h[:, 2 * u :])]
        else:
            g = x + s @ rec + bias
            cell = _sigmoid(g[:, u : 2 * u]) * state[1] + _sigmoid(g[:, :u]) * np.tanh(g[:, 2 * u : 3 * u])
            state = [_sigmoid(g[:, 3 * u :]) * np.tanh(cell), cell]
        logits.append(np.concatenate([state[0], c], -1) @ w(dec.output_layer.kernel) + w(dec.output_layer.bias))
        weights.append(a)
    return np.stack(logits, 1), np.stack(weights, 1)


def random_decoder_cases(dec, value_dim=10, seed=1):
    """Give ``dec`` random weights and biases (scale 0.4) and yield random teacher-forcing cases with the
    numpy reference: ``(target, encoder_outputs, encoder_states, source_mask, ref_logits, ref_weights)``
    for batches of 3 and 4 (the last row of the second all padding), value_dim != units."""
    rng = np.random.default_rng(seed)
    dec.build((None, None), (None, None, value_dim))
    for v in dec.weights:  # non-zero biases too: a swapped or dropped bias shows
        v.assign(rng.normal(scale=0.4, size=v.shape).astype("float32"))
    for batch, src_len, steps in ((3, 5, 4), (4, 7, 6)):
        enc_out = rng.normal(size=(batch, src_len, value_dim)).astype("float32")
        enc_states = [rng.normal(size=(batch, value_dim)).astype("float32") for _ in dec.bridges]
        lengths = rng.integers(1, src_len + 1, size=batch)
        lengths[-1] = 0 if batch == 4 else lengths[-1]
        mask = np.arange(src_len)[None, :] < lengths[:, None]
        target = rng.integers(0, dec.vocabulary_size, size=(batch, steps))
        ref_logits, ref_weights = _input_feeding_reference(
            dec, target, enc_out.astype(np.float64), [h.astype(np.float64) for h in enc_states], mask
        )
        yield target, enc_out, enc_states, mask, ref_logits, ref_weights


@pytest.mark.parametrize(
    "attention,rnn", [("bahdanau", "gru"), ("luong-general", "gru"), (None, "gru"), ("bahdanau", "lstm")]
)
def test_input_feeding_equals_bahdanau_equations_computed_with_numpy(attention, rnn, float32_matmuls):
    """The default decoder (and its LSTM variant), every step implementation, teacher forcing and
    start/step, against :func:`_input_feeding_reference` on random batches with source padding
    (an all-padding row included), random weights and biases, value_dim != units."""
    dec = Decoder(13, 4, 6, attention=attention, attention_units=5, rnn=rnn)
    implementations = ("fused", "layers") if rnn == "gru" else ("layers",)
    for target, enc_out, enc_states, mask, ref_logits, ref_weights in random_decoder_cases(dec):
        steps = target.shape[1]
        for implementation in implementations:
            dec.implementation = implementation
            logits, weights = dec(target, enc_out, enc_states, mask)
            np.testing.assert_allclose(logits, ref_logits, rtol=1e-5, atol=1e-5, err_msg=implementation)
            np.testing.assert_allclose(weights, ref_weights, rtol=1e-5, atol=1e-6, err_msg=implementation)
            state, memory = dec.start(enc_out, enc_states, mask)
            for i in range(steps):
                step_logits, state, step_weights = dec.step(target[:, i], state, memory)
                np.testing.assert_allclose(
                    step_logits, ref_logits[:, i], rtol=1e-5, atol=1e-5, err_msg=f"{implementation} step {i}"
                )
                np.testing.assert_allclose(
                    step_weights, ref_weights[:, i], rtol=1e-5, atol=1e-6, err_msg=f"{implementation} step {i}"
                )


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
@pytest.mark.parametrize("input_feeding", [True, False])
def test_mixed_precision_keeps_float32_logits(policy, input_feeding, tiny_processors):
    """Half-precision compute, float32 logits and master weights: teacher forcing and every
    decoding step equal a float32 model with the same (random, logits of order 3) weights
    to half-precision rounding."""
    src, tgt = tiny_processors
    reference = Seq2Seq(src, tgt, embedding_dim=8, encoder_units=6, input_feeding=input_feeding)
    rng = np.random.default_rng(0)
    weights = [rng.normal(scale=0.5, size=w.shape).astype("float32") for w in reference.get_weights()]
    reference.set_weights(weights)
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(policy)
    try:
        model = Seq2Seq(src, tgt, embedding_dim=8, encoder_units=6, input_feeding=input_feeding)
    finally:
        keras.config.set_dtype_policy(previous)
    model.set_weights(weights)
    assert model.decoder.compute_dtype == policy.split("_")[1]
    atol = {"mixed_float16": 0.015, "mixed_bfloat16": 0.1}[policy]  # measured: 0.004 and 0.035
    s_ids, t_in, t_out = _batch(src, tgt)
    ref_logits, ref_weights = (np.asarray(x) for x in reference.call_with_attention((s_ids, t_in)))
    assert np.abs(ref_logits).max() > 1
    logits, attention = model.call_with_attention((s_ids, t_in))
    assert logits.dtype == "float32"
    assert attention.dtype == "float32"  # attention is computed in float32 under every policy
    np.testing.assert_allclose(np.sum(attention, -1), 1.0, atol=1e-6)
    np.testing.assert_allclose(logits, ref_logits, atol=atol)
    np.testing.assert_allclose(np.asarray(attention, np.float32), ref_weights, atol=atol / 5)
    enc_out, enc_states, mask = model.encoder(s_ids)
    state, memory = model.decoder.start(enc_out, enc_states, mask)
    for t in range(t_in.shape[1]):
        step_logits, state, step_attention = model.decoder.step(t_in[:, t], state, memory)
        assert step_logits.dtype == "float32" and step_attention.dtype == "float32"
        np.testing.assert_allclose(np.sum(step_attention, -1), 1.0, atol=1e-6, err_msg=f"step {t}")
        np.testing.assert_allclose(step_logits, ref_logits[:, t], atol=atol, err_msg=f"step {t}")
    # The same weights computing in float32 again (what an export runs): the float32 model's numbers.
    as_float32 = model.with_dtype_policy("float32")
    assert as_float32.decoder.compute_dtype == "float32" and model.decoder.compute_dtype != "float32"
    assert model.with_dtype_policy(policy) is model
    with pytest.raises(ValueError, match="nope"):
        model.with_dtype_policy("nope")
    same_logits, same_attention = as_float32.call_with_attention((s_ids, t_in))
    np.testing.assert_allclose(same_logits, ref_logits, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(same_attention, ref_weights, rtol=1e-5, atol=1e-6)
    model.compile(keras.optimizers.Adam(1e-2))
    history = model.fit((s_ids, t_in), t_out, epochs=2, verbose=0)
    assert all(np.isfinite(history.history["loss"]))
    assert all(v.dtype == "float32" for v in model.trainable_variables)  # float32 master weights


def test_fast_mode_config_and_keras_round_trip(tiny_processors, tmp_path):
    src, tgt = tiny_processors
    model = Seq2Seq(src, tgt, embedding_dim=8, encoder_units=6, attention="luong-general", input_feeding=False)
    assert model.get_config()["input_feeding"] is False
    assert model.decoder.get_config()["input_feeding"] is False
    model.compile(keras.optimizers.Adam(1e-2))
    s_ids, t_in, t_out = _batch(src, tgt)
    model.fit((s_ids, t_in), t_out, epochs=2, verbose=0)
    model.save(tmp_path / "fast.keras")
    loaded = keras.models.load_model(tmp_path / "fast.keras")
    assert loaded.input_feeding is False and loaded.decoder.input_feeding is False
    np.testing.assert_array_equal(loaded((s_ids, t_in)), model((s_ids, t_in)))
    assert [t.text for t in loaded.translate(TINY_SOURCE)] == [t.text for t in model.translate(TINY_SOURCE)]
    clone = Decoder.from_config(model.decoder.get_config())
    assert clone.get_config() == model.decoder.get_config()


def test_default_is_input_feeding_and_old_configs_load(tiny_processors):
    src, tgt = tiny_processors
    model = Seq2Seq(src, tgt, embedding_dim=8, encoder_units=6)
    assert model.input_feeding is True
    config = model.get_config()
    config.pop("input_feeding")  # a config saved before the option existed
    assert Seq2Seq.from_config(config).input_feeding is True


def test_fast_mode_with_lstm_uses_keras_lstm_and_matches_steps(tiny_processors):
    src, tgt = tiny_processors
    model = Seq2Seq(src, tgt, embedding_dim=8, encoder_units=6, attention="bahdanau", rnn="lstm", input_feeding=False)
    assert isinstance(model.decoder.sequence_rnn, keras.layers.LSTM)
    assert not model.decoder.uses_fused_step()
    s_ids, t_in, _ = _batch(src, tgt)
    logits = model((s_ids, t_in))
    enc_out, enc_states, mask = model.encoder(s_ids)
    state, memory = model.decoder.start(enc_out, enc_states, mask)
    assert len(state) == 2  # [h, c]
    for t in range(t_in.shape[1]):
        step_logits, state, _ = model.decoder.step(t_in[:, t], state, memory)
        np.testing.assert_allclose(step_logits, logits[:, t], atol=1e-5)


@pytest.mark.parametrize(
    "attention,function",
    [("bahdanau", "bahdanau_score"), ("luong-general", "luong_score"), ("luong-scaled-dot", "luong_score")],
)
def test_the_default_model_executes_the_score_written_in_attention_py(
    attention, function, tiny_processors, monkeypatch
):
    """The fused step (the default GRU decoder, training and decoding) scores with attention.py's
    function: counted, and a zeroed score turns the weights uniform over the real source tokens."""
    from seq2seq_keras.model import attention as attention_module

    src, tgt = tiny_processors
    model = Seq2Seq(src, tgt, embedding_dim=8, encoder_units=6, attention=attention)
    assert model.decoder.uses_fused_step() and model.decoder.implementation == "auto"
    s_ids, t_in, _ = _batch(src, tgt)
    original, calls = getattr(attention_module, function), []

    def zeroed(*args, **kwargs):
        calls.append(args[0].shape)
        return original(*args, **kwargs) * 0.0

    monkeypatch.setattr(attention_module, function, zeroed)
    _, weights = model.call_with_attention((s_ids, t_in), training=True)  # eager: one call per step
    assert len(calls) == t_in.shape[1] and all(len(shape) == 2 for shape in calls)  # [batch, units]: one step
    mask = np.asarray(s_ids) != 0
    uniform = mask / mask.sum(-1, keepdims=True)
    np.testing.assert_allclose(weights, np.broadcast_to(uniform[:, None], weights.shape), atol=1e-6)
    translation = model.translate(TINY_SOURCE[0], max_length=3)
    src_len = len(translation.source_tokens)
    np.testing.assert_allclose(translation.attention, np.full(translation.attention.shape, 1 / src_len), atol=1e-6)


def test_start_returns_a_named_memory(tiny_processors):
    from seq2seq_keras.model.decoder import DecoderMemory

    src, tgt = tiny_processors
    for attention in ("bahdanau", None):
        model = Seq2Seq(src, tgt, embedding_dim=8, encoder_units=6, attention=attention)
        s_ids, _, _ = _batch(src, tgt)
        _, memory = model.decoder.start(*model.encoder(s_ids))
        assert isinstance(memory, DecoderMemory)
        assert (memory.keys is None) == (attention is None) and (memory.context is None) == (attention is not None)
        assert memory.context_inputs is not None  # the default fused GRU step precomputes H W_c (or c W_c)
        twice = memory.map(lambda x: tf.repeat(x, 2, axis=0))
        assert twice.values.shape[0] == 2 * memory.values.shape[0]
        assert (twice.keys is None) == (attention is None)


@pytest.mark.parametrize("attention", ["bahdanau", "luong-general", None])
def test_the_decoding_step_reads_its_weights_once_per_call_not_per_step(attention, tiny_processors):
    """The lean step: inside a decoding ``tf.while_loop`` no variable is read (the weights come from
    :meth:`Decoder.start` once), beam search's re-tiling keeps them, and the step gives the same
    logits and weights as the step that reads the variables itself (the fallback)."""
    src, tgt = tiny_processors
    model = Seq2Seq(src, tgt, embedding_dim=8, encoder_units=6, attention=attention)
    s_ids, t_in, _ = _batch(src, tgt)

    @tf.function
    def decode(s_ids, t_in):
        state, memory = model.decoder.start(*model.encoder(s_ids))
        assert memory.step_weights is not None and memory.map(lambda x: x).step_weights is memory.step_weights

        def body(i, state, logits):
            step_logits, state, _ = model.decoder.step(t_in[:, i], state, memory)
            return i + 1, state, logits + step_logits

        return tf.while_loop(
            lambda i, *_: i < tf.shape(t_in)[1],
            body,
            (tf.constant(0), state, tf.zeros([tf.shape(t_in)[0], tgt.vocabulary_size])),
        )[2]

    graph = decode.get_concrete_function(s_ids, t_in).graph
    bodies = [
        node.attr["body"].func.name for node in graph.as_graph_def().node if node.op in ("While", "StatelessWhile")
    ]
    library = {f.signature.name: f for f in graph.as_graph_def().library.function}
    (body,) = [name for name in bodies if name in library and "gru" not in name]
    step_ops = [node.op for node in library[body].node_def]
    assert "ReadVariableOp" not in step_ops and "ResourceGather" not in step_ops, sorted(step_ops)
    # One query per step: scores and context by multiply and sum, never oneDNN's batched matmul
    # (80-150 us a call at batch 1 on a CPU); the weights are used as stored, never concatenated per call.
    assert "BatchMatMulV2" not in step_ops, sorted(step_ops)
    nodes = {node.name: node for node in graph.as_graph_def().node}
    concatenated_weights = [
        node.name
        for node in nodes.values()
        if node.op == "ConcatV2" and any(nodes.get(i.split(":")[0], node).op == "ReadVariableOp" for i in node.input)
    ]
    assert not concatenated_weights
    # The same numbers as Keras' cell and attention layer calls (the step of a memory without step weights).
    state, memory = model.decoder.start(*model.encoder(s_ids))
    plain = memory._replace(step_weights=None)
    for i in range(t_in.shape[1]):
        lean_logits, lean_state, lean_weights = model.decoder.step(t_in[:, i], state, memory)
        logits, state, weights = model.decoder.step(t_in[:, i], state, plain)
        np.testing.assert_allclose(lean_logits, logits, rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(lean_weights, weights, rtol=1e-6, atol=1e-7)
        np.testing.assert_allclose(lean_state[0], state[0], rtol=1e-6, atol=1e-7)
