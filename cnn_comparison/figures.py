"""PNG figures; the matching DVC plot data is written by the stages as CSV."""
from __future__ import annotations

from typing import Mapping, Sequence

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


def reliability_figure(bins: Sequence[Mapping], error: float, title: str) -> plt.Figure:
    """Guo et al.'s reliability diagram: accuracy per confidence bin against the diagonal a calibrated
    model would follow, with the share of images per bin below."""
    figure, (top, bottom) = plt.subplots(2, 1, figsize=(6, 7), height_ratios=(3, 1), sharex=True)
    occupied = [row for row in bins if row["images"]]
    width = bins[0]["upper"] - bins[0]["lower"] if bins else 1.0
    top.bar([row["lower"] for row in occupied], [row["accuracy"] for row in occupied], width=width, align="edge",
            edgecolor="black", label="accuracy")
    top.bar([row["lower"] for row in occupied], [row["confidence"] - row["accuracy"] for row in occupied],
            bottom=[row["accuracy"] for row in occupied], width=width, align="edge", color="red", alpha=0.3,
            label="gap to the mean confidence")
    top.plot([0, 1], [0, 1], linestyle="--", color="gray", label="calibrated")
    top.set_ylim(0, 1)
    top.set_ylabel("Accuracy")
    top.set_title(f"{title}\nexpected calibration error {error:.4f} ({len(bins)} bins)")
    top.legend(loc="upper left")
    total = sum(row["images"] for row in bins) or 1
    bottom.bar([row["lower"] for row in bins], [row["images"] / total for row in bins], width=width, align="edge",
               edgecolor="black")
    bottom.set_xlim(0, 1)
    bottom.set_xlabel("Confidence of the top prediction")
    bottom.set_ylabel("Share of images")
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


def panels(labels: Sequence[str], panel_of: Mapping[str, str] | None) -> dict[str | None, list[str]]:
    """Labels grouped by panel (a dataset), in first-seen order; everything in one panel without ``panel_of``.

    Curves of different datasets live on different scales (digits near 0.97, fashion near 0.87): one
    y-range for both would push one group off the plot, so each dataset gets its own axes."""
    grouped: dict[str | None, list[str]] = {}
    for label in labels:
        grouped.setdefault(panel_of.get(label) if panel_of else None, []).append(label)
    return grouped or {None: []}  # no runs yet: one empty panel


def panel_axes(count: int, height: float = 5.0) -> tuple[plt.Figure, list[plt.Axes]]:
    figure, axes = plt.subplots(1, count, figsize=(10 if count == 1 else 7 * count, height), squeeze=False)
    return figure, list(axes[0])


def visible_range(series: Sequence[np.ndarray], low: float, high: float) -> tuple[float, float]:
    """(low, high) widened so each series' last point is inside: every line in the legend shows."""
    lasts = [values[-1] for values in series if len(values)]
    return min([low, *lasts]), max([high, *lasts])


def curves_figure(table: pd.DataFrame, title: str, y_label: str, outlier_fence: float = 3.0,
                  panel_of: Mapping[str, str] | None = None) -> plt.Figure:
    """One line per column of ``table`` (indexed by epoch), one panel per dataset (``panel_of``).

    Within a panel the y-axis leaves out values more than ``outlier_fence`` interquartile ranges
    beyond the quartiles (Tukey's fences), so a first epoch far off (validation accuracy 0.15 before
    batch normalization settles) does not squeeze every curve into a thin band, but it always
    includes each curve's last point; the title says how many points are off the scale.
    """
    grouped = panels(list(table.columns), panel_of)
    figure, axes = panel_axes(len(grouped))
    off_scale = 0
    for axis, (panel, columns) in zip(axes, grouped.items()):
        series = [table[column].dropna() for column in columns]
        for column, values in zip(columns, series):
            axis.plot(values.index, values.values, marker=".", label=column)
        if columns:
            axis.legend()
        values = np.concatenate([values.to_numpy(dtype=float) for values in series]) if series else np.array([])
        if values.size:
            first_quartile, third_quartile = np.quantile(values, [0.25, 0.75])
            fence = outlier_fence * (third_quartile - first_quartile)
            inside = values[(values >= first_quartile - fence) & (values <= third_quartile + fence)]
            low, high = visible_range([values.to_numpy(dtype=float) for values in series], inside.min(), inside.max())
            margin = 0.05 * (high - low) or 0.01
            axis.set_ylim(low - margin, high + margin)
            off_scale += int(((values < low) | (values > high)).sum())
        axis.set_xlabel("Epoch")
        axis.set_ylabel(y_label)
        if panel is not None:
            axis.set_title(panel)
        axis.grid(alpha=0.3)
    if off_scale:
        title = f"{title} ({off_scale} off-scale point{'s' if off_scale > 1 else ''} not shown)"
    (axes[0].set_title(title) if len(axes) == 1 and None in grouped else figure.suptitle(title))
    figure.tight_layout()
    return figure


def accuracy_by_time_figure(history: pd.DataFrame, thresholds: Sequence[float], title: str,
                            panel_of: Mapping[str, str] | None = None) -> plt.Figure:
    """Validation accuracy against wall seconds of training, one line per run, one panel per
    dataset (``panel_of`` maps a run's label to it), thresholds dashed.

    Time rather than epochs on the x-axis: models whose epochs cost different amounts compare fairly.
    Within a panel, accuracies more than 5 points below the weakest run's best are left off the scale.
    """
    grouped = panels(list(dict.fromkeys(history["model"])), panel_of)
    figure, axes = panel_axes(len(grouped))
    for axis, (panel, labels) in zip(axes, grouped.items()):
        runs = [history[history["model"] == label] for label in labels]
        for label, frame in zip(labels, runs):
            axis.plot(frame["elapsed_wall_seconds"], frame["validation_accuracy"], marker=".", label=label)
        accuracies = [frame["validation_accuracy"].to_numpy(dtype=float) for frame in runs]
        if any(len(values) for values in accuracies):
            best = [values.max() for values in accuracies if len(values)]
            low = max(min(best) - 0.05, min(values.min() for values in accuracies if len(values)))
            low, high = visible_range(accuracies, low, max(best))
            shown = [threshold for threshold in thresholds if low - 0.02 <= threshold <= high + 0.02]
            for threshold in shown:
                axis.axhline(threshold, color="gray", linestyle="--", linewidth=0.8)
            axis.set_ylim(min([low, *shown]) - 0.005, max([high, *shown]) + 0.005)
            axis.legend()
        axis.set_xlabel("Training time, wall seconds (validation included)")
        axis.set_ylabel("Validation accuracy")
        if panel is not None:
            axis.set_title(panel)
        axis.grid(alpha=0.3)
    (axes[0].set_title(title) if len(axes) == 1 and None in grouped else figure.suptitle(title))
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
        # Seeds that all score the same (a smoke run at chance) put the float mean a hair outside
        # [min, max]; matplotlib refuses a negative error bar.
        spread = [np.maximum(np.subtract(accuracies, minimums), 0), np.maximum(np.subtract(maximums, accuracies), 0)]
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
