"""The `limits` of params.yaml: caps that turn a full run into a quick one, applied in one place."""
from __future__ import annotations

from typing import Mapping

import numpy as np

from cnn_comparison.params import Limits, Recipe


def capped_recipe(recipe: Recipe, limits: Limits) -> Recipe:
    """The recipe a run actually follows: its epochs capped by ``limits.max_epochs``."""
    if limits.max_epochs is None or limits.max_epochs >= recipe.epochs:
        return recipe
    return recipe.model_copy(update={"epochs": limits.max_epochs})


def first(images: np.ndarray, labels: np.ndarray, limit: int | None) -> tuple[np.ndarray, np.ndarray]:
    """The first ``limit`` examples; splits are already shuffled, so the head is representative."""
    return (images, labels) if limit is None else (images[:limit], labels[:limit])


def capped_split(arrays: Mapping[str, np.ndarray], limits: Limits) -> dict[str, np.ndarray]:
    """Training and validation arrays of one split directory, each capped by its limit."""
    train = first(arrays["train_images"], arrays["train_labels"], limits.max_train_samples)
    validation = first(arrays["validation_images"], arrays["validation_labels"], limits.max_eval_samples)
    return dict(zip(("train_images", "train_labels", "validation_images", "validation_labels"), (*train, *validation)))


def capped_test(arrays: Mapping[str, np.ndarray], limits: Limits) -> tuple[np.ndarray, np.ndarray]:
    return first(arrays["test_images"], arrays["test_labels"], limits.max_eval_samples)
