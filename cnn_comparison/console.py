"""Readable stage output: progress lines as they happen, no TensorFlow start-up noise."""
from __future__ import annotations

import contextlib
import os
import sys


def readable_stage_output() -> None:
    """Call first thing in a stage script, before anything imports TensorFlow.

    Under `dvc repro` stdout is a pipe, which Python buffers in blocks: per-epoch lines would
    appear minutes late, so both streams are switched to line buffering. TensorFlow's C++ start-up
    lines (CUDA probing on a CPU machine) ignore Python's logging; the log level hides those
    printed after start-up and stderr is muted while TensorFlow loads, for those printed before
    its log level is read. Setting TF_CPP_MIN_LOG_LEVEL yourself (e.g. 0) turns both off.
    """
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(AttributeError, ValueError):
            stream.reconfigure(line_buffering=True)
    if "TF_CPP_MIN_LOG_LEVEL" in os.environ:
        return
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        import tensorflow  # noqa: F401  (loaded here, quietly; later imports reuse it)
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)
