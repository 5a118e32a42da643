"""CPU seconds per training epoch of two models, measured interleaved in one process.

Usage: python -m devtools.epoch_cost MODEL MODEL [--images 6000] [--rounds 3] [--epochs A B]
       e.g. python -m devtools.epoch_cost fmnist_fast fmnist_5 --epochs 20 32

Why: the fast model's target is a share of `fmnist_5`'s training CPU seconds "in the same run",
but the two were trained in different sessions, and these hosts' speed moves 1.5-2.6x from day to
day (CPU seconds included). Alternating epochs of the two models A-B-B-A in one process puts the
host's drift on both sides, so the ratio of their per-epoch CPU seconds holds across days; times
the epochs each run took, it gives the share a same-run comparison would have measured.

Each model is built and compiled as `train` does (its recipe, augmentation, EMA, first seed of its
study) and trained on the first --images training images of its dataset's split, validated on a
quarter as many (the 80/20 split's proportion); one warm-up epoch each is not counted.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Mapping, Sequence

import keras
import numpy as np

from cnn_comparison.arrays import load_arrays
from cnn_comparison.builder import build_model
from cnn_comparison.determinism import make_deterministic
from cnn_comparison.params import ModelSpec, load_params, model_spec, validated
from cnn_comparison.training import class_counts, compile_model, one_hot, training_dataset, validation_dataset

ARRAY_NAMES = ["train_images", "train_labels", "validation_images", "validation_labels"]


class Trainer:
    """One model ready to train an epoch at a time, prepared as `training.train_model` prepares it
    (single-task models only: the comparison this serves is between two Fashion-MNIST CNNs)."""

    def __init__(self, spec: ModelSpec, arrays: Mapping[str, np.ndarray]):
        if len(spec.tasks) != 1:
            raise ValueError(f"{spec.where}: epoch_cost measures single-task models only")
        recipe = spec.recipe
        make_deterministic(spec.seed)
        self.name = spec.name
        self.model = build_model(spec)
        head = next(iter(spec.tasks))
        classes = class_counts(self.model)[head]
        compile_model(self.model, recipe, [head], -(-len(arrays["train_labels"]) // recipe.batch_size))
        self.train = training_dataset(arrays["train_images"], {head: one_hot(arrays["train_labels"], classes)}, recipe)
        self.validation = validation_dataset(arrays["validation_images"],
                                             {head: one_hot(arrays["validation_labels"], classes)}, recipe)
        self.callbacks = [keras.callbacks.SwapEMAWeights()] if recipe.ema_momentum is not None else []

    def epoch_cpu_seconds(self) -> float:
        """CPU seconds (every thread of this process) of one epoch, validation included."""
        start = time.process_time()
        self.model.fit(self.train, validation_data=self.validation, epochs=1, callbacks=self.callbacks,
                       verbose=0, shuffle=False)
        return time.process_time() - start


def interleaved_epoch_costs(first: Trainer, second: Trainer, rounds: int) -> dict[str, list[float]]:
    """Per-epoch CPU seconds of each, after one warm-up epoch each, in the order A-B-B-A per round."""
    first.epoch_cpu_seconds()
    second.epoch_cpu_seconds()
    costs: dict[str, list[float]] = {first.name: [], second.name: []}
    for _ in range(rounds):
        for trainer in (first, second, second, first):
            costs[trainer.name].append(trainer.epoch_cpu_seconds())
            print(f"  {trainer.name}: {costs[trainer.name][-1]:.1f} CPU s", flush=True)
    return costs


def report(costs: Mapping[str, Sequence[float]], epochs: Sequence[int] | None) -> str:
    """The ratio of the means, and with the runs' epochs, the first's share of the second's training."""
    (first, first_costs), (second, second_costs) = costs.items()
    first_mean, second_mean = statistics.fmean(first_costs), statistics.fmean(second_costs)
    lines = [f"{name}: {statistics.fmean(values):.2f} CPU s per epoch (min {min(values):.2f}, max {max(values):.2f}, "
             f"{len(values)} epochs)" for name, values in costs.items()]
    lines.append(f"an epoch of {second} costs {second_mean / first_mean:.2f}x an epoch of {first}")
    if epochs:
        share = epochs[0] * first_mean / (epochs[1] * second_mean)
        lines.append(f"{epochs[0]} epochs of {first} take {share:.2f} of the CPU seconds of {epochs[1]} epochs of "
                     f"{second}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs=2)
    parser.add_argument("--images", type=int, default=6000, help="training images per epoch (validation: a quarter)")
    parser.add_argument("--rounds", type=int, default=3, help="A-B-B-A rounds: 2 measured epochs per model each")
    parser.add_argument("--epochs", type=int, nargs=2, metavar=("A", "B"),
                        help="epochs each model's run took, for the share of training CPU seconds")
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--split-root", type=Path, default=Path("data/split"))
    arguments = parser.parse_args(argv)
    if arguments.images < 1 or arguments.rounds < 1:
        parser.error("--images and --rounds must be positive")
    try:
        params = validated(load_params(arguments.params))
        # The first seed of the model's study; model_spec names an unknown model.
        studies = {name: next((study for study in params.studies.values() if name in study.models), None)
                   for name in arguments.models}
        specs = [model_spec(params, name, studies[name].seeds[0] if studies[name] else 0) for name in arguments.models]
    except ValueError as error:
        print(f"error: {arguments.params}: {error}", file=sys.stderr)
        return 1
    trainers = []
    for spec in specs:
        dataset = next(iter(spec.tasks.values())).dataset
        directory = arguments.split_root / dataset
        if not directory.is_dir():
            print(f"error: {directory}: no split data; run `dvc repro split@{dataset}` first", file=sys.stderr)
            return 1
        arrays = load_arrays(directory, ARRAY_NAMES)
        validation_images = max(arguments.images // 4, 1)
        arrays = {name: values[:arguments.images] if name.startswith("train") else values[:validation_images]
                  for name, values in arrays.items()}
        trainers.append(Trainer(spec, arrays))
    print(report(interleaved_epoch_costs(*trainers, arguments.rounds), arguments.epochs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
