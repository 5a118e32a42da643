"""The aggregate's comparison over seeds: spread, Welch's t-test, ties, and the stage's checks."""
import copy
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from cnn_comparison.comparison import (DIFFERS, WITHIN_NOISE, at_saved_epoch, best_models, check_runs, holm_adjusted,
                                       mcnemar_p_value,
                                       comparison_markdown, comparison_table, long_history, mean_over_seeds,
                                       pairwise_tests, rankings, spread_table, summary_metrics, welch_p_value,
                                       with_validation_accuracy)
from cnn_comparison.layout import run_directory

PROJECT_ROOT = Path(__file__).resolve().parents[1]

TIME_KEYS = ("training_time_seconds", "training_cpu_seconds", "evaluation_time_seconds")  # in timings.json
FULL = {"max_train_samples": None, "max_epochs": None, "max_eval_samples": None}


def scores(accuracy: float, dataset: str) -> dict:
    return {"accuracy": accuracy, "precision_macro": accuracy, "recall_macro": accuracy, "f1_macro": accuracy - 0.001,
            "loss": 1 - accuracy, "samples": 10000, "dataset": dataset}


def record(model: str, seed: int, accuracy: float | None = None, dataset: str = "fashion", limits: dict = FULL,
           **head_accuracies: tuple[float, str]) -> dict:
    """A metrics.json as the evaluate stage writes it; ``head=(accuracy, dataset)`` for the multitask model."""
    common = {"model": model, "seed": seed, "training_time_seconds": 100.0 + seed, "training_cpu_seconds": 150.0,
              "epochs_run": 3, "epoch_of_saved_weights": 3, "parameter_count": 1234, "evaluation_time_seconds": 1.0,
              "provenance": [{"params": {}, "split": {}, "limits": dict(limits), "library_versions": {}}]}
    if accuracy is not None:  # a single-task model: one head, named after its dataset
        return {**common, "heads": {dataset: scores(accuracy, dataset)}}
    return {**common, "heads": {head: scores(*value) for head, value in head_accuracies.items()}}


def study_table(accuracies: dict[str, list[float]]) -> pd.DataFrame:
    """One single-task fashion model per key, one seed per accuracy."""
    return comparison_table([record(model, 40 + index, value) for model, values in accuracies.items()
                             for index, value in enumerate(values)])


def squeezed(markdown: str) -> str:
    """A markdown table with its padding collapsed to one space, so a test can look for a row."""
    return re.sub(r" {2,}", " ", markdown)


def table_markdown(table: pd.DataFrame) -> str:
    spread = spread_table(table)
    pairs = pairwise_tests(table)
    return squeezed(comparison_markdown(spread, pairs, rankings(spread, pairs)))


def test_the_validation_accuracy_is_the_saved_epoch_s_for_each_head():
    history = {"multitask (digits)": pd.Series([0.5, 0.9, 0.8], index=[1, 2, 3]),
               "multitask (fashion)": pd.Series([0.4, 0.7, 0.6], index=[1, 2, 3])}
    saved = at_saved_epoch(history, {"epochs_run": 3, "epoch_of_saved_weights": 2})
    assert saved == {"multitask (digits)": 0.9, "multitask (fashion)": 0.7}
    assert at_saved_epoch(history, {"epochs_run": 3})["multitask (digits)"] == 0.8  # an older run: its last epoch
    table = comparison_table([record("multitask", 42, digits=(0.97, "mnist"), fashion=(0.87, "fashion")),
                              record("multitask", 43, digits=(0.96, "mnist"), fashion=(0.86, "fashion"))])
    table = with_validation_accuracy(table, {("multitask", 42): saved})
    assert list(table["validation_accuracy"][:2]) == [0.9, 0.7] and table["validation_accuracy"][2:].isna().all()
    summary = summary_metrics(spread_table(table))
    assert summary["multitask (digits)"]["val_accuracy"] == 0.9  # the mean over the seeds that have a log


def test_spread_over_seeds_is_mean_sample_std_min_max_and_n():
    table = study_table({"a": [0.90, 0.92, 0.94], "b": [0.88]})
    assert list(table.columns[:4]) == ["model", "head", "dataset", "seed"] and list(table["seed"]) == [40, 41, 42, 40]
    spread = spread_table(table).set_index("label")
    assert spread.loc["a", "n"] == 3 and spread.loc["a", "test_accuracy_mean"] == pytest.approx(0.92)
    assert spread.loc["a", "test_accuracy_std"] == pytest.approx(0.02)  # sample std (ddof=1), not 0.0163
    assert (spread.loc["a", "test_accuracy_min"], spread.loc["a", "test_accuracy_max"]) == (0.90, 0.94)
    assert spread.loc["a", "training_time_seconds_mean"] == pytest.approx(141.0)
    summary = summary_metrics(spread.reset_index())
    # No cost, calibration or training log in these records: null, not NaN (valid JSON).
    assert summary["a"] == {"accuracy": 0.92, "accuracy_std": 0.02, "seeds": 3, "val_accuracy": None, "ece": None,
                            "mmacs": None, "size_mb": None}
    assert summary["b"]["accuracy"] == 0.88 and summary["b"]["accuracy_std"] is None and summary["b"]["seeds"] == 1
    json.dumps(summary, allow_nan=False)
    markdown = table_markdown(table)
    assert "| a | fashion | 0.9200 ± 0.0200 | 0.9000 | 0.9400 | 3 |" in markdown
    assert "0.8800 (1 seed)" in markdown


def test_welch_separates_clear_differences_from_seed_noise():
    separated = study_table({"strong": [0.930, 0.931, 0.932, 0.931], "weak": [0.910, 0.911, 0.909, 0.910]})
    pair = pairwise_tests(separated).iloc[0]
    assert (pair["better"], pair["worse"], pair["verdict"]) == ("strong", "weak", DIFFERS) and pair["p_value"] < 0.001
    assert pair["mean_difference"] == pytest.approx(0.021)
    overlapping = study_table({"lucky": [0.925, 0.915, 0.930, 0.912], "steady": [0.920, 0.918, 0.921, 0.919]})
    pair = pairwise_tests(overlapping).iloc[0]
    assert pair["better"] == "lucky" and pair["verdict"] == WITHIN_NOISE and pair["p_value"] > 0.5
    assert welch_p_value([0.9, 0.9], [0.8, 0.8]) == 0.0 and welch_p_value([0.9, 0.9], [0.9, 0.9]) == 1.0
    assert np.isnan(welch_p_value([0.9, 0.91], [0.8]))


def test_the_best_is_tied_with_models_within_seed_noise_and_ahead_of_the_rest():
    table = study_table({"lucky": [0.925, 0.915, 0.930, 0.912], "steady": [0.920, 0.918, 0.921, 0.919],
                         "weak": [0.890, 0.891, 0.889, 0.890]})
    markdown = table_markdown(table)
    best_line = next(line for line in markdown.splitlines() if line.startswith("Best model on fashion: **lucky**"))
    assert "tied with steady (within seed noise, Welch Holm-adjusted p = " in best_line and "weak (within" not in best_line
    assert best_line.endswith("; ahead of weak beyond seed noise.")
    assert "| lucky vs weak | +0.0305 | Welch |" in markdown and "| differs |" in markdown
    assert "Holm–Bonferroni over the study's 3 tested pairs" in markdown
    alone = table_markdown(study_table({"strong": [0.930, 0.931, 0.932], "weak": [0.910, 0.911, 0.909]}))
    assert "Best model on fashion: **strong** (mean test accuracy 0.9310 over 3 seeds); ahead of every other model" in alone


def test_one_seed_each_says_the_ranking_is_a_single_draw():
    markdown = table_markdown(study_table({"a": [0.93], "b": [0.91], "c": [0.92]}))
    assert ("Best model on fashion: **a** (test accuracy 0.9300, 1 seed); tied with c, b "
            "(one seed each: the ranking is a single draw).") in markdown
    assert "| a vs b | +0.0200 | – | | | cannot tell (needs ≥ 2 seeds each, or test predictions) |" in markdown
    # A model with one seed next to models with several cannot be tested either; the line says so.
    mixed = table_markdown(study_table({"a": [0.93, 0.931], "b": [0.91], "c": [0.90, 0.901]}))
    assert ("tied with b (cannot tell: needs ≥ 2 seeds each, or test predictions); ahead of c beyond "
            "seed noise.") in mixed


