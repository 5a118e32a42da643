"""docs/results.md: every study's numbers beside the reference's, written by the `report` stage.

The stage fills docs/results.template.md (hand-written prose) with the sections made here from the
declared runs, the aggregates and the reference texts, so `dvc repro` keeps every number true and
nothing is copied by hand. What counts: exactly the runs params.yaml declares (``studies.<study>.models``
x ``seeds``), read from ``metrics/<study>/<model>/seed_<seed>/metrics.json`` (and the training log
that evaluate copies to ``live/`` beside it), and only those made on full data (no `limits`); a model
without such runs reads "not yet retrained by the current code". An aggregate's outputs
(``plots/<study>/``) are used only when its table.csv holds exactly those runs.
"""
from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from cnn_comparison.comparison import (COST_COLUMNS, COST_HEADERS, DIFFERS, TABLE_COLUMNS, WITHIN_NOISE, at_saved_epoch,
                                       comparison_table, cost_cells, curve_label, markdown_table, pairwise_tests,
                                       ranked, saved_epoch, spread_table, unseeded_label,
                                       validation_history)
from cnn_comparison.layout import LIVE_DIRECTORY, METRICS_FILE, read_run, run_directory
from cnn_comparison.params import CpuShareTarget, MultitaskModel, Params

SECTIONS = ("reference", "validation", "targets", "multitask", "figures", "time", "run_times")
NOT_RETRAINED = "not yet retrained by the current code"
REFERENCE_COLUMNS = ("accuracy", "precision_macro", "recall_macro", "f1_macro", "loss", "training_time_seconds")
REFERENCE_REPORT = "cnn_comparison_report.md"
REFERENCE_OUTPUT = "multitask_reference_output.txt"
# The aggregate's files (dvc.yaml, aggregate's outs) that the document reads or links.
AGGREGATE_TABLE, AGGREGATE_MARKDOWN, TIME_TO_ACCURACY = "table.csv", "table.md", "time_to_accuracy.md"
TIME_TO_ACCURACY_TABLE = "time_to_accuracy.csv"
STUDY_PLOTS = (
    ("test_accuracy.png", "test accuracy per model: mean over seeds, bars from min to max"),
    ("validation_accuracy.png", "validation accuracy per epoch, mean over seeds"),
    ("validation_loss.png", "validation loss per epoch, mean over seeds"),
    ("accuracy_by_time.png", "validation accuracy against wall seconds of training, per run"),
)
PLACEHOLDER = re.compile(r"^<!-- results:(\w+) -->$", re.MULTILINE)


# --- the reference texts ------------------------------------------------------------------------

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


@dataclass(frozen=True)
class ReferenceRun:
    """One model's training log in the reference report: validation accuracy and loss per epoch."""

    planned_epochs: int
    validation_accuracy: tuple[float, ...]
    validation_loss: tuple[float, ...]

    @property
    def kept_epoch(self) -> int:
        """The epoch whose weights the report tested: its EarlyStopping restores the lowest validation
        loss when it ends a run early; a run that went all its epochs keeps the last."""
        if len(self.validation_loss) < self.planned_epochs:
            return 1 + int(np.argmin(self.validation_loss))
        return len(self.validation_loss)


REFERENCE_RUN_START = re.compile(r"(fmnist_\d+)\.fit\(|Training (fmnist\\?_\d+)\.\.\.")
REFERENCE_EPOCH = re.compile(r"Epoch 1/(\d+)")
REFERENCE_VALIDATION = re.compile(r"val\\?_accuracy: ([0-9.]+) - val\\?_loss: ([0-9.]+)")


