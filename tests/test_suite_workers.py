"""The suite's own set-up: tests marked with one `xdist_group` run on one worker (pyproject.toml's
`--dist loadgroup`), so an expensive module fixture they share (test_train_stage.py's `seeded_runs`:
four training runs) is made once, not on both workers."""
import os
import re
import subprocess
import sys

GROUPED = '''
import pytest

@pytest.mark.xdist_group("shared")
def test_first():
    pass

def test_other_a():
    pass

def test_other_b():
    pass

@pytest.mark.xdist_group("shared")
def test_last():
    pass
'''


def test_tests_of_one_xdist_group_run_on_one_worker(tmp_path):
    (tmp_path / "test_grouped.py").write_text(GROUPED)
    env = {name: value for name, value in os.environ.items() if not name.startswith("PYTEST_")}
    result = subprocess.run([sys.executable, "-m", "pytest", "-n", "2", "--dist", "loadgroup", "-v",
                             "-p", "no:cacheprovider", "-c", os.devnull, "--rootdir", str(tmp_path), str(tmp_path)],
                            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout[-2000:]
    workers = {test: worker for worker, test in re.findall(r"\[(gw\d)\] \[ *\d+%\] PASSED \S+::(test_\w+)",
                                                            result.stdout)}
    assert set(workers) == {"test_first", "test_other_a", "test_other_b", "test_last"}, result.stdout[-2000:]
    assert workers["test_first"] == workers["test_last"], (
        f"the xdist_group was split across workers: {workers}; see requirements.txt's note on pytest")
