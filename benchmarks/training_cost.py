"""Training cost of deterministic training (issue #22) and of bfloat16 mixed precision, as ratios.

Usage: python benchmarks/training_cost.py --old-tree /tmp/cost_old --new-tree /tmp/cost_new
           [--models fmnist_1 ...] [--images 4096] [--epochs 3] [--rounds 1]
           [--precision] [--precision-models fmnist_1 fmnist_3] [--no-diagnose] [--skip-determinism]

Measures training images/s (steady-state epochs after a warm-up epoch, training batches only,
validation excluded) of each tree's own training path, `cnn_comparison.training.train_model`
(compile_model + training_dataset + model.fit), on the same first N training images:
  1. new code (7e810fe: make_deterministic, stateless augmentation) against the code before it
     (c9645fc), per reference model; models below the 0.95 target get a follow-up round of the
     new code with op determinism turned off again after make_deterministic (TF 2.21 has only the
     internal `tensorflow.python.framework.config.disable_op_determinism`),
     to tell op determinism apart from the rest of the new path;
  2. (--precision) in the new tree, float32 against the "mixed_bfloat16" dtype policy set on every
     layer entry (the builder keeps each head's output layer float32).
Variants are interleaved A-B-B-A and compared as ratios of medians, because this host's speed
moves 1.5-2.6x within minutes. Every measurement runs in a fresh subprocess: op determinism and
the mixed-precision policy are process-global, and each tree must import its own
`cnn_comparison` (through PYTHONPATH). Writes benchmarks/results/training_cost.{json,md}.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
DATA = Path(__file__).resolve().parents[1] / "data" / "split" / "fashion"
REFERENCE_MODELS = ["fmnist_1", "fmnist_2", "fmnist_3", "fmnist_4", "fmnist_5", "fmnist_6"]
TARGET = 0.95
SEED = 42
VALIDATION_IMAGES = 512  # fit() validates every epoch; the timing leaves it out
RESULT_PREFIX = "RESULT "
# variant -> (tree, what the worker does differently)
VARIANTS = {"old": "old", "new": "new", "new_nondet": "new", "new_bf16": "new"}


def worker(tree: str, variant: str, model_name: str, images: int, epochs: int) -> dict:
    """One training run in this process; returns per-epoch training seconds and the final loss."""
    import dataclasses

    import keras
    import numpy as np
    import tensorflow as tf

    import cnn_comparison
    from cnn_comparison.builder import build_sequential
    from cnn_comparison.params import load_params, parse_recipe
    from cnn_comparison.training import train_model

    assert Path(cnn_comparison.__file__).resolve().is_relative_to(Path(tree).resolve()), cnn_comparison.__file__
    raw = load_params(Path(tree) / "params.yaml")
    entry = raw["models"][model_name]
    layers = [dict(layer) for layer in entry["layers"]]
    where = f"models.{model_name}.training"
    if variant == "old":  # c9645fc: seed in the recipe, set by train_model after building; no op determinism
        recipe = dataclasses.replace(parse_recipe(where, entry["training"]), epochs=epochs)
        model = build_sequential(model_name, layers)
        head = None  # c9645fc's single-task models had no named head
    else:  # today's code, as stages/train.py runs it: validated params, study seed, make_deterministic first
        from cnn_comparison.builder import build_model
        from cnn_comparison.determinism import make_deterministic
        from cnn_comparison.params import model_spec, validated

        if variant == "new_bf16":  # every layer in mixed precision; build_with_heads keeps the output float32
            for layer in raw["models"][model_name]["layers"]:
                layer["dtype"] = "mixed_bfloat16"
        spec = model_spec(validated(raw), model_name, SEED)
        recipe = spec.recipe.model_copy(update={"epochs": epochs})
        spec = spec.model_copy(update={"recipe": recipe})
        make_deterministic(SEED)
        if variant == "new_nondet":  # TF 2.21 has no public tf.config.experimental.disable_op_determinism
            from tensorflow.python.framework import config as framework_config

            framework_config.disable_op_determinism()
        model = build_model(spec)
        (head,) = spec.tasks

    arrays = {name: np.load(DATA / f"{name}.npy") for name in
              ("train_images", "train_labels", "validation_images", "validation_labels")}
    arrays = {name: array[:images] if name.startswith("train") else array[:VALIDATION_IMAGES]
              for name, array in arrays.items()}

    class EpochTimer(keras.callbacks.Callback):
        """Wall and CPU seconds from an epoch's start to its validation (training batches only)."""

        def __init__(self) -> None:
            super().__init__()
            self.wall: list[float] = []
            self.cpu: list[float] = []

        def on_epoch_begin(self, epoch, logs=None):
            self.start = time.perf_counter(), time.process_time()
            self.open = True

        def _close(self) -> None:
            if getattr(self, "open", False):
                self.wall.append(time.perf_counter() - self.start[0])
                self.cpu.append(time.process_time() - self.start[1])
                self.open = False

        def on_test_begin(self, logs=None):
            self._close()

        def on_epoch_end(self, epoch, logs=None):
            self._close()

    timer = EpochTimer()
    history, _ = train_model(model, {head: arrays}, recipe, [timer])
    from tensorflow.python.framework import config as framework_config  # the flag has no public getter

    timed = slice(1, None)  # epoch 1 is warm-up (tracing, first-iteration costs)
    return {
        "images_per_second": len(arrays["train_labels"]) * len(timer.wall[timed]) / sum(timer.wall[timed]),
        "epoch_wall_seconds": [round(s, 3) for s in timer.wall],
        "epoch_cpu_seconds": [round(s, 3) for s in timer.cpu],
        "final_loss": float(history.history["loss"][-1]),
        "op_determinism": bool(framework_config.is_op_determinism_enabled()),
        "policy": model.layers[1].dtype_policy.name,
        "augmentation": bool(recipe.augmentation.enabled),
    }


