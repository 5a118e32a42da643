"""Stage evaluate: score one trained model on its dataset's test set.

Usage: python stages/evaluate.py MODEL MODEL_PATH PREPARED_DIR LIVE_DIR METRICS_JSON REPORT_TXT
       CONFUSION_CSV CONFUSION_PNG SAMPLES_PNG [--params params.yaml]
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
from cnn_comparison.figures import sample_grid_figure, save_figure
from cnn_comparison.params import load_params, model_entry, parse_limits
from cnn_comparison.provenance import provenance
from cnn_comparison.training import PREDICTION_BATCH_SIZE, take_first


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for name in ("model", "model_path", "prepared_dir", "live_dir", "metrics_json", "report_txt",
                 "confusion_csv", "confusion_png", "samples_png"):
        parser.add_argument(name, type=str if name == "model" else Path)
    parser.add_argument("--params", default="params.yaml")
    arguments = parser.parse_args(argv)
    params = load_params(arguments.params)
    entry = model_entry(params, arguments.model)
    limits = parse_limits(params.get("limits"))
    dataset = entry["dataset"]
    class_names = params["datasets"][dataset]["class_names"]
    title = entry.get("report_title", f"{arguments.model} Performance")

    start = time.perf_counter()
    arrays = load_arrays(arguments.prepared_dir, ["test_images", "test_labels"])
    images, labels = take_first((arrays["test_images"], arrays["test_labels"]), limits.max_eval_samples)
    model = keras.models.load_model(arguments.model_path)
    probabilities = model.predict(images, batch_size=PREDICTION_BATCH_SIZE, verbose=0)
    predictions = probabilities.argmax(axis=1)
    metrics = classification_metrics(labels, probabilities, class_names)
    training = json.loads((arguments.live_dir / "metrics.json").read_text())
    seconds = time.perf_counter() - start

    metrics.update({
        "model": arguments.model,
        "dataset": dataset,
        "training_time_seconds": training["training_time_seconds"],
        "training_cpu_seconds": training["training_cpu_seconds"],
        "epochs_run": training["epochs_run"],
        "epoch_of_saved_weights": training["epoch_of_saved_weights"],
        "parameter_count": training["parameter_count"],
        "evaluation_time_seconds": round(seconds, 2),
        "seed": entry["training"]["seed"],
        "provenance": provenance(entry, params),
    })
    atomic.write_json(arguments.metrics_json, metrics)
    report = write_classification_outputs(title, f"{arguments.model}: test confusion matrix", labels, predictions,
                                          class_names, arguments.report_txt, arguments.confusion_csv,
                                          arguments.confusion_png)
    save_figure(sample_grid_figure(images, labels, predictions, class_names), arguments.samples_png)
    print(report)
    print(f"[evaluate {arguments.model}] accuracy {metrics['accuracy']:.4f}, macro F1 {metrics['f1_macro']:.4f}, "
          f"loss {metrics['loss']:.4f} on {metrics['samples']} test images in {seconds:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
