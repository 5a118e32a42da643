"""Reproducible batch augmentation that stays parallel under TensorFlow op determinism.

Keras' RandomTranslation and RandomFlip draw their random numbers from a SeedGenerator, a
TensorFlow variable that every call reads and advances. Variable reads and writes are stateful
ops, and with ``tf.config.experimental.enable_op_determinism()`` on, tf.data runs a map function
that holds stateful ops serially (``num_parallel_calls`` ignored) and may turn prefetching off
(TensorFlow's docs, "Determinism and tf.data").

So the random draws here are stateless: each batch is paired with its own seed from
``tf.data.Dataset.random(rerandomize_each_iteration=True)`` (a dataset source, not an op inside
the map function), the shifts and flips are drawn from that seed with ``tf.random.stateless_*``
ops with the same distributions the layers use, and the layers' own ``transform_images`` applies
them. The map function then holds no stateful op, so it runs in parallel; the same seed gives the
same batches in every process, and every epoch gets a fresh sequence of seeds.
"""
from __future__ import annotations

from typing import Callable

import keras
import tensorflow as tf

from cnn_comparison.params import Augmentation

# Second half of each stateless seed: one independent stream per random quantity, so the width
# shift, height shift and flip of an image are not drawn from the same numbers.
WIDTH_SHIFT_STREAM = 0
HEIGHT_SHIFT_STREAM = 1
FLIP_STREAM = 2
ERASING_STREAMS = (3, 4, 5, 6, 7)  # whether, area, aspect ratio, top, left
ERASING_MIN_AREA = 0.02  # the paper's s_l
ERASING_ASPECT_RATIO = (0.3, 1 / 0.3)  # the paper's r_1 and 1/r_1


def augmentation_layers(augmentation: Augmentation) -> tuple[keras.layers.RandomTranslation | None,
                                                              keras.layers.RandomFlip | None]:
    """The Keras preprocessing layers that do the image transforms, with the arguments
    the reference recipe describes (ImageDataGenerator-like shifts and flips); ``None`` for a transform that is turned off.

    Their own seed generators are never used here: the transformations are drawn statelessly.
    """
    translation = None
    if augmentation.width_shift or augmentation.height_shift:
        translation = keras.layers.RandomTranslation(
            height_factor=augmentation.height_shift, width_factor=augmentation.width_shift,
            fill_mode=augmentation.fill_mode, interpolation=augmentation.interpolation, fill_value=0.0,
        )
    flip = keras.layers.RandomFlip("horizontal") if augmentation.horizontal_flip else None
    return translation, flip


def _stream_seed(batch_seed: tf.Tensor, stream: int) -> tf.Tensor:
    """A stateless-op seed (shape [2], int64) for one random quantity of one batch."""
    return tf.stack([batch_seed, tf.constant(stream, dtype=tf.int64)])


