"""plotting.py: heatmap orientation, labels and data; Hangul glyphs; grids; the BLEU-by-length plot."""

import warnings

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.image import imread

from seq2seq_keras.plotting import (
    UNKNOWN_COLOR,
    attention_view,
    hangul_font_path,
    plot_attention,
    plot_attention_grid,
    plot_attention_heads,
    plot_bleu_by_length,
    plot_self_attention,
    register_fonts,
)
from seq2seq_keras.translation import Translation

SOURCE = ["나는", "학생이다", "."]
TARGET = ["i", "am", "a", "student", "[END]"]


def _known_matrix(t=None, s=None):
    t, s = t or len(TARGET), s or len(SOURCE)
    # Distinct values, rows sum to 1: row i differs from row j and column order matters.
    m = np.arange(1, t * s + 1, dtype=np.float32).reshape(t, s) ** 2
    return m / m.sum(axis=1, keepdims=True)


def _translation(attention=None):
    return Translation(
        source="나는 학생이다.",
        text="i am a student",
        source_tokens=list(SOURCE),
        target_tokens=list(TARGET),
        attention=_known_matrix() if attention is None else attention,
        log_prob=-1.5,
    )


def _render(fig) -> np.ndarray:
    """Draw ``fig`` with the Agg renderer (a bare Figure's canvas draws nothing); RGB in [0, 1]."""
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].astype(float) / 255


def _labels(ticklabels):
    return [t.get_text() for t in ticklabels]


def test_heatmap_of_known_matrix_has_data_labels_and_orientation():
    matrix = _known_matrix()
    fig = plot_attention(_translation(matrix))
    heatmap, colorbar = fig.axes
    (image,) = heatmap.get_images()
    np.testing.assert_array_equal(np.asarray(image.get_array()), matrix)  # [tgt_len, src_len], not transposed
    assert _labels(heatmap.get_xticklabels()) == SOURCE
    assert _labels(heatmap.get_yticklabels()) == TARGET
    assert list(heatmap.get_xticks()) == [0, 1, 2] and list(heatmap.get_yticks()) == [0, 1, 2, 3, 4]
    assert heatmap.yaxis_inverted()  # row 0 (first output token) on top
    assert heatmap.get_xlabel() == "source tokens" and heatmap.get_ylabel() == "output tokens"
    assert colorbar.get_ylabel() == "attention weight"
    assert image.get_clim() == (0.0, 1.0)


def test_rendered_pixels_put_first_output_token_on_top_and_first_source_token_left():
    # One hot cell: first output token x last source token. In the rendered image it
    # must be the top-right cell, coloured as the colour map's maximum.
    matrix = np.zeros((len(TARGET), len(SOURCE)), np.float32)
    matrix[0, -1] = 1.0
    fig = plot_attention(_translation(matrix), colorbar=False, title="")
    ax = fig.axes[0]
    pixels = _render(fig)
    height = pixels.shape[0]

    def colour_at(row, col):
        x, y = ax.transData.transform((col, row))
        return pixels[int(round(height - y)), int(round(x))]

    cmap = matplotlib.colormaps["viridis"]
    hot, cold = np.array(cmap(1.0)[:3]), np.array(cmap(0.0)[:3])
    np.testing.assert_allclose(colour_at(0, len(SOURCE) - 1), hot, atol=0.02)
    np.testing.assert_allclose(colour_at(len(TARGET) - 1, 0), cold, atol=0.02)
    np.testing.assert_allclose(colour_at(0, 0), cold, atol=0.02)
    # Row 0 is drawn above the last row, column 0 left of the last column (display y grows upwards).
    top = ax.transData.transform((0, 0))
    bottom_right = ax.transData.transform((len(SOURCE) - 1, len(TARGET) - 1))
    assert top[1] > bottom_right[1] and top[0] < bottom_right[0]


def test_no_missing_glyph_for_hangul():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fig = plot_attention(_translation())
        _render(fig)
    missing = [str(w.message) for w in caught if "missing from font" in str(w.message)]
    assert missing == []
    assert {t.get_fontname() for t in fig.axes[0].get_xticklabels()} == {"NanumGothic"}


