"""Do two runs hold the same bytes? The check behind `dvc commit` after a refactor.

Usage: python -m devtools.compare_runs RUN_DIR RUN_DIR
Compares every file of two run directories (train's models/<study>/<model>/seed_<seed>/ or
evaluate's metrics/... ) byte for byte, except timings.json, the one file that holds seconds and the
machine. model.keras is byte-deterministic (cnn_comparison/model_file.py), so identical weights
mean an identical file. Exit 0 when they are identical, 1 with the differences otherwise
(docs/pipeline.md, "Refactoring without retraining").
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from cnn_comparison.layout import TIMINGS_FILE


def files(run_dir: Path) -> dict[str, bytes]:
    return {path.relative_to(run_dir).as_posix(): path.read_bytes() for path in sorted(Path(run_dir).rglob("*"))
            if path.is_file() and path.name != TIMINGS_FILE}


def differences(first: Path, second: Path) -> list[str]:
    """What differs between two run directories; empty when they hold the same bytes."""
    first_files, second_files = files(first), files(second)
    found = [f"{name}: only in {first if name in first_files else second}"
             for name in sorted(set(first_files) ^ set(second_files))]
    found += [f"{name}: differs" for name in sorted(set(first_files) & set(second_files))
              if first_files[name] != second_files[name]]
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
    print(f"identical: {arguments.first} and {arguments.second} hold the same bytes (timings apart)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
