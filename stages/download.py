"""Stage download: fetch and checksum one dataset's IDX files.

Usage: python stages/download.py RAW_ROOT [--stage download@<dataset>] [--params params.yaml]
The dataset comes from DVC (DVC_STAGE) or --stage. Writes the four files uncompressed as
RAW_ROOT/<dataset>/<idx file name>, plus SOURCE.txt.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from cnn_comparison.atomic import staged_path
from cnn_comparison.console import run_stage
from cnn_comparison.layout import current_stage
from cnn_comparison.params import dataset_entry, load_params, validated
from cnn_comparison.sources import NoVerifiedSource, acquire


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("raw_root", type=Path)
    parser.add_argument("--stage", help="download@<dataset> (default: DVC_STAGE, set by dvc repro)")
    parser.add_argument("--params", default="params.yaml")
    arguments = parser.parse_args(argv)
    try:  # the whole file is checked first
        dataset = current_stage(arguments.stage, "download").group
        entry = dataset_entry(validated(load_params(arguments.params)), dataset)
    except ValueError as error:
        print(f"error: {arguments.params}: {error}", file=sys.stderr)
        return 1
    start = time.perf_counter()
    try:
        fetched, description = acquire(dataset, entry)
    except NoVerifiedSource as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    output_dir = arguments.raw_root / dataset
    with staged_path(output_dir, directory=True) as temporary:
        for key, data in fetched.items():
            (temporary / entry.files[key].name).write_bytes(data)
        (temporary / "SOURCE.txt").write_text(f"{description}\n")
    print(f"[download {dataset}] wrote {output_dir} in {time.perf_counter() - start:.1f} s")
    return 0


if __name__ == "__main__":
    run_stage(main)
