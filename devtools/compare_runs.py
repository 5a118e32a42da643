"""Do two training runs hold the same bytes? The check behind `dvc commit` after a refactor.

Usage: python -m devtools.compare_runs RUN_DIR RUN_DIR
Compares the weights of RUN_DIR/model.keras (as bytes, array by array) and the DVCLive training
summary RUN_DIR/live/metrics.json apart from times and the machine description. Exit 0 when they
are identical, 1 with the differences otherwise (docs/pipeline.md, "Refactoring without retraining").
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

TIMES = {"training_time_seconds", "training_cpu_seconds", "evaluation_time_seconds", "elapsed_wall_seconds",
         "elapsed_cpu_seconds", "provenance"}


def without_times(value: Any) -> Any:
    """A metrics record with every time (and the runtime provenance) taken out."""
    if isinstance(value, dict):
        return {key: without_times(item) for key, item in value.items() if key not in TIMES}
    if isinstance(value, list):
        return [without_times(item) for item in value]
    return value


def weight_bytes(model_path: Path) -> list[bytes]:
    from cnn_comparison.console import readable_stage_output

    readable_stage_output()  # no TensorFlow start-up noise around the verdict
    import keras
    import numpy as np

    return [np.asarray(weight).tobytes() for weight in keras.models.load_model(model_path).get_weights()]


def differences(first: Path, second: Path) -> list[str]:
    """What differs between two run directories; empty when they hold the same bytes."""
    found = []
    first_weights, second_weights = weight_bytes(first / "model.keras"), weight_bytes(second / "model.keras")
    if len(first_weights) != len(second_weights):
        found.append(f"model.keras: {len(first_weights)} weight arrays against {len(second_weights)}")
    else:
        changed = [index for index, (a, b) in enumerate(zip(first_weights, second_weights)) if a != b]
        if changed:
            found.append(f"model.keras: weight arrays {changed} differ (of {len(first_weights)})")
    logs = [without_times(json.loads((run / "live" / "metrics.json").read_text())) for run in (first, second)]
    if logs[0] != logs[1]:
        keys = sorted(key for key in set(logs[0]) | set(logs[1]) if logs[0].get(key) != logs[1].get(key))
        found.append(f"live/metrics.json: {keys} differ")
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("first", type=Path)
    parser.add_argument("second", type=Path)
    arguments = parser.parse_args(argv)
    found = differences(arguments.first, arguments.second)
    if found:
        print("different: " + "; ".join(found))
        return 1
    print(f"identical: {arguments.first} and {arguments.second} hold the same weights and training log")
    return 0


if __name__ == "__main__":
    sys.exit(main())
