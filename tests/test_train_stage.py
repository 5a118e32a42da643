"""The train and evaluate stages as `dvc repro` runs them (subprocesses), on small synthetic data.

A run records what decides its numbers apart from its seconds; a bad seed, a diverging training,
an interruption or a corrupt model fails the stage with one clear line and leaves nothing behind.
(That a rerun gives the same bytes is shown through DVC: tests/test_end_to_end.py.)
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
def seeded_run(project_root, params, data_roots, tmp_path_factory) -> dict[str, Path]:
    """Seed 7 trained and evaluated, each in its own process, as `dvc repro` runs them.

    That a rerun in another process gives the same bytes is shown through DVC, by the end-to-end
    test of the reproduction check (an augmented batch-norm model, as here); that another seed gives
    other weights, by the end-to-end test of a new seed. Each run here costs two TensorFlow start-ups.
    """
    root = tmp_path_factory.mktemp("seeded_run")
    params_file = write_params(params, root, AUGMENTED_BATCH_NORM_MODEL)
    models, metrics = train_and_evaluate(project_root, root, data_roots, params_file, 7)
    return {"models": models, "metrics": metrics, "params": params_file}


# The tests on seeded_run share one worker, which makes the run once (per worker would be twice).
@pytest.mark.xdist_group("seeded_run")
def test_a_run_records_its_seed_and_determinism_and_keeps_seconds_and_machine_apart(seeded_run):
    """metrics.json holds what decides the numbers (seed, op determinism, threads, library versions);
    timings.json, the one file a rerun changes, holds the seconds and the machine."""
    models, results = seeded_run["models"], seeded_run["metrics"]
    assert {path.name for path in models.iterdir()} >= {"model.keras", "timings.json", "live"}
    metrics = json.loads((results / "metrics.json").read_text())
    timings = json.loads((results / "timings.json").read_text())
    provenance = metrics["provenance"][0]
    assert provenance["seed"] == metrics["seed"] == 7
    for step in ("training", "evaluation"):
        assert provenance[step]["determinism"]["op_determinism"] is True
        assert {"intra_op_threads", "inter_op_threads"} <= set(provenance[step]["determinism"])
        assert provenance[step]["library_versions"]["tensorflow"].startswith("2.")
        assert timings["machine"][step]["cpu_count"] >= 1 and timings["machine"][step]["cpu_model"]
    assert "machine" not in json.dumps(metrics) and "seconds" not in json.dumps(metrics)
    assert len(timings["elapsed_wall_seconds"]) == metrics["epochs_run"] and timings["training_cpu_seconds"] > 0


@pytest.mark.xdist_group("seeded_run")
def test_compare_runs_ignores_the_timings_file_and_names_any_other_difference(seeded_run, tmp_path, capsys):
    """devtools.compare_runs, the check before `dvc commit` after a refactor, on a real run's files."""
    for name in ("models", "metrics"):
        original = seeded_run[name]
        copy_dir = shutil.copytree(original, tmp_path / name)
        timings = copy_dir / "timings.json"
        record = json.loads(timings.read_text())
        record["training_cpu_seconds"] += 1.0  # a rerun: other seconds, the same run
        timings.write_text(json.dumps(record))
        assert compare_runs.main([str(original), str(copy_dir)]) == 0, capsys.readouterr().out
        assert capsys.readouterr().out.startswith("identical")
    model = tmp_path / "models" / "model.keras"
    model.write_bytes(model.read_bytes()[:-1] + bytes([model.read_bytes()[-1] ^ 1]))
    (tmp_path / "models" / "live" / "extra.txt").write_text("")
    assert compare_runs.main([str(seeded_run["models"]), str(tmp_path / "models")]) == 1
    out = capsys.readouterr().out
    assert "model.keras: differs" in out and "live/extra.txt: only in" in out, out


def test_an_undeclared_seed_is_refused_before_data_is_read(project_root, params, tmp_path):
    params_file = write_params(params, tmp_path, AUGMENTED_BATCH_NORM_MODEL, seeds=(7,))
    result = run_stage(project_root, "train", str(tmp_path / "no_data"), str(tmp_path / "models"),
                       "--stage", "train_tiny_study@tiny-9", "--params", str(params_file))
    assert result.returncode == 1
    assert "studies.tiny_study.seeds: seed 9 is not declared (declared: [7])" in result.stderr
    assert "Traceback" not in result.stderr and not (tmp_path / "models").exists()


def test_a_diverging_training_fails_the_stage_and_saves_nothing(project_root, params, data_roots, tmp_path):
    """A NaN loss. A loss that explodes without becoming NaN (SGD at 1e6) fails the same way, through
    DVC: tests/test_end_to_end.py::test_a_failed_stage_keeps_the_committed_results_and_the_printed_fix_works."""
    diverging = copy.deepcopy(AUGMENTED_BATCH_NORM_MODEL)
    diverging["training"].update(optimizer={"type": "sgd"}, learning_rate=1.0e30)
    params_file = write_params(params, tmp_path, diverging)
    result = run_stage(project_root, "train", str(data_roots[0]), str(tmp_path / "models"),
                       "--stage", "train_tiny_study@tiny-7", "--params", str(params_file))
    assert result.returncode == 1, result.stdout[-2000:]
    assert "the training loss became nan" in result.stderr and "nothing was saved" in result.stderr, result.stderr[-2000:]
    assert "models.tiny.training.learning_rate" in result.stderr
    assert_nothing_saved(tmp_path / "models")


def assert_nothing_saved(root: Path) -> None:
    leftovers = sorted(str(path.relative_to(root)) for path in root.rglob("*") if path.is_file()) if root.exists() else []
    assert leftovers == [], f"a failed stage left {leftovers}"


@pytest.mark.xdist_group("seeded_run")
def test_a_corrupt_model_file_is_reported_as_corrupt_with_the_fix(project_root, seeded_run, data_roots, tmp_path):
    """The message names the file and a fix; the previous results stay as they were (the fix itself
    is run by the end-to-end test on a real DVC project)."""
    shutil.copytree(seeded_run["models"].parents[2], tmp_path / "models")
    shutil.copytree(seeded_run["metrics"].parents[2], tmp_path / "metrics")
    model_file = run_directory(tmp_path / "models" / "tiny_study", "tiny", 7) / "model.keras"
    model_file.write_bytes(model_file.read_bytes()[: model_file.stat().st_size // 2])  # truncated
    results = run_directory(tmp_path / "metrics" / "tiny_study", "tiny", 7)
    before = {path: path.read_bytes() for path in results.rglob("*") if path.is_file()}
    result = run_stage(project_root, "evaluate", str(data_roots[1]), str(tmp_path / "models"), str(tmp_path / "metrics"),
                       "--stage", "evaluate_tiny_study@tiny-7", "--params", str(seeded_run["params"]))
    assert result.returncode == 1
    assert f"error: {model_file} is corrupt or truncated" in result.stderr, result.stderr[-2000:]
    assert "dvc checkout --force train_tiny_study@tiny-7" in result.stderr
    assert "dvc repro -f -s train_tiny_study@tiny-7" in result.stderr
    assert "Traceback" not in result.stderr
    assert {path: path.read_bytes() for path in results.rglob("*") if path.is_file()} == before
