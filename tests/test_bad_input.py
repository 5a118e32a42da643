"""Bad params (issue #24): each case stops before data is read, naming the key path and what is allowed.

The cases are the ones a new user tried; docs/pipeline.md ("Bad input, faults and interruptions")
keeps the table of cases and where each is handled.
"""
from __future__ import annotations

import copy
import re
import subprocess
import sys

import pytest
import yaml

from cnn_comparison.builder import build_model
from cnn_comparison.params import NAME_PATTERN, model_spec, validated

INJECTION = "x;touch owned;echo"


def at(*path):
    """A change that sets params[path...] to a value."""
    def change(value):
        def apply(params):
            node = params
            for key in path[:-1]:
                node = node[key]
            node[path[-1]] = value
        return apply
    return change


def remove(*path):
    def apply(params):
        node = params
        for key in path[:-1]:
            node = node[key]
        del node[path[-1]]
    return apply


def add_model(name):
    def apply(params):
        params["models"][name] = copy.deepcopy(params["models"]["fmnist_1"])
        params["studies"]["fashion_cnns"]["models"].append(name)
    return apply


def rename_head(params):
    params["models"]["multitask"]["heads"]["a;b"] = params["models"]["multitask"]["heads"].pop("digits")


# (case, change, message fragment): checked by the schema, in every stage, before any data is read
SCHEMA_CASES = [
    ("model name with shell characters", add_model(INJECTION), f"models.{INJECTION}: a name must be a letter"),
    ("model name with a space", add_model("fashion cnn"), "models.fashion cnn: a name must be a letter"),
    ("study name", lambda p: p["studies"].__setitem__("a b", p["studies"].pop("fashion_cnns")),
     "studies.a b: a name must be a letter"),
    ("dataset name with a path", lambda p: p["datasets"].__setitem__("../x", p["datasets"].pop("fashion")),
     "datasets.../x: a name must be a letter"),
    ("head name", rename_head, "models.multitask.heads.a;b: a name must be a letter"),
    ("class_names not matching the output layer",
     lambda p: p["datasets"]["fashion"].__setitem__("class_names", p["datasets"]["fashion"]["class_names"][:9]),
     "models.fmnist_1.layers[-1].units: the output layer has 10 units but dataset 'fashion' has 9 class_names"),
    ("output layer of 5 units for 10 classes",
     lambda p: p["models"]["fmnist_1"]["layers"][-1].__setitem__("units", 5),
     "models.fmnist_1.layers[-1].units: the output layer has 5 units but dataset 'fashion' has 10 class_names"),
    ("validation_fraction 0", at("split", "validation_fraction")(0), "split.validation_fraction: Input should be greater"),
    ("validation_fraction 1", at("split", "validation_fraction")(1), "split.validation_fraction: Input should be less"),
    ("validation_fraction 0.0001", at("split", "validation_fraction")(0.0001), "split.validation_fraction: Input should"),
    ("validation_fraction as a string", at("split", "validation_fraction")("0.2"),
     "split.validation_fraction: Input should be a valid number (got '0.2')"),
    ("split seed 'abc'", at("split", "seed")("abc"), "split.seed: Input should be a valid integer (got 'abc')"),
    ("unknown dataset", at("models", "fmnist_1", "dataset")("kmnist"),
     "models.fmnist_1.dataset: unknown dataset 'kmnist'; known: ['fashion', 'mnist']"),
    ("model without dataset", remove("models", "fmnist_1", "dataset"), "models.fmnist_1.dataset: Field required"),
    ("source of unknown type", lambda p: p["datasets"]["fashion"]["sources"].append({"type": "ftp", "url": "x"}),
     "datasets.fashion.sources[4]: unknown source type; use one of url, directory"),
    ("file without sha256", remove("datasets", "fashion", "files", "train_images", "sha256"),
     "datasets.fashion.files.train_images.sha256: Field required"),
    ("learning_rate NaN", at("models", "fmnist_1", "training", "learning_rate")(float("nan")),
     "models.fmnist_1.training.learning_rate: Input should be a finite number"),
    ("epochs infinite", at("models", "fmnist_1", "training", "epochs")(float("inf")),
     "models.fmnist_1.training.epochs: Input should be a valid integer"),
    ("a training key that does not exist", at("models", "fmnist_1", "training", "precision")("mixed_bfloat16"),
     "models.fmnist_1.training.precision: unknown key 'precision'"),
    ("repeated class names",
     lambda p: p["datasets"]["fashion"]["class_names"].__setitem__(1, p["datasets"]["fashion"]["class_names"][0]),
     "datasets.fashion.class_names: class names must be distinct; repeated: ['T-shirt/top']"),
    ("max_epochs true (DVC compares it equal to 1)", at("limits", "max_epochs")(True),
     "limits.max_epochs: Input should be a valid integer (got True)"),
    ("model name with a quote", add_model("q';touch owned;echo '"), "models.q';touch owned;echo ': a name must be"),
    ("study name with a path", lambda p: p["studies"].__setitem__("../evil", p["studies"].pop("fast_cnn")),
     "studies.../evil: a name must be a letter"),
]
# (case, change, message fragment): layer arguments, checked by the builder, which train runs before reading data
BUILDER_CASES = [
    ("filters as a string", lambda p: p["models"]["fmnist_1"]["layers"][0].__setitem__("filters", "32"),
     "model 'fmnist_1', layers[0] (conv2d): filters must be a number (or a list of numbers), got '32'"),
    ("a stack that shrinks the image below one pixel",
     lambda p: p["models"]["fmnist_1"]["layers"].__setitem__(slice(0, 0), [{"type": "max_pooling2d"}] * 5),
     "model 'fmnist_1', layers[4] (max_pooling2d): cannot take an input of shape (1, 1, 1)"),
]