def parse_reference_training_logs(report_text: str) -> dict[str, ReferenceRun]:
    """Each validated run's epochs from the report's printed Keras logs: a ``fmnist_N.fit(`` call or
    a ``Training fmnist_N...`` line names the model, ``Epoch 1/N`` starts its log. Runs trained
    without validation data (``fmnist_1``) have none and are left out."""
    logs: dict[str, tuple[int, list[tuple[float, float]]]] = {}
    model, current = None, None
    for line in report_text.splitlines():
        start = REFERENCE_RUN_START.search(line)
        if start:
            model, current = (start.group(1) or start.group(2)).replace("\\", ""), None
            continue
        epoch = REFERENCE_EPOCH.search(line)
        if epoch and model and current is None:
            current = logs.setdefault(model, (int(epoch.group(1)), []))[1]
        validation = REFERENCE_VALIDATION.search(line)
        if validation and current is not None:
            current.append((float(validation.group(1)), float(validation.group(2))))
    runs = {model: ReferenceRun(planned, tuple(accuracy for accuracy, _ in epochs), tuple(loss for _, loss in epochs))
            for model, (planned, epochs) in logs.items() if epochs}
    if not runs:
        raise ValueError("no Keras training logs with val_accuracy and val_loss found in the reference report")
    return runs


# --- the declared runs --------------------------------------------------------------------------

def is_full_data(record: Mapping | None) -> bool:
    """A metrics file whose run had no `limits` (every cap null or absent): every sample, every epoch.

    A record without provenance cannot show how it was made, so it does not count.
    """
    if not record or not record.get("provenance"):
        return False
    limits = record["provenance"][0].get("limits") or {}
    return all(value is None for value in limits.values())


@dataclass(frozen=True)
class StudyRuns:
    """One study's declared runs and the full-data metrics files among them (declared order)."""

    study: str
    models: tuple[str, ...]
    seeds: tuple[int, ...]
    records: dict[tuple[str, int], dict]  # (model, seed) -> metrics file, full-data runs only

    @property
    def complete(self) -> bool:
        """Every declared run has full-data results: what the aggregate needs to compare them."""
        return len(self.records) == len(self.models) * len(self.seeds)

    def seeds_of(self, model: str) -> list[int]:
        return [seed for seed in self.seeds if (model, seed) in self.records]

    def table(self) -> pd.DataFrame:
        """The aggregate's long table (one row per model, head and seed) of the full-data runs."""
        return comparison_table([{**self.records[model, seed], "seed": seed}
                                 for model in self.models for seed in self.seeds if (model, seed) in self.records])

    def spread(self) -> dict[str, dict]:
        """Mean, spread and times over seeds, by curve label (``model`` or ``multitask (digits)``)."""
        return {row["label"]: row for row in spread_table(self.table()).to_dict("records")} if self.records else {}


def read_study_runs(params: Params, study: str, metrics_root: Path) -> StudyRuns:
    """The declared runs of ``study`` found under ``metrics_root/<study>/<model>/seed_<seed>/``.

    Directories of undeclared models or seeds are not read. A metrics file of another model or seed
    than its path is an error.
    """
    declared = params.studies[study]
    records = {}
    for model in declared.models:
        for seed in declared.seeds:
            path = run_directory(Path(metrics_root) / study, model, seed) / METRICS_FILE
            if not path.is_file():
                continue
            record = read_run(path.parent)
            if record.get("model") != model or record.get("seed") != seed:
                raise ValueError(f"{path} records model {record.get('model')!r} seed {record.get('seed')!r}; "
                                 f"rerun its evaluate stage (`dvc repro`)")
            if is_full_data(record):
                records[model, seed] = record
    return StudyRuns(study, tuple(declared.models), tuple(declared.seeds), records)


def current_aggregate(runs: StudyRuns, plots_root: Path) -> pd.DataFrame | None:
    """The aggregate's table.csv when it holds exactly the study's full-data runs, else None.

    The aggregate runs only when every declared run exists; checking its rows against the runs keeps
    a comparison of older runs (or of runs with `limits`) out of the document.
    """
    path = Path(plots_root) / runs.study / AGGREGATE_TABLE
    if not runs.complete or not path.is_file():
        return None
    aggregate = pd.read_csv(path, dtype={"model": str, "head": str, "dataset": str}, keep_default_na=False,
                            na_values={column: [""] for column in ("validation_accuracy", "expected_calibration_error",
                                                                     *COST_COLUMNS)})
    expected = runs.table()
    keys = ["model", "head", "seed"]
    if len(aggregate) != len(expected) or not set(TABLE_COLUMNS) <= set(aggregate.columns):
        return None
    try:
        aggregate["seed"] = aggregate["seed"].astype(int)
    except ValueError:
        return None
    merged = expected.merge(aggregate, on=keys, how="left", suffixes=("", "_aggregate"))
    for score in ("test_accuracy", "f1"):
        found = pd.to_numeric(merged[f"{score}_aggregate"], errors="coerce").to_numpy(dtype=float)
        if not np.allclose(merged[score].to_numpy(dtype=float), found, rtol=0, atol=1e-9):
            return None
    return aggregate


