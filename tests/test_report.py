"""docs/results.md's generated sections (cnn_comparison/report.py, the `report` stage): the generator
on synthetic trees, and the committed document against what the stage makes of the committed files."""
from __future__ import annotations

import copy
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from cnn_comparison.layout import run_directory
from cnn_comparison.params import load_params, validated
from cnn_comparison.report import (NOT_RETRAINED, REFERENCE_OUTPUT, REFERENCE_REPORT, SECTIONS, ReferenceRun,
                                   current_aggregate, fill_template, is_full_data, parse_reference_accuracies,
                                   parse_reference_cnn_table, parse_reference_training_logs, read_study_runs,
                                   reference_ranking_line, render_sections, reproduction_line,
                                   time_to_accuracy_by_model)
from cnn_comparison.comparison import comparison_table, seeded_label, unseeded_label

ROOT = Path(__file__).resolve().parents[1]
DOCUMENT = ROOT / "docs" / "results.md"
REFERENCE_DIR = ROOT / "reference"
TEMPLATE = ROOT / "docs" / "results.template.md"
REFERENCE_TEXTS = {name: (REFERENCE_DIR / name).read_text() for name in (REFERENCE_REPORT, REFERENCE_OUTPUT)}
RAW_PARAMS = load_params(ROOT / "params.yaml")
CNN_STUDY, FAST_STUDY, STUDY_2 = "fashion_cnns", "fast_cnn", "dedicated_vs_multitask"
FULL = {"max_train_samples": None, "max_epochs": None, "max_eval_samples": None}
MAX_DOCUMENT_LINES = 180  # a page to read, not a dump: every table explains a number or a gap


def scores(accuracy: float, dataset: str) -> dict:
    return {"accuracy": accuracy, "precision_macro": accuracy, "recall_macro": accuracy, "f1_macro": accuracy - 0.001,
            "loss": 1 - accuracy, "samples": 10000, "dataset": dataset}


def record(model: str, seed: int, accuracy: float | dict[str, tuple[float, str]], dataset: str = "fashion",
           limits: dict | None = None, epochs: int = 10) -> dict:
    """A metrics.json as the evaluate stage writes it; ``accuracy={task: (accuracy, dataset)}`` for multitask."""
    common = {"model": model, "seed": seed, "training_time_seconds": 100.0, "training_cpu_seconds": 150.0 + seed,
              "epochs_run": epochs, "epoch_of_saved_weights": epochs, "parameter_count": 1234,
              "evaluation_time_seconds": 1.0,
              "provenance": [{"params": {}, "seed": seed, "split": {},
                              "limits": dict(FULL if limits is None else limits), "library_versions": {}}]}
    if isinstance(accuracy, dict):
        return {**common, "heads": {task: scores(*value) for task, value in accuracy.items()}}
    return {**common, "heads": {dataset: scores(accuracy, dataset)}}


TIME_KEYS = ("training_time_seconds", "training_cpu_seconds", "evaluation_time_seconds", "inference_images_per_second")


def write_record(results: Path, study: str, metrics: dict) -> Path:
    """metrics.json and timings.json of a run, as evaluate writes them, from one merged record."""
    path = run_directory(results / study, metrics["model"], metrics["seed"]) / "metrics.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    metrics = dict(metrics)
    timings = {key: metrics.pop(key) for key in TIME_KEYS if key in metrics}
    path.write_text(json.dumps(metrics))
    (path.parent / "timings.json").write_text(json.dumps(timings))
    return path


def params_with_seeds(**seeds_by_study: list[int]):
    """The project's params.yaml with other seed lists (raw mapping and validated)."""
    raw = copy.deepcopy(RAW_PARAMS)
    for study, seeds in seeds_by_study.items():
        raw["studies"][study]["seeds"] = seeds
    return raw, validated(raw)