def changed(params: dict, change) -> dict:
    result = copy.deepcopy(params)
    change(result)
    return result


@pytest.mark.parametrize("case, change, message", SCHEMA_CASES, ids=[case[0] for case in SCHEMA_CASES])
def test_the_schema_names_the_key_and_what_is_allowed(params, case, change, message):
    with pytest.raises(ValueError) as raised:
        validated(changed(params, change))
    assert message in str(raised.value)


@pytest.mark.parametrize("case, change, message", BUILDER_CASES, ids=[case[0] for case in BUILDER_CASES])
def test_the_builder_names_the_model_and_layer(params, case, change, message):
    bad = validated(changed(params, change))
    with pytest.raises(ValueError) as raised:
        build_model(model_spec(bad, "fmnist_1", 42))
    assert message in str(raised.value)
    assert "\x1b[" not in str(raised.value)  # no terminal escape codes from Keras' message


@pytest.mark.end_to_end  # a stage script in a subprocess: TensorFlow's start-up each time
@pytest.mark.parametrize("case, change, message", [SCHEMA_CASES[0], SCHEMA_CASES[11], BUILDER_CASES[-1]],
                         ids=["shell characters", "split seed", "shrinking stack"])
def test_the_train_stage_stops_before_reading_data(project_root, params, tmp_path, case, change, message):
    """No data directory exists here: reaching the data would fail differently."""
    params_file = tmp_path / "params.yaml"
    params_file.write_text(yaml.safe_dump(changed(params, change)))
    result = subprocess.run([sys.executable, str(project_root / "stages" / "train.py"), str(tmp_path / "no_data"),
                             str(tmp_path / "models"), "--stage", "train_fashion_cnns@fmnist_1-42",
                             "--params", str(params_file)],
                            capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert result.returncode == 1
    assert message in result.stderr and "Traceback" not in result.stderr, result.stderr[-2000:]
    assert not (tmp_path / "models").exists() and not (tmp_path / "owned").exists()


def test_every_name_in_params_yaml_is_safe_for_paths_and_commands(params):
    names = [*params["models"], *params["studies"], *params["datasets"]]
    names += [head for entry in params["models"].values() for head in entry.get("heads", {})]
    assert names and all(re.fullmatch(NAME_PATTERN, name) for name in names), names


def test_no_dvc_yaml_command_interpolates_a_value(project_root):
    """DVC runs `cmd` through a shell before any validation: a command holds no `${...}` at all, so no
    name from params.yaml (or from dvc.yaml's loops) can reach the shell, quoted or not."""
    stages = yaml.safe_load((project_root / "dvc.yaml").read_text())["stages"]
    commands = [stage["cmd"] if "cmd" in stage else stage["do"]["cmd"] for stage in stages.values()]
    assert len(commands) >= 8
    assert [command for command in commands if "$" in command or "'" in command or '"' in command] == []
