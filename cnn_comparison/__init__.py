"""Shared, importable code for the pipeline stages in ``stages/``.

Stage scripts stay thin: they parse paths, load params and do I/O; everything
they compute lives here so tests can exercise it on synthetic arrays.
"""
import os

# TensorFlow's C++ start-up chatter hides the per-epoch progress lines users
# watch in `dvc repro`; users can still override this from the environment.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
