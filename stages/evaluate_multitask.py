"""Stage evaluate_multitask: score each head of the multitask model on its task's test set.

Usage: python stages/evaluate_multitask.py MODEL_PATH LIVE_DIR METRICS_JSON
       --task TASK PREPARED_DIR REPORT_TXT CONFUSION_CSV CONFUSION_PNG [--task ...] [--params params.yaml]
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import keras

from cnn_comparison import atomic
from cnn_comparison.arrays import load_arrays
from cnn_comparison.evaluation import classification_metrics, write_classification_outputs
from cnn_comparison.params import load_params, parse_limits
from cnn_comparison.provenance import provenance
from cnn_comparison.training import PREDICTION_BATCH_SIZE, take_first


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model_path", type=Path)
    parser.add_argument("live_dir", type=Path)
    parser.add_argument("metrics_json", type=Path)
    parser.add_argument("--task", nargs=5, action="append", required=True,
                        metavar=("TASK", "PREPARED_DIR", "REPORT_TXT", "CONFUSION_CSV", "CONFUSION_PNG"))
    parser.add_argument("--params", default="params.yaml")
    arguments = parser.parse_args(argv)
    params = load_params(arguments.params)
    config = params["multitask"]
    limits = parse_limits(params.get("limits"))
    model = keras.models.load_model(arguments.model_path)
    training = json.loads((arguments.live_dir / "metrics.json").read_text())
    results = {}
    for task, prepared_dir, report_path, confusion_csv, confusion_png in arguments.task:
        start = time.perf_counter()
        task_config = config["tasks"][task]
        class_names = params["datasets"][task_config["dataset"]]["class_names"]
        arrays = load_arrays(prepared_dir, ["test_images", "test_labels"])
        images, labels = take_first((arrays["test_images"], arrays["test_labels"]), limits.max_eval_samples)
        probabilities = model.predict(images, batch_size=PREDICTION_BATCH_SIZE, verbose=0)[task]
        predictions = probabilities.argmax(axis=1)
        results[task] = classification_metrics(labels, probabilities, class_names)
        results[task]["dataset"] = task_config["dataset"]
        results[task]["evaluation_time_seconds"] = round(time.perf_counter() - start, 2)
        report = write_classification_outputs(task_config["report_title"], f"multitask, {task} head: test confusion matrix",
                                              labels, predictions, class_names, report_path, confusion_csv,
                                              confusion_png)
        print(report)
    atomic.write_json(arguments.metrics_json, {
        "model": "multitask",
        **results,
        "training_time_seconds": training["training_time_seconds"],
        "training_cpu_seconds": training["training_cpu_seconds"],
        "epochs_run": training["epochs_run"],
        "parameter_count": training["parameter_count"],
        "seed": config["training"]["seed"],
        "provenance": provenance(config, params),
    })
    print("[evaluate multitask] " + ", ".join(f"{task} accuracy {metrics['accuracy']:.4f}" for task, metrics in results.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