def aggregate_status(runs: StudyRuns) -> str:
    """Why a study's comparison is not shown: no runs, some runs, or an aggregate to rerun."""
    declared = len(runs.models) * len(runs.seeds)
    if not runs.records:
        return f"No full-data runs of `{runs.study}` by the current code yet."
    if not runs.complete:
        return (f"{len(runs.records)} of the {declared} declared runs of `{runs.study}` have full-data results; "
                f"its comparison appears once all of them do and `aggregate@{runs.study}` has run.")
    return f"`plots/{runs.study}/` does not hold the current runs: run `dvc repro`."


# --- formatting ---------------------------------------------------------------------------------

def mean_and_std(mean: float, std: float, count: int) -> str:
    """``0.9305 ± 0.0012`` over seeds; the mean alone for one seed, which has no spread."""
    return f"{mean:.4f}" if count < 2 or math.isnan(std) else f"{mean:.4f} ± {std:.4f}"


def points(fraction: float) -> str:
    """A difference of accuracies in percentage points, ``+0.45``; never ``-0.00`` from float noise."""
    return f"{round(100 * fraction, 2) + 0.0:+.2f}"


def value_range(values: Sequence[float]) -> str:
    """``32``, or ``27–35`` over seeds (early stopping ends them at different epochs; CPU seconds vary)."""
    low, high = (f"{value:,.0f}" for value in (min(values), max(values)))
    return low if low == high else f"{low}–{high}"


def p_value_text(p_value: float) -> str:
    return "p < 0.0001" if p_value < 0.0001 else f"p = {p_value:.4f}"


def link(target: Path, document_dir: Path) -> str:
    """A path relative to the document's directory, as markdown links need it."""
    return Path(os.path.relpath(target, document_dir)).as_posix()


def best_model_lines(plots_root: Path, study: str) -> list[str]:
    """The aggregate's ``Best model on <dataset>: **<model>** ...`` lines (ranked over seeds, with ties)."""
    path = Path(plots_root) / study / AGGREGATE_MARKDOWN
    return [line for line in path.read_text().splitlines() if line.startswith("Best model on ")] if path.is_file() else []


def seeds_cell(runs: StudyRuns, model: str) -> str:
    return f"{len(runs.seeds_of(model))} of {len(runs.seeds)}"


# --- the sections -------------------------------------------------------------------------------

def reference_section(params: Params, runs: StudyRuns, reference: Mapping[str, Mapping[str, str]],
                      plots_root: Path) -> str:
    """One row per model of the reference study: mean ± std over its full-data seeds beside the report's numbers."""
    header = ("model", "test accuracy", "seeds", "reference", "gap (pp)", "macro F1", "epochs", "reference epochs",
              "CPU time (s)", *COST_HEADERS)
    reference_epochs = params.report.reference.epochs
    spread = runs.spread()
    rows = []
    for model in runs.models:
        reference_accuracy = reference.get(model, {}).get("accuracy", "")
        epochs = str(reference_epochs.get(model, ""))
        seeds = runs.seeds_of(model)
        if not seeds:
            rows.append([f"`{model}`", NOT_RETRAINED, seeds_cell(runs, model), reference_accuracy, "", "", "", epochs, "",
                         *[""] * len(COST_HEADERS)])
            continue
        row = spread[model]
        count = int(row["n"])
        rows.append([
            f"`{model}`", mean_and_std(row["test_accuracy_mean"], row["test_accuracy_std"], count),
            seeds_cell(runs, model), reference_accuracy,
            points(row["test_accuracy_mean"] - float(reference_accuracy)) if reference_accuracy else "",
            mean_and_std(row["f1_mean"], row["f1_std"], count),
            value_range([runs.records[model, seed]["epochs_run"] for seed in seeds]), epochs,
            f"{row['training_cpu_seconds_mean']:,.0f}", *cost_cells(row)])
    lines = [markdown_table(header, rows), "", reproduction_line(spread, reference), ""]
    aggregate = current_aggregate(runs, plots_root)
    if aggregate is not None:
        lines += best_model_lines(plots_root, runs.study)
        lines += ["", reference_ranking_line(reference, aggregate)]
    else:
        lines.append(f"The ranking over seeds (`plots/{runs.study}/table.md`) is not shown yet. {aggregate_status(runs)}")
    return "\n".join(lines)


def kept_weights_scores(runs: StudyRuns, model: str, metrics_root: Path) -> list[tuple[int, float, float]]:
    """(epoch, validation accuracy, test accuracy) of the weights each of ``model``'s runs kept, from the
    training log that evaluate copies beside its metrics; runs without that log, or with several
    heads, are left out."""
    scores = []
    for seed in runs.seeds_of(model):
        record = runs.records[model, seed]
        if len(record["heads"]) != 1:
            continue
        live_dir = run_directory(Path(metrics_root) / runs.study, model, seed) / LIVE_DIRECTORY
        try:
            validation = at_saved_epoch(validation_history(live_dir, record, "accuracy"), record)[curve_label(model, None)]
        except FileNotFoundError:
            continue
        scores.append((saved_epoch(record), validation, next(iter(record["heads"].values()))["accuracy"]))
    return scores


def validation_section(runs: StudyRuns, reference: Mapping[str, Mapping[str, str]],
                       reference_runs: Mapping[str, ReferenceRun], metrics_root: Path) -> str:
    """Per model, the epoch whose weights were tested, their validation accuracy and how much of it
    the test set kept, beside the report's runs: shows whether a gap to the report opens in training
    (validation) or between validation and test."""
    header = ("model", "kept epoch (ours / report)", "validation accuracy (ours / report)",
              "validation − test, pp (ours / report)")
    rows = []
    for model in runs.models:
        scores = kept_weights_scores(runs, model, metrics_root)
        ours = ["–"] * 3
        if scores:
            epochs, validation, test = (np.array(column) for column in zip(*scores))
            ours = [value_range(epochs),
                    mean_and_std(validation.mean(), validation.std(ddof=1) if len(scores) > 1 else math.nan, len(scores)),
                    points(float((validation - test).mean()))]
        if model not in reference:
            rows.append([f"`{model}`", *ours])
            continue
        theirs = ["–"] * 3  # a run without validation data (fmnist_1's)
        if model in reference_runs:
            run = reference_runs[model]
            kept_validation = run.validation_accuracy[run.kept_epoch - 1]
            theirs = [str(run.kept_epoch), f"{kept_validation:.4f}",
                      points(kept_validation - float(reference[model]["accuracy"]))]
        rows.append([f"`{model}`", *(f"{mine} / {other}" for mine, other in zip(ours, theirs))])
    return markdown_table(header, rows)


REPRODUCED_WITHIN_POINTS = 0.6  # a reference model is reproduced when within this many points ...
REPRODUCED_WITHIN_STDS = 2  # ... or within this many of its seed standard deviations


def reproduction_line(spread: Mapping[str, Mapping], reference: Mapping[str, Mapping[str, str]]) -> str:
    """Which reference models' means are within 0.6 points of the report's accuracy or within two
    seed standard deviations of it, and which are not (their causes are the template's prose)."""
    within, outside = [], []
    for model, entry in reference.items():
        row = spread.get(model)
        if row is None or not entry.get("accuracy"):
            continue
        gap = row["test_accuracy_mean"] - float(entry["accuracy"])
        std = row["test_accuracy_std"]
        reproduced = abs(gap) <= REPRODUCED_WITHIN_POINTS / 100 or (
            row["n"] > 1 and not math.isnan(std) and abs(gap) <= REPRODUCED_WITHIN_STDS * std)
        (within if reproduced else outside).append(f"`{model}` ({points(gap)})")
    if not within and not outside:
        return ""
    text = (f"**Reproduced** (mean within {REPRODUCED_WITHIN_POINTS} points of the report, or within "
            f"{REPRODUCED_WITHIN_STDS} seed standard deviations): {', '.join(within) or 'none'}.")
    return text + (f" **Not reproduced:** {', '.join(outside)}; the causes are below." if outside else "")


