"""Does rerunning committed stages give the committed numbers? The bit-for-bit check of issue #23.

Usage: python -m devtools.check_reproduction RUN... [--aggregate STUDY...]
       RUN is <study>@<model>-<seed>, e.g. fashion_cnns@fmnist_3-42 (its train and evaluate stages)

Keeps the run's current files (model weights, training log, evaluation metrics) and the study's
aggregate table, reruns the stages with `dvc repro -f -s`, and compares: the weights array by array
as bytes, the metrics files apart from times and the machine description, the aggregate's table
apart from its time columns. Exit 0 when everything is identical, 1 with the differences.

The workspace then holds the rerun's files, identical but for times: `git checkout -- dvc.lock
metrics plots && dvc checkout` brings back the committed ones.
"""
from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd

from cnn_comparison.layout import LIVE_DIRECTORY, METRICS_FILE, MODEL_FILE, run_directory, stage_name
from cnn_comparison.params import NAME_PATTERN
from cnn_comparison.report import AGGREGATE_TABLE
from devtools.compare_runs import TIMES, differences, without_times

RUN_PATTERN = re.compile(r"^(?P<study>[^@]+)@(?P<model>.+)-(?P<seed>\d+)$")


def parse_run(text: str) -> tuple[str, str, int]:
    """``study@model-seed`` into its parts, each name checked before it reaches a path or a command."""
    match = RUN_PATTERN.match(text)
    if not match or not all(re.fullmatch(NAME_PATTERN, match[key]) for key in ("study", "model")):
        raise ValueError(f"{text!r}: expected <study>@<model>-<seed>, e.g. fashion_cnns@fmnist_3-42")
    return match["study"], match["model"], int(match["seed"])


def leaves(value: Any, prefix: str = "") -> dict[str, Any]:
    """A nested record as ``{"heads.fashion.accuracy": 0.93, ...}``."""
    if not isinstance(value, dict):
        return {prefix: value}
    return {key: leaf for name, item in value.items() for key, leaf in leaves(item, f"{prefix}{name}.").items()} \
        if value else {prefix: value}


def metrics_differences(before: Path, after: Path) -> list[str]:
    """The keys of an evaluate stage's metrics file that differ, times and provenance aside."""
    first, second = (leaves(without_times(json.loads(path.read_text()))) for path in (before, after))
    keys = [key.rstrip(".") for key in sorted(set(first) | set(second)) if first.get(key) != second.get(key)]
    return [f"{after}: {keys} differ"] if keys else []


def table_differences(before: Path, after: Path) -> list[str]:
    """An aggregate table's cells that differ, time columns aside."""
    first, second = (pd.read_csv(path, keep_default_na=False) for path in (before, after))
    columns = [column for column in first.columns if column not in TIMES]
    if list(first.columns) != list(second.columns) or len(first) != len(second):
        return [f"{after}: columns or rows differ"]
    changed = [column for column in columns if not first[column].equals(second[column])]
    return [f"{after}: columns {changed} differ"] if changed else []


def dvc_repro(stage: str) -> None:
    """`dvc repro -f -s stage`, its output shown as it comes."""
    print(f"== dvc repro -f -s {stage}", flush=True)
    subprocess.run([sys.executable, "-m", "dvc", "repro", "-f", "-s", stage], check=True)


def check(runs: list[tuple[str, str, int]], studies: list[str], models_root: Path, metrics_root: Path,
          plots_root: Path) -> list[str]:
    """Rerun each run's train and evaluate stages and each study's aggregate; what differs."""
    found = []
    with tempfile.TemporaryDirectory(prefix="reproduction-") as kept:
        kept = Path(kept)
        for study, model, seed in runs:
            training = run_directory(models_root / study, model, seed)
            evaluation = run_directory(metrics_root / study, model, seed)
            target = kept / study / model / str(seed)
            for path in (training / MODEL_FILE, training / LIVE_DIRECTORY, evaluation / METRICS_FILE):
                if not path.exists():
                    raise FileNotFoundError(f"{path} is missing: run `dvc pull` or `dvc repro` first")
            shutil.copytree(training, target)
            shutil.copy2(evaluation / METRICS_FILE, target / METRICS_FILE)
        for study in studies:
            table = plots_root / study / AGGREGATE_TABLE
            if not table.is_file():
                raise FileNotFoundError(f"{table} is missing: run `dvc repro aggregate@{study}` first")
            (kept / "aggregates" / study).mkdir(parents=True)
            shutil.copy2(table, kept / "aggregates" / study / AGGREGATE_TABLE)
        for study, model, seed in runs:
            dvc_repro(stage_name("train", study, model, seed))
            dvc_repro(stage_name("evaluate", study, model, seed))
            before = kept / study / model / str(seed)
            found += [f"{study}@{model}-{seed}: {difference}"
                      for difference in differences(before, run_directory(models_root / study, model, seed))]
            found += metrics_differences(before / METRICS_FILE,
                                         run_directory(metrics_root / study, model, seed) / METRICS_FILE)
        for study in studies:
            dvc_repro(f"aggregate@{study}")
            found += table_differences(kept / "aggregates" / study / AGGREGATE_TABLE,
                                       plots_root / study / AGGREGATE_TABLE)
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="*", help="<study>@<model>-<seed>")
    parser.add_argument("--aggregate", nargs="+", default=[], metavar="STUDY",
                        help="also rerun these studies' aggregate and compare its table")
    parser.add_argument("--models", type=Path, default=Path("models"))
    parser.add_argument("--metrics", type=Path, default=Path("metrics"))
    parser.add_argument("--plots", type=Path, default=Path("plots"))
    arguments = parser.parse_args(argv)
    try:
        runs = [parse_run(text) for text in arguments.runs]
        for study in arguments.aggregate:
            if not re.fullmatch(NAME_PATTERN, study):
                raise ValueError(f"--aggregate {study!r}: not a study name")
        if not runs and not arguments.aggregate:
            raise ValueError("name at least one run or --aggregate study")
        found = check(runs, arguments.aggregate, arguments.models, arguments.metrics, arguments.plots)
    except (ValueError, FileNotFoundError, subprocess.CalledProcessError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if found:
        print("different:\n  " + "\n  ".join(found))
        return 1
    print(f"identical: {len(runs)} runs and {len(arguments.aggregate)} aggregates reproduced bit for bit "
          "(times aside). `git checkout -- dvc.lock metrics plots && dvc checkout` restores the committed files.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
