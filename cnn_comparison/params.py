"""params.yaml as one declarative schema (pydantic), checked whole before any stage does work.

Every stage validates the whole file first, so a mistake anywhere stops the pipeline at its first
stage with the key path to fix (``models.fmnist_1.training.learning_rate: ...``), before data is
loaded and before anything is written. Names that end up in paths and commands (models, studies,
datasets, heads) must match ``NAME_PATTERN``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal, Mapping, Union

import yaml
from pydantic import (AfterValidator, BaseModel, ConfigDict, Discriminator, Field, StringConstraints, Tag, ValidationError,
                      field_validator, model_validator)

NAME_PATTERN = r"^[A-Za-z][A-Za-z0-9_]*$"
Name = Annotated[str, StringConstraints(pattern=NAME_PATTERN)]
FILE_KEYS = ("train_images", "train_labels", "test_images", "test_labels")  # every dataset's four IDX files
# Keys whose values are paths or commands get no leading dash, no slash, no shell characters.
NAME_RULE = "a letter, then letters, digits or underscores"


class Strict(BaseModel):
    """No unknown keys, no silent type coercion ("0.2" is not a number), no NaN or infinity."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)


PositiveInt = Annotated[int, Field(gt=0)]
Fraction = Annotated[float, Field(ge=0.0, lt=1.0)]


class Limits(Strict):
    """Caps for quick runs; ``None`` means use everything the recipe asks for."""

    max_train_samples: PositiveInt | None = None  # first N images of the 80% training split
    max_epochs: PositiveInt | None = None  # min(recipe epochs, this)
    max_eval_samples: PositiveInt | None = None  # first N of the validation split and of the test set


class Split(Strict):
    validation_fraction: Annotated[float, Field(ge=0.01, le=0.5)]
    seed: Annotated[int, Field(ge=0)]


class DataFile(Strict):
    name: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")]
    sha256: Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]


class UrlSource(Strict):
    type: Literal["url"]
    url: str
    suffix: str = ""
    timeout_seconds: Annotated[float, Field(gt=0)] = 20


class DirectorySource(Strict):
    type: Literal["directory"]
    path: str


class PackageSource(Strict):
    type: Literal["debian_package", "npm_package"]
    package: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9@][A-Za-z0-9@/._+-]*$")]
    path: str
    timeout_seconds: Annotated[float, Field(gt=0)] = 300


def _source_kind(entry: Any) -> str | None:
    kind = entry.get("type") if isinstance(entry, Mapping) else getattr(entry, "type", None)
    return {"url": "<url source>", "directory": "<directory source>", "debian_package": "<package source>",
            "npm_package": "<package source>"}.get(kind)


Source = Annotated[Union[Annotated[UrlSource, Tag("<url source>")], Annotated[DirectorySource, Tag("<directory source>")],
                         Annotated[PackageSource, Tag("<package source>")]],
                   Discriminator(_source_kind, custom_error_type="source_type",
                                 custom_error_message="unknown source type; use one of url, directory, "
                                                      "debian_package, npm_package")]


class Dataset(Strict):
    class_names: Annotated[list[str], Field(min_length=2)]
    files: dict[Literal["train_images", "train_labels", "test_images", "test_labels"], DataFile]
    sources: Annotated[list[Source], Field(min_length=1)]

    @field_validator("class_names")
    @classmethod
    def _distinct_class_names(cls, names: list[str]) -> list[str]:
        # A repeated name would label two rows of the classification report alike.
        repeated = sorted({name for name in names if names.count(name) > 1})
        if repeated:
            raise ValueError(f"class names must be distinct; repeated: {repeated}")
        return names

    @field_validator("files")
    @classmethod
    def _all_four_files(cls, files: dict) -> dict:
        missing = [key for key in FILE_KEYS if key not in files]
        if missing:
            raise ValueError(f"missing {missing}; every dataset declares {list(FILE_KEYS)}")
        return files


