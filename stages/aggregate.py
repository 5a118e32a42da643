"""Stage aggregate: compare the models of one study: table, validation curves, accuracy bars.

Usage: python stages/aggregate.py STUDY STUDY_RESULTS_DIR OUTPUT_DIR [--params params.yaml]
Reads STUDY_RESULTS_DIR/<model>/metrics.json and <model>/live/ for every model directory there
(models in name order); writes OUTPUT_DIR/table.csv, table.md, validation_accuracy.csv,
validation_loss.csv (long format, one row per model and epoch), their PNGs, test_accuracy.png, and
the time-to-accuracy comparison: accuracy_by_time.csv/.png (validation accuracy against seconds of
training) and time_to_accuracy.csv/.md (when each model first reached each of the study's
`accuracy_thresholds`). A model whose training log is missing keeps its table row, without curves.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pandas as pd

from cnn_comparison import atomic
from cnn_comparison.comparison import (accuracy_by_time, best_models, comparison_markdown, comparison_table,
                                       elapsed_history, long_history, time_to_accuracy, time_to_accuracy_markdown,
                                       validation_history, wide_history)
from cnn_comparison.figures import accuracy_bars_figure, accuracy_by_time_figure, curves_figure, save_figure
from cnn_comparison.layout import LIVE_DIRECTORY, METRICS_FILE
from cnn_comparison.params import load_params


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("study")
    parser.add_argument("results_dir", type=Path)
    parser.add_argument("output_dir", type=Path)
    parser.add_argument("--params", default="params.yaml")
    arguments = parser.parse_args(argv)
    studies = load_params(arguments.params).get("studies") or {}
    if arguments.study not in studies:
        print(f"error: {arguments.params}: no study {arguments.study!r} under 'studies'; known: {sorted(studies)}",
              file=sys.stderr)
        return 1
    title = studies[arguments.study]["title"]
    thresholds = studies[arguments.study].get("accuracy_thresholds") or []
    if not all(isinstance(value, (int, float)) and 0 < value <= 1 for value in thresholds):
        print(f"error: {arguments.params}: studies.{arguments.study}.accuracy_thresholds: expected accuracies in "
              f"(0, 1], got {thresholds!r}", file=sys.stderr)
        return 1
    model_dirs = sorted(path for path in arguments.results_dir.iterdir() if path.is_dir()) \
        if arguments.results_dir.is_dir() else []
    unfinished = [str(path / METRICS_FILE) for path in model_dirs if not (path / METRICS_FILE).is_file()]
    if not model_dirs or unfinished:
        print(f"error: {', '.join(unfinished) or f'no model results in {arguments.results_dir}'} missing; run "
              f"`dvc repro` (the train and evaluate stages of study {arguments.study!r}) first", file=sys.stderr)
        return 1
    records = {path: json.loads((path / METRICS_FILE).read_text()) for path in model_dirs}
    table = comparison_table(list(records.values()))
    best = best_models(table)
    output = arguments.output_dir
    atomic.write_text(output / "table.csv", table.to_csv(index=False))
    atomic.write_text(output / "table.md", comparison_markdown(table, best))
    logged = {}
    for path, record in records.items():
        try:
            logged[path] = {metric: validation_history(path / LIVE_DIRECTORY, record, metric) for metric in ("accuracy", "loss")}
        except FileNotFoundError as error:
            # e.g. a clone without the DVC cache: the metrics file is in git, the training log is not.
            print(f"warning: {record['model']}: no curves ({error}); `dvc pull` or rerun its train stage to add them",
                  file=sys.stderr)
    for metric, label in (("accuracy", "Validation accuracy"), ("loss", "Validation loss")):
        series = {}
        for histories in logged.values():
            series.update(histories[metric])
        column = f"validation_{metric}"
        long = long_history(series, column) if series else pd.DataFrame(columns=["epoch", "model", column])
        atomic.write_text(output / f"{column}.csv", long.to_csv(index=False))
        save_figure(curves_figure(wide_history(long, column), f"{title}: {label.lower()} per epoch", label),
                    output / f"{column}.png")
    frames = [accuracy_by_time(histories["accuracy"], elapsed_history(path / LIVE_DIRECTORY))
              for path, histories in logged.items()]
    history = pd.concat(frames, ignore_index=True) if frames else accuracy_by_time({}, None)
    timed = history.dropna(subset=["elapsed_wall_seconds"])
    atomic.write_text(output / "accuracy_by_time.csv", timed.to_csv(index=False))
    save_figure(accuracy_by_time_figure(timed, thresholds, f"{title}: validation accuracy against training time"),
                output / "accuracy_by_time.png")
    reached = time_to_accuracy(history, thresholds)
    atomic.write_text(output / "time_to_accuracy.csv", reached.to_csv(index=False))
    atomic.write_text(output / "time_to_accuracy.md", time_to_accuracy_markdown(
        reached, thresholds, [record["model"] for path, record in records.items() if path not in logged]))
    labels = [row.model if not row.head else f"{row.model} ({row.head})" for row in table.itertuples()]
    save_figure(accuracy_bars_figure(labels, list(table["test_accuracy"]), f"{title}: test accuracy"),
                output / "test_accuracy.png")
    print(comparison_markdown(table, best))
    return 0


if __name__ == "__main__":
    sys.exit(main())
