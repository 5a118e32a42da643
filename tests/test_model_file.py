"""A saved model is byte-deterministic: identical weights give an identical `.keras` file (issue #33)."""
import time
import zipfile

import keras
import numpy as np

from cnn_comparison.model_file import FIXED_DATE, renumber_shared_objects, save_model


def small_model() -> keras.Model:
    keras.utils.set_random_seed(3)
    model = keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Conv2D(4, 3), keras.layers.BatchNormalization(),
                              keras.layers.Flatten(), keras.layers.Dense(10, activation="softmax")])
    model.compile("adam", "categorical_crossentropy")
    return model


def test_two_saves_of_the_same_weights_are_the_same_bytes_and_load_back(tmp_path):
    model = small_model()
    save_model(model, tmp_path / "a.keras")
    time.sleep(1.1)  # Keras' own save would record another date, and zip entry time, here
    save_model(model, tmp_path / "b.keras")
    assert (tmp_path / "a.keras").read_bytes() == (tmp_path / "b.keras").read_bytes()
    with zipfile.ZipFile(tmp_path / "a.keras") as archive:
        assert {entry.date_time for entry in archive.infolist()} == {FIXED_DATE}
        assert b"date_saved" not in archive.read("metadata.json")
        assert b"shared_object_id\": 1" in archive.read("config.json")
    images = np.random.default_rng(0).random((3, 28, 28, 1), dtype=np.float32)
    loaded = keras.models.load_model(tmp_path / "a.keras")
    np.testing.assert_array_equal(loaded.predict(images, verbose=0), model.predict(images, verbose=0))
    assert [layer.dtype_policy.name for layer in loaded.layers] == [layer.dtype_policy.name for layer in model.layers]


def test_keras_own_save_differs_between_two_saves(tmp_path):
    """What the normalization is for: without it the file changes with the clock and the process."""
    model = small_model()
    model.save(tmp_path / "a.keras")
    time.sleep(1.1)
    model.save(tmp_path / "b.keras")
    assert (tmp_path / "a.keras").read_bytes() != (tmp_path / "b.keras").read_bytes()


def test_shared_object_ids_are_numbered_by_first_appearance():
    config = b'{"a": {"shared_object_id": 140009}, "b": {"shared_object_id": 7788}, "c": {"shared_object_id": 140009}}'
    assert renumber_shared_objects(config) == (
        b'{"a": {"shared_object_id": 1}, "b": {"shared_object_id": 2}, "c": {"shared_object_id": 1}}')
