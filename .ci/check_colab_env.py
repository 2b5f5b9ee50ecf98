"""Check the Colab test environment that `make test-colab` built, before its tests run.

1. pip kept Colab's stack: every ``name==version`` in the constraints file is still the installed version after
   the package was installed over it (the proof that a Colab install does not replace the runtime's TensorFlow).
2. The package came from the wheel, not the source tree, and has its metadata (the console script exists).
3. A notebook runs in this interpreter: the ``python3`` kernel that nbclient (nbmake's engine) starts for a
   notebook is this environment's Python with this environment's TensorFlow, not another Jupyter kernel found
   on the machine.

Usage: .venv-colab/bin/python .ci/check_colab_env.py .ci/colab-constraints.txt
Exit status 1 with one line per problem.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import subprocess
import sys
from pathlib import Path


def pinned_versions(constraints: Path) -> dict[str, str]:
    """``{name: version}`` of the ``name==version`` lines of a pip constraints file (comments skipped)."""
    pins = {}
    for line in constraints.read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, sep, version = line.partition("==")
            if not sep:
                raise SystemExit(f"{constraints}: {line!r} is not name==version; pin an exact version")
            pins[name.strip()] = version.strip()
    return pins


def stack_problems(pins: dict[str, str]) -> list[str]:
    problems = []
    for name, version in pins.items():
        try:
            installed = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            problems.append(f"{name} is not installed; Colab has {version}")
            continue
        if installed != version:
            problems.append(f"{name} is {installed}, Colab has {version}: installing the package replaced it")
    return problems


def package_problems(source_root: Path) -> list[str]:
    spec = importlib.util.find_spec("seq2seq_keras")
    if spec is None or spec.origin is None:
        return ["seq2seq_keras is not installed"]
    origin = Path(spec.origin).resolve()
    if origin.is_relative_to((source_root / "seq2seq_keras").resolve()):
        return [f"seq2seq_keras imports from the source tree ({origin}), not from the installed wheel"]
    entry_points = importlib.metadata.entry_points(group="console_scripts", name="seq2seq-keras")
    if not entry_points:
        return ["the seq2seq-keras console script is not registered"]
    return []


def kernel_problems() -> list[str]:
    """Run a one-cell notebook through nbclient as nbmake does (the kernel the notebook's kernelspec names).

    jupyter_client takes the first ``python3`` kernelspec on the Jupyter path (``JUPYTER_PATH``, the user's
    folder, then this environment's): one installed elsewhere with an absolute interpreter would win.
    """
    import tempfile

    import nbclient
    import nbformat

    cell = "import importlib.metadata, json, sys\nprint(json.dumps([sys.executable, importlib.metadata.version('tensorflow')]))"
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(cell)])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    with tempfile.TemporaryDirectory() as folder:
        nbclient.NotebookClient(nb, timeout=120).execute(cwd=folder, stderr=subprocess.DEVNULL)
    executable, tensorflow = json.loads(nb.cells[0].outputs[0]["text"])
    problems = []
    if Path(executable).resolve() != Path(sys.executable).resolve():
        problems.append(f"the python3 notebook kernel runs {executable}, not this environment's {sys.executable}")
    if tensorflow != importlib.metadata.version("tensorflow"):
        problems.append(f"the notebook kernel has tensorflow {tensorflow}, this environment has another")
    return problems


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__.strip().splitlines()[-2], file=sys.stderr)
        return 2
    constraints = Path(argv[1])
    pins = pinned_versions(constraints)
    problems = stack_problems(pins) + package_problems(constraints.resolve().parents[1]) + kernel_problems()
    for problem in problems:
        print(f"test-colab: {problem}", file=sys.stderr)
    if not problems:
        kept = ", ".join(f"{name} {version}" for name, version in pins.items())
        print(f"test-colab: Colab's stack kept ({kept}); notebooks run in {sys.executable}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
