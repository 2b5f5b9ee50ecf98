"""The benchmark code (benchmarks/): FLOP counts, the tutorial re-implementation, and a tiny end-to-end run.

``make bench`` is not part of the test suite; this smoke run of the same entry point
with tiny sizes is, so the benchmark never rots.
"""

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from conftest import TINY_TARGET  # noqa: E402

from benchmarks import measure, tutorial_reference  # noqa: E402
from seq2seq_keras import Seq2Seq  # noqa: E402


def _kernel_parameters(model) -> int:
    """Multiply-adds per token of every dense/recurrent kernel (biases and embeddings excluded)."""
    return int(sum(np.prod(v.shape) for v in model.trainable_variables if "kernel" in v.path))


@pytest.mark.parametrize(
    "attention,input_feeding", [("bahdanau", True), ("luong-general", False), ("luong-dot", True), ("bahdanau", False)]
)
def test_forward_macs_of_one_token_equal_the_models_kernel_sizes(attention, input_feeding, tiny_processors):
    """With one sentence of one source and one target token, every kernel of the real model is used
    exactly once; the attention score and the context add value_dim (+ units for Luong's q.k)."""
    src, tgt = tiny_processors
    model = Seq2Seq(src, tgt, embedding_dim=5, encoder_units=3, attention=attention, input_feeding=input_feeding)
    sizes = measure.OurSizes.of(model)
    extra = sizes.value_dim + (0 if attention == "bahdanau" else sizes.decoder_units)
    assert measure.our_forward_macs(sizes, 1, 1, 1) == _kernel_parameters(model) + extra
    # and it is linear in the batch, and the output projection grows with every target token
    assert measure.our_forward_macs(sizes, 4, 1, 1) == 4 * measure.our_forward_macs(sizes, 1, 1, 1)
    more = measure.our_forward_macs(sizes, 2, 3, 5) - measure.our_forward_macs(sizes, 2, 3, 4)
    assert more > 2 * model.decoder.output_features_dim * sizes.target_vocabulary
    assert measure.training_flops(10) == 60


@pytest.mark.parametrize("layers,heads", [(1, 1), (2, 2)])
def test_transformer_forward_macs_of_one_token_equal_the_models_kernel_sizes(layers, heads, tiny_processors):
    """One source and one target token: every kernel of the real Transformer is used once (W^Q, W^K, W^V, W^O,
    the feed-forward pair, the output projection), plus q.k and the weighted sum per attention (d each)."""
    src, tgt = tiny_processors
    model = Seq2Seq(src, tgt, architecture="transformer", num_layers=layers, num_heads=heads, model_dim=6, ff_dim=10)
    sizes = measure.sizes_of(model)
    assert isinstance(sizes, measure.TransformerSizes)
    attentions = 3 * layers  # encoder self, decoder self, decoder cross
    assert measure.forward_macs(sizes, 1, 1, 1) == _kernel_parameters(model) + attentions * 2 * 6
    assert measure.forward_macs(sizes, 3, 1, 1) == 3 * measure.forward_macs(sizes, 1, 1, 1)
    # Attention scores grow with the square of the length: S=T=2 minus the linear part.
    d, f, V = 6, 10, sizes.target_vocabulary
    linear = 2 * (layers * (4 * d * d + 2 * d * f) + layers * (8 * d * d + 2 * d * f) + d * V)
    assert measure.forward_macs(sizes, 1, 2, 2) - linear == layers * (2 * 4 * d + 2 * 4 * d + 2 * 4 * d)
    assert isinstance(measure.sizes_of(Seq2Seq(src, tgt, embedding_dim=5, encoder_units=3)), measure.OurSizes)


def test_tutorial_forward_macs_count_its_layers():
    sizes = measure.TutorialSizes(embedding_dim=4, units=6, target_vocabulary=50)
    B, S, steps = 2, 3, 5
    encoder = B * S * (4 * 18 + 6 * 18)
    keys = B * S * 36
    per_step = B * (4 * 18 + 6 * 18) + B * 36 + 2 * B * S * 6 + B * 12 * 6 + B * 6 * 50
    assert measure.tutorial_forward_macs(sizes, B, S, steps) == encoder + keys + steps * per_step


def test_tutorial_standardiser_matches_the_tutorials_own_example():
    # The tutorial prints this example for its tf_lower_and_split_punct.
    out = tutorial_reference.tf_lower_and_split_punct(tf.constant("¿Todavía está en casa?"))
    assert out.numpy().decode() == "[START] ¿ todavia esta en casa ? [END]"