def correctness(total: int, right: int, offset: int = 0) -> np.ndarray:
    """Which of ``total`` test images a run got right: ``right`` of them, starting at ``offset``."""
    correct = np.zeros(total, dtype=bool)
    correct[offset:offset + right] = True
    return correct


def test_mcnemar_counts_only_the_images_one_model_gets_right():
    # 15 images only the first gets right, 5 only the second: binomial(15; 20, 1/2), two-sided.
    first, second = correctness(100, 70), correctness(100, 60, offset=15)
    assert mcnemar_p_value(first, second) == pytest.approx(0.041389, abs=1e-6)
    assert mcnemar_p_value(first, first) == 1.0 and mcnemar_p_value(first, ~first) < 1e-3


def test_holm_multiplies_the_kth_smallest_p_by_the_tests_left_and_keeps_the_order():
    adjusted = holm_adjusted([0.01, 0.04, 0.03, float("nan"), 0.5])
    assert list(adjusted[[0, 1, 2, 4]]) == pytest.approx([0.04, 0.09, 0.09, 0.5]) and np.isnan(adjusted[3])


def test_one_run_each_is_compared_on_the_same_test_images_and_a_clear_gap_is_not_a_tie():
    """The issue's case: a one-hidden-layer MLP (0.8858) beside fmnist_own (0.9292), one seed each,
    10,000 test images: 4.3 points is far outside test-set noise."""
    table = study_table({"fmnist_own": [0.9292], "mlp": [0.8858]})
    correct = {("fmnist_own", 40): correctness(10000, 9292), ("mlp", 40): correctness(10000, 8858, offset=300)}
    pairs = pairwise_tests(table, correct)
    pair = pairs.iloc[0]
    assert (pair["better"], pair["test"], pair["verdict"]) == ("fmnist_own", "McNemar", DIFFERS)
    assert pair["p_value"] < 1e-10
    spread = spread_table(table)
    markdown = squeezed(comparison_markdown(spread, pairs, rankings(spread, pairs)))
    assert ("Best model on fashion: **fmnist_own** (test accuracy 0.9292, 1 seed); ahead of every other model on "
            "fashion beyond test-set noise (McNemar on one run each: training noise not measured).") in markdown
    assert "| fmnist_own vs mlp | +0.0434 | McNemar | < 0.0001 | < 0.0001 | differs |" in markdown


def test_holm_turns_a_lone_small_p_among_several_pairs_into_within_noise():
    # a vs b alone: p = 0.041 differs; with a third model the family has 3 pairs and it no longer does.
    correct = {("a", 40): correctness(100, 70), ("b", 40): correctness(100, 60, offset=15)}
    alone = pairwise_tests(study_table({"a": [0.70], "b": [0.60]}), correct)
    assert list(alone["verdict"]) == [DIFFERS]
    correct[("c", 40)] = correctness(100, 69, offset=1)  # one image fewer than a: a vs c has p = 1
    three = pairwise_tests(study_table({"a": [0.70], "b": [0.60], "c": [0.69]}), correct)
    pair = three[(three["better"] == "a") & (three["worse"] == "b")].iloc[0]
    assert pair["p_value"] == pytest.approx(0.041389, abs=1e-6) and pair["adjusted_p_value"] > 0.05
    assert pair["verdict"] == WITHIN_NOISE