def reference_ranking_line(reference: Mapping[str, Mapping[str, str]], aggregate: pd.DataFrame) -> str:
    """Whether the report's best model is the best here too, or tied with it, as the aggregate's
    tests (over seeds, Holm-adjusted) say."""
    accuracies = {model: float(entry["accuracy"]) for model, entry in reference.items()
                  if entry.get("accuracy") and model in set(aggregate["model"])}
    if not accuracies:
        return ""
    theirs = max(accuracies, key=accuracies.get)
    order = list(ranked(spread_table(aggregate))["label"])
    ours = order[0]
    said = (f"**The report's ranking** (`{theirs}` best, {accuracies[theirs]:.4f}, one run each): `{theirs}` ranks "
            f"{order.index(theirs) + 1} of {len(order)} here by mean test accuracy; ")
    if ours == theirs:
        return said + "the ranking holds."
    pair = next(row for row in pairwise_tests(aggregate).itertuples() if (row.better, row.worse) == (ours, theirs))
    if pair.verdict == WITHIN_NOISE:
        return (said + f"`{ours}` is ahead by {points(pair.mean_difference)} pp, within seed noise (Holm-adjusted "
                f"{p_value_text(pair.adjusted_p_value)}), so the report's best is tied for best: the ranking holds "
                "within noise.")
    if pair.verdict == DIFFERS:
        return (said + f"`{ours}` is ahead by {points(pair.mean_difference)} pp beyond seed noise (Holm-adjusted "
                f"{p_value_text(pair.adjusted_p_value)}): the ranking does not hold.")
    return said + f"`{ours}` is ahead by {points(pair.mean_difference)} pp; one seed each, so it cannot be tested."


def target_section(runs: StudyRuns, target: CpuShareTarget, baseline_runs: StudyRuns) -> str:
    """A study's models over seeds, training CPU seconds as a share of the baseline's, and the verdict."""
    baseline_cpu = [baseline_runs.records[target.baseline, seed]["training_cpu_seconds"]
                    for seed in baseline_runs.seeds_of(target.baseline)]
    baseline_mean = float(np.mean(baseline_cpu)) if baseline_cpu else None
    header = ("model", "test accuracy", "seeds", "macro F1", "epochs", "CPU time (s)", f"CPU time / {target.baseline}'s")
    spread = runs.spread()
    rows, verdicts = [], []
    for model in runs.models:
        seeds = runs.seeds_of(model)
        if not seeds:
            rows.append([f"`{model}`", NOT_RETRAINED, seeds_cell(runs, model), "", "", "", ""])
            continue
        row = spread[model]
        count = int(row["n"])
        share = row["training_cpu_seconds_mean"] / baseline_mean if baseline_mean else None
        rows.append([f"`{model}`", mean_and_std(row["test_accuracy_mean"], row["test_accuracy_std"], count),
                     seeds_cell(runs, model), mean_and_std(row["f1_mean"], row["f1_std"], count),
                     value_range([runs.records[model, seed]["epochs_run"] for seed in seeds]),
                     f"{row['training_cpu_seconds_mean']:,.0f}", "" if share is None else f"{share:.2f}"])
        if len(seeds) < len(runs.seeds) or share is None:
            continue
        accuracy_met = row["test_accuracy_mean"] >= target.accuracy
        cpu_met = share <= target.cpu_share
        verdicts.append(
            f"`{model}`: mean test accuracy {row['test_accuracy_mean']:.4f} "
            f"({'meets' if accuracy_met else 'misses'} the {target.accuracy:.3f} target), in "
            f"{share:.2f} of `{target.baseline}`'s training CPU seconds ({row['training_cpu_seconds_mean']:,.0f} "
            f"against {baseline_mean:,.0f}; {'within' if cpu_met else 'over'} the {target.cpu_share:.2f} allowed).")
    lines = [f"**`{runs.study}`**", "", markdown_table(header, rows), ""]
    if baseline_mean is None:
        lines.append(f"No full-data run of `{target.baseline}` by the current code yet, so no CPU time to compare with.")
    lines += verdicts
    if not verdicts:
        waiting_for = []
        if any(len(runs.seeds_of(model)) < len(runs.seeds) for model in runs.models):
            waiting_for.append(f"all {len(runs.seeds)} seeds")
        if baseline_mean is None:
            waiting_for.append(f"`{target.baseline}`")
        verb = "has" if waiting_for == [f"`{target.baseline}`"] else "have"
        lines.append(f"The target is judged once {' and '.join(waiting_for)} {verb} full-data results.")
    return "\n".join(lines)