def test_tutorial_reference_trains_and_exports(tmp_path):
    model = tutorial_reference.build(TINY_TARGET * 4, TINY_TARGET * 4, embedding_dim=4, units=8, max_vocab_size=40)
    dataset = tutorial_reference.make_dataset(TINY_TARGET * 4, TINY_TARGET * 4, batch_size=4)
    history = model.fit(dataset, epochs=2, verbose=0, shuffle=False)
    assert np.all(np.isfinite(history.history["batch_loss"]))
    assert tutorial_reference.count_tokens(model, ["I am a student."], ["He eats."]) == 7 + 5
    tutorial_reference.export(model, str(tmp_path / "tutorial"), max_length=6)
    # The reference runs in TF Serving's loader (C API LoadSavedModel + Session::Run), as ours does.
    from seq2seq_keras.serving.tf_serving_loader import ServingSession

    with ServingSession(tmp_path / "tutorial") as session:
        out = session.run("serving_default", {"input_text": np.array(TINY_TARGET[:2], dtype=object)})
    assert out["text"].shape == (2,)
    assert out["attention"].shape[0] == 2 and out["attention"].shape[1] <= 6
    loaded = tf.saved_model.load(str(tmp_path / "tutorial"))
    tf2 = loaded.signatures["serving_default"](tf.constant(TINY_TARGET[:2]))
    assert tf2["text"].numpy().tolist() == out["text"].tolist()


@pytest.mark.slow
def test_make_bench_entry_point_end_to_end_with_tiny_sizes(tmp_path):
    """``python -m benchmarks.run`` (what ``make bench`` runs), every part, tiny sizes: 3-second budgets,
    one-step windows, two single sentences per signature, no XLA speed rows (test_xla_rows_compile_in_the_warm_up_only
    covers those), the XLA serving rows of the default model only."""
    report, raw = tmp_path / "BENCH.md", tmp_path / "bench.json"
    command = [
        sys.executable,
        "-m",
        "benchmarks.run",
        "--quick",
        "--data",
        "builtin-ko-en",
        "--limit",
        "300",
        "--embedding-dim",
        "8",
        "--units",
        "16",
        "--vocabulary",
        "120",
        "--batch-size",
        "16",
        "--budget-minutes",
        "0.05",
        "--eval-limit",
        "20",
        "--serving-sentences",
        "2",
        "--serving-xla",
        "feed",
        "--num-layers",
        "1",
        "--num-heads",
        "2",
        "--model-dim",
        "8",
        "--ff-dim",
        "16",
        "--steps",
        "1",
        "--repeats",
        "2",
        "--warmup",
        "1",
        "--xla-warmup",
        "1",
        "--mixed-precision",
        "off",
        "--speed-xla",
        "off",
        "--parts",
        "speed,quality,serving,robustness,levers",
        "--output",
        str(report),
        "--json",
        str(raw),
        "--workdir",
        str(tmp_path / "work"),
    ]
    completed = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    results = json.loads(raw.read_text())
    rows = {r["variant"]["key"]: r for r in results["speed"]["rows"]}
    assert set(rows) == {"tutorial", "feed", "fast", "transformer"}  # --speed-xla off, --mixed-precision off
    assert rows["tutorial"]["ratio"] == 1.0
    for r in rows.values():
        assert r["pairs_per_s"] > 0 and r["flops_per_s"] > 0 and r["windows"] == 2
    assert rows["fast"]["parameters"] < rows["feed"]["parameters"]  # no [s; c] -> vocabulary projection
    from benchmarks.training_speed import default_variant

    for family in ("feed", "fast", "transformer"):  # each quality run used what "auto" picks for its length
        q = results["quality"][family]
        assert q["planned_steps"] == int(results["settings"]["budget_s"] * rows[family]["steps_per_s"])
        assert q["variant"]["key"] == default_variant(family, q["planned_steps"])[0].key
        assert q["options"].startswith("options: precision=")
    assert set(results["quality"]) == {"tutorial", "feed", "fast", "transformer"}
    assert results["quality"]["transformer"]["variant"]["architecture"] == "transformer"
    for q in results["quality"].values():
        assert q["steps"] > 0 and 0 <= q["bleu"] <= 100 and 0 <= q["chrf"] <= 100
        assert q["train_peak_rss_mb"] > 100 and q["test_sentences"] == min(20, results["speed"]["test_pairs"])
        curve = q["curve"]  # the snapshots at fractions of the budget and at its end
        assert 1 <= len(curve) <= 12 and curve[-1]["train_seconds"] >= results["settings"]["budget_s"]
        assert curve[-1]["steps"] == q["steps"]
        assert all(0 <= p["bleu"] <= 100 for p in curve)
        assert [p["train_seconds"] for p in curve] == sorted(p["train_seconds"] for p in curve)
    levers = results["levers"]  # the default feed run with one training lever each, as TrainConfig sets it
    assert set(levers) == {"warmup", "smoothing", "no-token-cap"}
    feed_key = results["quality"]["feed"]["variant"]["key"]
    for name, q in levers.items():
        assert q["lever"] == name and q["variant"]["key"] == f"{feed_key}+{name}" and "savedmodel" not in q
        assert q["steps"] > 0 and 0 <= q["bleu"] <= 100 and q["curve"]
    lr = results["settings"]["size"]["learning_rate"]
    assert levers["warmup"]["variant"]["peak_lr"] == 2 * lr and levers["warmup"]["variant"]["warmup_steps"] == 400
    assert levers["smoothing"]["variant"]["label_smoothing"] == 0.1
    assert levers["no-token-cap"]["variant"]["batch_tokens"] is None
    assert results["quality"]["feed"]["variant"]["batch_tokens"] == 1024  # seq2seq-keras train's default cap
    assert not list((tmp_path / "work").glob("curve-*/*.npz"))  # scored, then deleted
    parity = results["parity"]
    assert set(parity["feed"]) == {"translate_with_attention", "serving_default", "beam_search"}
    assert set(parity["feed-xla"]) == {"translate_with_attention_xla", "serving_default_xla"}
    for sigs in parity.values():
        for p in sigs.values():
            assert p["problems"] == [] and p["sentences"] == min(64, results["speed"]["test_pairs"]) + min(
                8, results["speed"]["test_pairs"]
            )
    assert results["serving"]["tutorial"]["serving_default"]["latency_ms_median"] > 0
    assert results["serving"]["tutorial"]["serving_default"]["tf2"]["latency_ms_median"] > 0
    assert set(results["serving"]["feed"]) == {
        "translate_with_attention",
        "serving_default",
        "beam_search",
        "translate_with_attention_xla",
        "serving_default_xla",
    }
    assert results["serving"]["feed"]["translate_with_attention_xla"]["xla_compilations_timed"] == 0
    assert set(results["serving_breakdown"]) == {"tutorial", "feed", "fast", "transformer"}
    assert all(v > 100 for v in results["serving_rss"].values()) and "feed-xla" in results["serving_rss_details"]
    assert "fast-xla" not in results["serving_rss_details"] and "fast-xla" not in parity  # --serving-xla feed
    text = report.read_text()
    robustness = results["robustness"]["rows"]
    assert "ours (feed), greedy" in robustness and "ours (feed), beam 4" in robustness
    assert any(label.startswith("tutorial") for label in robustness)
    assert (
        robustness["ours (feed), greedy"]["long"]["sentences"]
        == results["robustness"]["set"]["longest"] + results["robustness"]["set"]["concatenation"]
        > 0
    )
    for heading in (
        "## Run",
        "## Targets",
        "## Training speed",
        "## Quality",
        "## Serving",
        "## Memory",
        "## Robustness",
        "## Where the time goes",
        "## Serving memory",
        "### BLEU against training time",
        "## Training levers",
    ):
        assert heading in text
    assert (tmp_path / "BENCH_bleu_vs_time.png").stat().st_size > 5000 and "](BENCH_bleu_vs_time.png)" in text
    assert "builtin-ko-en" in text and "**1.00x**" in text
    assert "| `transformer` |" in text and "| ours, Transformer |" in text
    assert "| `smoothing` | label smoothing 0.1 |" in text


