"""docs/results.md's tables and figures, written from results/ and the reference texts.

Keeping the tables generated (``python -m devtools.results_doc``) means the document cannot drift
from the committed metrics by hand-copying; tests/test_results_doc.py checks they agree.
A model whose metrics file is missing or came from a run with `limits` is shown as not yet
trained on full data rather than with numbers that are not the full reproduction.
"""
from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
from pathlib import Path
from typing import Mapping, Sequence

from cnn_comparison import atomic
from cnn_comparison.comparison import best_model, comparison_table
from cnn_comparison.layout import METRICS_FILE
from cnn_comparison.params import MULTITASK, load_params, model_spec

CNN_STUDY = "fashion_cnns"  # the study the reference report's table compares

# Epochs the reference run actually took (early stopping), from reference/cnn_comparison_report.md.
REFERENCE_EPOCHS_RUN = {"fmnist_1": 10, "fmnist_2": 10, "fmnist_3": 24, "fmnist_4": 19, "fmnist_5": 50, "fmnist_6": 36}
REFERENCE_COLUMNS = ("accuracy", "precision_macro", "recall_macro", "f1_macro", "loss", "training_time_seconds")
NOT_TRAINED = "not yet trained on full data"
CNN_HEADER = ("model", "run", "accuracy", "gap (pp)", "precision", "recall", "F1", "test loss", "epochs",
              "training time (s)", "CPU time (s)")
MULTITASK_HEADER = ("task", "model", "accuracy", "reference", "gap (pp)", "macro F1", "training time (s)")


def parse_reference_cnn_table(report_text: str) -> dict[str, dict[str, str]]:
    """The report's results table (tab-separated rows ``fmnist_N<TAB>accuracy<TAB>...``), values as printed."""
    table = {}
    for line in report_text.splitlines():
        cells = line.strip().split("\t")
        if len(cells) == 1 + len(REFERENCE_COLUMNS) and re.fullmatch(r"fmnist_\d+", cells[0]):
            table[cells[0]] = dict(zip(REFERENCE_COLUMNS, cells[1:]))
    if not table:
        raise ValueError("no 'fmnist_N<TAB>accuracy<TAB>...' rows found in the reference report")
    return table


def parse_reference_accuracies(output_text: str) -> dict[str, str]:
    """``{report title: accuracy as printed}`` from the reference's classification reports."""
    accuracies, title = {}, None
    for line in output_text.splitlines():
        if line.strip().endswith("Performance:"):
            title = line.strip()[:-1]
        match = re.match(r"\s+accuracy\s+([0-9.]+)\s+\d+\s*$", line)
        if match and title:
            accuracies[title] = match.group(1)
            title = None
    return accuracies


def is_full_data(metrics: Mapping | None) -> bool:
    """True when there is a metrics file and its run had no `limits`: every sample, every epoch."""
    if metrics is None:
        return False
    limits = metrics["provenance"][0]["limits"]
    return all(value is None for value in limits.values())


def percentage_points(value: float, reference: str) -> str:
    return f"{100 * (value - float(reference)):+.2f}"


def _markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" if index < 2 else "---:" for index in range(len(header))) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def cnn_results_markdown(model_names: Sequence[str], metrics_by_model: Mapping[str, Mapping | None],
                         reference: Mapping[str, Mapping[str, str]]) -> str:
    """Two rows per reference model (measured here, then the report's values as printed), one per own model."""
    rows = []
    for name in model_names:
        metrics = metrics_by_model.get(name)
        expected = reference.get(name)
        if not is_full_data(metrics):
            rows.append([f"`{name}`", "here", NOT_TRAINED] + [""] * (len(CNN_HEADER) - 3))
        else:
            rows.append([
                f"`{name}`", "here", f"{metrics['accuracy']:.4f}",
                percentage_points(metrics["accuracy"], expected["accuracy"]) if expected else "",
                f"{metrics['precision_macro']:.4f}", f"{metrics['recall_macro']:.4f}", f"{metrics['f1_macro']:.4f}",
                f"{metrics['loss']:.4f}", str(metrics["epochs_run"]), f"{metrics['training_time_seconds']:.0f}",
                f"{metrics['training_cpu_seconds']:.0f}",
            ])
        if expected:
            rows.append(["", "reference", expected["accuracy"], "", expected["precision_macro"],
                         expected["recall_macro"], expected["f1_macro"], expected["loss"],
                         str(REFERENCE_EPOCHS_RUN.get(name, "")), expected["training_time_seconds"], ""])
    return _markdown_table(CNN_HEADER, rows)


