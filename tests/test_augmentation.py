"""Stateless batch augmentation (cnn_comparison/augmentation.py): reproducible, fresh every epoch
and batch, within the configured bounds, and free of stateful ops so op determinism keeps it parallel.
The same bytes in another process: the end-to-end reproduction check reruns an augmented model
(tests/test_end_to_end.py) and finds its model file unchanged."""
import numpy as np
import tensorflow as tf

from cnn_comparison.augmentation import augment_batches, make_batch_augmenter
from cnn_comparison.params import Augmentation

REFERENCE = Augmentation(enabled=True, width_shift=0.2, height_shift=0.2, horizontal_flip=True)
# Whole-pixel shifts into black: a pixel either moves intact or leaves the frame.
WHOLE_PIXEL_SHIFTS = Augmentation(enabled=True, width_shift=0.2, height_shift=0.2, horizontal_flip=False,
                                  fill_mode="constant", interpolation="nearest")


def random_images(count: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random((count, 28, 28, 1), dtype=np.float32)


def batched(images: np.ndarray, *rest, batch_size: int = 64) -> tf.data.Dataset:
    return tf.data.Dataset.from_tensor_slices((images, *rest)).batch(batch_size)


def augmented_images(dataset: tf.data.Dataset) -> np.ndarray:
    """One pass (epoch) over ``dataset``, images only."""
    return np.concatenate([batch[0] for batch in dataset.as_numpy_iterator()])


def bright_pixel_positions(images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return np.unravel_index(images[..., 0].reshape(len(images), -1).argmax(axis=1), images.shape[1:3])


def test_same_seed_gives_identical_batches_and_other_seeds_differ():
    images = random_images(200)
    first = augmented_images(augment_batches(batched(images), REFERENCE, seed=5, parallel_calls=2))
    again = augmented_images(augment_batches(batched(images), REFERENCE, seed=5, parallel_calls=2))
    other = augmented_images(augment_batches(batched(images), REFERENCE, seed=6, parallel_calls=2))
    assert first.tobytes() == again.tobytes()
    assert not np.array_equal(first, other)
    assert not np.array_equal(first, images)


def test_every_epoch_and_every_batch_gets_new_transformations():
    # 4 batches of the same 32 images: any two equal augmented batches would mean a repeated draw.
    images = np.tile(random_images(32), (4, 1, 1, 1))
    dataset = augment_batches(batched(images, batch_size=32), REFERENCE, seed=1, parallel_calls=2)
    epochs = [augmented_images(dataset).reshape(4, 32, 28, 28, 1) for _ in range(3)]
    batches = [batch for epoch in epochs for batch in epoch]
    for index, batch in enumerate(batches):
        for other in batches[index + 1:]:
            assert not np.array_equal(batch, other)


def test_whole_pixel_shifts_stay_within_the_fraction_and_keep_the_pixel():
    images = np.zeros((512, 28, 28, 1), dtype=np.float32)
    images[:, 14, 14, 0] = 1.0
    augmented = augmented_images(augment_batches(batched(images), WHOLE_PIXEL_SHIFTS, seed=3, parallel_calls=2))
    # Nearest interpolation and black fill: the pixel moves intact (it cannot leave from the centre).
    np.testing.assert_array_equal(augmented.reshape(512, -1).sum(axis=1), 1.0)
    np.testing.assert_array_equal(augmented.max(axis=(1, 2, 3)), 1.0)
    rows, columns = bright_pixel_positions(augmented)
    row_shifts, column_shifts = rows - 14, columns - 14
    limit = round(0.2 * 28)
    assert np.abs(row_shifts).max() <= limit and np.abs(column_shifts).max() <= limit
    # Uniform over the range: most whole-pixel shifts occur, in both directions.
    assert set(range(-limit + 1, limit)) <= set(row_shifts) and set(range(-limit + 1, limit)) <= set(column_shifts)
    # Width and height shifts are drawn independently, not from the same numbers.
    assert abs(np.corrcoef(row_shifts, column_shifts)[0, 1]) < 0.2


def test_only_one_axis_shifts_when_the_other_fraction_is_zero():
    images = np.zeros((256, 28, 28, 1), dtype=np.float32)
    images[:, 14, 14, 0] = 1.0
    width_only = Augmentation(enabled=True, width_shift=0.2, height_shift=0.0, horizontal_flip=False,
                              fill_mode="constant", interpolation="nearest")
    rows, columns = bright_pixel_positions(
        augmented_images(augment_batches(batched(images), width_only, seed=2, parallel_calls=2)))
    assert np.all(rows == 14)
    assert len(set(columns)) > 5


def test_shifted_random_images_lose_mass_only_at_the_border():
    images = random_images(256, seed=4)
    augmented = augmented_images(augment_batches(batched(images), WHOLE_PIXEL_SHIFTS, seed=4, parallel_calls=2))
    original_mass, kept_mass = images.sum(axis=(1, 2, 3)), augmented.sum(axis=(1, 2, 3))
    assert np.all(kept_mass <= original_mass + 1e-3)
    # The values are a subset of the original pixels (plus black fill): nothing is interpolated.
    for image, result in zip(images[:16], augmented[:16]):
        assert set(result[result > 0].ravel()) <= set(image.ravel())
    # Each image keeps its interior: a shift of at most 6 pixels leaves a 22x22 block at least.
    assert np.all(kept_mass >= original_mass * (22 * 22) / (28 * 28) * 0.8)


def test_flips_about_half_of_the_images():
    images = np.zeros((512, 28, 28, 1), dtype=np.float32)
    images[:, 10, 3, 0] = 1.0  # left half; a horizontal flip puts it at column 24
    flip_only = Augmentation(enabled=True, width_shift=0.0, height_shift=0.0, horizontal_flip=True)
    rows, columns = bright_pixel_positions(
        augmented_images(augment_batches(batched(images), flip_only, seed=8, parallel_calls=2)))
    assert np.all(rows == 10) and set(columns) <= {3, 24}
    flipped_fraction = np.mean(columns == 24)
    assert 0.4 < flipped_fraction < 0.6, flipped_fraction


def test_targets_and_sample_weights_pass_through_in_order():
    images = random_images(100)
    targets = {"digits": np.arange(100), "fashion": np.arange(100) * 2}
    weights = np.linspace(0, 1, 100, dtype=np.float32)
    dataset = augment_batches(batched(images, targets, weights, batch_size=32), REFERENCE, seed=0, parallel_calls=2)
    batches = list(dataset.as_numpy_iterator())
    assert dataset.cardinality().numpy() == 4 and len(batches) == 4
    np.testing.assert_array_equal(np.concatenate([batch[1]["digits"] for batch in batches]), targets["digits"])
    np.testing.assert_array_equal(np.concatenate([batch[1]["fashion"] for batch in batches]), targets["fashion"])
    np.testing.assert_array_equal(np.concatenate([batch[2] for batch in batches]), weights)
    assert all(batch[0].dtype == np.float32 and batch[0].shape[1:] == (28, 28, 1) for batch in batches)


ERASING_ONLY = Augmentation(enabled=True, width_shift=0.0, height_shift=0.0, horizontal_flip=False,
                            erasing_probability=0.5, erasing_max_area=0.3)


def test_erasing_blanks_one_rectangle_in_about_half_of_the_images():
    images = np.ones((1024, 28, 28, 1), dtype=np.float32)
    erased = augmented_images(augment_batches(batched(images), ERASING_ONLY, seed=5, parallel_calls=2))
    blank = erased[..., 0] == 0
    counts = blank.reshape(len(blank), -1).sum(axis=1)
    assert 0.45 < np.mean(counts > 0) < 0.55, np.mean(counts > 0)
    assert set(np.unique(erased)) == {0.0, 1.0}  # untouched pixels keep their value
    areas = counts[counts > 0] / (28 * 28)
    assert areas.min() >= 0.015 and areas.max() <= 0.32, (areas.min(), areas.max())  # 2%-30%, rounded to pixels
    tops, lefts = [], []
    for mask in blank[counts > 0]:
        rows, columns = np.nonzero(mask)
        assert mask.sum() == (np.ptp(rows) + 1) * (np.ptp(columns) + 1)  # one filled rectangle
        tops.append(rows.min())
        lefts.append(columns.min())
    assert abs(np.corrcoef(tops, lefts)[0, 1]) < 0.2  # drawn independently (Keras' own draws are not)
    assert len(set(tops)) > 15 and len(set(lefts)) > 15


def test_augmentation_has_no_stateful_ops():
    """What keeps tf.data's map parallel under op determinism."""
    augment = make_batch_augmenter(REFERENCE.model_copy(update={"erasing_probability": 0.5}))
    function = tf.function(augment).get_concrete_function(tf.TensorSpec([None, 28, 28, 1], tf.float32),
                                                          tf.TensorSpec([], tf.int64))
    operations = {operation.type for operation in function.graph.get_operations()}
    assert "ImageProjectiveTransformV3" in operations and "ReverseV2" in operations  # the layers' transforms
    stateful = {operation.type for operation in function.graph.get_operations() if operation.op_def.is_stateful}
    assert not stateful


def test_disabled_or_empty_augmentation_returns_the_dataset_unchanged():
    dataset = batched(random_images(10), np.arange(10))
    disabled = Augmentation(enabled=False, width_shift=0.2, height_shift=0.2, horizontal_flip=True)
    nothing_on = Augmentation(enabled=True, width_shift=0.0, height_shift=0.0, horizontal_flip=False)
    assert augment_batches(dataset, disabled, seed=0, parallel_calls=2) is dataset
    assert augment_batches(dataset, nothing_on, seed=0, parallel_calls=2) is dataset
