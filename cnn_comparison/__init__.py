"""Shared, importable code for the pipeline stages in ``stages/``.

Stage scripts stay thin: they parse paths, load params and do I/O; everything
they compute lives here so tests can exercise it on synthetic arrays.
"""
import os

# Quiets TensorFlow's C++ warnings so the per-epoch progress lines stand out in
# `dvc repro` (a few start-up lines are printed before this setting is read).
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