def study_2_runs(results: Path, seeds: list[int]) -> None:
    """Every declared study-2 run: multitask clearly ahead on digits, level with the dedicated model on fashion."""
    for seed in seeds:
        wobble = (seed % 3 - 1) / 1000  # -0.001, 0, +0.001: seed noise
        write_record(results, STUDY_2, record("digits_dedicated", seed, 0.970 + wobble, "mnist", epochs=5))
        write_record(results, STUDY_2, record("fashion_dedicated", seed, 0.870 + wobble, epochs=5))
        write_record(results, STUDY_2, record("multitask", seed, {"digits": (0.980 - wobble, "mnist"),
                                                                  "fashion": (0.870 - wobble, "fashion")}, epochs=5))


def table_rows(content: str) -> list[list[str]]:
    lines = [line for line in content.splitlines() if line.startswith("|")]
    return [[cell.strip() for cell in line.strip("|").split("|")] for line in lines[2:]]


def render(params, tmp_path: Path) -> dict[str, str]:
    return render_sections(params, tmp_path / "metrics", tmp_path / "plots", REFERENCE_TEXTS, tmp_path / "docs")


def run_report(root: Path, document: Path, template: Path = TEMPLATE, params: Path | None = None,
               metrics: str = "metrics", plots: str = "plots") -> subprocess.CompletedProcess:
    """The `report` stage's command, as dvc.yaml runs it (from the project root)."""
    command = [sys.executable, "stages/report.py", str(template), str(root / metrics), str(root / plots),
               "reference", str(document)]
    return subprocess.run(command + (["--params", str(params)] if params else []), cwd=ROOT, capture_output=True,
                          text=True, timeout=120)


@pytest.fixture(scope="module")
def aggregated_study_2(tmp_path_factory):
    """Study 2 with three seeds, every run written, and `aggregate@dedicated_vs_multitask` run on it."""
    root = tmp_path_factory.mktemp("aggregated")
    raw, params = params_with_seeds(**{STUDY_2: [1, 2, 3]})
    (root / "params.yaml").write_text(yaml.safe_dump(raw))
    study_2_runs(root / "metrics", [1, 2, 3])
    subprocess.run([sys.executable, str(ROOT / "stages" / "aggregate.py"), str(root / "metrics"), str(root / "plots"),
                    "--stage", f"aggregate@{STUDY_2}", "--params", str(root / "params.yaml")],
                   check=True, capture_output=True, cwd=ROOT, timeout=300)
    return root, params


def test_reference_parsers_read_the_reports_numbers():
    reference = parse_reference_cnn_table((REFERENCE_DIR / "cnn_comparison_report.md").read_text())
    assert [reference[f"fmnist_{index}"]["accuracy"] for index in range(1, 7)] == [
        "0.9201", "0.9175", "0.9265", "0.9181", "0.9305", "0.9253"]
    assert parse_reference_accuracies((REFERENCE_DIR / "multitask_reference_output.txt").read_text()) == {
        "Dedicated Model Digit Performance": "0.97", "Dedicated Model Fashion Performance": "0.88",
        "Multitask Model Digit Performance": "0.98", "Multitask Model Fashion Performance": "0.87"}


def test_the_reports_training_logs_give_each_validated_run_and_the_epoch_it_kept():
    """`fmnist_1` trained without validation data; each other log is as long as `report.reference.epochs`
    says, and the kept epoch is the one its early stopping restored (the last for a run that went all 50)."""
    runs = parse_reference_training_logs(REFERENCE_TEXTS[REFERENCE_REPORT])
    epochs = validated(RAW_PARAMS).report.reference.epochs
    assert sorted(runs) == [f"fmnist_{index}" for index in range(2, 7)]
    assert {model: len(run.validation_accuracy) for model, run in runs.items()} == {model: epochs[model] for model in runs}
    assert {model: run.kept_epoch for model, run in runs.items()} == {
        "fmnist_2": 10, "fmnist_3": 19, "fmnist_4": 14, "fmnist_5": 50, "fmnist_6": 31}
    assert runs["fmnist_5"].validation_accuracy[-1] == 0.9311 and runs["fmnist_4"].validation_accuracy[13] == 0.9227


