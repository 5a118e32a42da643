"""Load params.yaml and check model entries before any expensive work starts."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import yaml

TRAINING_KEYS = ("optimizer", "learning_rate", "batch_size", "epochs", "early_stopping_patience", "augmentation", "seed")
AUGMENTATION_KEYS = ("enabled", "width_shift", "height_shift", "horizontal_flip")


def load_params(path: str | Path = "params.yaml") -> dict:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: params file not found; run from the project root or pass --params")
    with path.open() as handle:
        params = yaml.safe_load(handle)
    if not isinstance(params, dict):
        raise ValueError(f"{path}: expected a mapping at the top level")
    return params


@dataclass(frozen=True)
class Augmentation:
    enabled: bool
    width_shift: float
    height_shift: float
    horizontal_flip: bool


@dataclass(frozen=True)
class Recipe:
    optimizer: str
    learning_rate: float
    batch_size: int
    epochs: int
    early_stopping_patience: int | None
    augmentation: Augmentation
    seed: int


@dataclass(frozen=True)
class Limits:
    """Caps for quick runs; ``None`` means use everything the recipe asks for."""

    max_train_samples: int | None = None
    max_epochs: int | None = None
    max_eval_samples: int | None = None


def _require(mapping: Any, key: str, where: str) -> Any:
    if not isinstance(mapping, Mapping):
        raise ValueError(f"{where}: expected a mapping, got {mapping!r}")
    if key not in mapping:
        raise ValueError(f"{where}: missing key {key!r}")
    return mapping[key]


def _positive_int_or_none(value: Any, where: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{where}: expected a positive integer or null, got {value!r}")
    return value


def parse_recipe(where: str, training: Mapping[str, Any]) -> Recipe:
    """``where`` is the params key path, e.g. ``models.fmnist_1.training``."""
    values = {key: _require(training, key, where) for key in TRAINING_KEYS}
    augmentation = values.pop("augmentation")
    augmentation_values = {key: _require(augmentation, key, f"{where}.augmentation") for key in AUGMENTATION_KEYS}
    for key in ("width_shift", "height_shift"):
        shift = augmentation_values[key]
        if not isinstance(shift, (int, float)) or not 0 <= shift < 1:
            raise ValueError(f"{where}.augmentation.{key}: expected a fraction in [0, 1), got {shift!r}")
    for key in ("batch_size", "epochs"):
        if _positive_int_or_none(values[key], f"{where}.{key}") is None:
            raise ValueError(f"{where}.{key}: must be set")
    if isinstance(values["seed"], bool) or not isinstance(values["seed"], int) or values["seed"] < 0:
        raise ValueError(f"{where}.seed: expected a non-negative integer, got {values['seed']!r}")
    _positive_int_or_none(values["early_stopping_patience"], f"{where}.early_stopping_patience")
    if not isinstance(values["learning_rate"], (int, float)) or values["learning_rate"] <= 0:
        raise ValueError(f"{where}.learning_rate: expected a positive number, got {values['learning_rate']!r}")
    return Recipe(augmentation=Augmentation(**augmentation_values), **values)


def parse_limits(limits: Mapping[str, Any] | None) -> Limits:
    limits = limits or {}
    unknown = set(limits) - set(Limits.__dataclass_fields__)
    if unknown:
        raise ValueError(f"limits: unknown key(s) {sorted(unknown)}; allowed: {sorted(Limits.__dataclass_fields__)}")
    return Limits(**{key: _positive_int_or_none(value, f"limits.{key}") for key, value in limits.items()})


def model_entry(params: Mapping, model_name: str) -> Mapping[str, Any]:
    models = _require(params, "models", "params.yaml")
    if model_name not in models:
        raise ValueError(f"params.yaml: no model {model_name!r} under 'models'; known: {sorted(models)}")
    entry = models[model_name]
    where = f"models.{model_name}"
    dataset = _require(entry, "dataset", where)
    if dataset not in _require(params, "datasets", "params.yaml"):
        raise ValueError(f"{where}.dataset: unknown dataset {dataset!r}; known: {sorted(params['datasets'])}")
    _require(entry, "layers", where)
    parse_recipe(f"{where}.training", _require(entry, "training", where))
    return entry


def effective_epochs(recipe: Recipe, limits: Limits) -> int:
    return recipe.epochs if limits.max_epochs is None else min(recipe.epochs, limits.max_epochs)
