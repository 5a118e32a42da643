"""The recipe options of fast training: schedule, label smoothing, weight averaging, test-time flip."""
import copy
import subprocess
import sys

import keras
import numpy as np
import pytest
import yaml

from cnn_comparison.builder import build_with_heads
from cnn_comparison.evaluation import predict_heads, shifted
from cnn_comparison.params import parse_recipe
from cnn_comparison.inputs import one_hot
from cnn_comparison.training import compile_model, learning_rate_schedule, make_optimizer, train_model

BASE = {"optimizer": "adam", "learning_rate": 0.001, "batch_size": 16, "epochs": 2, "early_stopping_patience": None,
        "augmentation": {"enabled": False, "width_shift": 0.0, "height_shift": 0.0, "horizontal_flip": False}}
WHERE = "models.m.training"


def recipe(**changes):
    return parse_recipe({**BASE, **changes}, WHERE)


def tiny_model() -> keras.Model:
    """One head named ``fashion``, as the builder names a single-task model's output."""
    return build_with_heads("tiny", [keras.layers.Flatten()], {"fashion": [keras.layers.Dense(10, activation="softmax")]})


def arrays(count=64, seed=0):
    rng = np.random.default_rng(seed)
    images, labels = rng.random((count, 28, 28, 1), dtype=np.float32), rng.integers(0, 10, size=count)
    return {"fashion": {"train_images": images, "train_labels": labels, "validation_images": images[:16],
                   "validation_labels": labels[:16]}}


def test_a_recipe_without_the_new_keys_trains_as_before(params):
    parsed = parse_recipe(params["models"]["fmnist_1"]["training"], "models.fmnist_1.training")
    assert (parsed.schedule.type, parsed.label_smoothing, parsed.ema_momentum, parsed.test_time_flip) == (
        "constant", 0.0, None, False)
    assert parsed.optimizer_name == "adam" and parsed.optimizer_options == {}
    assert float(make_optimizer(parsed).learning_rate) == pytest.approx(0.001)
    assert (parsed.augmentation.fill_mode, parsed.augmentation.interpolation) == ("nearest", "bilinear")


@pytest.mark.parametrize("changes, message", [
    ({"label_smooting": 0.1}, f"{WHERE}.label_smooting: unknown key 'label_smooting'"),
    ({"label_smoothing": 1.5}, f"{WHERE}.label_smoothing: Input should be less than 1 (got 1.5)"),
    ({"learning_rate": float("nan")}, f"{WHERE}.learning_rate: Input should be a finite number"),
    ({"learning_rate": "0.1"}, f"{WHERE}.learning_rate: Input should be a valid number (got '0.1')"),
    ({"seed": 3}, f"{WHERE}: 'seed' is not a recipe key: seeds are declared per study"),
    ({"schedule": {"type": "step"}}, f"{WHERE}.schedule.type: Input should be 'constant' or 'warmup_cosine'"),
    ({"schedule": {"type": "constant", "warmup_fraction": 0.1}}, "warmup_fraction applies only to type warmup_cosine"),
    ({"ema_momentum": 1.0}, f"{WHERE}.ema_momentum: Input should be less than 1"),
    ({"ema_momentum": 0.9, "early_stopping_patience": 3}, "ema_momentum and early_stopping_patience cannot be combined"),
    ({"test_time_flip": "yes"}, f"{WHERE}.test_time_flip: Input should be a valid boolean (got 'yes')"),
    ({"optimizer": {"momentum": 0.9}}, f"{WHERE}.optimizer.type: Field required"),
    ({"optimizer": {"type": "sgd", "learning_rate": 0.1}}, "through the recipe keys learning_rate/ema_momentum"),
    ({"augmentation": {**BASE["augmentation"], "fill_mode": "black"}},
     f"{WHERE}.augmentation.fill_mode: Input should be 'constant', 'nearest', 'reflect' or 'wrap' (got 'black')"),
    ({"augmentation": {**BASE["augmentation"], "interpolation": "bicubic"}},
     f"{WHERE}.augmentation.interpolation: Input should be 'bilinear' or 'nearest'"),
    ({"augmentation": {**BASE["augmentation"], "zoom": 0.1}}, f"{WHERE}.augmentation.zoom: unknown key 'zoom'"),
])
def test_bad_recipe_values_are_named(changes, message):
    with pytest.raises(ValueError) as error:
        recipe(**changes)
    assert message in str(error.value)


def test_optimizer_arguments_reach_keras_and_bad_ones_are_named():
    optimizer = make_optimizer(recipe(optimizer={"type": "sgd", "momentum": 0.9, "nesterov": True, "weight_decay": 5e-4}))
    assert isinstance(optimizer, keras.optimizers.SGD)
    assert (optimizer.momentum, optimizer.nesterov, optimizer.weight_decay) == (0.9, True, 5e-4)
    with pytest.raises(ValueError, match=r"optimizer: sgd does not accept \{'momentun': 0.9\}"):
        make_optimizer(recipe(optimizer={"type": "sgd", "momentun": 0.9}))
    with pytest.raises(ValueError, match="optimizer: unknown optimizer 'sgdd'"):
        make_optimizer(recipe(optimizer="sgdd"))