@dataclass(frozen=True)
class TaskComparison:
    """One task of a multitask model and the dedicated model it is compared with."""

    task: str
    multitask_model: str
    multitask_title: str
    dedicated_model: str
    dedicated_title: str


def task_comparisons(params: Params) -> list[TaskComparison]:
    """Every (multitask head, dedicated model) pair params.yaml declares, in its order."""
    pairs = []
    for name, entry in params.models.items():
        if not isinstance(entry, MultitaskModel):
            continue
        for task, config in entry.tasks.items():
            if config.dedicated_model is None:
                continue
            dedicated = params.models[config.dedicated_model]
            pairs.append(TaskComparison(task, name, config.report_title, config.dedicated_model,
                                        dedicated.report_title or f"{config.dedicated_model} Performance"))
    return pairs


def welch_verdict(aggregate: pd.DataFrame | None, comparison: TaskComparison) -> str:
    """Multitask minus dedicated mean test accuracy and Welch's verdict, as the aggregate's tests give them."""
    if aggregate is None:
        return ""
    multitask_label = curve_label(comparison.multitask_model, comparison.task)
    for row in pairwise_tests(aggregate).itertuples():
        if {row.better, row.worse} == {comparison.dedicated_model, multitask_label}:
            difference = row.mean_difference if row.better == multitask_label else -row.mean_difference
            if row.verdict not in (DIFFERS, WITHIN_NOISE):
                return f"{points(difference)} pp, {row.verdict} (needs ≥ 2 seeds each)"
            return f"{points(difference)} pp, Holm-adjusted {p_value_text(row.adjusted_p_value)}: {row.verdict}"
    return ""


def multitask_section(params: Params, runs_by_study: Mapping[str, StudyRuns], reference_accuracies: Mapping[str, str],
                      plots_root: Path) -> str:
    """Per task: the dedicated model, then the multitask head, over seeds, beside the reference's accuracy."""
    header = ("task", "model", "test accuracy", "seeds", "reference", "gap (pp)", "macro F1",
              "vs dedicated (Welch's t-test)")
    rows, notes = [], []
    for comparison in task_comparisons(params):
        study = params.study_of(comparison.multitask_model)
        runs = runs_by_study[study]
        aggregate = current_aggregate(runs, plots_root)
        spread = runs.spread()
        candidates = ((comparison.dedicated_model, curve_label(comparison.dedicated_model, None),
                       comparison.dedicated_title, ""),
                      (comparison.multitask_model, curve_label(comparison.multitask_model, comparison.task),
                       comparison.multitask_title, welch_verdict(aggregate, comparison)))
        for model, label, title, verdict in candidates:
            expected = reference_accuracies.get(title, "")
            if not runs.seeds_of(model):
                rows.append([comparison.task, f"`{label}`", NOT_RETRAINED, seeds_cell(runs, model), expected, "", "", ""])
                continue
            row = spread[label]
            count = int(row["n"])
            rows.append([comparison.task, f"`{label}`",
                         mean_and_std(row["test_accuracy_mean"], row["test_accuracy_std"], count),
                         seeds_cell(runs, model), expected,
                         points(row["test_accuracy_mean"] - float(expected)) if expected else "",
                         mean_and_std(row["f1_mean"], row["f1_std"], count), verdict])
        if aggregate is None:
            notes.append(f"Welch's t-tests (`plots/{study}/table.md`) are not shown yet. {aggregate_status(runs)}")
    lines = [markdown_table(header, rows, left_columns=(0, 1, len(header) - 1))]
    for note in dict.fromkeys(notes):
        lines += ["", note]
    return "\n".join(lines)


