"""docs/results.md's tables and figures against the committed metrics files and the reference texts."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from cnn_comparison.params import load_params
from devtools.results_doc import (CNN_STUDY, FAST_MODEL, NOT_TRAINED, best_full_data_model, cnn_results_markdown,
                                  curve_models,
                                  figures_markdown, is_full_data, model_study, parse_reference_accuracies,
                                  parse_reference_cnn_table, replace_section, seed_runs, seeds_markdown, study_models)

ROOT = Path(__file__).resolve().parents[1]
DOCUMENT = ROOT / "docs" / "results.md"
README = DOCUMENT.read_text()
PARAMS = load_params(ROOT / "params.yaml")
REFERENCE = parse_reference_cnn_table((ROOT / "reference" / "cnn_comparison_report.md").read_text())
REFERENCE_ACCURACIES = parse_reference_accuracies((ROOT / "reference" / "multitask_reference_output.txt").read_text())
MAX_PNG_BYTES = 250_000


def table_rows(section: str) -> list[list[str]]:
    match = re.search(rf"<!-- results:{section}:start -->\n(.*?)\n<!-- results:{section}:end -->", README, re.S)
    assert match, f"README has no results:{section} section"
    lines = [line for line in match.group(1).splitlines() if line.startswith("|")]
    return [[cell.strip() for cell in line.strip("|").split("|")] for line in lines[2:]]


def full_data_metrics(name: str) -> dict | None:
    path = ROOT / "results" / model_study(PARAMS, name) / name / "metrics.json"
    if not path.is_file():
        return None
    metrics = json.loads(path.read_text())
    return metrics if is_full_data(metrics) else None


def test_reference_parsers_read_the_reports_numbers():
    assert REFERENCE["fmnist_5"]["accuracy"] == "0.9305" and REFERENCE["fmnist_5"]["f1_macro"] == "0.93026"
    assert [REFERENCE[f"fmnist_{index}"]["accuracy"] for index in range(1, 7)] == [
        "0.9201", "0.9175", "0.9265", "0.9181", "0.9305", "0.9253"]
    assert REFERENCE_ACCURACIES == {"Dedicated Model Digit Performance": "0.97",
                                    "Dedicated Model Fashion Performance": "0.88",
                                    "Multitask Model Digit Performance": "0.98",
                                    "Multitask Model Fashion Performance": "0.87"}


def test_cnn_table_matches_metrics_files_and_reference():
    rows = table_rows("cnn")
    seen, model = [], None
    for row in rows:
        if row[1] == "here":
            model = row[0].strip("`")
            seen.append(model)
            metrics = full_data_metrics(model)
            if metrics is None:
                assert row[2] == NOT_TRAINED, f"{model}: the document shows numbers but its metrics file is not full data"
                continue
            assert row[2:] == [
                f"{metrics['accuracy']:.4f}",
                f"{100 * (metrics['accuracy'] - float(REFERENCE[model]['accuracy'])):+.2f}" if model in REFERENCE else "",
                f"{metrics['precision_macro']:.4f}", f"{metrics['recall_macro']:.4f}", f"{metrics['f1_macro']:.4f}",
                f"{metrics['loss']:.4f}", str(metrics["epochs_run"]), f"{metrics['training_time_seconds']:.0f}",
                f"{metrics['training_cpu_seconds']:.0f}",
            ], model
        else:
            assert row[1] == "reference" and model in REFERENCE, row
            expected = REFERENCE[model]
            assert [row[2], row[4], row[5], row[6], row[7], row[9]] == [
                expected["accuracy"], expected["precision_macro"], expected["recall_macro"], expected["f1_macro"],
                expected["loss"], expected["training_time_seconds"]], model
    assert seen == study_models(PARAMS, CNN_STUDY)


def test_multitask_table_matches_metrics_files_and_reference():
    rows = table_rows("multitask")
    expected_rows = []
    for task, config in PARAMS["multitask"]["tasks"].items():
        dedicated = config["dedicated_model"]
        expected_rows += [(task, f"`{dedicated}`", dedicated, None, PARAMS["models"][dedicated]["report_title"]),
                          (task, "`multitask`", "multitask", task, config["report_title"])]
    assert [row[:2] for row in rows] == [[task, label] for task, label, *_ in expected_rows]
    for row, (task, _, name, head, title) in zip(rows, expected_rows):
        assert row[3] == REFERENCE_ACCURACIES[title]
        metrics = full_data_metrics(name)
        if metrics is None:
            assert row[2] == NOT_TRAINED, name
            continue
        scores = metrics[head] if head else metrics
        assert row[2] == f"{scores['accuracy']:.4f}" and row[5] == f"{scores['f1_macro']:.4f}", name
        assert row[6] == f"{metrics['training_time_seconds']:.0f}", name


def test_document_shows_the_key_plots_small_enough_for_git():
    images = re.findall(r"!\[[^\]]*\]\(([^)]+\.png)\)", README)
    models = study_models(PARAMS, CNN_STUDY)
    metrics = {name: full_data_metrics(name) for name in models}
    required = {"../comparisons/dedicated_vs_multitask/test_accuracy.png"}
    curves = ROOT / "comparisons" / CNN_STUDY / "validation_accuracy.csv"
    plotted = curve_models(curves) if curves.is_file() else set()
    if all(metrics.values()) and set(models) <= plotted:  # curves need every model's training log
        required.add(f"../comparisons/{CNN_STUDY}/validation_accuracy.png")
    best = best_full_data_model(models, metrics)
    if best:
        required.add(f"../results/{CNN_STUDY}/{best}/confusion.png")
    assert required <= set(images), f"docs/results.md should show {sorted(required - set(images))}"
    for image in images:
        path = DOCUMENT.parent / image
        assert path.is_file(), f"docs/results.md shows {image}, which does not exist"
        assert path.stat().st_size <= MAX_PNG_BYTES, f"{image}: {path.stat().st_size} bytes, too big for git"


def test_untrained_or_limited_runs_are_not_shown_as_results():
    limited = {"accuracy": 0.5, "provenance": [{"limits": {"max_epochs": 1, "max_train_samples": None}}]}
    table = cnn_results_markdown(["fmnist_5", "fmnist_9"], {"fmnist_5": limited, "fmnist_9": None}, REFERENCE)
    assert table.count(NOT_TRAINED) == 2 and "0.5000" not in table
    assert "|  | reference | 0.9305 |" in table  # the reference row stays, verbatim


def test_replace_section_requires_exactly_one_marker_pair():
    text = "a\n<!-- results:cnn:start -->\nold\n<!-- results:cnn:end -->\nb"
    assert replace_section(text, "cnn", "new") == "a\n<!-- results:cnn:start -->\nnew\n<!-- results:cnn:end -->\nb"
    with pytest.raises(ValueError, match="results:multitask:start"):
        replace_section(text, "multitask", "new")


def test_best_model_ignores_limited_runs_and_breaks_ties_on_f1():
    def record(name, accuracy, f1, max_epochs):
        scores = {"accuracy": accuracy, "f1_macro": f1, "precision_macro": 0.9, "recall_macro": 0.9, "loss": 0.3}
        return {"model": name, "dataset": "fashion", **scores, "training_time_seconds": 1.0,
                "training_cpu_seconds": 1.0, "parameter_count": 10, "epochs_run": 1,
                "provenance": [{"limits": {"max_epochs": max_epochs}}]}
    metrics = {"a": record("a", 0.93, 0.92, None), "b": record("b", 0.93, 0.93, None),
               "c": record("c", 0.99, 0.99, 1), "d": None}
    assert best_full_data_model(["a", "b", "c", "d"], metrics) == "b"
    assert best_full_data_model(["c", "d"], metrics) is None
    assert f"../results/{CNN_STUDY}/b/confusion.png" in figures_markdown("b", curves_available=False)
    assert "validation_accuracy.png)" not in figures_markdown("b", curves_available=False)


def test_seed_table_matches_the_pipeline_run_and_the_extra_seeds():
    seed_file = ROOT / "benchmarks" / "results" / f"seed_variance_{FAST_MODEL}.json"
    runs = seed_runs(full_data_metrics(FAST_MODEL), json.loads(seed_file.read_text()) if seed_file.is_file() else None,
                     PARAMS["models"][FAST_MODEL])
    rows = table_rows("seeds")
    if not runs:
        assert NOT_TRAINED in README.split("<!-- results:seeds:start -->")[1].split("<!-- results:seeds:end -->")[0]
        return
    assert [row[:3] for row in rows[:len(runs)]] == [[str(run["seed"]), run["run"], f"{run['accuracy']:.4f}"]
                                                      for run in runs]
    if len(runs) > 1:
        accuracies = [run["accuracy"] for run in runs]
        mean = sum(accuracies) / len(accuracies)
        std = (sum((value - mean) ** 2 for value in accuracies) / (len(accuracies) - 1)) ** 0.5
        assert rows[-1][2] == f"{mean:.4f} ± {std:.4f}"


def test_seeds_markdown_takes_the_sample_standard_deviation():
    runs = [{"seed": seed, "run": "x", "accuracy": accuracy, "f1_macro": accuracy, "training_time_seconds": 100.0,
             "training_cpu_seconds": 200.0} for seed, accuracy in ((1, 0.93), (2, 0.94), (3, 0.95))]
    assert "| mean ± std (3 seeds) |  | 0.9400 ± 0.0100 | 0.9400 ± 0.0100 | 100 ± 0 | 200 ± 0 |" in seeds_markdown("m", runs)
    pipeline = {"seed": 42, "accuracy": 0.9, "f1_macro": 0.9, "training_time_seconds": 1.0, "training_cpu_seconds": 2.0,
                "provenance": [{"limits": {"max_epochs": None}}]}
    entry = {"layers": [], "training": {"epochs": 12}}
    extra = {"model_entry": entry, "runs": {"42": {"accuracy": 0.1}, "43": {
        "accuracy": 0.8, "f1_macro": 0.8, "training_time_seconds": 1.0, "training_cpu_seconds": 2.0}}}
    assert [(run["seed"], run["accuracy"]) for run in seed_runs(pipeline, extra, entry)] == [(42, 0.9), (43, 0.8)]
    # Seeds of another recipe, or of an unrecorded one, are left out.
    assert [run["seed"] for run in seed_runs(pipeline, extra, {**entry, "training": {"epochs": 8}})] == [42]
    assert [run["seed"] for run in seed_runs(pipeline, {"runs": extra["runs"]}, entry)] == [42]


def test_time_to_accuracy_section_is_the_aggregates_table():
    table = ROOT / "comparisons" / CNN_STUDY / "time_to_accuracy.md"
    section = README.split("<!-- results:time:start -->\n")[1].split("\n<!-- results:time:end -->")[0]
    assert section == (table.read_text().strip() if table.is_file() else f"`aggregate@{CNN_STUDY}` has not run yet.")
