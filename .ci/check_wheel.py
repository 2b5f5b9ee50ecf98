"""Check the wheel `make wheel` built: the whole package and nothing else.

Every module of ``seq2seq_keras/`` in the source tree (each subpackage, each ``.py``) is in the wheel; the wheel
holds nothing outside ``seq2seq_keras/`` and its ``.dist-info`` (no tests, benchmarks, notebooks); the console
script ``seq2seq-keras`` is declared. This is the file a Colab learner uploads when the git install fails.

Usage: python .ci/check_wheel.py dist/seq2seq_keras-<version>-py3-none-any.whl
Exit status 1 with one line per problem.
"""

from __future__ import annotations

import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "seq2seq_keras"


def wheel_problems(wheel: Path) -> list[str]:
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        dist_info = next((n.split("/")[0] for n in names if n.split("/")[0].endswith(".dist-info")), None)
        entry_points = archive.read(f"{dist_info}/entry_points.txt").decode() if dist_info else ""
    problems = []
    source = {p.relative_to(ROOT).as_posix() for p in (ROOT / PACKAGE).rglob("*.py") if "__pycache__" not in p.parts}
    missing = sorted(source - set(names))
    if missing:
        problems.append(f"{len(missing)} module(s) of the source tree are not in the wheel: {', '.join(missing[:5])}")
    strays = sorted(n for n in names if n.split("/")[0] not in (PACKAGE, dist_info))
    if strays:
        problems.append(f"{len(strays)} file(s) outside the package in the wheel: {', '.join(strays[:5])}")
    if "seq2seq-keras = seq2seq_keras.cli.commands:main" not in entry_points:
        problems.append("the wheel does not declare the seq2seq-keras console script")
    return problems


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__.strip().splitlines()[-2], file=sys.stderr)
        return 2
    wheel = Path(argv[1])
    problems = wheel_problems(wheel)
    for problem in problems:
        print(f"{wheel}: {problem}", file=sys.stderr)
    if not problems:
        subpackages = sorted(
            {Path(p).parent.as_posix() for p in zipfile.ZipFile(wheel).namelist() if p.startswith(PACKAGE + "/")}
        )
        print(f"{wheel}: the whole package ({len(subpackages)} folders: {', '.join(subpackages)}), no tests")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
