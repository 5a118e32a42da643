"""Stage train: build one model from params.yaml and fit it with its recipe and one of its study's seeds.

Usage: python stages/train.py SPLIT_ROOT MODELS_ROOT [--stage train_<study>@<model>-<seed>] [--params params.yaml]
Which run it is comes from DVC (DVC_STAGE) or --stage, never from the command line DVC's shell reads.
Reads SPLIT_ROOT/<dataset>/ for each head of the model; writes MODELS_ROOT/<study>/<model>/seed_<seed>/
model.keras (byte for byte the same for the same weights), the DVCLive log live/ (per-epoch metrics
and a metrics.json with the epochs run, the epoch whose weights were kept and how it ran) and
timings.json (seconds per epoch, in all, and the machine). The directory appears whole, and only if
training finishes with a finite loss.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from cnn_comparison.console import readable_stage_output, run_stage
from cnn_comparison.layout import current_stage
from cnn_comparison.limits import capped_recipe, capped_split
from cnn_comparison.params import load_params, model_spec, validated

ARRAY_NAMES = ["train_images", "train_labels", "validation_images", "validation_labels"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("split_root", type=Path)
    parser.add_argument("models_root", type=Path)
    parser.add_argument("--stage", help="train_<study>@<model>-<seed> (default: DVC_STAGE, set by dvc repro)")
    parser.add_argument("--params", default="params.yaml")
    arguments = parser.parse_args(argv)
    try:  # every params problem surfaces here, before data is loaded or a step is run
        params = validated(load_params(arguments.params))
        stage = current_stage(arguments.stage, "train")
        spec = model_spec(params, stage.model, stage.seed, stage.group)
        recipe = capped_recipe(spec.recipe, params.limits)
    except ValueError as error:  # before TensorFlow's import, which takes seconds
        print(f"error: {arguments.params}: {error}", file=sys.stderr)
        return 1
    readable_stage_output()  # TensorFlow loads here, quietly
    from dvclive import Live
    from dvclive.keras import DVCLiveCallback

    from cnn_comparison import atomic
    from cnn_comparison.arrays import load_arrays
    from cnn_comparison.builder import build_model
    from cnn_comparison.determinism import determinism_settings, make_deterministic
    from cnn_comparison.layout import LIVE_DIRECTORY, MODEL_FILE, TIMINGS_FILE, data_directories, run_directory
    from cnn_comparison.model_file import save_model
    from cnn_comparison.provenance import machine, runtime
    from cnn_comparison.training import TrainingDiverged, make_optimizer, train_model, training_summary, training_timings

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
    training_dir = run_directory(arguments.models_root / spec.study, spec.name, spec.seed)
    # The whole run directory is built aside and put in place in one step; any failure leaves nothing.
    with atomic.staged_path(training_dir, directory=True) as staged:
        live = Live(dir=str(staged / LIVE_DIRECTORY), save_dvc_exp=False, dvcyaml=None, report=None)
        try:
            history, times = train_model(model, task_arrays, recipe, [DVCLiveCallback(live=live)])
        except TrainingDiverged as error:
            print(f"error: {spec.name} seed {spec.seed}: {error}; nothing was saved. Lower "
                  f"{spec.where}.training.learning_rate in {arguments.params}, or check the data", file=sys.stderr)
            raise SystemExit(1) from None
        live.summary.update(training_summary(history, model, recipe.early_stopping_patience))
        live.summary["seed"] = spec.seed
        # A list, so `dvc metrics show` leaves it out of its table; evaluate copies it into metrics.json.
        live.summary["provenance"] = [runtime(determinism_settings())]
        live.make_summary()
        atomic.write_json(staged / TIMINGS_FILE, training_timings(times, machine()))
        save_model(model, staged / MODEL_FILE)
    print(f"[train {spec.name} seed {spec.seed}] {len(history.epoch)} epochs in {times.wall_seconds:.1f} s "
          f"-> {training_dir}")
    return 0


if __name__ == "__main__":
    run_stage(main)
