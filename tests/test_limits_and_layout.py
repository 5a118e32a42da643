from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cnn_comparison.comparison import best_models, comparison_table, long_history, wide_history
from cnn_comparison.layout import data_directories, run_directory
from cnn_comparison.limits import capped_recipe, capped_split
from cnn_comparison.params import Limits, parse_recipe, validated


def test_capped_recipe_is_the_one_epoch_count_a_run_follows(params):
    recipe = parse_recipe(params["models"]["fmnist_3"]["training"], "models.fmnist_3.training")
    assert capped_recipe(recipe, Limits()).epochs == 50
    assert capped_recipe(recipe, Limits(max_epochs=3)).epochs == 3
    assert capped_recipe(recipe, Limits(max_epochs=80)) == recipe
    assert capped_recipe(recipe, Limits(max_epochs=3)).learning_rate == recipe.learning_rate


def test_limits_cap_training_and_validation_separately():
    arrays = {"train_images": np.zeros((10, 28, 28, 1)), "train_labels": np.arange(10),
              "validation_images": np.zeros((6, 28, 28, 1)), "validation_labels": np.arange(6)}
    capped = capped_split(arrays, Limits(max_train_samples=4, max_eval_samples=2, max_epochs=None))
    assert [len(capped[key]) for key in arrays] == [4, 4, 2, 2]
    np.testing.assert_array_equal(capped["train_labels"], [0, 1, 2, 3])


def test_unknown_or_bad_limit_is_named(params):
    with pytest.raises(ValueError, match=r"limits.max_epoch: unknown key 'max_epoch'"):
        validated({**params, "limits": {"max_epoch": 1}})
    with pytest.raises(ValueError, match="limits.max_epochs: Input should be greater than 0 \\(got 0\\)"):
        validated({**params, "limits": {"max_epochs": 0}})


def test_a_run_has_its_own_directory_and_its_heads_their_data():
    assert run_directory(Path("results/study"), "fmnist_1", 43) == Path("results/study/fmnist_1/seed_43")
    assert data_directories(Path("data/split"), {"digits": "mnist", "fashion": "fashion"}) == {
        "digits": Path("data/split/mnist"), "fashion": Path("data/split/fashion")}


def record(model, **heads):
    scores = lambda accuracy, dataset: {"accuracy": accuracy, "precision_macro": 0.5, "recall_macro": 0.5,
                                        "f1_macro": accuracy, "loss": 0.3, "dataset": dataset}
    common = {"model": model, "training_time_seconds": 1.0, "training_cpu_seconds": 2.0, "parameter_count": 3,
              "epochs_run": 4}
    if list(heads) == ["single"]:  # one head, named after its dataset
        accuracy, dataset = heads["single"]
        return {**common, "heads": {dataset: scores(accuracy, dataset)}}
    return {**common, "heads": {head: scores(*value) for head, value in heads.items()}}


def test_multitask_heads_become_rows_next_to_the_dedicated_models():
    table = comparison_table([record("digits_dedicated", single=(0.96, "mnist")),
                              record("multitask", digits=(0.97, "mnist"), fashion=(0.86, "fashion")),
                              record("fashion_dedicated", single=(0.87, "fashion"))])
    assert list(zip(table["model"], table["head"], table["dataset"])) == [
        ("digits_dedicated", "", "mnist"), ("multitask", "digits", "mnist"), ("multitask", "fashion", "fashion"),
        ("fashion_dedicated", "", "fashion")]
    assert best_models(table) == {"mnist": "multitask", "fashion": "fashion_dedicated"}


def test_long_history_keeps_every_model_and_epoch():
    series = {"a": pd.Series([0.5, 0.6], index=[1, 2]), "b": pd.Series([0.4], index=[1])}
    long = long_history(series, "validation_accuracy")
    assert list(long.columns) == ["epoch", "model", "validation_accuracy"] and len(long) == 3
    wide = wide_history(long, "validation_accuracy")
    assert list(wide.columns) == ["a", "b"] and np.isnan(wide.loc[2, "b"])
