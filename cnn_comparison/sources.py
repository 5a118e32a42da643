"""Fetch the four IDX files of a dataset from an ordered list of sources.

Each source is tried in turn; the first whose files all match the expected
SHA-256 (of the decompressed bytes) wins.  Every failure is reported in one
line, and if nothing verifies the error lists every source and why.
"""
from __future__ import annotations

import gzip
import hashlib
import os
import subprocess
import tarfile
import tempfile
import urllib.request
import zlib
from pathlib import Path
from typing import Callable, Mapping

from cnn_comparison.params import FILE_KEYS, DataFile, Dataset, DirectorySource, PackageSource, Source, UrlSource

_GZIP_MAGIC = b"\x1f\x8b"


class SourceFailure(Exception):
    """One source could not provide verified files; the next one is tried."""


class ChecksumMismatch(SourceFailure):
    pass


class NoVerifiedSource(RuntimeError):
    """Every source failed; the message lists each one with its reason."""


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def decompress_if_gzip(data: bytes, name: str) -> bytes:
    """Raw bytes of ``name``; a damaged archive fails this source (naming the file), not the download."""
    if data[:2] != _GZIP_MAGIC:
        return data
    try:
        return gzip.decompress(data)
    except (OSError, EOFError, zlib.error) as error:  # bad CRC or header, truncated, corrupt deflate stream
        raise SourceFailure(f"{name}: damaged gzip file ({type(error).__name__}: {error})") from error


def verify_files(files: Mapping[str, bytes], expected: Mapping[str, DataFile]) -> None:
    """Raise ChecksumMismatch naming the file, the expected and the actual digest."""
    for key, spec in expected.items():
        if key not in files:
            raise SourceFailure(f"{spec.name} missing")
        actual = sha256_hex(files[key])
        if actual != spec.sha256:
            raise ChecksumMismatch(f"{spec.name}: checksum mismatch, expected sha256 {spec.sha256}, got {actual}")


def describe_source(source: Source) -> str:
    detail = source.url if isinstance(source, UrlSource) else (
        source.package if isinstance(source, PackageSource) else source.path)
    return f"{source.type} {detail}"


def _read_from_directory(directory: Path, names: Mapping[str, str]) -> dict[str, bytes]:
    if not directory.is_dir():
        raise SourceFailure(f"directory {directory} does not exist")
    files = {}
    for key, name in names.items():
        for candidate in (directory / name, directory / f"{name}.gz"):
            if candidate.is_file():
                files[key] = decompress_if_gzip(candidate.read_bytes(), str(candidate))
                break
        else:
            raise SourceFailure(f"neither {name} nor {name}.gz in {directory}")
    return files


def fetch_url(source: UrlSource, names: Mapping[str, str], scratch: Path) -> dict[str, bytes]:
    """Canonical location: ``url`` + file name + ``suffix`` (``.gz`` on the public buckets)."""
    files = {}
    for key, name in names.items():
        address = f"{source.url.rstrip('/')}/{name}{source.suffix}"
        try:
            with urllib.request.urlopen(address, timeout=source.timeout_seconds) as response:
                files[key] = decompress_if_gzip(response.read(), address)
        except OSError as error:  # URLError, timeouts and resets are all OSError
            raise SourceFailure(f"{address}: {getattr(error, 'reason', error)}") from error
    return files


def fetch_directory(source: DirectorySource, names: Mapping[str, str], scratch: Path) -> dict[str, bytes]:
    """A local or shared directory; ``$VARIABLES`` and ``~`` in the path are expanded."""
    raw_path = source.path
    expanded = os.path.expanduser(os.path.expandvars(raw_path))
    if "$" in expanded:
        raise SourceFailure(f"{raw_path}: environment variable not set")
    return _read_from_directory(Path(expanded), names)


def _run(command: list[str], cwd: Path, timeout: float) -> None:
    try:
        subprocess.run(command, cwd=cwd, check=True, capture_output=True, text=True, timeout=timeout)
    except FileNotFoundError as error:
        raise SourceFailure(f"`{command[0]}` is not installed") from error
    except subprocess.TimeoutExpired as error:
        raise SourceFailure(f"`{' '.join(command)}` timed out after {timeout:.0f} s") from error
    except subprocess.CalledProcessError as error:
        last_line = (error.stderr or error.stdout or "").strip().splitlines()[-1:] or ["no output"]
        raise SourceFailure(f"`{' '.join(command)}` failed: {last_line[0]}") from error


def fetch_debian_package(source: PackageSource, names: Mapping[str, str], scratch: Path) -> dict[str, bytes]:
    """``apt-get download`` + ``dpkg-deb -x``: needs no root, only the package lists."""
    _run(["apt-get", "download", source.package], scratch, source.timeout_seconds)
    packages = sorted(scratch.glob("*.deb"))
    if not packages:
        raise SourceFailure(f"apt-get download {source.package} produced no .deb")
    unpacked = scratch / "unpacked"
    _run(["dpkg-deb", "-x", str(packages[0]), str(unpacked)], scratch, source.timeout_seconds)
    return _read_from_directory(unpacked / source.path, names)


def fetch_npm_package(source: PackageSource, names: Mapping[str, str], scratch: Path) -> dict[str, bytes]:
    """``npm pack`` fetches the tarball without installing anything."""
    _run(["npm", "pack", "--silent", source.package], scratch, source.timeout_seconds)
    tarballs = sorted(scratch.glob("*.tgz"))
    if not tarballs:
        raise SourceFailure(f"npm pack {source.package} produced no tarball")
    unpacked = scratch / "unpacked"
    with tarfile.open(tarballs[0]) as archive:
        archive.extractall(unpacked, filter="data")
    return _read_from_directory(unpacked / source.path, names)


Fetcher = Callable[[Source, Mapping[str, str], Path], dict]
FETCHERS: dict[str, Fetcher] = {
    "url": fetch_url,
    "directory": fetch_directory,
    "debian_package": fetch_debian_package,
    "npm_package": fetch_npm_package,
}


def acquire(
    dataset: str,
    entry: Dataset,
    fetchers: Mapping[str, Fetcher] = FETCHERS,
    log: Callable[[str], None] = print,
) -> tuple[dict[str, bytes], str]:
    """Return (verified decompressed files by key, description of the source used).

    ``entry`` is the validated ``datasets.<dataset>`` (params.py), so every source's type and
    defaults are already checked and filled in."""
    files = {key: entry.files[key] for key in FILE_KEYS}
    names = {key: spec.name for key, spec in files.items()}
    failures = []
    for source in entry.sources:
        description = describe_source(source)
        fetcher = fetchers[source.type]
        try:
            with tempfile.TemporaryDirectory(prefix="download-") as scratch:
                fetched = fetcher(source, names, Path(scratch))
            verify_files(fetched, files)
        except (SourceFailure, OSError, EOFError, tarfile.TarError) as error:
            log(f"[download {dataset}] source failed: {description}: {error}")
            failures.append(f"  - {description}: {error}")
            continue
        log(f"[download {dataset}] verified all {len(fetched)} files from {description}")
        return fetched, description
    raise NoVerifiedSource(
        f"no source provided verified files for dataset {dataset!r}; tried:\n" + "\n".join(failures)
        + f"\nFix a source in params.yaml (datasets.{dataset}.sources) or put the files in a mirror directory."
    )
