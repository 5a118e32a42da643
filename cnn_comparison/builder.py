"""Build Keras models from the declarative layer lists in params.yaml.

One builder serves both studies, so a layer list that works in the CNN study
works unchanged as the multitask trunk. Models are Keras Functional models: a layer list is a chain,
and a block (``{type: add | concatenate, branches: [[...], [...]], activation: relu}``) feeds its
input to every branch and adds or concatenates their outputs, which is how residual networks
(an identity ``[]`` or projection shortcut beside the main branch) and Inception-style branches
are written. Blocks nest: a branch is a layer list like any other.
"""
from __future__ import annotations

import re
from typing import Any, Mapping, Sequence

import keras

from cnn_comparison.params import BLOCK_TYPES, ModelSpec, MultitaskModel

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


class Block:
    """A block of a layer list: its branches (lists of layers and blocks; empty is the identity), the
    Keras layer that merges their outputs, and an optional activation after it."""

    def __init__(self, kind: str, branches: list[list[Any]], activation: keras.layers.Layer | None, where: str) -> None:
        self.kind, self.branches, self.activation, self.where = kind, branches, activation, where
        self.merge = keras.layers.Add() if kind == "add" else keras.layers.Concatenate()

    def __call__(self, inputs: Any) -> Any:
        outputs = [apply_layers(branch, inputs) for branch in self.branches]
        shapes = [tuple(output.shape)[1:] for output in outputs]
        mismatched = (len(set(shapes)) > 1 if self.kind == "add" else len({shape[:-1] for shape in shapes}) > 1)
        if mismatched:
            given = ", ".join(f"branches[{index}] gives {shape}" for index, shape in enumerate(shapes))
            need = ("the same shape to be added: give the shortcut a projection, e.g. [{type: conv2d, filters: "
                    f"{shapes[0][-1]}, kernel_size: 1, strides: ...}}]" if self.kind == "add"
                    else "the same height and width to be concatenated")
            raise ValueError(f"{self.where} ({self.kind}): {given}; the branches need {need}")
        merged = self.merge(outputs)
        return merged if self.activation is None else self.activation(merged)


def build_layer(model_name: str, index: int, spec: Mapping[str, Any], key_prefix: str = "layers") -> Any:
    """Turn one ``{type: ..., **arguments}`` entry into a layer (or a block of them), or explain what is wrong."""
    where = f"model {model_name!r}, {key_prefix}[{index}]"
    if not isinstance(spec, Mapping) or "type" not in spec:
        raise ValueError(f"{where}: missing key 'type' (got {spec!r}); use one of {sorted(LAYER_TYPES)} or a block "
                         f"{list(BLOCK_TYPES)}")
    layer_type = spec["type"]
    if layer_type in BLOCK_TYPES:
        branches = [build_layers(model_name, branch, f"{key_prefix}[{index}].branches[{number}]", allow_empty=True)
                    for number, branch in enumerate(spec["branches"])]
        activation = spec.get("activation")
        return Block(layer_type, branches, None if activation is None else keras.layers.Activation(activation), where)
    if layer_type not in LAYER_TYPES:
        raise ValueError(f"{where}: unknown layer type {layer_type!r} (key 'type'); use one of {sorted(LAYER_TYPES)} "
                         f"or a block {list(BLOCK_TYPES)}")
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


def apply_layer(layer: Any, inputs: Any) -> Any:
    """``layer(inputs)``, with a shape problem (a stack that shrinks the image below one pixel) named
    by model and params key, and the input's shape."""
    if isinstance(layer, Block):
        return layer(inputs)
    try:
        return layer(inputs)
    except ValueError as error:
        message = re.sub(r"\x1b\[[0-9;]*m", "", str(error))  # Keras' bold text
        reason = next((line.strip() for line in message.splitlines() if "size" in line or "shape" in line),
                      message.splitlines()[0]).rstrip(".")
        raise ValueError(f"{getattr(layer, 'params_key', layer.name)}: cannot take an input of shape "
                         f"{tuple(inputs.shape)[1:]}: {reason}. Remove a pooling or strided layer before it, "
                         f"or use padding: same") from error


def apply_layers(layers: Sequence[Any], inputs: Any) -> Any:
    for layer in layers:
        inputs = apply_layer(layer, inputs)
    return inputs


def build_layers(model_name: str, specs: Sequence[Mapping[str, Any]], key_prefix: str = "layers",
                 allow_empty: bool = False) -> list[Any]:
    if not isinstance(specs, Sequence) or isinstance(specs, str) or not (specs or allow_empty):
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
    features = apply_layers(trunk, inputs)
    outputs = {}
    for head_name, head_layers in heads.items():
        head = apply_layers(head_layers[:-1], features)
        last = head_layers[-1]
        if isinstance(last, Block):
            raise ValueError(f"{last.where}: a model's last layer is its output and cannot be a block; add a "
                             f"dense layer with one unit per class after it")
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