# The ladder's "fused step without precomputation" rung (benchmarks/training_speed.py), held to the
# same references as the shipped implementations (moved here from test_decoder.py with the rung).
@pytest.mark.parametrize("attention", ["bahdanau", "luong-dot", "luong-general", "luong-scaled-dot", None])
def test_no_precompute_rung_agrees_with_keras_layers_on_logits_weights_and_gradients(attention, tiny_processors):
    import tensorflow as tf
    from test_decoder import _batch

    from benchmarks.training_speed import NoPrecomputeSeq2Seq

    src, tgt = tiny_processors
    s_ids, t_in, _ = _batch(src, tgt)
    results = []
    for cls in (Seq2Seq, NoPrecomputeSeq2Seq):
        tf.keras.utils.set_random_seed(0)
        model = cls(src, tgt, embedding_dim=8, encoder_units=6, attention=attention, implementation="layers")
        with tf.GradientTape() as tape:
            logits, weights = model.call_with_attention((s_ids, t_in))
            loss = tf.reduce_sum(logits * tf.random.stateless_normal(logits.shape, [7, 8]))
        results.append(
            (logits, weights, [tf.convert_to_tensor(g) for g in tape.gradient(loss, model.trainable_variables)])
        )
    ref, got = results
    np.testing.assert_allclose(got[0], ref[0], atol=1e-5)
    np.testing.assert_allclose(got[1], ref[1], atol=1e-6)
    for g, r in zip(got[2], ref[2]):
        np.testing.assert_allclose(g, r, atol=1e-4)