def test_missing_glyph_check_catches_a_font_without_hangul():
    # The check above can fail: the same text in DejaVu Sans alone is reported as missing glyphs.
    from matplotlib.figure import Figure

    fig = Figure()
    fig.text(0.5, 0.5, "나는 학생이다", fontfamily="DejaVu Sans")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _render(fig)
    assert any("missing from font" in str(w.message) for w in caught)


def test_font_ships_with_the_package_and_registering_is_idempotent():
    from matplotlib import font_manager

    path = hangul_font_path()
    assert path.name == "NanumGothic.ttf" and path.stat().st_size > 100_000
    register_fonts()
    count = sum(f.fname == str(path) for f in font_manager.fontManager.ttflist)
    register_fonts()
    assert sum(f.fname == str(path) for f in font_manager.fontManager.ttflist) == count >= 1
    # Global settings are left alone (unlike `import koreanize_matplotlib`).
    assert matplotlib.rcParams["font.family"] != ["NanumGothic"]


def test_save_writes_a_png_of_the_figure_size(tmp_path):
    out = tmp_path / "deep" / "attention.png"
    fig = plot_attention(_translation(), save=out)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = fig.get_size_inches() * 120
    image = imread(out)
    assert image.shape[:2] == (round(height), round(width))


def test_draws_into_a_given_axes():
    from matplotlib.figure import Figure

    fig = Figure()
    ax = fig.add_subplot(1, 2, 2)
    assert plot_attention(_translation(), ax=ax, colorbar=False) is fig
    assert len(ax.get_images()) == 1 and len(fig.axes) == 1


def test_rest_prediction_dict_with_padding_and_lengths():
    # One row of a TF Serving REST response: padded, strings as UTF-8 or {"b64": ...}.
    import base64

    matrix = _known_matrix()
    padded = np.zeros((7, 5), np.float32)
    padded[:5, :3] = matrix
    row = {
        "translation": "i am a student",
        "source_tokens": [{"b64": base64.b64encode("나는".encode()).decode()}, "학생이다", ".", "", ""],
        "source_length": 3,
        "target_tokens": TARGET + ["", ""],
        "target_length": 5,
        "attention": padded.tolist(),
    }
    source_tokens, target_tokens, attention, _ = attention_view(row)
    assert source_tokens == SOURCE and target_tokens == TARGET
    np.testing.assert_array_equal(attention, matrix)
    fig = plot_attention(row)
    np.testing.assert_array_equal(np.asarray(fig.axes[0].get_images()[0].get_array()), matrix)


def test_clear_errors_for_no_attention_and_bad_shapes():
    with pytest.raises(ValueError, match="no attention"):
        plot_attention(Translation("a", "b", ["a"], ["b"], None, 0.0))
    with pytest.raises(ValueError, match=r"\[len\(target_tokens\), len\(source_tokens\)\]"):
        plot_attention(_translation(np.ones((2, 3), np.float32)))
    with pytest.raises(TypeError, match="Translation"):
        plot_attention("나는 학생이다")
    with pytest.raises(ValueError, match="shape"):
        plot_attention(_translation(), gold=np.ones((2, 2), bool))


def test_gold_alignment_is_drawn_at_the_linked_cells():
    gold = np.zeros((len(TARGET), len(SOURCE)), bool)
    gold[0, 0] = gold[1, 1] = gold[3, 1] = True
    fig = plot_attention(_translation(), gold=gold)
    (points,) = fig.axes[0].collections
    np.testing.assert_array_equal(points.get_offsets(), [[0, 0], [1, 1], [1, 3]])  # (x=source, y=target)


