"""Record what produced a result, so a metrics file can be trusted later."""
from __future__ import annotations

import platform
from importlib import metadata

_LIBRARIES = ("tensorflow", "keras", "numpy", "scikit-learn", "pandas", "dvc", "dvclive")


def library_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in _LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions
