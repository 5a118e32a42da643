"""Load params.yaml and check model entries before any expensive work starts."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import yaml

TRAINING_KEYS = ("optimizer", "learning_rate", "batch_size", "epochs", "early_stopping_patience", "augmentation", "seed")
AUGMENTATION_KEYS = ("enabled", "width_shift", "height_shift", "horizontal_flip")
# Optional augmentation keys; the defaults are the ImageDataGenerator behaviour the reference used.
OPTIONAL_AUGMENTATION_DEFAULTS = {"fill_mode": "nearest", "interpolation": "bilinear"}
FILL_MODES = ("constant", "nearest", "reflect", "wrap")  # Keras RandomTranslation's; constant fills with 0
INTERPOLATIONS = ("bilinear", "nearest")
# Optional recipe keys and the values that leave a recipe as it was before they existed
# (docs/pipeline.md, "Training recipes").
OPTIONAL_TRAINING_DEFAULTS = {
    "schedule": {"type": "constant"},
    "label_smoothing": 0.0,
    "ema_momentum": None,
    "test_time_flip": False,
}
SCHEDULE_TYPES = ("constant", "warmup_cosine")


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
    fill_mode: str = "nearest"  # what shifted-in pixels get
    interpolation: str = "bilinear"  # nearest keeps every shift a whole number of pixels


@dataclass(frozen=True)
class Schedule:
    """How the learning rate moves over training; ``learning_rate`` is its peak."""

    type: str = "constant"
    warmup_fraction: float = 0.0  # warmup_cosine: share of all steps spent rising linearly from 0


@dataclass(frozen=True)
class Recipe:
    optimizer: str
    learning_rate: float
    batch_size: int
    epochs: int
    early_stopping_patience: int | None
    augmentation: Augmentation
    seed: int
    optimizer_options: Mapping[str, Any] = field(default_factory=dict)  # e.g. momentum, nesterov, weight_decay
    schedule: Schedule = Schedule()
    label_smoothing: float = 0.0
    ema_momentum: float | None = None  # weights averaged over steps; validation and the saved model use the average
    test_time_flip: bool = False  # predictions averaged over the image and its mirror image


def _require(mapping: Any, key: str, where: str) -> Any:
    if not isinstance(mapping, Mapping):
        raise ValueError(f"{where}: expected a mapping, got {mapping!r}")
    if key not in mapping:
        raise ValueError(f"{where}: missing key {key!r}")
    return mapping[key]


def positive_int_or_none(value: Any, where: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{where}: expected a positive integer or null, got {value!r}")
    return value


def _fraction(value: Any, where: str, low: float, high: float) -> float:
    """A number in [low, high); booleans are not numbers here."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value < high:
        raise ValueError(f"{where}: expected a number in [{low}, {high}), got {value!r}")
    return float(value)


def _optimizer(value: Any, where: str) -> tuple[str, dict[str, Any]]:
    """``adam`` or ``{type: sgd, momentum: 0.9, ...}``: a Keras optimizer name and its arguments."""
    if isinstance(value, str):
        return value, {}
    if isinstance(value, Mapping) and isinstance(value.get("type"), str):
        options = {key: option for key, option in value.items() if key != "type"}
        reserved = sorted({"learning_rate", "use_ema", "ema_momentum"} & set(options))
        if reserved:
            raise ValueError(f"{where}: set {reserved} through the recipe keys learning_rate/ema_momentum, "
                             f"not as optimizer arguments")
        return value["type"], options
    raise ValueError(f"{where}: expected an optimizer name such as adam, or a mapping with 'type' "
                     f"(e.g. {{type: sgd, momentum: 0.9}}), got {value!r}")


def _schedule(value: Any, where: str) -> Schedule:
    if not isinstance(value, Mapping) or value.get("type") not in SCHEDULE_TYPES:
        raise ValueError(f"{where}: expected {{type: constant}} or {{type: warmup_cosine, warmup_fraction: F}}, "
                         f"got {value!r}")
    allowed = {"type"} if value["type"] == "constant" else {"type", "warmup_fraction"}
    unknown = sorted(set(value) - allowed)
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {unknown} for type {value['type']!r}; allowed: {sorted(allowed)}")
    warmup = _fraction(value.get("warmup_fraction", 0.0), f"{where}.warmup_fraction", 0.0, 1.0)
    return Schedule(value["type"], warmup)


