"""The attention explorer (seq2seq_keras/explorer.py, ``seq2seq-keras explore``).

Unit tests of its pieces (input checks, the highlight = the argmax of an attention row, the HTML, every fault
as one line), then the page in a real browser: headless Chromium (Debian's ``chromium`` and
``chromium-driver``, driven by Selenium) opens the page served by the command itself, types 나는 학생이다,
reads "i am a student", hovers "student" and checks that 학생이다 is the outlined source word, on both back ends:
a run folder (``--model``) and TF Serving's REST API (``--server``), here a test server that answers
``:predict`` with what TF Serving's own loader returns for the export (TensorFlow's C API session,
:class:`~seq2seq_keras.serving.tf_serving_loader.ServingSession`, behind TF Serving's JSON codec from
tests/serving/test_client.py). Screenshots are kept in pytest's temp folder (``explorer-screenshots/``).

The model: the built-in corpus, 3,000 pairs, 5 epochs (about 30 s on 2 cores), trained once per session;
it translates the running example and puts 0.98 of "student"'s attention on 학생이다.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

from seq2seq_keras import explorer as ex
from seq2seq_keras.translation import Translation

ROOT = Path(__file__).resolve().parents[1]
MODEL_NAME = "explore"
EXPLORE_SETTINGS = dict(
    data="builtin-ko-en",
    limit=3000,
    embedding_dim=32,
    encoder_units=64,
    epochs=5,
    batch_size=32,
    learning_rate=1e-2,
    max_vocabulary=None,
    seed=0,
    precision="float32",
)


def translation(attention=((0.9, 0.1), (0.2, 0.8)), source=("나는", "학생이다"), target=("i", "student"), **kw):
    return Translation(
        source=" ".join(source),
        text=" ".join(target),
        source_tokens=list(source),
        target_tokens=list(target),
        attention=None if attention is None else np.asarray(attention, np.float32),
        log_prob=-1.0,
        **kw,
    )


# ---------------------------------------------------------------------- input checks
@pytest.mark.parametrize(
    "text,message",
    [
        ("", "the box is empty"),
        ("  \t\n ", "the box is empty"),
        (None, "the box is empty"),
        ("제어\x01문자", "control characters (U+0001)"),
        ("a\x7fb\x1b", "U+001B, U+007F"),
        ("\ufffd\ufffd abc", "not valid UTF-8"),
        ("\udcff abc", "not valid UTF-8"),
        (b"\xff\xfe abc", "not valid UTF-8"),
        ("가" * 2001, "2001 characters long; the explorer takes at most 2000"),
    ],
)
def test_bad_input_is_one_clear_line(text, message):
    with pytest.raises(ex.ExplorerError, match=None) as e:
        ex.check_sentence(text)
    assert message in str(e.value) and "\n" not in str(e.value)


def test_good_input_is_kept_with_tabs_and_line_breaks_as_spaces():
    assert ex.check_sentence(" 나는\t학생이다\r\n") == "나는 학생이다"
    assert ex.check_sentence("😀 ሰላም".encode()) == "😀 ሰላም"


# ---------------------------------------------------------------------- the highlight and the HTML
def test_the_highlighted_source_word_is_the_argmax_of_the_attention_row():
    attention = np.array([[0.6, 0.3, 0.1], [0.1, 0.2, 0.7], [0.2, 0.5, 0.3]])
    assert ex.argmax_source(attention) == [0, 2, 1]
    assert ex.argmax_source(None) == [] and ex.argmax_source(np.zeros((0, 3))) == []
    page = ex.alignment_html(translation(attention, ("a", "b", "c"), ("x", "y", "z")))
    outlined = [
        (i, j)
        for i in range(3)
        for j in range(3)
        if f".s2s-tgt[data-i='{i}']:is(:hover,:focus)) .s2s-src[data-j='{j}'] {{ background-color: "
        f"{ex._colour(attention[i, j])}; outline: 3px" in page
    ]
    assert outlined == [(0, 0), (1, 2), (2, 1)]


def test_marks_unknown_source_words_and_copied_output_words():
    t = translation(
        source=("나는", "[UNK]"),
        target=("i", "브뤼셀"),
        unknown_source=[False, True],
        unknown_source_words=("브뤼셀",),
        replaced=[False, True],
    )
    page = ex.alignment_html(t)
    assert "s2s-unknown" in page and "브뤼셀?" in page and "s2s-copied" in page and "브뤼셀*" in page
    heat = ex.heatmap_html(t)
    assert "title='i ← 나는: 0.9000'" in heat and ">0.90</td>" in heat


def test_html_escapes_what_the_model_says():
    page = ex.alignment_html(translation(source=("<b>", "'x'"), target=("<script>", "&")))
    assert "<script>" not in page.replace("<style>", "") and "&lt;script&gt;" in page and "&#x27;x&#x27;" in page


def test_beam_hypotheses_are_listed_with_scores_and_their_own_attention():
    best = translation(score=-0.5)
    best.alternatives = [translation(((0.5, 0.5), (0.1, 0.9)), target=("me", "student"), score=-0.9)]
    page = ex.alternatives_html(best)
    assert "1. i student" in page and "2. me student" in page and "score -0.900" in page
    assert page.count("<table class='s2s-heatmap'>") == 2
    heads = ex.heads_html(best, np.full((2, 3, 2, 2), 0.5, np.float32))
    assert heads.count("<table") == 6 and "layer 2, head 3" in heads


def test_a_transformers_heads_are_shown_per_layer_and_head(tiny_processors):
    """The local back end adds a Transformer's cross-attention per layer and head, cut to the translation."""
    from seq2seq_keras import Seq2Seq

    model = Seq2Seq(*tiny_processors, architecture="transformer", num_layers=2, num_heads=2, model_dim=8, ff_dim=16)
    result = ex.LocalBackend(model).translate("나는 학생이다.", ex.Request())
    t = result.translation
    assert result.heads.shape == (2, 2, len(t.target_tokens), len(t.source_tokens))
    np.testing.assert_allclose(result.heads.sum(-1), 1.0, atol=1e-4)
    np.testing.assert_allclose(result.heads[-1].mean(0), t.attention, atol=1e-4)  # the export's ``attention``
    assert "layer 2, head 2" in ex.heads_html(t, result.heads)


