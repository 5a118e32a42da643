import numpy as np
import pytest
import tensorflow as tf

from cnn_comparison.builder import build_multitask
from cnn_comparison.params import Augmentation, parse_recipe
from cnn_comparison.augmentation import make_batch_augmenter
from cnn_comparison.inputs import combine_tasks, make_dataset
from cnn_comparison.training import train_model

REFERENCE_AUGMENTATION = Augmentation(enabled=True, width_shift=0.2, height_shift=0.2, horizontal_flip=True)


def images_and_labels(count=64, seed=0):
    rng = np.random.default_rng(seed)
    return rng.random((count, 28, 28, 1), dtype=np.float32), rng.integers(0, 10, size=count)


def test_dataset_without_augmentation_yields_every_image_once_per_epoch_with_its_label():
    images, labels = images_and_labels()
    dataset = make_dataset(images, labels, batch_size=10, seed=3, shuffle=True)
    for _ in range(2):  # two epochs, reshuffled
        batches = list(dataset.as_numpy_iterator())
        seen_images = np.concatenate([batch[0] for batch in batches])
        seen_labels = np.concatenate([batch[1] for batch in batches])
        order = np.argsort(seen_images[:, 0, 0, 0])
        reference_order = np.argsort(images[:, 0, 0, 0])
        np.testing.assert_array_equal(seen_images[order], images[reference_order])
        np.testing.assert_array_equal(seen_labels[order], labels[reference_order])


def test_augmented_batches_keep_range_shape_and_shift_bounds():
    # A single bright pixel in the centre: wherever it lands bounds the shift.
    images = np.zeros((256, 28, 28, 1), dtype=np.float32)
    images[:, 14, 14, 0] = 1.0
    batches = list(make_dataset(images, np.zeros(256, dtype=np.int64), 64, seed=1, shuffle=True,
                                augmentation=REFERENCE_AUGMENTATION).as_numpy_iterator())
    augmented = np.concatenate([batch[0] for batch in batches])
    assert augmented.shape == images.shape and augmented.dtype == np.float32
    assert augmented.min() >= 0.0 and augmented.max() <= 1.0 + 1e-6
    rows, columns = np.unravel_index(augmented[..., 0].reshape(256, -1).argmax(axis=1), (28, 28))
    # 20% of 28 pixels = 5.6: every peak stays within that of the centre (or its mirror).
    assert np.all(np.abs(rows - 14) <= 6) and np.all(np.minimum(np.abs(columns - 14), np.abs(columns - 13)) <= 6)
    assert len(set(zip(rows, columns))) > 20, "shifts should vary from image to image"


def test_no_augmentation_when_disabled():
    assert make_batch_augmenter(Augmentation(enabled=False, width_shift=0.2, height_shift=0.2,
                                             horizontal_flip=True)) is None


def test_combine_tasks_weights_each_example_for_its_own_head_only():
    digits, fashion = images_and_labels(3), images_and_labels(2, seed=1)
    images, labels, weights = combine_tasks({"digits": digits, "fashion": fashion})
    assert len(images) == 5
    np.testing.assert_array_equal(weights["digits"], [1, 1, 1, 0, 0])
    np.testing.assert_array_equal(weights["fashion"], [0, 0, 0, 1, 1])
    np.testing.assert_array_equal(labels["fashion"][3:], fashion[1])


def test_a_digits_only_batch_changes_the_trunk_and_digits_head_but_not_the_fashion_head(params):
    config = params["models"]["multitask"]
    model = build_multitask("multitask", config["trunk"], config["heads"])
    recipe = parse_recipe({**config["training"], "epochs": 1, "batch_size": 16}, "models.multitask.training")
    before = {layer.name: [weight.numpy().copy() for weight in layer.weights] for layer in model.layers}
    digits = images_and_labels(16)
    empty = (np.zeros((0, 28, 28, 1), dtype=np.float32), np.zeros(0, dtype=np.int64))
    arrays = {
        "digits": {"train_images": digits[0], "train_labels": digits[1],
                   "validation_images": digits[0], "validation_labels": digits[1]},
        "fashion": {"train_images": empty[0], "train_labels": empty[1],
                    "validation_images": empty[0], "validation_labels": empty[1]},
    }
    history, _ = train_model(model, arrays, recipe, callbacks=[])
    changed = {layer.name: any(not np.array_equal(old, new.numpy()) for old, new in zip(before[layer.name], layer.weights))
               for layer in model.layers if layer.weights}
    assert changed["digits"] is True
    assert changed["fashion"] is False
    trunk_dense = [name for name in changed if name not in ("digits", "fashion")]
    assert trunk_dense and all(changed[name] for name in trunk_dense)
    assert "val_digits_accuracy" in history.history


