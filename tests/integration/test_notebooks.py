"""The tutorial notebooks: committed clean, linked from the README, and run top to bottom.

Hygiene (fast): every committed notebook is valid nbformat, has no error outputs,
no stale execution counts (none at all, or exactly 1..n down the code cells of a
clean run), only small outputs, an Open-in-Colab badge pointing at itself, and a
first code cell that installs the package (an uploaded wheel, else ``git+REPO_URL``,
never a TensorFlow pin) only when it is not importable, and on failure prints the
alternatives and stops with one line. The README links both notebooks with badges
built from the same URL. No Markdown cell types a result number (a BLEU, an
accuracy, a run time): the prose must render those from the run's values, so that
smoke mode and full mode both tell the truth.

Execution (slow): each notebook runs once through nbclient with
``SEQ2SEQ_KERAS_SMOKE=1`` (toy sizes; nothing is downloaded or installed) and
``TF_CPP_MIN_LOG_LEVEL=2`` (what many users set), must leave no new file in
``notebooks/``, and its outputs must show no TensorFlow start-up line, no warning
and no traceback. This is how ``make test`` executes them.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK_DIR = ROOT / "notebooks"
NOTEBOOKS = ("01_seq2seq_attention.ipynb", "02_export_and_serve.ipynb")
COLAB_BADGE = "https://colab.research.google.com/assets/colab-badge.svg"
#: Largest committed output per cell (characters of its JSON): small, deterministic text only.
MAX_OUTPUT_CHARS = 2000
#: Seconds one notebook may take in smoke mode before the run is declared hung.
SMOKE_TIMEOUT_S = 900

nbformat = pytest.importorskip("nbformat")


def _load(name: str):
    path = NOTEBOOK_DIR / name
    assert path.is_file(), f"{path} is missing: the tutorial notebooks are part of the package."
    return nbformat.read(path, as_version=4)


def _code_cells(nb):
    return [c for c in nb.cells if c.cell_type == "code"]


def _repo_url(nb) -> str:
    first_code = _code_cells(nb)[0].source
    match = re.search(r'^REPO_URL = "(https://github\.com/[^"]+)"$', first_code, re.M)
    assert match, f'the first code cell must define REPO_URL = "https://github.com/..."; it is:\n{first_code}'
    return match.group(1)


def _colab_url(repo_url: str, name: str) -> str:
    owner_repo = repo_url.removeprefix("https://github.com/").rstrip("/")
    return f"https://colab.research.google.com/github/{owner_repo}/blob/main/notebooks/{name}"


# ---------------------------------------------------------------------- hygiene
@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_is_valid_and_clean(name):
    nb = _load(name)
    nbformat.validate(nb)
    assert nb.metadata.get("kernelspec", {}).get("name") == "python3", "kernelspec must be python3 (Colab, nbmake)"
    counts = [c.get("execution_count") for c in _code_cells(nb)]
    if any(n is not None for n in counts):
        assert counts == list(range(1, len(counts) + 1)), (
            f"{name}: stale execution counts {counts}; clear outputs (jupyter nbconvert --clear-output --inplace) "
            "or commit a clean top-to-bottom run."
        )
    for k, cell in enumerate(nb.cells):
        for output in cell.get("outputs", []):
            assert output.get("output_type") != "error", (
                f"{name}, cell {k}: committed error output {output.get('ename')}"
            )
            assert not (output.get("output_type") == "stream" and "Traceback" in output.get("text", "")), (
                f"{name}, cell {k}: a traceback in a committed stream output"
            )
        size = len(json.dumps(cell.get("outputs", [])))
        assert size <= MAX_OUTPUT_CHARS, (
            f"{name}, cell {k}: {size} characters of committed output (images, logs); clear the outputs."
        )


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_badge_and_install_cell(name):
    nb = _load(name)
    first = nb.cells[0]
    assert first.cell_type == "markdown" and first.source.startswith("# "), "the notebook opens with a title"
    repo_url = _repo_url(nb)
    assert f"[![Open In Colab]({COLAB_BADGE})]({_colab_url(repo_url, name)})" in first.source, (
        f"{name}: the first cell needs an Open-in-Colab badge linking to {_colab_url(repo_url, name)}"
    )
    install = _code_cells(nb)[0].source
    assert 'importlib.util.find_spec("seq2seq_keras") is None' in install, (
        "the install cell must be skipped where seq2seq_keras is importable (CI never installs)"
    )
    assert "git+{REPO_URL}" in install and 'glob.glob("seq2seq_keras-*.whl")' in install, (
        "the install cell installs an uploaded wheel if there is one, else the repository"
    )
    assert not re.search(r"\b(tensorflow|keras)(-text)?\s*[<>=]", install), (
        "the install cell must not pin TensorFlow or Keras: Colab keeps its own (the package supports them)"
    )
    later = "\n".join(c.source for c in _code_cells(nb)[1:])
    assert "pip install" not in later.replace("`pip install -e", ""), "only the first code cell may install anything"
    assert "SEQ2SEQ_KERAS_SMOKE" in later, "the notebook must honour SEQ2SEQ_KERAS_SMOKE"


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_quiet_start_comes_before_tensorflow(name):
    """The second code cell starts TensorFlow through the package's quiet start, before any import of it."""
    cells = [c.source for c in _code_cells(_load(name))]
    assert "TF_CPP_MIN_LOG_LEVEL" not in "\n".join(cells), (
        "setting TF_CPP_MIN_LOG_LEVEL is the package's job (quiet_start); the notebook must not set it"
    )
    setup = cells[1]
    call = setup.find("quiet_start()")
    assert call >= 0, f"{name}: the second code cell must call quiet_start() (seq2seq_keras.startup)"
    first_tf = re.search(r"^(import|from) (tensorflow|keras|seq2seq_keras(?!\.startup))\b", setup, re.M)
    assert first_tf is None or first_tf.start() > call, (
        f"{name}: {first_tf.group(0)!r} comes before quiet_start(); TensorFlow must load through it"
    )