def measure(trees: dict[str, Path], variant: str, model_name: str, images: int, epochs: int) -> dict:
    """Run `worker` in a fresh interpreter with PYTHONPATH set to the variant's tree."""
    tree = trees[VARIANTS[variant]]
    command = [sys.executable, str(Path(__file__).resolve()), "--worker", variant, model_name,
               "--tree", str(tree), "--images", str(images), "--epochs", str(epochs)]
    environment = {**os.environ, "PYTHONPATH": str(tree), "TF_CPP_MIN_LOG_LEVEL": "2"}
    started = time.time()
    completed = subprocess.run(command, env=environment, capture_output=True, text=True, cwd=tree)
    lines = [line for line in completed.stdout.splitlines() if line.startswith(RESULT_PREFIX)]
    if completed.returncode != 0 or not lines:
        raise RuntimeError(f"{variant} {model_name} failed:\n{completed.stderr[-3000:]}")
    result = {"variant": variant, "model": model_name, "started": round(started, 1),
              **json.loads(lines[-1][len(RESULT_PREFIX):])}
    print(f"  {model_name:9s} {variant:10s} {result['images_per_second']:8.1f} images/s  "
          f"epochs {result['epoch_wall_seconds']} s  loss {result['final_loss']:.4f}", flush=True)
    return result


