"""Test-set metrics and the text report, computed with scikit-learn."""
from __future__ import annotations

from typing import Sequence

import numpy as np
from sklearn.metrics import (accuracy_score, classification_report, confusion_matrix, log_loss,
                             precision_recall_fscore_support)


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