@pytest.mark.parametrize("wheel", [False, True], ids=["repository", "uploaded-wheel"])
def test_install_cell_failure_prints_the_alternatives_and_stops_with_one_line(wheel, tmp_path, monkeypatch, capsys):
    """Where pip fails (an unreachable repository, a broken upload), the learner gets one paragraph naming the
    wheel and the folder alternatives with pip's error line, then one line of error, not a traceback."""
    source = _code_cells(_load(NOTEBOOKS[0]))[0].source
    source = source.replace(_repo_url(_load(NOTEBOOKS[0])), (tmp_path / "no-such-repository").as_uri())
    if wheel:
        (tmp_path / "seq2seq_keras-0.0.0-py3-none-any.whl").write_bytes(b"not a zip file")
    monkeypatch.chdir(tmp_path)
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "seq2seq_keras" else real_find_spec(name, *a)
    )
    with pytest.raises(RuntimeError) as raised:
        exec(compile(source, "install cell", "exec"), {})
    printed = capsys.readouterr().out.strip()
    assert "\n" not in printed, f"the alternatives must be one paragraph:\n{printed}"
    for needed in ("make wheel", "Files pane", "pip install -e", "(pip: ", "run this cell again"):
        assert needed in printed, f"{needed!r} missing from the install cell's advice:\n{printed}"
    assert ("seq2seq_keras-0.0.0" in printed) == wheel, printed
    assert re.search(r"\(pip: [^)]*error", printed, re.IGNORECASE), f"pip's error line is not quoted:\n{printed}"
    rendered = raised.value._render_traceback_()
    assert len(rendered) == 1 and rendered[0].startswith("InstallFailed: "), rendered


#: What a result typed into prose looks like: a decimal (BLEU 74.4, AER 0.11, 1.36x), a percentage, a score
#: name followed by a number, a duration, a count with a thousands separator (12,900 steps).
_TYPED_RESULT = re.compile(
    r"\b\d+\.\d+\b"
    r"|\b\d+(\.\d+)?\s*%"
    r"|\b(BLEU|chrF|AER|accuracy|loss|perplexity)\s*(of\s*)?\d"
    r"|\b\d+(\.\d+)?\s*(-\s*\d+\s*)?(minutes?|min|seconds?|s|ms|hours?|h)\b(?!-)"
    r"|\b\d{1,3}(,\d{3})+\b"
    r"|\b\d+(\.\d+)?\s*[x×]\s*(faster|slower)?\b(?!\s*\d)",
    re.IGNORECASE,
)
#: Numbers the prose may type because they are not results: hand-computed teaching examples (the weight
#: of section 3, checked by test_hand_computed_attention_numbers_in_notebook_01_are_right), licences,
#: tolerances and software versions.
TEACHING_CONSTANTS = ("about 0.88", "CC-BY 2.0", "within 1e-5", "TensorFlow 2.20 and 2.21")


def typed_result_numbers(markdown: str) -> list[str]:
    """The result-like numbers typed into ``markdown`` (its teaching constants removed first), for the test
    below; inline code and URLs count as prose too, except the Colab badge's link."""
    text = re.sub(r"\(https?://[^)]*\)", "", markdown)
    for constant in TEACHING_CONSTANTS:
        text = text.replace(constant, "")
    return [m.group(0) for m in _TYPED_RESULT.finditer(text)]


