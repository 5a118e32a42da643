"""Stage download: fetch and checksum one dataset's IDX files.

Usage: python stages/download.py DATASET OUTPUT_DIR [--params params.yaml]
Writes the four files uncompressed as OUTPUT_DIR/<idx file name>, plus SOURCE.txt.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from cnn_comparison.atomic import staged_path
from cnn_comparison.console import run_stage
from cnn_comparison.params import dataset_entry, load_params, validated
from cnn_comparison.sources import NoVerifiedSource, acquire


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dataset")
    parser.add_argument("output_dir", type=Path)
    parser.add_argument("--params", default="params.yaml")
    arguments = parser.parse_args(argv)
    try:  # the whole file is checked first
        entry = dataset_entry(validated(load_params(arguments.params)), arguments.dataset)
    except ValueError as error:
        print(f"error: {arguments.params}: {error}", file=sys.stderr)
        return 1
    start = time.perf_counter()
    try:
        fetched, description = acquire(arguments.dataset, entry)
    except NoVerifiedSource as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    with staged_path(arguments.output_dir, directory=True) as temporary:
        for key, data in fetched.items():
            (temporary / entry.files[key].name).write_bytes(data)
        (temporary / "SOURCE.txt").write_text(f"{description}\n")
    print(f"[download {arguments.dataset}] wrote {arguments.output_dir} in {time.perf_counter() - start:.1f} s")
    return 0


if __name__ == "__main__":
    run_stage(main)
