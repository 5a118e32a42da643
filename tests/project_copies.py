"""The test project (a small copy of this one) and the `dvc`/`git` calls the tests run in it.

The test project is the real pipeline with small overrides: the first images of the real datasets
(fetched once per test session through the project's own sources) in a checksummed local mirror,
three of the reference CNNs, fewer seeds and small `limits`. Small data keeps every copy, push and
pull of the team tests cheap; the stage set still covers every kind of model and study.
"""
from __future__ import annotations

import copy
import hashlib
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import yaml

from cnn_comparison.idx import encode_idx, parse_idx
from cnn_comparison.params import FILE_KEYS, load_params, validated
from cnn_comparison.sources import acquire

SMALL_LIMITS = {"max_train_samples": 1000, "max_epochs": 1, "max_eval_samples": 500}
# Images per file of the mirror: 2,000 training images split 80/20, 500 test images.
MIRROR_IMAGES = {"train": 2000, "t10k": 500}
# Each study's models and seeds in the test project: a plain and an augmented CNN with batch norm
# (every layer type of the six), and one seed each (tests add a second). dvc.yaml loops over every
# study, so all stay. Each run is two stages of seconds of TensorFlow start-up: fewer runs, a faster suite.
SMALL_STUDIES = {"fashion_cnns": {"models": ["fmnist_3", "fmnist_4"], "seeds": [42]},
                 "fast_cnn": {"seeds": [42]}, "dedicated_vs_multitask": {"seeds": [42]}}
GIT_IDENTITY = ["-c", "user.name=test", "-c", "user.email=test@example.com"]


def write_data_mirror(project_root: Path, destination: Path) -> dict[str, dict[str, str]]:
    """The first MIRROR_IMAGES of each dataset, as IDX files in ``destination/<dataset>/``; returns
    their SHA-256 by dataset and file key. Fetched through the project's sources, as `download` does."""
    params = validated(load_params(project_root / "params.yaml"))
    checksums = {}
    for dataset, entry in params.datasets.items():
        files, _ = acquire(dataset, entry, log=lambda message: None)
        (destination / dataset).mkdir(parents=True)
        checksums[dataset] = {}
        for key in FILE_KEYS:
            name = entry.files[key].name
            subset = encode_idx(parse_idx(files[key], name)[:MIRROR_IMAGES[name.split("-")[0]]])
            (destination / dataset / name).write_bytes(subset)
            checksums[dataset][key] = hashlib.sha256(subset).hexdigest()
    return checksums


def small_params(params: dict, mirror: Path, checksums: dict[str, dict[str, str]]) -> dict:
    """The project's params with the test project's overrides (see the module docstring)."""
    small = copy.deepcopy(params)
    small["limits"] = dict(SMALL_LIMITS)
    for dataset, entry in small["datasets"].items():
        entry["sources"] = [{"type": "directory", "path": str(mirror / dataset)}]
        for key, sha256 in checksums[dataset].items():
            entry["files"][key]["sha256"] = sha256
    for study, kept in SMALL_STUDIES.items():
        declared = small["studies"][study]
        for model in set(declared["models"]) - set(kept.get("models", declared["models"])):
            del small["models"][model]
        declared.update(kept)
    report = small["report"]
    report["reference"]["epochs"] = {name: epochs for name, epochs in report["reference"]["epochs"].items()
                                     if name in small["models"]}
    for target in report["targets"].values():  # a baseline left out: the augmented CNN instead
        target["baseline"] = target["baseline"] if target["baseline"] in small["models"] else "fmnist_4"
    return small


def write_params(path: Path, params: dict) -> None:
    """params.yaml as the tests edit it: block style, collections of scalars inline (``seeds: [42, 43]``)."""
    path.write_text(yaml.safe_dump(params, sort_keys=False, default_flow_style=None, width=120))


def copy_tracked_files(project_root: Path, destination: Path) -> Path:
    """Copy what git tracks (never data, models or caches), keeping timestamps; return ``destination``."""
    tracked = subprocess.run(["git", "ls-files"], cwd=project_root, capture_output=True, text=True, check=True)
    for relative in tracked.stdout.splitlines():
        source = project_root / relative
        if source.is_file():  # a tracked file deleted in the work tree is skipped
            (destination / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, destination / relative)
    return destination


