"""How much do the study-2 accuracies (or one model's, with --model) move with the seed?

Retrains the dedicated models and the multitask model from params.yaml on full data with several
seeds, exactly as the train stages do (same builder, recipe and tf.data path), and evaluates each
on the test set. With ``--all-training-data`` the 20% validation split is added to the training
images (the reference's likely setup, as it reports no validation), to see whether that closes
a gap; ``--epochs N`` overrides the recipes' epoch counts. Used to explain docs/results.md's gaps to the reference; takes minutes, not part of the pipeline.

With ``--model NAME`` it retrains that one single-task model instead, as `train` and `evaluate`
do (test-time flip included), and records its training wall and CPU seconds per seed; that is
how fmnist_fast's accuracy over seeds is measured (docs/results.md).

Usage: python benchmarks/seed_variance.py [--seeds 42 43 44] [--all-training-data] [--epochs N] [--output PATH]
       python benchmarks/seed_variance.py --model fmnist_fast --seeds 43 44
"""
from __future__ import annotations

import argparse
import dataclasses
import statistics
import sys
import time
from pathlib import Path

import numpy as np

from cnn_comparison import atomic
from cnn_comparison.arrays import load_arrays
from cnn_comparison.builder import build_model
from cnn_comparison.evaluation import classification_metrics, predict_heads
from cnn_comparison.params import MULTITASK, load_params, model_spec
from cnn_comparison.provenance import library_versions
from cnn_comparison.training import train_model

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SPLIT_ARRAYS = ["train_images", "train_labels", "validation_images", "validation_labels"]


def training_arrays(dataset: str, all_training_data: bool) -> dict[str, np.ndarray]:
    arrays = load_arrays(PROJECT_ROOT / "data" / "split" / dataset, SPLIT_ARRAYS)
    if all_training_data:
        arrays["train_images"] = np.concatenate([arrays["train_images"], arrays["validation_images"]])
        arrays["train_labels"] = np.concatenate([arrays["train_labels"], arrays["validation_labels"]])
    return arrays


def run_once(params: dict, seed: int, all_training_data: bool, epochs: int | None) -> dict[str, float]:
    """One seed: both dedicated models and the multitask model; accuracy per (model, task)."""
    tasks = params["multitask"]["tasks"]
    test = {task: load_arrays(PROJECT_ROOT / "data" / "prepared" / config["dataset"], ["test_images", "test_labels"])
            for task, config in tasks.items()}
    arrays = {task: training_arrays(config["dataset"], all_training_data) for task, config in tasks.items()}
    class_names = {task: params["datasets"][config["dataset"]]["class_names"] for task, config in tasks.items()}
    accuracies = {}
    for task, config in tasks.items():
        name = config["dedicated_model"]
        spec = model_spec(params, name)
        recipe = dataclasses.replace(spec.recipe, seed=seed, epochs=epochs or spec.recipe.epochs)
        model = build_model(spec)
        train_model(model, {None: arrays[task]}, recipe, callbacks=[])
        probabilities = predict_heads(model, {None: test[task]["test_images"]})[None]
        accuracies[f"{name}/{task}"] = classification_metrics(
            test[task]["test_labels"], probabilities, class_names[task])["accuracy"]
    spec = model_spec(params, MULTITASK)
    recipe = dataclasses.replace(spec.recipe, seed=seed, epochs=epochs or spec.recipe.epochs)
    model = build_model(spec)
    train_model(model, arrays, recipe, callbacks=[])
    probabilities = predict_heads(model, {task: test[task]["test_images"] for task in tasks})
    for task in tasks:
        accuracies[f"multitask/{task}"] = classification_metrics(
            test[task]["test_labels"], probabilities[task], class_names[task])["accuracy"]
    return accuracies


def run_model(params: dict, name: str, seed: int, epochs: int | None) -> dict[str, float]:
    """One seed of one single-task model: test accuracy and macro F1 as `evaluate` scores them, and
    the training wall and CPU seconds as `train` measures them."""
    spec = model_spec(params, name)
    (task,) = spec.tasks.values()
    arrays = training_arrays(task.dataset, all_training_data=False)
    test = load_arrays(PROJECT_ROOT / "data" / "prepared" / task.dataset, ["test_images", "test_labels"])
    recipe = dataclasses.replace(spec.recipe, seed=seed, epochs=epochs or spec.recipe.epochs)
    model = build_model(spec)
    cpu_start = time.process_time()
    _, seconds = train_model(model, {None: arrays}, recipe, callbacks=[])
    cpu_seconds = time.process_time() - cpu_start
    probabilities = predict_heads(model, {None: test["test_images"]}, test_time_flip=recipe.test_time_flip)[None]
    scores = classification_metrics(test["test_labels"], probabilities, params["datasets"][task.dataset]["class_names"])
    return {"accuracy": scores["accuracy"], "f1_macro": scores["f1_macro"],
            "training_time_seconds": round(seconds, 1), "training_cpu_seconds": round(cpu_seconds, 1)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[42, 43, 44])
    parser.add_argument("--all-training-data", action="store_true")
    parser.add_argument("--epochs", type=int, default=None, help="instead of each recipe's epochs")
    parser.add_argument("--model", default=None, help="one single-task model from params.yaml instead of study 2")
    parser.add_argument("--params", type=Path, default=PROJECT_ROOT / "params.yaml")
    parser.add_argument("--output", type=Path, default=None)
    arguments = parser.parse_args(argv)
    params = load_params(arguments.params)
    if arguments.model and arguments.all_training_data:
        parser.error("--all-training-data is for study 2 only")
    variant = "all_training_data" if arguments.all_training_data else "recipe_as_in_params"
    if arguments.model:
        model_spec(params, arguments.model)  # an unknown name fails here, before any training
        variant = arguments.model
    if arguments.epochs:
        variant += f"_{arguments.epochs}_epochs"
    output = arguments.output or PROJECT_ROOT / "benchmarks" / "results" / f"seed_variance_{variant}.json"
    runs = {}
    for seed in arguments.seeds:
        start = time.perf_counter()
        runs[seed] = (run_model(params, arguments.model, seed, arguments.epochs) if arguments.model
                      else run_once(params, seed, arguments.all_training_data, arguments.epochs))
        print(f"[seed {seed}] " + ", ".join(f"{key} {value:.4f}" for key, value in runs[seed].items())
              + f" ({time.perf_counter() - start:.0f} s)", flush=True)
    summary = {key: {"mean": round(statistics.mean(values), 4), "stdev": round(statistics.stdev(values), 4),
                     "min": round(min(values), 4), "max": round(max(values), 4)}
               for key in runs[arguments.seeds[0]]
               if len(values := [runs[seed][key] for seed in arguments.seeds]) > 1}
    # The params entry the seeds trained, so a report can tell them from seeds of an older recipe.
    recorded = {"model_entry": params["models"][arguments.model]} if arguments.model else {}
    atomic.write_json(output, {"variant": variant, "epochs": arguments.epochs, "seeds": arguments.seeds, "runs": runs, "summary": summary,
                               **recorded, "library_versions": library_versions()})
    for key, values in summary.items():
        print(f"{key}: mean {values['mean']:.4f}, stdev {values['stdev']:.4f}, range {values['min']:.4f}-{values['max']:.4f}")
    print(f"wrote {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
