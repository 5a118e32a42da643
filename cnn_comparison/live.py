"""Run a training function with DVCLive logging and save its model, all or nothing."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

import keras
from dvclive import Live
from dvclive.keras import DVCLiveCallback

from cnn_comparison.atomic import staged_path
from cnn_comparison.params import Recipe
from cnn_comparison.training import training_summary

Trainer = Callable[[list[keras.callbacks.Callback]], tuple[keras.callbacks.History, float]]


def train_logged_and_saved(model: keras.Model, recipe: Recipe, train: Trainer, model_path: Path,
                           live_dir: Path) -> tuple[keras.callbacks.History, float]:
    """``train(callbacks)`` fits ``model``; logs and model appear at their paths only if it finishes."""
    with staged_path(live_dir, directory=True) as staged_live_dir, staged_path(model_path) as staged_model_path:
        live = Live(dir=str(staged_live_dir), save_dvc_exp=False, dvcyaml=None, report=None)
        cpu_start = time.process_time()
        history, seconds = train([DVCLiveCallback(live=live)])
        live.summary.update(training_summary(history, seconds, model, recipe.early_stopping_patience))
        # CPU time of every thread in this process: comparable across runs even when the machine is shared.
        live.summary["training_cpu_seconds"] = round(time.process_time() - cpu_start, 1)
        live.make_summary()
        model.save(staged_model_path)
    return history, seconds