def test_grid_has_one_heatmap_per_translation_and_one_colorbar(tmp_path):
    matrices = [_known_matrix(), _known_matrix()[::-1], np.eye(5, 3, dtype=np.float32)]
    fig = plot_attention_grid([_translation(m) for m in matrices], ncols=2, save=tmp_path / "grid.png")
    with_images = [ax for ax in fig.axes if ax.get_images()]
    assert len(with_images) == 3
    for ax, m in zip(with_images, matrices):
        np.testing.assert_array_equal(np.asarray(ax.get_images()[0].get_array()), m)
        assert _labels(ax.get_xticklabels()) == SOURCE
    assert sum(ax.get_ylabel() == "attention weight" for ax in fig.axes) == 1
    assert (tmp_path / "grid.png").stat().st_size > 0
    with pytest.raises(ValueError, match="at least one"):
        plot_attention_grid([])


def _snapshots(n=3):
    """``n`` AttentionSnapshot objects whose attention goes from uniform to the gold links."""
    from seq2seq_keras.evaluation.attention_snapshots import AttentionSnapshot

    gold = np.zeros((len(TARGET), len(SOURCE)), dtype=bool)
    gold[[0, 1, 2, 3, 4], [0, 1, 1, 1, 2]] = True
    out = []
    for k in range(n):
        share = k / max(n - 1, 1)  # 0: uniform, 1: all weight on the gold cells
        matrix = (1 - share) / len(SOURCE) + share * gold
        views = [_translation(matrix.astype(np.float32)), _translation(_known_matrix())]
        out.append(
            AttentionSnapshot(
                epoch=k - 1,
                views=views,
                outputs=["i am a student", "i i i i i i"],
                golds=[gold, None],
                forced=[True, False],
                aer=1.0 - share,
                gold_mass=share,
            )
        )
    return out


def test_animation_has_one_frame_per_snapshot(tmp_path):
    from PIL import Image

    from seq2seq_keras.plotting import animate_attention

    snapshots = _snapshots(3)
    anim = animate_attention(snapshots, save=tmp_path / "attention.gif")
    with Image.open(tmp_path / "attention.gif") as gif:
        assert gif.n_frames == 3
        frames = []
        for k in range(gif.n_frames):
            gif.seek(k)
            frames.append(np.asarray(gif.convert("RGB"), dtype=float))
    assert all(f.shape == frames[0].shape for f in frames)  # one figure size for every epoch
    assert np.abs(frames[0] - frames[-1]).mean() > 1  # the attention changed between the frames
    # The figure shows the last frame drawn: one heatmap per sentence, its data, the epoch in the title.
    heatmaps = [ax for ax in anim._fig.axes if ax.get_images()]
    assert len(heatmaps) == 2
    np.testing.assert_allclose(np.asarray(heatmaps[0].get_images()[0].get_array()), snapshots[-1].views[0].attention)
    assert anim._fig._suptitle.get_text().startswith("after epoch 2: AER 0.00")
    assert heatmaps[0].get_title().endswith("model says: i am a student")
    html = anim.to_jshtml()  # what notebook 01 shows inline
    assert html.count("data:image/png;base64") == 3


def test_animation_accepts_the_callback_and_refuses_nothing_to_show():
    from types import SimpleNamespace

    from seq2seq_keras.plotting import animate_attention

    anim = animate_attention(SimpleNamespace(snapshots=_snapshots(2)))
    assert anim._fig._suptitle.get_text().startswith("before training")  # frame 0 drawn first
    assert anim.to_jshtml().count("data:image/png;base64") == 2
    with pytest.raises(ValueError, match="at least one snapshot"):
        animate_attention([])
    mixed = _snapshots(2)
    mixed[1].views = mixed[1].views[:1]
    with pytest.raises(ValueError, match="different numbers of sentences"):
        animate_attention(mixed)


def test_bleu_by_length_plot_has_one_line_per_model_and_gaps_for_empty_buckets():
    rows = lambda bleus: [  # noqa: E731
        {"label": "1-5", "low": 0, "high": 5, "count": 3, "mean_length": 4.0, "bleu": bleus[0]},
        {"label": "6-10", "low": 5, "high": 10, "count": 0, "mean_length": None, "bleu": None},
        {"label": ">10", "low": 10, "high": None, "count": 2, "mean_length": 12.5, "bleu": bleus[1]},
    ]
    fig = plot_bleu_by_length({"attention": rows([40.0, 30.0]), "no attention": rows([35.0, 10.0])})
    ax = fig.axes[0]
    lines = ax.get_lines()
    assert [line.get_label() for line in lines] == ["attention", "no attention"]
    x, y = lines[1].get_data()
    np.testing.assert_allclose(x, [4.0, 8.0, 12.5])
    assert y[0] == 35.0 and np.isnan(y[1]) and y[2] == 10.0
    assert ax.get_ylabel() == "BLEU"
    assert _labels(ax.get_xticklabels()) == ["1-5\nn=3", "6-10\nn=0", ">10\nn=2"]