@pytest.mark.parametrize(
    "typed",
    [
        "about even: BLEU 74.4 vs 72.5",
        "against 99.4 to 100 in every bucket with it",
        "about 11 minutes on 2 CPU cores",
        "the full run measured AER 0.11 against 0.87",
        "with 83% of the attention mass on gold-linked words",
        "12.9 training steps/s against 9.5 for the GRU on the same 20 batches (1.36x)",
        "(12,000 built-in pairs, 5 epochs)",
        "in about half a minute, up to 90 s on a busy machine",
        "training 1.9 min; export and the requests 25 s",
        "BLEU 97 without attention",
    ],
)
def test_typed_result_numbers_are_found(typed):
    """The detector catches the kinds of typed results notebook 01 once carried (issue 24)."""
    assert typed_result_numbers(typed), f"not caught: {typed!r}"


@pytest.mark.parametrize(
    "prose",
    [
        "The weight on `학생이다` is about 0.88: the context vector is mostly that word's state.",
        "divides the scores by `sqrt(d)` = 2 here, and section 3 has 4 steps",
        "Bahdanau et al. (2014, Figure 2) plotted BLEU against sentence length",
        "the Tatoeba corpus (CC-BY 2.0 France), attention within 1e-5, 2 CPU cores",
    ],
)
def test_teaching_prose_is_not_flagged(prose):
    assert typed_result_numbers(prose) == [], prose


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_no_result_number_is_typed_into_markdown(name):
    """Every figure the prose states comes from the run (printed, or a Markdown cell rendered by code)."""
    found = {
        k: typed_result_numbers(cell.source) for k, cell in enumerate(_load(name).cells) if cell.cell_type == "markdown"
    }
    found = {k: v for k, v in found.items() if v}
    assert not found, (
        f"{name}: result numbers typed into Markdown (cell: numbers) {found}; render them from the run's values "
        "(print, or IPython.display.Markdown of an f-string), or add a true teaching constant to TEACHING_CONSTANTS."
    )


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_code_cells_are_valid_python(name):
    """Every code cell compiles after IPython's own transformation of ``!`` and ``%`` lines."""
    transformer = pytest.importorskip("IPython.core.inputtransformer2").TransformerManager()
    for k, cell in enumerate(_load(name).cells):
        if cell.cell_type == "code":
            source = transformer.transform_cell(cell.source)
            try:
                compile(source, f"{name}, cell {k}", "exec")
            except SyntaxError as e:
                pytest.fail(f"{name}, cell {k} does not compile: {e}\n{cell.source}")


def test_both_notebooks_and_readme_share_one_repo_url():
    urls = {name: _repo_url(_load(name)) for name in NOTEBOOKS}
    assert len(set(urls.values())) == 1, f"the notebooks name different repositories: {urls}"
    repo_url = next(iter(urls.values()))
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert repo_url in readme, f"README must name the repository URL {repo_url}"
    for name in NOTEBOOKS:
        badge = f"[![Open In Colab]({COLAB_BADGE})]({_colab_url(repo_url, name)})"
        assert badge in readme, f"README.md lacks the Colab badge for {name}: {badge}"


def test_hand_computed_attention_numbers_in_notebook_01_are_right():
    """The numbers the narrative quotes for the small-tensor example (section 3) hold for the package."""
    np = pytest.importorskip("numpy")
    from seq2seq_keras import LuongAttention

    nb = _load(NOTEBOOKS[0])
    text = "\n".join(c.source for c in nb.cells)
    assert "about 0.88" in text
    h = np.array([[[1.0, 0.0, 1.0, 0.0], [0.0, 2.0, 0.0, 1.0], [0.0, 0.0, 0.0, 0.5]]], "float32")
    q = np.array([[0.0, 1.0, 0.0, 1.0]], "float32")
    _, weights = LuongAttention("dot")(q, h)
    assert round(float(np.asarray(weights)[0, 1]), 2) == 0.88
    _, scaled = LuongAttention("scaled_dot")(q, h)
    expected = np.exp([0.0, 1.5, 0.25]) / np.exp([0.0, 1.5, 0.25]).sum()
    np.testing.assert_allclose(np.asarray(scaled)[0], expected, rtol=1e-5)


# ---------------------------------------------------------------------- execution
def _package_home() -> str:
    """The folder holding the seq2seq_keras package this test process imports."""
    import seq2seq_keras

    return str(Path(seq2seq_keras.__file__).resolve().parents[1])


