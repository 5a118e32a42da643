"""What a full default `dvc repro` costs, summed from the committed runs' own metrics files.

Usage: python -m devtools.run_times [--results results] [--params params.yaml]

Why: a full run takes hours, so its time is not measured by running it again but by adding up what
each declared full-data run recorded (`training_time_seconds`, `training_cpu_seconds`,
`evaluation_time_seconds`). The sum leaves out what the metrics files do not time: the data
stages, the aggregates and each stage's start-up (Python, TensorFlow's import, loading arrays),
which benchmarks/README.md measures separately. Runs of several days add up here, and these hosts'
speed moves 1.5-2.6x between days: read the total as "on 2 cores, those days", not as a constant.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from cnn_comparison.params import Params, load_params, validated
from devtools.results_doc import StudyRuns, markdown_table, read_study_runs

HEADER = ["study", "runs", "epochs", "training wall (s)", "training CPU (s)", "evaluation wall (s)"]


def study_totals(runs: StudyRuns) -> dict[str, float]:
    records = runs.records.values()
    return {"runs": len(runs.records), "declared": len(runs.models) * len(runs.seeds),
            "epochs": sum(record["epochs_run"] for record in records),
            "training": sum(record["training_time_seconds"] for record in records),
            "cpu": sum(record["training_cpu_seconds"] for record in records),
            "evaluation": sum(record["evaluation_time_seconds"] for record in records)}


def run_time_table(params: Params, results_root: Path) -> str:
    """One row per study and a total; a study missing runs says how many it has."""
    rows, totals = [], {"runs": 0, "declared": 0, "epochs": 0, "training": 0.0, "cpu": 0.0, "evaluation": 0.0}
    for study in params.studies:
        values = study_totals(read_study_runs(params, study, results_root))
        totals = {key: totals[key] + values[key] for key in totals}
        rows.append(_row(f"`{study}`", values))
    rows.append(_row("**all**", totals))
    wall = totals["training"] + totals["evaluation"]
    missing = totals["declared"] - totals["runs"]
    return "\n".join([markdown_table(HEADER, rows, left_columns=(0,)), "",
                      f"Training and evaluation: {wall:,.0f} s wall = {wall / 3600:.1f} hours on 2 cores"
                      + (f" ({missing} declared run{'s have' if missing > 1 else ' has'} no full-data results yet, "
                         "so more)." if missing else ".")])


def _row(label: str, values: dict[str, float]) -> list[str]:
    runs = f"{values['runs']}" if values["runs"] == values["declared"] else f"{values['runs']} of {values['declared']}"
    return [label, runs, f"{values['epochs']:,}", f"{values['training']:,.0f}", f"{values['cpu']:,.0f}",
            f"{values['evaluation']:,.0f}"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, default=Path("results"))
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    arguments = parser.parse_args(argv)
    try:
        print(run_time_table(validated(load_params(arguments.params)), arguments.results))
    except (FileNotFoundError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