# ---------------------------------------------------------------------- with a real (tiny, untrained) model
@pytest.fixture(scope="module")
def tiny_model():
    import keras
    from conftest import TINY_SOURCE, TINY_TARGET

    from seq2seq_keras import Seq2Seq, TextProcessor

    src = TextProcessor.for_language("ko").adapt(TINY_SOURCE)
    tgt = TextProcessor.for_language("en", add_start_end=True).adapt(TINY_TARGET)
    keras.utils.set_random_seed(0)
    return Seq2Seq(src, tgt, embedding_dim=8, encoder_units=8)


def _image_data(fig):
    return np.asarray(fig.axes[0].get_images()[0].get_array())


def test_plots_what_the_python_api_returns(tiny_model):
    t = tiny_model.translate("나는 학생이다", max_length=6)
    fig = plot_attention(t)
    np.testing.assert_array_equal(_image_data(fig), t.attention)
    assert _labels(fig.axes[0].get_xticklabels()) == ["나는", "학생이다"]
    assert _labels(fig.axes[0].get_yticklabels()) == t.target_tokens


def _signature_outputs(model, sentences):
    """What the exported `translate_with_attention` signature returns, as numpy (batch-major): the graph's
    outputs that the signature exports, and no others (a server never sends the rest)."""
    import tensorflow as tf

    from seq2seq_keras.decoding.pipeline import translate_graph
    from seq2seq_keras.serving.signatures import output_names

    out = translate_graph(model, tf.constant(sentences), tf.constant(6, tf.int32))
    return {k: out[k].numpy() for k in output_names("translate_with_attention")}


def test_plots_a_tf_serving_rest_answer(tiny_model):
    import json

    from seq2seq_keras.serving import client as serving  # our own module: an import error must fail, not skip

    sentences = ["나는 학생이다", "그는 사과를 먹는다 ."]
    outputs = _signature_outputs(tiny_model, sentences)
    # TF Serving's row-format JSON: one object per sentence, strings as UTF-8 text.
    utf8 = np.vectorize(lambda x: x.decode("utf-8"), otypes=[object])
    rows = [
        {k: (utf8(v[b]) if v.dtype == object else v[b]).tolist() for k, v in outputs.items()}
        for b in range(len(sentences))
    ]
    body = json.loads(json.dumps({"predictions": rows}))
    translations = serving.outputs_to_translations(serving.parse_rest_predict_response(body), sentences)
    expected = tiny_model.translate(sentences, max_length=6)
    for t, e in zip(translations, expected):
        fig = plot_attention(t)
        np.testing.assert_allclose(_image_data(fig), e.attention, atol=1e-6)
        assert _labels(fig.axes[0].get_yticklabels()) == e.target_tokens
    # A raw prediction row (padded, with lengths) plots the same.
    np.testing.assert_allclose(_image_data(plot_attention(body["predictions"][1])), expected[1].attention, atol=1e-6)


def test_plots_a_tf_serving_grpc_answer(tiny_model):
    pytest.importorskip("tensorflow_serving.apis")
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2

    from seq2seq_keras.serving import GrpcClient, outputs_to_translations

    sentences = ["우리는 책을 읽었다."]
    response = predict_pb2.PredictResponse()
    for name, value in _signature_outputs(tiny_model, sentences).items():
        response.outputs[name].CopyFrom(tf.make_tensor_proto(value))
    (t,) = outputs_to_translations(GrpcClient.parse_response(response), sentences)
    (e,) = tiny_model.translate(sentences, max_length=6)
    fig = plot_attention(t)
    np.testing.assert_allclose(_image_data(fig), e.attention, atol=1e-6)
    assert _labels(fig.axes[0].get_xticklabels()) == e.source_tokens


