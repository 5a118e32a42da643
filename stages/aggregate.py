"""Stage aggregate: comparison table of every model plus validation curves for all of them.

Usage: python stages/aggregate.py METRICS_DIR LIVE_ROOT COMPARISON_CSV COMPARISON_MD
       ACCURACY_CSV ACCURACY_PNG LOSS_CSV LOSS_PNG [--params params.yaml]
Reads METRICS_DIR/<model>.json and LIVE_ROOT/<model>/ for every model in params.yaml.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from cnn_comparison import atomic
from cnn_comparison.comparison import (best_models, comparison_markdown, comparison_table, history_table,
                                       read_live_series)
from cnn_comparison.figures import curves_figure, save_figure
from cnn_comparison.params import load_params


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("metrics_dir", type=Path)
    parser.add_argument("live_root", type=Path)
    for name in ("comparison_csv", "comparison_md", "accuracy_csv", "accuracy_png", "loss_csv", "loss_png"):
        parser.add_argument(name, type=Path)
    parser.add_argument("--params", default="params.yaml")
    arguments = parser.parse_args(argv)
    model_names = list(load_params(arguments.params)["models"])
    metrics_paths = [arguments.metrics_dir / f"{name}.json" for name in model_names]
    missing = [str(path) for path in metrics_paths if not path.is_file()]
    if missing:
        print(f"error: missing {', '.join(missing)}; run `dvc repro` (evaluate stages) first", file=sys.stderr)
        return 1
    table = comparison_table([json.loads(path.read_text()) for path in metrics_paths])
    best = best_models(table)
    atomic.write_text(arguments.comparison_csv, table.to_csv(index=False))
    atomic.write_text(arguments.comparison_md, comparison_markdown(table, best))
    for metric, label, csv_path, png_path in (
        ("eval/accuracy", "Validation accuracy", arguments.accuracy_csv, arguments.accuracy_png),
        ("eval/loss", "Validation loss", arguments.loss_csv, arguments.loss_png),
    ):
        history = history_table({name: read_live_series(arguments.live_root / name, metric) for name in model_names})
        atomic.write_text(csv_path, history.to_csv())
        save_figure(curves_figure(history, f"{label} per epoch", label), png_path)
    print(comparison_markdown(table, best))
    return 0


if __name__ == "__main__":
    sys.exit(main())
