"""Stage split: stratified, seeded 80/20 train/validation split of the training set.

Usage: python stages/split.py DATASET PREPARED_DIR OUTPUT_DIR [--params params.yaml]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from cnn_comparison.arrays import load_arrays, save_arrays
from cnn_comparison.console import run_stage
from cnn_comparison.params import dataset_entry, load_params, validated
from cnn_comparison.preparation import split_train_validation


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dataset")
    parser.add_argument("prepared_dir", type=Path)
    parser.add_argument("output_dir", type=Path)
    parser.add_argument("--params", default="params.yaml")
    arguments = parser.parse_args(argv)
    start = time.perf_counter()
    try:
        params = validated(load_params(arguments.params))
        dataset_entry(params, arguments.dataset)
    except ValueError as error:
        print(f"error: {arguments.params}: {error}", file=sys.stderr)
        return 1
    split = params.split
    arrays = load_arrays(arguments.prepared_dir, ["train_images", "train_labels"])
    result = split_train_validation(arrays["train_images"], arrays["train_labels"],
                                    split.validation_fraction, split.seed)
    save_arrays(arguments.output_dir, result)
    print(f"[split {arguments.dataset}] train {len(result['train_labels'])}, validation "
          f"{len(result['validation_labels'])} (seed {split.seed}) in {time.perf_counter() - start:.1f} s")
    return 0


if __name__ == "__main__":
    run_stage(main)