@pytest.mark.parametrize("attention", ["bahdanau", "luong-general", None])
def test_no_precompute_rung_equals_bahdanau_equations_computed_with_numpy(attention):
    """The rung, teacher forcing and step by step, against test_decoder's float64 numpy reference."""
    import tensorflow as tf
    from test_decoder import random_decoder_cases

    from benchmarks.training_speed import no_precompute_decode, no_precompute_step
    from seq2seq_keras import Decoder

    previous = tf.config.experimental.tensor_float_32_execution_enabled()
    tf.config.experimental.enable_tensor_float_32_execution(False)
    try:
        dec = Decoder(13, 4, 6, attention=attention, attention_units=5, implementation="layers")
        for target, enc_out, enc_states, mask, ref_logits, ref_weights in random_decoder_cases(dec):
            steps = target.shape[1]
            logits, weights = no_precompute_decode(dec, target, enc_out, enc_states, mask)
            np.testing.assert_allclose(logits, ref_logits, rtol=1e-5, atol=1e-5)
            np.testing.assert_allclose(weights, ref_weights, rtol=1e-5, atol=1e-6)
            state, memory = dec.start(enc_out, enc_states, mask)
            for i in range(steps):
                features, state, step_weights = no_precompute_step(dec, dec.embedding(target[:, i]), state, memory)
                np.testing.assert_allclose(dec.logits(features), ref_logits[:, i], rtol=1e-5, atol=1e-5)
                np.testing.assert_allclose(step_weights, ref_weights[:, i], rtol=1e-5, atol=1e-6)
    finally:
        tf.config.experimental.enable_tensor_float_32_execution(previous)


# =========================================================================== serving part (benchmarks/serving*.py)
# Kept in one block: the serving part's own cases (XLA rows, breakdown, report sections).
def _tiny_exports(tmp_path_factory):
    """Our tiny word model's SavedModel (test_export's) and a tiny tutorial reference's."""
    from test_export import exported_dir

    ours = exported_dir(tmp_path_factory, "word")
    tutorial = tmp_path_factory.getbasetemp() / "bench_tiny_tutorial"
    if not (tutorial / "saved_model.pb").exists():
        model = tutorial_reference.build(TINY_TARGET * 4, TINY_TARGET * 4, embedding_dim=4, units=8, max_vocab_size=40)
        model.fit(
            tutorial_reference.make_dataset(TINY_TARGET * 4, TINY_TARGET * 4, batch_size=4),
            epochs=1,
            verbose=0,
            shuffle=False,
        )
        tutorial_reference.export(model, str(tutorial), max_length=6)
    return ours, tutorial


def test_breakdown_counts_decode_steps_and_shares_out_the_measured_graph_time(tmp_path_factory):
    """Steps counted from the traced loop equal the decoded lengths the signatures return; the stage
    times add up to latency - call overhead; every stage of ours ran; the report renders the table."""
    from benchmarks import serving_breakdown, serving_report
    from seq2seq_keras.serving.tf_serving_loader import ServingSession, tf_text_op_libraries

    ours, tutorial = _tiny_exports(tmp_path_factory)
    sentence = [TINY_TARGET[0]]
    results = {}
    for name, path, signature in (
        ("feed", ours, "translate_with_attention"),
        ("tutorial", tutorial, "serving_default"),
    ):
        b = serving_breakdown.breakdown(str(path), signature, sentence, batch_sizes=(1, 3), calls=3, traced=2)
        with ServingSession(path, op_libraries=tf_text_op_libraries()) as s:
            (input_name,) = s.inputs(signature)
            out = s.run(signature, {input_name: np.array(sentence, dtype=object)})
        # ours: one loop step per generated token ([END] included); the tutorial: one attention row per step
        assert b[1]["steps"] == (out["target_length"][0] if name == "feed" else out["attention"].shape[1])
        for batch in (1, 3):
            r = b[batch]
            assert sum(r["stages_ms"].values()) == pytest.approx(r["graph_ms"])
            assert r["graph_ms"] == pytest.approx(max(r["latency_ms"] - r["overhead_ms"], 0))
            assert r["ops_per_step"] > r["compute_ops_per_step"] > 0
        assert all(b[1]["executed_ops"][stage] > 0 for stage in ("text processing", "encoder", "decode loop"))
        assert b["savedmodel_loop_body_ops"] > 0 and b["graph"]["nodes"] > 0
        results[name] = json.loads(json.dumps(b))  # as the bench stores it (batch keys become strings)
    text = "\n".join(serving_report.time_breakdown(results))
    assert "## Where the time goes" in text and f"x {results['feed']['1']['steps']:g}" in text


@pytest.fixture(scope="module")
def bench_echo(tmp_path_factory):
    """test_serving_loader's echo SavedModel (strings and numbers) in a :class:`BenchSession`."""
    from test_tf_serving_loader import save_echo

    from benchmarks.serving_breakdown import BenchSession

    with BenchSession(save_echo(tmp_path_factory.mktemp("bench_echo") / "1")) as session:
        yield session


def test_a_traced_run_returns_the_same_outputs_with_per_op_step_stats_and_the_graphs_run(bench_echo):
    x = {"x": np.array([[1, 2], [3, -5]], dtype=np.int32)}
    out, metadata = bench_echo.run_traced("numbers", x, partition_graphs=True)
    assert {k: v.tolist() for k, v in out.items()} == {k: v.tolist() for k, v in bench_echo.run("numbers", x).items()}
    nodes = [n for d in metadata.step_stats.dev_stats for n in d.node_stats]
    ops = {n.timeline_label.split(" = ")[1].split("(")[0] for n in nodes if " = " in n.timeline_label}
    assert {"Sum", "Cast"} <= ops  # the signature's own ops ran, and were traced
    assert all(n.op_end_rel_micros >= n.op_start_rel_micros >= 0 for n in nodes)
    assert metadata.partition_graphs and any(n.op == "Sum" for g in metadata.partition_graphs for n in g.node)
    _, untraced_graphs = bench_echo.run_traced("numbers", x)
    assert not untraced_graphs.partition_graphs


