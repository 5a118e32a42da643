"""What a model costs to use: multiply-accumulates per image, and how well its confidence is calibrated.

Multiply-accumulates (MACs) are counted the way model tables (timm, torchvision's GFLOPS / 2) count
them: the multiplications of convolutions and dense layers, one per weight use per output
position; batch normalization, activations, pooling and additions are left out (they are a few
percent of a CNN's arithmetic, and counting them differs between tools).
"""
from __future__ import annotations

import math
import statistics
import time
from typing import Callable

import keras
import numpy as np

CALIBRATION_BINS = 15  # Guo et al. 2017, "On Calibration of Modern Neural Networks"


def _spatial_positions(shape) -> int:
    """Output positions per image: height x width of a conv output, or every leading axis of a dense one."""
    return math.prod(int(size) for size in tuple(shape)[1:-1])


def layer_macs(layer: keras.layers.Layer) -> int:
    """MACs of one layer for one image (0 for layers without multiplications by weights)."""
    if isinstance(layer, (keras.layers.Conv2D, keras.layers.DepthwiseConv2D, keras.layers.SeparableConv2D)):
        kernel_height, kernel_width = layer.kernel_size
        input_channels = int(layer.input.shape[-1])
        positions = _spatial_positions(layer.output.shape)
        if isinstance(layer, keras.layers.SeparableConv2D):
            depthwise = positions * kernel_height * kernel_width * input_channels * layer.depth_multiplier
            return depthwise + positions * input_channels * layer.depth_multiplier * layer.filters
        if isinstance(layer, keras.layers.DepthwiseConv2D):
            return positions * kernel_height * kernel_width * input_channels * layer.depth_multiplier
        return positions * kernel_height * kernel_width * (input_channels // layer.groups) * layer.filters
    if isinstance(layer, keras.layers.Dense):
        return _spatial_positions(layer.output.shape) * int(layer.input.shape[-1]) * layer.units
    return 0


def multiply_accumulates(model: keras.Model) -> int:
    """MACs per image of a built Functional model."""
    return sum(layer_macs(layer) for layer in model.layers)


def reliability_bins(probabilities: np.ndarray, labels: np.ndarray, bins: int = CALIBRATION_BINS) -> list[dict]:
    """Per confidence bin ((0, 1/15], (1/15, 2/15], ...): images, mean confidence and accuracy of the
    top prediction. Empty bins are kept, with no confidence or accuracy."""
    confidence = probabilities.max(axis=1)
    correct = probabilities.argmax(axis=1) == labels
    edges = np.linspace(0.0, 1.0, bins + 1)
    index = np.clip(np.searchsorted(edges, confidence, side="left") - 1, 0, bins - 1)
    rows = []
    for number in range(bins):
        members = index == number
        count = int(members.sum())
        rows.append({"bin": number + 1, "lower": float(edges[number]), "upper": float(edges[number + 1]),
                     "images": count,
                     "confidence": float(confidence[members].mean()) if count else None,
                     "accuracy": float(correct[members].mean()) if count else None})
    return rows


def expected_calibration_error(probabilities: np.ndarray, labels: np.ndarray, bins: int = CALIBRATION_BINS) -> float:
    """Sum over bins of |accuracy - confidence|, weighted by the share of images in the bin."""
    total = len(labels)
    return float(sum(row["images"] / total * abs(row["accuracy"] - row["confidence"])
                     for row in reliability_bins(probabilities, labels, bins) if row["images"]))


def images_per_second(predict: Callable[[np.ndarray], object], images: np.ndarray, warm_up: int = 2,
                      timed: int = 7) -> float:
    """Median throughput of ``predict`` on one batch over ``timed`` calls after ``warm_up`` (graph
    tracing, caches): what one call on a batch of this size costs on this machine."""
    for _ in range(warm_up):
        predict(images)
    seconds = []
    for _ in range(timed):
        start = time.perf_counter()
        predict(images)
        seconds.append(time.perf_counter() - start)
    return round(len(images) / statistics.median(seconds), 1)
