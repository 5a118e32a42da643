"""docs/results.md's generated sections, written from the declared runs, the aggregate and the reference.

``python -m devtools.results_doc`` rewrites what lies between ``<!-- results:NAME:start -->`` and
``<!-- results:NAME:end -->``; tests/test_results_doc.py fails when the committed document differs
from what this module makes of the committed files, so no number can be copied by hand and drift.

What counts: exactly the runs params.yaml declares (``studies.<study>.models`` x ``seeds``), read
from ``results/<study>/<model>/seed_<seed>/metrics.json``, and only those made on full data (no
`limits`). A result made by older code is retrained or removed, never shown with a caveat, so a
model without such runs reads "not yet retrained by the current code". The aggregate's outputs
(``comparisons/<study>/``) are used only when its table.csv holds exactly those runs: a stale or
partial comparison is never shown.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from cnn_comparison import atomic
from cnn_comparison.comparison import (DIFFERS, WITHIN_NOISE, comparison_table, curve_label, pairwise_tests,
                                       spread_table)
from cnn_comparison.layout import METRICS_FILE, run_directory
from cnn_comparison.params import MultitaskModel, Params, load_params, validated

CNN_STUDY = "fashion_cnns"  # the study the reference report's table compares
FAST_STUDY = "fast_cnn"  # the fast model, judged against fmnist_5 of CNN_STUDY
FAST_BASELINE = "fmnist_5"
FAST_TARGET_ACCURACY = 0.940  # mean test accuracy over seeds
FAST_TARGET_CPU_SHARE = 1 / 3  # of the baseline's mean training CPU seconds
SECTIONS = ("cnn", "fast", "multitask", "figures", "time")
NOT_RETRAINED = "not yet retrained by the current code"
# Epochs the reference run actually took (early stopping), from reference/cnn_comparison_report.md's logs.
REFERENCE_EPOCHS_RUN = {"fmnist_1": 10, "fmnist_2": 10, "fmnist_3": 24, "fmnist_4": 19, "fmnist_5": 50, "fmnist_6": 36}
REFERENCE_COLUMNS = ("accuracy", "precision_macro", "recall_macro", "f1_macro", "loss", "training_time_seconds")
REFERENCE_REPORT = "cnn_comparison_report.md"
REFERENCE_OUTPUT = "multitask_reference_output.txt"
CNN_HEADER = ("model", "test accuracy", "seeds", "reference", "gap (pp)", "macro F1", "epochs", "reference epochs",
              "CPU time (s)")
FAST_HEADER = ("model", "test accuracy", "seeds", "macro F1", "epochs", "CPU time (s)", f"CPU time / {FAST_BASELINE}'s")
MULTITASK_HEADER = ("task", "model", "test accuracy", "seeds", "reference", "gap (pp)", "macro F1",
                    "vs dedicated (Welch's t-test)")
# The aggregate's figures, in the order the document lists them.
STUDY_PLOTS = (
    ("test_accuracy.png", "test accuracy per model: mean over seeds, bars from min to max"),
    ("validation_accuracy.png", "validation accuracy per epoch, mean over seeds"),
    ("validation_loss.png", "validation loss per epoch, mean over seeds"),
    ("accuracy_by_time.png", "validation accuracy against wall seconds of training, per run"),
)
AGGREGATE_TABLE = "table.csv"
AGGREGATE_MARKDOWN = "table.md"
TIME_TO_ACCURACY = "time_to_accuracy.md"


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


def read_study_runs(params: Params, study: str, results_root: Path) -> StudyRuns:
    """The declared runs of ``study`` found under ``results_root/<study>/<model>/seed_<seed>/``.

    Directories of undeclared models or seeds, and the pre-seed layout, are not read: they were
    not made by the current code. A metrics file of another model or seed than its path is an error.
    """
    declared = params.studies[study]
    records = {}
    for model in declared.models:
        for seed in declared.seeds:
            path = run_directory(Path(results_root) / study, model, seed) / METRICS_FILE
            if not path.is_file():
                continue
            record = json.loads(path.read_text())
            if record.get("model") != model or record.get("seed") != seed:
                raise ValueError(f"{path} records model {record.get('model')!r} seed {record.get('seed')!r}; "
                                 f"rerun its evaluate stage (`dvc repro`)")
            if is_full_data(record):
                records[model, seed] = record
    return StudyRuns(study, tuple(declared.models), tuple(declared.seeds), records)


def current_aggregate(runs: StudyRuns, comparisons_root: Path) -> pd.DataFrame | None:
    """The aggregate's table.csv when it holds exactly the study's full-data runs, else None.

    The aggregate runs only when every declared run exists; checking its rows against the runs keeps
    a comparison of older runs (or of runs with `limits`) out of the document.
    """
    path = Path(comparisons_root) / runs.study / AGGREGATE_TABLE
    if not runs.complete or not path.is_file():
        return None
    aggregate = pd.read_csv(path, dtype={"model": str, "head": str, "dataset": str}, keep_default_na=False)
    expected = runs.table()
    keys = ["model", "head", "seed"]
    if len(aggregate) != len(expected) or not set(keys + ["test_accuracy", "f1"]) <= set(aggregate.columns):
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
    return (f"`comparisons/{runs.study}/` does not hold the current runs: run `dvc repro aggregate@{runs.study}` "
            f"and then `python -m devtools.results_doc`.")


# --- formatting ---------------------------------------------------------------------------------

def mean_and_std(mean: float, std: float, count: int) -> str:
    """``0.9305 ± 0.0012`` over seeds; the mean alone for one seed, which has no spread."""
    return f"{mean:.4f}" if count < 2 or math.isnan(std) else f"{mean:.4f} ± {std:.4f}"


def points(fraction: float) -> str:
    """A difference of accuracies in percentage points, ``+0.45``; never ``-0.00`` from float noise."""
    return f"{round(100 * fraction, 2) + 0.0:+.2f}"


def gap_points(mean: float, reference: str) -> str:
    """Our mean minus the reference's accuracy as printed, in percentage points."""
    return points(mean - float(reference))