def test_multitask_heads_are_ranked_per_dataset():
    records = [record("digits_dedicated", seed, 0.990 + seed / 10000, "mnist") for seed in (1, 2, 3)]
    records += [record("multitask", seed, digits=(0.980 + seed / 10000, "mnist"), fashion=(0.90, "fashion"))
                for seed in (1, 2, 3)]
    table = comparison_table(records)
    assert list(table["head"]) == ["", "", "", "digits", "fashion", "digits", "fashion", "digits", "fashion"]
    assert best_models(table) == {"mnist": "digits_dedicated", "fashion": "multitask"}
    spread = spread_table(table)
    assert list(spread["label"]) == ["digits_dedicated", "multitask (digits)", "multitask (fashion)"]
    assert set(summary_metrics(spread)) == {"digits_dedicated", "multitask (digits)", "multitask (fashion)"}
    pairs = pairwise_tests(table)
    assert list(zip(pairs["better"], pairs["worse"], pairs["verdict"])) == [
        ("digits_dedicated", "multitask (digits)", DIFFERS)]
    markdown = table_markdown(table)
    assert "Best model on fashion: **multitask** (mean test accuracy 0.9000 over 3 seeds); the only model" in markdown


def test_mixed_limits_are_refused_naming_both_groups():
    records = {("a", 1): record("a", 1, 0.9), ("b", 1): record("b", 1, 0.5, limits={**FULL, "max_epochs": 1})}
    with pytest.raises(ValueError, match="different `limits`") as raised:
        check_runs(records)
    assert "limits none: a seed 1" in str(raised.value) and '{"max_epochs": 1}: b seed 1' in str(raised.value)
    check_runs({("a", 1): record("a", 1, 0.9), ("b", 1): record("b", 1, 0.9, limits={})})  # {} = all null
    with pytest.raises(ValueError, match="records model 'a' seed 2"):
        check_runs({("a", 1): record("a", 2, 0.9)})


def test_runs_scored_on_different_test_sample_counts_are_refused():
    fewer = record("b", 1, 0.9)
    fewer["heads"]["fashion"]["samples"] = 500
    with pytest.raises(ValueError, match="different numbers of fashion test images") as raised:
        check_runs({("a", 1): record("a", 1, 0.9), ("b", 1): fewer})
    assert "500 images: b seed 1" in str(raised.value)


def test_mean_curves_average_the_seeds_that_reached_each_epoch():
    long = pd.concat([long_history({"a": pd.Series([0.5, 0.7, 0.8], index=[1, 2, 3])}, "validation_accuracy", 1),
                      long_history({"a": pd.Series([0.6, 0.9], index=[1, 2])}, "validation_accuracy", 2),
                      long_history({"b": pd.Series([0.4], index=[1])}, "validation_accuracy", 1)], ignore_index=True)
    mean = mean_over_seeds(long, "validation_accuracy")
    assert list(mean.columns) == ["epoch", "model", "validation_accuracy"]
    assert list(zip(mean["model"], mean["epoch"])) == [("a", 1), ("a", 2), ("a", 3), ("b", 1)]
    assert list(mean["validation_accuracy"]) == pytest.approx([0.55, 0.8, 0.8, 0.4])


# --- the stage: reads exactly the declared runs of a study ---------------------------------------

def write_live(live_dir, **series):
    """DVCLive's layout: live/plots/metrics/<name>.tsv with step and value columns."""
    for name, values in series.items():
        path = live_dir / "plots" / "metrics" / f"{name}.tsv"
        path.parent.mkdir(parents=True, exist_ok=True)
        pd.DataFrame({"step": range(len(values)), name.split("/")[-1]: values}).to_csv(path, sep="\t", index=False)


def write_run(results, model_entry: dict, model: str, seed: int, accuracy: float, with_log: bool = True, **options):
    """One run's metrics.json (and a 3-epoch DVCLive log) as the train and evaluate stages leave them."""
    directory = run_directory(results, model, seed)
    tasks = model_entry.get("tasks")
    if tasks:
        metrics = record(model, seed, **options, **{task: (accuracy, entry["dataset"]) for task, entry in tasks.items()})
        names = [f"{task}_" for task in tasks]
    else:
        metrics = record(model, seed, accuracy, model_entry["dataset"], **options)
        names = [""]
    directory.mkdir(parents=True, exist_ok=True)
    timings = {key: metrics.pop(key) for key in TIME_KEYS}
    (directory / "metrics.json").write_text(json.dumps(metrics))
    (directory / "timings.json").write_text(json.dumps({**timings, "elapsed_wall_seconds": [10, 20, 30],
                                                        "elapsed_cpu_seconds": [15, 30, 45]}))
    if with_log:
        curves = {f"eval/{name}{metric}": [value, value + 0.01, value + 0.02]
                  for name in names
                  for metric, value in (("accuracy", accuracy - 0.02), ("loss", 0.15), ("cross_entropy", 0.3))}
        write_live(directory / "live", **curves)


