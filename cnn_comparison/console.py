"""Readable stage output: progress lines as they happen, no TensorFlow start-up noise, and an
interruption that ends a stage with one line and nothing written."""
from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import sys
import tempfile
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


def _stop_with_parent() -> None:
    """Ask Linux to send SIGTERM when the process that started this one dies.

    `dvc repro` runs a stage through ``$SHELL -c``, which execs it, so the parent is DVC: when DVC is
    killed, the stage stops too instead of writing its outputs after DVC has given up on them."""
    if not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() == 1:  # the parent died before the request was in place
        signal.raise_signal(signal.SIGTERM)


def run_stage(main: Callable[[], int]) -> NoReturn:
    """Run a stage's ``main`` and exit with its code; on Ctrl-C, SIGTERM or the death of `dvc repro`,
    print one line instead of tracebacks and exit without writing anything.

    Outputs are written through ``atomic.staged_path``, which removes its temporary files as the
    interruption passes through it. ``os._exit`` then skips interpreter teardown, where TensorFlow's
    threads would otherwise print "Exception ignored ... sys.meta_path is None" blocks.
    """
    what = " ".join([f"stage {Path(sys.argv[0]).stem}", *sys.argv[1:]])
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
