"""Stage check_params: check the whole of params.yaml, and that dvc.yaml has stages for every study and dataset.

Usage: python stages/check_params.py PARAMS DVC_YAML SCHEMA_FILE
Every other stage depends on SCHEMA_FILE (the JSON schema of params.yaml, which an editor can use
too), so this runs first whenever a byte of params.yaml changes. That catches what DVC itself
cannot see: an edit DVC compares equal (`true` for `1`), or a name that is not allowed. On an error
nothing is written and no other stage runs.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import yaml

from cnn_comparison import atomic
from cnn_comparison.console import run_stage
from cnn_comparison.layout import missing_stages
from cnn_comparison.params import Params, load_params, validated


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("params", type=Path)
    parser.add_argument("pipeline", type=Path)
    parser.add_argument("schema", type=Path)
    arguments = parser.parse_args(argv)
    try:
        params = validated(load_params(arguments.params))
    except (FileNotFoundError, ValueError) as error:
        print(f"error: {arguments.params}: {error}", file=sys.stderr)
        return 1
    problems = missing_stages(params.studies, params.datasets, yaml.safe_load(arguments.pipeline.read_text()))
    if problems:
        print(f"error: {arguments.params}: " + "; ".join(problems), file=sys.stderr)
        return 1
    atomic.write_text(arguments.schema, json.dumps(Params.model_json_schema(), indent=1, sort_keys=True) + "\n")
    print(f"[check_params] {arguments.params}: {len(params.studies)} studies, {len(params.models)} models, "
          f"{len(params.datasets)} datasets: valid")
    return 0


if __name__ == "__main__":
    run_stage(main)
