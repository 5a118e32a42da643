"""The files of one model's results directory (``results/<study>/<model>/`` in dvc.yaml).

dvc.yaml names the directory; the names inside it are fixed here, so the stages that write them,
the aggregate that reads them and dvc.yaml's `outs` agree (the end-to-end test runs all three).
"""
from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

MODEL_FILE = "model.keras"
LIVE_DIRECTORY = "live"  # DVCLive: live/metrics.json (training summary), live/plots/metrics/...
METRICS_FILE = "metrics.json"


def head_file(model_dir: Path, stem: str, suffix: str, head: str | None) -> Path:
    """``report.txt`` for a single-task model, ``report_digits.txt`` for the multitask digits head."""
    return model_dir / (f"{stem}{suffix}" if head is None else f"{stem}_{head}{suffix}")


def head_directories(model_name: str, heads: Sequence[str | None], arguments: Sequence[str]) -> dict[str | None, Path]:
    """Pair each head with its data directory: ``DIR`` for a single-task model, ``TASK=DIR`` per task otherwise."""
    if list(heads) == [None]:
        if len(arguments) != 1 or "=" in arguments[0]:
            raise ValueError(f"{model_name}: expected one data directory, got {list(arguments)}")
        return {None: Path(arguments[0])}
    pairs: Mapping[str, str] = dict(argument.split("=", 1) for argument in arguments if "=" in argument)
    if len(pairs) != len(arguments) or set(pairs) != set(heads):
        raise ValueError(f"{model_name}: expected TASK=DIR for each of the tasks {sorted(heads)}, got {list(arguments)}")
    return {head: Path(pairs[head]) for head in heads}


def run_directory(study_results_dir: Path, model_name: str, seed: int) -> Path:
    """``results/<study>/<model>/seed_<seed>/``: one training run, so adding a seed adds a directory."""
    return Path(study_results_dir) / model_name / f"seed_{seed}"
