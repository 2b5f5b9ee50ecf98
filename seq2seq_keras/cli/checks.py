"""The command line's checks of what a user passes, before any work: paths (a run folder, a corpus, a file to
write), each a one-line :class:`CommandError` saying what was wrong and what to do; and the folders a failed
command made (:func:`removing_new_folders`).

Plain Python: nothing here imports TensorFlow, so a mistake is reported in a fraction of a second. What a
check needs from the library is read without importing it (:func:`~seq2seq_keras.cli.flags.static_default`)
or from modules that do not load TensorFlow (:mod:`seq2seq_keras.data.corpora`).
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path

from .flags import static_default


class CommandError(Exception):
    """An error for the user: printed as one line without a traceback, exit status 2."""


#: The file every SavedModel holds (TensorFlow's fixed name).
SAVED_MODEL_FILE = "saved_model.pb"


def _run_file(name: str) -> str:
    return static_default("training.run_folder", name)


def export_of(path: str | os.PathLike) -> Path | None:
    """The SavedModel version folder that ``path`` is (``saved_models/demo/1``) or holds as its latest version
    (``saved_models/demo``), or ``None`` where ``path`` is no export."""
    path = Path(path)
    if (path / SAVED_MODEL_FILE).is_file():
        return path
    if not path.is_dir():
        return None
    versions = sorted(
        (int(child.name), child)
        for child in path.iterdir()
        if child.name.isdigit() and (child / SAVED_MODEL_FILE).is_file()
    )
    return versions[-1][1] if versions else None


def _recorded_run(version: Path) -> str | None:
    """The run folder an export records it came from, if that still exists."""
    settings = version / "assets.extra" / static_default("serving.export", "SETTINGS_FILE")
    try:
        recorded = json.loads(settings.read_text(encoding="utf-8")).get("source_model")
    except (OSError, ValueError, AttributeError):
        return None
    return recorded if recorded and os.path.exists(recorded) else None


def check_model_path(path: str, flag: str = "--model") -> None:
    """``path`` may be a run folder written by ``train`` (or its ``.keras`` file): a missing path, a SavedModel
    export and a file that is no ``.keras`` model are a :class:`CommandError` saying what to pass instead.
    (A folder without a model, an unfinished run, is :func:`~seq2seq_keras.training.run_folder.load_model`'s
    to explain.)"""
    model_file = _run_file("MODEL_FILE")
    if not os.path.exists(path):
        raise CommandError(
            f"No trained model at {path} (no such file or folder): pass a run folder written by "
            f"'seq2seq-keras train --out FOLDER' (or its {model_file}), or train one first: "
            f"seq2seq-keras train --out {path}"
        )
    version = export_of(path)
    if version is not None:
        source = _recorded_run(version)
        instead = (
            f"for translations here, pass the run folder it was exported from: {flag} {source}"
            if source
            else "for translations here, pass the run folder it was exported from"
        )
        raise CommandError(
            f"{path} is a SavedModel export for TF Serving, not a run folder: check it with 'seq2seq-keras "
            f"check-servable {version}', query it through TF Serving (REST or gRPC; 'seq2seq-keras plot --server URL "
            f"--model-name NAME' draws its attention), or, {instead}."
        )
    if os.path.isfile(path) and not path.endswith(".keras"):
        raise CommandError(
            f"{path} is not a Keras model: {flag} takes a run folder written by 'seq2seq-keras train' or the "
            f"{model_file} file inside it."
        )


def check_export_path(path: str) -> None:
    """``check-servable``'s ``path`` must be an export (a version folder, or a model folder holding versions);
    a missing path, a file or a run folder is a :class:`CommandError`."""
    if not os.path.exists(path):
        raise CommandError(
            f"{path} does not exist: pass an exported version folder such as saved_models/demo/1 "
            "(write one with 'seq2seq-keras export --model RUN_FOLDER --name NAME')."
        )
    if not os.path.isdir(path):
        raise CommandError(f"{path} is not a folder: pass an exported version folder such as saved_models/demo/1.")
    if export_of(path) is not None:
        return
    if (Path(path) / _run_file("MODEL_FILE")).is_file():
        raise CommandError(
            f"{path} is a run folder, not an export: export it first with 'seq2seq-keras export --model {path} "
            "--name NAME', then check the folder that prints."
        )
    if not any((child / SAVED_MODEL_FILE).is_file() for child in Path(path).iterdir() if child.is_dir()):
        raise CommandError(
            f"{path} holds no SavedModel ({SAVED_MODEL_FILE}, in it or in a version folder): pass an exported "
            "version folder such as saved_models/demo/1 (write one with 'seq2seq-keras export')."
        )


def check_data(value: str, flag: str = "--data") -> str:
    """A corpus name (:data:`~seq2seq_keras.data.corpora.KNOWN_CORPORA`) or an existing file; else a
    :class:`CommandError`. (Whether a named corpus is on this machine is the loader's to say.)"""
    from ..data.corpora import KNOWN_CORPORA

    if value in KNOWN_CORPORA or os.path.isfile(value):
        return value
    what = "a folder" if os.path.isdir(value) else "neither a known corpus nor an existing file"
    raise CommandError(
        f"{flag} {value} is {what}: pass one of {', '.join(KNOWN_CORPORA)}, or the path of a Tatoeba/Anki .txt "
        "file (English<TAB>other language per line)."
    )


def check_folder_to_write(path: str, flag: str) -> None:
    """``path`` will be a folder: it must not be an existing file, nor below one."""
    for folder in (Path(path), *Path(path).parents):
        if folder.exists():
            if not folder.is_dir():
                where = "is a file" if folder == Path(path) else f"is below {folder}, which is a file"
                raise CommandError(f"{flag} {path} {where}: pass a folder path.")
            return


def check_file_to_write(path: str, flag: str, suffixes: dict[str, str] | None = None) -> None:
    """``path`` will be a file: not an existing folder, in an existing folder, and (with ``suffixes``,
    ``{suffix: description}``) of a kind that can be written."""
    if os.path.isdir(path):
        raise CommandError(f"{flag} {path} is a folder: pass a file name, e.g. {Path(path) / 'attention.png'}.")
    parent = Path(path).parent
    if not parent.is_dir():
        raise CommandError(f"{flag} {path}: the folder {parent} does not exist; create it or pass another path.")
    suffix = Path(path).suffix.lower().lstrip(".")
    if suffixes is not None and suffix not in suffixes:
        raise CommandError(
            f"{flag} {path}: cannot write {'a .' + suffix if suffix else 'a file without an extension'}; "
            f"end the name with one of {', '.join('.' + s for s in sorted(suffixes))}."
        )


def check_file_to_read(path: str, flag: str, what: str) -> None:
    """``path`` must be an existing file (``what`` says what it holds)."""
    if not os.path.isfile(path):
        problem = "is a folder" if os.path.isdir(path) else "does not exist"
        raise CommandError(f"{flag} {path} {problem}: pass a file of {what}.")


def new_folders(path: str | os.PathLike) -> list[Path]:
    """The folders that creating ``path`` (with its parents) would make, deepest first."""
    made = []
    for folder in (Path(path), *Path(path).parents):
        if folder.exists():
            break
        made.append(folder)
    return made


@contextlib.contextmanager
def removing_new_folders(*paths):
    """Inside the block, a command may create the folders ``paths`` (``None``: none); if the block fails (an
    exception, or ``state["failed"]`` set), each folder it made is removed again while it is still empty,
    deepest first. A folder that existed before, or that holds anything, is never touched."""
    made = [folder for path in paths if path is not None for folder in new_folders(path)]
    state = {"failed": False}
    try:
        yield state
    except BaseException:
        state["failed"] = True
        raise
    finally:
        if state["failed"]:
            for folder in sorted(made, key=lambda f: len(f.parts), reverse=True):
                with contextlib.suppress(OSError):
                    folder.rmdir()  # only an empty folder goes
