"""Stage train_multitask: one shared-trunk model trained jointly on every task's 80% split.

Usage: python stages/train_multitask.py MODEL_PATH LIVE_DIR TASK=SPLIT_DIR... [--params params.yaml]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from cnn_comparison.arrays import load_arrays
from cnn_comparison.builder import build_multitask
from cnn_comparison.live import train_logged_and_saved
from cnn_comparison.params import effective_epochs, load_params, parse_limits, parse_recipe
from cnn_comparison.training import take_first, train_multitask

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
    history, seconds = train_logged_and_saved(
        model, recipe, lambda callbacks: train_multitask(model, task_arrays, recipe, epochs, callbacks),
        arguments.model_path, arguments.live_dir)
    print(f"[train multitask] {len(history.epoch)} epochs in {seconds:.1f} s -> {arguments.model_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
