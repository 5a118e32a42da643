"""PNG figures; the matching DVC plot data is written by the stages as CSV."""
from __future__ import annotations

from typing import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402


def confusion_figure(matrix: np.ndarray, class_names: Sequence[str], title: str) -> plt.Figure:
    figure, axis = plt.subplots(figsize=(8, 7))
    axis.imshow(matrix, cmap="Blues")
    axis.set_xticks(range(len(class_names)), class_names, rotation=45, ha="right")
    axis.set_yticks(range(len(class_names)), class_names)
    axis.set_xlabel("Predicted")
    axis.set_ylabel("Actual")
    axis.set_title(title)
    threshold = matrix.max() / 2 if matrix.size else 0
    for row in range(matrix.shape[0]):
        for column in range(matrix.shape[1]):
            axis.text(column, row, int(matrix[row, column]), ha="center", va="center", fontsize=8,
                      color="white" if matrix[row, column] > threshold else "black")
    figure.tight_layout()
    return figure


def sample_grid_figure(images: np.ndarray, labels: np.ndarray, predictions: np.ndarray,
                       class_names: Sequence[str], count: int = 9) -> plt.Figure:
    """The report's 3x3 grid of test images titled "GT: x, Pred: y"."""
    count = min(count, len(images))
    columns = 3
    rows = max(1, int(np.ceil(count / columns)))
    figure = plt.figure(figsize=(10, 10 * rows / 3))
    for index in range(count):
        axis = figure.add_subplot(rows, columns, index + 1)
        axis.imshow(images[index].reshape(28, 28), cmap="gray")
        axis.set_title(f"GT: {class_names[int(labels[index])]}, Pred: {class_names[int(predictions[index])]}", fontsize=9)
        axis.axis("off")
    figure.tight_layout()
    return figure


def curves_figure(table: pd.DataFrame, title: str, y_label: str, outlier_fence: float = 3.0) -> plt.Figure:
    """One line per column of ``table`` (indexed by epoch).

    The y-axis leaves out values more than ``outlier_fence`` interquartile ranges beyond the
    quartiles (Tukey's fences), so a first epoch far off (validation accuracy 0.15 before batch
    normalization settles) does not squeeze every curve into a thin band; the title says how
    many points that leaves off the scale.
    """
    figure, axis = plt.subplots(figsize=(10, 5))
    for column in table.columns:
        series = table[column].dropna()
        axis.plot(series.index, series.values, marker=".", label=column)
    values = table.to_numpy(dtype=float).ravel()
    values = values[~np.isnan(values)]
    if values.size:
        first_quartile, third_quartile = np.quantile(values, [0.25, 0.75])
        fence = outlier_fence * (third_quartile - first_quartile)
        shown = values[(values >= first_quartile - fence) & (values <= third_quartile + fence)]
        margin = 0.05 * (shown.max() - shown.min()) or 0.01
        axis.set_ylim(shown.min() - margin, shown.max() + margin)
        off_scale = values.size - shown.size
        if off_scale:
            title = f"{title} ({off_scale} off-scale point{'s' if off_scale > 1 else ''} not shown)"
    axis.set_xlabel("Epoch")
    axis.set_ylabel(y_label)
    axis.set_title(title)
    axis.grid(alpha=0.3)
    axis.legend()
    figure.tight_layout()
    return figure


def accuracy_by_time_figure(history: pd.DataFrame, thresholds: Sequence[float], title: str) -> plt.Figure:
    """Validation accuracy against wall seconds of training, one line per model, thresholds dashed.

    Time rather than epochs on the x-axis: models whose epochs cost different amounts compare fairly.
    Accuracies below the lowest threshold minus 5 points are left off the scale.
    """
    figure, axis = plt.subplots(figsize=(10, 5))
    for model, frame in history.groupby("model", sort=False):
        axis.plot(frame["elapsed_wall_seconds"], frame["validation_accuracy"], marker=".", label=model)
    for threshold in thresholds:
        axis.axhline(threshold, color="gray", linestyle="--", linewidth=0.8)
    if len(history):
        floor = min([*thresholds, history["validation_accuracy"].max()]) - 0.05
        axis.set_ylim(max(floor, history["validation_accuracy"].min()) - 0.005,
                      max(history["validation_accuracy"].max(), *thresholds, 0) + 0.005)
        axis.legend()
    axis.set_xlabel("Training time, wall seconds (validation included)")
    axis.set_ylabel("Validation accuracy")
    axis.set_title(title)
    axis.grid(alpha=0.3)
    figure.tight_layout()
    return figure


def accuracy_bars_figure(labels: Sequence[str], accuracies: Sequence[float], title: str,
                         minimums: Sequence[float] | None = None, maximums: Sequence[float] | None = None) -> plt.Figure:
    """Test accuracy per model (and head), one horizontal bar each, value printed on the bar.

    With ``minimums`` and ``maximums`` (over seeds) the bars are means and the error bars span
    min to max: bars whose ranges overlap may be one model's luck, not a better model.
    """
    figure, axis = plt.subplots(figsize=(8, 0.5 * len(labels) + 1.5))
    spread = None
    if minimums is not None and maximums is not None:
        spread = [np.subtract(accuracies, minimums), np.subtract(maximums, accuracies)]
    if spread is None:
        axis.bar_label(axis.barh(range(len(labels)), accuracies), fmt="%.4f", fontsize=8)
    else:  # the value goes past the error bar's end, where it cannot hide it
        axis.barh(range(len(labels)), accuracies, xerr=spread, capsize=3)
        for index, (mean, maximum) in enumerate(zip(accuracies, maximums)):
            axis.text(maximum + 0.002, index, f"{mean:.4f}", va="center", fontsize=8)
    axis.set_yticks(range(len(labels)), labels)
    axis.invert_yaxis()
    low = min(minimums if minimums is not None else accuracies, default=0.0)
    axis.set_xlim(max(0.0, low - 0.1), 1.0)
    axis.set_xlabel("Test accuracy" if spread is None else "Test accuracy: mean over seeds, bars from min to max")
    axis.set_title(title)
    figure.tight_layout()
    return figure


def save_figure(figure: plt.Figure, path) -> None:
    from cnn_comparison.atomic import staged_path

    with staged_path(path) as temporary:
        figure.savefig(temporary, format="png", dpi=100)
    plt.close(figure)
