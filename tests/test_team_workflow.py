"""The team workflow against real remotes: one clone trains and pushes, fresh clones pull.

A bare git repository plays the team's git server. Clone A runs the pipeline (small limits)
once; the tests then share its results through a local/shared directory, an OpenSSH server and
an S3-compatible server, all on 127.0.0.1, and check that a fresh clone never trains.
"""
from __future__ import annotations

import filecmp
import hashlib
import itertools
import json
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

import queue_sweep
from cnn_comparison.layout import MODEL_FILE, run_directory, stage_name
from cnn_comparison.params import load_params, validated
from project_copies import (copy_run_project, dvc, git, object_path, run, set_value, stages_run,
                           tool_environment)
from servers import openssh_server, s3_server

pytestmark = pytest.mark.end_to_end

BUCKET = "team-dvc"
SWEEP_ROUNDS = 1
SWEEP_WORKERS = 2
TIMINGS: dict[str, float] = {}
PARAMS = validated(load_params(Path(__file__).resolve().parents[1] / "params.yaml"))
AGGREGATE = "aggregate@fashion_cnns"
REPORT = "report"  # docs/results.md: reruns whenever a model's params or results change


def first_seed(model: str) -> int:
    """The seed of a model's run that `artifacts:` points at: its study's first (the tests' copy keeps it)."""
    return PARAMS.studies[PARAMS.study_of(model)].seeds[0]


def stage(step: str, model: str, seed: int | None = None) -> str:
    """A run's stage name in dvc.yaml, e.g. `train_fashion_cnns@fmnist_3-42` (the first seed by default)."""
    return stage_name(step, PARAMS.study_of(model), model, first_seed(model) if seed is None else seed)


def model_file(model: str) -> str:
    """Where a model's first-seed run keeps its weights (models/<study>/<model>/seed_<seed>/model.keras)."""
    return (run_directory(Path("models") / PARAMS.study_of(model), model, first_seed(model)) / MODEL_FILE).as_posix()


def timed(name: str, command: list[str], cwd: Path, env: dict, check: bool = True) -> str:
    start = time.perf_counter()
    output = run(command, cwd, env, check=check)
    TIMINGS[name] = round(time.perf_counter() - start, 1)
    return output


@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    root = tmp_path_factory.mktemp("servers")
    with openssh_server(root / "ssh") as ssh, s3_server(BUCKET) as s3:
        yield {"ssh": ssh, "s3": s3, "root": root}


@pytest.fixture(scope="module")
def team(tmp_path_factory, small_pipeline_run, servers):
    """Clone A: remotes configured (credentials only in config.local/env), pipeline run, pushed to git.

    Clone A is a copy of the session's small-limits run (conftest.py), so its `dvc repro` has nothing
    left to do.
    """
    root = tmp_path_factory.mktemp("team")
    origin = root / "origin.git"
    env = tool_environment(HOME=servers["ssh"]["home"], **servers["s3"]["credentials"])
    run(["git", "init", "-q", "--bare", "-b", "main", str(origin)], root, env)
    run_project, run_output = small_pipeline_run
    assert stage("train", "fmnist_4") in stages_run(run_output)
    clone_a = copy_run_project(run_project, root / "a")
    run(["git", "remote", "add", "origin", str(origin)], clone_a, env)
    ssh = servers["ssh"]
    remotes = {
        "team": str(root / "shared-directory"),
        "ssh": f"ssh://{ssh['user']}@127.0.0.1:{ssh['port']}{root / 'ssh-storage'}",
        "s3": f"s3://{BUCKET}/dvc-cache",
    }
    # What `dvc remote add [--default] NAME URL`, `dvc remote modify NAME endpointurl|verify ...` and
    # `dvc remote modify --local ssh keyfile ...` write (docs/team.md), in one go: each command costs a
    # second or two of DVC start-up, for every worker.
    sections = [f"['remote \"{name}\"']\n    url = {url}\n    verify = true\n" for name, url in remotes.items()]
    sections[2] += f"    endpointurl = {servers['s3']['endpoint']}\n"
    (clone_a / ".dvc" / "config").write_text("[core]\n    remote = team\n" + "".join(sections))
    (clone_a / ".dvc" / "config.local").write_text(f"['remote \"ssh\"']\n    keyfile = {ssh['keyfile']}\n")
    listed = run(dvc("remote", "list"), clone_a, env)
    assert all(name in listed for name in remotes), listed
    committed_config = (clone_a / ".dvc" / "config").read_text()
    assert "keyfile" not in committed_config and "secret" not in committed_config.lower()
    run(git("add", "-A"), clone_a, env)
    run(git("commit", "-qm", "Run the pipeline"), clone_a, env)
    run(git("push", "-q", "origin", "main"), clone_a, env)
    run(dvc("push"), clone_a, env)  # every test starts from results everyone can pull
    yield {"root": root, "origin": origin, "a": clone_a, "env": env, "remotes": remotes}
    print("\nteam workflow timings (s):", json.dumps(TIMINGS, indent=2))


