"""Working copies of this project, for the tests and benchmarks that run real `dvc` commands."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path


def copy_tracked_files(project_root: Path, destination: Path) -> Path:
    """Copy what git tracks (never data, models or caches), keeping timestamps; return ``destination``."""
    tracked = subprocess.run(["git", "ls-files"], cwd=project_root, capture_output=True, text=True, check=True)
    for relative in tracked.stdout.splitlines():
        source = project_root / relative
        if source.is_file():  # a tracked file deleted in the work tree is skipped
            (destination / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, destination / relative)
    return destination