def test_served_answers_give_a_transformers_heads_and_beam_alternatives_without_attention():
    """A Transformer export's translate_with_attention also returns attention_heads (padded: cut to the
    translation); beam_search returns the other hypotheses' text and score only."""
    heads = np.zeros((1, 2, 3, 4, 5), np.float32)
    heads[..., 0] = 1.0
    common = {
        "translation": np.array([b"i student"], object),
        "source_tokens": np.array([[b"\xeb\x82\x98\xeb\x8a\x94", b"x", b""]], object),
        "target_tokens": np.array([[b"i", b"student", b"[END]", b""]], object),
        "source_length": np.array([2], np.int32),
        "target_length": np.array([3], np.int32),
        "attention": np.full((1, 4, 3), 0.5, np.float32),
        "log_prob": np.array([-0.5], np.float32),
        "replaced": np.zeros((1, 4), np.int32),
    }
    answers = {
        "translate_with_attention": {**common, "attention_heads": heads},
        "beam_search": {
            **common,
            "score": np.array([-0.4], np.float32),
            "beams_translation": np.array([[b"i student", b"me student", b""]], object),
            "beams_score": np.array([[-0.4, -0.9, 0.0]], np.float32),
            "beams_count": np.array([2], np.int32),
        },
    }
    backend = ex.ServedBackend(lambda texts, signature: answers[signature], "a test server")
    greedy = backend.translate("나는 x", ex.Request())
    assert greedy.heads.shape == (2, 3, 3, 2) and greedy.translation.source_tokens == ["나는", "x"]
    beam = backend.translate("나는 x", ex.Request("beam")).translation
    assert [(a.text, a.score, a.attention) for a in beam.alternatives] == [("me student", pytest.approx(-0.9), None)]
    failing = ex.ServedBackend(lambda texts, signature: {"translation": np.array([b"x"], object)}, "a bad server")
    with pytest.raises(ex.ExplorerError, match="lacks what the explorer reads"):
        failing.translate("x", ex.Request())


