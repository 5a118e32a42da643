import pytest

from cnn_comparison.builder import build_model, build_multitask, build_sequential
from cnn_comparison.params import MULTITASK, model_spec

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
    model = build_model(model_spec(params, name))
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
    entry = {"dataset": "fashion", "study": "fashion_cnns", "layers": [{"type": "flatten"}]}
    broken = {**params, "models": {"no_recipe": entry}}
    with pytest.raises(ValueError, match="models.no_recipe: missing key 'training'"):
        model_spec(broken, "no_recipe")
    recipe = dict(params["models"]["fmnist_1"]["training"])
    del recipe["batch_size"]
    broken["models"] = {"no_batch": {**entry, "training": recipe}}
    with pytest.raises(ValueError, match="models.no_batch.training: missing key 'batch_size'"):
        model_spec(broken, "no_batch")
    broken["models"] = {"no_study": {**entry, "study": "fashion", "training": params["models"]["fmnist_1"]["training"]}}
    with pytest.raises(ValueError, match="models.no_study.study: unknown study 'fashion'; declare it under 'studies'"):
        model_spec(broken, "no_study")


def test_single_task_and_multitask_specs_have_their_heads(params):
    single = model_spec(params, "fmnist_1")
    assert list(single.tasks) == [None] and single.tasks[None].dataset == "fashion"
    assert single.tasks[None].report_title == "fmnist_1 Performance" and single.study == "fashion_cnns"
    multitask = model_spec(params, MULTITASK)
    assert {task: head.dataset for task, head in multitask.tasks.items()} == {"digits": "mnist", "fashion": "fashion"}
    assert multitask.where == MULTITASK and multitask.recipe.batch_size == 32


def test_multitask_model_shares_one_trunk_between_two_heads(params):
    config = params["multitask"]
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