class Study(Strict):
    title: str
    models: Annotated[list[Name], Field(min_length=1)]
    # One (train, evaluate) stage pair per model and seed: adding a seed runs only its stages.
    seeds: Annotated[list[Annotated[int, Field(ge=0, lt=2**31)]], Field(min_length=1)]
    # plots/<study>/time_to_accuracy.md: when each run first reaches each validation accuracy
    accuracy_thresholds: list[Annotated[float, Field(gt=0, le=1)]] = []

    @field_validator("models", "seeds")
    @classmethod
    def _distinct(cls, values: list) -> list:
        repeated = sorted({value for value in values if values.count(value) > 1})
        if repeated:
            raise ValueError(f"listed more than once: {repeated}")
        return values


class Augmentation(Strict):
    """The reference's ImageDataGenerator transform: uniform shifts of up to a fraction of each axis,
    bilinear and edge-filled by default, and horizontal flips."""

    enabled: bool
    width_shift: Fraction
    height_shift: Fraction
    horizontal_flip: bool
    fill_mode: Literal["constant", "nearest", "reflect", "wrap"] = "nearest"  # constant fills with 0 (black)
    interpolation: Literal["bilinear", "nearest"] = "bilinear"  # nearest keeps every shift whole pixels
    # Random erasing (Zhong et al. 2017, arXiv:1708.04896): with this probability an image gets one
    # rectangle set to 0 (the background of both datasets), covering a uniform 2% to
    # `erasing_max_area` of the image, aspect ratio log-uniform in [0.3, 3.3]. Applied after shifts and flips.
    erasing_probability: Fraction = 0.0
    erasing_max_area: Annotated[float, Field(gt=0.02, le=1)] = 0.4


class Schedule(Strict):
    """How the learning rate moves over training; the recipe's ``learning_rate`` is its peak."""

    type: Literal["constant", "warmup_cosine"] = "constant"
    warmup_fraction: Fraction = 0.0  # warmup_cosine: share of all steps spent rising linearly from 0

    @model_validator(mode="after")
    def _warmup_only_for_warmup_cosine(self) -> "Schedule":
        if self.type == "constant" and self.warmup_fraction:
            raise ValueError("warmup_fraction applies only to type warmup_cosine")
        return self


class Optimizer(BaseModel):
    """``{type: sgd, momentum: 0.9, ...}``: a Keras optimizer name and its constructor arguments."""

    model_config = ConfigDict(extra="allow", frozen=True, strict=True, allow_inf_nan=False)
    type: str

    @model_validator(mode="after")
    def _rate_and_averaging_belong_to_the_recipe(self) -> "Optimizer":
        reserved = sorted({"learning_rate", "use_ema", "ema_momentum"} & set(self.model_extra or {}))
        if reserved:
            raise ValueError(f"set {reserved} through the recipe keys learning_rate/ema_momentum, "
                             f"not as optimizer arguments")
        return self


class Recipe(Strict):
    """How one model trains. The seed is not a recipe key: it comes from the study's ``seeds``."""

    optimizer: Annotated[Union[Annotated[str, Tag("<name>")], Annotated[Optimizer, Tag("<optimizer mapping>")]],
                         Discriminator(lambda value: "<name>" if isinstance(value, str) else "<optimizer mapping>")]
    learning_rate: Annotated[float, Field(gt=0)]
    batch_size: PositiveInt
    epochs: PositiveInt
    early_stopping_patience: PositiveInt | None
    augmentation: Augmentation
    schedule: Schedule = Schedule()
    label_smoothing: Fraction = 0.0
    ema_momentum: Annotated[float, Field(gt=0, lt=1)] | None = None  # validation and saved model use the average
    test_time_flip: bool = False  # predictions averaged over the image and its mirror image
    # N > 0: also the image shifted N pixels up, down, left and right (black fill), each view flipped
    # too with test_time_flip: 5 or 10 views averaged. Evaluation only; training CPU time unchanged.
    test_time_shift: Annotated[int, Field(ge=0, le=4)] = 0
    # Set by the stage from its command line (one stage per study seed), never from the file.
    seed: int = Field(default=0, exclude=True)

    @model_validator(mode="before")
    @classmethod
    def _no_seed_in_the_file(cls, data: Any) -> Any:
        if isinstance(data, Mapping) and "seed" in data:
            raise ValueError("'seed' is not a recipe key: seeds are declared per study (studies.<study>.seeds)")
        return data

    @model_validator(mode="after")
    def _ema_excludes_early_stopping(self) -> "Recipe":
        if self.ema_momentum is not None and self.early_stopping_patience:
            raise ValueError("ema_momentum and early_stopping_patience cannot be combined (early stopping would "
                             "restore raw weights, not their average); set one of them to null")
        return self

    @property
    def optimizer_name(self) -> str:
        return self.optimizer if isinstance(self.optimizer, str) else self.optimizer.type

    @property
    def optimizer_options(self) -> dict[str, Any]:
        return {} if isinstance(self.optimizer, str) else dict(self.optimizer.model_extra or {})


