"""The suite's own set-up: tests marked with one `xdist_group` run on one worker (pyproject.toml's
`--dist loadgroup`), so an expensive module fixture they share (test_train_stage.py's `seeded_run`:
a train and an evaluate stage, each paying TensorFlow's start-up) is made once, not on both workers."""
import os
import re
import subprocess
import sys

# Eight grouped tests among eight others: split, they would land on both workers.
GROUPED = "import pytest\n" + "".join(
    f'\n@pytest.mark.xdist_group("shared")\ndef test_grouped_{index}():\n    pass\n\ndef test_other_{index}():\n    pass\n'
    for index in range(8))


def test_tests_of_one_xdist_group_run_on_one_worker(tmp_path):
    (tmp_path / "test_grouped.py").write_text(GROUPED)
    env = {name: value for name, value in os.environ.items() if not name.startswith("PYTEST_")}
    result = subprocess.run([sys.executable, "-m", "pytest", "-n", "2", "--dist", "loadgroup", "-v",
                             "-p", "no:cacheprovider", "-c", os.devnull, "--rootdir", str(tmp_path), str(tmp_path)],
                            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout[-2000:]
    workers = {test: worker for worker, test in re.findall(r"\[(gw\d)\] \[ *\d+%\] PASSED \S+::(test_\w+)",
                                                            result.stdout)}
    assert len(workers) == 16, result.stdout[-2000:]
    grouped_on = {worker for test, worker in workers.items() if test.startswith("test_grouped_")}
    assert len(grouped_on) == 1, (
        f"the xdist_group was split across workers: {workers}; see requirements.txt's note on pytest")