def test_a_call_that_computes_nothing_and_a_session_config(bench_echo):
    from tensorflow.core.protobuf import config_pb2

    from benchmarks.serving_breakdown import BenchSession
    from seq2seq_keras.serving.tf_serving_loader import ServingLoaderError

    texts = {"text": np.array(["a", "b"], dtype=object)}
    consts = [n for n in bench_echo.meta_graph.graph_def.node if n.op == "Const"]
    const = min(consts, key=lambda n: n.attr["value"].tensor.ByteSize())
    assert (
        bench_echo.run_nothing("serving_default", texts).tolist()
        == tf.make_ndarray(const.attr["value"].tensor).tolist()
    )
    with pytest.raises(ServingLoaderError, match="takes inputs"):
        bench_echo.run_nothing("serving_default", {"words": texts["text"]})
    config = config_pb2.ConfigProto(inter_op_parallelism_threads=1)
    config.graph_options.rewrite_options.disable_meta_optimizer = True
    with BenchSession(bench_echo.path, config=config) as sequential:
        assert sequential.run("serving_default", texts)["same"].tolist() == [b"a", b"b"]


def test_the_call_that_computes_nothing_fetches_the_smallest_constant_not_a_vocabulary():
    # The tutorial's graph starts with its 4,998-word vocabularies as string constants: fetching the
    # first constant converted 5,000 strings per call and read as 3.7 ms of "call overhead".
    from benchmarks.serving_breakdown import _smallest_constant

    graph = tf.Graph()
    with graph.as_default():
        tf.constant([f"word{i}" for i in range(5000)], name="vocabulary")
        tf.constant(np.zeros(64, np.float32), name="bias")
        tf.constant(1, name="one")
    assert _smallest_constant(graph.as_graph_def()) == "one"
    assert _smallest_constant(tf.Graph().as_graph_def()) is None


def test_bench_plan_warms_chosen_keys_on_every_timed_input_first():
    from benchmarks.serving import _marked, bench_plan
    from seq2seq_keras.serving.tf_serving_loader import time_plan, timing_plan

    sent = {"xla": [], "plain": []}
    phases = []

    def recorder(key):
        return lambda sentences: sent[key].append((phases[-1][0], tuple(sentences)))

    plan = timing_plan(sent, [f"s{i}" for i in range(7)], single=5, batches=3, batch_size=4, warmup=2)
    figures = time_plan(
        {k: recorder(k) for k in sent},
        _marked(bench_plan(plan, warm_every_input={"xla"}), lambda phase, key: phases.append((phase, key))),
    )
    for key in sent:
        warm = [s for phase, s in sent[key] if phase == "warmup"]
        timed = [s for phase, s in sent[key] if phase == "timed"]
        assert len(timed) == 5 + 3 and figures[key]["warmup_calls"] == len(warm)
        assert figures[key]["first_call_ms"] >= 0 and figures[key]["calls"] == 5
        if key == "xla":
            assert set(timed) <= set(warm) and len(warm) == 8
        else:  # the usual warm-up: 2 sentences and one batch
            assert len(warm) == 3 and not set(timed) <= set(warm)
    assert [p for p, _ in phases] == sorted((p for p, _ in phases), key=("warmup", "timed").index)
    # beam search's rows: every 2nd single sentence, no batches, the usual warm-up
    beams = bench_plan(plan, single_only={"xla"}, every={"xla": 2})
    assert [r for p, k, r in beams if k == "xla" and p == "single"] == [["s0"], ["s2"], ["s4"]]
    assert not [r for p, k, r in beams if k == "xla" and p == "batch"]
    assert [c for c in beams if c[1] == "plain"] == [c for c in plan if c[1] == "plain"]
    assert [c for c in beams if c[1] == "xla" and c[0] == "warmup"] == [
        c for c in plan if c[1] == "xla" and c[0] == "warmup"
    ]


_XLA_ROWS_PROGRAM = """
import json, sys
from benchmarks import serving
serving.compile_log_environment()  # before TensorFlow starts, as the bench's serving child does
models = json.loads(sys.argv[1])
served = serving.export_for_serving(models, sys.argv[2])
results = serving.serving_speed(served, json.loads(sys.argv[3]), single=4, batches=2, batch_size=4, warmup=1)
print(json.dumps({"served": served, "results": results}))
"""