BLOCK_TYPES = ("add", "concatenate")  # a block: the outputs of its branches, added or concatenated
BLOCK_KEYS = {"type", "branches", "activation"}


def block_problems(layers: list, where: str) -> list[str]:
    """The shape of every block in a layer list (nested too): ``branches`` is a list of at least two
    layer lists, each of which may be empty (the identity: a residual's shortcut). Layer arguments
    and output shapes are the builder's to check."""
    problems = []
    for index, layer in enumerate(layers):
        key = f"{where}[{index}]"
        if not isinstance(layer, dict) or layer.get("type") not in BLOCK_TYPES:
            continue
        unknown = sorted(set(layer) - BLOCK_KEYS)
        branches = layer.get("branches")
        if unknown:
            problems.append(f"{key}: unknown key(s) {unknown} for type {layer['type']!r} (a block takes "
                            f"{sorted(BLOCK_KEYS)})")
        if not isinstance(branches, list) or len(branches) < 2 or not all(isinstance(branch, list) for branch in branches):
            problems.append(f"{key}.branches: type {layer['type']!r} needs a list of at least two layer lists "
                            f"([] is the identity), got {branches!r}")
            continue
        for number, branch in enumerate(branches):
            problems += block_problems(branch, f"{key}.branches[{number}]")
    return problems


def _blocks_are_well_formed(layers: list) -> list:
    problems = block_problems(layers, "")
    if problems:
        raise ValueError("; ".join(problems))
    return layers


Layer = Annotated[dict[str, Any], Field(min_length=1)]  # {type: ..., **arguments}; the builder checks types
Layers = Annotated[list[Layer], Field(min_length=1), AfterValidator(_blocks_are_well_formed)]


class SingleTaskModel(Strict):
    dataset: Name
    report_title: str | None = None
    layers: Layers
    training: Recipe


class Task(Strict):
    """What one output head of a model is evaluated on."""

    dataset: Name
    report_title: str
    dedicated_model: Name | None = None  # the single-task model it is compared with


class MultitaskModel(Strict):
    """One shared trunk, one head per task, trained jointly on every task's training split."""

    tasks: Annotated[dict[Name, Task], Field(min_length=1)]
    trunk: Layers
    heads: dict[Name, Layers]
    training: Recipe

    @model_validator(mode="after")
    def _one_head_per_task(self) -> "MultitaskModel":
        if set(self.tasks) != set(self.heads):
            raise ValueError(f"heads {sorted(self.heads)} must match tasks {sorted(self.tasks)}")
        return self


def _model_kind(entry: Any) -> str:
    # A plain union would report both kinds' errors for one mistake; the `tasks` key chooses.
    if isinstance(entry, MultitaskModel) or isinstance(entry, Mapping) and "tasks" in entry:
        return "<multitask model>"
    return "<single-task model>"


ModelEntry = Annotated[Union[Annotated[SingleTaskModel, Tag("<single-task model>")],
                             Annotated[MultitaskModel, Tag("<multitask model>")]], Discriminator(_model_kind)]


class ReferenceComparison(Strict):
    """The study set beside the reference report's results table (reference/cnn_comparison_report.md)."""

    study: Name
    epochs: dict[Name, PositiveInt] = {}  # epochs the report's own runs took (its logs), per model


