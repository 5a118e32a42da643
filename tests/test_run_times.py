"""devtools.run_times: a full run's time as the sum of what the declared full-data runs recorded."""
from __future__ import annotations

import json
from pathlib import Path

from cnn_comparison.layout import run_directory
from cnn_comparison.params import validated
from devtools.run_times import main, run_time_table


def write_run(results: Path, study: str, model: str, seed: int, seconds: float, limits: dict | None = None) -> None:
    directory = run_directory(results / study, model, seed)
    directory.mkdir(parents=True)
    limits = limits or {"max_train_samples": None, "max_epochs": None, "max_eval_samples": None}
    (directory / "metrics.json").write_text(json.dumps({
        "model": model, "seed": seed, "epochs_run": 10, "training_time_seconds": seconds,
        "training_cpu_seconds": 2 * seconds, "evaluation_time_seconds": 5.0, "provenance": [{"limits": limits}]}))


def test_totals_count_declared_full_data_runs_only_and_say_what_is_missing(params, tmp_path):
    checked = validated(params)
    fashion_models = checked.studies["fashion_cnns"].models
    for model in fashion_models:
        write_run(tmp_path, "fashion_cnns", model, 42, 1000.0)
    write_run(tmp_path, "fast_cnn", "fmnist_fast", 99, 500.0)  # an undeclared seed: not counted
    write_run(tmp_path, "fast_cnn", "fmnist_fast", checked.studies["fast_cnn"].seeds[0], 500.0,
              limits={"max_train_samples": 100, "max_epochs": 1, "max_eval_samples": None})  # quick run: not counted
    table = run_time_table(checked, tmp_path)
    runs = len(fashion_models)
    assert f"| `fashion_cnns` | {runs} | {10 * runs} | {1000 * runs:,} | {2000 * runs:,} | {5 * runs} |" in table
    assert f"| `fast_cnn` | 0 of {len(checked.studies['fast_cnn'].seeds)} | 0 | 0 | 0 | 0 |" in table
    wall = 1005 * runs
    assert f"Training and evaluation: {wall:,} s wall = {wall / 3600:.1f} hours on 2 cores (" in table
    missing = sum(len(study.models) * len(study.seeds) for study in checked.studies.values()) - runs
    assert f"({missing} declared runs have no full-data results yet, so more)." in table


def test_bad_params_path_is_an_error_naming_it(tmp_path, capsys):
    assert main(["--params", str(tmp_path / "nope.yaml")]) == 1
    assert "nope.yaml" in capsys.readouterr().err