def figures_section(runs_by_study: Mapping[str, StudyRuns], plots_root: Path, document_dir: Path) -> str:
    """Links to each study's comparison plots, once its aggregate holds the current runs."""
    lines = []
    for study, runs in runs_by_study.items():
        if current_aggregate(runs, plots_root) is None:
            lines.append(f"- `{study}`: no plots yet. {aggregate_status(runs)}")
            continue
        directory = Path(plots_root) / study
        links = [f"[{caption}]({link(directory / file, document_dir)})" for file, caption in STUDY_PLOTS
                 if (directory / file).is_file()]
        table = f"[spread and Welch's t-tests]({link(directory / AGGREGATE_MARKDOWN, document_dir)})"
        lines.append(f"- `{study}`: " + "; ".join([table, *links]))
    return "\n".join(lines)


def time_to_accuracy_by_model(reached: pd.DataFrame, thresholds: Sequence[float], models: Sequence[str] = ()) -> str:
    """One row per model of the aggregate's time-to-accuracy table (time_to_accuracy.csv): over its
    runs, the range of the first epoch that reached each threshold and of the training CPU seconds
    by then. Per-run rows (24 for eight models on three seeds) would make most of docs/results.md;
    they stay in the aggregate's time_to_accuracy.md, wall seconds included. A model of ``models``
    with no row (no training log in the workspace) is listed as such, not left out."""
    labels = [unseeded_label(label, seed) for label, seed in zip(reached["model"], reached["seed"])]
    rows = []
    for label, runs in reached.assign(label=labels).groupby("label", sort=False):
        cells = []
        for threshold in thresholds:
            tried = runs[runs["threshold"] == threshold]
            hit = tried.dropna(subset=["epoch"])
            if hit.empty:
                cells.append(f"not in {value_range(tried['epochs_run'])} epochs")
                continue
            epochs = value_range(hit["epoch"])
            cell = f"epoch{'s' if '–' in epochs else ''} {epochs}"
            cpu = hit["elapsed_cpu_seconds"].dropna()
            cell += f", {value_range(cpu)} s CPU" if len(cpu) == len(hit) else " (times not logged)"
            cells.append(cell if len(hit) == len(tried) else f"{len(hit)} of {len(tried)} runs: {cell}")
        rows.append([f"`{label}`", str(runs["seed"].nunique()), *cells])
    timed = {label.split(" (")[0] for label in labels}  # `multitask (digits)` is a head of `multitask`
    rows += [[f"`{model}`", "0", *["no training log in the workspace"] * len(thresholds)]
             for model in models if model not in timed]
    header = ["model", "runs", *(f"first reaches {threshold:.2f}" for threshold in thresholds)]
    return markdown_table(header, rows)


def time_section(params: Params, studies: Sequence[StudyRuns], plots_root: Path, document_dir: Path) -> str:
    """Each study's time to accuracy, a row per model, from its aggregate once it holds the current runs."""
    parts = []
    for runs in studies:
        directory = Path(plots_root) / runs.study
        if current_aggregate(runs, plots_root) is None or not (directory / TIME_TO_ACCURACY_TABLE).is_file():
            parts.append(f"**`{runs.study}`**: {aggregate_status(runs)}")
            continue
        per_run = f"[per run]({link(directory / TIME_TO_ACCURACY, document_dir)})"
        table = time_to_accuracy_by_model(pd.read_csv(directory / TIME_TO_ACCURACY_TABLE),
                                          params.studies[runs.study].accuracy_thresholds, runs.models)
        parts.append(f"**`{runs.study}`** ({per_run})\n\n{table}")
    return "\n\n".join(parts)


