"""Test-set metrics and the text report, computed with scikit-learn."""
from __future__ import annotations

import os
from typing import Sequence

import numpy as np
import pandas as pd
from sklearn.metrics import (accuracy_score, classification_report, confusion_matrix, log_loss,
                             precision_recall_fscore_support)

from cnn_comparison import atomic
from cnn_comparison.figures import confusion_figure, save_figure


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


def write_classification_outputs(title: str, figure_title: str, labels: np.ndarray, predictions: np.ndarray,
                                 class_names: Sequence[str], report_path: str | os.PathLike,
                                 confusion_csv: str | os.PathLike, confusion_png: str | os.PathLike) -> str:
    """The text report, DVC confusion-plot CSV and confusion PNG every evaluated head gets; returns the report."""
    report = report_text(title, labels, predictions, class_names)
    atomic.write_text(report_path, report)
    atomic.write_text(confusion_csv, pd.DataFrame(confusion_rows(labels, predictions, class_names)).to_csv(index=False))
    save_figure(confusion_figure(confusion(labels, predictions, len(class_names)), class_names, figure_title),
                confusion_png)
    return report
