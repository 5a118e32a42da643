"""dvc.yaml lists some per-model paths explicitly; keep them in step with params.yaml."""
import yaml


def load_dvc_yaml(project_root):
    return yaml.safe_load((project_root / "dvc.yaml").read_text())


def test_aggregate_depends_on_every_model(project_root, params):
    deps = load_dvc_yaml(project_root)["stages"]["aggregate"]["deps"]
    models = list(params["models"])
    assert [dep for dep in deps if dep.startswith("metrics/")] == [f"metrics/{name}.json" for name in models]
    assert [dep for dep in deps if dep.startswith("dvclive/")] == [f"dvclive/{name}" for name in models]


def test_top_level_metrics_cover_every_model(project_root, params):
    metrics = load_dvc_yaml(project_root)["metrics"]
    assert metrics == [f"metrics/{name}.json" for name in params["models"]] + ["metrics/multitask.json"]


def test_validation_curve_plots_cover_every_model(project_root, params):
    plots = {name: spec for entry in load_dvc_yaml(project_root)["plots"] if isinstance(entry, dict)
             for name, spec in entry.items()}
    for title, csv in (("Validation accuracy per epoch", "plots/validation_accuracy.csv"),
                       ("Validation loss per epoch", "plots/validation_loss.csv")):
        assert plots[title]["y"] == {csv: list(params["models"])}


def test_multitask_dedicated_models_exist(params):
    for task, config in params["multitask"]["tasks"].items():
        assert params["models"][config["dedicated_model"]]["dataset"] == config["dataset"]
        assert task in params["multitask"]["heads"]


def test_readme_opens_with_the_two_commands(project_root):
    text = (project_root / "README.md").read_text()
    code_blocks = text.split("```")
    first_block = code_blocks[1]
    assert "dvc repro" in first_block and "bash .ci/run" not in first_block
    assert "pytest" in code_blocks[3] or "pytest" in first_block


def test_readme_shows_the_latest_full_benchmark(project_root):
    table = (project_root / "benchmarks" / "results" / "benchmark.md").read_text()
    assert table.startswith("Benchmark (full mode")
    assert table in (project_root / "README.md").read_text()


def test_readme_shows_the_latest_queue_sweep(project_root):
    table = (project_root / "benchmarks" / "results" / "queue_sweep.md").read_text()
    assert table.startswith("Queue sweep, ")
    assert table in (project_root / "README.md").read_text()