def fresh_clone(team: dict, name: str) -> Path:
    """A new clone in its own directory: its own, empty DVC cache."""
    clone = team["root"] / name
    run(["git", "clone", "-q", "-b", "main", str(team["origin"]), str(clone)], team["root"], team["env"])
    assert not (clone / ".dvc" / "cache").exists()
    return clone


def lock_outputs(clone: Path, revision: str | None = None) -> dict[str, str]:
    """Output path -> md5 in the work tree's dvc.lock, or in ``revision``'s."""
    text = ((clone / "dvc.lock").read_text() if revision is None
            else run(["git", "show", f"{revision}:dvc.lock"], clone, tool_environment()))
    lock = yaml.safe_load(text)
    return {out["path"]: out["md5"] for stage in lock["stages"].values() for out in stage.get("outs", [])}


def experiment_model(clone: Path, experiment: str, model: str) -> Path:
    """The model file an experiment of ``clone``'s recorded, in ``clone``'s DVC cache (found by its git ref)."""
    reference = queue_sweep.experiment_references(clone, tool_environment())[experiment]
    return object_path(clone / ".dvc" / "cache", lock_outputs(clone, reference)[model_file(model)])


def model_object(team: dict, remote_root: Path, model: str) -> Path:
    return object_path(remote_root, lock_outputs(team["a"])[model_file(model)])


def assert_up_to_date_without_training(clone: Path, reference: Path, env: dict, label: str) -> None:
    started = time.time()
    output = timed(f"{label}: dvc repro", dvc("repro"), clone, env)
    # as `dvc status` would say: no stage changed, nothing restored from the run cache
    assert stages_run(output) == set() and "Data and pipelines are up to date." in output, output
    assert json.loads(run(dvc("metrics", "diff", "--json"), clone, env)) == {}
    head = run(["git", "rev-parse", "HEAD"], clone, env)
    assert head == run(["git", "rev-parse", "HEAD"], reference, env)
    for model in ("fmnist_4", "multitask"):
        pulled = clone / model_file(model)
        assert filecmp.cmp(pulled, reference / model_file(model), shallow=False)
        assert pulled.stat().st_mtime < started, "repro must not have rewritten the pulled model"
    compared = 0
    for metrics in (reference / "metrics").glob("*/*/seed_*/metrics.json"):  # every run of every study
        compared += 1
        assert filecmp.cmp(metrics, clone / metrics.relative_to(reference), shallow=False)
    assert compared >= len(load_params(reference / "params.yaml")["models"]), compared


def test_a_model_is_fetched_by_name_from_the_remote_with_dvc_artifacts_get(team, tmp_path):
    """Anyone with the git URL gets a trained model by name, without a clone or a DVC cache of their own.

    `dvc artifacts get` fetches registered versions: a GTO tag (`gto register`) marks the commit.
    """
    clone_a = team["a"]
    env = {**team["env"], "GIT_COMMITTER_NAME": "test", "GIT_COMMITTER_EMAIL": "test@example.com"}
    run(dvc("push"), clone_a, env)
    run([str(Path(sys.executable).parent / "gto"), "register", "fmnist_4", "--version", "v1.0.0"], clone_a, env)
    run(["git", "push", "-q", "origin", "fmnist_4@v1.0.0"], clone_a, env)
    for version in ([], ["--rev", "v1.0.0"]):
        fetched = tmp_path / f"fmnist_4{''.join(version)}.keras"
        run(dvc("artifacts", "get", str(team["origin"]), "fmnist_4", *version, "-o", str(fetched)), tmp_path, env)
        assert filecmp.cmp(fetched, clone_a / model_file("fmnist_4"), shallow=False)
    missing = subprocess.run(dvc("artifacts", "get", str(team["origin"]), "no_such_model", "-o", str(tmp_path / "x")),
                             cwd=tmp_path, env=env, capture_output=True, text=True)
    assert missing.returncode != 0 and "no_such_model" in missing.stdout + missing.stderr


