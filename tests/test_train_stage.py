"""The train and evaluate stages as `dvc repro` runs them (subprocesses), on small synthetic data.

Same params + same seed on the same machine must give the same bytes; a diverging run must fail
without leaving a model behind.
"""
from __future__ import annotations

import copy
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from cnn_comparison.arrays import save_arrays
from devtools import compare_runs
from devtools.compare_runs import weight_bytes, without_times

pytestmark = pytest.mark.end_to_end

AUGMENTED_BATCH_NORM_MODEL = {
    "dataset": "fashion",
    "layers": [
        {"type": "conv2d", "filters": 8, "kernel_size": 3, "padding": "same", "activation": "relu"},
        {"type": "batch_normalization"},
        {"type": "max_pooling2d"},
        {"type": "dropout", "rate": 0.2},
        {"type": "flatten"},
        {"type": "dense", "units": 10, "activation": "softmax"},
    ],
    "training": {
        "optimizer": "adam", "learning_rate": 0.001, "batch_size": 64, "epochs": 2, "early_stopping_patience": None,
        "augmentation": {"enabled": True, "width_shift": 0.2, "height_shift": 0.2, "horizontal_flip": True},
    },
}


@pytest.fixture(scope="module")
def data_roots(tmp_path_factory) -> tuple[Path, Path]:
    """data/split/fashion and data/prepared/fashion look-alikes: 600 training, 200 test images."""
    root = tmp_path_factory.mktemp("data")
    rng = np.random.default_rng(0)
    images = rng.random((1000, 28, 28, 1), dtype=np.float32)
    labels = rng.integers(0, 10, size=1000).astype(np.int64)
    save_arrays(root / "split" / "fashion", {"train_images": images[:600], "train_labels": labels[:600],
                                             "validation_images": images[600:800], "validation_labels": labels[600:800]})
    save_arrays(root / "prepared" / "fashion", {"test_images": images[800:], "test_labels": labels[800:]})
    return root / "split", root / "prepared"


def write_params(params: dict, directory: Path, model: dict, seeds=(7,)) -> Path:
    changed = copy.deepcopy(params)
    changed["models"] = {"tiny": model}
    changed["studies"] = {"tiny_study": {"title": "Tiny", "models": ["tiny"], "seeds": list(seeds)}}
    changed.pop("report", None)  # it names the project's studies
    path = directory / "params.yaml"
    path.write_text(yaml.safe_dump(changed))
    return path


def run_stage(project_root: Path, stage: str, *arguments: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(project_root / "stages" / f"{stage}.py"), *arguments],
                          capture_output=True, text=True, cwd=project_root, timeout=600)


@pytest.fixture(scope="module")
def seeded_runs(project_root, params, data_roots, tmp_path_factory) -> dict[str, Path]:
    """Seed 7 trained and evaluated twice, each in its own processes, and seed 8 trained once."""
    split_root, prepared_root = data_roots
    root = tmp_path_factory.mktemp("seeded_runs")
    params_file = write_params(params, root, AUGMENTED_BATCH_NORM_MODEL, seeds=(7, 8))
    runs = {}
    for name, seed, stages in (("first", "7", ("train", "evaluate")), ("second", "7", ("train", "evaluate")),
                               ("other_seed", "8", ("train",))):
        run_dir = root / name
        # One directory for both: evaluate's copy of the training log replaces it with the same files.
        paths = {"train": [run_dir, split_root], "evaluate": [run_dir, run_dir, prepared_root]}
        for stage in stages:
            result = run_stage(project_root, stage, "tiny", seed, *map(str, paths[stage]), "--params", str(params_file))
            assert result.returncode == 0, result.stderr[-3000:]
        runs[name] = run_dir
    return {**runs, "params": params_file}


def test_same_seed_gives_identical_weights_and_metrics_in_two_processes(seeded_runs, capsys):
    runs = seeded_runs
    first, second, other = (weight_bytes(runs[name] / "model.keras") for name in ("first", "second", "other_seed"))
    assert len(first) == 8  # conv kernel and bias, 4 batch-norm vectors, dense kernel and bias
    assert first == second, "same params and seed gave different weights"
    assert first != other, "a different seed gave the same weights: the seed does not reach training"
    metrics = {name: json.loads((runs[name] / "metrics.json").read_text()) for name in ("first", "second")}
    assert without_times(metrics["first"]) == without_times(metrics["second"])
    training_logs = [json.loads((runs[name] / "live" / "metrics.json").read_text()) for name in ("first", "second")]
    assert without_times(training_logs[0]) == without_times(training_logs[1])
    assert (runs["second"] / "confusion" / "fashion.csv").read_bytes() == (
        runs["first"] / "confusion" / "fashion.csv").read_bytes()
    # The devtool behind `dvc commit` after a refactor (docs/pipeline.md) says the same.
    assert compare_runs.main([str(runs["first"]), str(runs["second"])]) == 0
    assert capsys.readouterr().out.startswith("identical")
    assert compare_runs.main([str(runs["first"]), str(runs["other_seed"])]) == 1
    assert "model.keras: weight arrays" in capsys.readouterr().out
    provenance = metrics["first"]["provenance"][0]
    assert provenance["seed"] == metrics["first"]["seed"] == 7
    for step in ("training", "evaluation"):
        assert provenance[step]["determinism"]["op_determinism"] is True
        assert {"intra_op_threads", "inter_op_threads"} <= set(provenance[step]["determinism"])
        assert provenance[step]["machine"]["cpu_count"] >= 1 and provenance[step]["machine"]["cpu_model"]
        assert provenance[step]["library_versions"]["tensorflow"].startswith("2.")


