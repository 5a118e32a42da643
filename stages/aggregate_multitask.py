"""Stage aggregate_multitask: dedicated vs multitask accuracy and macro F1 per task.

Usage: python stages/aggregate_multitask.py METRICS_DIR MULTITASK_JSON COMPARISON_CSV BARS_PNG [--params params.yaml]
Dedicated models are read from METRICS_DIR/<multitask.tasks.TASK.dedicated_model>.json.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from cnn_comparison import atomic
from cnn_comparison.comparison import multitask_table
from cnn_comparison.figures import grouped_bars_figure, save_figure
from cnn_comparison.params import load_params


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("metrics_dir", type=Path)
    parser.add_argument("multitask_json", type=Path)
    parser.add_argument("comparison_csv", type=Path)
    parser.add_argument("bars_png", type=Path)
    parser.add_argument("--params", default="params.yaml")
    arguments = parser.parse_args(argv)
    tasks = load_params(arguments.params)["multitask"]["tasks"]
    multitask = json.loads(arguments.multitask_json.read_text())
    dedicated = {}
    for task, config in tasks.items():
        path = arguments.metrics_dir / f"{config['dedicated_model']}.json"
        if not path.is_file():
            print(f"error: {path} not found (multitask.tasks.{task}.dedicated_model); run `dvc repro`", file=sys.stderr)
            return 1
        dedicated[task] = json.loads(path.read_text())
    table = multitask_table(dedicated, {task: multitask[task] for task in tasks})
    atomic.write_text(arguments.comparison_csv, table.to_csv(index=False))
    bars = {task: {row.model: row.accuracy for row in table[table.task == task].itertuples()} for task in tasks}
    save_figure(grouped_bars_figure(bars, "Test accuracy: dedicated vs multitask", "Test accuracy"), arguments.bars_png)
    print(table.to_markdown(index=False, floatfmt=".4f"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
