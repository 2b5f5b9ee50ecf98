"""The tutorial notebooks: committed clean, linked from the README, and run top to bottom.

Hygiene (fast): every committed notebook is valid nbformat, has no error outputs,
no stale execution counts (none at all, or exactly 1..n down the code cells of a
clean run), only small outputs, an Open-in-Colab badge pointing at itself, and a
first code cell that installs the package from ``REPO_URL`` only when it is not
importable. The README links both notebooks with badges built from the same URL.

Execution (slow): each notebook runs through nbmake (``pytest --nbmake``) in a
child process with ``SEQ2SEQ_KERAS_SMOKE=1`` (toy sizes; nothing is downloaded
or installed), and must leave no new file in ``notebooks/``. This is how
``make test`` executes them.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
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
    assert "git+{REPO_URL}" in install and "tensorflow>=2.21,<2.22" in install
    later = "\n".join(c.source for c in _code_cells(nb)[1:])
    assert "pip install" not in later, "only the first code cell may install anything"
    assert "SEQ2SEQ_KERAS_SMOKE" in later, "the notebook must honour SEQ2SEQ_KERAS_SMOKE"


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
def _files_under(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*") if ".ipynb_checkpoints" not in p.parts}


@pytest.mark.slow
@pytest.mark.timeout(SMOKE_TIMEOUT_S + 180)
@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_runs_top_to_bottom_in_smoke_mode(name):
    pytest.importorskip("nbmake")
    before = _files_under(NOTEBOOK_DIR)
    env = {**os.environ, "SEQ2SEQ_KERAS_SMOKE": "1", "TF_CPP_MIN_LOG_LEVEL": "2"}
    command = [
        sys.executable,
        "-m",
        "pytest",
        "--nbmake",
        f"--nbmake-timeout={SMOKE_TIMEOUT_S}",
        "-p",
        "no:cacheprovider",
        "-n",
        "0",  # one notebook, in this worker's process tree (the suite's addopts would start workers)
        "-q",
        str(NOTEBOOK_DIR / name),
    ]
    start = time.perf_counter()
    proc = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=SMOKE_TIMEOUT_S + 120)
    seconds = time.perf_counter() - start
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, (
        f"{name} failed under nbmake (SEQ2SEQ_KERAS_SMOKE=1) after {seconds:.0f} s:\n{output[-8000:]}"
    )
    assert re.search(r"\b1 passed\b", output), f"nbmake did not run {name}:\n{output[-3000:]}"
    created = sorted(_files_under(NOTEBOOK_DIR) - before)
    assert not created, f"{name} wrote into notebooks/ in smoke mode: {created}; write to a temporary folder."
    print(f"{name}: {seconds:.0f} s in smoke mode")
