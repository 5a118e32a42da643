import re

import numpy as np
import pytest

from cnn_comparison.evaluation import classification_metrics, confusion_rows, report_text


def reference_sections(project_root) -> dict[str, str]:
    """The four blocks of the reference output, keyed by heading."""
    text = (project_root / "reference" / "multitask_reference_output.txt").read_text()
    starts = [match.start() for match in re.finditer(r"^\w[\w ]+ Performance:$", text, flags=re.MULTILINE)]
    blocks = [text[start:end].rstrip() for start, end in zip(starts, starts[1:] + [len(text)])]
    return {block.splitlines()[0].rstrip(":"): block for block in blocks}


def labels_from_confusion(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    pairs = [(actual, predicted) for actual in range(10) for predicted in range(10)
             for _ in range(matrix[actual, predicted])]
    actual, predicted = zip(*pairs)
    return np.array(actual), np.array(predicted)


@pytest.mark.parametrize("heading", ["Dedicated Model Digit Performance", "Dedicated Model Fashion Performance",
                                     "Multitask Model Digit Performance", "Multitask Model Fashion Performance"])
def test_report_reproduces_the_reference_layout_exactly(project_root, heading):
    """Fed the reference's own confusion matrix, our report prints the reference block verbatim."""
    block = reference_sections(project_root)[heading]
    matrix_text = block[block.index("[["): block.index("]]") + 2]
    matrix = np.array([[int(value) for value in row.split()] for row in re.findall(r"\[([\d\s]+)\]", matrix_text)])
    assert matrix.shape == (10, 10)
    actual, predicted = labels_from_confusion(matrix)
    # The reference prints digit labels; the fashion study names its classes (tested below).
    ours = report_text(heading, actual, predicted, [str(index) for index in range(10)])
    assert ours.rstrip() == block


def test_report_uses_class_names_when_given():
    labels = np.array([0, 1, 1, 2])
    text = report_text("fmnist_1 Performance", labels, np.array([0, 1, 2, 2]), ["T-shirt/top", "Trouser", "Pullover"])
    assert text.startswith("fmnist_1 Performance:\n[[1 0 0]\n [0 1 1]\n [0 0 1]]\n")
    assert "T-shirt/top" in text and "Pullover" in text


def test_metrics_match_hand_computed_values():
    labels = np.array([0, 0, 1, 1])
    probabilities = np.array([[0.9, 0.1], [0.4, 0.6], [0.2, 0.8], [0.3, 0.7]])
    metrics = classification_metrics(labels, probabilities, ["a", "b"])
    assert metrics["accuracy"] == pytest.approx(0.75)
    # class a: precision 1, recall 0.5; class b: precision 2/3, recall 1
    assert metrics["precision_macro"] == pytest.approx((1 + 2 / 3) / 2)
    assert metrics["recall_macro"] == pytest.approx(0.75)
    assert metrics["f1_macro"] == pytest.approx((2 / 3 + 0.8) / 2)
    assert metrics["loss"] == pytest.approx(-np.mean(np.log([0.9, 0.4, 0.8, 0.7])))


def test_confusion_rows_are_dvc_confusion_template_rows():
    rows = confusion_rows(np.array([0, 1]), np.array([1, 1]), ["cat", "dog"])
    assert rows == [{"actual": "cat", "predicted": "dog"}, {"actual": "dog", "predicted": "dog"}]
