"""Benchmark the pipeline against the straightforward Keras code of the reference report.

Usage: python benchmarks/benchmark.py [--quick] [--models fmnist_1 ...] [--output-dir benchmarks/results]
                                     [--run-project DIR]

Everything is measured in one run on one machine:
  * training throughput (images/s over steady-state epochs, after a warm-up epoch) of the
    pipeline's own input path and compile settings vs the reference code (`model.fit` on NumPy
    arrays; `ImageDataGenerator(...).flow(...)` for augmented recipes), same architecture, batch
    size and images, the two sides interleaved A-B-B-A so machine noise hits both;
  * pipeline overhead on a temporary copy of the project: each data stage from a local mirror,
    a no-op `dvc repro`, and the evaluate stage command on the full 10k test set, each judged
    in CPU seconds (wall seconds are shown, never judged: another job on the machine moves them);
  * a projection of a full default `dvc repro` from the measured per-epoch times.
Writes <output-dir>/benchmark.json and benchmark.md; exits 1 if a ratio is below its target
(times the allowance: 0.8 in --quick mode, 1.0 in full mode). The CPU-seconds targets are scaled
by how much slower than the target machine this one runs the reference code (machine_slowdown).
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml

PROJECT_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT_ROOT))  # devtools/, when run as `python benchmarks/benchmark.py`

from cnn_comparison.console import readable_stage_output  # noqa: E402

readable_stage_output()

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

from cnn_comparison.arrays import load_arrays  # noqa: E402
from cnn_comparison.builder import build_model, build_sequential  # noqa: E402
from cnn_comparison.layout import run_directory  # noqa: E402
from cnn_comparison.params import load_params, model_spec, validated  # noqa: E402
from cnn_comparison.provenance import library_versions  # noqa: E402
from cnn_comparison.sources import FILE_KEYS, acquire  # noqa: E402
from cnn_comparison.training import (PREDICTION_BATCH_SIZE, class_counts, compile_model, make_dataset,  # noqa: E402
                                     one_hot, training_dataset)
from devtools.project_copies import copy_run_project, copy_tracked_files  # noqa: E402
from devtools.results_doc import REFERENCE_EPOCHS_RUN  # noqa: E402

REFERENCE_MODELS = ["fmnist_1", "fmnist_2", "fmnist_3", "fmnist_4", "fmnist_5", "fmnist_6"]
# CPU seconds: what a command costs however many other jobs share the machine. The no-op repro
# and the data stages run on one core, so on an idle machine their wall time is about the same;
# evaluate's CPU seconds are divided by the cores before they are compared (wall on an idle machine).
TARGETS = {"plain_throughput_ratio": 1.0, "augmented_throughput_ratio": 1.5,
           "noop_repro_seconds": 3.0, "data_stages_seconds": 30.0, "evaluate_seconds": 10.0}
# The reference code's throughput (images/s, full mode) on the machine the seconds targets above
# were set on (benchmarks/results/benchmark.json of 2026-11-22). A slower machine gets those
# targets scaled by how much slower it runs this same reference code (see machine_slowdown).
TARGET_MACHINE_REFERENCE_IMAGES_PER_SECOND = {
    "fmnist_1": 391.0, "fmnist_2": 395.0, "fmnist_3": 1554.0, "fmnist_4": 1000.0, "fmnist_5": 534.0, "fmnist_6": 1132.0}
SECONDS_TARGETS = ("noop_repro_seconds", "data_stages_seconds", "evaluate_seconds")
# A no-op `dvc repro` checks every stage: its 3.0 s target was set for the 30 stages of the
# small-limits project before seeds became a pipeline axis, so it is held per stage (0.1 CPU s).
NOOP_TARGET_STAGES = 30
MODES = {  # images per epoch; measured epochs per side after one warm-up epoch
    "quick": {"images": 512, "measured_epochs": 4},
    "full": {"images": 4096, "measured_epochs": 6},
}


class EpochTimer(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.seconds: list[float] = []

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(time.perf_counter() - self._start)


def reference_fitter(model, images, labels, recipe):
    """The report's code: NumPy arrays straight into fit, or ImageDataGenerator for augmentation."""
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    if recipe.augmentation.enabled:
        from keras.src.legacy.preprocessing.image import ImageDataGenerator

        generator = ImageDataGenerator(width_shift_range=recipe.augmentation.width_shift,
                                       height_shift_range=recipe.augmentation.height_shift,
                                       horizontal_flip=recipe.augmentation.horizontal_flip)
        flow = generator.flow(images, labels, batch_size=recipe.batch_size)
        return lambda timer: model.fit(flow, epochs=1, callbacks=[timer], verbose=0)
    return lambda timer: model.fit(images, labels, batch_size=recipe.batch_size, epochs=1, callbacks=[timer], verbose=0)