@pytest.mark.end_to_end  # a stage script in a subprocess: TensorFlow's start-up each time
def test_train_stage_names_a_bad_optimizer_argument_before_loading_data(project_root, params, tmp_path):
    changed = copy.deepcopy(params)
    changed["models"]["fmnist_fast"]["training"]["optimizer"] = {"type": "sgd", "momentun": 0.9}
    params_file = tmp_path / "params.yaml"
    params_file.write_text(yaml.safe_dump(changed))
    # The split directory does not exist: reaching the data would fail differently.
    result = subprocess.run([sys.executable, str(project_root / "stages" / "train.py"), str(tmp_path / "no_split"),
                             str(tmp_path / "model"), "--stage", "train_fast_cnn@fmnist_fast-42", "--params", str(params_file)],
                            capture_output=True, text=True, cwd=project_root, timeout=300)
    assert result.returncode == 1, result.stderr
    assert "models.fmnist_fast.training.optimizer: sgd does not accept {'momentun': 0.9}" in result.stderr
    assert "Traceback" not in result.stderr and not (tmp_path / "model").exists()


def test_warmup_cosine_rises_to_the_peak_then_falls_to_zero_at_the_last_step():
    schedule = learning_rate_schedule(recipe(learning_rate=0.2, epochs=10,
                                             schedule={"type": "warmup_cosine", "warmup_fraction": 0.2}), steps_per_epoch=10)
    rates = np.array([float(schedule(step)) for step in range(101)])
    assert rates[0] == 0.0 and rates[10] == pytest.approx(0.1) and rates[20] == pytest.approx(0.2)
    assert np.all(np.diff(rates[:21]) > 0) and np.all(np.diff(rates[20:]) < 0)
    assert rates[100] == pytest.approx(0.0, abs=1e-7) and rates[60] == pytest.approx(0.1, rel=1e-4)
    assert learning_rate_schedule(recipe(learning_rate=0.01), steps_per_epoch=10) == 0.01


def test_label_smoothing_moves_the_targets_away_from_one_hot():
    model = tiny_model()
    targets = one_hot(np.array([3]), 10)
    for smoothing in (0.0, 0.1):
        compile_model(model, recipe(label_smoothing=smoothing), ["fashion"])
        loss = float(model.loss["fashion"](targets, targets * 0.999 + 0.0001))
        # A confident, correct prediction costs next to nothing only without smoothing.
        assert (loss < 0.01) == (smoothing == 0.0), smoothing


def test_with_ema_the_trained_model_holds_the_averaged_weights_and_logs_times():
    model = tiny_model()
    history, times = train_model(model, arrays(), recipe(ema_momentum=0.9, optimizer={"type": "sgd", "momentum": 0.9},
                                                     learning_rate=0.1), callbacks=[])
    averages = model.optimizer._model_variables_moving_average
    for variable, average in zip(model.trainable_variables, averages):
        np.testing.assert_allclose(variable.numpy(), average.numpy())
    assert any(not np.allclose(average.numpy(), 0) for average in averages)
    wall, cpu = times.epoch_wall_seconds, times.epoch_cpu_seconds
    assert "elapsed_wall_seconds" not in history.history  # not in the logs DVCLive writes: reruns keep their bytes
    assert len(wall) == 2 and 0 < wall[0] < wall[1] and 0 < cpu[0] <= cpu[1]


def test_test_time_flip_averages_the_image_and_its_mirror():
    model = tiny_model()
    images = np.random.default_rng(1).random((5, 28, 28, 1), dtype=np.float32)
    plain = predict_heads(model, {"fashion": images})["fashion"]
    mirrored = predict_heads(model, {"fashion": images[:, :, ::-1]})["fashion"]
    flipped = predict_heads(model, {"fashion": images}, test_time_flip=True)["fashion"]
    np.testing.assert_allclose(flipped, (plain + mirrored) / 2, rtol=1e-5)
    assert not np.allclose(plain, mirrored)  # a dense layer is not mirror-symmetric, so the test can fail


def test_test_time_shift_averages_the_shifted_views_and_their_mirrors():
    model = tiny_model()
    images = np.random.default_rng(3).random((4, 28, 28, 1), dtype=np.float32)
    moved_down = shifted(images, 1, 0)
    assert np.array_equal(moved_down[:, 1:], images[:, :-1]) and not moved_down[:, 0].any()
    moved_left = shifted(images, 0, -2)
    assert np.array_equal(moved_left[:, :, :-2], images[:, :, 2:]) and not moved_left[:, :, -2:].any()
    views = [images, shifted(images, -1, 0), shifted(images, 1, 0), shifted(images, 0, -1), shifted(images, 0, 1)]
    views += [view[:, :, ::-1] for view in views]
    expected = np.mean([np.asarray(model(view)["fashion"]) for view in views], axis=0)
    averaged = predict_heads(model, {"fashion": images}, test_time_flip=True, test_time_shift=1)["fashion"]
    np.testing.assert_allclose(averaged, expected, rtol=1e-5, atol=1e-7)
    assert not np.allclose(averaged, predict_heads(model, {"fashion": images}, test_time_flip=True)["fashion"])


def test_prediction_runs_without_tf_data_autotuning(monkeypatch):
    # Keras wraps NumPy input in an autotuned tf.data pipeline, which stalled ~20 s at times here.
    model = tiny_model()
    images = np.random.default_rng(2).random((5, 28, 28, 1), dtype=np.float32)
    received = []
    keras_predict = model.predict

    def recording_predict(data, **kwargs):
        received.append(data)
        return keras_predict(data, **kwargs)

    monkeypatch.setattr(model, "predict", recording_predict)
    probabilities = predict_heads(model, {"fashion": images}, test_time_flip=True)["fashion"]
    assert [data.options().autotune.enabled for data in received] == [False, False]
    direct = (np.asarray(model(images)["fashion"]) + np.asarray(model(images[:, :, ::-1])["fashion"])) / 2
    np.testing.assert_allclose(probabilities, direct, rtol=1e-5, atol=1e-7)