def _image_height_and_width(layer: keras.layers.Layer, images_shape: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    if layer.data_format == "channels_first":
        return images_shape[-2], images_shape[-1]
    return images_shape[-3], images_shape[-2]


def translation_transformation(layer: keras.layers.RandomTranslation, images: tf.Tensor,
                               batch_seed: tf.Tensor) -> dict[str, tf.Tensor]:
    """What ``RandomTranslation.get_random_transformation`` returns, drawn from ``batch_seed``.

    Same distribution as the layer: each image's shift is uniform in [lower, upper] times the axis
    length, in pixels, as float32 ``[batch, 2]`` columns (width, height).
    """
    images_shape = tf.shape(images)
    batch_size = images_shape[0]
    height, width = _image_height_and_width(layer, images_shape)
    width_translation = tf.random.stateless_uniform(
        [batch_size, 1], _stream_seed(batch_seed, WIDTH_SHIFT_STREAM),
        minval=layer.width_lower, maxval=layer.width_upper, dtype=tf.float32) * tf.cast(width, tf.float32)
    height_translation = tf.random.stateless_uniform(
        [batch_size, 1], _stream_seed(batch_seed, HEIGHT_SHIFT_STREAM),
        minval=layer.height_lower, maxval=layer.height_upper, dtype=tf.float32) * tf.cast(height, tf.float32)
    return {"translations": tf.concat([width_translation, height_translation], axis=1),
            "input_shape": images_shape}


def flip_transformation(images: tf.Tensor, batch_seed: tf.Tensor) -> dict[str, tf.Tensor]:
    """What ``RandomFlip.get_random_transformation`` returns, drawn from ``batch_seed``: each image
    flipped when a uniform [0, 1) number is at most 0.5, as bool ``[batch, 1, 1, 1]``."""
    images_shape = tf.shape(images)
    uniform = tf.random.stateless_uniform(tf.stack([images_shape[0], 1, 1, 1]),
                                          _stream_seed(batch_seed, FLIP_STREAM), dtype=tf.float32)
    return {"flips": uniform <= 0.5, "input_shape": images_shape}


def erasing_transformation(images: tf.Tensor, batch_seed: tf.Tensor, probability: float,
                           max_area: float) -> dict[str, tf.Tensor]:
    """What ``keras.layers.RandomErasing.transform_images`` takes, drawn statelessly from ``batch_seed``.

    The layer's own draws reuse one seed for every quantity (the rectangle's top and left would
    be the same fraction of the free space), so the paper's sampling is written out here instead:
    area uniform in [2%, max_area] of the image, aspect ratio log-uniform, position uniform where
    the rectangle fits, one rectangle per erased image, filled with 0.
    """
    shape = tf.shape(images)
    batch_size, height, width = shape[0], tf.cast(shape[1], tf.float32), tf.cast(shape[2], tf.float32)
    whether, area, aspect, top, left = (
        tf.random.stateless_uniform([batch_size], _stream_seed(batch_seed, stream), dtype=tf.float32)
        for stream in ERASING_STREAMS)
    area = (ERASING_MIN_AREA + area * (max_area - ERASING_MIN_AREA)) * height * width
    low, high = (tf.math.log(tf.constant(bound, tf.float32)) for bound in ERASING_ASPECT_RATIO)
    aspect = tf.exp(low + aspect * (high - low))
    erase_height = tf.minimum(tf.round(tf.sqrt(area * aspect)), height)
    erase_width = tf.minimum(tf.round(tf.sqrt(area / aspect)), width)
    top = tf.floor(top * (height - erase_height + 1))
    left = tf.floor(left * (width - erase_width + 1))
    rows = tf.range(height)[None, :, None, None]
    columns = tf.range(width)[None, None, :, None]
    inside = ((rows >= top[:, None, None, None]) & (rows < (top + erase_height)[:, None, None, None])
              & (columns >= left[:, None, None, None]) & (columns < (left + erase_width)[:, None, None, None]))
    return {"apply_erasing": whether < probability,
            "batch_masks": tf.broadcast_to(inside, shape),
            "fill_value": tf.zeros_like(images)}


def make_batch_augmenter(augmentation: Augmentation) -> Callable[[tf.Tensor, tf.Tensor], tf.Tensor] | None:
    """``augment(images, batch_seed)`` for a 4-D batch and an int64 scalar seed, or ``None`` when
    augmentation is off. It contains only stateless ops, so tf.data may run it in parallel."""
    if not augmentation.enabled:
        return None
    translation, flip = augmentation_layers(augmentation)
    erasing = (keras.layers.RandomErasing(value_range=(0.0, 1.0)) if augmentation.erasing_probability
               else None)
    if translation is None and flip is None and erasing is None:
        return None

    def augment(images: tf.Tensor, batch_seed: tf.Tensor) -> tf.Tensor:
        batch_seed = tf.cast(batch_seed, tf.int64)
        if translation is not None:
            images = translation.transform_images(
                images, translation_transformation(translation, images, batch_seed), training=True)
        if flip is not None:
            images = flip.transform_images(images, flip_transformation(images, batch_seed), training=True)
        if erasing is not None:
            images = erasing.transform_images(images, erasing_transformation(
                images, batch_seed, augmentation.erasing_probability, augmentation.erasing_max_area), training=True)
        return images

    return augment


def augment_batches(dataset: tf.data.Dataset, augmentation: Augmentation, seed: int,
                    parallel_calls: int) -> tf.data.Dataset:
    """Augment the images (first element) of every batch; targets and sample weights pass through.

    Stateless draws with one seed per batch, so op determinism does not serialise the map: the
    same ``seed`` (and TensorFlow global seed) gives the same batches in every process, and each
    pass over the returned dataset (each epoch) draws new seeds. Returns ``dataset`` itself when
    augmentation is disabled or turns nothing on.
    """
    augment = make_batch_augmenter(augmentation)
    if augment is None:
        return dataset
    # rerandomize_each_iteration: a new iterator (Keras makes one per epoch) continues the seed
    # sequence instead of restarting it. Infinite, so the zip ends with the batches.
    batch_seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True)

    def augment_batch(batch: tuple, batch_seed: tf.Tensor) -> tuple:
        images, *rest = batch
        return (augment(images, batch_seed), *rest)

    return tf.data.Dataset.zip((dataset, batch_seeds)).map(
        augment_batch, num_parallel_calls=parallel_calls, deterministic=True)