@pytest.mark.slow
def test_xla_rows_compile_in_the_warm_up_only_and_rss_runs_per_signature(tmp_path_factory, tmp_path):
    """make bench's XLA rows: a second export with xla=True, its two signatures reported under the
    model's name, every compilation counted (from TensorFlow's log) in the warm-up and none in timed
    calls. In a fresh process, as in the bench: TensorFlow reads its log settings once."""
    from test_export import exported_dir
    from test_pipeline import tiny_run_dir

    from benchmarks import serving, serving_report

    models = {
        "feed": {
            "savedmodel": str(exported_dir(tmp_path_factory, "word")),
            "kind": "seq2seq_keras",
            "keras_model": str(tiny_run_dir(tmp_path_factory, "word")),
        }
    }
    sentences = list(TINY_TARGET) + [" ".join(TINY_TARGET[:3])]  # two source-length buckets
    completed = subprocess.run(
        [sys.executable, "-c", _XLA_ROWS_PROGRAM, json.dumps(models), str(tmp_path), json.dumps(sentences)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    out = json.loads(completed.stdout.strip().splitlines()[-1])
    assert out["served"]["feed-xla"]["kind"] == "seq2seq_keras_xla"
    rows = out["results"]["feed"]
    assert {
        "translate_with_attention",
        "serving_default",
        "beam_search",
        "translate_with_attention_xla",
        "serving_default_xla",
    } == set(rows)
    first = rows["translate_with_attention_xla"]
    # batch buckets 1 and 4 (x source-length buckets): at least two compilations, all in the warm-up
    assert first["xla_compilations_warmup"] >= 2 and first["xla_compilations_timed"] == 0
    assert rows["serving_default_xla"]["xla_compilations_timed"] == 0
    assert first["tf2"]["xla_compilations_timed"] == 0
    assert first["first_call_ms"] > first["latency_ms_median"]
    assert "XLA compilations" in "\n".join(serving_report.first_calls(out["results"]))
    assert serving.rss_specs(out["served"])["feed-xla"]["signature"] == "translate_with_attention_xla"


# =========================================================================== quality curve and targets
def test_time_to_reach_interpolates_between_snapshots_from_zero():
    from benchmarks.curve import time_to_reach

    curve = [
        {"train_seconds": 60, "bleu": 10.0},
        {"train_seconds": 120, "bleu": 30.0},
        {"train_seconds": 180, "bleu": 25.0},
    ]
    assert time_to_reach(curve, 20.0) == pytest.approx(90.0)  # halfway from 10 (60 s) to 30 (120 s)
    assert time_to_reach(curve, 5.0) == pytest.approx(30.0)  # from the start (0 s, BLEU 0) to 10 at 60 s
    assert time_to_reach(curve, 30.0) == pytest.approx(120.0)
    assert time_to_reach(curve, 31.0) is None  # never reached; the later drop to 25 does not count either
    assert time_to_reach([], 1.0) is None and time_to_reach(curve, 0.0) == 0.0


def test_time_budget_snapshots_at_fractions_with_the_clock_paused():
    import time as time_module

    from benchmarks.quality import TimeBudget

    taken = []

    def snapshot(index):
        taken.append(index)
        time_module.sleep(0.25)  # would use up the whole budget if it were counted

    model = tf.keras.Sequential([tf.keras.layers.Input((2,)), tf.keras.layers.Dense(1)])
    model.compile("sgd", "mse")

    class Slow(tf.keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            time_module.sleep(0.02)

    budget = TimeBudget(0.5, label="t", snapshot=snapshot, snapshot_at=[0.1, 0.3, 0.9])  # 0.9 > budget: dropped
    data = tf.data.Dataset.from_tensors((tf.zeros([1, 2]), tf.zeros([1, 1]))).repeat()
    start = time_module.perf_counter()
    model.fit(data, epochs=1, steps_per_epoch=10_000, callbacks=[Slow(), budget], verbose=0, shuffle=False)
    wall = time_module.perf_counter() - start
    assert taken == [0, 1, 2]  # 0.1 s, 0.3 s and the end of the budget
    seconds = [s["train_seconds"] for s in budget.snapshots]
    assert seconds[0] >= 0.1 and seconds[1] >= 0.3 and seconds[2] >= 0.5 and seconds == sorted(seconds)
    assert budget.paused >= 0.75 and wall >= 0.5 + 0.75  # three pauses, not counted as training
    assert budget.elapsed < 0.5 + 0.2 and budget.stopped
    assert [s["steps"] for s in budget.snapshots] == sorted(s["steps"] for s in budget.snapshots)


def _synthetic_results():
    """Hand-made results in the shape benchmarks.run produces, for the targets table."""

    def row(key, family, ratio, efficiency=0.3, pairs=None):
        return {
            "variant": {"key": key, "family": family, "stepwise": None},
            "ratio": ratio,
            "pairs_per_s": pairs or 100 * ratio,
            "efficiency": efficiency,
        }

    def sig(median, p90, batch):
        return {"latency_ms_median": median, "latency_ms_p90": p90, "batch_sentences_per_s": batch}

    curve = lambda *pts: [{"train_seconds": t, "bleu": b} for t, b in pts]  # noqa: E731
    return {
        "settings": {"budget_s": 900.0},
        "speed": {
            "rows": [
                row("tutorial", "tutorial", 1.0),
                row("feed", "feed", 2.0),
                row("feed-xla", "feed", 3.1),
                row("fast", "fast", 3.0),
                row("fast-xla", "fast", 3.9, efficiency=0.55),
            ]
        },
        "quality": {
            "tutorial": {
                "bleu": 30.0,
                "chrf": 50.0,
                "train_peak_rss_mb": 1000.0,
                "variant": {"key": "tutorial"},
                "curve": curve((300, 20.0), (900, 28.0)),
            },
            "feed": {
                "bleu": 39.0,
                "chrf": 60.0,
                "train_peak_rss_mb": 900.0,
                "variant": {"key": "feed-xla"},
                "options": "options: precision=float32 (x), jit_compile=on (y)",
                "curve": curve((120, 14.0), (240, 35.0)),
            },
            "fast": {"bleu": 35.0, "chrf": 55.0, "train_peak_rss_mb": 1200.0, "variant": {"key": "fast-xla"}},
        },
        "serving": {
            "tutorial": {"serving_default": dict(sig(10.0, 12.0, 1000.0), first_call_ms=200.0)},
            "feed": {
                "serving_default": dict(sig(4.5, 6.5, 2100.0), first_call_ms=5.0),
                "serving_default_xla": sig(3.0, 3.9, 3100.0),
                "translate_with_attention": sig(8.0, 11.0, 1200.0),
                "beam_search": sig(12.0, 15.0, None),
            },
        },
        "serving_rss_details": {
            "tutorial": {"serving_peak_rss_mb": 800.0},
            "feed": {"serving_peak_rss_mb": 870.0, "signature": "translate_with_attention"},
            "feed-xla": {"serving_peak_rss_mb": 900.0, "signature": "translate_with_attention_xla"},
        },
        "parity": {
            "feed": {"serving_default": {"sentences": 72, "max_attention_difference": 0.0, "problems": []}},
            "feed-xla": {
                "translate_with_attention_xla": {"sentences": 72, "max_attention_difference": 2e-7, "problems": []}
            },
        },
    }


def test_targets_table_judges_each_issue_target_from_the_measurements():
    from benchmarks.report import targets

    got = {t["target"]: t for t in targets(_synthetic_results())}

    def status(prefix):
        return next(t["met"] for name, t in got.items() if name.startswith(prefix))

    assert status("default options (feed)") is True  # feed-xla chosen, the fastest feed row
    assert status("training pairs/s, ours, input feeding") is True  # 3.1x >= 3x
    assert status("training pairs/s, ours, fast mode") is False  # 3.9x < 4x
    assert status("model FLOP/s") is True  # fast-xla 55%
    # the reference's end BLEU 28 is reached between 14 @ 2 min and 35 @ 4 min: 2 + 2 * 14/21 = 3.33 min <= 5
    ttq = next(t for name, t in got.items() if name.startswith("time to the reference"))
    assert ttq["met"] is True and "3.3 min" in ttq["measured"]
    assert status("test BLEU after the same 15 minutes") is True  # 39 - 30 = 9 >= 8
    assert status("training peak RSS, ours, input feeding") is True and status("training peak RSS, ours, fast") is False
    assert status("serving latency, 1 sentence, feed, plain") is False  # median 0.45, but p90 6.5/12 = 0.54 > 0.5
    assert status("serving sentences/s at batch 64, feed, plain") is True  # 2.1x >= 2x
    assert status("serving latency, 1 sentence, feed, fastest option (`serving_default_xla`)") is True  # 0.30, 0.325
    assert status("serving sentences/s at batch 64, feed, fastest option") is True  # 3.1x >= 3x
    assert status("first call after load") is True  # 5 ms <= 200
    assert status("beam 4 latency") is True  # 12 / 4.5
    assert status("serving peak RSS, feed (") is True and status("serving peak RSS, feed-xla") is False  # 1.125x
    assert status("outputs through TF Serving's loader") is True
    from benchmarks.report import render

    partial = {k: v for k, v in _synthetic_results().items() if k not in ("speed", "serving")}
    partial["quality"] = {k: v for k, v in partial["quality"].items() if k != "fast"}
    for q in partial["quality"].values():  # the quality table's other columns
        q.update(
            steps=100,
            epochs=1,
            train_seconds=900.0,
            final_loss=1.0,
            test_sentences=10,
            examples=[],
            bleu_signature="b",
            chrf_signature="c",
        )
    text = render(partial)  # a partial run (no speed or serving parts) still renders, with what it has
    assert "| time to the reference's end-of-budget validation BLEU" in text and "| n/a |" in text
    assert "### BLEU against training time" in text
    broken = _synthetic_results()
    broken["parity"]["feed"]["serving_default"]["problems"] = ["1 of 64 texts differ"]
    assert next(t["met"] for t in targets(broken) if t["target"].startswith("outputs through")) is False


def test_quality_curve_section_and_plot(tmp_path):
    from benchmarks.curve import write_plot
    from benchmarks.report import curve_section

    quality = _synthetic_results()["quality"]
    path = write_plot(quality, tmp_path / "curve.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 5000
    text = "\n".join(curve_section(quality, "curve.png"))
    assert "![validation BLEU against training minutes](curve.png)" in text
    assert "| 2 | 28.0 @ 15.0 min | 35.0 @ 4.0 min |" in text
    assert "ours, input feeding (Bahdanau): 3.3 min" in text
    assert write_plot({"tutorial": {"bleu": 1.0}}, tmp_path / "none.png") is None


def test_default_variant_follows_the_packages_auto_rules():
    from benchmarks.training_speed import default_variant
    from seq2seq_keras.training.hardware import XLA_MIN_STEPS, Machine

    plain_cpu, amx_cpu = Machine(frozenset({"avx2"})), Machine(frozenset({"avx2", "amx_bf16"}))
    assert default_variant("feed", XLA_MIN_STEPS - 1, plain_cpu)[0].key == "feed"
    assert default_variant("feed", XLA_MIN_STEPS, plain_cpu)[0].key == "feed-xla"
    assert default_variant("fast", 10 * XLA_MIN_STEPS, amx_cpu)[0].key == "fast-bf16"
    variant, options = default_variant("transformer", XLA_MIN_STEPS, plain_cpu)  # no ladder row: derived
    assert (variant.key, variant.architecture, variant.jit_compile, variant.pad_multiple) == (
        "transformer-xla",
        "transformer",
        True,
        4,
    ) and options.jit_compile


def test_a_load_level_sends_every_request_once_from_clients_running_at_the_same_time():
    from benchmarks.serving_load import _percentile, run_level

    sent, running, most = [], [0], [0]
    lock = threading.Lock()

    def call(sentences):
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
            sent.extend(sentences)
        time.sleep(0.002)
        with lock:
            running[0] -= 1
        if sentences == ["s7"]:
            raise ValueError("bad request")

    out = run_level(call, [f"s{i}" for i in range(10)], clients=4, requests=20)
    assert sorted(sent) == sorted(f"s{i % 10}" for i in range(20))
    assert most[0] == 4  # the four clients overlapped
    assert out["errors"] == 2 and out["error"] == "ValueError: bad request"  # s7 twice, not timed
    assert out["clients"] == 4 and out["requests"] == 20 and out["sentences_per_s"] > 0
    assert out["latency_ms_p99"] >= out["latency_ms_p50"] >= 2.0
    assert _percentile(list(range(1, 101)), 99) == 99 and _percentile([5.0], 99) == 5.0


def test_the_load_test_runs_a_real_savedmodel_through_tf_servings_loader_and_is_reported(tmp_path):
    from test_tf_serving_loader import save_echo

    from benchmarks import serving_report
    from benchmarks.serving_load import batching_headroom, load_test

    path = str(save_echo(tmp_path / "echo" / "1"))
    models = {"tutorial": {"savedmodel": path}, "feed": {"savedmodel": path}}
    load = load_test(models, ["a", "bb", "나는 학생이다"], levels=(1, 4), requests=12)
    for name in models:
        levels = load[name]["levels"]
        assert [level["clients"] for level in levels] == [1, 4] and all(level["errors"] == 0 for level in levels)
        assert all(level["sentences_per_s"] > 0 for level in levels)
    serving = {
        "feed": {"serving_default": {"batch_sentences_per_s": 10 * load["feed"]["levels"][1]["sentences_per_s"]}}
    }
    headroom = batching_headroom(load, serving)
    assert headroom["tutorial"]["gain"] is None
    assert headroom["feed"]["gain"] == pytest.approx(
        10
        * load["feed"]["levels"][1]["sentences_per_s"]
        / max(level["sentences_per_s"] for level in load["feed"]["levels"])
    )
    text = "\n".join(serving_report.load_section(load, serving))
    assert "## Serving under load" in text and "| ours, input feeding (Bahdanau) | 4 |" in text
    assert "in batches of 64" in text


def test_every_report_names_the_cpu_and_its_bf16_flags_even_without_the_speed_part(monkeypatch):
    from benchmarks import measure
    from benchmarks.report import cpu_line, run_section

    monkeypatch.setattr(measure, "cpu_flags", lambda: {"avx512f", "avx512_bf16"})
    monkeypatch.setattr(measure, "cpu_model", lambda: "AMD EPYC")
    cpu = measure.cpu_description()
    assert cpu["bf16_flags"] == {"avx512_bf16": True, "amx_bf16": False, "amx_tile": False}
    line = cpu_line(cpu)
    assert line.startswith("AMD EPYC, ") and "avx512_bf16 yes, amx_bf16 no, amx_tile no" in line
    partial = {k: v for k, v in _synthetic_results().items() if k != "speed"}
    assert f"| CPU | {line} |" in "\n".join(run_section({**partial, "cpu": cpu}))
