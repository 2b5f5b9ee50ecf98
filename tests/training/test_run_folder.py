"""run_folder.py: loading a run does not need the training loop (the folder's checks run in test_loop.py)."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_loading_exporting_and_evaluating_runs_do_not_import_the_training_loop():
    code = (
        "import sys\n"
        "import seq2seq_keras.training.run_folder, seq2seq_keras.serving.export, seq2seq_keras.evaluation.scores\n"
        "import seq2seq_keras.serving.check, seq2seq_keras.runs\n"
        "import seq2seq_keras.cli.commands\n"
        "from seq2seq_keras.cli.commands import build_parser\n"
        "build_parser()\n"
        "print('seq2seq_keras.training.loop' in sys.modules)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "False"
