"""The files of one run's directories, named in dvc.yaml: ``models/<study>/<model>/seed_<seed>/``
(train's model and DVCLive log, DVC-cached) and ``metrics/<study>/<model>/seed_<seed>/`` (evaluate's
scores, confusion matrices, reports, figures and a copy of the training log, all tracked by git).

The split lets a clone without the DVC cache, or a remote, still read every number and curve and
rerun a study's aggregate, which depends on ``metrics/<study>`` alone. dvc.yaml names the
directories; the names inside them are fixed here, so the stages that write them, the aggregate
that reads them and dvc.yaml's `outs` agree (the end-to-end test runs all three).
Every model has named heads (a single-task model's one head is named after its dataset) and
evaluate writes one file per head into directories, so single-task and multitask models have the
same outputs and one DVC matrix stage covers both.
"""
from __future__ import annotations

from pathlib import Path
from typing import Mapping

MODEL_FILE = "model.keras"
LIVE_DIRECTORY = "live"  # DVCLive: live/metrics.json (training summary), live/plots/metrics/...; evaluate copies it
METRICS_FILE = "metrics.json"
REPORTS_DIRECTORY = "reports"  # <head>.txt: the scikit-learn classification report
CONFUSION_DIRECTORY = "confusion"  # <head>.csv: DVC's confusion plot (counts)
CONFUSION_NORMALIZED_DIRECTORY = "confusion_normalized"  # <head>.csv: the same rows, per-class recall
FIGURES_DIRECTORY = "figures"  # confusion_<head>.png, samples_<head>.png
EVALUATION_OUTPUTS = (METRICS_FILE, LIVE_DIRECTORY, REPORTS_DIRECTORY, CONFUSION_DIRECTORY,
                      CONFUSION_NORMALIZED_DIRECTORY, FIGURES_DIRECTORY)


def stage_name(step: str, study: str, model_name: str, seed: int) -> str:
    """A run's stage in dvc.yaml (its ``matrix`` blocks), e.g. ``train_fashion_cnns@fmnist_3-42``."""
    return f"{step}_{study}@{model_name}-{seed}"


def run_directory(study_results_dir: Path, model_name: str, seed: int) -> Path:
    """``<root>/<study>/<model>/seed_<seed>/`` (root ``models`` or ``metrics``): one training run, so
    adding a seed adds a directory."""
    return Path(study_results_dir) / model_name / f"seed_{seed}"


def data_directories(data_root: Path, datasets_by_head: Mapping[str, str]) -> dict[str, Path]:
    """``data/split/<dataset>`` (or ``data/prepared/<dataset>``) for each head of a model."""
    return {head: Path(data_root) / dataset for head, dataset in datasets_by_head.items()}