class CpuShareTarget(Strict):
    """A study's claim: this mean test accuracy in at most this share of a baseline's training CPU seconds."""

    baseline: Name  # a model of another study; its mean training CPU seconds over its seeds
    accuracy: Annotated[float, Field(gt=0, le=1)]
    cpu_share: Annotated[float, Field(gt=0, le=1)]


class Report(Strict):
    """What the `report` stage puts in docs/results.md besides every study's tables and figures."""

    reference: ReferenceComparison
    targets: dict[Name, CpuShareTarget] = {}  # study -> its target
    time_to_accuracy: list[Name] = []  # studies whose time-to-accuracy tables are shown


class Params(Strict):
    limits: Limits = Limits()
    split: Split
    datasets: Annotated[dict[Name, Dataset], Field(min_length=1)]
    studies: Annotated[dict[Name, Study], Field(min_length=1)]
    models: Annotated[dict[Name, ModelEntry], Field(min_length=1)]
    report: Report | None = None

    @model_validator(mode="after")
    def _references_resolve(self) -> "Params":
        errors = self._report_references()
        study_of: dict[str, str] = {}
        for study_name, study in self.studies.items():
            for index, model_name in enumerate(study.models):
                where = f"studies.{study_name}.models[{index}]"
                if model_name not in self.models:
                    errors.append(f"{where}: no model {model_name!r} under 'models'")
                elif model_name in study_of:
                    errors.append(f"{where}: {model_name!r} is already in study {study_of[model_name]!r}; "
                                  f"a model belongs to one study (its results live in metrics/<study>/<model>/)")
                else:
                    study_of[model_name] = study_name
        for model_name, entry in self.models.items():
            where = f"models.{model_name}"
            if model_name not in study_of:
                errors.append(f"{where}: not in any study; add it to a study's `models` list "
                              f"(known studies: {sorted(self.studies)})")
            tasks = entry.tasks if isinstance(entry, MultitaskModel) else {None: entry}
            for task_name, task in tasks.items():
                task_where = f"{where}.dataset" if task_name is None else f"{where}.tasks.{task_name}.dataset"
                if task.dataset not in self.datasets:
                    errors.append(f"{task_where}: unknown dataset {task.dataset!r}; known: {sorted(self.datasets)}")
                    continue
                output = entry.layers[-1] if task_name is None else entry.heads[task_name][-1]
                classes = len(self.datasets[task.dataset].class_names)
                units = output.get("units")
                layers_key = "layers" if task_name is None else f"heads.{task_name}"
                if units is not None and units != classes:
                    errors.append(f"{where}.{layers_key}[-1].units: the output layer has {units!r} units but dataset "
                                  f"{task.dataset!r} has {classes} class_names; they must match")
            if isinstance(entry, MultitaskModel):
                for task_name, task in entry.tasks.items():
                    if task.dedicated_model is not None and task.dedicated_model not in self.models:
                        errors.append(f"{where}.tasks.{task_name}.dedicated_model: no model "
                                      f"{task.dedicated_model!r} under 'models'")
        if errors:
            raise ValueError("; ".join(errors))
        return self

    def _report_references(self) -> list[str]:
        """Every study and model the `report` section names must be declared."""
        if self.report is None:
            return []
        studies = [("report.reference.study", self.report.reference.study)]
        studies += [(f"report.targets.{study}", study) for study in self.report.targets]
        studies += [(f"report.time_to_accuracy[{index}]", study) for index, study in enumerate(self.report.time_to_accuracy)]
        models = [(f"report.reference.epochs.{model}", model) for model in self.report.reference.epochs]
        models += [(f"report.targets.{study}.baseline", target.baseline) for study, target in self.report.targets.items()]
        return ([f"{where}: no study {name!r} under 'studies'" for where, name in studies if name not in self.studies]
                + [f"{where}: no model {name!r} under 'models'" for where, name in models if name not in self.models])

    def study_of(self, model_name: str) -> str:
        return next(name for name, study in self.studies.items() if model_name in study.models)


def _key_path(location: tuple, prefix: str) -> str:
    path = prefix
    for part in location:
        if isinstance(part, int):
            path += f"[{part}]"
        elif not str(part).startswith(("<", "function-", "[key]")):  # union tags, validators: not keys
            path += f".{part}" if path else str(part)
    return path


