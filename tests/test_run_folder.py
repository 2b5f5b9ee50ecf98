"""run_folder.py: loading a run does not need the training loop (the folder's checks run in test_training.py)."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_loading_exporting_and_evaluating_runs_do_not_import_the_training_loop():
    code = (
        "import sys\n"
        "import seq2seq_keras.run_folder, seq2seq_keras.export, seq2seq_keras.evaluation, seq2seq_keras.servable\n"
        "import seq2seq_keras.cli\n"
        "from seq2seq_keras.cli import build_parser\n"
        "build_parser()\n"
        "print('seq2seq_keras.training' in sys.modules)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300,
                            env={**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "False"


def test_names_moved_out_of_training_stay_importable_from_it():
    from seq2seq_keras import atomic, config, run_folder, training

    assert training.load_model is run_folder.load_model and training.load_checkpoint is run_folder.load_checkpoint
    assert training.TrainConfig is config.TrainConfig and training.build_model is config.build_model
    assert training.atomic_write_text is atomic.atomic_write_text
    assert issubclass(training.NonFiniteLossError, run_folder.TrainingError)