def interleaved(trees: dict[str, Path], a: str, b: str, model_name: str, images: int, epochs: int,
                rounds: int) -> dict:
    """A-B-B-A per round; the ratio of medians b/a and each round's ratio (mean B / mean A)."""
    runs = []
    for _ in range(rounds):
        runs += [measure(trees, variant, model_name, images, epochs) for variant in (a, b, b, a)]
    speeds = {variant: [run["images_per_second"] for run in runs if run["variant"] == variant] for variant in (a, b)}
    per_round = [statistics.mean(speeds[b][2 * r: 2 * r + 2]) / statistics.mean(speeds[a][2 * r: 2 * r + 2])
                 for r in range(rounds)]
    losses = {variant: [run["final_loss"] for run in runs if run["variant"] == variant] for variant in (a, b)}
    return {"model": model_name, "a": a, "b": b, "images_per_second": speeds, "final_loss": losses,
            "ratio_of_medians": statistics.median(speeds[b]) / statistics.median(speeds[a]),
            "per_round_ratios": per_round, "runs": runs}


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def environment_info() -> dict:
    versions = subprocess.run(
        [sys.executable, "-c", "import tensorflow as tf, keras, numpy; print(tf.__version__, keras.__version__, "
                               "numpy.__version__)"], capture_output=True, text=True,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}).stdout.split()
    cpuinfo = Path("/proc/cpuinfo").read_text()
    flags = next((line.split(":", 1)[1].split() for line in cpuinfo.splitlines() if line.startswith("flags")), [])
    model = next((line.split(":", 1)[1].strip() for line in cpuinfo.splitlines() if line.startswith("model name")), "")
    return {"cpu": model, "cores": os.cpu_count(), "platform": platform.platform(),
            "python": platform.python_version(), "tensorflow": versions[0], "keras": versions[1],
            "numpy": versions[2], "cpu_flags": sorted(set(flags) & {"avx512f", "avx512_bf16", "amx_bf16", "avx2"})}


def cpu_ratio(comparison: dict) -> float:
    """Ratio of medians of images per CPU second (timed epochs): less sensitive than wall time to
    other processes taking the cores, though not immune (shared caches, spinning thread pools)."""
    def per_cpu_second(run: dict) -> float:
        return run["images_per_second"] * sum(run["epoch_wall_seconds"][1:]) / sum(run["epoch_cpu_seconds"][1:])
    medians = {variant: statistics.median(per_cpu_second(run) for run in comparison["runs"] if run["variant"] == variant)
               for variant in (comparison["a"], comparison["b"])}
    return medians[comparison["b"]] / medians[comparison["a"]]


def table(comparisons: list[dict], label: str) -> list[str]:
    lines = [f"| model | {label} ratio of medians | per-round ratios | same, per CPU second | images/s A (raw) | "
             "images/s B (raw) | final loss A | final loss B |", "|---|---|---|---|---|---|---|---|"]
    for c in comparisons:
        def raw(values: list[float], digits: int = 0) -> str:
            return ", ".join(f"{v:.{digits}f}" for v in values)
        lines.append(f"| {c['model']} | **{c['ratio_of_medians']:.3f}** | {raw(c['per_round_ratios'], 3)} | "
                     f"{cpu_ratio(c):.3f} | "
                     f"{c['a']}: {raw(c['images_per_second'][c['a']])} | {c['b']}: {raw(c['images_per_second'][c['b']])} | "
                     f"{raw(c['final_loss'][c['a']], 3)} | {raw(c['final_loss'][c['b']], 3)} |")
    return lines


