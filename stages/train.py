"""Stage train: build one model from params.yaml and fit it with its recipe.

Usage: python stages/train.py MODEL MODEL_DIR SPLIT_DIR [--params params.yaml]
       python stages/train.py multitask MODEL_DIR TASK=SPLIT_DIR... [--params params.yaml]
Writes MODEL_DIR/model.keras and the DVCLive logs in MODEL_DIR/live/ (per-epoch metrics, and a
metrics.json with training time, CPU time and the epoch whose weights were kept).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from cnn_comparison.console import readable_stage_output

readable_stage_output()

from cnn_comparison.arrays import load_arrays  # noqa: E402
from cnn_comparison.builder import build_model  # noqa: E402
from cnn_comparison.layout import LIVE_DIRECTORY, MODEL_FILE, head_directories  # noqa: E402
from cnn_comparison.limits import capped_recipe, capped_split, parse_limits  # noqa: E402
from cnn_comparison.live import train_logged_and_saved  # noqa: E402
from cnn_comparison.params import load_params, model_spec  # noqa: E402
from cnn_comparison.training import make_optimizer, train_model  # noqa: E402

ARRAY_NAMES = ["train_images", "train_labels", "validation_images", "validation_labels"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model")
    parser.add_argument("model_dir", type=Path)
    parser.add_argument("split_dirs", nargs="+", metavar="[TASK=]SPLIT_DIR")
    parser.add_argument("--params", default="params.yaml")
    arguments = parser.parse_args(argv)
    params = load_params(arguments.params)
    try:  # every params problem surfaces here, before data is loaded or a step is run
        spec = model_spec(params, arguments.model)
        limits = parse_limits(params.get("limits"))
        recipe = capped_recipe(spec.recipe, limits)
        split_dirs = head_directories(spec.name, list(spec.tasks), arguments.split_dirs)
        model = build_model(spec)
        try:  # Keras checks the optimizer's arguments only when it is built
            make_optimizer(recipe)
        except ValueError as error:
            raise ValueError(f"{spec.where}.training.{error}") from error
    except ValueError as error:
        print(f"error: {arguments.params}: {error}", file=sys.stderr)
        return 1
    task_arrays = {head: capped_split(load_arrays(directory, ARRAY_NAMES), limits)
                   for head, directory in split_dirs.items()}
    images = ", ".join(f"{len(arrays['train_labels'])} training / {len(arrays['validation_labels'])} validation "
                       f"images{'' if head is None else ' for ' + head}" for head, arrays in task_arrays.items())
    print(f"[train {spec.name}] {model.count_params():,} parameters, {images}, up to {recipe.epochs} epochs, "
          f"batch {recipe.batch_size}, augmentation {'on' if recipe.augmentation.enabled else 'off'}")
    model_path = arguments.model_dir / MODEL_FILE
    history, seconds = train_logged_and_saved(
        model, recipe, lambda callbacks: train_model(model, task_arrays, recipe, callbacks), model_path,
        arguments.model_dir / LIVE_DIRECTORY)
    print(f"[train {spec.name}] {len(history.epoch)} epochs in {seconds:.1f} s -> {model_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
