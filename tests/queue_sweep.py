"""A hyperparameter sweep on DVC's own experiment queue, as a teammate runs it (README "Scaling").

Upstream reports that `dvc queue start -j N` with N > 1 sometimes fails experiments or leaves them
queued (treeverse/dvc#10673, #10562, #8763); tests/test_team_workflow.py runs this grid on two
workers and checks every experiment. The grid is learning rate x first dropout rate of `fmnist_3`,
each experiment on one seed of the study's list, targeting the study's aggregate: the experiment
trains and evaluates fmnist_3 and compares it (the other models' runs of that seed come from the
cache), so `dvc exp show` has the study's metrics, plots/fashion_cnns/summary.json, to rank on.
"""
from __future__ import annotations

import csv
import io
import itertools
import json
import re
import time
from pathlib import Path

from cnn_comparison.layout import run_directory
from cnn_comparison.params import load_params
from project_copies import dvc, run, write_params

MODEL = "fmnist_3"
STUDY = "fashion_cnns"  # the study that lists fmnist_3 in params.yaml
HEAD = "fashion"  # a single-task model's one head is named after its dataset
LEARNING_RATE = f"models.{MODEL}.training.learning_rate"
DROPOUT = f"models.{MODEL}.layers.3.rate"  # the first dropout layer of fmnist_3
# Seeds are the study's list, not a recipe key: each experiment runs the study on the one seed
# `[<seed>]`, and the stages and results directory of fmnist_3 carry that seed in their names.
SEEDS = f"studies.{STUDY}.seeds"
# Two experiments, one per queue worker; a second dropout rate would double the test's minutes.
GRID = {LEARNING_RATE: [0.0005, 0.002], DROPOUT: [0.4]}


TARGET = f"aggregate@{STUDY}"  # and what it needs: fmnist_3's changed runs; the rest is up to date
SUMMARY = f"plots/{STUDY}/summary.json"  # the study's DVC metric


def results_directory(seed: int) -> str:
    """``metrics/fashion_cnns/fmnist_3/seed_<seed>``: the experiment's run of fmnist_3."""
    return run_directory(Path("metrics") / STUDY, MODEL, seed).as_posix()


# fmnist_3's validation accuracy (of its saved weights, mean over the experiment's seeds), as `dvc
# exp show` names it. Experiments are ranked on the validation split, never on the test set: picking
# the best of many by test accuracy would overstate the winner's test accuracy.
RANKING_METRIC = f"{SUMMARY}:{MODEL}.val_accuracy"

STATUSES = {"Queued", "Running", "Success", "Failed"}  # as `dvc queue status` prints them
FINISHED = {"Success", "Failed"}


def queue_grid(project: Path, env: dict, seed: int) -> list[str]:
    """Queue the grid (one experiment per combination); return the names DVC gave them."""
    overrides = [argument for key, values in GRID.items()
                 for argument in ("-S", f"{key}={','.join(str(value) for value in values)}")]
    # `[<seed>]` is one list value for Hydra's override grammar (`a,b` would be a sweep).
    output = run(dvc("exp", "run", "--queue", TARGET, *overrides, "-S", f"{SEEDS}=[{seed}]"), project, env)
    names = re.findall(r"Queued experiment '([^']+)'", output)
    assert len(names) == len(list(itertools.product(*GRID.values()))), output
    return names


def set_params(params_path: Path, values: dict[str, object]) -> None:
    """Set dotted keys as `-S` does (``models.fmnist_3.layers.3.rate``: list items by index) and rewrite
    params.yaml in the test project's layout: a teammate asking for an experiment's params by hand."""
    params = load_params(params_path)
    for key, value in values.items():
        *path, last = key.split(".")
        node = params
        for part in path:
            node = node[int(part)] if isinstance(node, list) else node[part]
        node[int(last) if isinstance(node, list) else last] = value
    write_params(params_path, params)


def queue_statuses(project: Path, env: dict) -> dict[str, str]:
    """Experiment name -> status from `dvc queue status` (Queued, Running, Success, Failed)."""
    statuses = {}
    for line in run(dvc("queue", "status"), project, env).splitlines():
        fields = line.split()
        if len(fields) >= 3 and re.fullmatch(r"[0-9a-f]{7}", fields[0]) and fields[-1] in STATUSES:
            statuses[fields[1]] = fields[-1]
    return statuses


# `dvc queue status` costs over a second of CPU, taken from the experiments it waits for; a git ref
# per finished experiment is a cheap sign to look for every second, and a failure (no ref) is still
# seen within STATUS_EVERY_SECONDS.
STATUS_EVERY_SECONDS = 15


def experiment_references(project: Path, env: dict) -> dict[str, str]:
    """Experiment name -> its git ref (`refs/exps/.../<name>`), for those that ran to the end."""
    listed = run(["git", "for-each-ref", "--format=%(refname)", "refs/exps"], project, env)
    return {reference.rsplit("/", 1)[-1]: reference for reference in listed.split()}


def run_queue(project: Path, env: dict, names: list[str], workers: int, timeout_seconds: float) -> float:
    """Start `workers` queue workers and wait until every one of `names` has finished; return seconds."""
    start = time.perf_counter()
    run(dvc("queue", "start", "-j", str(workers)), project, env)
    asked = start
    while True:
        now = time.perf_counter()
        if set(names) <= experiment_references(project, env).keys() or now - asked >= STATUS_EVERY_SECONDS:
            asked = now
            statuses = queue_statuses(project, env)
            if all(statuses.get(name) in FINISHED for name in names):
                return time.perf_counter() - start
            if now - start > timeout_seconds:
                raise TimeoutError(f"queue not finished after {timeout_seconds:.0f} s: {statuses}")
        time.sleep(1)


def shown_experiments(project: Path, env: dict) -> dict[str, dict]:
    """What `dvc exp show` lists: name -> learning rate, dropout rate, seed, validation and test accuracy."""
    baselines = json.loads(run(dvc("exp", "show", "--json"), project, env))
    shown = {}
    for baseline in baselines:
        for experiment in baseline.get("experiments") or []:
            revision = experiment["revs"][0]
            data = revision.get("data") or {}
            params = data.get("params", {}).get("params.yaml", {}).get("data", {})
            model = params.get("models", {}).get(MODEL, {})
            seeds = params.get("studies", {}).get(STUDY, {}).get("seeds") or []
            seed = seeds[0] if len(seeds) == 1 else None  # the sweep runs one seed per experiment
            summary = data.get("metrics", {}).get(SUMMARY, {}).get("data", {}).get(MODEL, {})
            shown[experiment["name"]] = {
                "learning_rate": model.get("training", {}).get("learning_rate"),
                "dropout": (model.get("layers") or [{}] * 4)[3].get("rate"),
                "seed": seed,
                "validation_accuracy": summary.get("val_accuracy"),
                "accuracy": summary.get("accuracy"),
            }
    return shown


def ranked_experiments(project: Path, env: dict) -> list[str]:
    """Every experiment, best validation accuracy first, as `dvc exp show --sort-by` orders them."""
    table = run(dvc("exp", "show", "--sort-by", RANKING_METRIC, "--sort-order", "desc", "--csv"), project, env)
    # Baseline rows (workspace, the branch) have no experiment name.
    return [row["Experiment"] for row in csv.DictReader(io.StringIO(table)) if row["Experiment"]]