def test_a_reference_run_keeps_its_lowest_validation_loss_only_when_early_stopping_ended_it():
    log = "\n".join([
        "fmnist_7.fit(x, y, epochs=4)", "Epoch 1/4", "375/375 - accuracy: 0.8 - val\\_accuracy: 0.81 - val\\_loss: 0.40",
        "Epoch 2/4", "- val_accuracy: 0.85 - val_loss: 0.30", "Epoch 3/4", "- val_accuracy: 0.84 - val_loss: 0.35",
        "Training fmnist\\_8...", "Epoch 1/2", "- val_accuracy: 0.70 - val_loss: 0.60",
        "Epoch 2/2", "- val_accuracy: 0.60 - val_loss: 0.90"])
    runs = parse_reference_training_logs(log)
    assert runs["fmnist_7"] == ReferenceRun(4, (0.81, 0.85, 0.84), (0.40, 0.30, 0.35))
    assert runs["fmnist_7"].kept_epoch == 2  # stopped after 3 of 4 epochs: the best weights were restored
    assert runs["fmnist_8"].kept_epoch == 2  # ran all its epochs: the last weights were tested
    with pytest.raises(ValueError, match="no Keras training logs"):
        parse_reference_training_logs("fmnist_1.fit(x, y)\nEpoch 1/10\n- accuracy: 0.9 - loss: 0.3")


def test_validation_rows_put_the_weights_our_runs_kept_beside_the_reports(tmp_path):
    _, params = params_with_seeds(fashion_cnns=[42, 43])
    results = tmp_path / "metrics"
    for seed, saved_epoch, test_accuracy in ((42, 2, 0.92), (43, 3, 0.93)):
        run = record("fmnist_5", seed, test_accuracy, epochs=3)
        run["epoch_of_saved_weights"] = saved_epoch
        log = write_record(results, CNN_STUDY, run).parent / "live" / "plots" / "metrics" / "eval" / "accuracy.tsv"
        log.parent.mkdir(parents=True)
        pd.DataFrame({"step": [0, 1, 2], "accuracy": [0.90, 0.93, 0.95]}).to_csv(log, sep="\t", index=False)
    write_record(results, CNN_STUDY, record("fmnist_own", 42, 0.93))  # evaluated before logs were copied beside it
    rows = {row[0]: row[1:] for row in table_rows(render(params, tmp_path)["validation"])}
    assert list(rows) == [f"`{model}`" for model in params.studies[CNN_STUDY].models]
    # validation accuracy at epochs 2 and 3: 0.93 and 0.95; minus test accuracy: +1 and +2 points
    assert rows["`fmnist_5`"] == ["2–3 / 50", "0.9400 ± 0.0141 / 0.9311", "+1.50 / +0.06"]
    assert rows["`fmnist_1`"] == ["– / –"] * 3  # not run here; the report's had no validation data
    assert rows["`fmnist_own`"] == ["–"] * 3  # ours: no reference column


def test_only_runs_without_limits_count_as_full_data():
    assert is_full_data(record("m", 42, 0.9))
    assert is_full_data(record("m", 42, 0.9, limits={}))  # caps absent
    assert not is_full_data(record("m", 42, 0.9, limits={**FULL, "max_epochs": 1}))
    assert not is_full_data({"model": "m", "heads": {"fashion": {"accuracy": 0.9}}})  # no provenance: cannot tell how it was made
    assert not is_full_data(None)


