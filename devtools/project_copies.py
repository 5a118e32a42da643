"""Temporary copies of the project, and the `dvc`/`git` calls the tests and benchmarks run in them."""
from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

SMALL_LIMITS = {"max_train_samples": 1000, "max_epochs": 1, "max_eval_samples": 500}
# Two seeds are enough to exercise the spread over seeds; the project's five would add stages, not coverage.
SMALL_SEEDS = {"dedicated_vs_multitask": [42, 43], "fast_cnn": [42]}
GIT_IDENTITY = ["-c", "user.name=test", "-c", "user.email=test@example.com"]


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
    """The current environment with this interpreter's bin first, so stages run in the same venv."""
    environment = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}", **extra}
    environment.pop("CNN_DATA_MIRROR", None)
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


def dvc(*arguments: str) -> list[str]:
    return [sys.executable, "-m", "dvc", *arguments]


def git(*arguments: str) -> list[str]:
    return ["git", *GIT_IDENTITY, *arguments]


def stages_run(output: str) -> set[str]:
    """Stages `dvc repro` actually executed (restored-from-run-cache stages are not listed)."""
    return set(re.findall(r"Running stage '([^']+)'", output))


def set_value(params_path: Path, pattern: str, replacement: str) -> None:
    """Edit params.yaml in place with a regex, keeping its comments and layout."""
    text = params_path.read_text()
    new_text, count = re.subn(pattern, replacement, text, count=1, flags=re.MULTILINE | re.DOTALL)
    assert count == 1, f"{pattern!r} not found in {params_path}"
    params_path.write_text(new_text)


def copy_project(project_root: Path, destination: Path, limits: dict = SMALL_LIMITS,
                 seeds: dict = SMALL_SEEDS) -> Path:
    """Copy the git-tracked files, set small limits (and fewer seeds) and commit them in a new repository."""
    copy_tracked_files(project_root, destination)
    for name, value in limits.items():
        set_value(destination / "params.yaml", rf"^  {name}: null", f"  {name}: {value}")
    for study, study_seeds in seeds.items():
        set_value(destination / "params.yaml", rf"(^  {study}:\n(?:    [^\n]*\n)*?    seeds: )\[[^\]]*\]",
                  rf"\g<1>{study_seeds}")
    env = tool_environment()
    run(["git", "init", "-q", "-b", "main"], destination, env)
    # Link workspace files to the DVC cache instead of copying them: each copy holds ~1 GB of arrays.
    run(dvc("config", "cache.type", "hardlink,symlink"), destination, env)
    run(git("add", "-A"), destination, env)
    run(git("commit", "-qm", "project copy with small limits"), destination, env)
    return destination


def copy_run_project(source: Path, destination: Path) -> Path:
    """Copy a project whose pipeline has run, git repository and DVC cache included; return ``destination``.

    One small-limits run of the whole pipeline takes minutes (mostly TensorFlow starting up in
    each stage), so the test modules that need a run project copy one run instead of repeating
    it. ``cp -a`` keeps the hard links between workspace and cache, so a copy holds each file once.
    """
    destination.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["cp", "-a", str(source), str(destination)], check=True)
    return destination
