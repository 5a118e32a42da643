"""Residual and branching networks in params.yaml (issue #34): blocks whose branches are added or
concatenated, nestable, checked by the schema and the builder with the key path."""
from __future__ import annotations

import copy
from collections import Counter

import keras
import pytest
import yaml

from cnn_comparison.builder import build_model
from cnn_comparison.params import model_spec, validated

# He et al. 2016, section 4.2: the CIFAR ResNet-20 (3 stages of 3 basic blocks, 16/32/64 filters),
# on 28x28x1 images, with projection shortcuts (option B) where the shape changes.
RESNET_20 = """
dataset: fashion
layers:
  - {type: conv2d, filters: 16, kernel_size: 3, padding: same, use_bias: false}
  - {type: batch_normalization}
  - {type: activation, activation: relu}
  - &block16
    type: add
    activation: relu
    branches:
      - - {type: conv2d, filters: 16, kernel_size: 3, padding: same, use_bias: false}
        - {type: batch_normalization}
        - {type: activation, activation: relu}
        - {type: conv2d, filters: 16, kernel_size: 3, padding: same, use_bias: false}
        - {type: batch_normalization}
      - []                                   # identity shortcut
  - *block16
  - *block16
  - type: add
    activation: relu
    branches:
      - - {type: conv2d, filters: 32, kernel_size: 3, strides: 2, padding: same, use_bias: false}
        - {type: batch_normalization}
        - {type: activation, activation: relu}
        - {type: conv2d, filters: 32, kernel_size: 3, padding: same, use_bias: false}
        - {type: batch_normalization}
      - - {type: conv2d, filters: 32, kernel_size: 1, strides: 2, use_bias: false}   # projection
        - {type: batch_normalization}
  - &block32
    type: add
    activation: relu
    branches:
      - - {type: conv2d, filters: 32, kernel_size: 3, padding: same, use_bias: false}
        - {type: batch_normalization}
        - {type: activation, activation: relu}
        - {type: conv2d, filters: 32, kernel_size: 3, padding: same, use_bias: false}
        - {type: batch_normalization}
      - []
  - *block32
  - type: add
    activation: relu
    branches:
      - - {type: conv2d, filters: 64, kernel_size: 3, strides: 2, padding: same, use_bias: false}
        - {type: batch_normalization}
        - {type: activation, activation: relu}
        - {type: conv2d, filters: 64, kernel_size: 3, padding: same, use_bias: false}
        - {type: batch_normalization}
      - - {type: conv2d, filters: 64, kernel_size: 1, strides: 2, use_bias: false}
        - {type: batch_normalization}
  - &block64
    type: add
    activation: relu
    branches:
      - - {type: conv2d, filters: 64, kernel_size: 3, padding: same, use_bias: false}
        - {type: batch_normalization}
        - {type: activation, activation: relu}
        - {type: conv2d, filters: 64, kernel_size: 3, padding: same, use_bias: false}
        - {type: batch_normalization}
      - []
  - *block64
  - {type: global_average_pooling2d}
  - {type: dense, units: 10, activation: softmax}
training: {optimizer: adam, learning_rate: 0.001, batch_size: 128, epochs: 1, early_stopping_patience: null,
           augmentation: {enabled: false, width_shift: 0.0, height_shift: 0.0, horizontal_flip: false}}
"""


def keras_resnet_20() -> keras.Model:
    """The same network written as one would in plain Keras code."""
    layers = keras.layers

    def basic_block(x, filters: int, strides: int = 1):
        y = layers.Conv2D(filters, 3, strides=strides, padding="same", use_bias=False)(x)
        y = layers.BatchNormalization()(y)
        y = layers.Activation("relu")(y)
        y = layers.Conv2D(filters, 3, padding="same", use_bias=False)(y)
        y = layers.BatchNormalization()(y)
        if strides != 1:
            x = layers.Conv2D(filters, 1, strides=strides, use_bias=False)(x)
            x = layers.BatchNormalization()(x)
        return layers.Activation("relu")(layers.Add()([y, x]))

    inputs = keras.Input((28, 28, 1))
    x = layers.Activation("relu")(layers.BatchNormalization()(layers.Conv2D(16, 3, padding="same", use_bias=False)(inputs)))
    for filters, first_strides in ((16, 1), (32, 2), (64, 2)):
        for index in range(3):
            x = basic_block(x, filters, first_strides if index == 0 else 1)
    outputs = layers.Dense(10, activation="softmax")(layers.GlobalAveragePooling2D()(x))
    return keras.Model(inputs, outputs)


def with_model(params: dict, entry: dict, name: str = "resnet_20") -> dict:
    changed = copy.deepcopy(params)
    changed["models"][name] = entry
    changed["studies"]["fashion_cnns"]["models"].append(name)
    return changed