def tool_environment(**extra: str) -> dict:
    """The current environment with this interpreter's bin first, so stages run in the same venv, and
    without DVC's usage reports (a daemon process after every command, on the test machine's cores)."""
    environment = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
                   "DVC_NO_ANALYTICS": "1", **extra}
    for name in ("CNN_DATA_MIRROR", "TF_CPP_MIN_LOG_LEVEL"):  # a user's mirror; a test process's TF log level
        environment.pop(name, None)
    return environment


def as_from_a_terminal() -> None:
    """``preexec_fn`` for a process a test will Ctrl-C: SIGINT at its default, as a terminal's shell
    leaves it. A CI job started in the background inherits SIGINT ignored, and a process that starts
    with SIGINT ignored keeps ignoring it."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def run(command: list[str], cwd: Path, env: dict, check: bool = True) -> str:
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True)
    output = result.stdout + result.stderr
    if check:
        assert result.returncode == 0, f"{' '.join(command)} failed ({result.returncode}):\n{output[-4000:]}"
    return output


def readme_command(project_root: Path, start: str) -> list[str]:
    """The README's command line that starts with ``start``, split as a shell would (its comment dropped)."""
    line = next(line for line in (project_root / "README.md").read_text().splitlines() if line.startswith(start))
    return shlex.split(line, comments=True)


def dvc(*arguments: str) -> list[str]:
    return [sys.executable, "-m", "dvc", *arguments]


def git(*arguments: str) -> list[str]:
    return ["git", *GIT_IDENTITY, *arguments]


def object_path(storage: Path, md5: str) -> Path:
    """Where a DVC cache or remote (``storage``: ``.dvc/cache`` or the remote's root) keeps an object."""
    return storage / "files" / "md5" / md5[:2] / md5[2:]


def stages_run(output: str) -> set[str]:
    """Stages `dvc repro` actually executed (restored-from-run-cache stages are not listed)."""
    return set(re.findall(r"Running stage '([^']+)'", output))


def set_value(params_path: Path, pattern: str, replacement: str) -> None:
    """Edit params.yaml in place with a regex, keeping its layout."""
    text = params_path.read_text()
    new_text, count = re.subn(pattern, replacement, text, count=1, flags=re.MULTILINE | re.DOTALL)
    assert count == 1, f"{pattern!r} not found in {params_path}"
    params_path.write_text(new_text)


def copy_project(project_root: Path, destination: Path, mirror: Path, checksums: dict[str, dict[str, str]]) -> Path:
    """The test project: the git-tracked files with ``small_params``, committed in a new repository.

    Without the project's dvc.lock: its 77 stages are not the test project's, and DVC parses and
    rewrites the whole lock in pure Python for every stage it runs (a second or more each at that
    size), so its own lock of the test project's stages keeps every `dvc` call in the tests cheaper.
    """
    copy_tracked_files(project_root, destination)
    (destination / "dvc.lock").unlink()
    write_params(destination / "params.yaml", small_params(load_params(project_root / "params.yaml"), mirror, checksums))
    env = tool_environment()
    run(["git", "init", "-q", "-b", "main"], destination, env)
    run(git("add", "-A"), destination, env)
    run(git("commit", "-qm", "project copy with small limits"), destination, env)
    return destination


def copy_run_project(source: Path, destination: Path) -> Path:
    """Copy a project whose pipeline has run, git repository and DVC cache included; return ``destination``.

    One small-limits run of the whole pipeline takes minutes (mostly TensorFlow starting up in
    each stage), so the tests that need a run project copy one run instead of repeating it; on the
    test project's small data a copy takes a fraction of a second.
    """
    destination.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["cp", "-a", str(source), str(destination)], check=True)
    return destination


def build_small_run(project_root: Path, root: Path) -> None:
    """The test project in ``root/project`` after one `dvc repro`; its output in ``root/repro_output.txt``,
    then ``root/done`` (or ``root/failed`` with the error), which the tests wait for."""
    try:
        checksums = write_data_mirror(project_root, root / "mirror")
        project = copy_project(project_root, root / "project", root / "mirror", checksums)
        (root / "repro_output.txt").write_text(run(dvc("repro"), project, tool_environment()))
    except BaseException as error:  # noqa: BLE001  (the waiting tests report it)
        (root / "failed").write_text(f"{type(error).__name__}: {error}")
        raise
    (root / "done").write_text("")


if __name__ == "__main__":  # python tests/project_copies.py PROJECT_ROOT DESTINATION (tests/conftest.py)
    build_small_run(Path(sys.argv[1]), Path(sys.argv[2]))
