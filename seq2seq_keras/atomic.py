"""Atomic file writes: a reader sees the old file or the new one, never half of one.

The file is written under a temporary name in the same folder, flushed to disk
(``fsync``), then renamed over the target with ``os.replace`` (atomic on POSIX and
Windows) and the folder entry is synced too. A kill or a full disk during the
write leaves the old file intact (the temporary file is removed, or swept up later
by :func:`remove_temporaries`).

Used by the run folder (:mod:`seq2seq_keras.training.run_folder`), the checkpoints
(:mod:`seq2seq_keras.training.checkpointing`), the exporter and the evaluation reports;
standard library only.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path

_TEMPORARY_PATTERN = re.compile(r"^\..+\.tmp(\.weights\.h5|\.keras)?$")


def fsync_directory(folder: str | os.PathLike) -> None:
    """Flush a folder's entries (a rename inside it) to disk; a no-op where unsupported."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # e.g. Windows cannot open folders
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _fsync_file(path: str | os.PathLike) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, *, keep_suffix: str = "") -> Iterator[str]:
    """Yield a temporary path next to ``path``; on success sync it and rename it to ``path``.

    ``keep_suffix`` is repeated at the end of the temporary name for writers that
    insist on one (``".weights.h5"``, ``".keras"``). If the body raises (a full
    disk, a failing writer, ``KeyboardInterrupt``) the temporary file is removed
    and ``path`` is untouched.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=f".tmp{keep_suffix}", dir=path.parent)
    os.close(fd)
    try:
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the file the usual permissions
        yield tmp
        _fsync_file(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    fsync_directory(path.parent)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` so that a reader sees the old file or the new one, never half."""
    with atomic_path(path) as tmp:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)


def atomic_save_model(model, path: str | os.PathLike) -> None:
    """``model.save`` (a ``.keras`` file) to a temporary file in the same folder, then rename into place."""
    with atomic_path(path, keep_suffix=".keras") as tmp:
        model.save(tmp)


def remove_temporaries(folder: str | os.PathLike) -> list[Path]:
    """Delete temporary files that an interrupted :func:`atomic_path` left in ``folder``."""
    removed = []
    folder = Path(folder)
    if folder.is_dir():
        for entry in folder.iterdir():
            if entry.is_file() and _TEMPORARY_PATTERN.match(entry.name):
                entry.unlink(missing_ok=True)
                removed.append(entry)
    return removed


def file_sha256(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