def pipeline_fitter(model, images, labels, recipe):
    """The pipeline's own path: stages/train.py -> cnn_comparison.training, with op determinism on
    as the train stage runs it (the reference side runs with it off, as the report's code did)."""
    (head, class_count), = class_counts(model).items()
    compile_model(model, recipe, [head])
    dataset = training_dataset(images, {head: one_hot(labels, class_count)}, recipe)

    def fit_one_epoch(timer):
        # TensorFlow has a public switch on but none off: the off switch is its internal one.
        from tensorflow.python.framework import config as framework_config

        framework_config.enable_op_determinism()
        try:
            return model.fit(dataset, epochs=1, callbacks=[timer], verbose=0, shuffle=False)
        finally:
            framework_config.disable_op_determinism()
    return fit_one_epoch


def inference_seconds_per_image(model, images, pipeline: bool) -> float:
    """Validation cost: the pipeline predicts in batches of 1024, the reference in Keras' default 32."""
    start = time.perf_counter()
    if pipeline:
        model.predict(make_dataset(images, np.zeros(len(images)), PREDICTION_BATCH_SIZE, 0, shuffle=False), verbose=0)
    else:
        model.predict(images, verbose=0)
    return (time.perf_counter() - start) / len(images)


def measure_training(params: dict, model_names: list[str], images: np.ndarray, labels: np.ndarray,
                     validation_images: np.ndarray, mode: dict) -> dict:
    """Both sides train side by side, alternating epoch by epoch (A B B A ...), after one warm-up epoch each.

    This machine's speed drifts by up to 2x over tens of seconds (shared hosts), so the two sides
    are interleaved as finely as Keras allows and the ratio is taken of per-side medians.
    """
    results = {}
    checked = validated(params)
    for name in model_names:
        spec = model_spec(checked, name, checked.studies[checked.study_of(name)].seeds[0])
        recipe = spec.recipe
        keras.backend.clear_session()
        keras.utils.set_random_seed(recipe.seed)
        models = {"reference": build_sequential(name, params["models"][name]["layers"]), "pipeline": build_model(spec)}
        fitters = {"reference": reference_fitter(models["reference"], images, labels, recipe),
                   "pipeline": pipeline_fitter(models["pipeline"], images, labels, recipe)}
        throughput = {"reference": [], "pipeline": []}
        for epoch in range(1 + mode["measured_epochs"]):
            for side in (("reference", "pipeline") if epoch % 2 == 0 else ("pipeline", "reference")):
                timer = EpochTimer()
                fitters[side](timer)
                if epoch > 0:  # the first epoch traces the functions and warms caches
                    throughput[side].append(len(images) / timer.seconds[0])
        print(f"[benchmark] {name}: " + "; ".join(
            f"{side} " + ", ".join(f"{value:.0f}" for value in values) for side, values in throughput.items())
            + " images/s", flush=True)
        inference = {}
        for side, model in models.items():
            inference_seconds_per_image(model, validation_images[:256], side == "pipeline")  # warm-up
            inference[side] = inference_seconds_per_image(model, validation_images, side == "pipeline")
        reference, pipeline = statistics.median(throughput["reference"]), statistics.median(throughput["pipeline"])
        results[name] = {
            "augmented": recipe.augmentation.enabled,
            "reference_images_per_second": round(reference, 1),
            "pipeline_images_per_second": round(pipeline, 1),
            "ratio": round(pipeline / reference, 3),
            "reference_epochs_images_per_second": [round(value, 1) for value in throughput["reference"]],
            "pipeline_epochs_images_per_second": [round(value, 1) for value in throughput["pipeline"]],
            "reference_validation_seconds_per_image": inference["reference"],
            "pipeline_validation_seconds_per_image": inference["pipeline"],
            "recipe_epochs": recipe.epochs,
        }
    return results


def children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run(command: list[str], cwd: Path, env: dict) -> float:
    return run_timed(command, cwd, env)[0]


def run_timed(command: list[str], cwd: Path, env: dict) -> tuple[float, float]:
    """Wall and CPU seconds of one command; CPU time barely moves when another job shares the machine."""
    start, cpu_start = time.perf_counter(), children_cpu_seconds()
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{(result.stdout + result.stderr)[-3000:]}")
    return time.perf_counter() - start, children_cpu_seconds() - cpu_start


