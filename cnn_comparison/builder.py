"""Build Keras models from the declarative layer lists in params.yaml.

One builder serves both studies, so a layer list that works in the CNN study
works unchanged as the multitask trunk.
"""
from __future__ import annotations

import re
from typing import Any, Mapping, Sequence

import keras

from cnn_comparison.params import ModelSpec, MultitaskModel

IMAGE_SHAPE = (28, 28, 1)

LAYER_TYPES: dict[str, type] = {
    "conv2d": keras.layers.Conv2D,
    "separable_conv2d": keras.layers.SeparableConv2D,
    "max_pooling2d": keras.layers.MaxPooling2D,
    "average_pooling2d": keras.layers.AveragePooling2D,
    "global_average_pooling2d": keras.layers.GlobalAveragePooling2D,
    "batch_normalization": keras.layers.BatchNormalization,
    "dropout": keras.layers.Dropout,
    "spatial_dropout2d": keras.layers.SpatialDropout2D,
    "flatten": keras.layers.Flatten,
    "dense": keras.layers.Dense,
    "activation": keras.layers.Activation,
}
# Arguments that are numbers (or lists of them): Keras would fail on a string such as "32" with a
# message naming neither the argument nor the model.
NUMERIC_ARGUMENTS = {"filters", "units", "kernel_size", "pool_size", "strides", "dilation_rate", "rate",
                     "depth_multiplier", "momentum", "epsilon"}


def build_layer(model_name: str, index: int, spec: Mapping[str, Any], key_prefix: str = "layers") -> keras.layers.Layer:
    """Turn one ``{type: ..., **arguments}`` entry into a layer, or explain what is wrong."""
    where = f"model {model_name!r}, {key_prefix}[{index}]"
    if not isinstance(spec, Mapping) or "type" not in spec:
        raise ValueError(f"{where}: missing key 'type' (got {spec!r}); use one of {sorted(LAYER_TYPES)}")
    layer_type = spec["type"]
    if layer_type not in LAYER_TYPES:
        raise ValueError(f"{where}: unknown layer type {layer_type!r} (key 'type'); use one of {sorted(LAYER_TYPES)}")
    arguments = {key: value for key, value in spec.items() if key != "type"}
    for key, value in arguments.items():
        values = value if isinstance(value, (list, tuple)) else [value]
        if key in NUMERIC_ARGUMENTS and not all(isinstance(item, (int, float)) and not isinstance(item, bool)
                                                for item in values):
            raise ValueError(f"{where} ({layer_type}): {key} must be a number (or a list of numbers), got {value!r}")
    try:
        layer = LAYER_TYPES[layer_type](**arguments)
    except (TypeError, ValueError) as error:
        raise ValueError(f"{where} ({layer_type}): bad arguments {arguments}: {error}") from error
    layer.params_key = f"{where} ({layer_type})"  # for errors found when the layer meets its input shape
    return layer


def apply_layer(layer: keras.layers.Layer, inputs: Any) -> Any:
    """``layer(inputs)``, with a shape problem (a stack that shrinks the image below one pixel) named
    by model and params key, and the input's shape."""
    try:
        return layer(inputs)
    except ValueError as error:
        message = re.sub(r"\x1b\[[0-9;]*m", "", str(error))  # Keras' bold text
        reason = next((line.strip() for line in message.splitlines() if "size" in line or "shape" in line),
                      message.splitlines()[0]).rstrip(".")
        raise ValueError(f"{getattr(layer, 'params_key', layer.name)}: cannot take an input of shape "
                         f"{tuple(inputs.shape)[1:]}: {reason}. Remove a pooling or strided layer before it, "
                         f"or use padding: same") from error


def build_layers(model_name: str, specs: Sequence[Mapping[str, Any]], key_prefix: str = "layers") -> list[keras.layers.Layer]:
    if not isinstance(specs, Sequence) or isinstance(specs, str) or not specs:
        raise ValueError(f"model {model_name!r}: key {key_prefix!r} must be a non-empty list of layers")
    return [build_layer(model_name, index, spec, key_prefix) for index, spec in enumerate(specs)]


def build_sequential(model_name: str, specs: Sequence[Mapping[str, Any]]) -> keras.Model:
    """The layer list as a plain Keras Sequential: the reference report's code (the benchmark's baseline)."""
    layers = build_layers(model_name, specs)
    return keras.Sequential([keras.Input(shape=IMAGE_SHAPE), *layers], name=model_name)


def build_with_heads(model_name: str, trunk: Sequence[keras.layers.Layer],
                     heads: Mapping[str, Sequence[keras.layers.Layer]]) -> keras.Model:
    """One trunk feeding one or more heads; each output is named after its head (task or dataset),
    so losses, metrics, logs and metrics files are keyed the same way for every model."""
    inputs = keras.Input(shape=IMAGE_SHAPE, name="image")
    features = inputs
    for layer in trunk:
        features = apply_layer(layer, features)
    outputs = {}
    for head_name, head_layers in heads.items():
        head = features
        for layer in head_layers[:-1]:
            head = apply_layer(layer, head)
        last = head_layers[-1]
        config = {**last.get_config(), "name": head_name}
        if keras.dtype_policies.get(config.get("dtype") or "float32").compute_dtype != "float32":
            config["dtype"] = "float32"  # a layer list in mixed precision (a layer's `dtype`, as the
            # benchmark sets it): probabilities and the loss stay float32 (Keras mixed-precision guide)
        renamed = last.__class__.from_config(config)
        renamed.params_key = getattr(last, "params_key", head_name)
        outputs[head_name] = apply_layer(renamed, head)
    return keras.Model(inputs=inputs, outputs=outputs, name=model_name)


def build_multitask(model_name: str, trunk_specs: Sequence[Mapping[str, Any]],
                    head_specs: Mapping[str, Sequence[Mapping[str, Any]]]) -> keras.Model:
    """One shared trunk feeding one head per task."""
    return build_with_heads(model_name, build_layers(model_name, trunk_specs, "trunk"),
                            {task: build_layers(model_name, specs, f"heads.{task}")
                             for task, specs in head_specs.items()})


def build_model(spec: ModelSpec) -> keras.Model:
    """The model a params entry declares: a layer list whose last layer is its one head (named after
    its dataset), or a trunk with one head per task."""
    if isinstance(spec.entry, MultitaskModel):
        return build_multitask(spec.name, spec.entry.trunk, {task: spec.entry.heads[task] for task in spec.tasks})
    layers = build_layers(spec.name, spec.entry.layers)
    (head_name,) = spec.tasks
    return build_with_heads(spec.name, layers[:-1], {head_name: layers[-1:]})