def test_an_undeclared_seed_is_refused_before_data_is_read(project_root, params, tmp_path):
    params_file = write_params(params, tmp_path, AUGMENTED_BATCH_NORM_MODEL, seeds=(7,))
    result = run_stage(project_root, "train", "tiny", "9", str(tmp_path / "run"), str(tmp_path / "no_data"),
                       "--params", str(params_file))
    assert result.returncode == 1
    assert "studies.tiny_study.seeds: seed 9 is not declared (declared: [7])" in result.stderr
    assert "Traceback" not in result.stderr and not (tmp_path / "run").exists()


def test_a_nan_loss_fails_the_stage_and_saves_nothing(project_root, params, data_roots, tmp_path):
    diverging = copy.deepcopy(AUGMENTED_BATCH_NORM_MODEL)
    diverging["training"].update(optimizer={"type": "sgd"}, learning_rate=1.0e30)
    params_file = write_params(params, tmp_path, diverging)
    run_dir = tmp_path / "run"
    result = run_stage(project_root, "train", "tiny", "7", str(run_dir), str(data_roots[0]), "--params", str(params_file))
    assert result.returncode == 1, result.stdout[-2000:]
    assert "the training loss became nan" in result.stderr and "nothing was saved" in result.stderr
    assert not (run_dir / "model.keras").exists() and not (run_dir / "live").exists()
    assert [path.name for path in run_dir.iterdir()] == [] if run_dir.exists() else True


def start_long_training(project_root: Path, params: dict, tmp_path: Path, data_root: Path) -> tuple[subprocess.Popen, Path]:
    """A train stage with 500 epochs to run, returned once it has printed its start line."""
    endless = copy.deepcopy(AUGMENTED_BATCH_NORM_MODEL)
    endless["training"]["epochs"] = 500
    params_file = write_params(params, tmp_path, endless)
    run_dir = tmp_path / "run"
    command = [sys.executable, str(project_root / "stages" / "train.py"), "tiny", "7", str(run_dir),
               str(data_root), "--params", str(params_file)]
    process = subprocess.Popen(command, cwd=project_root, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines = []
    for line in process.stdout:  # the start line comes after TensorFlow has loaded and the data is read
        lines.append(line)
        if line.startswith("[train tiny seed 7]"):
            break
    else:
        pytest.fail("the stage ended before it started training: " + "".join(lines) + process.stderr.read())
    return process, run_dir


def assert_nothing_saved(run_dir: Path) -> None:
    leftovers = sorted(path.name for path in run_dir.iterdir()) if run_dir.exists() else []
    assert leftovers == [], f"an interrupted stage left {leftovers}"


def test_sigterm_stops_training_with_one_line_and_saves_nothing(project_root, params, data_roots, tmp_path):
    process, run_dir = start_long_training(project_root, params, tmp_path, data_roots[0])
    process.terminate()
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 143, stderr[-2000:]
    assert stderr.count("interrupted (SIGTERM): stage train tiny 7") == 1, stderr[-2000:]
    assert "Traceback" not in stderr and "Exception ignored" not in stderr, stderr[-3000:]
    assert_nothing_saved(run_dir)


def test_a_corrupt_model_file_is_reported_as_corrupt_with_the_fix(project_root, seeded_runs, data_roots, tmp_path):
    run_dir = tmp_path / "run"
    shutil.copytree(seeded_runs["first"], run_dir)
    model_file = run_dir / "model.keras"
    model_file.write_bytes(model_file.read_bytes()[: model_file.stat().st_size // 2])  # truncated
    result = run_stage(project_root, "evaluate", "tiny", "7", str(run_dir), str(tmp_path / "results"),
                       str(data_roots[1]), "--params", str(seeded_runs["params"]))
    assert result.returncode == 1
    assert f"error: {model_file} is corrupt or truncated" in result.stderr, result.stderr[-2000:]
    assert f"dvc checkout {model_file}" in result.stderr and "dvc repro -f -s train_tiny_study@tiny-7" in result.stderr
    assert "Traceback" not in result.stderr and not (tmp_path / "results").exists()