def test_only_declared_full_data_runs_in_the_seed_layout_are_read(tmp_path):
    _, params = params_with_seeds(fashion_cnns=[42, 43])
    results = tmp_path / "metrics"
    write_record(results, CNN_STUDY, record("fmnist_5", 42, 0.93))
    write_record(results, CNN_STUDY, record("fmnist_5", 43, 0.5, limits={**FULL, "max_train_samples": 100}))
    write_record(results, CNN_STUDY, record("fmnist_5", 44, 0.99))  # seed not declared
    old_layout = results / CNN_STUDY / "fmnist_1" / "metrics.json"  # older code's metrics/<study>/<model>/
    old_layout.parent.mkdir(parents=True)
    old_layout.write_text(json.dumps(record("fmnist_1", 42, 0.99)))
    runs = read_study_runs(params, CNN_STUDY, results)
    assert list(runs.records) == [("fmnist_5", 42)] and not runs.complete
    assert runs.seeds_of("fmnist_5") == [42] and runs.seeds_of("fmnist_1") == []


def test_a_metrics_file_of_another_run_than_its_path_is_an_error(tmp_path):
    _, params = params_with_seeds()
    path = write_record(tmp_path / "metrics", CNN_STUDY, record("fmnist_5", 42, 0.93))
    path.write_text(json.dumps(record("fmnist_6", 42, 0.93)))
    with pytest.raises(ValueError, match="records model 'fmnist_6' seed 42"):
        read_study_runs(params, CNN_STUDY, tmp_path / "metrics")


def test_cnn_rows_are_means_over_full_data_seeds_and_not_retrained_otherwise(tmp_path):
    _, params = params_with_seeds(fashion_cnns=[42, 43])
    results = tmp_path / "metrics"
    for seed, accuracy, epochs, calibration, speed in ((42, 0.93, 30, 0.02, 1500.0), (43, 0.94, 35, 0.03, 1700.0)):
        costed = record("fmnist_5", seed, accuracy, epochs=epochs)
        costed["heads"]["fashion"]["expected_calibration_error"] = calibration
        costed.update(macs_per_image=12_345_678, model_size_bytes=3_210_000, test_time_views=1,
                      inference_images_per_second=speed)
        write_record(results, CNN_STUDY, costed)
    write_record(results, CNN_STUDY, record("fmnist_own", 42, 0.935))  # evaluated before costs were recorded
    write_record(results, CNN_STUDY, record("fmnist_own", 43, 0.5, limits={**FULL, "max_epochs": 1}))
    rows = {row[0]: row for row in table_rows(render(params, tmp_path)["reference"])}
    assert list(rows) == [f"`{model}`" for model in params.studies[CNN_STUDY].models]
    # mean ± sample std; gap to the report's 0.9305; epochs as a range; mean CPU seconds; mean ECE, MMACs,
    # size in MB, mean images/s
    assert rows["`fmnist_5`"] == ["`fmnist_5`", "0.9350 ± 0.0071", "2 of 2", "0.9305", "+0.45", "0.9340 ± 0.0071",
                                  "30–35", "50", "192", "0.0250", "12.3", "3.21", "1,600"]
    assert rows["`fmnist_own`"][1:4] == ["0.9350", "1 of 2", ""]  # the limited seed does not count
    assert rows["`fmnist_own`"][-4:] == ["–"] * 4
    assert rows["`fmnist_1`"] == ["`fmnist_1`", NOT_RETRAINED, "0 of 2", "0.9201", "", "", "", "10", "", "", "", "", ""]
    declared = 2 * len(params.studies[CNN_STUDY].models)
    assert f"3 of the {declared} declared runs of `fashion_cnns`" in render(params, tmp_path)["reference"]


def test_without_full_data_runs_every_section_says_so(tmp_path):
    _, params = params_with_seeds()
    sections = render(params, tmp_path)
    assert set(sections) == set(SECTIONS)
    assert all(row[2] == NOT_RETRAINED for row in table_rows(sections["multitask"]))
    assert all(row[1] == NOT_RETRAINED for row in table_rows(sections["reference"]))
    assert sections["time"] == ("**`fashion_cnns`**: No full-data runs of `fashion_cnns` by the current code yet.\n\n"
                                "**`fast_cnn`**: No full-data runs of `fast_cnn` by the current code yet.")
    assert all(row[1] == NOT_RETRAINED for row in table_rows(sections["targets"]))
    assert ".png" not in sections["figures"]


