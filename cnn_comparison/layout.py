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

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

MODEL_FILE = "model.keras"
LIVE_DIRECTORY = "live"  # DVCLive: live/metrics.json (training summary), live/plots/metrics/...; evaluate copies it
METRICS_FILE = "metrics.json"
REPORTS_DIRECTORY = "reports"  # <head>.txt: the scikit-learn classification report
CONFUSION_DIRECTORY = "confusion"  # <head>.csv: DVC's confusion plot (counts)
CONFUSION_NORMALIZED_DIRECTORY = "confusion_normalized"  # <head>.csv: the same rows, per-class recall
FIGURES_DIRECTORY = "figures"  # confusion_<head>.png, samples_<head>.png
EVALUATION_DIRECTORIES = (LIVE_DIRECTORY, REPORTS_DIRECTORY, CONFUSION_DIRECTORY, CONFUSION_NORMALIZED_DIRECTORY,
                          FIGURES_DIRECTORY)


TIMINGS_FILE = "timings.json"  # wall and CPU seconds, host: the one file of a run that differs between reruns
# What read_run takes from TIMINGS_FILE: numbers that differ between reruns of the same run.
TIMED_KEYS = ("training_time_seconds", "training_cpu_seconds", "evaluation_time_seconds", "elapsed_wall_seconds",
              "elapsed_cpu_seconds", "inference_images_per_second")
RUN_STEPS = ("train", "evaluate")  # per run: `<step>_<study>@<model>-<seed>`
GROUP_STEPS = ("download", "prepare", "split", "aggregate")  # per dataset or study: `<step>@<name>`


def stage_name(step: str, study: str, model_name: str, seed: int) -> str:
    """A run's stage in dvc.yaml (its ``matrix`` blocks), e.g. ``train_fashion_cnns@fmnist_3-42``."""
    return f"{step}_{study}@{model_name}-{seed}"


@dataclass(frozen=True)
class Stage:
    """Which instance of a looped stage is running: dataset or study, and for a run its model and seed."""

    step: str
    group: str  # the dataset (download, prepare, split) or the study
    model: str | None = None
    seed: int | None = None


def current_stage(given: str | None, step: str) -> Stage:
    """The running ``step`` stage: ``--stage`` (``given``), or the name DVC sets in ``DVC_STAGE`` for
    every command it runs.

    dvc.yaml's commands are constant strings: a name from params.yaml never passes through the
    shell DVC runs them with; the stage learns which model, seed or dataset it is from here.
    """
    name = given or os.environ.get("DVC_STAGE")
    if not name:
        raise ValueError("no stage given: run it with `dvc repro <stage>` (DVC names it in DVC_STAGE) or pass "
                         "--stage, e.g. --stage train_fashion_cnns@fmnist_3-42")
    return parse_stage(name, step)


def parse_stage(name: str, step: str) -> Stage:
    """``train_<study>@<model>-<seed>``, ``aggregate@<study>``, ``download@<dataset>``...; DVC prefixes
    ``<path>/dvc.yaml:`` when run from another directory. Names are checked against params.yaml after."""
    address = name.rpartition("dvc.yaml:")[2]
    base, _, key = address.partition("@")
    if step in GROUP_STEPS and base == step and key:
        return Stage(step, key)
    if step in RUN_STEPS and base.startswith(f"{step}_") and key:
        model, _, seed = key.rpartition("-")
        if model and seed.isdigit():
            return Stage(step, base.removeprefix(f"{step}_"), model, int(seed))
    form = f"{step}_<study>@<model>-<seed>" if step in RUN_STEPS else f"{step}@<name>"
    raise ValueError(f"stage {name!r} is not a {step} stage; expected {form}")


def run_directory(study_results_dir: Path, model_name: str, seed: int) -> Path:
    """``<root>/<study>/<model>/seed_<seed>/`` (root ``models`` or ``metrics``): one training run, so
    adding a seed adds a directory."""
    return Path(study_results_dir) / model_name / f"seed_{seed}"


def data_directories(data_root: Path, datasets_by_head: Mapping[str, str]) -> dict[str, Path]:
    """``data/split/<dataset>`` (or ``data/prepared/<dataset>``) for each head of a model."""
    return {head: Path(data_root) / dataset for head, dataset in datasets_by_head.items()}


def read_run(run_dir: Path) -> dict:
    """A run's metrics.json with the seconds of its timings file (the table's time columns, per-epoch
    elapsed seconds) merged in: what the aggregate and the report compare. Missing timings read as None."""
    run_dir = Path(run_dir)
    record = json.loads((run_dir / METRICS_FILE).read_text())
    timings_path = run_dir / TIMINGS_FILE
    timings = json.loads(timings_path.read_text()) if timings_path.is_file() else {}
    for key in TIMED_KEYS:
        record[key] = timings.get(key)
    return record


def missing_stages(studies: Mapping[str, object], datasets: Mapping[str, object], pipeline: Mapping) -> list[str]:
    """What dvc.yaml (``pipeline``, as written) lacks for the studies and datasets params.yaml declares.

    DVC's matrix cannot loop over a dict's items (treeverse/dvc#10094), and a name from params.yaml
    must not decide a stage's name or paths before it has been checked, so each study has its own
    train/evaluate blocks and dvc.yaml lists the studies and datasets its loops cover.
    """
    stages = pipeline.get("stages") or {}
    problems = []
    for study in studies:
        for step in RUN_STEPS:
            block = stages.get(f"{step}_{study}")
            matrix = (block or {}).get("matrix") or {}
            if matrix.get("model") != f"${{studies.{study}.models}}" or matrix.get("seed") != f"${{studies.{study}.seeds}}":
                problems.append(f"studies.{study}: dvc.yaml has no stage {step}_{study} looping over its models and "
                                f"seeds; copy another study's {step}_<study> block and rename the study in it")
    for step, names, key in (("aggregate", studies, "studies"), *((step, datasets, "datasets")
                                                                   for step in ("download", "prepare", "split"))):
        looped = ((stages.get(step) or {}).get("foreach")) or []
        for name in names:
            if name not in looped:
                problems.append(f"{key}.{name}: add {name!r} to the foreach list of stage {step} in dvc.yaml")
    return problems
