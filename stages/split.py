"""Stage split: stratified, seeded 80/20 train/validation split of the training set.

Usage: python stages/split.py PREPARED_ROOT SPLIT_ROOT [--stage split@<dataset>] [--params params.yaml]
The dataset comes from DVC (DVC_STAGE) or --stage: reads PREPARED_ROOT/<dataset>/, writes SPLIT_ROOT/<dataset>/.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from cnn_comparison.arrays import load_arrays, save_arrays
from cnn_comparison.console import run_stage
from cnn_comparison.layout import current_stage
from cnn_comparison.params import dataset_entry, load_params, validated
from cnn_comparison.preparation import split_train_validation


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("prepared_root", type=Path)
    parser.add_argument("split_root", type=Path)
    parser.add_argument("--stage", help="split@<dataset> (default: DVC_STAGE, set by dvc repro)")
    parser.add_argument("--params", default="params.yaml")
    arguments = parser.parse_args(argv)
    start = time.perf_counter()
    try:
        params = validated(load_params(arguments.params))
        dataset = current_stage(arguments.stage, "split").group
        dataset_entry(params, dataset)
    except ValueError as error:
        print(f"error: {arguments.params}: {error}", file=sys.stderr)
        return 1
    split = params.split
    output_dir = arguments.split_root / dataset
    arrays = load_arrays(arguments.prepared_root / dataset, ["train_images", "train_labels"])
    result = split_train_validation(arrays["train_images"], arrays["train_labels"],
                                    split.validation_fraction, split.seed)
    save_arrays(output_dir, result)
    print(f"[split {dataset}] train {len(result['train_labels'])}, validation "
          f"{len(result['validation_labels'])} (seed {split.seed}) in {time.perf_counter() - start:.1f} s")
    return 0


if __name__ == "__main__":
    run_stage(main)
