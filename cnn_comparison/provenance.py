"""Record what produced a result, so a metrics file can be trusted later."""
from __future__ import annotations

import platform
from typing import Mapping
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


def provenance(model_params: Mapping, params: Mapping) -> list[dict]:
    """What produced a metrics file: the model's params, split, limits and library versions.

    Returned as a one-element list on purpose: DVC's metrics table skips lists,
    so `dvc metrics show` stays a table of numbers while the JSON keeps everything.
    """
    return [{
        "params": dict(model_params),
        "split": dict(params["split"]),
        "limits": dict(params.get("limits") or {}),
        "library_versions": library_versions(),
    }]
