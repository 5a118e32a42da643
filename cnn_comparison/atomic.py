"""Write outputs so an interrupted stage never leaves a file that looks finished."""
from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
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
        if directory and path.is_dir():
            replace_directory(temporary, path)
        else:
            os.replace(temporary, path)
    except BaseException:
        _remove(temporary)
        raise


_RENAME_EXCHANGE = 2  # linux/fs.h
_AT_FDCWD = -100


def replace_directory(new: Path, target: Path) -> None:
    """Put ``new`` in place of the existing directory ``target`` in one step.

    os.replace cannot replace a non-empty directory; Linux's renameat2(RENAME_EXCHANGE) swaps the two
    atomically, so a reader (or a crash) sees all of the old or all of the new. Elsewhere, or on a file
    system without it, the old directory is renamed aside first: a crash between the two renames leaves
    the old results whole in ``.previous.<name>``.
    """
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    exchange = getattr(libc, "renameat2", None)
    if exchange is not None and exchange(_AT_FDCWD, os.fsencode(new), _AT_FDCWD, os.fsencode(target),
                                         _RENAME_EXCHANGE) == 0:
        _remove(new)  # now the old directory
        return
    previous = target.parent / f".previous.{target.name}"
    _remove(previous)
    os.replace(target, previous)
    os.replace(new, target)
    _remove(previous)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()
