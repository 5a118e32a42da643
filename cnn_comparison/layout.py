"""The files of one run's results directory (``results/<study>/<model>/seed_<seed>/`` in dvc.yaml).

dvc.yaml names the directory; the names inside it are fixed here, so the stages that write them,
the aggregate that reads them and dvc.yaml's `outs` agree (the end-to-end test runs all three).
Every model has named heads (a single-task model's one head is named after its dataset) and
evaluate writes one file per head into directories, so single-task and multitask models have the
same outputs and one DVC matrix stage covers both.
"""
from __future__ import annotations

from pathlib import Path
from typing import Mapping

MODEL_FILE = "model.keras"
LIVE_DIRECTORY = "live"  # DVCLive: live/metrics.json (training summary), live/plots/metrics/...
METRICS_FILE = "metrics.json"
REPORTS_DIRECTORY = "reports"  # <head>.txt: the scikit-learn classification report
CONFUSION_DIRECTORY = "confusion"  # <head>.csv: DVC's confusion plot (counts)
CONFUSION_NORMALIZED_DIRECTORY = "confusion_normalized"  # <head>.csv: the same rows, per-class recall
FIGURES_DIRECTORY = "figures"  # confusion_<head>.png, samples_<head>.png
EVALUATION_OUTPUTS = (METRICS_FILE, REPORTS_DIRECTORY, CONFUSION_DIRECTORY, CONFUSION_NORMALIZED_DIRECTORY,
                      FIGURES_DIRECTORY)


def stage_name(step: str, study: str, model_name: str, seed: int) -> str:
    """A run's stage in dvc.yaml (its ``matrix`` blocks), e.g. ``train_fashion_cnns@fmnist_3-42``."""
    return f"{step}_{study}@{model_name}-{seed}"


def run_directory(study_results_dir: Path, model_name: str, seed: int) -> Path:
    """``results/<study>/<model>/seed_<seed>/``: one training run, so adding a seed adds a directory."""
    return Path(study_results_dir) / model_name / f"seed_{seed}"


def data_directories(data_root: Path, datasets_by_head: Mapping[str, str]) -> dict[str, Path]:
    """``data/split/<dataset>`` (or ``data/prepared/<dataset>``) for each head of a model."""
    return {head: Path(data_root) / dataset for head, dataset in datasets_by_head.items()}
