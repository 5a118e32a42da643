"""Shared fixtures, and the one small-limits pipeline run that the end-to-end and team tests start from.

That run (tests/project_copies.py) takes a few minutes of TensorFlow start-ups, so it starts in the
background as soon as a session that needs it begins, while the unit tests run; the tests that need
it are ordered last. With pytest-xdist's workers (pyproject.toml) it is made once for all of them.
"""
import subprocess
import sys
import time
from pathlib import Path

import pytest
from filelock import FileLock

from cnn_comparison.params import load_params

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SMALL_RUN = "small_pipeline_run"
SMALL_RUN_TIMEOUT_SECONDS = 1200


def pytest_collection_modifyitems(config, items):
    """Unit tests first, then the tests that start from the small run (stable otherwise)."""
    items.sort(key=lambda item: SMALL_RUN in getattr(item, "fixturenames", ()))


@pytest.fixture(scope="session")
def project_root() -> Path:
    return PROJECT_ROOT


@pytest.fixture(scope="session")
def params() -> dict:
    return load_params(PROJECT_ROOT / "params.yaml")


@pytest.fixture(scope="session")
def small_run_directory(tmp_path_factory, worker_id) -> Path:
    """Where the small run is made: one directory for every worker of the session."""
    base = tmp_path_factory.getbasetemp()
    return (base if worker_id == "master" else base.parent) / "small_run"


@pytest.fixture(scope="session", autouse=True)
def start_small_run(request, small_run_directory) -> None:
    """Start making the small run in the background if any test of this session needs it (once)."""
    if not any(SMALL_RUN in getattr(item, "fixturenames", ()) for item in request.session.items):
        return
    with FileLock(str(small_run_directory) + ".lock"):
        if not small_run_directory.exists():
            small_run_directory.mkdir()
            log = (small_run_directory / "build.log").open("w")
            subprocess.Popen([sys.executable, str(PROJECT_ROOT / "tests" / "project_copies.py"), str(PROJECT_ROOT),
                              str(small_run_directory)], stdout=log, stderr=subprocess.STDOUT,
                             cwd=PROJECT_ROOT / "tests", start_new_session=True)


@pytest.fixture(scope="session")
def small_pipeline_run(small_run_directory, start_small_run) -> tuple[Path, str]:
    """The test project (tests/project_copies.py) after one `dvc repro`, and its output; tests copy
    it, never change it."""
    deadline = time.monotonic() + SMALL_RUN_TIMEOUT_SECONDS
    while not (small_run_directory / "done").exists():
        if (small_run_directory / "failed").exists() or time.monotonic() > deadline:
            log = (small_run_directory / "build.log").read_text()
            pytest.fail(f"the small-limits pipeline run failed or timed out:\n{log[-4000:]}")
        time.sleep(1)
    return small_run_directory / "project", (small_run_directory / "repro_output.txt").read_text()
