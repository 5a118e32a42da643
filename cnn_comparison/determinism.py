"""Same params, same seed, same machine kind and library versions: the same bytes.

TensorFlow promises identical results only for the same ops on the same hardware and versions;
docs/pipeline.md ("Determinism") says what that covers.
"""
from __future__ import annotations

import keras
import tensorflow as tf


def make_deterministic(seed: int) -> None:
    """Seed every generator and make TensorFlow's ops deterministic.

    Call before building a model: Keras draws initial weights from the global seed, so a model
    built before seeding starts from different weights in every process.
    """
    keras.utils.set_random_seed(seed)  # Python, NumPy, TensorFlow and Keras' global generators
    tf.config.experimental.enable_op_determinism()


def op_determinism_enabled() -> bool:
    """TensorFlow's own flag (it has a setter in tf.config but no public getter)."""
    from tensorflow.python.framework import config as framework_config

    return bool(framework_config.is_op_determinism_enabled())


def determinism_settings() -> dict:
    """What decides whether a rerun gives the same bytes, for the metrics file's provenance."""
    return {
        "op_determinism": op_determinism_enabled(),
        # 0 means TensorFlow's default: one thread per core for each.
        "intra_op_threads": tf.config.threading.get_intra_op_parallelism_threads(),
        "inter_op_threads": tf.config.threading.get_inter_op_parallelism_threads(),
    }
