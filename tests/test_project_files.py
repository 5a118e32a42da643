"""dvc.yaml's code dependencies, the README's promises and its benchmark tables."""
from __future__ import annotations

import ast
import copy
import re
from pathlib import Path

import yaml

from cnn_comparison.layout import (EVALUATION_DIRECTORIES, LIVE_DIRECTORY, METRICS_FILE, MODEL_FILE, TIMINGS_FILE,
                                   missing_stages, parse_stage, run_directory)
from cnn_comparison.params import validated
from project_copies import readme_command

PACKAGE = "cnn_comparison"


def package_imports(path: Path) -> set[str]:
    """Modules of the package that one file imports directly (``cnn_comparison.x`` -> ``x``)."""
    imported = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == PACKAGE:
            if node.module == PACKAGE:  # from cnn_comparison import atomic
                imported.update(alias.name for alias in node.names)
            else:
                imported.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            imported.update(alias.name.split(".")[1] for alias in node.names
                            if alias.name.startswith(PACKAGE + "."))
    return imported


def import_closure(project_root: Path, script: str) -> set[str]:
    """Every package file a stage script runs: its imports, their imports, and so on."""
    seen: set[str] = set()
    pending = package_imports(project_root / script)
    while pending:
        module = pending.pop()
        if module not in seen:
            seen.add(module)
            pending |= package_imports(project_root / PACKAGE / f"{module}.py")
    return {f"{PACKAGE}/{module}.py" for module in seen}


def stage_definitions(project_root: Path) -> dict[str, dict]:
    stages = yaml.safe_load((project_root / "dvc.yaml").read_text())["stages"]
    return {name: stage.get("do", stage) for name, stage in stages.items()}


def test_every_stage_depends_on_exactly_the_code_it_runs(project_root):
    for name, stage in stage_definitions(project_root).items():
        script = stage["cmd"].split()[1]
        assert script.startswith("stages/"), (name, stage["cmd"])
        code_deps = {dep for dep in stage["deps"] if dep.endswith(".py")}
        assert code_deps == {script} | import_closure(project_root, script), name


def test_evaluation_does_not_depend_on_the_training_loop(project_root):
    """Editing cnn_comparison/training.py (the loop, optimizers, callbacks) leaves evaluate stages up to date."""
    stages = stage_definitions(project_root)
    for name, stage in stages.items():
        if name.startswith("evaluate_"):
            assert f"{PACKAGE}/training.py" not in stage["deps"] and f"{PACKAGE}/inputs.py" in stage["deps"], name
    assert f"{PACKAGE}/training.py" not in import_closure(project_root, "stages/evaluate.py")


def test_import_closure_follows_imports_inside_the_package(tmp_path):
    (tmp_path / PACKAGE).mkdir()
    (tmp_path / PACKAGE / "a.py").write_text("from cnn_comparison.b import x\n")
    (tmp_path / PACKAGE / "b.py").write_text("from cnn_comparison import c\nimport numpy\n")
    (tmp_path / PACKAGE / "c.py").write_text("")
    (tmp_path / "stage.py").write_text("import cnn_comparison.a\n")
    assert import_closure(tmp_path, "stage.py") == {f"{PACKAGE}/{name}.py" for name in "abc"}


def test_readme_opens_with_the_two_commands(project_root):
    text = (project_root / "README.md").read_text()
    code_blocks = text.split("```")
    first_block = code_blocks[1]
    assert "dvc repro" in first_block and "bash .ci/run" not in first_block
    assert "pytest" in code_blocks[3] or "pytest" in first_block


def test_readme_stays_short_and_its_links_exist(project_root):
    text = (project_root / "README.md").read_text()
    assert len(text.encode()) < 8 * 1024
    for document in ("docs/results.md", "docs/pipeline.md", "docs/team.md", "benchmarks/README.md"):
        assert f"]({document})" in text and (project_root / document).is_file(), document


def test_benchmark_readme_shows_the_latest_full_benchmark(project_root):
    table = (project_root / "benchmarks" / "results" / "benchmark.md").read_text()
    assert table.startswith("Benchmark (full mode")
    assert table in (project_root / "benchmarks" / "README.md").read_text()


def test_package_init_runs_no_code(project_root):
    """Stages import the package's __init__ without listing it as a dependency: it must stay inert."""
    tree = ast.parse((project_root / PACKAGE / "__init__.py").read_text())
    assert [type(node) for node in tree.body] == [ast.Expr] and isinstance(tree.body[0].value, ast.Constant)


def test_every_model_is_a_dvc_artifact_at_its_trained_model_file(project_root, params):
    """dvc.yaml's `artifacts:` cannot loop over params (treeverse/dvc#8696), so this keeps it complete:
    each model's artifact is its run with its study's first seed."""
    dvc_yaml = yaml.safe_load((project_root / "dvc.yaml").read_text())
    expected = {name: f"models/{study_name}/{name}/seed_{study['seeds'][0]}/model.keras"
                for study_name, study in params["studies"].items() for name in study["models"]}
    assert set(expected) == set(params["models"])
    artifacts = dvc_yaml.get("artifacts") or {}
    missing = sorted(set(expected) - set(artifacts))
    assert not missing, f"dvc.yaml: add under `artifacts:` e.g. {missing[0]}: {{path: {expected[missing[0]]}, type: model}}"
    assert {name: artifact["path"] for name, artifact in artifacts.items()} == expected
    assert {artifact["type"] for artifact in artifacts.values()} == {"model"}


