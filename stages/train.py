"""Stage train: build one model from params.yaml and fit it with its recipe.

Usage: python stages/train.py MODEL SPLIT_DIR MODEL_PATH LIVE_DIR [--params params.yaml]
Per-epoch metrics go to LIVE_DIR through DVCLive; the model to MODEL_PATH (.keras).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from cnn_comparison.arrays import load_arrays
from cnn_comparison.builder import build_sequential
from cnn_comparison.live import train_logged_and_saved
from cnn_comparison.params import effective_epochs, load_params, model_entry, parse_limits, parse_recipe
from cnn_comparison.training import take_first, train_single_task


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model")
    parser.add_argument("split_dir", type=Path)
    parser.add_argument("model_path", type=Path)
    parser.add_argument("live_dir", type=Path)
    parser.add_argument("--params", default="params.yaml")
    arguments = parser.parse_args(argv)
    params = load_params(arguments.params)
    try:  # every params problem surfaces here, before data is loaded or a step is run
        entry = model_entry(params, arguments.model)
        recipe = parse_recipe(f"models.{arguments.model}.training", entry["training"])
        limits = parse_limits(params.get("limits"))
        model = build_sequential(arguments.model, entry["layers"])
    except ValueError as error:
        print(f"error: {arguments.params}: {error}", file=sys.stderr)
        return 1
    arrays = load_arrays(arguments.split_dir, ["train_images", "train_labels", "validation_images", "validation_labels"])
    arrays["train_images"], arrays["train_labels"] = take_first(
        (arrays["train_images"], arrays["train_labels"]), limits.max_train_samples)
    arrays["validation_images"], arrays["validation_labels"] = take_first(
        (arrays["validation_images"], arrays["validation_labels"]), limits.max_eval_samples)
    epochs = effective_epochs(recipe, limits)
    print(f"[train {arguments.model}] {model.count_params():,} parameters, {len(arrays['train_labels'])} training / "
          f"{len(arrays['validation_labels'])} validation images, up to {epochs} epochs, batch {recipe.batch_size}, "
          f"augmentation {'on' if recipe.augmentation.enabled else 'off'}", flush=True)
    history, seconds = train_logged_and_saved(
        model, recipe, lambda callbacks: train_single_task(model, arrays, recipe, epochs, callbacks), arguments.model_path, arguments.live_dir)
    print(f"[train {arguments.model}] {len(history.epoch)} epochs in {seconds:.1f} s -> {arguments.model_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
