"""Turn raw IDX bytes into model-ready arrays, and split them for training."""
from __future__ import annotations

from typing import Mapping

import numpy as np
from sklearn.model_selection import train_test_split

from cnn_comparison.idx import IdxFormatError, parse_idx


def normalize_images(images: np.ndarray) -> np.ndarray:
    """uint8 (N, 28, 28) -> float32 (N, 28, 28, 1) in [0, 1], as Conv2D expects."""
    return (images.astype(np.float32) / 255.0)[..., np.newaxis]


def prepare(raw: Mapping[str, bytes], names: Mapping[str, str]) -> dict[str, np.ndarray]:
    """Parse and check the four files; ``names`` (file names by key) are used in errors."""
    arrays = {}
    for split in ("train", "test"):
        images_name, labels_name = names[f"{split}_images"], names[f"{split}_labels"]
        images = parse_idx(raw[f"{split}_images"], images_name, expected_dimensions=3)
        labels = parse_idx(raw[f"{split}_labels"], labels_name, expected_dimensions=1)
        if images.shape[1:] != (28, 28):
            raise IdxFormatError(f"{images_name}: images are {images.shape[1:]}, expected (28, 28)")
        if len(images) != len(labels):
            raise IdxFormatError(f"{images_name} has {len(images)} images but {labels_name} has {len(labels)} labels")
        arrays[f"{split}_images"] = normalize_images(images)
        arrays[f"{split}_labels"] = labels.astype(np.int64)
    return arrays


def split_train_validation(images: np.ndarray, labels: np.ndarray, validation_fraction: float,
                           seed: int) -> dict[str, np.ndarray]:
    """Stratified, seeded hold-out; the test set never passes through here."""
    if not 0 < validation_fraction < 1:
        raise ValueError(f"split.validation_fraction: expected a fraction in (0, 1), got {validation_fraction!r}")
    train_images, validation_images, train_labels, validation_labels = train_test_split(
        images, labels, test_size=validation_fraction, stratify=labels, random_state=seed, shuffle=True)
    return {"train_images": train_images, "train_labels": train_labels,
            "validation_images": validation_images, "validation_labels": validation_labels}
