"""Input pipelines: how arrays become batches for training, validation and prediction.

Its own module so that evaluation (prediction batches) does not depend on the training loop:
editing `training.py` leaves the evaluate stages up to date.
"""
from __future__ import annotations

from typing import Mapping

import keras
import numpy as np
import tensorflow as tf

from cnn_comparison.augmentation import augment_batches
from cnn_comparison.params import Augmentation, Recipe

# Big enough to amortise per-batch overhead, small enough for 24 GiB with the 10k test set.
PREDICTION_BATCH_SIZE = 1024
# Fixed input-pipeline parallelism instead of tf.data autotuning. With autotuning on, dropping an
# epoch's iterator waited about 20 s for the tuning thread in about one epoch in three
# (TensorFlow 2.21, this 2-core machine; docs/pipeline.md, "Input pipeline"). Two calls and two
# prefetched batches keep both cores busy: augmentation alone runs at about 40,000 images/s.
INPUT_PARALLEL_CALLS = 2
PREFETCH_BATCHES = 2


def make_dataset(
    images: np.ndarray,
    targets,
    batch_size: int,
    seed: int,
    shuffle: bool,
    augmentation: Augmentation | None = None,
    sample_weights=None,
) -> tf.data.Dataset:
    """Batches for ``model.fit``; augmentation runs on whole batches inside TensorFlow, drawn
    statelessly from ``seed`` so op determinism keeps it parallel (cnn_comparison/augmentation.py)."""
    elements = (images, targets) if sample_weights is None else (images, targets, sample_weights)
    dataset = tf.data.Dataset.from_tensor_slices(elements)
    if shuffle:
        dataset = dataset.shuffle(len(images), seed=seed, reshuffle_each_iteration=True)
    dataset = dataset.batch(batch_size)
    if augmentation is not None:
        dataset = augment_batches(dataset, augmentation, seed, INPUT_PARALLEL_CALLS)
    options = tf.data.Options()
    options.autotune.enabled = False
    return dataset.prefetch(PREFETCH_BATCHES).with_options(options)


def combine_tasks(task_data: Mapping[str, tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, dict, dict]:
    """Stack every task's examples; each example gets weight 1 for its own head and 0 elsewhere.

    Zero weight means zero loss and zero gradient through the other head, which
    is how one model learns two label spaces from disjoint datasets.
    """
    images = np.concatenate([task_images for task_images, _ in task_data.values()])
    labels, weights = {}, {}
    offset = 0
    for task, (task_images, task_labels) in task_data.items():
        labels[task] = np.zeros(len(images), dtype=np.int64)
        weights[task] = np.zeros(len(images), dtype=np.float32)
        labels[task][offset: offset + len(task_images)] = task_labels
        weights[task][offset: offset + len(task_images)] = 1.0
        offset += len(task_images)
    return images, labels, weights


def one_hot(labels: np.ndarray, class_count: int) -> np.ndarray:
    """Targets as the cross-entropy with label smoothing needs them (Keras' sparse loss cannot smooth)."""
    return keras.utils.to_categorical(labels, class_count).astype(np.float32)


def training_dataset(images: np.ndarray, targets, recipe: Recipe, sample_weights=None) -> tf.data.Dataset:
    """Shuffled batches, augmented per the recipe: the input path `train` uses (and the benchmark measures)."""
    return make_dataset(images, targets, recipe.batch_size, recipe.seed, shuffle=True,
                        augmentation=recipe.augmentation, sample_weights=sample_weights)


def validation_dataset(images: np.ndarray, targets, recipe: Recipe, sample_weights=None) -> tf.data.Dataset:
    return make_dataset(images, targets, PREDICTION_BATCH_SIZE, recipe.seed, shuffle=False,
                        sample_weights=sample_weights)


def prediction_dataset(images: np.ndarray) -> tf.data.Dataset:
    """Images alone, in order, for ``model.predict``: through ``make_dataset`` rather than NumPy arrays,
    which Keras wraps in an autotuned tf.data pipeline that sometimes stalled ~20 s here
    (docs/pipeline.md, "Input pipeline"). The targets are placeholders; predict reads only the images."""
    return make_dataset(images, np.zeros(len(images), dtype=np.int32), PREDICTION_BATCH_SIZE, seed=0, shuffle=False)