def test_a_model_without_attention_says_so(tiny_processors):
    from seq2seq_keras import Seq2Seq

    backend = ex.LocalBackend(Seq2Seq(*tiny_processors, embedding_dim=4, encoder_units=4, attention=None))
    messages, alignment, heatmap, extra = ex.explain(backend, "나는 학생이다.", ex.Request())
    assert "This model has no attention (trained with --attention none)" in messages
    assert "s2s-tgt" in alignment and "no attention" in alignment and heatmap == "" and "Traceback" not in messages


class _Backend:
    max_source_length = 4
    fixed_options = False

    def __init__(self, answer):
        self.answer = answer

    def translate(self, sentence, request):
        if isinstance(self.answer, BaseException):
            raise self.answer
        return ex.Result(self.answer)


def test_explain_turns_every_fault_into_a_message_never_a_traceback():
    request = ex.Request()
    messages, *rest = ex.explain(_Backend(RuntimeError("boom\n  at line 3")), "나는", request)
    assert "The translation failed: RuntimeError: boom at line 3" in messages and rest == ["", "", ""]
    messages, *rest = ex.explain(_Backend(ex.ExplorerError("server down")), "나는", request)
    assert "server down" in messages and "Traceback" not in messages
    messages, *_ = ex.explain(_Backend(translation()), "", request)
    assert "the box is empty" in messages
    messages, alignment, heatmap, _ = ex.explain(_Backend(translation(attention=None)), "나는", request)
    assert "has no attention" in messages and "no attention" in alignment and heatmap == ""
    zeros = translation(attention=np.zeros((2, 2)))  # what an export of a model without attention answers
    messages, *_ = ex.explain(_Backend(zeros), "나는", request)
    assert "has no attention" in messages
    long = translation(attention=np.full((1, 4), 0.25), source=("a", "b", "c", "d"), target=("x",))
    messages, *_ = ex.explain(_Backend(long), "a b c d e f", request)
    assert "Only the first 4 tokens were read" in messages


def test_request_turns_the_controls_into_decoding_options():
    from seq2seq_keras.decoding.options import DecodingOptions

    assert ex.Request().decoding_options() == dict(method="greedy", replace_unk=True, copy_unknown_names=True)
    beam = ex.Request("beam", 2, False, False).decoding_options()
    assert beam["n_best"] == 2 and beam["beam_width"] == 2
    DecodingOptions(**beam)  # valid as they are
    assert ex.Request("beam", 8).decoding_options()["n_best"] == ex.ALTERNATIVES + 1


