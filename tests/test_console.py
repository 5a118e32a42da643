"""Stage start-up and interruption (cnn_comparison/console.py), in subprocesses with a stand-in TensorFlow."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from project_copies import as_from_a_terminal

PROJECT_ROOT = Path(__file__).resolve().parents[1]


def run_script(tmp_path: Path, body: str, fake_tensorflow: str, **popen) -> subprocess.Popen:
    """``body`` after ``readable_stage_output()``, with ``tensorflow`` replaced by ``fake_tensorflow``."""
    (tmp_path / "tensorflow.py").write_text(fake_tensorflow)
    script = tmp_path / "stage.py"
    script.write_text("from cnn_comparison.console import readable_stage_output, run_stage\n"
                      "readable_stage_output()\n" + body)
    env = {key: value for key, value in os.environ.items() if key != "TF_CPP_MIN_LOG_LEVEL"}
    env["PYTHONPATH"] = f"{tmp_path}{os.pathsep}{PROJECT_ROOT}"
    return subprocess.Popen([sys.executable, str(script), "fmnist_1", "42"], cwd=tmp_path, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, preexec_fn=as_from_a_terminal, **popen)


NOISY = "import os\nos.write(2, b'I0000 oneDNN custom operations are on\\n')\n"


def test_start_up_lines_are_hidden_when_tensorflow_loads(tmp_path):
    process = run_script(tmp_path, "import sys\nprint('after', file=sys.stderr)\n", NOISY)
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 0 and stderr == "after\n", stderr


def test_a_failing_import_replays_what_it_printed(tmp_path):
    process = run_script(tmp_path, "", NOISY + "raise ImportError('libcudart missing')\n")
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 1
    assert "oneDNN custom operations are on" in stderr and "ImportError: libcudart missing" in stderr


def test_sigterm_gives_one_line_and_the_exit_code_of_a_terminated_process(tmp_path):
    body = ("import sys, time\n"
            "def main():\n"
            "    print('working', flush=True)\n"
            "    try:\n"
            "        time.sleep(60)\n"
            "    finally:\n"
            "        print('cleaned up', flush=True)\n"
            "run_stage(main)\n")
    process = run_script(tmp_path, body, "")
    assert process.stdout.readline() == "working\n"
    time.sleep(0.5)  # into the try block
    process.send_signal(signal.SIGTERM)
    stdout, stderr = process.communicate(timeout=30)
    assert process.returncode == 128 + signal.SIGTERM
    assert "cleaned up" in stdout  # finally blocks (staged outputs) run on the way out
    assert stderr.strip() == ("interrupted (SIGTERM): stage stage fmnist_1 42 stopped; it saved nothing "
                              "(run `dvc repro` again to redo it)")


def test_ctrl_c_gives_one_line_and_exit_code_130(tmp_path):
    body = "import time\ndef main():\n    print('working', flush=True)\n    time.sleep(60)\nrun_stage(main)\n"
    process = run_script(tmp_path, body, "")
    assert process.stdout.readline() == "working\n"
    time.sleep(0.5)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=30)
    assert process.returncode == 130
    assert stderr.strip().startswith("interrupted (SIGINT): stage stage fmnist_1 42 stopped")
    assert "Traceback" not in stderr


@pytest.mark.parametrize("shell", ["/bin/sh", "/bin/bash"])
def test_a_stage_stops_when_dvc_dies_whichever_shell_runs_it(tmp_path, shell):
    """DVC runs ``$SHELL -c cmd``: bash execs the stage, dash (/bin/sh here, and DVC's choice when
    SHELL is unset) stays between DVC and the stage. Either way the stage must stop with DVC."""
    body = ("import os, time\ndef main():\n    print(os.getpid(), flush=True)\n    time.sleep(60)\n    return 0\n"
            "run_stage(main)\n")
    (tmp_path / "tensorflow.py").write_text("")
    (tmp_path / "stage.py").write_text("from cnn_comparison.console import readable_stage_output, run_stage\n"
                                       "readable_stage_output()\n" + body)
    env = {**os.environ, "PYTHONPATH": f"{tmp_path}{os.pathsep}{PROJECT_ROOT}", "DVC_STAGE": "train@fmnist_1-42"}
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)
    stand_in_for_dvc = subprocess.Popen(
        [sys.executable, "-c", "import subprocess, sys; "
                               f"subprocess.Popen([{shell!r}, '-c', f'{{sys.executable}} stage.py']).wait()"],
        cwd=tmp_path, env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    stage = int(stand_in_for_dvc.stdout.readline())
    time.sleep(0.5)  # into main
    stand_in_for_dvc.kill()
    stand_in_for_dvc.wait(timeout=10)
    deadline = time.monotonic() + 20
    while Path(f"/proc/{stage}").exists() and Path(f"/proc/{stage}/stat").read_text().split()[2] != "Z":
        assert time.monotonic() < deadline, f"the stage outlived DVC (run through {shell})"
        time.sleep(0.1)
    assert "interrupted (SIGTERM)" in stand_in_for_dvc.stderr.read()
