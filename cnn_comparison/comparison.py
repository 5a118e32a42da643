"""Tables that compare the models of one study, built with pandas from their metrics files."""
from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

SCORE_COLUMNS = {
    "accuracy": "test_accuracy",
    "precision_macro": "precision",
    "recall_macro": "recall",
    "f1_macro": "f1",
    "loss": "test_loss",
}
TRAINING_COLUMNS = ("training_time_seconds", "training_cpu_seconds", "parameter_count", "epochs_run")


def heads(record: Mapping) -> dict[str | None, Mapping]:
    """A metrics file's scores per head: ``{None: record}`` for a single-task model, else per task."""
    if "accuracy" in record:
        return {None: record}
    return {key: value for key, value in record.items() if isinstance(value, Mapping) and "accuracy" in value}


def comparison_table(records: Sequence[Mapping]) -> pd.DataFrame:
    """One row per model and head, in the order given; a multitask model has a row per task."""
    rows = []
    for record in records:
        for head, scores in heads(record).items():
            rows.append({"model": record["model"], "head": head or "", "dataset": scores["dataset"],
                         **{column: scores[key] for key, column in SCORE_COLUMNS.items()},
                         **{column: record[column] for column in TRAINING_COLUMNS}})
    return pd.DataFrame(rows)


def best_model(table: pd.DataFrame) -> str | None:
    """Highest test accuracy; ties go to the higher macro F1, then to the earlier row."""
    if table.empty:
        return None
    ranked = table.sort_values(["test_accuracy", "f1"], ascending=False, kind="stable")
    return str(ranked.iloc[0]["model"])


def best_models(table: pd.DataFrame) -> dict[str, str]:
    """The best model per dataset."""
    return {dataset: best_model(rows) for dataset, rows in table.groupby("dataset", sort=False)}


def comparison_markdown(table: pd.DataFrame, best: Mapping[str, str]) -> str:
    shown = table.copy()
    for column in SCORE_COLUMNS.values():
        shown[column] = shown[column].map(lambda value: f"{value:.4f}")
    for column in ("training_time_seconds", "training_cpu_seconds"):
        shown[column] = shown[column].map(lambda value: f"{value:.1f}")
    shown["parameter_count"] = shown["parameter_count"].map(lambda value: f"{value:,}")
    if not shown["head"].astype(bool).any():
        shown = shown.drop(columns="head")
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


def validation_history(live_dir: str | Path, record: Mapping, metric: str) -> dict[str, pd.Series]:
    """Validation ``metric`` (accuracy or loss) per epoch, per head, labelled for a legend."""
    model = record["model"]
    return {model if head is None else f"{model} ({head})":
            read_live_series(live_dir, f"eval/{metric}" if head is None else f"eval/{head}_{metric}")
            for head in heads(record)}


ELAPSED_METRICS = ("elapsed_wall_seconds", "elapsed_cpu_seconds")  # logged per epoch by training.ElapsedTime


def elapsed_history(live_dir: str | Path) -> pd.DataFrame | None:
    """Wall and CPU seconds since training began, per epoch; None for runs from before they were logged."""
    try:
        # DVCLive files every non-validation value of Keras' epoch logs under train/.
        return pd.DataFrame({metric: read_live_series(live_dir, f"train/{metric}") for metric in ELAPSED_METRICS})
    except FileNotFoundError:
        return None


def accuracy_by_time(accuracy: Mapping[str, pd.Series], elapsed: pd.DataFrame | None) -> pd.DataFrame:
    """Rows of (model, epoch, validation_accuracy, elapsed wall/CPU seconds) for models whose times were logged."""
    frames = []
    for label, series in accuracy.items():
        frame = pd.DataFrame({"epoch": series.index, "model": label, "validation_accuracy": series.to_numpy()})
        if elapsed is None:
            for metric in ELAPSED_METRICS:
                frame[metric] = np.nan
        else:
            frame = frame.join(elapsed, on="epoch")
        frames.append(frame)
    columns = ["epoch", "model", "validation_accuracy", *ELAPSED_METRICS]
    return pd.concat(frames, ignore_index=True)[columns] if frames else pd.DataFrame(columns=columns)


def time_to_accuracy(history: pd.DataFrame, thresholds: Sequence[float]) -> pd.DataFrame:
    """Per model and threshold, the first epoch whose validation accuracy reaches it, and the wall
    and CPU seconds since training began at that epoch's end (validation included); NaN when the
    threshold was never reached, or when the run logged no times."""
    rows = []
    for model, frame in history.groupby("model", sort=False):
        frame = frame.sort_values("epoch")
        for threshold in thresholds:
            reached = frame[frame["validation_accuracy"] >= threshold]
            first = reached.iloc[0] if len(reached) else None
            rows.append({"model": model, "threshold": threshold, "epochs_run": int(frame["epoch"].max()),
                         "epoch": np.nan if first is None else int(first["epoch"]),
                         **{metric: np.nan if first is None else first[metric] for metric in ELAPSED_METRICS}})
    return pd.DataFrame(rows, columns=["model", "threshold", "epochs_run", "epoch", *ELAPSED_METRICS])


def time_to_accuracy_markdown(table: pd.DataFrame, thresholds: Sequence[float], without_logs: Sequence[str] = ()) -> str:
    """One row per model, one column per threshold: when it was first reached, or why there is no time.

    ``without_logs``: models whose training log is not in the workspace, listed so they are not
    silently missing from the comparison.
    """
    if not thresholds:
        return "No accuracy thresholds declared for this study (`studies.<study>.accuracy_thresholds`).\n"
    lines = ["| model | " + " | ".join(f"first reaches {threshold:.2f}" for threshold in thresholds) + " |",
             "|---|" + "---:|" * len(thresholds)]
    for model, rows in table.groupby("model", sort=False):
        cells = []
        for row in rows.itertuples():
            if np.isnan(row.epoch):
                cells.append(f"not in {row.epochs_run} epochs")
            elif np.isnan(row.elapsed_wall_seconds):
                cells.append(f"epoch {int(row.epoch)} (times not logged)")
            else:
                cells.append(f"{row.elapsed_wall_seconds:,.0f} s wall, {row.elapsed_cpu_seconds:,.0f} s CPU (epoch {int(row.epoch)})")
        lines.append(f"| {model} | " + " | ".join(cells) + " |")
    for model in without_logs:
        lines.append(f"| {model} | " + " | ".join(["no training log in the workspace"] * len(thresholds)) + " |")
    return "\n".join(lines) + "\n\nValidation accuracy at the end of each epoch; seconds since training began, validation included.\n"


def long_history(series_by_label: Mapping[str, pd.Series], column: str) -> pd.DataFrame:
    """Rows of (epoch, model, value): the long format a DVC plot template can colour by model."""
    frames = [pd.DataFrame({"epoch": series.index, "model": label, column: series.to_numpy()})
              for label, series in series_by_label.items()]
    return pd.concat(frames, ignore_index=True)


def wide_history(long: pd.DataFrame, column: str) -> pd.DataFrame:
    """One row per epoch, one column per model (empty after a model stopped), for the PNG figure."""
    table = long.pivot(index="epoch", columns="model", values=column)
    return table[list(dict.fromkeys(long["model"]))]