def epochs_range(epochs: Sequence[int]) -> str:
    """``32``, or ``27–35`` when early stopping ended the seeds at different epochs."""
    low, high = min(epochs), max(epochs)
    return str(low) if low == high else f"{low}–{high}"


def p_value_text(p_value: float) -> str:
    return "p < 0.0001" if p_value < 0.0001 else f"p = {p_value:.4f}"


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]], left_columns: Sequence[int] = (0, 1)) -> str:
    """Numbers right-aligned, the columns ``left_columns`` (names, verdicts) left-aligned."""
    lines = ["| " + " | ".join(header) + " |",
             "|" + "|".join("---" if index in left_columns else "---:" for index in range(len(header))) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def link(target: Path, document_dir: Path) -> str:
    """A path relative to the document's directory, as markdown links need it."""
    return Path(os.path.relpath(target, document_dir)).as_posix()


def best_model_lines(comparisons_root: Path, study: str) -> list[str]:
    """The aggregate's ``Best model on <dataset>: **<model>** ...`` lines (ranked over seeds, with ties)."""
    path = Path(comparisons_root) / study / AGGREGATE_MARKDOWN
    if not path.is_file():
        return []
    return [line for line in path.read_text().splitlines() if line.startswith("Best model on ")]


# --- the sections -------------------------------------------------------------------------------

def cnn_section(runs: StudyRuns, reference: Mapping[str, Mapping[str, str]], comparisons_root: Path) -> str:
    """One row per model of the study: mean ± std over its full-data seeds next to the report's numbers."""
    spread = {row["model"]: row for row in spread_table(runs.table()).to_dict("records")} if runs.records else {}
    rows = []
    for model in runs.models:
        expected = reference.get(model, {})
        reference_accuracy = expected.get("accuracy", "")
        reference_epochs = str(REFERENCE_EPOCHS_RUN.get(model, ""))
        seeds = runs.seeds_of(model)
        seeds_cell = f"{len(seeds)} of {len(runs.seeds)}"
        if not seeds:
            rows.append([f"`{model}`", NOT_RETRAINED, seeds_cell, reference_accuracy, "", "", "", reference_epochs, ""])
            continue
        row = spread[model]
        count = int(row["n"])
        rows.append([
            f"`{model}`", mean_and_std(row["test_accuracy_mean"], row["test_accuracy_std"], count), seeds_cell,
            reference_accuracy, gap_points(row["test_accuracy_mean"], reference_accuracy) if reference_accuracy else "",
            mean_and_std(row["f1_mean"], row["f1_std"], count),
            epochs_range([runs.records[model, seed]["epochs_run"] for seed in seeds]), reference_epochs,
            f"{row['training_cpu_seconds_mean']:,.0f}",
        ])
    lines = [markdown_table(CNN_HEADER, rows, left_columns=(0,)), ""]
    if current_aggregate(runs, comparisons_root) is not None:
        lines += best_model_lines(comparisons_root, runs.study)
    else:
        lines.append(f"The ranking over seeds (`comparisons/{runs.study}/table.md`) is not shown yet. "
                     f"{aggregate_status(runs)}")
    return "\n".join(lines)


def fast_section(runs: StudyRuns, baseline_runs: StudyRuns) -> str:
    """The fast model(s) over seeds, with training CPU seconds as a share of the baseline's, and the target."""
    baseline_cpu = [baseline_runs.records[FAST_BASELINE, seed]["training_cpu_seconds"]
                    for seed in baseline_runs.seeds_of(FAST_BASELINE)]
    baseline_mean = float(np.mean(baseline_cpu)) if baseline_cpu else None
    spread = {row["model"]: row for row in spread_table(runs.table()).to_dict("records")} if runs.records else {}
    rows, verdicts = [], []
    for model in runs.models:
        seeds = runs.seeds_of(model)
        seeds_cell = f"{len(seeds)} of {len(runs.seeds)}"
        if not seeds:
            rows.append([f"`{model}`", NOT_RETRAINED, seeds_cell, "", "", "", ""])
            continue
        row = spread[model]
        count = int(row["n"])
        share = row["training_cpu_seconds_mean"] / baseline_mean if baseline_mean else None
        rows.append([f"`{model}`", mean_and_std(row["test_accuracy_mean"], row["test_accuracy_std"], count), seeds_cell,
                     mean_and_std(row["f1_mean"], row["f1_std"], count),
                     epochs_range([runs.records[model, seed]["epochs_run"] for seed in seeds]),
                     f"{row['training_cpu_seconds_mean']:,.0f}", "" if share is None else f"{share:.2f}"])
        if len(seeds) < len(runs.seeds) or share is None:
            continue
        accuracy_met = row["test_accuracy_mean"] >= FAST_TARGET_ACCURACY
        cpu_met = share <= FAST_TARGET_CPU_SHARE
        verdicts.append(
            f"`{model}`: mean test accuracy {row['test_accuracy_mean']:.4f} "
            f"({'meets' if accuracy_met else 'misses'} the {FAST_TARGET_ACCURACY:.3f} target), in "
            f"{share:.2f} of `{FAST_BASELINE}`'s training CPU seconds ({row['training_cpu_seconds_mean']:,.0f} "
            f"against {baseline_mean:,.0f}; {'within' if cpu_met else 'over'} the third allowed).")
    lines = [markdown_table(FAST_HEADER, rows, left_columns=(0,)), ""]
    if baseline_mean is None:
        lines.append(f"No full-data run of `{FAST_BASELINE}` by the current code yet, so no CPU time to compare with.")
    lines += verdicts
    if not verdicts:
        waiting_for = []
        if any(len(runs.seeds_of(model)) < len(runs.seeds) for model in runs.models):
            waiting_for.append(f"all {len(runs.seeds)} seeds")
        if baseline_mean is None:
            waiting_for.append(f"`{FAST_BASELINE}`")
        verb = "has" if waiting_for == [f"`{FAST_BASELINE}`"] else "have"
        lines.append(f"The target is judged once {' and '.join(waiting_for)} {verb} full-data results.")
    return "\n".join(lines)


@dataclass(frozen=True)
class TaskComparison:
    """One task of a multitask model and the dedicated model it is compared with."""

    task: str
    dataset: str
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
            pairs.append(TaskComparison(task, config.dataset, name, config.report_title, config.dedicated_model,
                                        dedicated.report_title or f"{config.dedicated_model} Performance"))
    return pairs


def welch_verdict(aggregate: pd.DataFrame | None, comparison: TaskComparison) -> str:
    """Multitask minus dedicated mean test accuracy and Welch's verdict, as the aggregate's tests give them."""
    if aggregate is None:
        return ""
    tests = pairwise_tests(aggregate)
    multitask_label = curve_label(comparison.multitask_model, comparison.task)
    labels = {comparison.dedicated_model, multitask_label}
    for row in tests.itertuples():
        if {row.better, row.worse} == labels:
            difference = row.mean_difference if row.better == multitask_label else -row.mean_difference
            if row.verdict not in (DIFFERS, WITHIN_NOISE):
                return f"{points(difference)} pp, {row.verdict} (needs ≥ 2 seeds each)"
            return f"{points(difference)} pp, {p_value_text(row.p_value)}: {row.verdict}"
    return ""


def multitask_section(params: Params, runs_by_study: Mapping[str, StudyRuns], reference_accuracies: Mapping[str, str],
                      comparisons_root: Path) -> str:
    """Per task: the dedicated model, then the multitask head, over seeds, next to the reference's accuracy."""
    rows, notes = [], []
    for comparison in task_comparisons(params):
        study = params.study_of(comparison.multitask_model)
        runs = runs_by_study[study]
        aggregate = current_aggregate(runs, comparisons_root)
        spread = {row["label"]: row for row in spread_table(runs.table()).to_dict("records")} if runs.records else {}
        candidates = ((comparison.dedicated_model, curve_label(comparison.dedicated_model, None),
                       comparison.dedicated_title, ""),
                      (comparison.multitask_model, curve_label(comparison.multitask_model, comparison.task),
                       comparison.multitask_title, welch_verdict(aggregate, comparison)))
        for model, label, title, verdict in candidates:
            expected = reference_accuracies[title]
            seeds = runs.seeds_of(model)
            seeds_cell = f"{len(seeds)} of {len(runs.seeds)}"
            if not seeds:
                rows.append([comparison.task, f"`{label}`", NOT_RETRAINED, seeds_cell, expected, "", "", ""])
                continue
            row = spread[label]
            count = int(row["n"])
            rows.append([comparison.task, f"`{label}`",
                         mean_and_std(row["test_accuracy_mean"], row["test_accuracy_std"], count), seeds_cell,
                         expected, gap_points(row["test_accuracy_mean"], expected),
                         mean_and_std(row["f1_mean"], row["f1_std"], count), verdict])
        if aggregate is None:
            notes.append(f"Welch's t-tests (`comparisons/{study}/table.md`) are not shown yet. "
                         f"{aggregate_status(runs)}")
    lines = [markdown_table(MULTITASK_HEADER, rows, left_columns=(0, 1, len(MULTITASK_HEADER) - 1))]
    for note in dict.fromkeys(notes):
        lines += ["", note]
    return "\n".join(lines)


def figures_section(runs_by_study: Mapping[str, StudyRuns], comparisons_root: Path, document_dir: Path) -> str:
    """Links to each study's comparison plots, once its aggregate holds the current runs."""
    lines = []
    for study, runs in runs_by_study.items():
        if current_aggregate(runs, comparisons_root) is None:
            lines.append(f"- `{study}`: no plots yet. {aggregate_status(runs)}")
            continue
        directory = Path(comparisons_root) / study
        plots = [(file, caption) for file, caption in STUDY_PLOTS if (directory / file).is_file()]
        links = [f"[{caption}]({link(directory / file, document_dir)})" for file, caption in plots]
        table = f"[spread and Welch's t-tests]({link(directory / AGGREGATE_MARKDOWN, document_dir)})"
        lines.append(f"- `{study}`: " + "; ".join([table, *links]))
    return "\n".join(lines)


def time_section(studies: Sequence[StudyRuns], comparisons_root: Path) -> str:
    """Each study's time-to-accuracy table from its aggregate, once it holds the current runs."""
    parts = []
    for runs in studies:
        path = Path(comparisons_root) / runs.study / TIME_TO_ACCURACY
        if current_aggregate(runs, comparisons_root) is None or not path.is_file():
            parts.append(f"**`{runs.study}`**: {aggregate_status(runs)}")
        else:
            parts.append(f"**`{runs.study}`**\n\n{path.read_text().strip()}")
    return "\n\n".join(parts)


# --- the document -------------------------------------------------------------------------------

def render_sections(params: Params, results_root: Path, comparisons_root: Path, reference_dir: Path,
                    document_dir: Path) -> dict[str, str]:
    """Every generated section's content, from a results tree and a comparisons tree (any root: tests use tmp)."""
    runs_by_study = {study: read_study_runs(params, study, results_root) for study in params.studies}
    reference = parse_reference_cnn_table((Path(reference_dir) / REFERENCE_REPORT).read_text())
    accuracies = parse_reference_accuracies((Path(reference_dir) / REFERENCE_OUTPUT).read_text())
    return {
        "cnn": cnn_section(runs_by_study[CNN_STUDY], reference, comparisons_root),
        "fast": fast_section(runs_by_study[FAST_STUDY], runs_by_study[CNN_STUDY]),
        "multitask": multitask_section(params, runs_by_study, accuracies, comparisons_root),
        "figures": figures_section(runs_by_study, comparisons_root, document_dir),
        "time": time_section([runs_by_study[CNN_STUDY], runs_by_study[FAST_STUDY]], comparisons_root),
    }


def replace_section(text: str, name: str, content: str) -> str:
    """Swap what lies between ``<!-- results:NAME:start -->`` and ``<!-- results:NAME:end -->``."""
    start, end = f"<!-- results:{name}:start -->", f"<!-- results:{name}:end -->"
    if text.count(start) != 1 or text.count(end) != 1 or text.index(start) > text.index(end):
        raise ValueError(f"expected one '{start}' ... '{end}' pair in the document")
    before, rest = text.split(start)
    _, after = rest.split(end)
    return f"{before}{start}\n{content}\n{end}{after}"


def fill_document(text: str, sections: Mapping[str, str]) -> str:
    for name, content in sections.items():
        text = replace_section(text, name, content)
    return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Rewrite the generated sections of docs/results.md.")
    parser.add_argument("--document", type=Path, default=Path("docs/results.md"))
    parser.add_argument("--results", type=Path, default=Path("results"))
    parser.add_argument("--comparisons", type=Path, default=Path("comparisons"))
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--reference", type=Path, default=Path("reference"),
                        help=f"directory with {REFERENCE_REPORT} and {REFERENCE_OUTPUT}")
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if the document is out of date")
    arguments = parser.parse_args(argv)
    try:
        params = validated(load_params(arguments.params))
        sections = render_sections(params, arguments.results, arguments.comparisons, arguments.reference,
                                   arguments.document.parent)
        text = arguments.document.read_text()
        updated = fill_document(text, sections)
    except (FileNotFoundError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    if arguments.check:
        if updated != text:
            print(f"{arguments.document} is out of date: run `python -m devtools.results_doc`", file=sys.stderr)
            return 1
        print(f"{arguments.document} is up to date")
        return 0
    if updated != text:
        atomic.write_text(arguments.document, updated)
    print(f"{'updated' if updated != text else 'unchanged'}: {arguments.document}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
