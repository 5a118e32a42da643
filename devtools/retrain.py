"""Retrain stages one at a time and commit each as it finishes, so a stopped session loses at most
the stage in progress (hours of CPU go into a full retraining; see docs/pipeline.md).

Usage: python -m devtools.retrain STAGE... [--message TEXT]
       e.g. python -m devtools.retrain train_fashion_cnns@fmnist_1-42 evaluate_fashion_cnns@fmnist_1-42
       python -m devtools.retrain --stale   (every stage `dvc status` calls stale, in stale_in_order's order)

For each stage in the order given: skip it if `dvc status` calls it up to date, otherwise
`dvc repro -s` it and commit `dvc.lock`, `metrics`, `plots` and docs/results.md with a message
naming the stage and the code's commit (list `aggregate@<study>` and `report` last to refresh them;
`--stale` always ends with `report`). After an evaluate stage the `report` stage runs too, before
the commit, so every commit's docs/results.md is what the report makes of that commit's results.
Stops at the first stage that fails. Sent SIGTERM (a session ending), it stops DVC and the stage
in progress, which saves nothing; a SIGTERM during a commit waits for the commit to finish. Every
name is checked against `dvc stage list` before anything runs. With a default DVC remote
(`dvc remote add -d`), each committed stage's cached outputs (data, models and train's logs) are
pushed at once; without one they live only in this machine's cache, and a machine that is not
kept loses them (warned at the start). Metrics, the copies of the training logs and comparisons
are in the commits either way.
"""
from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

COMMITTED_PATHS = ("dvc.lock", "metrics", "plots", "docs/results.md", "params.schema.json")
REPORT = "report"  # docs/results.md, from every study's runs and comparison


def dvc(*arguments: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "dvc", *arguments], capture_output=True, text=True)


def repro(stage: str) -> int:
    """`dvc repro -s stage`, its output shown as it comes. If this process is stopped, DVC gets
    SIGTERM and stops the stage (which saves nothing), instead of training on with no one to commit."""
    process = subprocess.Popen([sys.executable, "-m", "dvc", "repro", "-s", stage])
    try:
        return process.wait()
    except BaseException:
        process.terminate()
        process.wait()
        raise


def git(*arguments: str) -> subprocess.CompletedProcess:
    return subprocess.run(["git", *arguments], capture_output=True, text=True)


def listed_stages() -> list[str]:
    """Every stage of dvc.yaml, in its order."""
    listed = dvc("stage", "list", "--name-only")
    if listed.returncode != 0:
        raise RuntimeError(f"`dvc stage list` failed: {listed.stderr.strip()}")
    return listed.stdout.split()



def up_to_date(stage: str) -> bool:
    """The stage alone (not its upstream): an empty status means its lock entry matches the workspace."""
    status = dvc("status", "--json", stage)
    return status.returncode == 0 and json.loads(status.stdout or "{}") == {}


def stale_in_order(stages: list[str], stale: set[str]) -> list[str]:
    """The stale ones of ``stages`` (dvc.yaml's order): the data stages first, then each run's train
    followed by its evaluate, so a stop leaves whole runs committed, then the aggregates and the
    report, which need every run."""
    wanted = [stage for stage in stages if stage in stale]
    last = [stage for stage in wanted if stage.startswith("aggregate@")] + [stage for stage in wanted if stage == "report"]
    runs = [stage for stage in wanted if stage.startswith(("train_", "evaluate_"))]
    ordered = [stage for stage in wanted if stage not in last and stage not in runs]
    for stage in runs:
        if stage.startswith("train_"):
            evaluate = "evaluate_" + stage.removeprefix("train_")
            ordered += [stage] + ([evaluate] if evaluate in stale else [])
        elif stage not in ordered:  # an evaluate whose train is up to date
            ordered.append(stage)
    return ordered + last


def with_report_last(ordered: list[str], stages: set[str]) -> list[str]:
    """``ordered`` ending with `report`: an aggregate rerun makes it stale only once it has run."""
    return [stage for stage in ordered if stage != REPORT] + ([REPORT] if REPORT in stages else [])