def make_mirror(params: dict, mirror: Path, project: Path = PROJECT_ROOT) -> None:
    """A local mirror of both datasets: ``project``'s downloaded files if present, else the sources."""
    for dataset, config in params["datasets"].items():
        target = mirror / dataset
        target.mkdir(parents=True)
        existing = project / "data" / "raw" / dataset
        names = [config["files"][key]["name"] for key in FILE_KEYS]
        if all((existing / name).is_file() for name in names):
            for name in names:
                shutil.copy(existing / name, target / name)
        else:
            files, _ = acquire(dataset, {key: config["files"][key] for key in FILE_KEYS}, config["sources"])
            for key, data in files.items():
                (target / config["files"][key]["name"]).write_bytes(data)


def write_params(path: Path, params: dict) -> None:
    path.write_text(yaml.safe_dump(params, sort_keys=False))


def measure_pipeline_overhead(params: dict, model_names: list[str], workdir: Path,
                              run_project: Path | None = None) -> tuple[dict, Path]:
    """Data stages from a local mirror, a no-op repro, and the evaluate command on 10k test images.

    Evaluate needs trained models, so the whole pipeline runs once on small limits first, unless
    ``run_project`` is a project copy where it already has (the tests keep one): then that copy's
    models are reused, and only the data stages run again, to be timed.
    """
    commit = ["git", "-c", "user.name=b", "-c", "user.email=b@example.com", "commit", "-qm", "benchmark"]
    if run_project is None:
        project = copy_tracked_files(PROJECT_ROOT, workdir / "project")
        git_commands = [["git", "init", "-q"], ["git", "add", "-A"], commit]
    else:
        project = copy_run_project(run_project, workdir / "project")
        git_commands = [["git", "add", "-A"], commit]
    mirror = workdir / "mirror"
    make_mirror(params, mirror, PROJECT_ROOT if run_project is None else run_project)
    # The mirror is the first source here, so the download stages measure a local copy + checksums.
    copy_params = load_params(project / "params.yaml")
    for dataset, config in copy_params["datasets"].items():
        config["sources"].insert(0, {"type": "directory", "path": str(mirror / dataset)})
    write_params(project / "params.yaml", copy_params)
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    dvc = [sys.executable, "-m", "dvc"]
    for command in git_commands:
        run(command, project, env)
    stages, stages_cpu = {}, {}
    for stage in ("download", "prepare", "split"):
        for dataset in ("fashion", "mnist"):
            # --force: in a run project these stages are up to date, and they are timed all the same.
            wall, cpu = run_timed([*dvc, "repro", "--force", "-s", f"{stage}@{dataset}"], project, env)
            stages[f"{stage}@{dataset}"], stages_cpu[f"{stage}@{dataset}"] = round(wall, 2), round(cpu, 2)
    if run_project is None:
        copy_params["limits"] = {"max_train_samples": 256, "max_epochs": 1, "max_eval_samples": 256}
        write_params(project / "params.yaml", copy_params)
    run([*dvc, "repro"], project, env)
    noop = [run_timed([*dvc, "repro"], project, env) for _ in range(3)]
    # The evaluate stage's command on the full 10k test set (params without the eval limit).
    full_params = workdir / "full_eval_params.yaml"
    write_params(full_params, {**copy_params, "limits": {**copy_params["limits"], "max_eval_samples": None}})
    evaluate, evaluate_cpu = {}, {}
    out = workdir / "evaluate"
    for name in model_names:
        # Results to a directory of its own, so the project's own outputs stay as DVC left them.
        checked = validated(copy_params)
        study = checked.study_of(name)
        seed = checked.studies[study].seeds[0]
        results_dir = out / name
        command = [sys.executable, "stages/evaluate.py", name, str(seed),
                   str(run_directory(project / "models" / study, name, seed)), str(results_dir), "data/prepared",
                   "--params", str(full_params)]
        wall, cpu = run_timed(command, project, env)
        evaluate[name], evaluate_cpu[name] = round(wall, 2), round(cpu, 2)
        assert json.loads((results_dir / "metrics.json").read_text())["heads"]["fashion"]["samples"] == 10000
    return {"data_stage_seconds": stages, "data_stages_total_seconds": round(sum(stages.values()), 2),
            "data_stage_cpu_seconds": stages_cpu, "data_stages_total_cpu_seconds": round(sum(stages_cpu.values()), 2),
            "noop_repro_seconds": round(statistics.median(wall for wall, _ in noop), 2),
            "noop_repro_cpu_seconds": round(statistics.median(cpu for _, cpu in noop), 2),
            "stage_count": stage_count(copy_params),
            "evaluate_seconds": evaluate,
            "evaluate_cpu_seconds": evaluate_cpu}, project