def test_multitask_rows_carry_the_aggregates_welch_verdict(aggregated_study_2):
    root, params = aggregated_study_2
    rows = table_rows(render(params, root)["multitask"])
    assert [row[:2] for row in rows] == [["digits", "`digits_dedicated`"], ["digits", "`multitask (digits)`"],
                                         ["fashion", "`fashion_dedicated`"], ["fashion", "`multitask (fashion)`"]]
    assert rows[0][2:7] == ["0.9700 ± 0.0010", "3 of 3", "0.97", "+0.00", "0.9690 ± 0.0010"]
    assert rows[1][4:6] == ["0.98", "+0.00"] and rows[2][5] == "-1.00"
    assert rows[1][7].startswith("+1.00 pp, Holm-adjusted p = ") and rows[1][7].endswith(": differs")
    assert rows[3][7] == "+0.00 pp, Holm-adjusted p = 1.0000: within noise"
    assert rows[0][7] == rows[2][7] == ""


def test_a_reference_model_is_reproduced_within_0_6_points_or_two_seed_stds():
    reference = {"fmnist_1": {"accuracy": "0.9201"}, "fmnist_2": {"accuracy": "0.9175"},
                 "fmnist_5": {"accuracy": "0.9305"}, "fmnist_6": {"accuracy": "0.9253"}}
    spread = {"fmnist_1": {"test_accuracy_mean": 0.9174, "test_accuracy_std": float("nan"), "n": 1},  # -0.27
              "fmnist_2": {"test_accuracy_mean": 0.9250, "test_accuracy_std": 0.0040, "n": 3},  # +0.75 < 2 std
              "fmnist_5": {"test_accuracy_mean": 0.9202, "test_accuracy_std": 0.0010, "n": 3}}  # -1.03 > 2 std
    line = reproduction_line(spread, reference)
    assert "`fmnist_1` (-0.27), `fmnist_2` (+0.75)." in line
    assert line.endswith("**Not reproduced:** `fmnist_5` (-1.03); the causes are below.")


def test_the_report_s_ranking_is_checked_against_ours_over_seeds():
    reference = {"fmnist_5": {"accuracy": "0.9305"}, "fmnist_3": {"accuracy": "0.9265"}}

    def aggregate(accuracies: dict[str, list[float]]):
        return comparison_table([record(model, 42 + index, value) for model, values in accuracies.items()
                                 for index, value in enumerate(values)])

    same = reference_ranking_line(reference, aggregate({"fmnist_5": [0.93, 0.931, 0.932], "fmnist_3": [0.92] * 3}))
    assert same.endswith("`fmnist_5` ranks 1 of 2 here by mean test accuracy; the ranking holds.")
    tied = reference_ranking_line(reference, aggregate({"fmnist_5": [0.925, 0.931, 0.92],
                                                        "fmnist_3": [0.93, 0.924, 0.928]}))
    assert "`fmnist_5` ranks 2 of 2" in tied and "within seed noise (Holm-adjusted p = " in tied
    assert tied.endswith("the ranking holds within noise.")
    beaten = reference_ranking_line(reference, aggregate({"fmnist_5": [0.910, 0.911, 0.912],
                                                          "fmnist_3": [0.930, 0.931, 0.929]}))
    assert "`fmnist_3` is ahead by +1.90 pp beyond seed noise" in beaten and beaten.endswith("does not hold.")


