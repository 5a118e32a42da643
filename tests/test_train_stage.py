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
from cnn_comparison.layout import run_directory
from devtools import compare_runs

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


def train_and_evaluate(project_root: Path, root: Path, data_roots, params_file: Path, seed: int = 7,
                       steps=("train", "evaluate")) -> tuple[Path, Path]:
    """Run ``tiny`` seed ``seed`` as dvc.yaml does (roots as arguments, the run named by its stage) under
    ``root``; return its models/ and metrics/ run directories."""
    split_root, prepared_root = data_roots
    arguments = {"train": [split_root, root / "models"], "evaluate": [prepared_root, root / "models", root / "metrics"]}
    for step in steps:
        result = run_stage(project_root, step, *map(str, arguments[step]), "--stage", f"{step}_tiny_study@tiny-{seed}",
                           "--params", str(params_file))
        assert result.returncode == 0, result.stderr[-3000:]
    return (run_directory(root / "models" / "tiny_study", "tiny", seed),
            run_directory(root / "metrics" / "tiny_study", "tiny", seed))


@pytest.fixture(scope="module")
def seeded_runs(project_root, params, data_roots, tmp_path_factory) -> dict[str, tuple[Path, Path]]:
    """Seed 7 trained and evaluated twice, each in its own processes, and seed 8 trained once."""
    root = tmp_path_factory.mktemp("seeded_runs")
    params_file = write_params(params, root, AUGMENTED_BATCH_NORM_MODEL, seeds=(7, 8))
    runs = {name: train_and_evaluate(project_root, root / name, data_roots, params_file, seed, steps)
            for name, seed, steps in (("first", 7, ("train", "evaluate")), ("second", 7, ("train", "evaluate")),
                                      ("other_seed", 8, ("train",)))}
    return {**runs, "params": params_file}


# The tests on seeded_runs share one worker, which makes the runs once (per worker would be twice).
@pytest.mark.xdist_group("seeded_runs")
def test_same_seed_gives_identical_bytes_in_two_processes(seeded_runs, capsys):
    """Every output file, model.keras included, is byte for byte the same; only timings.json differs."""
    runs = seeded_runs
    for index, what in enumerate(("models", "metrics")):
        first, second = runs["first"][index], runs["second"][index]
        assert compare_runs.main([str(first), str(second)]) == 0, capsys.readouterr().out
        assert capsys.readouterr().out.startswith("identical")
        assert {path.name for path in first.iterdir()} >= {"timings.json", "live"}
    first, second = (runs[name][0] / "model.keras" for name in ("first", "second"))
    assert first.read_bytes() == second.read_bytes()
    assert compare_runs.main([str(runs["first"][0]), str(runs["other_seed"][0])]) == 1
    assert "model.keras: differs" in capsys.readouterr().out  # a different seed: the seed reaches training
    metrics = json.loads((runs["first"][1] / "metrics.json").read_text())
    timings = json.loads((runs["first"][1] / "timings.json").read_text())
    provenance = metrics["provenance"][0]
    assert provenance["seed"] == metrics["seed"] == 7
    for step in ("training", "evaluation"):
        assert provenance[step]["determinism"]["op_determinism"] is True
        assert {"intra_op_threads", "inter_op_threads"} <= set(provenance[step]["determinism"])
        assert provenance[step]["library_versions"]["tensorflow"].startswith("2.")
        assert timings["machine"][step]["cpu_count"] >= 1 and timings["machine"][step]["cpu_model"]
    assert "machine" not in json.dumps(metrics) and "seconds" not in json.dumps(metrics)
    assert len(timings["elapsed_wall_seconds"]) == metrics["epochs_run"] and timings["training_cpu_seconds"] > 0


def test_an_undeclared_seed_is_refused_before_data_is_read(project_root, params, tmp_path):
    params_file = write_params(params, tmp_path, AUGMENTED_BATCH_NORM_MODEL, seeds=(7,))
    result = run_stage(project_root, "train", str(tmp_path / "no_data"), str(tmp_path / "models"),
                       "--stage", "train_tiny_study@tiny-9", "--params", str(params_file))
    assert result.returncode == 1
    assert "studies.tiny_study.seeds: seed 9 is not declared (declared: [7])" in result.stderr
    assert "Traceback" not in result.stderr and not (tmp_path / "models").exists()


@pytest.mark.parametrize("learning_rate, message", [(1.0e30, "the training loss became nan"),
                                                    (1.0e6, "over 1000 times its first value")],
                         ids=["nan", "exploding"])