def multitask_results_markdown(params: Mapping, metrics_by_model: Mapping[str, Mapping | None],
                               reference_accuracies: Mapping[str, str]) -> str:
    """Per task: the dedicated model, then the multitask head, each next to the reference's accuracy."""
    multitask = params["multitask"]
    rows = []
    for task, config in multitask["tasks"].items():
        dedicated_name = config["dedicated_model"]
        candidates = (
            (f"`{dedicated_name}`", metrics_by_model.get(dedicated_name), None,
             params["models"][dedicated_name]["report_title"]),
            ("`multitask`", metrics_by_model.get("multitask"), task, config["report_title"]),
        )
        for label, metrics, head, title in candidates:
            expected = reference_accuracies[title]
            if not is_full_data(metrics):
                rows.append([task, label, NOT_TRAINED, expected, "", "", ""])
                continue
            scores = metrics[head] if head else metrics
            rows.append([task, label, f"{scores['accuracy']:.4f}", expected,
                         percentage_points(scores["accuracy"], expected), f"{scores['f1_macro']:.4f}",
                         f"{metrics['training_time_seconds']:.0f}"])
    return _markdown_table(MULTITASK_HEADER, rows)


def best_full_data_model(model_names: Sequence[str], metrics_by_model: Mapping[str, Mapping | None]) -> str | None:
    """The comparison's best model (comparison.best_model) among those trained on full data."""
    trained = [metrics_by_model[name] for name in model_names if is_full_data(metrics_by_model.get(name))]
    return best_model(comparison_table(trained)) if trained else None


def figures_markdown(best: str | None, curves_available: bool) -> str:
    """The key figures: validation curves of the study (once all are trained) and the best model's confusion.

    Paths are relative to docs/, where the document lives.
    """
    lines = []
    if curves_available:
        lines.append(f"![Validation accuracy per epoch, every model](../comparisons/{CNN_STUDY}/validation_accuracy.png)")
    else:
        lines.append(f"Validation curves of all models (`comparisons/{CNN_STUDY}/validation_accuracy.png`) appear once "
                     f"every model is trained on full data, its training log is in the workspace, and "
                     f"`aggregate@{CNN_STUDY}` has run.")
    if best:
        so_far = "" if curves_available else " so far"
        lines += ["", f"Test confusion matrix of the best model{so_far}, `{best}`:", "",
                  f"![Test confusion matrix of {best}](../results/{CNN_STUDY}/{best}/confusion.png)"]
    return "\n".join(lines)


FAST_MODEL = "fmnist_fast"  # issue #12's model, reported over several seeds
SEED_HEADER = ("seed", "run", "accuracy", "macro F1", "training time (s)", "CPU time (s)")


def same_entry(seed_variance: Mapping | None, model_entry: Mapping) -> bool:
    """Whether extra seeds were trained with the model's current params entry (recorded since
    issue #12's second recipe; a file without the record cannot be matched)."""
    return seed_variance is not None and seed_variance.get("model_entry") == model_entry


def seed_runs(pipeline_metrics: Mapping | None, seed_variance: Mapping | None, model_entry: Mapping) -> list[dict]:
    """The model's full-data pipeline run plus the extra seeds of benchmarks/seed_variance.py --model,
    the latter only if they trained the same params entry: seeds of another recipe do not average."""
    runs = []
    if is_full_data(pipeline_metrics):
        runs.append({"seed": pipeline_metrics["seed"], "run": "`dvc repro`", **{key: pipeline_metrics[key] for key in (
            "accuracy", "f1_macro", "training_time_seconds", "training_cpu_seconds")}})
    if not same_entry(seed_variance, model_entry):
        return runs
    for seed, run in seed_variance.get("runs", {}).items():
        if not any(str(existing["seed"]) == str(seed) for existing in runs):
            runs.append({"seed": int(seed), "run": "`benchmarks/seed_variance.py`", **run})
    return runs


def seeds_markdown(model: str, runs: Sequence[Mapping]) -> str:
    """One row per seed, then mean ± sample standard deviation (once there are two seeds)."""
    if not runs:
        return f"`{model}` is {NOT_TRAINED}."
    rows = [[str(run["seed"]), run["run"], f"{run['accuracy']:.4f}", f"{run['f1_macro']:.4f}",
             f"{run['training_time_seconds']:.0f}", f"{run['training_cpu_seconds']:.0f}"] for run in runs]
    if len(runs) > 1:
        def spread(key: str, digits: int) -> str:
            values = [run[key] for run in runs]
            return f"{statistics.mean(values):.{digits}f} ± {statistics.stdev(values):.{digits}f}"
        rows.append([f"mean ± std ({len(runs)} seeds)", "", spread("accuracy", 4), spread("f1_macro", 4),
                     spread("training_time_seconds", 0), spread("training_cpu_seconds", 0)])
    return _markdown_table(SEED_HEADER, rows)


