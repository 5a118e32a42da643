"""Stage aggregate: compare the models of one study over its seeds: spread, significance, curves.

Usage: python stages/aggregate.py METRICS_ROOT PLOTS_ROOT [--stage aggregate@<study>] [--params params.yaml]

The study comes from DVC (DVC_STAGE) or --stage. Reads exactly the runs params.yaml declares: for
each model in `studies.<study>.models` and each seed in `studies.<study>.seeds`,
METRICS_ROOT/<study>/<model>/seed_<seed>/metrics.json, timings.json and live/ (the training log
that evaluate copies there; the models are not needed); directories of models or seeds no longer
declared are ignored. Fails, naming the files, when a declared run is missing, and refuses runs
made with different `limits`. Writes PLOTS_ROOT/<study>/, built aside and put in place in one step:
  table.csv          one row per model, head and seed (test scores, validation accuracy of the
                     saved weights, times, parameters, epochs, costs)
  summary.json       the study's DVC metric, per model (and head): mean and std of test accuracy
                     over seeds, n, validation accuracy, calibration error, MMACs and MB
                     (comparison.SUMMARY_KEYS; `dvc metrics diff` and `dvc exp show` compare them)
  table.md           accuracy as mean ± std per model, a test per pair of models on a dataset
                     (Welch's over seeds; McNemar's on the same test images, from each run's
                     confusion/<head>.csv, where a model has one seed), Holm-adjusted over the
                     study's pairs, and `Best model on <dataset>: **<model>**` with its ties
  validation_accuracy.csv/.png, validation_loss.csv/.png
                     per model and epoch, mean over the seeds that reached that epoch
  accuracy_by_time.csv/.png, time_to_accuracy.csv/.md
                     per run (`model (seed N)` when the study has several seeds): validation
                     accuracy against seconds of training, and when each of the study's
                     `accuracy_thresholds` was first reached
  test_accuracy.png  mean test accuracy per model, error bars from min to max over seeds
A run whose training log is missing keeps its table rows, without curves, and gets a warning.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

from cnn_comparison import atomic
from cnn_comparison.comparison import (accuracy_by_time, at_saved_epoch, check_runs, comparable_correctness, comparison_markdown, comparison_table,
                                       curve_datasets, elapsed_history, long_history, mean_over_seeds,
                                       pairwise_tests, rankings, seeded_label, spread_table, summary_metrics,
                                       time_to_accuracy, time_to_accuracy_markdown, validation_history,
                                       read_test_predictions, wide_history, with_validation_accuracy)
from cnn_comparison.console import run_stage
from cnn_comparison.figures import accuracy_bars_figure, accuracy_by_time_figure, curves_figure, save_figure
from cnn_comparison.layout import LIVE_DIRECTORY, METRICS_FILE, current_stage, read_run, run_directory
from cnn_comparison.params import load_params, validated


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("metrics_root", type=Path)
    parser.add_argument("plots_root", type=Path)
    parser.add_argument("--stage", help="aggregate@<study> (default: DVC_STAGE, set by dvc repro)")
    parser.add_argument("--params", default="params.yaml")
    arguments = parser.parse_args(argv)
    try:
        studies = validated(load_params(arguments.params)).studies
        study_name = current_stage(arguments.stage, "aggregate").group
        if study_name not in studies:
            raise ValueError(f"no study {study_name!r} under 'studies'; known: {sorted(studies)}")
    except (FileNotFoundError, ValueError) as error:
        print(f"error: {arguments.params}: {error}", file=sys.stderr)
        return 1
    study = studies[study_name]
    with atomic.staged_path(arguments.plots_root / study_name, directory=True) as output:
        return aggregate(study_name, study, arguments.metrics_root / study_name, output)


def aggregate(study_name: str, study, results_dir: Path, output: Path) -> int:
    """Write the study's comparison into ``output``; raises SystemExit (nothing kept) on a missing run."""
    several_seeds = len(study.seeds) > 1

    run_dirs = {(model, seed): run_directory(results_dir, model, seed)
                for model in study.models for seed in study.seeds}
    missing = [str(path / METRICS_FILE) for path in run_dirs.values() if not (path / METRICS_FILE).is_file()]
    if missing:
        print(f"error: {len(missing)} declared run(s) of study {study_name!r} have no results: "
              f"{', '.join(missing)}; run `dvc repro` (their train and evaluate stages) first", file=sys.stderr)
        raise SystemExit(1)
    records = {run: read_run(path) for run, path in run_dirs.items()}
    try:
        check_runs(records)
    except ValueError as error:
        print(f"error: study {study_name!r}: {error}", file=sys.stderr)
        raise SystemExit(1) from None

    curves: dict[str, list[pd.DataFrame]] = {"accuracy": [], "loss": []}
    timed_runs, without_logs, saved = [], [], {}
    for (model, seed), record in records.items():
        live_dir = run_dirs[model, seed] / LIVE_DIRECTORY
        run_label = seeded_label(model, seed) if several_seeds else model
        try:
            # The loss curve is the logged cross-entropy: per example of each head's own task (training.py).
            histories = {metric: validation_history(live_dir, record, "cross_entropy" if metric == "loss" else metric)
                         for metric in curves}
        except FileNotFoundError as error:
            # e.g. results evaluated by code older than the copy of the training log into them.
            print(f"warning: {run_label}: no curves ({error}); rerun its evaluate stage to add them",
                  file=sys.stderr)
            without_logs.append(run_label)
            continue
        for metric, series in histories.items():
            curves[metric].append(long_history(series, f"validation_{metric}", seed))
        timed_runs.append(accuracy_by_time(histories["accuracy"], elapsed_history(record), seed, several_seeds))
        saved[model, seed] = at_saved_epoch(histories["accuracy"], record)

    table = comparison_table([{**record, "seed": seed} for (_, seed), record in records.items()])
    table = with_validation_accuracy(table, saved)
    spread = spread_table(table)
    # One run per model leaves no spread to test: McNemar's test on the same test images instead.
    predictions = {(label, seed): frame for (model, seed), record in records.items()
                   for label, frame in read_test_predictions(run_dirs[model, seed], record).items()}
    pairs = pairwise_tests(table, comparable_correctness(predictions, curve_datasets(records)))
    markdown = comparison_markdown(spread, pairs, rankings(spread, pairs))
    atomic.write_text(output / "table.csv", table.to_csv(index=False))
    atomic.write_json(output / "summary.json", summary_metrics(spread))
    atomic.write_text(output / "table.md", markdown)

    over_seeds = f", mean over {len(study.seeds)} seeds" if several_seeds else ""
    panel_of = curve_datasets(records)  # one panel per dataset: digits and fashion accuracies differ by 10 points
    for metric, label in (("accuracy", "Validation accuracy"), ("loss", "Validation loss (cross-entropy)")):
        column = f"validation_{metric}"
        runs = pd.concat(curves[metric], ignore_index=True) if curves[metric] else pd.DataFrame(
            columns=["epoch", "model", "seed", column])
        mean = mean_over_seeds(runs, column)
        atomic.write_text(output / f"{column}.csv", mean.to_csv(index=False))
        save_figure(curves_figure(wide_history(mean, column), f"{study.title}: {label.lower()} per epoch{over_seeds}",
                                  label, panel_of=panel_of), output / f"{column}.png")

    history = pd.concat(timed_runs, ignore_index=True) if timed_runs else accuracy_by_time({}, None)
    timed = history.dropna(subset=["elapsed_wall_seconds"])
    thresholds = list(study.accuracy_thresholds)
    atomic.write_text(output / "accuracy_by_time.csv", timed.to_csv(index=False))
    save_figure(accuracy_by_time_figure(timed, thresholds, f"{study.title}: validation accuracy against training time",
                                        panel_of),
                output / "accuracy_by_time.png")
    reached = time_to_accuracy(history, thresholds)
    atomic.write_text(output / "time_to_accuracy.csv", reached.to_csv(index=False))
    atomic.write_text(output / "time_to_accuracy.md", time_to_accuracy_markdown(reached, thresholds, without_logs))
    save_figure(accuracy_bars_figure(list(spread["label"]), list(spread["test_accuracy_mean"]),
                                     f"{study.title}: test accuracy{over_seeds}",
                                     list(spread["test_accuracy_min"]), list(spread["test_accuracy_max"])),
                output / "test_accuracy.png")
    print(markdown)
    return 0


if __name__ == "__main__":
    run_stage(main)
