"""devtools.epoch_cost: the interleaved per-epoch CPU measurement behind the fast model's CPU share."""
from __future__ import annotations

import numpy as np
import pytest

from cnn_comparison.params import model_spec, validated
from devtools.epoch_cost import Trainer, interleaved_epoch_costs, main, report


def test_report_gives_the_ratio_and_the_share_of_the_runs_epochs():
    text = report({"fast": [1.0, 3.0], "slow": [4.0, 4.0]}, epochs=(20, 10))
    assert "fast: 2.00 CPU s per epoch (min 1.00, max 3.00, 2 epochs)" in text
    assert "an epoch of slow costs 2.00x an epoch of fast" in text
    assert "20 epochs of fast take 1.00 of the CPU seconds of 10 epochs of slow" in text
    assert "take" not in report({"fast": [1.0], "slow": [2.0]}, epochs=None)


def test_unknown_model_is_named_before_any_data_is_read(tmp_path, capsys):
    assert main(["fmnist_fast", "no_such_model", "--split-root", str(tmp_path / "missing")]) == 1
    assert "no model 'no_such_model' under 'models'" in capsys.readouterr().err


def test_missing_split_data_says_which_stage_makes_it(tmp_path, capsys):
    assert main(["fmnist_fast", "fmnist_3", "--split-root", str(tmp_path)]) == 1
    assert "run `dvc repro split@fashion` first" in capsys.readouterr().err


def test_two_real_recipes_alternate_and_every_epoch_is_timed(params):
    """The project's own fmnist_fast (EMA, schedule, augmentation) against fmnist_3, on 64 synthetic images."""
    checked = validated(params)
    generator = np.random.default_rng(0)
    arrays = {"train_images": generator.random((64, 28, 28, 1), dtype=np.float32),
              "train_labels": generator.integers(0, 10, 64),
              "validation_images": generator.random((16, 28, 28, 1), dtype=np.float32),
              "validation_labels": generator.integers(0, 10, 16)}
    trainers = [Trainer(model_spec(checked, name, checked.studies[checked.study_of(name)].seeds[0]), arrays)
                for name in ("fmnist_fast", "fmnist_3")]
    costs = interleaved_epoch_costs(*trainers, rounds=1)
    assert list(costs) == ["fmnist_fast", "fmnist_3"]
    assert all(len(values) == 2 and all(value > 0 for value in values) for values in costs.values())
    with pytest.raises(ValueError, match="single-task"):
        Trainer(model_spec(checked, "multitask", checked.studies["dedicated_vs_multitask"].seeds[0]), arrays)