def run_times_section(runs_by_study: Mapping[str, StudyRuns]) -> str:
    """What a full default `dvc repro` costs, added up from what each full-data run recorded.

    A full run takes hours, so its time is the sum of the runs' own times rather than a rerun. The
    data stages, aggregates and each stage's start-up are not in it (benchmarks/README.md has them).
    """
    keys = ("training_time_seconds", "training_cpu_seconds", "evaluation_time_seconds")
    rows, totals, declared = [], {"runs": 0, "epochs": 0, **dict.fromkeys(keys, 0.0)}, 0
    for study, runs in runs_by_study.items():
        records = list(runs.records.values())
        values = {"runs": len(records), "epochs": sum(record["epochs_run"] for record in records),
                  **{key: sum(record[key] for record in records) for key in keys}}
        totals = {key: totals[key] + values[key] for key in totals}
        declared += len(runs.models) * len(runs.seeds)
        rows.append((f"`{study}`", f"{len(records)} of {len(runs.models) * len(runs.seeds)}", values))
    rows.append(("**all**", f"{totals['runs']} of {declared}", totals))
    header = ("study", "runs", "epochs", "training wall (s)", "training CPU (s)", "evaluation wall (s)")
    table = markdown_table(header, [[label, count, f"{values['epochs']:,}", *(f"{values[key]:,.0f}" for key in keys)]
                                    for label, count, values in rows])
    wall = totals["training_time_seconds"] + totals["evaluation_time_seconds"]
    missing = declared - totals["runs"]
    return (f"{table}\n\nTraining and evaluation: {wall:,.0f} s wall = {wall / 3600:.1f} hours on 2 cores"
            + (f" ({missing} declared run{'s have' if missing > 1 else ' has'} no full-data results yet, so more)."
               if missing else "."))


# --- the document -------------------------------------------------------------------------------

def render_sections(params: Params, metrics_root: Path, plots_root: Path, reference_texts: Mapping[str, str],
                    document_dir: Path) -> dict[str, str]:
    """Every generated section, from a metrics tree and a plots tree (any root: tests use tmp).

    ``reference_texts`` holds the contents of REFERENCE_REPORT and REFERENCE_OUTPUT by file name.
    """
    if params.report is None:
        raise ValueError("report: missing; params.yaml needs a `report` section for docs/results.md")
    runs_by_study = {study: read_study_runs(params, study, metrics_root) for study in params.studies}
    reference = parse_reference_cnn_table(reference_texts[REFERENCE_REPORT])
    accuracies = parse_reference_accuracies(reference_texts[REFERENCE_OUTPUT])
    report = params.report
    return {
        "reference": reference_section(params, runs_by_study[report.reference.study], reference, plots_root),
        "validation": validation_section(runs_by_study[report.reference.study], reference,
                                         parse_reference_training_logs(reference_texts[REFERENCE_REPORT]), metrics_root),
        "targets": "\n\n".join(target_section(runs_by_study[study], target,
                                              runs_by_study[params.study_of(target.baseline)])
                               for study, target in report.targets.items()),
        "multitask": multitask_section(params, runs_by_study, accuracies, plots_root),
        "figures": figures_section(runs_by_study, plots_root, document_dir),
        "time": time_section(params, [runs_by_study[study] for study in report.time_to_accuracy], plots_root,
                             document_dir),
        "run_times": run_times_section(runs_by_study),
    }


def fill_template(template: str, sections: Mapping[str, str]) -> str:
    """Each ``<!-- results:NAME -->`` line of the template replaced by its section; every one used once."""
    found = PLACEHOLDER.findall(template)
    unknown = sorted(set(found) - set(sections))
    if unknown or sorted(found) != sorted(set(found)):
        raise ValueError(f"the template's placeholders {found} must be distinct names among {sorted(sections)}")
    return PLACEHOLDER.sub(lambda match: sections[match.group(1)], template)