def test_constant_fill_and_nearest_interpolation_shift_whole_pixels_in_black():
    # A white image: whatever a shift uncovers shows as fill, and nearest interpolation keeps
    # every pixel either the image (1) or the fill (0).
    images = np.ones((64, 28, 28, 1), dtype=np.float32)
    seeds = tf.constant(23, dtype=tf.int64)
    black = make_batch_augmenter(Augmentation(enabled=True, width_shift=0.2, height_shift=0.2, horizontal_flip=False,
                                              fill_mode="constant", interpolation="nearest"))
    augmented = np.asarray(black(tf.constant(images), seeds))
    assert set(np.unique(augmented)) <= {0.0, 1.0}
    assert (augmented == 0).any(axis=(1, 2, 3)).mean() > 0.5, "most shifted images should show black borders"
    default = make_batch_augmenter(Augmentation(enabled=True, width_shift=0.2, height_shift=0.2, horizontal_flip=False))
    np.testing.assert_allclose(np.asarray(default(tf.constant(images), seeds)), 1.0)  # nearest fill repeats the edge


def test_input_pipeline_runs_without_tf_data_autotuning():
    # Autotuning stalled about one epoch in three for about 20 s here (docs/pipeline.md, "Input pipeline").
    images, labels = images_and_labels()
    augmented = make_dataset(images, labels, 16, seed=0, shuffle=True,
                             augmentation=REFERENCE_AUGMENTATION)
    plain = make_dataset(images, labels, 16, seed=0, shuffle=False)
    assert augmented.options().autotune.enabled is False and plain.options().autotune.enabled is False
    assert sum(len(batch[0]) for batch in augmented.as_numpy_iterator()) == 64


def test_pipe_progress_prints_images_per_second_and_time_left_within_an_epoch():
    """On a pipe (as under `dvc repro` in CI), a line every interval, between Keras' epoch lines."""
    import keras

    from cnn_comparison.builder import build_with_heads
    from cnn_comparison.training import PipeProgress

    images, labels = images_and_labels(64)
    model = build_with_heads("tiny", [keras.layers.Flatten()], {"fashion": [keras.layers.Dense(10, activation="softmax")]})
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy", steps_per_execution=1)
    ticks = iter(range(0, 10_000, 10))  # a clock that moves 10 s per call
    lines = []
    progress = PipeProgress(batch_size=8, interval_seconds=25, clock=lambda: next(ticks), write=lines.append)
    data = make_dataset(images, labels, 8, 0, shuffle=False)
    model.fit(data, epochs=2, callbacks=[progress], verbose=0, shuffle=False)
    assert lines, "no progress line within an epoch"
    first = lines[0]
    assert first.startswith("  epoch 1/2: batch ") and "/8 (" in first and "images/s" in first
    assert "s left in this epoch" in first and "min more if all 2 epochs run" in first
    assert any(line.startswith("  epoch 2/2: batch ") and "if all" not in line for line in lines)
    assert len(lines) < 16, "a line per batch is not every ~30 s"


def test_fit_shows_a_bar_on_a_terminal_and_lines_on_a_pipe(monkeypatch):
    import sys

    from cnn_comparison.training import PipeProgress, progress_display

    monkeypatch.setattr(sys.stdout, "isatty", lambda: True, raising=False)
    assert progress_display(32) == (1, [])
    monkeypatch.setattr(sys.stdout, "isatty", lambda: False, raising=False)
    verbose, callbacks = progress_display(32)
    assert verbose == 2 and [type(callback) for callback in callbacks] == [PipeProgress]


def test_a_multitask_head_reports_its_cross_entropy_over_its_own_task_only(params):
    """Keras' per-head `loss` averages over the whole mixed batch (about half the real value with two
    equal tasks); `cross_entropy` is what the loss curves plot, so it must match a hand computation."""
    config = params["models"]["multitask"]
    model = build_multitask("multitask", config["trunk"], config["heads"])
    recipe = parse_recipe({**config["training"], "epochs": 1, "batch_size": 16}, "models.multitask.training")
    digits, fashion = images_and_labels(48, seed=1), images_and_labels(48, seed=2)
    arrays = {head: {"train_images": images, "train_labels": labels, "validation_images": images,
                     "validation_labels": labels} for head, (images, labels) in (("digits", digits), ("fashion", fashion))}
    history, _ = train_model(model, arrays, recipe, callbacks=[])
    for head, (images, labels) in (("digits", digits), ("fashion", fashion)):
        probabilities = np.asarray(model.predict(images, verbose=0)[head], dtype=np.float64)
        by_hand = -np.mean(np.log(np.clip(probabilities[np.arange(len(labels)), labels], 1e-7, 1.0)))
        assert history.history[f"val_{head}_cross_entropy"][-1] == pytest.approx(by_hand, rel=1e-3)
        assert history.history[f"val_{head}_loss"][-1] == pytest.approx(by_hand / 2, rel=1e-3)  # why it is not plotted