def projection(training: dict) -> dict:
    """Wall time of the full default training: per-epoch time x epochs, both implementations."""
    rows = {}
    for name, result in training.items():
        row = {}
        for side in ("reference", "pipeline"):
            epoch = 48000 / result[f"{side}_images_per_second"] + 12000 * result[f"{side}_validation_seconds_per_image"]
            row[f"{side}_epoch_seconds"] = round(epoch, 1)
            row[f"{side}_hours_reference_epochs"] = round(epoch * REFERENCE_EPOCHS_RUN[name] / 3600, 2)
            row[f"{side}_hours_max_epochs"] = round(epoch * result["recipe_epochs"] / 3600, 2)
        rows[name] = row
    return rows


def machine_slowdown(training: dict) -> float:
    """How many times slower than the target machine this one runs the reference code (at least 1).

    The seconds targets hold for the project's 2-core machine; on a host that is, say, three times
    slower (seen here on some days), every stage takes three times as long without any change to
    the pipeline. The ratio comes from the reference code, measured in the same run, so a slower
    pipeline still shows up as a miss.
    """
    ratios = [TARGET_MACHINE_REFERENCE_IMAGES_PER_SECOND[name] / result["reference_images_per_second"]
              for name, result in training.items()]
    return round(max(1.0, statistics.median(ratios)), 2)


def stage_count(params: dict) -> int:
    """Stages of dvc.yaml for these params: download/prepare/split per dataset, an aggregate per
    study, a train and an evaluate stage per model and seed."""
    checked = validated(params)
    return (3 * len(checked.datasets) + len(checked.studies)
            + sum(2 * len(study.models) * len(study.seeds) for study in checked.studies.values()))


def run_targets(stages: int) -> dict[str, float]:
    """The targets for a project of ``stages`` stages (only the no-op repro depends on it)."""
    return {**TARGETS, "noop_repro_seconds": round(TARGETS["noop_repro_seconds"] * stages / NOOP_TARGET_STAGES, 2)}


def scaled_targets(slowdown: float, targets: dict[str, float]) -> dict[str, float]:
    return {key: round(value * slowdown, 1) if key in SECONDS_TARGETS else value for key, value in targets.items()}


def cpu_measurements(overhead: dict, targets: dict) -> list[tuple[str, float, float]]:
    """(name, CPU seconds, target) of each overhead measurement; evaluate's CPU seconds per core."""
    cores = os.cpu_count() or 1
    rows = [("no-op repro", overhead["noop_repro_cpu_seconds"], targets["noop_repro_seconds"]),
            ("data stages", overhead["data_stages_total_cpu_seconds"], targets["data_stages_seconds"])]
    return rows + [(f"evaluate {name}", cpu / cores, targets["evaluate_seconds"])
                   for name, cpu in overhead["evaluate_cpu_seconds"].items()]


def check_targets(report: dict, allowance: float) -> dict[str, str]:
    """Every measurement below its target (times the allowance), keyed like 'throughput fmnist_4'."""
    failures = {}
    for name, result in report["training"].items():
        target = TARGETS["augmented_throughput_ratio" if result["augmented"] else "plain_throughput_ratio"]
        if result["ratio"] < target * allowance:
            failures[f"throughput {name}"] = f"{name}: throughput ratio {result['ratio']:.2f} < {target} x {allowance}"
    overhead, targets = report["overhead"], report["scaled_targets"]
    for key, seconds, target in cpu_measurements(overhead, targets):
        if target / seconds < allowance:
            failures[key] = (f"{key}: {seconds:.1f} CPU s, target {target:.1f} CPU s "
                             f"(ratio {target / seconds:.2f} < {allowance})")
    return failures


