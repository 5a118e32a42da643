"""A hyperparameter sweep on DVC's own experiment queue, timed with 1 and 2 workers.

Upstream reports that `dvc queue start -j N` with N > 1 sometimes fails experiments or leaves
them queued (treeverse/dvc#10673, #10562, #8763). This measures it on our pipeline: a temporary
copy of the project with small limits runs the baseline once; each round queues the same 2x2
grid (learning rate x first dropout rate of `fmnist_3`, with a new seed per round so DVC's run
cache cannot answer from an earlier round) and runs it with `dvc queue start -j N`, alternating
the worker counts so that machine noise hits both. Every round records the experiments queued,
their final queue status and whether `dvc exp show` lists them with metrics.
tests/test_team_workflow.py runs the same functions on 2 workers in a teammate's fresh clone.

Usage: python benchmarks/queue_sweep.py [--rounds 3] [--workers 1 2] [--output-dir benchmarks/results]
"""
from __future__ import annotations

import argparse
import csv
import datetime
import io
import itertools
import json
import os
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT_ROOT))  # devtools/, when run as `python benchmarks/queue_sweep.py`
from devtools.project_copies import SMALL_LIMITS, copy_project, dvc, git, run, tool_environment  # noqa: E402

from cnn_comparison import atomic  # noqa: E402
from cnn_comparison.layout import LIVE_DIRECTORY, METRICS_FILE, run_directory  # noqa: E402
from cnn_comparison.provenance import library_versions  # noqa: E402

MODEL = "fmnist_3"
STUDY = "fashion_cnns"  # the study that lists fmnist_3 in params.yaml
HEAD = "fashion"  # a single-task model's one head is named after its dataset
LEARNING_RATE = f"models.{MODEL}.training.learning_rate"
DROPOUT = f"models.{MODEL}.layers.3.rate"  # the first dropout layer of fmnist_3
# Seeds are the study's list, not a recipe key: each experiment runs the study on the one seed
# `[<seed>]`, and the stages and results directory of fmnist_3 carry that seed in their names.
SEEDS = f"studies.{STUDY}.seeds"
GRID = {LEARNING_RATE: [0.0005, 0.002], DROPOUT: [0.1, 0.4]}


def target(seed: int) -> str:
    """`evaluate_fashion_cnns@fmnist_3-<seed>`: it and its train stage; data stages come from the cache."""
    return f"evaluate_{STUDY}@{MODEL}-{seed}"


def results_directory(seed: int) -> str:
    """``results/fashion_cnns/fmnist_3/seed_<seed>``: the experiment's run of fmnist_3."""
    return run_directory(Path("results") / STUDY, MODEL, seed).as_posix()


def ranking_metric(seed: int) -> str:
    """DVCLive's last-epoch validation accuracy of the run with ``seed``, as `dvc exp show` names it.

    Experiments are ranked on the validation split, never on the test set: picking the best of
    many by test accuracy would overstate the winner's test accuracy.
    """
    return f"{results_directory(seed)}/{LIVE_DIRECTORY}/metrics.json:eval.accuracy"

STATUSES = {"Queued", "Running", "Success", "Failed"}  # as `dvc queue status` prints them
FINISHED = {"Success", "Failed"}


def prepare_project(destination: Path) -> tuple[Path, dict]:
    """A project copy (small limits) with the whole pipeline run and committed, as a user's would be.

    The whole pipeline, not only the swept model: `dvc exp apply` checks out every output.
    """
    project = copy_project(PROJECT_ROOT, destination)
    env = tool_environment()
    run(dvc("repro"), project, env)
    run(git("add", "-A"), project, env)
    run(git("commit", "-qm", "baseline: the pipeline with small limits"), project, env)
    return project, env


def queue_grid(project: Path, env: dict, seed: int) -> list[str]:
    """Queue the grid (one experiment per combination); return the names DVC gave them."""
    overrides = [argument for key, values in GRID.items()
                 for argument in ("-S", f"{key}={','.join(str(value) for value in values)}")]
    # `[<seed>]` is one list value for Hydra's override grammar (`a,b` would be a sweep).
    output = run(dvc("exp", "run", "--queue", target(seed), *overrides, "-S", f"{SEEDS}=[{seed}]"), project, env)
    names = re.findall(r"Queued experiment '([^']+)'", output)
    assert len(names) == len(list(itertools.product(*GRID.values()))), output
    return names


def queue_statuses(project: Path, env: dict) -> dict[str, str]:
    """Experiment name -> status from `dvc queue status` (Queued, Running, Success, Failed)."""
    statuses = {}
    for line in run(dvc("queue", "status"), project, env).splitlines():
        fields = line.split()
        if len(fields) >= 3 and re.fullmatch(r"[0-9a-f]{7}", fields[0]) and fields[-1] in STATUSES:
            statuses[fields[1]] = fields[-1]
    return statuses


