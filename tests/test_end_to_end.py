"""Runs the real `dvc repro` on a temporary copy of the project, real data, small limits."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

pytestmark = pytest.mark.end_to_end

LIMITS = {"max_train_samples": 1000, "max_epochs": 1, "max_eval_samples": 500}


def run(command: list[str], cwd: Path, env: dict) -> str:
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True)
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"{' '.join(command)} failed:\n{output[-4000:]}"
    return output


def stages_run(output: str) -> set[str]:
    return set(re.findall(r"Running stage '([^']+)'", output))


def set_value(params_path: Path, pattern: str, replacement: str) -> None:
    text = params_path.read_text()
    new_text, count = re.subn(pattern, replacement, text, count=1, flags=re.MULTILINE | re.DOTALL)
    assert count == 1, pattern
    params_path.write_text(new_text)


@pytest.fixture(scope="module")
def project(tmp_path_factory, project_root):
    work = tmp_path_factory.mktemp("e2e") / "project"
    tracked = subprocess.run(["git", "ls-files"], cwd=project_root, capture_output=True, text=True, check=True)
    for relative in tracked.stdout.splitlines():
        source = project_root / relative
        if source.is_file():
            (work / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, work / relative)
    for name, value in LIMITS.items():
        set_value(work / "params.yaml", rf"^  {name}: null", f"  {name}: {value}")
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    env.pop("CNN_DATA_MIRROR", None)
    for command in (["git", "init", "-q"], ["git", "add", "-A"],
                    ["git", "-c", "user.name=test", "-c", "user.email=test@example.com", "commit", "-qm", "copy"]):
        run(command, work, env)
    output = run([sys.executable, "-m", "dvc", "repro"], work, env)
    return work, env, output


def test_every_stage_ran_and_showed_progress(project, params):
    _, _, output = project
    ran = stages_run(output)
    for name in params["models"]:
        assert {f"train@{name}", f"evaluate@{name}"} <= ran
    assert {"download@mnist", "download@fashion", "prepare@mnist", "split@fashion", "aggregate",
            "train_multitask", "evaluate_multitask", "aggregate_multitask"} <= ran
    # Keras prints one progress line per epoch (verbose=2): steps, time, train and val metrics.
    assert re.search(r"^\d+/\d+ - \d+s - .*accuracy: [\d.]+ .*val_accuracy: [\d.]+", output, flags=re.MULTILINE)
    assert "verified all 4 files from" in output


def test_metrics_files_are_sane(project, params):
    work, _, _ = project
    for name, entry in params["models"].items():
        metrics = json.loads((work / "metrics" / f"{name}.json").read_text())
        for key in ("accuracy", "precision_macro", "recall_macro", "f1_macro"):
            assert 0.0 <= metrics[key] <= 1.0, (name, key)
        assert metrics["accuracy"] > 0.1 or entry["training"]["augmentation"]["enabled"], name  # chance is 0.1
        assert metrics["loss"] > 0 and metrics["samples"] == LIMITS["max_eval_samples"]
        assert metrics["epochs_run"] == 1 and metrics["training_time_seconds"] > 0
        provenance = metrics["provenance"][0]
        assert provenance["params"] == entry and provenance["limits"] == LIMITS
        assert provenance["library_versions"]["tensorflow"].startswith("2.")
        report = (work / "metrics" / f"{name}_report.txt").read_text()
        assert report.startswith(entry.get("report_title", f"{name} Performance") + ":\n[[")
        confusion = pd.read_csv(work / "plots" / "confusion" / f"{name}.csv")
        assert list(confusion.columns) == ["actual", "predicted"] and len(confusion) == LIMITS["max_eval_samples"]
        for png in (f"{name}_confusion.png", f"{name}_samples.png"):
            assert (work / "plots" / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert (work / "models" / f"{name}.keras").stat().st_size > 0
    table = pd.read_csv(work / "metrics" / "comparison.csv")
    assert list(table["model"]) == list(params["models"])
    assert "Best model on fashion: **" in (work / "metrics" / "comparison.md").read_text()
    curves = pd.read_csv(work / "plots" / "validation_accuracy.csv")
    assert list(curves.columns) == ["epoch", *params["models"]] and len(curves) == 1
    multitask = json.loads((work / "metrics" / "multitask.json").read_text())
    assert 0 <= multitask["digits"]["accuracy"] <= 1 and 0 <= multitask["fashion"]["accuracy"] <= 1
    comparison = pd.read_csv(work / "metrics" / "multitask_comparison.csv")
    assert set(zip(comparison["model"], comparison["task"])) == {
        ("dedicated", "digits"), ("dedicated", "fashion"), ("multitask", "digits"), ("multitask", "fashion")}
    for report in ("multitask_digits_report.txt", "multitask_fashion_report.txt"):
        assert (work / "metrics" / report).read_text().startswith("Multitask Model")
    assert (work / "plots" / "multitask_comparison.png").read_bytes()[:4] == b"\x89PNG"


def test_dvc_metrics_show_lists_every_model(project, params):
    work, env, _ = project
    shown = json.loads(run([sys.executable, "-m", "dvc", "metrics", "show", "--json"], work, env))
    files = next(iter(shown.values()))["data"]
    for name in [*params["models"], "multitask"]:
        assert "accuracy" in json.dumps(files[f"metrics/{name}.json"]["data"]), name


def test_dvc_plots_show_writes_html(project):
    work, env, _ = project
    run([sys.executable, "-m", "dvc", "plots", "show"], work, env)
    html = (work / "dvc_plots" / "index.html").read_text()
    assert "Validation accuracy per epoch" in html and "confusion" in html


def test_second_repro_runs_nothing_and_edits_rerun_only_their_stages(project):
    work, env, _ = project
    dvc = [sys.executable, "-m", "dvc"]
    assert stages_run(run([*dvc, "repro"], work, env)) == set()
    assert "Data and pipelines are up to date" in run([*dvc, "status"], work, env)

    # One CNN's recipe: only its train/evaluate and the aggregate.
    set_value(work / "params.yaml", r"(  fmnist_2:.*?learning_rate: )0\.001", r"\g<1>0.002")
    status = json.loads(run([*dvc, "status", "--json"], work, env))
    assert set(status) == {"train@fmnist_2", "evaluate@fmnist_2", "aggregate"}
    assert stages_run(run([*dvc, "repro"], work, env)) == {"train@fmnist_2", "evaluate@fmnist_2", "aggregate"}

    # The multitask trunk: only the multitask stages and their aggregation.
    set_value(work / "params.yaml", r"(  trunk:.*?units: )128", r"\g<1>64")
    status = json.loads(run([*dvc, "status", "--json"], work, env))
    assert set(status) == {"train_multitask", "evaluate_multitask"}
    assert stages_run(run([*dvc, "repro"], work, env)) == {
        "train_multitask", "evaluate_multitask", "aggregate_multitask"}
