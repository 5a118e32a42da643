"""Stage prepare: parse IDX, scale to float32 in [0, 1], reshape to (N, 28, 28, 1).

Usage: python stages/prepare.py RAW_ROOT PREPARED_ROOT [--stage prepare@<dataset>] [--params params.yaml]
The dataset comes from DVC (DVC_STAGE) or --stage: reads RAW_ROOT/<dataset>/, writes PREPARED_ROOT/<dataset>/.
The test set stays in its own arrays and is not touched again until evaluation.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from cnn_comparison.arrays import save_arrays
from cnn_comparison.console import run_stage
from cnn_comparison.layout import current_stage
from cnn_comparison.idx import IdxFormatError
from cnn_comparison.params import FILE_KEYS, dataset_entry, load_params, validated
from cnn_comparison.preparation import prepare


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("raw_root", type=Path)
    parser.add_argument("prepared_root", type=Path)
    parser.add_argument("--stage", help="prepare@<dataset> (default: DVC_STAGE, set by dvc repro)")
    parser.add_argument("--params", default="params.yaml")
    arguments = parser.parse_args(argv)
    start = time.perf_counter()
    try:
        params = validated(load_params(arguments.params))
        dataset = current_stage(arguments.stage, "prepare").group
        files = dataset_entry(params, dataset).files
    except ValueError as error:
        print(f"error: {arguments.params}: {error}", file=sys.stderr)
        return 1
    raw_dir, output_dir = arguments.raw_root / dataset, arguments.prepared_root / dataset
    paths = {key: raw_dir / files[key].name for key in FILE_KEYS}
    missing = [str(path) for path in paths.values() if not path.is_file()]
    if missing:
        print(f"error: {', '.join(missing)} not found; run `dvc repro download@{dataset}`", file=sys.stderr)
        return 1
    try:
        arrays = prepare({key: path.read_bytes() for key, path in paths.items()},
                         {key: str(path) for key, path in paths.items()})
    except IdxFormatError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    save_arrays(output_dir, arrays)
    print(f"[prepare {dataset}] train {arrays['train_images'].shape}, test {arrays['test_images'].shape} "
          f"-> {output_dir} in {time.perf_counter() - start:.1f} s")
    return 0


if __name__ == "__main__":
    run_stage(main)
