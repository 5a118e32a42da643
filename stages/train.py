"""Stage train: build one model from params.yaml and fit it with its recipe and one of its study's seeds.

Usage: python stages/train.py MODEL SEED TRAINING_DIR SPLIT_ROOT [--params params.yaml]
Reads SPLIT_ROOT/<dataset>/ for each head of the model; writes TRAINING_DIR/model.keras and the DVCLive
logs in TRAINING_DIR/live/ (per-epoch metrics, and a metrics.json with training time, CPU time, the epoch
whose weights were kept and the runtime provenance). Both appear only if training finishes.
"""
from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

from cnn_comparison.console import readable_stage_output, run_stage
from cnn_comparison.limits import capped_recipe, capped_split
from cnn_comparison.params import load_params, model_spec, validated

ARRAY_NAMES = ["train_images", "train_labels", "validation_images", "validation_labels"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model")
    parser.add_argument("seed", type=int)
    parser.add_argument("training_dir", type=Path)
    parser.add_argument("split_root", type=Path)
    parser.add_argument("--params", default="params.yaml")
    arguments = parser.parse_args(argv)
    try:  # every params problem surfaces here, before data is loaded or a step is run
        params = validated(load_params(arguments.params))
        spec = model_spec(params, arguments.model, arguments.seed)
        recipe = capped_recipe(spec.recipe, params.limits)
    except ValueError as error:  # before TensorFlow's import, which takes seconds
        print(f"error: {arguments.params}: {error}", file=sys.stderr)
        return 1
    readable_stage_output()  # TensorFlow loads here, quietly
    from dvclive import Live
    from dvclive.keras import DVCLiveCallback

    from cnn_comparison.arrays import load_arrays
    from cnn_comparison.atomic import staged_path
    from cnn_comparison.builder import build_model
    from cnn_comparison.determinism import determinism_settings, make_deterministic
    from cnn_comparison.layout import LIVE_DIRECTORY, MODEL_FILE, data_directories
    from cnn_comparison.provenance import runtime
    from cnn_comparison.training import make_optimizer, train_model, training_summary

    try:  # the layers and the optimizer's arguments are checked by Keras
        make_deterministic(spec.seed)  # before building: the initial weights come from the seed
        model = build_model(spec)
        try:  # Keras checks the optimizer's arguments only when it is built
            make_optimizer(recipe)
        except ValueError as error:
            raise ValueError(f"{spec.where}.training.{error}") from error
    except ValueError as error:
        print(f"error: {arguments.params}: {error}", file=sys.stderr)
        return 1
    split_dirs = data_directories(arguments.split_root, {head: task.dataset for head, task in spec.tasks.items()})
    task_arrays = {head: capped_split(load_arrays(directory, ARRAY_NAMES), params.limits)
                   for head, directory in split_dirs.items()}
    images = ", ".join(f"{len(arrays['train_labels'])} training / {len(arrays['validation_labels'])} validation "
                       f"images{'' if len(task_arrays) == 1 else ' for ' + head}" for head, arrays in task_arrays.items())
    print(f"[train {spec.name} seed {spec.seed}] {model.count_params():,} parameters, {images}, up to "
          f"{recipe.epochs} epochs, batch {recipe.batch_size}, augmentation "
          f"{'on' if recipe.augmentation.enabled else 'off'}, deterministic ops")
    model_path = arguments.training_dir / MODEL_FILE
    with staged_path(arguments.training_dir / LIVE_DIRECTORY, directory=True) as live_dir, \
            staged_path(model_path) as staged_model_path:
        live = Live(dir=str(live_dir), save_dvc_exp=False, dvcyaml=None, report=None)
        cpu_start = time.process_time()
        history, seconds = train_model(model, task_arrays, recipe, [DVCLiveCallback(live=live)])
        losses = history.history.get("loss", [])
        if not losses or not all(math.isfinite(loss) for loss in losses):
            # Raising inside the staged paths leaves neither a model nor logs behind.
            print(f"error: {spec.name} seed {spec.seed}: the training loss became {losses[-1] if losses else None} "
                  f"(epoch {len(losses)}); nothing was saved. Lower {spec.where}.training.learning_rate or check "
                  f"the data", file=sys.stderr)
            raise SystemExit(1)
        live.summary.update(training_summary(history, seconds, model, recipe.early_stopping_patience))
        # CPU time of every thread in this process: comparable across runs even when the machine is shared.
        live.summary["training_cpu_seconds"] = round(time.process_time() - cpu_start, 1)
        live.summary["seed"] = spec.seed
        # A list, so `dvc metrics show` leaves it out of its table; evaluate copies it into metrics.json.
        live.summary["provenance"] = [runtime(determinism_settings())]
        live.make_summary()
        model.save(staged_model_path)
    print(f"[train {spec.name} seed {spec.seed}] {len(history.epoch)} epochs in {seconds:.1f} s -> {model_path}")
    return 0


if __name__ == "__main__":
    run_stage(main)