def _saved_run(model, folder, attention="bahdanau"):
    from seq2seq_keras.training.config import TrainConfig
    from seq2seq_keras.training.run_folder import save_run

    save_run(model, TrainConfig(embedding_dim=8, encoder_units=8, epochs=0, attention=attention), {}, folder)
    return folder


def test_cli_plot_saves_the_heatmap_and_says_where(tiny_model, tmp_path, capsys):
    from seq2seq_keras.cli import main

    run = _saved_run(tiny_model, tmp_path / "run")
    out = tmp_path / "attention.png"
    assert main(["plot", "--model", str(run), "나는 학생이다", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert f"saved to {out}" in printed and printed.startswith("나는 학생이다 -> ")
    assert imread(out).ndim == 3
    grid = tmp_path / "grid.png"
    assert main(["plot", "--model", str(run), "나는 학생이다", "너는 의사이다.", "--out", str(grid)]) == 0
    assert grid.stat().st_size > out.stat().st_size


def test_cli_plot_errors_say_what_to_do(tiny_model, tmp_path, capsys):
    from seq2seq_keras import Seq2Seq
    from seq2seq_keras.cli import main

    assert main(["plot", "--model", str(tmp_path / "missing"), "a", "--out", str(tmp_path / "a.png")]) == 2
    assert "No trained model" in capsys.readouterr().err
    plain = Seq2Seq(tiny_model.source_text, tiny_model.target_text, embedding_dim=8, encoder_units=8, attention=None)
    run = _saved_run(plain, tmp_path / "plain", attention=None)
    assert main(["plot", "--model", str(run), "나는 학생이다", "--out", str(tmp_path / "b.png")]) == 2
    assert "no attention weights" in capsys.readouterr().err
    assert main(["plot", "--server", "http://localhost:9", "나는", "--out", str(tmp_path / "c.png")]) == 2
    assert "--model-name" in capsys.readouterr().err


def test_replaced_words_are_marked_on_the_heatmap():
    t = _translation()
    t.target_tokens = ["i", "am", "a", "kim", "[END]"]
    t.replaced = [False, False, False, True, False]
    source_tokens, target_tokens, _, _ = attention_view(t)
    assert target_tokens == ["i", "am", "a", "kim*", "[END]"]
    fig = plot_attention(t)
    assert [label.get_text() for label in fig.axes[0].get_yticklabels()] == target_tokens
    row = {
        "source_tokens": SOURCE,
        "target_tokens": TARGET,
        "attention": _known_matrix(),
        "replaced": [[0, 1, 0, 0, 0]],
    }
    assert attention_view(row)[1] == ["i", "am*", "a", "student", "[END]"]
    assert attention_view(_translation())[1] == TARGET  # nothing replaced: labels as they are


def _red(label) -> bool:
    from matplotlib.colors import same_color

    return same_color(label.get_color(), UNKNOWN_COLOR)


def test_unknown_source_tokens_are_marked_on_the_heatmap():
    """A source token the model read as [UNK] is labelled "word (unknown)" in red, and the axis label says why."""
    t = _translation()
    t.unknown_source, t.unknown_source_words = [True, False, False], ("나는",)
    assert attention_view(t)[0] == ["나는 (unknown)", "학생이다", "."]
    fig = plot_attention(t)
    heatmap = fig.axes[0]
    labels = heatmap.get_xticklabels()
    assert _labels(labels) == ["나는 (unknown)", "학생이다", "."]
    assert [_red(label) for label in labels] == [True, False, False]
    assert "unknown" in heatmap.get_xlabel() and "[UNK]" in heatmap.get_xlabel()
    # Nothing unknown, or not known (a TF Serving answer: unknown_source None): plain labels, plain axis label.
    for unknown in ([False, False, False], None):
        t.unknown_source, t.unknown_source_words = unknown, ()
        heatmap = plot_attention(t).axes[0]
        assert _labels(heatmap.get_xticklabels()) == SOURCE and heatmap.get_xlabel() == "source tokens"
        assert not any(_red(label) for label in heatmap.get_xticklabels())


def test_an_unknown_wordpiece_is_labelled_with_its_whole_word():
    t = Translation(
        source="zorvak students.",
        text="x",
        source_tokens=["[UNK]", "student", "##s", "."],
        target_tokens=["x", "[END]"],
        attention=_known_matrix(2, 4),
        log_prob=0.0,
        unknown_source=[True, False, False, False],
        unknown_source_words=("zorvak",),
    )
    assert attention_view(t)[0] == ["zorvak (unknown)", "student-", "-s", "."]


def test_a_python_api_output_row_marks_its_unknown_words_and_a_rest_answer_marks_none():
    row = {
        "source_tokens": SOURCE + [""],
        "source_length": 3,
        "target_tokens": TARGET,
        "attention": _known_matrix(len(TARGET), 4),
        "source_unknown_words": ["", "학생이다", "", ""],
    }
    assert attention_view(row)[0] == ["나는", "학생이다 (unknown)", "."]
    del row["source_unknown_words"]
    assert attention_view(row)[0] == SOURCE


def test_grid_and_python_api_heatmaps_mark_unknown_words(tiny_model):
    known, unknown = tiny_model.translate(["나는 학생이다", "나는 오늘 학생이다"], max_length=6)
    assert unknown.unknown_source_words == ("오늘",)  # the tiny vocabulary is the four TINY_SOURCE sentences
    fig = plot_attention(unknown)
    assert _labels(fig.axes[0].get_xticklabels()) == ["나는", "오늘 (unknown)", "학생이다"]
    grid = plot_attention_grid([known, unknown])
    cells = [ax for ax in grid.axes if ax.get_images()]
    assert [_labels(ax.get_xticklabels()) for ax in cells] == [
        ["나는", "학생이다"],
        ["나는", "오늘 (unknown)", "학생이다"],
    ]
    assert [[_red(label) for label in ax.get_xticklabels()] for ax in cells] == [[False, False], [False, True, False]]


# ---------------------------------------------------------------------- a Transformer's heads
def _known_heads(layers, heads, rows, cols):
    """Distinct weights per (layer, head, row, column), rows summing to 1: any mix-up of panels shows."""
    m = np.arange(1, layers * heads * rows * cols + 1, dtype=np.float32).reshape(layers, heads, rows, cols) ** 1.5
    return m / m.sum(axis=-1, keepdims=True)


def _panels(fig):
    """The heatmap axes (those with an image and a panel title), by (row, column) of the grid."""
    panels = {}
    for ax in fig.axes:
        if ax.get_images() and ax.get_title():
            spec = ax.get_subplotspec()
            panels[(spec.rowspan.start, spec.colspan.start)] = ax
    return panels


def test_head_grid_has_layers_times_heads_heatmaps_of_the_weights_with_token_labels():
    heads = _known_heads(2, 3, len(TARGET), len(SOURCE))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fig = plot_attention_heads(_translation(), heads)
        _render(fig)
    assert not [w for w in caught if "missing from font" in str(w.message)]  # Hangul labels are glyphs
    panels = _panels(fig)
    assert sorted(panels) == [(layer, head) for layer in range(2) for head in range(3)]
    assert len(fig.axes) == 2 * 3 + 1  # the panels and one colour bar
    for (layer, head), ax in panels.items():
        np.testing.assert_array_equal(np.asarray(ax.get_images()[0].get_array()), heads[layer, head])
        assert ax.get_title() == f"layer {layer + 1}, head {head + 1}"
        assert _labels(ax.get_xticklabels()) == SOURCE and _labels(ax.get_yticklabels()) == TARGET
        assert ax.yaxis_inverted()
    assert fig.get_suptitle().startswith("나는 학생이다.  ->  i am a student")


def test_head_grid_reads_a_padded_serving_prediction_and_says_what_is_missing():
    padded = np.zeros((1, 2, 2, len(TARGET) + 2, len(SOURCE) + 1), np.float32)
    padded[0, :, :, : len(TARGET), : len(SOURCE)] = _known_heads(2, 2, len(TARGET), len(SOURCE))
    row = {
        "source_tokens": SOURCE + [""],
        "target_tokens": TARGET + ["", ""],
        "source_length": 3,
        "target_length": 5,
        "attention": padded[0, -1].mean(0),
        "attention_heads": padded,
    }
    panels = _panels(plot_attention_heads(row))
    np.testing.assert_array_equal(
        np.asarray(panels[(1, 0)].get_images()[0].get_array()), padded[0, 1, 0, : len(TARGET), : len(SOURCE)]
    )
    with pytest.raises(ValueError, match="No per-head weights"):
        plot_attention_heads(_translation())
    with pytest.raises(ValueError, match="layers, heads"):
        plot_attention_heads(_translation(), _known_matrix())
    with pytest.raises(ValueError, match="too small"):
        plot_attention_heads(_translation(), _known_heads(1, 1, 2, 2))


def test_self_attention_grid_is_source_by_source_per_layer_and_head(tmp_path):
    weights = _known_heads(3, 2, len(SOURCE), len(SOURCE))
    fig = plot_self_attention(SOURCE, weights[None], save=tmp_path / "self.png")
    panels = _panels(fig)
    assert sorted(panels) == [(layer, head) for layer in range(3) for head in range(2)]
    for (layer, head), ax in panels.items():
        np.testing.assert_array_equal(np.asarray(ax.get_images()[0].get_array()), weights[layer, head])
        assert _labels(ax.get_xticklabels()) == SOURCE and _labels(ax.get_yticklabels()) == SOURCE
    assert imread(tmp_path / "self.png").ndim == 3
    with pytest.raises(ValueError, match="no source tokens"):
        plot_self_attention([], weights)


def _transformer_run(folder):
    import keras

    from seq2seq_keras import Seq2Seq, TextProcessor
    from seq2seq_keras.data import load_corpus
    from seq2seq_keras.training.config import TrainConfig
    from seq2seq_keras.training.run_folder import save_run

    pairs = load_corpus("builtin-ko-en", limit=200, seed=1)
    src = TextProcessor.for_language("ko").adapt(pairs.source)
    tgt = TextProcessor.for_language("en", add_start_end=True).adapt(pairs.target)
    keras.utils.set_random_seed(0)
    sizes = dict(architecture="transformer", num_layers=2, num_heads=2, model_dim=8, ff_dim=16)
    model = Seq2Seq(src, tgt, **sizes)
    save_run(model, TrainConfig(epochs=0, **sizes), {}, folder)
    return model, folder


def test_cli_plot_heads_and_self_attention_of_a_transformer(tmp_path, capsys):
    import tensorflow as tf

    from seq2seq_keras.cli import main
    from seq2seq_keras.decoding.pipeline import translate_graph

    model, run = _transformer_run(tmp_path / "run")
    out = tmp_path / "heads.png"
    assert main(["plot", "--model", str(run), "--heads", "나는 학생이다", "--out", str(out), "--max-length", "5"]) == 0
    assert f"saved to {out}" in capsys.readouterr().out and imread(out).ndim == 3
    assert (
        main(["plot", "--model", str(run), "--self-attention", "나는 학생이다", "--out", str(tmp_path / "s.png")]) == 0
    )
    assert imread(tmp_path / "s.png").ndim == 3
    # What --heads draws: the search's own hypothesis, every layer and head, matching the step-wise heatmap.
    text = tf.constant(["나는 학생이다"])
    result = translate_graph(model, text, tf.constant(5))
    heads = model.attention_heads(text, result, 256).numpy()[0]
    t = model.translate("나는 학생이다", max_length=5)
    np.testing.assert_allclose(heads[-1].mean(0)[: t.length], t.attention, atol=1e-5)
    assert main(["plot", "--model", str(run), "--heads", "a", "b", "--out", str(out)]) == 2
    assert "one sentence" in capsys.readouterr().err