def test_two_machines_train_different_models_and_a_third_trains_nothing(team):
    """Scaling out: each machine trains one model and shares it through the run cache only."""
    env = team["env"]
    trained = {"machine-1": "fmnist_4", "machine-2": "fmnist_3"}
    # The recipes change in git first; nobody has trained them yet.
    planner = fresh_clone(team, "planner")
    for model in trained.values():
        set_value(planner / "params.yaml", rf"(  {model}:.*?learning_rate: )[0-9.]+", r"\g<1>0.0015")
    run(git("commit", "-qam", "fmnist_4, fmnist_3: learning rate 0.0015"), planner, env)
    run(git("push", "-q", "origin", "main"), planner, env)

    # Two machines at once, one shared remote: `dvc repro --pull train_<study>@X-<seed>`, then push the run cache.
    # Neither commits: the run cache alone carries their work.
    machines = {name: fresh_clone(team, name) for name in trained}
    started = time.perf_counter()
    processes = {
        name: subprocess.Popen(
            f"{shlex.join(dvc('repro', '--pull', stage('train', model)))} && {shlex.join(dvc('push', '--run-cache'))}",
            shell=True, cwd=machines[name], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for name, model in trained.items()}
    outputs = {name: process.communicate(timeout=900)[0] for name, process in processes.items()}
    TIMINGS["two machines: dvc repro --pull train_<study>@X-<seed> + dvc push --run-cache, in parallel"] = round(
        time.perf_counter() - started, 1)
    for name, model in trained.items():
        assert processes[name].returncode == 0, outputs[name][-4000:]
        # data stages were pulled; check_params checks the planner's edit of params.yaml (a second)
        assert stages_run(outputs[name]) == {"check_params", stage("train", model)}, outputs[name]

    # A third machine, clone A (which the later tests compare with), brings in the plan and reproduces
    # the whole study: both trainings come from the run cache, and it commits the study's results.
    third = team["a"]
    run(git("pull", "-q", "--ff-only", "origin", "main"), third, env)
    output = timed("clone A: dvc repro --pull (two models trained elsewhere)", dvc("repro", "--pull"), third, env)
    for model in trained.values():
        assert f"Stage '{stage('train', model)}' is cached - skipping run" in output, output
    assert stages_run(output) == {"check_params", *(stage("evaluate", model) for model in trained.values()), AGGREGATE,
                                  REPORT}, output
    for name, model in trained.items():
        assert filecmp.cmp(third / model_file(model), machines[name] / model_file(model),
                           shallow=False)
    assert "Data and pipelines are up to date" in run(dvc("status"), third, env)
    run(git("add", "-A"), third, env)
    run(git("commit", "-qm", "Results of fmnist_4 and fmnist_3, trained on machines 1 and 2"), third, env)
    run(git("push", "-q", "origin", "main"), third, env)
    run(dvc("push"), third, env)


def test_a_sweep_on_the_queue_with_two_workers_is_shared_and_its_best_applied(team):
    """A teammate's sweep on DVC's queue (README "Scaling"), in a fresh clone with the pulled results;
    a colleague gets one of its experiments through git and its training through the run cache
    (docs/team.md, "experiments" and "How the run cache avoids retraining"); the best is applied.

    Upstream reports intermittent failures with several workers; the grid runs once here (about
    a minute of CI per round; the timing of 1 against 2 workers in docs/team.md was measured with it).
    Seeds are a study's list (`studies.fashion_cnns.seeds`), so a round on another seed makes its
    own stages and results directories (and trains the study's other models on it: the target is
    the study's aggregate). The first round keeps the study's seed (its grid never ran, so the run
    cache has nothing to answer with), so only fmnist_3 trains; later rounds take new seeds.
    """
    env = team["env"]
    run(dvc("push"), team["a"], env)  # whatever clone A has is on the remote, whichever test ran before
    project = fresh_clone(team, "sweeper")
    run(dvc("pull"), project, env)
    baseline = load_params(project / "params.yaml")
    study_seeds = baseline["studies"][queue_sweep.STUDY]["seeds"]
    round_seeds = [study_seeds[0] + index for index in range(SWEEP_ROUNDS)]
    queued = {}
    for index, seed in enumerate(round_seeds):
        names = queue_sweep.queue_grid(project, env, seed)
        seconds = queue_sweep.run_queue(project, env, names, SWEEP_WORKERS, timeout_seconds=900)
        TIMINGS[f"sweeper: 2x1 grid on {SWEEP_WORKERS} queue workers, round {index + 1}"] = round(seconds, 1)
        statuses = queue_sweep.queue_statuses(project, env)
        assert {name: statuses.get(name) for name in names} == dict.fromkeys(names, "Success"), statuses
        queued.update(dict.fromkeys(names, seed))

    # Every queued experiment is listed by `dvc exp show`, with its own params and metrics.
    shown = queue_sweep.shown_experiments(project, env)
    assert set(queued) <= set(shown), (queued, shown)
    grid = set(itertools.product(*queue_sweep.GRID.values()))
    for seed in round_seeds:
        combinations = [(shown[name]["learning_rate"], shown[name]["dropout"])
                        for name in queued if queued[name] == seed]
        assert sorted(combinations) == sorted(grid)
        assert all(shown[name]["seed"] == seed for name in queued if queued[name] == seed)
    for name in queued:
        assert 0.0 <= shown[name]["validation_accuracy"] <= 1.0 and 0.0 <= shown[name]["accuracy"] <= 1.0

    # `dvc exp show --sort-by` ranks them on the study's validation accuracy of fmnist_3; `dvc exp
    # apply` brings the best into the workspace.
    ranking = queue_sweep.ranked_experiments(project, env)
    assert sorted(ranking) == sorted(queued)
    accuracies = [shown[name]["validation_accuracy"] for name in ranking]
    assert accuracies == sorted(accuracies, reverse=True)
    best_name = ranking[0]
    best = shown[best_name]

    # A colleague gets an experiment through git (`dvc exp push`/`pull`) and, asking for its params,
    # its training from the run cache on the shared-directory remote instead of training again.
    shared_name = ranking[-1]
    timed("sweeper: dvc push --run-cache (shared directory)", dvc("push", "--run-cache"), project, env)
    run(dvc("exp", "push", "origin", shared_name), project, env)
    colleague = fresh_clone(team, "colleague")
    run(dvc("exp", "pull", "origin", shared_name), colleague, env)
    assert shared_name in run(dvc("exp", "list", "--name-only"), colleague, env)
    shared = shown[shared_name]
    queue_sweep.set_params(colleague / "params.yaml", {queue_sweep.DROPOUT: shared["dropout"],
                                                       queue_sweep.LEARNING_RATE: shared["learning_rate"]})
    train = stage("train", queue_sweep.MODEL, shared["seed"])
    output = timed("colleague: dvc repro --pull of the experiment's training", dvc("repro", "--pull", train), colleague, env)
    assert f"Stage '{train}' is cached - skipping run" in output, output
    assert stages_run(output) <= {"check_params"}, output
    experiment = experiment_model(project, shared_name, queue_sweep.MODEL)
    assert filecmp.cmp(colleague / model_file(queue_sweep.MODEL), experiment, shallow=False)
    assert not filecmp.cmp(project / model_file(queue_sweep.MODEL), experiment, shallow=False)  # not the baseline's

    run(dvc("exp", "apply", best_name), project, env)
    applied = yaml.safe_load((project / "params.yaml").read_text())
    model, seeds = applied["models"][queue_sweep.MODEL], applied["studies"][queue_sweep.STUDY]["seeds"]
    assert (model["training"]["learning_rate"], model["layers"][3]["rate"], seeds) == (
        best["learning_rate"], best["dropout"], [best["seed"]])
    metrics = json.loads((project / queue_sweep.results_directory(best["seed"]) / "metrics.json").read_text())
    assert metrics["heads"][queue_sweep.HEAD]["accuracy"] == pytest.approx(best["accuracy"], abs=1e-6)
    assert metrics["seed"] == best["seed"]
    # The applied experiment is a finished run of its target: only the report, which it left out, runs.
    output = run(dvc("repro"), project, env)
    assert stages_run(output) == {REPORT}, output


@pytest.mark.parametrize("remote", ["team", "ssh", "s3"], ids=["shared directory", "ssh", "s3"])
def test_a_fresh_clone_pulls_from_the_remote_and_trains_nothing(team, remote):
    clone_a, env = team["a"], team["env"]
    timed(f"clone A: dvc push --run-cache ({remote})", dvc("push", "--run-cache", "-r", remote), clone_a, env)
    clone_b = fresh_clone(team, f"b-{remote}")
    if remote == "ssh":  # the key lives in config.local, never in the committed config
        keyfile = yaml.safe_load(run(dvc("config", "--local", "--list"), clone_a, env).replace("=", ": ")
                                 )["remote.ssh.keyfile"]
        run(dvc("remote", "modify", "--local", "ssh", "keyfile", keyfile), clone_b, env)
    timed(f"clone B: dvc pull ({remote})", dvc("pull", "-r", remote), clone_b, env)
    assert_up_to_date_without_training(clone_b, clone_a, env, f"clone B ({remote})")


def test_corrupted_remote_object_is_detected_on_pull(team):
    env = team["env"]
    shared = Path(team["remotes"]["team"])
    damaged = team["root"] / "damaged-directory"
    subprocess.run(["cp", "-al", str(shared), str(damaged)], check=True)  # hard links: no extra space
    corrupted = model_object(team, damaged, "fmnist_4")
    content = bytearray(corrupted.read_bytes())
    content[100:107] = b"bit rot"
    corrupted.unlink()  # a new file, so the shared remote's object stays intact
    corrupted.write_bytes(bytes(content))
    clone = fresh_clone(team, "c-corrupted")
    run(dvc("remote", "add", "--local", "--force", "team", str(damaged)), clone, env)
    pull = subprocess.run(dvc("pull"), cwd=clone, env=env, capture_output=True, text=True)
    output = pull.stdout + pull.stderr
    assert pull.returncode != 0, "a pull that met a corrupted object must fail:\n" + output
    md5 = corrupted.parent.name + corrupted.name
    # What docs/team.md shows: the hash as a missing cache file, then the file whose checkout failed.
    assert f"Missing cache files:\nmd5: {md5}" in output, output
    assert f"Checkout failed for following targets:\n{model_file('fmnist_4')}\nIs your cache up to date?" in output, output
    assert not (clone / model_file("fmnist_4")).exists(), "corrupted data must not be checked out"
    cached = object_path(clone / ".dvc" / "cache", md5)
    assert not cached.exists() or hashlib.md5(cached.read_bytes()).hexdigest() == md5, "corrupt object in the cache"
    assert (clone / model_file("fmnist_3")).exists(), "intact objects are still pulled"
    assert "up to date" not in run(dvc("status"), clone, env).lower()  # the missing model is reported


def test_interrupted_push_resumes(team):
    clone_a, env = team["a"], team["env"]
    target = team["root"] / "interrupted-directory"
    run(dvc("remote", "add", "--local", "interrupted", str(target)), clone_a, env)
    push = subprocess.Popen(dvc("push", "-r", "interrupted"), cwd=clone_a, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not any((target / "files").rglob("*")) if (target / "files").exists() else True:
        assert push.poll() is None, "push finished before it could be interrupted"
        assert time.monotonic() < deadline
        time.sleep(0.01)
    push.send_signal(signal.SIGKILL)
    push.wait()
    assert push.returncode == -signal.SIGKILL
    pushed_before = sum(1 for path in (target / "files").rglob("*") if path.is_file())
    output = run(dvc("push", "-r", "interrupted"), clone_a, env)
    assert "pushed" in output
    total = sum(1 for path in (target / "files").rglob("*") if path.is_file())
    assert pushed_before < total
    clone = fresh_clone(team, "d-resumed")
    run(dvc("remote", "add", "--local", "--force", "team", str(target)), clone, env)
    run(dvc("pull"), clone, env)
    assert_up_to_date_without_training(clone, clone_a, env, "clone after resumed push")
