"""Does rerunning committed stages give the committed files? The bit-for-bit check of issues #23 and #33.

Usage: python -m devtools.check_reproduction RUN... [--aggregate STUDY...]
       RUN is <study>@<model>-<seed>, e.g. fashion_cnns@fmnist_3-42 (its train and evaluate stages)

Reruns each run's stages with `dvc repro -f -s` and compares every output with what HEAD holds:
git-tracked results file by file (metrics.json key by key, provenance included), DVC-cached ones
(model.keras, the training log) by the hash HEAD's dvc.lock records, so no DVC cache or remote is
needed. Only timings.json (seconds and the machine) may differ. For an aggregate, the table is
compared apart from its time columns. Exit 0 when everything is identical, 1 with the differences.
The data stages' outputs must be in the workspace (`dvc pull`, or `dvc repro split@fashion ...`).

The workspace then holds the rerun's files: `git checkout -- dvc.lock metrics plots && dvc checkout`
brings back the committed ones.
"""
from __future__ import annotations

import argparse
import io
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from cnn_comparison.layout import TIMED_KEYS, TIMINGS_FILE, stage_name
from cnn_comparison.params import NAME_PATTERN
from cnn_comparison.report import AGGREGATE_TABLE

RUN_PATTERN = re.compile(r"^(?P<study>[^@]+)@(?P<model>.+)-(?P<seed>\d+)$")
TIME_COLUMNS = set(TIMED_KEYS)  # seconds and a host's speed, from timings.json: they differ between reruns


def parse_run(text: str) -> tuple[str, str, int]:
    """``study@model-seed`` into its parts, each name checked before it reaches a path or a command."""
    match = RUN_PATTERN.match(text)
    if not match or not all(re.fullmatch(NAME_PATTERN, match[key]) for key in ("study", "model")):
        raise ValueError(f"{text!r}: expected <study>@<model>-<seed>, e.g. fashion_cnns@fmnist_3-42")
    return match["study"], match["model"], int(match["seed"])


def leaves(value: Any, prefix: str = "") -> dict[str, Any]:
    """A nested record as ``{"heads.fashion.accuracy": 0.93, ...}`` (list items by index)."""
    if isinstance(value, list):
        value = {str(index): item for index, item in enumerate(value)}
    if not isinstance(value, dict) or not value:
        return {prefix.rstrip("."): value}
    return {key: leaf for name, item in value.items() for key, leaf in leaves(item, f"{prefix}{name}.").items()}


def git(*arguments: str) -> subprocess.CompletedProcess:
    return subprocess.run(["git", *arguments], capture_output=True, check=False)


def committed_files(path: str) -> dict[str, bytes]:
    """The files HEAD holds at or under ``path`` (git-tracked results)."""
    names = git("ls-tree", "-r", "--name-only", "HEAD", "--", path).stdout.decode().splitlines()
    return {name: git("show", f"HEAD:{name}").stdout for name in names}


def lock_outs(lock_text: str, stage: str) -> dict[str, str]:
    """Output path -> hash of ``stage`` in a dvc.lock."""
    entry = (yaml.safe_load(lock_text) or {}).get("stages", {}).get(stage)
    if entry is None:
        raise ValueError(f"HEAD's dvc.lock has no stage {stage}: nothing committed to compare with")
    return {out["path"]: out.get("md5") for out in entry.get("outs", [])}


def file_differences(name: str, before: bytes, after: Path) -> list[str]:
    if not after.is_file():
        return [f"{name}: missing after the rerun"]
    if after.read_bytes() == before:
        return []
    if name.endswith(".json"):
        first, second = leaves(json.loads(before)), leaves(json.loads(after.read_text()))
        keys = sorted(key for key in set(first) | set(second) if first.get(key) != second.get(key))
        return [f"{name}: {keys} differ"]
    return [f"{name}: differs"]


def stage_differences(stage: str, committed_lock: str) -> list[str]:
    """Rerun ``stage``; each output that differs from HEAD's, timings aside."""
    outs = lock_outs(committed_lock, stage)
    print(f"== dvc repro -f -s {stage}", flush=True)
    subprocess.run([sys.executable, "-m", "dvc", "repro", "-f", "-s", stage], check=True)
    rerun = lock_outs(Path("dvc.lock").read_text(), stage)
    found = []
    for path, md5 in outs.items():
        if Path(path).name == TIMINGS_FILE:
            continue
        tracked = committed_files(path)
        if tracked:  # a git-tracked result: compare the files themselves
            found += [difference for name, content in tracked.items()
                      for difference in file_differences(name, content, Path(name))]
        elif rerun.get(path) != md5:  # DVC-cached: the hash HEAD's dvc.lock records
            found.append(f"{path}: md5 {rerun.get(path)} against the committed {md5}")
    return found


def table_differences(name: str, before: bytes, after: Path) -> list[str]:
    """An aggregate table's cells that differ, time columns aside."""
    first, second = (pd.read_csv(source, keep_default_na=False) for source in (io.BytesIO(before), after))
    if list(first.columns) != list(second.columns) or len(first) != len(second):
        return [f"{name}: columns or rows differ"]
    changed = [column for column in first.columns if column not in TIME_COLUMNS and not first[column].equals(second[column])]
    return [f"{name}: columns {changed} differ"] if changed else []


def check(runs: list[tuple[str, str, int]], studies: list[str], plots_root: Path) -> list[str]:
    """Rerun each run's train and evaluate stages and each study's aggregate; what differs from HEAD."""
    committed_lock = git("show", "HEAD:dvc.lock").stdout.decode()
    tables = {study: committed_files((plots_root / study / AGGREGATE_TABLE).as_posix()) for study in studies}
    found = []
    for study, model, seed in runs:
        for step in ("train", "evaluate"):
            found += stage_differences(stage_name(step, study, model, seed), committed_lock)
    for study in studies:
        if not tables[study]:
            raise ValueError(f"HEAD has no {plots_root / study / AGGREGATE_TABLE}: nothing committed to compare with")
        print(f"== dvc repro -f -s aggregate@{study}", flush=True)
        subprocess.run([sys.executable, "-m", "dvc", "repro", "-f", "-s", f"aggregate@{study}"], check=True)
        found += [difference for name, content in tables[study].items()
                  for difference in table_differences(name, content, Path(name))]
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="*", help="<study>@<model>-<seed>")
    parser.add_argument("--aggregate", nargs="+", default=[], metavar="STUDY",
                        help="also rerun these studies' aggregate and compare its table")
    parser.add_argument("--plots", type=Path, default=Path("plots"))
    arguments = parser.parse_args(argv)
    try:
        runs = [parse_run(text) for text in arguments.runs]
        for study in arguments.aggregate:
            if not re.fullmatch(NAME_PATTERN, study):
                raise ValueError(f"--aggregate {study!r}: not a study name")
        if not runs and not arguments.aggregate:
            raise ValueError("name at least one run or --aggregate study")
        found = check(runs, arguments.aggregate, arguments.plots)
    except (ValueError, subprocess.CalledProcessError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if found:
        print("different:\n  " + "\n  ".join(found))
        return 1
    print(f"identical: {len(runs)} runs and {len(arguments.aggregate)} aggregates reproduced HEAD's files bit for bit "
          "(timings aside). `git checkout -- dvc.lock metrics plots && dvc checkout` restores the committed files.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