def describe_validation_error(error: ValidationError, prefix: str = "") -> str:
    """One line per problem: the key path, what is wrong, and the value given."""
    lines = []
    for problem in error.errors(include_url=False):
        path = _key_path(problem["loc"], prefix)
        message = problem["msg"].removeprefix("Value error, ")
        if problem["type"] == "string_pattern_mismatch" and "A-Za-z][A-Za-z0-9_" in message:
            message = f"a name must be {NAME_RULE}"
        elif problem["type"] == "extra_forbidden":
            message = f"unknown key {problem['loc'][-1]!r} (misspelt, or not supported here; docs/pipeline.md lists the keys)"
        shown = "" if problem["type"] in ("missing", "value_error") else f" (got {problem['input']!r})"
        if message.startswith("["):  # block_problems: keys inside the list, e.g. [3].branches[0]
            lines += [f"{path}{part}" for part in message.split("; ")]
            continue
        lines.append(f"{path}: {message}{shown}" if path else message)
    return "; ".join(dict.fromkeys(lines))


def load_params(path: str | Path = "params.yaml") -> dict:
    """The raw mapping (provenance records it as written); ``validated`` checks it."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: params file not found; run from the project root or pass --params")
    with path.open() as handle:
        params = yaml.safe_load(handle)
    if not isinstance(params, dict):
        raise ValueError(f"{path}: expected a mapping at the top level")
    return params


def validated(params: Mapping) -> Params:
    """The whole file checked against the schema; ``ValueError`` lists every problem by key path."""
    try:
        return Params.model_validate(dict(params))
    except ValidationError as error:
        raise ValueError(describe_validation_error(error)) from None


def parse_recipe(training: Mapping[str, Any], where: str = "training") -> Recipe:
    """One recipe on its own (tests, benchmarks); errors carry ``where`` as their key prefix."""
    try:
        return Recipe.model_validate(dict(training))
    except ValidationError as error:
        raise ValueError(describe_validation_error(error, where)) from None


def dataset_entry(params: Params, dataset: str) -> Dataset:
    if dataset not in params.datasets:
        raise ValueError(f"no dataset {dataset!r} under 'datasets'; known: {sorted(params.datasets)}")
    return params.datasets[dataset]


class ModelSpec(BaseModel):
    """One run to train or evaluate: a model's entry, its study, and the seed it runs with.

    ``tasks`` maps head name to task; a single-task model has one head, named after its dataset.
    """

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)
    name: str
    study: str
    seed: int
    tasks: dict[str, Task]
    recipe: Recipe
    entry: Union[SingleTaskModel, MultitaskModel]

    @property
    def where(self) -> str:
        return f"models.{self.name}"


def model_spec(params: Params, model_name: str, seed: int, study: str | None = None) -> ModelSpec:
    """The run ``(model_name, seed)`` (of ``study``, when the caller knows it); all must be declared,
    so a stage cannot run an undeclared seed or write a run into another study's directories."""
    if study is not None and study not in params.studies:
        raise ValueError(f"no study {study!r} under 'studies'; known: {sorted(params.studies)}")
    if model_name not in params.models:
        raise ValueError(f"no model {model_name!r} under 'models'; known: {sorted(params.models)}")
    if study is not None and model_name not in params.studies[study].models:
        raise ValueError(f"studies.{study}.models: no model {model_name!r} (it is in study "
                         f"{params.study_of(model_name)!r})")
    study = params.study_of(model_name)
    if seed not in params.studies[study].seeds:
        raise ValueError(f"studies.{study}.seeds: seed {seed} is not declared (declared: "
                         f"{params.studies[study].seeds}); add it there and run `dvc repro`")
    entry = params.models[model_name]
    if isinstance(entry, MultitaskModel):
        tasks = dict(entry.tasks)
    else:
        tasks = {entry.dataset: Task(dataset=entry.dataset, report_title=entry.report_title or f"{model_name} Performance")}
    return ModelSpec(name=model_name, study=study, seed=seed, tasks=tasks,
                     recipe=entry.training.model_copy(update={"seed": seed}), entry=entry)