def run_queue(project: Path, env: dict, names: list[str], workers: int, timeout_seconds: float) -> float:
    """Start `workers` queue workers and wait until every one of `names` has finished; return seconds."""
    start = time.perf_counter()
    run(dvc("queue", "start", "-j", str(workers)), project, env)
    while True:
        statuses = queue_statuses(project, env)
        if all(statuses.get(name) in FINISHED for name in names):
            return time.perf_counter() - start
        if time.perf_counter() - start > timeout_seconds:
            raise TimeoutError(f"queue not finished after {timeout_seconds:.0f} s: {statuses}")
        time.sleep(2)


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
            metrics = data.get("metrics", {})
            results = results_directory(seed)
            test = metrics.get(f"{results}/{METRICS_FILE}", {}).get("data", {})
            training_log = metrics.get(f"{results}/{LIVE_DIRECTORY}/metrics.json", {}).get("data", {})
            shown[experiment["name"]] = {
                "learning_rate": model.get("training", {}).get("learning_rate"),
                "dropout": (model.get("layers") or [{}] * 4)[3].get("rate"),
                "seed": seed,
                "validation_accuracy": training_log.get("eval", {}).get("accuracy"),
                "accuracy": test.get("heads", {}).get(HEAD, {}).get("accuracy"),
            }
    return shown


def ranked_experiments(project: Path, env: dict, seed: int) -> list[str]:
    """The experiments run on ``seed``, best validation accuracy first, as `dvc exp show --sort-by` orders them.

    Each seed writes its own results directory, so one sort column ranks one seed's experiments.
    """
    metric = ranking_metric(seed)
    table = run(dvc("exp", "show", "--sort-by", metric, "--sort-order", "desc", "--csv"), project, env)
    # Baseline rows (workspace, the branch) have no experiment name; other seeds' rows have no value.
    return [row["Experiment"] for row in csv.DictReader(io.StringIO(table)) if row["Experiment"] and row.get(metric)]


def measure(rounds: int, worker_counts: list[int], workdir: Path, timeout_seconds: float) -> dict:
    project, env = prepare_project(workdir / "project")
    results = []
    for round_index in range(rounds):
        order = worker_counts if round_index % 2 == 0 else list(reversed(worker_counts))
        for workers in order:
            seed = 1000 + len(results)
            names = queue_grid(project, env, seed)
            seconds = run_queue(project, env, names, workers, timeout_seconds)
            statuses = queue_statuses(project, env)
            shown = shown_experiments(project, env)
            result = {
                "round": round_index + 1, "workers": workers, "seed": seed, "seconds": round(seconds, 1),
                "queued": len(names),
                "succeeded": sum(statuses.get(name) == "Success" for name in names),
                "shown_with_metrics": sum(shown.get(name, {}).get("accuracy") is not None for name in names),
            }
            results.append(result)
            print(json.dumps(result), flush=True)
    shown = shown_experiments(project, env)
    # The best of each round's ranking, then the best of those (each round has its own seed).
    leaders = [ranking[0] for ranking in (ranked_experiments(project, env, result["seed"]) for result in results)
               if ranking]
    best = max(leaders, key=lambda name: shown[name]["validation_accuracy"])
    summary = {}
    for workers in worker_counts:
        mine = [result for result in results if result["workers"] == workers]
        seconds = [result["seconds"] for result in mine]
        summary[str(workers)] = {
            "rounds": len(mine), "experiments": sum(result["queued"] for result in mine),
            "succeeded": sum(result["succeeded"] for result in mine),
            "shown_with_metrics": sum(result["shown_with_metrics"] for result in mine),
            "median_seconds_per_grid": round(statistics.median(seconds), 1),
            "min_seconds": min(seconds), "max_seconds": max(seconds),
        }
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "cpu_count": os.cpu_count(), "model": MODEL, "grid": GRID, "target": target("<seed>"),
        "limits": SMALL_LIMITS,
        "library_versions": library_versions(), "rounds": results, "summary": summary,
        "best_by_validation_accuracy": {"name": best, **shown[best]},
    }


def markdown(report: dict) -> str:
    lines = [
        f"Queue sweep, {report['date']}, {report['cpu_count']} CPU cores: a 2x2 grid of `{report['model']}` "
        f"(learning rate x first dropout rate, limits {report['limits']}) per round.",
        "",
        "| workers | rounds | experiments | succeeded | shown with metrics | median s per grid | min-max s |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for workers, row in report["summary"].items():
        lines.append(f"| {workers} | {row['rounds']} | {row['experiments']} | {row['succeeded']} | "
                     f"{row['shown_with_metrics']} | {row['median_seconds_per_grid']} | "
                     f"{row['min_seconds']}-{row['max_seconds']} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--timeout-seconds", type=float, default=900)
    parser.add_argument("--output-dir", type=Path, default=PROJECT_ROOT / "benchmarks" / "results")
    arguments = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="queue-sweep-") as workdir:
        report = measure(arguments.rounds, arguments.workers, Path(workdir), arguments.timeout_seconds)
    arguments.output_dir.mkdir(parents=True, exist_ok=True)
    atomic.write_text(arguments.output_dir / "queue_sweep.json", json.dumps(report, indent=2) + "\n")
    atomic.write_text(arguments.output_dir / "queue_sweep.md", markdown(report))
    print(markdown(report))
    failed = any(row["succeeded"] < row["experiments"] or row["shown_with_metrics"] < row["experiments"]
                 for row in report["summary"].values())
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