def _files_under(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*") if ".ipynb_checkpoints" not in p.parts}


#: Lines that must not show in any output, stdout included (a ``!`` command's stderr arrives there): TensorFlow's
#: C++ log lines and start-up chatter (glog format, absl), its Python log lines, Python warnings (``WARNING``,
#: ``Warning``, tf.function ``retracing``) and tracebacks. On stderr (shown in red) every line counts.
_NOISE = re.compile(
    r"^[IWEF]\d{4} \d\d:\d\d:\d\d"
    r"|absl::InitializeLog|oneDNN|cuInit|cuda"
    r"|^(INFO|WARNING|ERROR):tensorflow:"
    r"|WARNING|Warning|retracing"
    r"|Traceback \(most recent call last\)",
    re.MULTILINE,
)


def noise_lines(executed) -> list[str]:
    """``cell k (stream): line`` for every stderr line of an executed notebook, every stdout line matching
    ``_NOISE``, and every error output."""
    found = []
    for k, cell in enumerate(executed.cells):
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                found.append(f"cell {k} (error): {output.get('ename')}: {output.get('evalue')}")
            elif output.get("output_type") == "stream":
                for line in output.get("text", "").splitlines():
                    if line.strip() and (output.get("name") == "stderr" or _NOISE.search(line)):
                        found.append(f"cell {k} ({output.get('name')}): {line[:300]}")
    return found


def test_noise_lines_finds_start_up_lines_warnings_and_tracebacks():
    nb = nbformat.v4.new_notebook()
    stdout = {
        "E0000 00:00:1796545498.797849   23027 util.cc:131] oneDNN supports DT_BOOL only on platforms with AVX-512.": 1,
        "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR": 1,
        "WARNING:tensorflow:5 out of the last 5 calls to <function f> triggered tf.function retracing.": 1,
        "INFO:tensorflow:Assets written to: /tmp/x/assets": 1,
        "/x.py:3: UserWarning: something": 1,
        "Traceback (most recent call last):": 1,
        "Epoch 1/2 - 3s - loss: 2.1 - accuracy: 0.4": 0,
        "nothing to see": 0,
    }
    stderr = {"any line on stderr is red": 1, "": 0}
    cell = nbformat.v4.new_code_cell("")
    cell.outputs = [
        nbformat.v4.new_output("stream", name="stdout", text="\n".join(stdout)),
        nbformat.v4.new_output("stream", name="stderr", text="\n".join(stderr)),
    ]
    nb.cells = [cell]
    assert len(noise_lines(nb)) == sum(stdout.values()) + sum(stderr.values()), noise_lines(nb)


@pytest.mark.slow
@pytest.mark.timeout(SMOKE_TIMEOUT_S + 180)
@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_runs_top_to_bottom_in_smoke_mode_quietly(name):
    """Run the notebook once, as a learner would with ``TF_CPP_MIN_LOG_LEVEL=2`` set, at toy size: no error,
    nothing written into notebooks/, and no start-up line, warning or traceback in any output."""
    nbclient = pytest.importorskip("nbclient")
    before = _files_under(NOTEBOOK_DIR)
    env = {
        **os.environ,
        "SEQ2SEQ_KERAS_SMOKE": "1",
        "TF_CPP_MIN_LOG_LEVEL": "2",
        # the kernel and the notebook's `!seq2seq-keras` commands import the package this test imports: this
        # checkout's (a worktree, an editable install) or an installed wheel's (make test-colab)
        "PYTHONPATH": os.pathsep.join([_package_home(), *filter(None, [os.environ.get("PYTHONPATH")])]),
    }
    env.pop("SEQ2SEQ_KERAS_TF_LOGS", None)
    nb = _load(name)
    client = nbclient.NotebookClient(
        nb, timeout=SMOKE_TIMEOUT_S, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOK_DIR)}}
    )
    start = time.perf_counter()
    try:
        client.execute(env=env)
    except nbclient.exceptions.CellExecutionError as e:
        pytest.fail(f"{name} failed in smoke mode after {time.perf_counter() - start:.0f} s:\n{str(e)[-6000:]}")
    seconds = time.perf_counter() - start
    created = sorted(_files_under(NOTEBOOK_DIR) - before)
    assert not created, f"{name} wrote into notebooks/ in smoke mode: {created}; write to a temporary folder."
    noise = noise_lines(nb)
    assert not noise, f"{name} showed start-up lines, warnings or tracebacks ({len(noise)}):\n" + "\n".join(noise)
    print(f"{name}: {seconds:.0f} s in smoke mode")