def parse_recipe(where: str, training: Mapping[str, Any]) -> Recipe:
    """``where`` is the params key path, e.g. ``models.fmnist_1.training``."""
    values = {key: _require(training, key, where) for key in TRAINING_KEYS}
    unknown = sorted(set(training) - set(TRAINING_KEYS) - set(OPTIONAL_TRAINING_DEFAULTS))
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {unknown}; allowed: "
                         f"{sorted([*TRAINING_KEYS, *OPTIONAL_TRAINING_DEFAULTS])}")
    augmentation = values.pop("augmentation")
    augmentation_values = {key: _require(augmentation, key, f"{where}.augmentation") for key in AUGMENTATION_KEYS}
    unknown = sorted(set(augmentation) - set(AUGMENTATION_KEYS) - set(OPTIONAL_AUGMENTATION_DEFAULTS))
    if unknown:
        raise ValueError(f"{where}.augmentation: unknown key(s) {unknown}; allowed: "
                         f"{sorted([*AUGMENTATION_KEYS, *OPTIONAL_AUGMENTATION_DEFAULTS])}")
    for key, choices in (("fill_mode", FILL_MODES), ("interpolation", INTERPOLATIONS)):
        value = augmentation.get(key, OPTIONAL_AUGMENTATION_DEFAULTS[key])
        if value not in choices:
            raise ValueError(f"{where}.augmentation.{key}: expected one of {list(choices)}, got {value!r}")
        augmentation_values[key] = value
    for key in ("width_shift", "height_shift"):
        shift = augmentation_values[key]
        if not isinstance(shift, (int, float)) or not 0 <= shift < 1:
            raise ValueError(f"{where}.augmentation.{key}: expected a fraction in [0, 1), got {shift!r}")
    for key in ("batch_size", "epochs"):
        if positive_int_or_none(values[key], f"{where}.{key}") is None:
            raise ValueError(f"{where}.{key}: must be set")
    if isinstance(values["seed"], bool) or not isinstance(values["seed"], int) or values["seed"] < 0:
        raise ValueError(f"{where}.seed: expected a non-negative integer, got {values['seed']!r}")
    positive_int_or_none(values["early_stopping_patience"], f"{where}.early_stopping_patience")
    if not isinstance(values["learning_rate"], (int, float)) or values["learning_rate"] <= 0:
        raise ValueError(f"{where}.learning_rate: expected a positive number, got {values['learning_rate']!r}")
    values["optimizer"], optimizer_options = _optimizer(values["optimizer"], f"{where}.optimizer")
    optional = {**OPTIONAL_TRAINING_DEFAULTS, **{key: training[key] for key in OPTIONAL_TRAINING_DEFAULTS if key in training}}
    ema_momentum = optional["ema_momentum"]
    if ema_momentum is not None:
        ema_momentum = _fraction(ema_momentum, f"{where}.ema_momentum", 0.0, 1.0)
        if values["early_stopping_patience"]:
            raise ValueError(f"{where}: ema_momentum and early_stopping_patience cannot be combined (early stopping "
                             f"would restore raw weights, not their average); set one of them to null")
    if not isinstance(optional["test_time_flip"], bool):
        raise ValueError(f"{where}.test_time_flip: expected true or false, got {optional['test_time_flip']!r}")
    return Recipe(
        augmentation=Augmentation(**augmentation_values), optimizer_options=optimizer_options,
        schedule=_schedule(optional["schedule"], f"{where}.schedule"),
        label_smoothing=_fraction(optional["label_smoothing"], f"{where}.label_smoothing", 0.0, 1.0),
        ema_momentum=ema_momentum, test_time_flip=optional["test_time_flip"], **values)


MULTITASK = "multitask"  # the key of the multitask model's section, and its name


@dataclass(frozen=True)
class Task:
    """What one output head of a model is evaluated on."""

    dataset: str
    report_title: str


@dataclass(frozen=True)
class ModelSpec:
    """One trainable model, single-task (``models.<name>``) or the multitask model (``multitask``).

    ``tasks`` maps head name to task; a single-task model has one head, named ``None``.
    """

    name: str
    study: str
    tasks: dict[str | None, Task]
    recipe: Recipe
    entry: Mapping[str, Any]

    @property
    def where(self) -> str:
        return MULTITASK if self.name == MULTITASK else f"models.{self.name}"


def _dataset(params: Mapping, dataset: Any, where: str) -> str:
    datasets = _require(params, "datasets", "params.yaml")
    if dataset not in datasets:
        raise ValueError(f"{where}: unknown dataset {dataset!r}; known: {sorted(datasets)}")
    return dataset


def _study(params: Mapping, entry: Mapping, where: str) -> str:
    study = _require(entry, "study", where)
    studies = _require(params, "studies", "params.yaml")
    if study not in studies:
        raise ValueError(f"{where}.study: unknown study {study!r}; declare it under 'studies' (known: {sorted(studies)})")
    return study


def model_spec(params: Mapping, model_name: str) -> ModelSpec:
    """Check a model's entry before any expensive work starts; errors name the key to fix."""
    models = _require(params, "models", "params.yaml")
    if model_name == MULTITASK:
        if MULTITASK in models:
            raise ValueError(f"models.{MULTITASK}: the name {MULTITASK!r} is taken by the multitask section; rename it")
        entry = _require(params, MULTITASK, "params.yaml")
        where = MULTITASK
        tasks = {}
        for task, config in _require(entry, "tasks", where).items():
            tasks[task] = Task(_dataset(params, _require(config, "dataset", f"{where}.tasks.{task}"), f"{where}.tasks.{task}.dataset"),
                               _require(config, "report_title", f"{where}.tasks.{task}"))
            if task not in _require(entry, "heads", where):
                raise ValueError(f"{where}.heads: no head for task {task!r}; add one or remove it from {where}.tasks")
        _require(entry, "trunk", where)
    else:
        if model_name not in models:
            raise ValueError(f"params.yaml: no model {model_name!r} under 'models'; known: {sorted(models)}")
        entry = models[model_name]
        where = f"models.{model_name}"
        dataset = _dataset(params, _require(entry, "dataset", where), f"{where}.dataset")
        tasks = {None: Task(dataset, entry.get("report_title", f"{model_name} Performance"))}
        _require(entry, "layers", where)
    recipe = parse_recipe(f"{where}.training", _require(entry, "training", where))
    return ModelSpec(model_name, _study(params, entry, where), tasks, recipe, entry)