def write_markdown(report: dict, path: Path) -> None:
    s = report["settings"]
    lines = ["# Training cost: deterministic training and bfloat16", "",
             f"{report['date']}; {report['machine']['cpu']}, {report['machine']['cores']} cores "
             f"({', '.join(report['machine']['cpu_flags'])}); TensorFlow {report['machine']['tensorflow']}, "
             f"Keras {report['machine']['keras']}, Python {report['machine']['python']}.",
             f"First {s['images']} training images, batch per recipe, {s['epochs']} epochs; images/s over epochs "
             f"2-{s['epochs']} (training batches only), one fresh process per run, A-B-B-A x {s['rounds']}.",
             "", f"Load: before `{report['uptime_before']}`; after `{report['uptime_after']}`.", ""]
    if report["determinism"]:
        lines += [f"## New ({report['settings'].get('new_label', 'today')}) / old (c9645fc)", "", *table(report["determinism"], "new/old"), ""]
    if report["diagnosis"]:
        lines += ["## Op determinism off in the new code / new code", "",
                  *table(report["diagnosis"], "nondet/new"), ""]
    if report["precision"]:
        lines += ["## mixed_bfloat16 / float32 (new code)", "", *table(report["precision"], "bf16/f32"), ""]
    lines += [f"Wall time of the whole run: {report['seconds']:.0f} s.", ""]
    path.write_text("\n".join(lines))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--old-tree", type=Path)
    parser.add_argument("--new-tree", type=Path)
    parser.add_argument("--models", nargs="+", default=REFERENCE_MODELS)
    parser.add_argument("--images", type=int, default=4096)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--precision", action="store_true", help="also measure mixed_bfloat16 vs float32")
    parser.add_argument("--precision-models", nargs="+", default=["fmnist_1", "fmnist_3"])
    parser.add_argument("--skip-determinism", action="store_true")
    parser.add_argument("--no-diagnose", action="store_true", help="no op-determinism-off round below the target")
    parser.add_argument("--output-dir", type=Path, default=RESULTS)
    parser.add_argument("--new-label", default="today", help="how the report names the new tree (a commit)")
    parser.add_argument("--markdown-only", action="store_true", help="rewrite the .md from the existing .json")
    parser.add_argument("--worker", nargs=2, metavar=("VARIANT", "MODEL"), help=argparse.SUPPRESS)
    parser.add_argument("--tree", help=argparse.SUPPRESS)
    arguments = parser.parse_args(argv)
    if arguments.worker:
        result = worker(arguments.tree, *arguments.worker, arguments.images, arguments.epochs)
        print(RESULT_PREFIX + json.dumps(result), flush=True)
        return 0
    if arguments.markdown_only:
        report = json.loads((arguments.output_dir / "training_cost.json").read_text())
        write_markdown(report, arguments.output_dir / "training_cost.md")
        return 0

    trees = {"old": arguments.old_tree.resolve(), "new": arguments.new_tree.resolve()}
    started, before = time.time(), uptime()
    print(f"load before: {before}", flush=True)
    report: dict = {"date": datetime.datetime.now().isoformat(timespec="seconds"), "machine": environment_info(),
                    "trees": {k: str(v) for k, v in trees.items()}, "uptime_before": before,
                    "settings": {"images": arguments.images, "epochs": arguments.epochs, "rounds": arguments.rounds,
                                 "validation_images": VALIDATION_IMAGES, "seed": SEED, "target": TARGET,
                                 "new_label": arguments.new_label},
                    "determinism": [], "diagnosis": [], "precision": []}
    settings = (arguments.images, arguments.epochs, arguments.rounds)

    def save() -> None:  # after every comparison, so an interrupted run keeps what it measured
        report["uptime_after"] = uptime()
        report["seconds"] = round(time.time() - started, 1)
        arguments.output_dir.mkdir(parents=True, exist_ok=True)
        (arguments.output_dir / "training_cost.json").write_text(json.dumps(report, indent=1) + "\n")
        write_markdown(report, arguments.output_dir / "training_cost.md")

    def compare(section: str, a: str, b: str, model_name: str) -> float:
        report[section].append(interleaved(trees, a, b, model_name, *settings))
        save()
        ratio = report[section][-1]["ratio_of_medians"]
        print(f"{model_name}: {b}/{a} {ratio:.3f}", flush=True)
        return ratio

    below = [] if arguments.skip_determinism else [
        name for name in arguments.models if compare("determinism", "old", "new", name) < TARGET]
    for model_name in arguments.precision_models if arguments.precision else []:
        compare("precision", "new", "new_bf16", model_name)
    for model_name in [] if arguments.no_diagnose else below:  # last: it only explains a miss
        compare("diagnosis", "new", "new_nondet", model_name)
    save()
    print(f"load after: {report['uptime_after']}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