def test_a_diverging_training_fails_the_stage_and_saves_nothing(project_root, params, data_roots, tmp_path,
                                                                learning_rate, message):
    """NaN, and a loss that explodes without becoming NaN (SGD at 1e6: about 1e33, chance accuracy)."""
    diverging = copy.deepcopy(AUGMENTED_BATCH_NORM_MODEL)
    diverging["training"].update(optimizer={"type": "sgd"}, learning_rate=learning_rate)
    params_file = write_params(params, tmp_path, diverging)
    result = run_stage(project_root, "train", str(data_roots[0]), str(tmp_path / "models"),
                       "--stage", "train_tiny_study@tiny-7", "--params", str(params_file))
    assert result.returncode == 1, result.stdout[-2000:]
    assert message in result.stderr and "nothing was saved" in result.stderr, result.stderr[-2000:]
    assert "models.tiny.training.learning_rate" in result.stderr
    assert_nothing_saved(tmp_path / "models")


def start_long_training(project_root: Path, params: dict, tmp_path: Path, data_root: Path) -> tuple[subprocess.Popen, Path]:
    """A train stage with 500 epochs to run, returned once it has printed its start line."""
    endless = copy.deepcopy(AUGMENTED_BATCH_NORM_MODEL)
    endless["training"]["epochs"] = 500
    params_file = write_params(params, tmp_path, endless)
    run_dir = tmp_path / "models"
    command = [sys.executable, str(project_root / "stages" / "train.py"), str(data_root), str(run_dir),
               "--stage", "train_tiny_study@tiny-7", "--params", str(params_file)]
    process = subprocess.Popen(command, cwd=project_root, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines = []
    for line in process.stdout:  # the start line comes after TensorFlow has loaded and the data is read
        lines.append(line)
        if line.startswith("[train tiny seed 7]"):
            break
    else:
        pytest.fail("the stage ended before it started training: " + "".join(lines) + process.stderr.read())
    return process, run_dir


def assert_nothing_saved(root: Path) -> None:
    leftovers = sorted(str(path.relative_to(root)) for path in root.rglob("*") if path.is_file()) if root.exists() else []
    assert leftovers == [], f"an interrupted stage left {leftovers}"


def test_sigterm_stops_training_with_one_line_and_saves_nothing(project_root, params, data_roots, tmp_path):
    process, run_dir = start_long_training(project_root, params, tmp_path, data_roots[0])
    process.terminate()
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 143, stderr[-2000:]
    assert stderr.count("interrupted (SIGTERM): stage train ") == 1 and "train_tiny_study@tiny-7" in stderr, stderr[-2000:]
    assert "Traceback" not in stderr and "Exception ignored" not in stderr, stderr[-3000:]
    assert_nothing_saved(run_dir)


@pytest.mark.xdist_group("seeded_runs")
def test_a_corrupt_model_file_is_reported_as_corrupt_with_the_fix(project_root, seeded_runs, data_roots, tmp_path):
    """The message names the file and a fix; the previous results stay as they were (the fix itself
    is run by the end-to-end test on a real DVC project)."""
    shutil.copytree(seeded_runs["first"][0].parents[2], tmp_path / "models")
    shutil.copytree(seeded_runs["first"][1].parents[2], tmp_path / "metrics")
    model_file = run_directory(tmp_path / "models" / "tiny_study", "tiny", 7) / "model.keras"
    model_file.write_bytes(model_file.read_bytes()[: model_file.stat().st_size // 2])  # truncated
    results = run_directory(tmp_path / "metrics" / "tiny_study", "tiny", 7)
    before = {path: path.read_bytes() for path in results.rglob("*") if path.is_file()}
    result = run_stage(project_root, "evaluate", str(data_roots[1]), str(tmp_path / "models"), str(tmp_path / "metrics"),
                       "--stage", "evaluate_tiny_study@tiny-7", "--params", str(seeded_runs["params"]))
    assert result.returncode == 1
    assert f"error: {model_file} is corrupt or truncated" in result.stderr, result.stderr[-2000:]
    assert "dvc checkout --force train_tiny_study@tiny-7" in result.stderr
    assert "dvc repro -f -s train_tiny_study@tiny-7" in result.stderr
    assert "Traceback" not in result.stderr
    assert {path: path.read_bytes() for path in results.rglob("*") if path.is_file()} == before