def test_figures_link_the_plots_of_a_current_aggregate_only(aggregated_study_2):
    root, params = aggregated_study_2
    figures = render(params, root)["figures"]
    links = re.findall(r"\]\(([^)]+)\)", figures)
    assert "../plots/dedicated_vs_multitask/test_accuracy.png" in links
    assert all((root / "docs" / target).resolve().is_file() for target in links)
    assert "`fashion_cnns`: no plots yet. No full-data runs" in figures


def test_a_stale_aggregate_is_not_shown(aggregated_study_2, tmp_path):
    root, params = aggregated_study_2
    runs = read_study_runs(params, STUDY_2, root / "metrics")
    assert current_aggregate(runs, root / "plots") is not None
    stale = tmp_path / "plots" / STUDY_2
    stale.mkdir(parents=True)
    table = (root / "plots" / STUDY_2 / "table.csv").read_text()
    (stale / "table.csv").write_text(table.replace("0.97,", "0.96,", 1))
    assert current_aggregate(runs, tmp_path / "plots") is None
    sections = render_sections(params, root / "metrics", tmp_path / "plots", REFERENCE_TEXTS, root / "docs")
    assert "`plots/dedicated_vs_multitask/` does not hold the current runs: run `dvc repro`." in sections["figures"]
    assert all(row[7] == "" for row in table_rows(sections["multitask"]))


def test_time_section_is_the_aggregates_table_once_current(tmp_path):
    raw, params = params_with_seeds(fashion_cnns=[42])
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw))
    for index, model in enumerate(params.studies[CNN_STUDY].models):
        write_record(tmp_path / "metrics", CNN_STUDY, record(model, 42, 0.90 + index / 100))
    runs = read_study_runs(params, CNN_STUDY, tmp_path / "metrics")
    assert "**`fashion_cnns`**: `plots/fashion_cnns/` does not hold the current runs: run `dvc repro`." \
        in render(params, tmp_path)["time"]
    subprocess.run([sys.executable, str(ROOT / "stages" / "aggregate.py"), str(tmp_path / "metrics"),
                    str(tmp_path / "plots"), "--stage", f"aggregate@{CNN_STUDY}", "--params", str(tmp_path / "params.yaml")], check=True, capture_output=True, cwd=ROOT, timeout=300)
    assert current_aggregate(runs, tmp_path / "plots") is not None
    sections = render(params, tmp_path)
    # A row per model from the aggregate's time_to_accuracy.csv, and a link to its per-run table.
    reached = pd.read_csv(tmp_path / "plots" / CNN_STUDY / "time_to_accuracy.csv")
    models = params.studies[CNN_STUDY].models  # no training logs here: each is listed as having none
    table = time_to_accuracy_by_model(reached, params.studies[CNN_STUDY].accuracy_thresholds, models)
    assert sections["time"].startswith(f"**`fashion_cnns`** ([per run](../plots/fashion_cnns/time_to_accuracy.md))"
                                       f"\n\n{table}\n\n**`fast_cnn`**: No full-data runs")
    assert [row[:3] for row in table_rows(table)] == [[f"`{model}`", "0", "no training log in the workspace"]
                                                      for model in models]
    # The last model of the study has the highest accuracy here.
    assert f"Best model on fashion: **{params.studies[CNN_STUDY].models[-1]}**" in sections["reference"]


