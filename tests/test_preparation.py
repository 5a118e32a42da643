import numpy as np
import pytest

from cnn_comparison.idx import IdxFormatError, encode_idx
from cnn_comparison.preparation import normalize_images, prepare, split_train_validation

NAMES = {key: key for key in ("train_images", "train_labels", "test_images", "test_labels")}


def synthetic_labels(count: int = 1000) -> np.ndarray:
    # Deliberately unbalanced classes so stratification is visible.
    return np.random.default_rng(0).choice(10, size=count, p=np.linspace(1, 3, 10) / np.linspace(1, 3, 10).sum())


def test_normalize_scales_to_unit_range_and_adds_channel():
    images = np.array([[[0, 255], [128, 51]]], dtype=np.uint8)
    result = normalize_images(images)
    assert result.dtype == np.float32 and result.shape == (1, 2, 2, 1)
    np.testing.assert_allclose(result[0, :, :, 0], [[0.0, 1.0], [128 / 255, 0.2]])


def test_prepare_keeps_test_separate_and_checks_counts():
    images = np.random.default_rng(1).integers(0, 256, size=(6, 28, 28))
    raw = {"train_images": encode_idx(images[:4]), "train_labels": encode_idx([1, 2, 3, 4]),
           "test_images": encode_idx(images[4:]), "test_labels": encode_idx([5, 6])}
    arrays = prepare(raw, NAMES)
    assert arrays["train_images"].shape == (4, 28, 28, 1)
    assert arrays["test_images"].shape == (2, 28, 28, 1)
    assert 0.0 <= arrays["train_images"].min() and arrays["train_images"].max() <= 1.0
    np.testing.assert_array_equal(arrays["test_labels"], [5, 6])
    raw["test_labels"] = encode_idx([5, 6, 7])
    with pytest.raises(IdxFormatError, match="test_images has 2 images but test_labels has 3 labels"):
        prepare(raw, NAMES)


def test_split_is_eighty_twenty_stratified_and_deterministic():
    labels = synthetic_labels()
    images = np.arange(len(labels), dtype=np.float32).reshape(-1, 1, 1, 1)
    first = split_train_validation(images, labels, 0.2, seed=42)
    second = split_train_validation(images, labels, 0.2, seed=42)
    other = split_train_validation(images, labels, 0.2, seed=7)
    assert len(first["train_labels"]) == 800 and len(first["validation_labels"]) == 200
    for key in first:
        np.testing.assert_array_equal(first[key], second[key])
    assert not np.array_equal(first["validation_images"], other["validation_images"])
    # Stratified: each class's share of the validation set matches the full set within one sample.
    full_counts = np.bincount(labels, minlength=10)
    validation_counts = np.bincount(first["validation_labels"], minlength=10)
    assert np.all(np.abs(validation_counts - full_counts * 0.2) <= 1)
    # Images travel with their labels and nothing is lost or duplicated.
    together = np.concatenate([first["train_images"], first["validation_images"]]).ravel().astype(int)
    assert sorted(together) == list(range(len(labels)))
    np.testing.assert_array_equal(labels[first["train_images"].ravel().astype(int)], first["train_labels"])


def test_split_rejects_a_bad_fraction():
    with pytest.raises(ValueError, match="split.validation_fraction"):
        split_train_validation(np.zeros((10, 1)), np.zeros(10), 1.5, seed=0)
