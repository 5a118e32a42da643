"""Write outputs so an interrupted stage never leaves a file that looks finished."""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Iterator


def write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write via a temp file in the same directory, then rename (atomic on POSIX)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".partial")
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise


def write_text(path: str | os.PathLike, text: str) -> None:
    write_bytes(path, text.encode("utf-8"))


def write_json(path: str | os.PathLike, payload: Any) -> None:
    write_text(path, json.dumps(payload, indent=2, sort_keys=False) + "\n")


@contextlib.contextmanager
def staged_path(path: str | os.PathLike, directory: bool = False) -> Iterator[Path]:
    """Yield a sibling temp path to fill; move it onto ``path`` only on success.

    Works for files written by libraries that want a path (``model.save``,
    ``np.save``, matplotlib) and for whole output directories.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Keep the suffix: Keras and matplotlib pick the format from it.
    temporary = path.parent / f".partial.{path.name}"
    _remove(temporary)
    if directory:
        temporary.mkdir()
    try:
        yield temporary
        if directory:  # os.replace cannot replace a non-empty directory; files are swapped atomically
            _remove(path)
        os.replace(temporary, path)
    except BaseException:
        _remove(temporary)
        raise


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()