def test_the_fast_section_judges_the_target_against_fmnist_5s_cpu_seconds(tmp_path):
    _, params = params_with_seeds(fashion_cnns=[42], fast_cnn=[1, 2, 3])
    results = tmp_path / "metrics"
    baseline = record("fmnist_5", 42, 0.93)
    baseline["training_cpu_seconds"] = 9000.0
    write_record(results, CNN_STUDY, baseline)
    for seed, accuracy in [(1, 0.941), (2, 0.942)]:
        write_record(results, FAST_STUDY, record("fmnist_fast", seed, accuracy))  # CPU 151, 152 s
    fast = render(params, tmp_path)["targets"]
    assert table_rows(fast)[0][1:3] == ["0.9415 ± 0.0007", "2 of 3"]
    assert "judged once all 3 seeds" in fast  # not on two of three seeds
    write_record(results, FAST_STUDY, record("fmnist_fast", 3, 0.934))
    fast = render(params, tmp_path)["targets"]
    assert table_rows(fast)[0] == ["`fmnist_fast`", "0.9390 ± 0.0044", "3 of 3", "0.9380 ± 0.0044", "10", "152", "0.02"]
    assert "mean test accuracy 0.9390 (misses the 0.940 target), in 0.02 of `fmnist_5`'s training CPU seconds " \
           "(152 against 9,000; within the 0.33 allowed)" in fast
    baseline["training_cpu_seconds"] = 300.0
    write_record(results, CNN_STUDY, baseline)
    assert "0.51 of `fmnist_5`'s training CPU seconds (152 against 300; over the 0.33 allowed)" in \
        render(params, tmp_path)["targets"]
    shutil.rmtree(results / CNN_STUDY)  # every seed in, the baseline not yet
    assert "The target is judged once `fmnist_5` has full-data results." in render(params, tmp_path)["targets"]


def test_the_stage_writes_the_template_with_its_sections_filled_in(aggregated_study_2, tmp_path):
    root, _ = aggregated_study_2
    template = tmp_path / "template.md"
    template.write_text("intro\n<!-- results:multitask -->\nprose\n<!-- results:figures -->\n")
    document = tmp_path / "docs" / "results.md"
    result = run_report(root, document, template, root / "params.yaml")
    assert result.returncode == 0, result.stderr
    text = document.read_text()
    assert text.startswith(f"<!-- Generated by the `report` stage (`dvc repro`) from {template}: edit that file")
    assert "\nintro\n| task" in text and "\nprose\n- `" in text and "- `fashion_cnns`: no plots yet." in text
    assert "<!-- results:" not in text


def test_the_stage_refuses_an_unknown_placeholder_and_writes_nothing(aggregated_study_2, tmp_path):
    root, _ = aggregated_study_2
    template = tmp_path / "template.md"
    template.write_text("<!-- results:cnn -->\n")
    result = run_report(root, tmp_path / "results.md", template, root / "params.yaml")
    assert result.returncode == 1 and "placeholders ['cnn'] must be distinct names among" in result.stderr
    assert not (tmp_path / "results.md").exists() and "Traceback" not in result.stderr


def test_fill_template_replaces_each_placeholder_line_once():
    assert fill_template("a\n<!-- results:time -->\nb", {"time": "T", "figures": "F"}) == "a\nT\nb"
    with pytest.raises(ValueError, match="distinct"):
        fill_template("<!-- results:time -->\n<!-- results:time -->", {"time": "T"})


def test_report_targets_must_name_declared_studies_and_models():
    raw = copy.deepcopy(RAW_PARAMS)
    raw["report"]["targets"] = {"no_study": {"baseline": "no_model", "accuracy": 0.9, "cpu_share": 0.5}}
    with pytest.raises(ValueError) as raised:
        validated(raw)
    assert "report.targets.no_study: no study 'no_study'" in str(raised.value)
    assert "report.targets.no_study.baseline: no model 'no_model'" in str(raised.value)


def test_committed_document_is_what_the_stage_makes_of_the_committed_files(tmp_path):
    """Fails when metrics, plots or the template changed and `dvc repro` (its `report` stage) did not run."""
    for tree in ("metrics", "plots"):  # links are relative to the document: the same layout as the project's
        shutil.copytree(ROOT / tree, tmp_path / tree)
    fresh = tmp_path / "docs" / "results.md"
    result = run_report(tmp_path, fresh, Path("docs/results.template.md"))
    assert result.returncode == 0, result.stderr
    assert fresh.read_text() == DOCUMENT.read_text(), "docs/results.md is stale: run `dvc repro report`"


