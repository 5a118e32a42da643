"""Stage evaluate: score one trained model on its test set(s), one report per output head.

Usage: python stages/evaluate.py MODEL MODEL_DIR PREPARED_DIR [--params params.yaml]
       python stages/evaluate.py multitask MODEL_DIR TASK=PREPARED_DIR... [--params params.yaml]
Reads MODEL_DIR/model.keras and MODEL_DIR/live/metrics.json; writes MODEL_DIR/metrics.json and, per
head, report.txt, confusion.csv (DVC confusion plot), confusion.png and samples.png (with a
`_TASK` suffix for each head of the multitask model).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from cnn_comparison.console import readable_stage_output

readable_stage_output()

import keras  # noqa: E402

from cnn_comparison import atomic  # noqa: E402
from cnn_comparison.arrays import load_arrays  # noqa: E402
from cnn_comparison.evaluation import (classification_metrics, metrics_record, predict_heads,  # noqa: E402
                                       write_head_outputs)
from cnn_comparison.layout import LIVE_DIRECTORY, METRICS_FILE, MODEL_FILE, head_directories  # noqa: E402
from cnn_comparison.limits import capped_test, parse_limits  # noqa: E402
from cnn_comparison.params import load_params, model_spec  # noqa: E402
from cnn_comparison.provenance import provenance  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model")
    parser.add_argument("model_dir", type=Path)
    parser.add_argument("prepared_dirs", nargs="+", metavar="[TASK=]PREPARED_DIR")
    parser.add_argument("--params", default="params.yaml")
    arguments = parser.parse_args(argv)
    params = load_params(arguments.params)
    try:
        spec = model_spec(params, arguments.model)
        limits = parse_limits(params.get("limits"))
        prepared_dirs = head_directories(spec.name, list(spec.tasks), arguments.prepared_dirs)
    except ValueError as error:
        print(f"error: {arguments.params}: {error}", file=sys.stderr)
        return 1

    start = time.perf_counter()
    test_sets = {head: capped_test(load_arrays(directory, ["test_images", "test_labels"]), limits)
                 for head, directory in prepared_dirs.items()}
    model = keras.models.load_model(arguments.model_dir / MODEL_FILE)
    probabilities = predict_heads(model, {head: images for head, (images, _) in test_sets.items()},
                                  test_time_flip=spec.recipe.test_time_flip)
    scores = {}
    for head, (images, labels) in test_sets.items():
        task = spec.tasks[head]
        class_names = params["datasets"][task.dataset]["class_names"]
        scores[head] = classification_metrics(labels, probabilities[head], class_names)
        figure_title = f"{spec.name}: test confusion matrix" if head is None else f"{spec.name}, {head} head: test confusion matrix"
        print(write_head_outputs(arguments.model_dir, head, task.report_title, figure_title, images, labels,
                                 probabilities[head].argmax(axis=1), class_names))
    training = json.loads((arguments.model_dir / LIVE_DIRECTORY / "metrics.json").read_text())
    record = metrics_record(spec, scores, training, time.perf_counter() - start, provenance(spec.entry, params))
    atomic.write_json(arguments.model_dir / METRICS_FILE, record)
    print(f"[evaluate {spec.name}] " + ", ".join(
        f"{'' if head is None else head + ' '}accuracy {head_scores['accuracy']:.4f}, macro F1 "
        f"{head_scores['f1_macro']:.4f}, loss {head_scores['loss']:.4f} on {head_scores['samples']} test images"
        for head, head_scores in scores.items())
        + f" in {time.perf_counter() - start:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