def stale_stages() -> set[str]:
    status = dvc("status", "--json")
    if status.returncode != 0:
        raise RuntimeError(f"`dvc status` failed: {status.stderr.strip()}")
    return set(json.loads(status.stdout or "{}"))


def commit(stage: str, message: str, code: str) -> None:
    """Commit the stage's results; retried, as another git command may hold the index for a moment."""
    existing = [path for path in COMMITTED_PATHS if Path(path).exists()]
    for attempt in range(5):
        added = git("add", "--", *existing)
        done = git("commit", "-q", "-m", f"{message}: {stage} by {code}", "--", *existing)
        if added.returncode == 0 and done.returncode == 0:
            return
        if "nothing to commit" in done.stdout + done.stderr:
            return
        time.sleep(5)
    raise RuntimeError(f"git commit failed for {stage}: {done.stderr.strip() or done.stdout.strip()}")


def default_remote() -> str | None:
    """The default DVC remote's name, or None when there is none."""
    found = dvc("remote", "default")  # exits 1 with "No default remote set"
    name = found.stdout.strip()
    return name if found.returncode == 0 and name else None


def push(stage: str, remote: str) -> None:
    """Send the stage's cached outputs to the remote; a failure is reported, not fatal (they are committed)."""
    pushed = dvc("push", "-q", stage)
    if pushed.returncode == 0:
        say(f"pushed {stage} to {remote}")
    else:
        say(f"PUSH FAILED for {stage} ({(pushed.stderr or pushed.stdout).strip()[-300:]}); "
            f"run `dvc push {stage}` later")


def say(text: str) -> None:
    print(f"== {datetime.now():%H:%M:%S} {text}", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("stages", nargs="*", metavar="STAGE")
    parser.add_argument("--stale", action="store_true", help="every stale stage, runs first, aggregates and report last")
    parser.add_argument("--message", default="retrained on full data", help="commit message, before ': STAGE by CODE'")
    arguments = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda number, frame: sys.exit(128 + number))
    if arguments.stale == bool(arguments.stages):
        print("error: name the stages to retrain, or give --stale (not both)", file=sys.stderr)
        return 2
    try:
        listed = listed_stages()
        stages = set(listed)
        if arguments.stale:
            arguments.stages = with_report_last(stale_in_order(listed, stale_stages()), stages)
            say(f"{len(arguments.stages)} stale stages: {' '.join(arguments.stages)}")
    except RuntimeError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    unknown = [stage for stage in arguments.stages if stage not in stages]
    if unknown:
        print(f"error: not stages of dvc.yaml: {unknown}; `dvc stage list` names them", file=sys.stderr)
        return 2
    code = git("rev-parse", "--short", "HEAD").stdout.strip() or "uncommitted code"
    remote = default_remote()
    if remote is None:
        say("warning: no default DVC remote, so the models stay in this machine's cache only (results and "
            "comparisons are committed); `dvc remote add -d NAME URL` to push each stage as it is committed")
    for stage in arguments.stages:
        if up_to_date(stage):
            say(f"{stage}: up to date, skipped")
            continue
        say(f"start {stage}")
        started = time.monotonic()
        try:
            status = repro(stage)
        except SystemExit:
            say(f"stopped during {stage}; the stages before it are committed")
            raise
        if status != 0:
            say(f"FAILED {stage}: nothing committed for it; the stages before it are committed")
            return 1
        say(f"done {stage} in {time.monotonic() - started:,.0f} s")
        # A stop now waits until the finished stage is committed, so no half-made commit is left.
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
        if stage.startswith("evaluate_") and REPORT in stages:  # its numbers in docs/results.md, same commit
            refreshed = repro(REPORT) == 0  # seconds
            say(f"refreshed {REPORT}" if refreshed else f"warning: {REPORT} failed after {stage}; "
                f"docs/results.md is not refreshed in its commit")
        try:
            commit(stage, arguments.message, code)
        except RuntimeError as error:
            print(f"error: {error}", file=sys.stderr)
            return 1
        say(f"committed {stage}")
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})
        if remote is not None:
            push(stage, remote)
    say("all stages done")
    return 0


if __name__ == "__main__":
    sys.exit(main())