def test_committed_document_is_short_and_its_links_exist():
    text = DOCUMENT.read_text()
    assert len(text.splitlines()) < MAX_DOCUMENT_LINES
    for target in re.findall(r"\]\(([^)#]+)\)", text):
        if "://" not in target:
            assert (DOCUMENT.parent / target).exists(), f"docs/results.md links {target}, which does not exist"
    assert "seed_variance" not in text


def test_the_document_stays_short_once_every_declared_run_is_in(tmp_path):
    """The committed document still waits for runs; with every study complete (its ranking, figures
    and time-to-accuracy rows shown) it must stay short too."""
    params = validated(RAW_PARAMS)
    for study_name, study in params.studies.items():
        for index, model in enumerate(study.models):
            for seed in study.seeds:
                heads = ({"digits": (0.98, "mnist"), "fashion": (0.87, "fashion")} if model == "multitask"
                         else 0.90 + index / 100 + seed / 10000)
                write_record(tmp_path / "metrics", study_name, record(model, seed, heads,
                                                                     "mnist" if model.startswith("digits") else "fashion"))
    aggregates = [subprocess.Popen([sys.executable, str(ROOT / "stages" / "aggregate.py"), str(tmp_path / "metrics"),
                                    str(tmp_path / "plots"), "--stage", f"aggregate@{study}"],
                                   cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
                  for study in params.studies]
    for process in aggregates:
        _, errors = process.communicate(timeout=300)
        assert process.returncode == 0, errors[-3000:]
    document = tmp_path / "docs" / "results.md"
    document.parent.mkdir()
    result = run_report(tmp_path, document)
    assert result.returncode == 0, result.stderr
    text = document.read_text()
    assert "not shown yet" not in text and "Best model on fashion" in text and "first reaches" in text
    assert len(text.splitlines()) < MAX_DOCUMENT_LINES


def test_time_to_accuracy_is_a_row_per_model_with_ranges_over_its_runs():
    """Three seeds of a model make one row: the range of epochs and CPU seconds, and how many runs
    reached a threshold when not all did; a multitask head keeps its own row."""
    def run(label: str, seed: int, threshold: float, epoch: float | None, cpu: float | None, epochs_run: int = 10):
        return {"model": seeded_label(label, seed), "seed": seed, "threshold": threshold, "epochs_run": epochs_run,
                "epoch": epoch, "elapsed_wall_seconds": cpu and cpu / 2, "elapsed_cpu_seconds": cpu}
    reached = pd.DataFrame([
        run("m", 42, 0.92, 4, 1045.4), run("m", 42, 0.93, None, None),
        run("m", 43, 0.92, 5, 1283.0), run("m", 43, 0.93, 9, 2500.0),
        run("m", 44, 0.92, 4, 1100.0), run("m", 44, 0.93, None, None, epochs_run=12),
        run("multitask (digits)", 42, 0.92, 1, None), run("multitask (digits)", 42, 0.93, None, None, epochs_run=5),
    ])
    rows = table_rows(time_to_accuracy_by_model(reached, [0.92, 0.93], ["m", "multitask", "unlogged"]))
    assert rows == [["`m`", "3", "epochs 4–5, 1,045–1,283 s CPU", "1 of 3 runs: epoch 9, 2,500 s CPU"],
                    ["`multitask (digits)`", "1", "epoch 1 (times not logged)", "not in 5 epochs"],
                    ["`unlogged`", "0", "no training log in the workspace", "no training log in the workspace"]]
    never = pd.DataFrame([run("m", 42, 0.99, None, None, 18), run("m", 43, 0.99, None, None, 22)])
    assert table_rows(time_to_accuracy_by_model(never, [0.99])) == [["`m`", "2", "not in 18–22 epochs"]]
    for label in ("fmnist_5", "multitask (digits)"):  # a one-seed study's labels carry no seed
        assert unseeded_label(seeded_label(label, 43), 43) == unseeded_label(label, 43) == label
