"""Record what produced a result, so a metrics file can be trusted later."""
from __future__ import annotations

import os
import platform
from importlib import metadata
from pathlib import Path
from typing import Any, Mapping

from cnn_comparison.params import Params

_LIBRARIES = ("tensorflow", "keras", "numpy", "scikit-learn", "pandas", "pydantic", "dvc", "dvclive")
_CPU_FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx_bf16")  # the ones that change which kernels run


def library_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in _LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def machine(cpuinfo: Path = Path("/proc/cpuinfo")) -> dict[str, Any]:
    """The CPU model and its vector extensions: bit-for-bit results hold only on the same kind."""
    model, flags = platform.processor() or platform.machine(), set()
    if cpuinfo.is_file():
        for line in cpuinfo.read_text(errors="replace").splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name":
                model = value.strip()
            elif key.strip() == "flags":
                flags = set(value.split())
            if model and flags:
                break
    return {"cpu_model": model, "cpu_count": os.cpu_count(), "cpu_flags": [flag for flag in _CPU_FLAGS if flag in flags],
            "platform": platform.platform()}


def runtime(determinism: Mapping[str, Any]) -> dict[str, Any]:
    """How a step ran: determinism and thread settings, library versions. The machine it ran on goes
    to the run's timings file with the seconds, so a rerun elsewhere on the same kind of machine
    leaves the metrics file byte for byte the same."""
    return {"determinism": dict(determinism), "library_versions": library_versions()}


def provenance(params: Params, model_name: str, seed: int, training_runtime: Mapping | None,
               evaluation_runtime: Mapping) -> list[dict]:
    """What produced a metrics file: the model's params (validated, defaults filled in) and seed,
    split, limits, and the runtimes.

    Returned as a one-element list on purpose: DVC's metrics table skips lists,
    so `dvc metrics show` stays a table of numbers while the JSON keeps everything.
    """
    return [{
        "params": params.models[model_name].model_dump(mode="json"),
        "seed": seed,
        "split": params.split.model_dump(mode="json"),
        "limits": params.limits.model_dump(mode="json"),
        "training": dict(training_runtime) if training_runtime else None,
        "evaluation": dict(evaluation_runtime),
        # kept at the top for readers of older metrics files
        "library_versions": dict(evaluation_runtime["library_versions"]),
    }]
