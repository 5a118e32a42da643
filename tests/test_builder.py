import re

import pytest

from cnn_comparison.builder import build_model, build_multitask, build_sequential
from cnn_comparison.params import model_spec, validated

# Reference counts: fmnist_1 is printed by model.summary() in the report; the others are
# computed by hand from the report's layer lists (conv: filters*(9*in+1), dense: out*(in+1)).
REFERENCE_PARAMETER_COUNTS = {
    "fmnist_1": 1_755_210,
    "fmnist_2": 640 + 36928 + 73856 + 147584 + 295168 + 590080 + 230500 + 5050 + 510,
    "fmnist_3": 320 + 9248 + 18496 + 36928 + 73856 + 115300 + 1010,
    # batch normalization adds 4 weights per channel: 32, 32, 64, 64, 128, 128 channels
    "fmnist_4": 320 + 9248 + 18496 + 36928 + 73856 + 4 * (32 + 32 + 64 + 64 + 128 + 128) + 115300 + 1010,
    "fmnist_5": 640 + 36928 + 73856 + 147584 + 6272 * 256 + 256 + 2570,
    "fmnist_6": 320 + 9248 + 18496 + 36928 + 73856 + 147584 + 1152 * 512 + 512 + 5130,
}


@pytest.mark.parametrize("name", sorted(REFERENCE_PARAMETER_COUNTS))
def test_reference_models_have_reference_parameter_counts(params, name):
    model = build_model(model_spec(validated(params), name, 42))
    assert model.count_params() == REFERENCE_PARAMETER_COUNTS[name]
    assert model.output_shape == (None, 10)


def test_unknown_layer_type_names_model_and_key():
    with pytest.raises(ValueError, match=r"model 'broken', layers\[1\]: unknown layer type 'conv3x3' \(key 'type'\)"):
        build_sequential("broken", [{"type": "flatten"}, {"type": "conv3x3", "filters": 8}])


def test_layer_without_type_names_model_and_key():
    with pytest.raises(ValueError, match=r"model 'broken', layers\[0\]: missing key 'type'"):
        build_sequential("broken", [{"units": 10}])


def test_bad_layer_argument_names_the_argument():
    with pytest.raises(ValueError, match=r"model 'broken', layers\[0\] \(dense\): bad arguments.*unit"):
        build_sequential("broken", [{"type": "dense", "unit": 10}])


def test_missing_model_key_is_reported_before_training(params):
    entry = {"dataset": "fashion", "layers": [{"type": "flatten"}, {"type": "dense", "units": 10}]}
    broken = {**params, "models": {"no_recipe": entry},
              "studies": {"fashion_cnns": {"title": "t", "models": ["no_recipe"], "seeds": [1]}}}
    with pytest.raises(ValueError, match=r"^models.no_recipe.training: Field required$"):
        validated(broken)
    recipe = dict(params["models"]["fmnist_1"]["training"])
    del recipe["batch_size"]
    broken["models"] = {"no_recipe": {**entry, "training": recipe}}
    with pytest.raises(ValueError, match=r"^models.no_recipe.training.batch_size: Field required$"):
        validated(broken)


def test_a_model_belongs_to_one_study_and_runs_only_its_declared_seeds(params):
    orphan = {**params, "models": {**params["models"], "fmnist_extra": params["models"]["fmnist_1"]}}
    with pytest.raises(ValueError, match="models.fmnist_extra: not in any study; add it to a study's `models` list"):
        validated(orphan)
    twice = {**params, "studies": {**params["studies"], "again": {"title": "t", "models": ["fmnist_1"], "seeds": [1]}}}
    with pytest.raises(ValueError, match=r"studies.again.models\[0\]: 'fmnist_1' is already in study 'fashion_cnns'"):
        validated(twice)
    declared = re.escape(str(params["studies"]["fashion_cnns"]["seeds"]))
    with pytest.raises(ValueError, match=rf"studies.fashion_cnns.seeds: seed 7 is not declared \(declared: {declared}\)"):
        model_spec(validated(params), "fmnist_1", 7)


def test_single_task_and_multitask_specs_have_their_heads(params):
    single = model_spec(validated(params), "fmnist_1", 42)
    assert list(single.tasks) == ["fashion"] and single.tasks["fashion"].dataset == "fashion"
    assert single.tasks["fashion"].report_title == "fmnist_1 Performance" and single.study == "fashion_cnns"
    assert build_model(single).output_names == ["fashion"]  # one head, named after its dataset
    assert single.seed == single.recipe.seed == 42
    multitask = model_spec(validated(params), "multitask", 43)
    assert {task: head.dataset for task, head in multitask.tasks.items()} == {"digits": "mnist", "fashion": "fashion"}
    assert multitask.where == "models.multitask" and multitask.recipe.batch_size == 32
    assert multitask.study == "dedicated_vs_multitask" and multitask.recipe.seed == 43


def test_multitask_model_shares_one_trunk_between_two_heads(params):
    config = params["models"]["multitask"]
    model = build_multitask("multitask", config["trunk"], config["heads"])
    assert set(model.output_names) == {"digits", "fashion"}
    digits_head, fashion_head = model.get_layer("digits"), model.get_layer("fashion")
    assert digits_head is not fashion_head
    # Both heads are fed by the very same tensor of the very same trunk layer (Dense 128).
    trunk_layers = [layer for layer in model.layers if layer.name not in ("image", "digits", "fashion")]
    assert [type(layer).__name__ for layer in trunk_layers] == ["Flatten", "Dense"]
    assert digits_head.input is trunk_layers[-1].output
    assert fashion_head.input is trunk_layers[-1].output
    assert model.count_params() == (784 * 128 + 128) + 2 * (128 * 10 + 10)