@pytest.fixture()
def study_tree(tmp_path, params):
    """params.yaml (the project's, with three seeds for dedicated_vs_multitask) and every declared run."""
    params = copy.deepcopy(params)
    study = params["studies"]["dedicated_vs_multitask"]
    study["seeds"] = [1, 2, 3]
    study["accuracy_thresholds"] = [0.5]
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    results = tmp_path / "metrics" / "dedicated_vs_multitask"
    for index, model in enumerate(study["models"]):
        for seed in study["seeds"]:
            write_run(results, params["models"][model], model, seed, 0.85 + index / 100 + seed / 1000,
                      with_log=(model, seed) != (study["models"][0], 2))
    return tmp_path, params


def run_stage(tmp_path, study="dedicated_vs_multitask") -> subprocess.CompletedProcess:
    """The stage as `dvc repro` runs it: a subprocess (tests import no stage script)."""
    return subprocess.run([sys.executable, str(PROJECT_ROOT / "stages" / "aggregate.py"), str(tmp_path / "metrics"),
                           str(tmp_path / "plots"), "--stage", f"aggregate@{study}", "--params", str(tmp_path / "params.yaml")],
                          capture_output=True, text=True, cwd=PROJECT_ROOT, timeout=300)


def test_the_stage_writes_every_output(study_tree):
    tmp_path, params = study_tree
    models = params["studies"]["dedicated_vs_multitask"]["models"]
    result = run_stage(tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    out = tmp_path / "plots" / "dedicated_vs_multitask"
    expected = {"table.csv", "summary.json", "table.md", "validation_accuracy.csv", "validation_accuracy.png",
                "validation_loss.csv", "validation_loss.png", "accuracy_by_time.csv", "accuracy_by_time.png",
                "time_to_accuracy.csv", "time_to_accuracy.md", "test_accuracy.png"}
    assert {path.name for path in out.iterdir()} == expected
    for png in (name for name in expected if name.endswith(".png")):
        assert (out / png).read_bytes()[:4] == b"\x89PNG", png
    table = pd.read_csv(out / "table.csv", keep_default_na=False)
    assert sorted(set(table["seed"])) == [1, 2, 3] and set(table["model"]) == set(models)
    summary = json.loads((out / "summary.json").read_text())
    assert all(entry["seeds"] == 3 for entry in summary.values())
    # Validation accuracy of the saved weights, from each run's log: the run without one has none.
    logged = table[(table["model"] == models[0]) & (table["seed"] != 2)]
    assert (logged["validation_accuracy"] != "").all() and set(table[table["seed"] == 2]["model"]) == set(models)
    assert (table[(table["model"] == models[0]) & (table["seed"] == 2)]["validation_accuracy"] == "").all()
    assert "Best model on " in (out / "table.md").read_text()
    curves = pd.read_csv(out / "validation_accuracy.csv")
    assert list(curves.columns) == ["epoch", "model", "validation_accuracy"] and set(curves["epoch"]) == {1, 2, 3}
    # The run without a log keeps its table rows, is named in a warning and in the time table.
    missing_log = f"{models[0]} (seed 2)"
    assert f"warning: {missing_log}: no curves" in result.stderr
    assert f"| {missing_log} | no training log in the workspace |" in squeezed((out / "time_to_accuracy.md").read_text())
    timed = pd.read_csv(out / "accuracy_by_time.csv")
    assert f"{models[0]} (seed 1)" in set(timed["model"]) and missing_log not in set(timed["model"])
    assert list(timed.columns[:3]) == ["epoch", "model", "seed"]


def test_with_one_seed_the_stage_compares_runs_on_their_test_predictions(study_tree):
    """Each run's confusion/<head>.csv (one row per test image, in order) is what McNemar's test pairs."""
    tmp_path, params = study_tree
    params["studies"]["dedicated_vs_multitask"]["seeds"] = [1]
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    results = tmp_path / "metrics" / "dedicated_vs_multitask"
    classes = [str(index % 10) for index in range(1000)]
    for index, model in enumerate(params["studies"]["dedicated_vs_multitask"]["models"]):
        directory = run_directory(results, model, 1) / "confusion"
        directory.mkdir(parents=True)
        for head, dataset in (("digits", "mnist"), ("fashion", "fashion")) if model == "multitask" else (
                (params["models"][model]["dataset"], params["models"][model]["dataset"]),):
            correct = 851 + 10 * index  # the accuracy study_tree gives seed 1, on 1,000 images
            predicted = classes[:correct] + [str((int(label) + 1) % 10) for label in classes[correct:]]
            pd.DataFrame({"actual": classes, "predicted": predicted}).to_csv(directory / f"{head}.csv", index=False)
    result = run_stage(tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    markdown = squeezed((tmp_path / "plots" / "dedicated_vs_multitask" / "table.md").read_text())
    # 20 images only the multitask model gets right, none the other way: p = 2 / 2^20.
    assert ("| multitask (digits) vs digits_dedicated | +0.0200 | McNemar | < 0.0001 | < 0.0001 | differs |"
            in markdown), markdown
    assert "training noise not measured" in markdown


def test_a_missing_declared_run_is_named(study_tree):
    tmp_path, params = study_tree
    model = params["studies"]["dedicated_vs_multitask"]["models"][1]
    (run_directory(tmp_path / "metrics" / "dedicated_vs_multitask", model, 3) / "metrics.json").unlink()
    result = run_stage(tmp_path)
    assert result.returncode == 1, result.stderr[-2000:]
    error = result.stderr
    assert f"{model}/seed_3/metrics.json" in error and "dvc repro" in error
    assert not (tmp_path / "plots" / "dedicated_vs_multitask").exists()


def test_undeclared_models_and_seeds_are_ignored(study_tree):
    tmp_path, params = study_tree
    model = params["studies"]["dedicated_vs_multitask"]["models"][0]
    entry = params["models"][model]
    write_run(tmp_path / "metrics" / "dedicated_vs_multitask", entry, model, 99, 0.999)  # a seed removed from params.yaml
    write_run(tmp_path / "metrics" / "dedicated_vs_multitask", entry, "retired_model", 1, 0.999)  # a model removed from the study
    result = run_stage(tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    table = pd.read_csv(tmp_path / "plots" / "dedicated_vs_multitask" / "table.csv")
    assert 99 not in set(table["seed"]) and "retired_model" not in set(table["model"])
    assert "retired_model" not in (tmp_path / "plots" / "dedicated_vs_multitask" / "table.md").read_text()


def test_the_stage_refuses_runs_with_different_limits(study_tree):
    tmp_path, params = study_tree
    model = params["studies"]["dedicated_vs_multitask"]["models"][1]
    write_run(tmp_path / "metrics" / "dedicated_vs_multitask", params["models"][model], model, 2, 0.5, limits={**FULL, "max_epochs": 1})
    result = run_stage(tmp_path)
    assert result.returncode == 1, result.stderr[-2000:]
    error = result.stderr
    assert "different `limits`" in error and f"{model} seed 2" in error and f"{model} seed 1" in error


def test_bad_study_settings_fail_before_reading_results(study_tree):
    tmp_path, params = study_tree
    result = run_stage(tmp_path, "no_such_study")
    assert result.returncode == 1, result.stderr[-2000:]
    assert "no study 'no_such_study' under 'studies'" in result.stderr
    params["studies"]["dedicated_vs_multitask"]["seeds"] = [1, 1]
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    result = run_stage(tmp_path)
    assert result.returncode == 1, result.stderr[-2000:]
    assert "params.yaml: studies.dedicated_vs_multitask.seeds: " in result.stderr
