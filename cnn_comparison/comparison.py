"""Tables that compare models, built with pandas from the per-model metrics."""
from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

import pandas as pd

COMPARISON_COLUMNS = {
    "model": "model",
    "dataset": "dataset",
    "accuracy": "test_accuracy",
    "precision_macro": "precision",
    "recall_macro": "recall",
    "f1_macro": "f1",
    "loss": "test_loss",
    "training_time_seconds": "training_time_seconds",
    "training_cpu_seconds": "training_cpu_seconds",
    "parameter_count": "parameter_count",
    "epochs_run": "epochs_run",
}


def comparison_table(metrics: Sequence[Mapping]) -> pd.DataFrame:
    """One row per model, in params.yaml order."""
    table = pd.DataFrame([{column: entry[key] for key, column in COMPARISON_COLUMNS.items()} for entry in metrics])
    return table.reset_index(drop=True)


def best_models(table: pd.DataFrame) -> dict[str, str]:
    """Best test accuracy per dataset; ties go to the higher F1, then to the earlier model."""
    best = {}
    for dataset, rows in table.groupby("dataset", sort=False):
        ranked = rows.sort_values(["test_accuracy", "f1"], ascending=False, kind="stable")
        best[dataset] = ranked.iloc[0]["model"]
    return best


def comparison_markdown(table: pd.DataFrame, best: Mapping[str, str]) -> str:
    shown = table.copy()
    for column in ("test_accuracy", "precision", "recall", "f1", "test_loss"):
        shown[column] = shown[column].map(lambda value: f"{value:.4f}")
    for column in ("training_time_seconds", "training_cpu_seconds"):
        shown[column] = shown[column].map(lambda value: f"{value:.1f}")
    shown["parameter_count"] = shown["parameter_count"].map(lambda value: f"{value:,}")
    lines = [shown.to_markdown(index=False), ""]
    lines += [f"Best model on {dataset}: **{model}**" for dataset, model in best.items()]
    return "\n".join(lines) + "\n"


def read_live_series(live_dir: str | Path, metric: str) -> pd.Series:
    """One DVCLive metric history (``eval/accuracy`` etc.) indexed by epoch (1-based)."""
    path = Path(live_dir) / "plots" / "metrics" / f"{metric}.tsv"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no DVCLive history for {metric!r}; rerun the train stage")
    frame = pd.read_csv(path, sep="\t")
    return pd.Series(frame.iloc[:, -1].to_numpy(), index=frame["step"].to_numpy() + 1, name=metric)


def history_table(series_by_model: Mapping[str, pd.Series]) -> pd.DataFrame:
    """Wide table: one row per epoch, one column per model (empty after a model stopped)."""
    table = pd.DataFrame(dict(series_by_model))
    table.index.name = "epoch"
    return table


def multitask_table(dedicated: Mapping[str, Mapping], multitask: Mapping[str, Mapping]) -> pd.DataFrame:
    """``dedicated[task]`` and ``multitask[task]`` are metrics dicts; one row per (model, task)."""
    rows = []
    for kind, by_task in (("dedicated", dedicated), ("multitask", multitask)):
        for task, metrics in by_task.items():
            rows.append({"model": kind, "task": task, "accuracy": metrics["accuracy"], "f1": metrics["f1_macro"]})
    return pd.DataFrame(rows)
