"""Runs the real `dvc repro` on a temporary copy of the project, real data, small limits."""
from __future__ import annotations

import json
import re

import pandas as pd
import pytest

from helpers import SMALL_LIMITS as LIMITS
from helpers import copy_project, dvc, run, set_value, stages_run, tool_environment

pytestmark = pytest.mark.end_to_end


@pytest.fixture(scope="module")
def project(tmp_path_factory, project_root):
    work = copy_project(project_root, tmp_path_factory.mktemp("e2e") / "project")
    env = tool_environment()
    output = run(dvc("repro"), work, env)
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
        assert metrics["epochs_run"] == 1 and metrics["training_time_seconds"] > 0 and metrics["training_cpu_seconds"] > 0
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
    shown = json.loads(run(dvc("metrics", "show", "--json"), work, env))
    files = next(iter(shown.values()))["data"]
    for name in [*params["models"], "multitask"]:
        assert "accuracy" in json.dumps(files[f"metrics/{name}.json"]["data"]), name


def test_dvc_plots_show_writes_html(project):
    work, env, _ = project
    run(dvc("plots", "show"), work, env)
    html = (work / "dvc_plots" / "index.html").read_text()
    assert "Validation accuracy per epoch" in html and "confusion" in html


def test_second_repro_runs_nothing_and_edits_rerun_only_their_stages(project):
    work, env, _ = project
    assert stages_run(run(dvc("repro"), work, env)) == set()
    assert "Data and pipelines are up to date" in run(dvc("status"), work, env)

    # One CNN's recipe: only its train/evaluate and the aggregate.
    set_value(work / "params.yaml", r"(  fmnist_2:.*?learning_rate: )0\.001", r"\g<1>0.002")
    status = json.loads(run(dvc("status", "--json"), work, env))
    assert set(status) == {"train@fmnist_2", "evaluate@fmnist_2", "aggregate"}
    assert stages_run(run(dvc("repro"), work, env)) == {"train@fmnist_2", "evaluate@fmnist_2", "aggregate"}

    # The multitask trunk: only the multitask stages and their aggregation.
    set_value(work / "params.yaml", r"(  trunk:.*?units: )128", r"\g<1>64")
    status = json.loads(run(dvc("status", "--json"), work, env))
    assert set(status) == {"train_multitask", "evaluate_multitask"}
    assert stages_run(run(dvc("repro"), work, env)) == {
        "train_multitask", "evaluate_multitask", "aggregate_multitask"}
