"""Multiply-accumulates against a hand count, expected calibration error on known cases (issue #34)."""
import keras
import numpy as np
import pytest

from cnn_comparison.costs import expected_calibration_error, images_per_second, multiply_accumulates, reliability_bins


def test_multiply_accumulates_match_a_hand_count():
    inputs = keras.Input((28, 28, 1))
    x = keras.layers.Conv2D(8, 3, padding="same")(inputs)                 # 28*28 positions * 3*3*1 * 8
    x = keras.layers.BatchNormalization()(x)                             # not counted
    x = keras.layers.MaxPooling2D()(x)                                   # 14x14x8
    x = keras.layers.SeparableConv2D(16, 3, padding="valid")(x)          # 12*12 * (3*3*8 + 8*16)
    x = keras.layers.Conv2D(16, 1, strides=2)(x)                         # 6*6 * 1*1*16 * 16
    residual = keras.layers.Add()([x, keras.layers.Conv2D(16, 1)(x)])    # 6*6 * 16*16; the add is not counted
    x = keras.layers.Flatten()(residual)                                 # 576
    outputs = keras.layers.Dense(10)(x)                                  # 576 * 10
    model = keras.Model(inputs, outputs)
    hand = 28 * 28 * 9 * 8 + 12 * 12 * (9 * 8 + 8 * 16) + 6 * 6 * 16 * 16 + 6 * 6 * 16 * 16 + 576 * 10
    assert multiply_accumulates(model) == hand


def test_expected_calibration_error_of_known_cases():
    labels = np.array([0, 0, 1, 1])
    # Confident and always right: calibrated only if the confidence is 1.
    certain = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 1.0]])
    assert expected_calibration_error(certain, labels) == 0.0
    # 0.9 confident, right 2 times in 4: |0.5 - 0.9| = 0.4 in the one occupied bin.
    overconfident = np.array([[0.9, 0.1], [0.1, 0.9], [0.1, 0.9], [0.9, 0.1]])
    assert expected_calibration_error(overconfident, labels) == pytest.approx(0.4)
    # Two bins, half the images each: at 0.95 both right, at 0.6 one of two right:
    # 0.5 * |1 - 0.95| + 0.5 * |0.5 - 0.6| = 0.075.
    mixed = np.array([[0.95, 0.05], [0.95, 0.05], [0.4, 0.6], [0.6, 0.4]])
    assert expected_calibration_error(mixed, labels) == pytest.approx(0.075)
    bins = reliability_bins(mixed, labels)
    assert len(bins) == 15 and sum(row["images"] for row in bins) == 4
    assert [row for row in bins if row["images"]][-1]["accuracy"] == 1.0


def test_images_per_second_is_the_median_of_the_timed_calls():
    calls = []
    assert images_per_second(calls.append, np.zeros((256, 1)), warm_up=2, timed=5) > 0
    assert len(calls) == 7
