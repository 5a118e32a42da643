import pytest

from cnn_comparison.builder import build_multitask, build_sequential
from cnn_comparison.params import model_entry

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
    entry = model_entry(params, name)
    model = build_sequential(name, entry["layers"])
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
    broken = {**params, "models": {"no_recipe": {"dataset": "fashion", "layers": [{"type": "flatten"}]}}}
    with pytest.raises(ValueError, match="models.no_recipe: missing key 'training'"):
        model_entry(broken, "no_recipe")
    recipe = dict(params["models"]["fmnist_1"]["training"])
    del recipe["batch_size"]
    broken["models"] = {"no_batch": {"dataset": "fashion", "layers": [{"type": "flatten"}], "training": recipe}}
    with pytest.raises(ValueError, match="models.no_batch.training: missing key 'batch_size'"):
        model_entry(broken, "no_batch")


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