def test_every_study_has_its_train_and_evaluate_stages_over_its_models_and_seeds(project_root, params):
    """DVC's matrix cannot loop over a dict's items (treeverse/dvc#10094): one block pair per study,
    which check_params also verifies on every run; and every command is the same for every run."""
    dvc_yaml = yaml.safe_load((project_root / "dvc.yaml").read_text())
    assert missing_stages(params["studies"], params["datasets"], dvc_yaml) == []
    stages = dvc_yaml["stages"]
    for study in params["studies"]:
        assert stages[f"train_{study}"]["cmd"] == "python stages/train.py data/split models"
        assert stages[f"evaluate_{study}"]["cmd"] == "python stages/evaluate.py data/prepared models metrics"
        assert "models.${item.model}" in stages[f"train_{study}"]["params"]
    assert {name for name in stages if name.startswith(("train", "evaluate"))} == {
        f"{step}_{study}" for step in ("train", "evaluate") for study in params["studies"]}
    without_one = {**dvc_yaml, "stages": {name: stage for name, stage in stages.items() if name != "train_fast_cnn"}}
    assert missing_stages(params["studies"], params["datasets"], without_one) == [
        "studies.fast_cnn: dvc.yaml has no stage train_fast_cnn looping over its models and seeds; copy another "
        "study's train_<study> block and rename the study in it"]


def test_every_stage_writes_the_outs_dvc_yaml_declares_for_it(project_root):
    """The stages build their paths from the roots in their command and the stage's name (layout.py);
    DVC's own resolution of dvc.yaml must give the same paths."""
    from dvc.repo import Repo

    with Repo(str(project_root)) as repo:
        for stage in repo.index.stages:
            outs = {str(out) for out in stage.outs}
            if "@" not in stage.name or stage.name.startswith(("download", "prepare", "split", "aggregate")):
                continue
            parsed = parse_stage(stage.name, stage.name.split("_")[0])
            root = "models" if parsed.step == "train" else "metrics"
            run = run_directory(Path(root) / parsed.group, parsed.model, parsed.seed).as_posix()
            expected = ({f"{run}/{MODEL_FILE}", f"{run}/{LIVE_DIRECTORY}", f"{run}/{TIMINGS_FILE}"}
                        if parsed.step == "train" else
                        {f"{run}/{METRICS_FILE}", f"{run}/{TIMINGS_FILE}", f"{run}/{LIVE_DIRECTORY}/metrics.json",
                         f"{run}/{LIVE_DIRECTORY}/plots", *(f"{run}/{name}" for name in EVALUATION_DIRECTORIES
                                                              if name != LIVE_DIRECTORY)})
            assert outs == expected, stage.name
            persist = {str(out) for out in stage.outs if out.persist}
            assert persist == (set() if parsed.step == "train" else outs), stage.name


def test_readme_few_minute_path_is_a_valid_small_run_of_one_study(project_root, params):
    """The README's first `dvc exp run` (the few-minute path) sets keys params.yaml has, to values its
    schema accepts, small enough to be quick, and targets a stage dvc.yaml defines."""
    words = readme_command(project_root, "dvc exp run -S limits.")
    overrides = [words[index + 1] for index, word in enumerate(words) if word == "-S"]
    targets = [word for index, word in enumerate(words[3:], 3) if word != "-S" and words[index - 1] != "-S"]
    edited = copy.deepcopy(params)
    for override in overrides:
        key, value = override.split("=", 1)
        *parents, leaf = key.split(".")
        entry = edited
        for parent in parents:
            entry = entry[parent]
        assert leaf in entry, f"README's few-minute path sets {key}, which params.yaml does not have"
        entry[leaf] = yaml.safe_load(value)
    checked = validated(edited)
    assert all(value is not None for value in checked.limits.model_dump().values()), checked.limits
    assert checked.limits.max_epochs == 1 and checked.limits.max_train_samples <= 2000
    [target] = targets
    step, study = target.split("@")
    stage = yaml.safe_load((project_root / "dvc.yaml").read_text())["stages"][step]
    assert "foreach" in stage and study in checked.studies, target
    assert len(checked.studies[study].seeds) == 1, "one seed of the study"


def test_every_test_tests_readme_names_exists(project_root):
    """tests/README.md maps promises to tests by name; a renamed test must not leave a dead entry."""
    current_file, missing = None, []
    for file_name, name in re.findall(r"`(test_\w+\.py)?(?:::)?(test_\w+)?(?:\[[^\]]*\])?`",
                                      (project_root / "tests" / "README.md").read_text()):
        current_file = file_name or current_file
        if name and f"def {name}(" not in (project_root / "tests" / current_file).read_text():
            missing.append(f"{current_file}::{name}")
    assert missing == []
