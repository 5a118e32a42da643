"""The benchmark harness runs and reports (seconds, synthetic images); its numbers come from running it
(benchmarks/README.md), not from the test suite, whose machine is shared with everything else CI runs."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np

import pytest

from cnn_comparison.arrays import save_arrays

pytestmark = pytest.mark.end_to_end


def test_the_harness_measures_both_sides_and_writes_its_report(project_root, tmp_path):
    rng = np.random.default_rng(0)
    save_arrays(tmp_path / "split" / "fashion", {"train_images": rng.random((64, 28, 28, 1), dtype=np.float32),
                                                 "train_labels": rng.integers(0, 10, 64).astype(np.int64)})
    output = tmp_path / "out"
    result = subprocess.run([sys.executable, "benchmarks/benchmark.py", "--quick", "--training-only", "--split-root",
                             str(tmp_path / "split"), "--models", "fmnist_4", "--images", "64",
                             "--epochs", "1", "--output-dir", str(output)],
                            cwd=project_root, capture_output=True, text=True, timeout=300)
    assert result.returncode in (0, 1), result.stdout[-3000:] + result.stderr[-3000:]  # 1: a target missed
    report = json.loads((output / "benchmark-quick.json").read_text())
    assert set(report["training"]) == set(report["projection"]) == {"fmnist_4"}
    measured = report["training"]["fmnist_4"]  # augmented: the reference side runs ImageDataGenerator
    assert len(measured["reference_epochs_images_per_second"]) == len(measured["pipeline_epochs_images_per_second"]) == 1
    # of the unrounded medians; the JSON's images/s are rounded to 0.1
    assert measured["ratio"] == pytest.approx(measured["pipeline_images_per_second"]
                                              / measured["reference_images_per_second"], rel=0.01)
    assert measured["augmented"] and report["machine_slowdown"] >= 1.0
    # the projection uses the epochs of the report's runs (params.yaml, report.reference.epochs)
    assert report["projection"]["fmnist_4"]["epochs"] == 19
    assert report["overhead"] is None and (result.returncode == 1) == bool(report["failures"])
    markdown = (output / "benchmark-quick.md").read_text()
    assert markdown.startswith("Benchmark (quick mode, 64 images per epoch)") and "| fmnist_4 " in markdown
    assert markdown in result.stdout
