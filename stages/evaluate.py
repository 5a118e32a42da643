"""Stage evaluate: score one trained run on its test set(s), one report per output head.

Usage: python stages/evaluate.py PREPARED_ROOT MODELS_ROOT METRICS_ROOT [--stage evaluate_<study>@<model>-<seed>]
                                 [--params params.yaml]
Which run it is comes from DVC (DVC_STAGE) or --stage. Reads MODELS_ROOT/<study>/<model>/seed_<seed>/
(what train wrote) and PREPARED_ROOT/<dataset>/ for each head; writes METRICS_ROOT/<study>/<model>/seed_<seed>/:
metrics.json, a copy of the training log in live/ (so the git-tracked results hold every curve the
aggregate draws, and no model is needed to draw them), timings.json (training's and evaluation's
seconds, and the machines: the one file that differs between reruns) and, per head (named after its
task, or the dataset of a single-task model), reports/<head>.txt, confusion/<head>.csv and
confusion_normalized/<head>.csv (DVC confusion plots), figures/confusion_<head>.png,
figures/samples_<head>.png and figures/reliability_<head>.png (calibration). metrics.json also holds
what the model costs to use: multiply-accumulates per image, the saved model's size and its
test-time views; its images/s at batch 256 (median of 7 batches after 2 of warm-up) depend on the
host and go to timings.json. The directory is built aside and replaces the previous one in one step,
so a failure leaves the previous results as they were.
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

from cnn_comparison.console import readable_stage_output, run_stage
from cnn_comparison.layout import current_stage
from cnn_comparison.params import load_params, model_spec, validated

INFERENCE_BATCH_SIZE = 256


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("prepared_root", type=Path)
    parser.add_argument("models_root", type=Path)
    parser.add_argument("metrics_root", type=Path)
    parser.add_argument("--stage", help="evaluate_<study>@<model>-<seed> (default: DVC_STAGE, set by dvc repro)")
    parser.add_argument("--params", default="params.yaml")
    arguments = parser.parse_args(argv)
    try:
        params = validated(load_params(arguments.params))
        stage = current_stage(arguments.stage, "evaluate")
        spec = model_spec(params, stage.model, stage.seed, stage.group)
    except ValueError as error:  # before TensorFlow's import, which takes seconds
        print(f"error: {arguments.params}: {error}", file=sys.stderr)
        return 1
    readable_stage_output()  # TensorFlow loads here, quietly
    import keras
    import numpy as np

    from cnn_comparison import atomic
    from cnn_comparison.costs import images_per_second, multiply_accumulates
    from cnn_comparison.arrays import load_arrays
    from cnn_comparison.determinism import determinism_settings, make_deterministic
    from cnn_comparison.evaluation import (classification_metrics, metrics_record, predict_heads, test_time_views,
                                           write_head_outputs)
    from cnn_comparison.layout import (EVALUATION_DIRECTORIES, LIVE_DIRECTORY, METRICS_FILE, MODEL_FILE, TIMINGS_FILE,
                                       data_directories, run_directory, stage_name)
    from cnn_comparison.limits import capped_test
    from cnn_comparison.provenance import machine, provenance, runtime

    make_deterministic(spec.seed)

    start = time.perf_counter()
    training_dir = run_directory(arguments.models_root / spec.study, spec.name, spec.seed)
    run_dir = run_directory(arguments.metrics_root / spec.study, spec.name, spec.seed)
    model_path = training_dir / MODEL_FILE
    train_stage = stage_name("train", spec.study, spec.name, spec.seed)
    try:
        model = keras.models.load_model(model_path)
    except Exception as error:  # noqa: BLE001  (a damaged zip reaches Keras' legacy loader: "File not found")
        state = "is corrupt or truncated" if model_path.is_file() else "is missing"
        print(f"error: {model_path} {state} ({type(error).__name__}: {str(error)[:200]}). Restore the committed "
              f"model with `dvc checkout --force {train_stage}`, or train it again with "
              f"`dvc repro -f -s {train_stage}`; the results in {run_dir} are unchanged", file=sys.stderr)
        return 1
    prepared_dirs = data_directories(arguments.prepared_root, {head: task.dataset for head, task in spec.tasks.items()})
    test_sets = {head: capped_test(load_arrays(directory, ["test_images", "test_labels"]), params.limits)
                 for head, directory in prepared_dirs.items()}
    probabilities = predict_heads(model, {head: images for head, (images, _) in test_sets.items()},
                                  test_time_flip=spec.recipe.test_time_flip,
                                  test_time_shift=spec.recipe.test_time_shift)
    training_log = training_dir / LIVE_DIRECTORY
    training = json.loads((training_log / "metrics.json").read_text())
    training_timings = json.loads((training_dir / TIMINGS_FILE).read_text())
    scores = {}
    with atomic.staged_path(run_dir, directory=True) as staged:
        outputs = {name: staged / name for name in EVALUATION_DIRECTORIES}
        shutil.copytree(training_log, outputs[LIVE_DIRECTORY])
        for head, (images, labels) in test_sets.items():
            task = spec.tasks[head]
            class_names = params.datasets[task.dataset].class_names
            scores[head] = classification_metrics(labels, probabilities[head], class_names)
            figure_title = (f"{spec.name} seed {spec.seed}" + ("" if len(spec.tasks) == 1 else f", {head} head")
                            + ": test confusion matrix")
            print(write_head_outputs(outputs, head, task.report_title, figure_title, images,
                                     labels, probabilities[head], class_names))
        training_runtime = (training.get("provenance") or [None])[0]
        first_images = next(iter(test_sets.values()))[0]
        costs = {"macs_per_image": multiply_accumulates(model), "model_size_bytes": model_path.stat().st_size,
                 "test_time_views": len(test_time_views(first_images[:1], spec.recipe.test_time_flip,
                                                        spec.recipe.test_time_shift))}
        record = metrics_record(spec, scores, training, costs,
                                provenance(params, spec.name, spec.seed, training_runtime, runtime(determinism_settings())))
        atomic.write_json(staged / METRICS_FILE, record)
        # One forward pass on a batch of 256 test images (repeated when the limits leave fewer).
        batch = np.resize(first_images, (INFERENCE_BATCH_SIZE, *first_images.shape[1:]))
        timings = {key: value for key, value in training_timings.items() if key != "machine"}
        timings.update(evaluation_time_seconds=round(time.perf_counter() - start, 2),
                       inference_images_per_second=images_per_second(model.predict_on_batch, batch),
                       inference_batch_size=INFERENCE_BATCH_SIZE,
                       machine={"training": training_timings.get("machine"), "evaluation": machine()})
        atomic.write_json(staged / TIMINGS_FILE, timings)
    print(f"[evaluate {spec.name} seed {spec.seed}] " + ", ".join(
        f"{'' if len(scores) == 1 else head + ' '}accuracy {head_scores['accuracy']:.4f}, macro F1 "
        f"{head_scores['f1_macro']:.4f}, loss {head_scores['loss']:.4f} on {head_scores['samples']} test images"
        for head, head_scores in scores.items())
        + f" in {time.perf_counter() - start:.1f} s -> {run_dir}")
    return 0


if __name__ == "__main__":
    run_stage(main)