def test_missing_gradio_says_how_to_install_it(monkeypatch, capsys):
    from seq2seq_keras.cli import main

    monkeypatch.setitem(sys.modules, "gradio", None)
    with pytest.raises(ex.ExplorerError, match=r"pip install 'seq2seq_keras\[explore\]'"):
        ex.require_gradio()
    assert main(["explore", "--server", "http://127.0.0.1:1", "--model-name", "m"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "pip install 'seq2seq_keras[explore]'" in err


@pytest.mark.parametrize(
    "argv,message",
    [
        (["--server", "http://127.0.0.1:1"], "--server needs --model-name"),
        (["--server", "localhost:8500", "--model-name", "m"], "give TF Serving's REST address"),
        (["--model", "no/such/run"], "No trained model at no/such/run"),
        (["--server", "http://h:1", "--model-name", "m", "--port", "70000"], "a port is at most 65535"),
    ],
)
def test_command_errors_are_one_line(argv, message, capsys):
    from seq2seq_keras.cli import main

    assert main(["explore", *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_server_that_is_down_or_slow_gets_a_message_within_the_timeout():
    pytest.importorskip("requests")
    request = ex.Request()
    down = ex.RestBackend(f"http://127.0.0.1:{_free_port()}", "demo", timeout=2)
    start = time.monotonic()
    messages, *rest = ex.explain(down, "나는 학생이다", request)
    assert "cannot be reached: is tensorflow_model_server running" in messages and rest == ["", "", ""]
    with socket.socket() as silent:  # accepts the connection, never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        slow = ex.RestBackend(f"http://127.0.0.1:{silent.getsockname()[1]}", "demo", timeout=1)
        messages, *_ = ex.explain(slow, "나는 학생이다", request)
    assert "did not answer within 1 s" in messages
    assert time.monotonic() - start < 20


# ---------------------------------------------------------------------- a model that translates the example
def explore_run_dir(tmp_path_factory) -> Path:
    """Train (once per session) the model the browser tests read: it translates 나는 학생이다 as i am a student."""
    from seq2seq_keras.training import TrainConfig, train

    out = tmp_path_factory.getbasetemp() / "seq2seq_explore_run"
    if not (out / "model.keras").exists():
        train(TrainConfig(**EXPLORE_SETTINGS), out_dir=out, verbose=0)
    return out


@pytest.fixture(scope="module")
def explore_run(tmp_path_factory):
    return explore_run_dir(tmp_path_factory)


def test_the_local_back_end_answers_the_example_with_its_attention(explore_run):
    from seq2seq_keras.training import load_model

    backend = ex.LocalBackend(load_model(explore_run), "run")
    result = backend.translate("나는 학생이다", ex.Request())
    t = result.translation
    assert t.text == "i am a student"
    assert t.source_tokens[ex.argmax_source(t.attention)[t.target_tokens.index("student")]] == "학생이다"
    beam = backend.translate("나는 학생이다", ex.Request("beam", 3)).translation
    assert beam.text == "i am a student" and 1 <= len(beam.alternatives) <= 2
    messages, alignment, heatmap, extra = ex.explain(backend, "나는 학생이다", ex.Request("beam", 3))
    assert "학생이다" in alignment and "<table" in heatmap and "Beam hypotheses" in extra


# ---------------------------------------------------------------------- TF Serving's REST API, for the test
@pytest.fixture(scope="module")
def served(explore_run, tmp_path_factory):
    """(the export's version folder, a session of TF Serving's loader on it)."""
    from seq2seq_keras.serving.export import export_model
    from seq2seq_keras.serving.tf_serving_loader import ServingSession, tf_text_op_libraries
    from seq2seq_keras.training import load_model

    base = tmp_path_factory.getbasetemp() / "seq2seq_explore_export"
    path = base / MODEL_NAME / "1"
    if not (path / "saved_model.pb").exists():
        export_model(load_model(explore_run), MODEL_NAME, base, source_model=explore_run)
    session = ServingSession(path, op_libraries=tf_text_op_libraries())
    yield path, session
    session.close()


@pytest.fixture(scope="module")
def rest_server(served):
    """TF Serving's REST front end for the export of the explorer's model: ``:predict`` (TF Serving's JSON
    codec from test_client.py) run by TensorFlow's C API loader, ``/metadata`` and the status; its URL."""
    from test_client import _metadata_response, serve_rest

    from seq2seq_keras.serving.tf_serving_loader import ServingLoaderError

    path, session = served
    lock = threading.Lock()
    prefix = f"/v1/models/{MODEL_NAME}"

    class Rest(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def _answer(self, code, text):
            data = text.encode("utf-8")
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):
            from google.protobuf import json_format

            if self.path == f"{prefix}/metadata":
                response = _metadata_response(path, 1)
                response.model_spec.name = MODEL_NAME
                self._answer(200, json_format.MessageToJson(response, preserving_proto_field_name=True))
            elif self.path == prefix:
                self._answer(200, json.dumps({"model_version_status": [{"version": "1", "state": "AVAILABLE"}]}))
            else:
                self._answer(404, json.dumps({"error": f"Servable not found for request: Latest({self.path})"}))

        def do_POST(self):
            if self.path != f"{prefix}:predict":
                self._answer(404, json.dumps({"error": f"Servable not found for request: Latest({self.path})"}))
                return
            body = self.rfile.read(int(self.headers["Content-Length"])).decode("utf-8")
            try:
                with lock:
                    self._answer(200, serve_rest(session, body))
            except (ValueError, ServingLoaderError) as e:
                self._answer(400, json.dumps({"error": str(e)}))

    http = ThreadingHTTPServer(("127.0.0.1", 0), Rest)
    threading.Thread(target=http.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{http.server_address[1]}"
    http.shutdown()
    http.server_close()


def test_the_loader_back_end_answers_as_the_server(served):
    """A notebook without TF Serving explores the export through TF Serving's loader in its own process."""
    t = ex.SessionBackend(served[1]).translate("나는 학생이다", ex.Request()).translation
    assert t.text == "i am a student" and t.target_tokens[3] == "student"
    assert t.source_tokens[ex.argmax_source(t.attention)[3]] == "학생이다"
    messages, *_ = ex.explain(ex.SessionBackend(served[1]), "나는 학생이다", ex.Request("beam"))
    assert "error" not in messages


def test_the_rest_back_end_reads_what_tf_servings_loader_answers(rest_server):
    pytest.importorskip("requests")
    backend = ex.RestBackend(rest_server, MODEL_NAME)
    t = backend.translate("나는 학생이다", ex.Request()).translation
    assert t.text == "i am a student"
    assert t.source_tokens[ex.argmax_source(t.attention)[t.target_tokens.index("student")]] == "학생이다"
    beam = backend.translate("나는 학생이다", ex.Request("beam")).translation
    assert beam.text == "i am a student" and beam.alternatives  # text and score: the export returns no more
    assert all(a.text and a.score <= beam.score and a.attention is None for a in beam.alternatives)
    assert "not its attention" in ex.alternatives_html(beam)
    messages, *_ = ex.explain(ex.RestBackend(rest_server, "other"), "나는 학생이다", ex.Request())
    assert "Servable not found" in messages


# ---------------------------------------------------------------------- in a real browser
def _chromium() -> tuple[str, str] | None:
    binary = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    driver = shutil.which("chromedriver")
    return (binary, driver) if binary and driver else None


@pytest.fixture(scope="module")
def browser():
    pytest.importorskip("gradio", reason="the explorer needs Gradio: pip install 'seq2seq_keras[explore]'")
    webdriver = pytest.importorskip("selenium.webdriver", reason="the browser tests need selenium (the dev extra)")
    found = _chromium()
    if found is None:
        pytest.skip(
            "headless Chromium not found: install Debian's chromium and chromium-driver (make test does where apt works)"
        )
    options = webdriver.ChromeOptions()
    options.binary_location = found[0]
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,900", "--lang=en"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=webdriver.ChromeService(found[1]), options=options)
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def screenshots(tmp_path_factory):
    folder = tmp_path_factory.getbasetemp() / "explorer-screenshots"
    folder.mkdir(exist_ok=True)
    return folder


class Explorer:
    """``seq2seq-keras explore ARGS`` in a subprocess on a free port; ``url`` once the page answers."""

    def __init__(self, *args: str, cwd: Path = ROOT):
        self.port = _free_port()
        env = {**os.environ, "PYTHONPATH": str(ROOT), "GRADIO_ANALYTICS_ENABLED": "False"}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "seq2seq_keras.cli", "explore", *args, "--port", str(self.port)],
            cwd=cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        self.url = f"http://127.0.0.1:{self.port}/"
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"explore exited: {self.process.stdout.read().decode(errors='replace')}")
            try:
                with urllib.request.urlopen(self.url, timeout=5) as response:
                    if response.status == 200:
                        return
            except OSError:
                time.sleep(0.5)
        self.close()
        raise AssertionError("explore did not serve its page within 120 s")

    def close(self) -> str:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.stdout.read().decode(errors="replace")


def _answer(driver) -> str | None:
    """The stamp of the answer the page shows (each answer has its own), ``None`` before the first."""
    from selenium.webdriver.common.by import By

    stamps = driver.find_elements(By.CSS_SELECTOR, "#s2s-messages .s2s-answer")
    return stamps[0].get_attribute("data-n") if stamps else None


def translate_in_the_page(driver, url: str, sentence: str, type_it: bool = True) -> None:
    """Open the page, wait for its opening answer, put ``sentence`` in the box (typed, or set by a script where
    a keyboard cannot type it), press Enter and wait for the new answer."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(url)
    box = WebDriverWait(driver, 60).until(lambda d: d.find_element(By.CSS_SELECTOR, "#s2s-sentence textarea"))
    before = WebDriverWait(driver, 60).until(_answer)
    box.clear()
    if type_it:
        box.send_keys(sentence)
    else:
        driver.execute_script(
            "arguments[0].value = arguments[1]; arguments[0].dispatchEvent(new Event('input', {bubbles: true}));",
            box,
            sentence,
        )
    box.send_keys(Keys.ENTER)
    WebDriverWait(driver, 60).until(lambda d: _answer(d) not in (None, before))


def check_the_example(driver, url: str, screenshot: Path) -> None:
    """Type 나는 학생이다, read i am a student, hover "student": 학생이다 is outlined and the most lit."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    translate_in_the_page(driver, url, "나는 학생이다")
    words = [e.text for e in driver.find_elements(By.CSS_SELECTOR, "#s2s-alignment .s2s-tgt")]
    assert " ".join(w for w in words if w != "[END]") == "i am a student", words
    sources = driver.find_elements(By.CSS_SELECTOR, "#s2s-alignment .s2s-src")
    assert [s.text for s in sources] == ["나는", "학생이다"]
    assert {s.value_of_css_property("outline-style") for s in sources} == {"none"}  # nothing lit before a hover
    student = next(e for e in driver.find_elements(By.CSS_SELECTOR, "#s2s-alignment .s2s-tgt") if e.text == "student")
    ActionChains(driver).move_to_element(student).perform()
    time.sleep(0.3)
    outlined = [s.text for s in sources if s.value_of_css_property("outline-style") == "solid"]
    alpha = {s.text: float(s.value_of_css_property("background-color").rstrip(")").split(",")[-1]) for s in sources}
    assert outlined == ["학생이다"], outlined
    assert alpha["학생이다"] > 0.5 > alpha["나는"], alpha
    cells = driver.find_elements(By.CSS_SELECTOR, "#s2s-heatmap td")
    assert len(cells) == len(words) * 2 and all(c.get_attribute("title") for c in cells)
    driver.save_screenshot(str(screenshot))


def test_the_page_of_a_run_folder_in_a_real_browser(browser, explore_run, screenshots):
    from selenium.webdriver.common.by import By

    home = screenshots.parent / "explore-home"  # the run as runs/demo, as after make demo (the page names it)
    (home / "runs").mkdir(parents=True, exist_ok=True)
    if not (home / "runs" / "demo").exists():
        (home / "runs" / "demo").symlink_to(explore_run, target_is_directory=True)
    page = Explorer("--model", "runs/demo", cwd=home)
    try:
        check_the_example(browser, page.url, screenshots / "explorer-local.png")
        translate_in_the_page(browser, page.url, "제어\x01문자", type_it=False)
        error = browser.find_element(By.CSS_SELECTOR, "#s2s-messages .s2s-error").text
        assert "control characters (U+0001)" in error and "Traceback" not in browser.page_source
    finally:
        log = page.close()
    assert "Traceback" not in log, log


def test_the_page_of_tf_servings_rest_answers_in_a_real_browser(browser, rest_server, screenshots):
    from selenium.webdriver.common.by import By

    page = Explorer("--server", rest_server, "--model-name", MODEL_NAME, "--timeout", "20")
    try:
        check_the_example(browser, page.url, screenshots / "explorer-rest.png")
        assert f"TF Serving at {rest_server}" in browser.page_source
    finally:
        log = page.close()
    assert "Traceback" not in log, log
    down = Explorer("--server", f"http://127.0.0.1:{_free_port()}", "--model-name", MODEL_NAME, "--timeout", "2")
    try:
        translate_in_the_page(browser, down.url, "나는 학생이다")
        error = browser.find_element(By.CSS_SELECTOR, "#s2s-messages .s2s-error").text
        assert "cannot be reached" in error and "Traceback" not in browser.page_source
    finally:
        down.close()