def layer_shapes(model: keras.Model) -> Counter:
    return Counter((type(layer).__name__, tuple(layer.output.shape)[1:]) for layer in model.layers
                   if not isinstance(layer, keras.layers.InputLayer))


def test_resnet_20_from_params_yaml_is_the_keras_resnet_20(params):
    declared = build_model(model_spec(validated(with_model(params, yaml.safe_load(RESNET_20))), "resnet_20", 42))
    plain = keras_resnet_20()
    # By hand (convolutions without bias, batch normalization's 4 numbers per channel), He et al.'s 0.27M:
    stem = 9 * 16 + 4 * 16
    stage_1 = 3 * (2 * 9 * 16 * 16 + 2 * 4 * 16)
    stage_2 = (9 * 16 * 32 + 9 * 32 * 32 + 16 * 32 + 3 * 4 * 32) + 2 * (2 * 9 * 32 * 32 + 2 * 4 * 32)
    stage_3 = (9 * 32 * 64 + 9 * 64 * 64 + 32 * 64 + 3 * 4 * 64) + 2 * (2 * 9 * 64 * 64 + 2 * 4 * 64)
    assert declared.count_params() == plain.count_params() == stem + stage_1 + stage_2 + stage_3 + 64 * 10 + 10
    assert layer_shapes(declared) == layer_shapes(plain)
    assert sum(isinstance(layer, keras.layers.Conv2D) for layer in declared.layers) == 21  # 19 + 2 projections
    assert declared.output_shape == (None, 10)


def test_concatenated_branches_nest_inside_an_added_block(params):
    """Inception-style branches inside a residual block: 8 + 8 + 16 channels, added to a 32-channel input."""
    entry = {"dataset": "fashion", "training": yaml.safe_load(RESNET_20)["training"], "layers": [
        {"type": "conv2d", "filters": 32, "kernel_size": 3, "padding": "same"},
        {"type": "add", "branches": [
            [{"type": "concatenate", "branches": [
                [{"type": "conv2d", "filters": 8, "kernel_size": 1}],
                [{"type": "conv2d", "filters": 8, "kernel_size": 3, "padding": "same"}],
                [{"type": "max_pooling2d", "pool_size": 3, "strides": 1, "padding": "same"},
                 {"type": "conv2d", "filters": 16, "kernel_size": 1}]]}],
            []], "activation": "relu"},
        {"type": "flatten"}, {"type": "dense", "units": 10, "activation": "softmax"}]}
    model = build_model(model_spec(validated(with_model(params, entry, "inception")), "inception", 42))
    shapes = layer_shapes(model)
    assert shapes[("Concatenate", (28, 28, 32))] == 1 and shapes[("Add", (28, 28, 32))] == 1
    assert model.count_params() == 320 + (32 * 8 + 8) + (9 * 32 * 8 + 8) + (32 * 16 + 16) + 28 * 28 * 32 * 10 + 10


def test_an_add_of_mismatched_shapes_names_both_branches_and_their_shapes(params):
    entry = yaml.safe_load(RESNET_20)
    entry["layers"][6]["branches"][1] = []  # the first 32-filter block without its projection
    with pytest.raises(ValueError) as raised:
        build_model(model_spec(validated(with_model(params, entry)), "resnet_20", 42))
    message = str(raised.value)
    assert "model 'resnet_20', layers[6] (add): branches[0] gives (14, 14, 32), branches[1] gives (28, 28, 16)" in message
    assert "projection" in message


def test_the_schema_names_a_malformed_block_by_its_key_path(params):
    entry = yaml.safe_load(RESNET_20)
    entry["layers"][4] = {"type": "add", "branches": [[{"type": "flatten"}]], "activaton": "relu"}
    entry["layers"][3]["branches"][0].append({"type": "concatenate", "branches": "both"})
    with pytest.raises(ValueError) as raised:
        validated(with_model(params, entry))
    message = str(raised.value)
    assert "models.resnet_20.layers[3].branches[0][5].branches: type 'concatenate' needs a list of at least two" in message
    assert "models.resnet_20.layers[4]: unknown key(s) ['activaton'] for type 'add'" in message
    assert "models.resnet_20.layers[4].branches: type 'add' needs a list of at least two layer lists" in message


def test_a_layer_inside_a_branch_is_named_by_its_full_key_path(params):
    entry = yaml.safe_load(RESNET_20)
    entry["layers"][6]["branches"][1][0]["filters"] = "32"
    with pytest.raises(ValueError, match=r"model 'resnet_20', layers\[6\]\.branches\[1\]\[0\] \(conv2d\): filters must be"):
        build_model(model_spec(validated(with_model(params, entry)), "resnet_20", 42))
