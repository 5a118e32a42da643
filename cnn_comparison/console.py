"""Readable stage output: progress lines as they happen, no TensorFlow start-up noise, and an
interruption that ends a stage with one line and nothing written."""
from __future__ import annotations

import contextlib
import ctypes
import os
import select
import signal
import sys
import tempfile
import threading
from pathlib import Path
from typing import Callable, NoReturn

PR_SET_PDEATHSIG = 1  # linux/prctl.h


class Interrupted(BaseException):
    """SIGTERM, raised like KeyboardInterrupt so every staged output is removed on the way out."""


def readable_stage_output() -> None:
    """Call first thing in a stage script, before anything imports TensorFlow.

    Under `dvc repro` stdout is a pipe, which Python buffers in blocks: per-epoch lines would
    appear minutes late, so both streams are switched to line buffering. TensorFlow's C++ start-up
    lines (oneDNN and CUDA probing on a CPU machine) are printed before its log level is read, and
    TensorFlow 2.21 has no setting that hides them (TF_CPP_MIN_LOG_LEVEL, ABSL_MIN_LOG_LEVEL and
    GLOG_minloglevel were tried), so stderr goes to a temporary file while TensorFlow loads: if the
    import fails, everything it printed is replayed, so nothing is lost. Setting
    TF_CPP_MIN_LOG_LEVEL yourself (e.g. 0) shows the lines as they come.
    """
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(AttributeError, ValueError):
            stream.reconfigure(line_buffering=True)
    if "TF_CPP_MIN_LOG_LEVEL" in os.environ:
        return
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            import tensorflow  # noqa: F401  (loaded here, quietly; later imports reuse it)
        except BaseException:
            os.dup2(saved, 2)
            captured.seek(0)
            os.write(2, captured.read())
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def _raise_interrupted(signal_number: int, frame) -> None:
    raise Interrupted(signal.Signals(signal_number).name)


SHELLS = {"sh", "dash", "bash", "zsh", "ksh", "mksh", "fish"}


def _command_name(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def _parent_of(pid: int) -> int:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return 0


def _terminate_when_gone(pid: int) -> None:
    """Send this process SIGTERM when ``pid`` exits, from a daemon thread waiting on a pidfd."""
    try:
        pidfd = os.pidfd_open(pid)
    except ProcessLookupError:  # gone already
        os.kill(os.getpid(), signal.SIGTERM)
        return
    except (AttributeError, OSError):  # no pidfd (Linux before 5.3): the parent check still holds
        return

    def wait() -> None:
        select.select([pidfd], [], [])
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=wait, name=f"stop-when-{pid}-exits", daemon=True).start()


def _stop_with_parent() -> None:
    """Stop (SIGTERM) when the `dvc repro` that started this stage dies.

    DVC runs a stage as ``$SHELL -c cmd``. bash execs the command, so the parent is DVC, and Linux's
    parent-death signal covers it. dash (/bin/sh on Debian, what DVC uses when SHELL is unset) does
    not exec: the parent is a shell that outlives DVC, so under DVC (which sets DVC_STAGE) a shell
    parent's own parent is watched as well. Otherwise the stage would write its outputs after DVC
    had given up on them. Run by hand (e.g. under nohup), only the direct parent counts."""
    if not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    parent = os.getppid()
    if parent == 1:  # the parent died before the request was in place
        signal.raise_signal(signal.SIGTERM)
        return
    if "DVC_STAGE" in os.environ and _command_name(parent) in SHELLS:
        grandparent = _parent_of(parent)
        if grandparent > 1:
            _terminate_when_gone(grandparent)


def run_stage(main: Callable[[], int]) -> NoReturn:
    """Run a stage's ``main`` and exit with its code; on Ctrl-C, SIGTERM or the death of `dvc repro`,
    print one line instead of tracebacks and exit without writing anything.

    Outputs are written through ``atomic.staged_path``, which removes its temporary files as the
    interruption passes through it. ``os._exit`` then skips interpreter teardown, where TensorFlow's
    threads would otherwise print "Exception ignored ... sys.meta_path is None" blocks.
    """
    what = "stage " + (os.environ.get("DVC_STAGE") or " ".join([Path(sys.argv[0]).stem, *sys.argv[1:]]))
    signal.signal(signal.SIGTERM, _raise_interrupted)
    _stop_with_parent()
    try:
        code = main()
    except (KeyboardInterrupt, Interrupted) as interruption:
        name = "SIGINT" if isinstance(interruption, KeyboardInterrupt) else str(interruption)
        print(f"\ninterrupted ({name}): {what} stopped; it saved nothing (run `dvc repro` again to redo it)",
              file=sys.stderr, flush=True)
        sys.stdout.flush()
        os._exit(130 if name == "SIGINT" else 128 + signal.SIGTERM)
    sys.stdout.flush()
    sys.stderr.flush()
    sys.exit(code)
