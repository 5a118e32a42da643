from pathlib import Path

import pytest

from cnn_comparison.params import load_params
from devtools.project_copies import copy_project, dvc, run, tool_environment

PROJECT_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def project_root() -> Path:
    return PROJECT_ROOT


@pytest.fixture(scope="session")
def params() -> dict:
    return load_params(PROJECT_ROOT / "params.yaml")


@pytest.fixture(scope="session")
def small_pipeline_run(tmp_path_factory, project_root) -> tuple[Path, str]:
    """The whole pipeline run once with small limits, and its output; tests copy it, never change it.

    The end-to-end, team and benchmark tests all start from such a run: running it once instead of
    three times saves several minutes of CI.
    """
    work = copy_project(project_root, tmp_path_factory.mktemp("small_run") / "project")
    return work, run(dvc("repro"), work, tool_environment())