def markdown(report: dict) -> str:
    lines = [f"Benchmark ({report['mode']} mode, {report['images_per_epoch']} images per epoch), "
             f"{report['date']}, {report['machine']}", "",
             "| model | augmented | reference images/s | pipeline images/s | ratio | target |",
             "|---|---|---:|---:|---:|---:|"]
    for name, result in report["training"].items():
        target = TARGETS["augmented_throughput_ratio" if result["augmented"] else "plain_throughput_ratio"]
        lines.append(f"| {name} | {'yes' if result['augmented'] else 'no'} | {result['reference_images_per_second']:.0f} | "
                     f"{result['pipeline_images_per_second']:.0f} | {result['ratio']:.2f}x | {target}x |")
    overhead, targets, slowdown = report["overhead"], report["scaled_targets"], report["machine_slowdown"]
    scaled = f" ({slowdown}x slower machine)" if slowdown > 1 else ""
    walls = {"no-op repro": overhead["noop_repro_seconds"], "data stages": overhead["data_stages_total_seconds"],
             **{f"evaluate {name}": seconds for name, seconds in overhead["evaluate_seconds"].items()}}
    described = {"no-op repro": f"no-op `dvc repro` ({overhead['stage_count']} stages)",
                 "data stages": "data stages, both datasets (local mirror)"}
    lines += ["", f"| pipeline overhead | CPU seconds (evaluate: per core) | target{scaled} | wall seconds, not judged |",
              "|---|---:|---:|---:|"]
    lines += [f"| {described.get(key, key + ' (10k test images)')} | {seconds:.1f} | {target:.1f} | {walls[key]:.1f} |"
              for key, seconds, target in cpu_measurements(overhead, targets)]
    lines += ["", "| projected full training | reference epoch | pipeline epoch | reference, report's epochs | pipeline, report's epochs |",
              "|---|---:|---:|---:|---:|"]
    total = {"reference": 0.0, "pipeline": 0.0}
    for name, row in report["projection"].items():
        lines.append(f"| {name} ({REFERENCE_EPOCHS_RUN[name]} epochs) | {row['reference_epoch_seconds']:.0f} s | "
                     f"{row['pipeline_epoch_seconds']:.0f} s | {row['reference_hours_reference_epochs']:.2f} h | "
                     f"{row['pipeline_hours_reference_epochs']:.2f} h |")
        for side in total:
            total[side] += row[f"{side}_hours_reference_epochs"]
    lines.append(f"| all six | | | {total['reference']:.2f} h | {total['pipeline']:.2f} h |")
    if report["failures"]:
        lines += ["", "Below target: " + "; ".join(report["failures"].values())]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a few thousand images in all: for CI")
    parser.add_argument("--models", nargs="+", default=REFERENCE_MODELS, choices=REFERENCE_MODELS)
    parser.add_argument("--output-dir", type=Path, default=PROJECT_ROOT / "benchmarks" / "results")
    parser.add_argument("--params", type=Path, default=PROJECT_ROOT / "params.yaml")
    parser.add_argument("--run-project", type=Path, default=None,
                        help="a project copy whose whole pipeline has run (small limits): its trained models are "
                             "reused for the evaluate timing instead of running the pipeline again")
    arguments = parser.parse_args(argv)
    mode_name = "quick" if arguments.quick else "full"
    mode = MODES[mode_name]
    params = load_params(arguments.params)
    with tempfile.TemporaryDirectory(prefix="benchmark-") as scratch:
        overhead, project = measure_pipeline_overhead(params, arguments.models, Path(scratch), arguments.run_project)
        arrays = load_arrays(project / "data" / "split" / "fashion", ["train_images", "train_labels", "validation_images"])
        images, labels = arrays["train_images"][:mode["images"]], arrays["train_labels"][:mode["images"]]
        training = measure_training(params, arguments.models, images, labels,
                                    arrays["validation_images"][:mode["images"]], mode)
    report = {
        "mode": mode_name, "images_per_epoch": mode["images"],
        "date": datetime.date.today().isoformat(),
        "machine": f"{os.cpu_count()} CPU cores, {platform.machine()}, no GPU" if not tf.config.list_physical_devices("GPU")
        else f"{os.cpu_count()} CPU cores + GPU",
        "library_versions": library_versions(), "targets": run_targets(overhead["stage_count"]),
        "machine_slowdown": machine_slowdown(training), "training": training, "overhead": overhead,
        "projection": projection(training),
    }
    report["scaled_targets"] = scaled_targets(report["machine_slowdown"], report["targets"])
    report["failures"] = check_targets(report, 0.8 if arguments.quick else 1.0)
    arguments.output_dir.mkdir(parents=True, exist_ok=True)
    stem = "benchmark-quick" if arguments.quick else "benchmark"
    (arguments.output_dir / f"{stem}.json").write_text(json.dumps(report, indent=2) + "\n")
    (arguments.output_dir / f"{stem}.md").write_text(markdown(report))
    print(markdown(report))
    return 1 if report["failures"] else 0


if __name__ == "__main__":
    sys.exit(main())