def replace_section(text: str, name: str, content: str) -> str:
    """Swap what lies between ``<!-- results:NAME:start -->`` and ``<!-- results:NAME:end -->``."""
    start, end = f"<!-- results:{name}:start -->", f"<!-- results:{name}:end -->"
    if text.count(start) != 1 or text.count(end) != 1 or text.index(start) > text.index(end):
        raise ValueError(f"expected one '{start}' ... '{end}' pair in the document")
    before, rest = text.split(start)
    _, after = rest.split(end)
    return f"{before}{start}\n{content}\n{end}{after}"


def model_study(params: Mapping, name: str) -> str:
    return model_spec(params, name).study


def read_metrics(results_dir: Path, params: Mapping, names: Sequence[str]) -> dict[str, dict | None]:
    """Each model's metrics file (results/<study>/<model>/metrics.json), or None if it has none yet."""
    paths = {name: results_dir / model_study(params, name) / name / METRICS_FILE for name in names}
    return {name: json.loads(path.read_text()) if path.is_file() else None for name, path in paths.items()}


def study_models(params: Mapping, study: str) -> list[str]:
    """The single-task models of one study, in params.yaml order."""
    return [name for name, entry in params["models"].items() if entry["study"] == study]


def curve_models(curves: Path) -> set[str]:
    """Models with a row in a long-format curves file (epoch,model,value)."""
    return {line.split(",")[1] for line in curves.read_text().splitlines()[1:] if line}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Rewrite the tables and figures of docs/results.md from results/.")
    parser.add_argument("--document", type=Path, default=Path("docs/results.md"))
    parser.add_argument("--results", type=Path, default=Path("results"))
    parser.add_argument("--comparisons", type=Path, default=Path("comparisons"))
    parser.add_argument("--benchmarks", type=Path, default=Path("benchmarks/results"))
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--reference-report", type=Path, default=Path("reference/cnn_comparison_report.md"))
    parser.add_argument("--reference-output", type=Path, default=Path("reference/multitask_reference_output.txt"))
    arguments = parser.parse_args(argv)
    params = load_params(arguments.params)
    metrics = read_metrics(arguments.results, params, [*params["models"], MULTITASK])
    text = arguments.document.read_text()
    models = study_models(params, CNN_STUDY)
    trained = [name for name in models if is_full_data(metrics[name])]
    curves = arguments.comparisons / CNN_STUDY / "validation_accuracy.csv"
    # The curves come from training logs, which a clone without the DVC cache lacks for some models.
    curves_available = (len(trained) == len(models) and curves.is_file()
                        and set(models) <= curve_models(curves))
    text = replace_section(text, "figures", figures_markdown(best_full_data_model(models, metrics), curves_available))
    text = replace_section(text, "cnn", cnn_results_markdown(
        models, metrics, parse_reference_cnn_table(arguments.reference_report.read_text())))
    seed_file = arguments.benchmarks / f"seed_variance_{FAST_MODEL}.json"
    seed_variance = json.loads(seed_file.read_text()) if seed_file.is_file() else None
    seeds = seeds_markdown(FAST_MODEL, seed_runs(metrics.get(FAST_MODEL), seed_variance, params["models"][FAST_MODEL]))
    if seed_variance is not None and not same_entry(seed_variance, params["models"][FAST_MODEL]):
        seeds += (f"\n\nThe extra seeds in `{seed_file.as_posix()}` trained another `models.{FAST_MODEL}` entry and are "
                  f"left out; rerun `python benchmarks/seed_variance.py --model {FAST_MODEL} --seeds 43 44`.")
    text = replace_section(text, "seeds", seeds)
    time_table = arguments.comparisons / CNN_STUDY / "time_to_accuracy.md"
    text = replace_section(text, "time", time_table.read_text().strip() if time_table.is_file()
                           else f"`aggregate@{CNN_STUDY}` has not run yet.")
    text = replace_section(text, "multitask", multitask_results_markdown(
        params, metrics, parse_reference_accuracies(arguments.reference_output.read_text())))
    atomic.write_text(arguments.document, text)
    print(f"updated {arguments.document}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
