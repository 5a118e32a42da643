"""Stage train_multitask: one shared-trunk model trained jointly on every task's 80% split.

Usage: python stages/train_multitask.py MODEL_PATH LIVE_DIR TASK=SPLIT_DIR... [--params params.yaml]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cnn_comparison  # noqa: F401  (quiets TensorFlow's start-up logging before dvclive imports it)
from dvclive import Live
from dvclive.keras import DVCLiveCallback

from cnn_comparison.arrays import load_arrays
from cnn_comparison.atomic import staged_path
from cnn_comparison.builder import build_multitask
from cnn_comparison.params import effective_epochs, load_params, parse_limits, parse_recipe
from cnn_comparison.training import take_first, train_multitask, training_summary

ARRAY_NAMES = ["train_images", "train_labels", "validation_images", "validation_labels"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model_path", type=Path)
    parser.add_argument("live_dir", type=Path)
    parser.add_argument("task_splits", nargs="+", metavar="TASK=SPLIT_DIR")
    parser.add_argument("--params", default="params.yaml")
    arguments = parser.parse_args(argv)
    splits = dict(pair.split("=", 1) for pair in arguments.task_splits)
    params = load_params(arguments.params)
    try:
        config = params["multitask"]
        unknown = sorted(set(splits) ^ set(config["tasks"]))
        if unknown:
            raise ValueError(f"multitask.tasks and the TASK=SPLIT_DIR arguments disagree on {unknown}")
        recipe = parse_recipe("multitask.training", config["training"])
        limits = parse_limits(params.get("limits"))
        model = build_multitask("multitask", config["trunk"], {task: config["heads"][task] for task in splits})
    except (KeyError, ValueError) as error:
        print(f"error: {arguments.params}: {error}", file=sys.stderr)
        return 1
    task_arrays = {}
    for task, split_dir in splits.items():
        arrays = load_arrays(split_dir, ARRAY_NAMES)
        train = take_first((arrays["train_images"], arrays["train_labels"]), limits.max_train_samples)
        validation = take_first((arrays["validation_images"], arrays["validation_labels"]), limits.max_eval_samples)
        task_arrays[task] = dict(zip(ARRAY_NAMES, (*train, *validation)))
    epochs = effective_epochs(recipe, limits)
    print(f"[train multitask] {model.count_params():,} parameters, tasks "
          + ", ".join(f"{task}: {len(arrays['train_labels'])} training images" for task, arrays in task_arrays.items())
          + f", up to {epochs} epochs, batch {recipe.batch_size}", flush=True)
    with staged_path(arguments.live_dir, directory=True) as live_dir, staged_path(arguments.model_path) as model_path:
        live = Live(dir=str(live_dir), save_dvc_exp=False, dvcyaml=None, report=None)
        history, seconds = train_multitask(model, task_arrays, recipe, epochs, [DVCLiveCallback(live=live)])
        live.summary.update(training_summary(history, seconds, model, recipe.early_stopping_patience))
        live.make_summary()
        model.save(model_path)
    print(f"[train multitask] {len(history.epoch)} epochs in {seconds:.1f} s -> {arguments.model_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
