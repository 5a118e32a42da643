"""Test-set metrics and the text report, computed with scikit-learn."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

import keras
import numpy as np
import pandas as pd
from sklearn.metrics import (accuracy_score, classification_report, confusion_matrix, log_loss,
                             precision_recall_fscore_support)

from cnn_comparison import atomic
from cnn_comparison.costs import expected_calibration_error, reliability_bins
from cnn_comparison.figures import confusion_figure, reliability_figure, sample_grid_figure, save_figure
from cnn_comparison.layout import (CONFUSION_DIRECTORY, CONFUSION_NORMALIZED_DIRECTORY, FIGURES_DIRECTORY,
                                  REPORTS_DIRECTORY)
from cnn_comparison.params import ModelSpec
from cnn_comparison.inputs import prediction_dataset


def classification_metrics(labels: np.ndarray, probabilities: np.ndarray, class_names: Sequence[str]) -> dict:
    """Accuracy, macro precision/recall/F1 and cross-entropy of predicted class probabilities."""
    class_indices = list(range(len(class_names)))
    predictions = probabilities.argmax(axis=1)
    precision, recall, f1, _ = precision_recall_fscore_support(
        labels, predictions, labels=class_indices, average="macro", zero_division=0)
    return {
        "accuracy": float(accuracy_score(labels, predictions)),
        "precision_macro": float(precision),
        "recall_macro": float(recall),
        "f1_macro": float(f1),
        "loss": float(log_loss(labels, np.clip(probabilities, 1e-7, 1.0), labels=class_indices)),
        "expected_calibration_error": expected_calibration_error(probabilities, labels),
        "samples": int(len(labels)),
    }


def confusion(labels: np.ndarray, predictions: np.ndarray, class_count: int) -> np.ndarray:
    return confusion_matrix(labels, predictions, labels=list(range(class_count)))


def report_text(title: str, labels: np.ndarray, predictions: np.ndarray, class_names: Sequence[str]) -> str:
    """The layout of the reference output: heading, printed confusion matrix, classification report."""
    matrix = confusion(labels, predictions, len(class_names))
    report = classification_report(
        labels, predictions, labels=list(range(len(class_names))), target_names=list(class_names), zero_division=0)
    return f"{title}:\n{np.array2string(matrix, max_line_width=200)}\n{report}\n"


def confusion_rows(labels: np.ndarray, predictions: np.ndarray, class_names: Sequence[str]) -> list[dict]:
    """One row per test example, the shape DVC's ``confusion`` template expects."""
    return [{"actual": class_names[int(actual)], "predicted": class_names[int(predicted)]}
            for actual, predicted in zip(labels, predictions)]


def shifted(images: np.ndarray, rows: int, columns: int) -> np.ndarray:
    """``images`` (N, height, width, channels) moved by whole pixels; what moves in is black (0)."""
    moved = np.zeros_like(images)
    height, width = images.shape[1:3]
    moved[:, max(rows, 0):height + min(rows, 0), max(columns, 0):width + min(columns, 0)] = \
        images[:, max(-rows, 0):height + min(-rows, 0), max(-columns, 0):width + min(-columns, 0)]
    return moved


def test_time_views(images: np.ndarray, flip: bool, shift: int) -> list[np.ndarray]:
    """The views whose predictions are averaged: the image, shifted copies, and their mirror images."""
    views = [images]
    if shift:
        views += [shifted(images, rows, columns) for rows, columns in ((-shift, 0), (shift, 0), (0, -shift), (0, shift))]
    if flip:
        views += [view[:, :, ::-1] for view in views]
    return views


def predict_heads(model: keras.Model, images_by_head: Mapping[str, np.ndarray],
                  test_time_flip: bool = False, test_time_shift: int = 0) -> dict[str, np.ndarray]:
    """Class probabilities per head (the model's outputs are named after its heads).

    With ``test_time_flip`` each image's probabilities are averaged with its mirror image's, and
    with ``test_time_shift`` with copies shifted that many pixels each way: a model trained with
    flips and shifts sees these as the same garment, and several looks vote better.
    """
    def predict(images: np.ndarray):
        return model.predict(prediction_dataset(images), verbose=0)

    probabilities = {}
    for head, images in images_by_head.items():
        views = [predict(view)[head] for view in test_time_views(images, test_time_flip, test_time_shift)]
        probabilities[head] = views[0] if len(views) == 1 else np.mean(views, axis=0)
    return probabilities


def metrics_record(spec: ModelSpec, scores: Mapping[str, dict], training: Mapping[str, Any], costs: Mapping[str, int],
                   provenance: list[dict]) -> dict:
    """The metrics file of one run, the same shape for every model: test scores per head, what
    training reported, and what produced it. No seconds and no host: those are in the run's timings
    file, so this one is the same on every rerun."""
    record: dict[str, Any] = {"model": spec.name, "heads": {
        head: {**head_scores, "dataset": spec.tasks[head].dataset} for head, head_scores in scores.items()}}
    for key in ("epochs_run", "epoch_of_saved_weights", "parameter_count"):
        record[key] = training[key]
    record.update(costs)
    record.update(seed=spec.seed, provenance=provenance)
    return record


def write_head_outputs(directories: Mapping[str, Path], label: str, title: str, figure_title: str,
                       images: np.ndarray, labels: np.ndarray, probabilities: np.ndarray,
                       class_names: Sequence[str]) -> str:
    """The text report, DVC confusion-plot CSVs, confusion PNG and sample grid of one head, each in its
    directory of ``directories`` (keyed by the layout's directory names); returns the report."""
    predictions = probabilities.argmax(axis=1)
    report = report_text(title, labels, predictions, class_names)
    atomic.write_text(directories[REPORTS_DIRECTORY] / f"{label}.txt", report)
    rows = pd.DataFrame(confusion_rows(labels, predictions, class_names)).to_csv(index=False)
    # The same rows twice: a DVC plot takes one template per file, and dvc.yaml shows both
    # the counts (`confusion`) and the per-class recall (`confusion_normalized`).
    for directory in (CONFUSION_DIRECTORY, CONFUSION_NORMALIZED_DIRECTORY):
        atomic.write_text(directories[directory] / f"{label}.csv", rows)
    save_figure(confusion_figure(confusion(labels, predictions, len(class_names)), class_names, figure_title),
                directories[FIGURES_DIRECTORY] / f"confusion_{label}.png")
    save_figure(sample_grid_figure(images, labels, predictions, class_names),
                directories[FIGURES_DIRECTORY] / f"samples_{label}.png")
    bins = reliability_bins(probabilities, labels)
    save_figure(reliability_figure(bins, expected_calibration_error(probabilities, labels),
                                   figure_title.replace("test confusion matrix", "reliability on the test set")),
                directories[FIGURES_DIRECTORY] / f"reliability_{label}.png")
    return report
