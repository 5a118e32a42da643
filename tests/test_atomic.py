import pytest

from cnn_comparison.atomic import staged_path, write_text


def test_failed_directory_output_leaves_nothing_behind(tmp_path):
    target = tmp_path / "data" / "split"
    with pytest.raises(RuntimeError):
        with staged_path(target, directory=True) as temporary:
            (temporary / "train_images.npy").write_bytes(b"half")
            raise RuntimeError("interrupted")
    assert not target.exists()
    assert list((tmp_path / "data").iterdir()) == []


def test_failed_rewrite_keeps_the_previous_complete_file(tmp_path):
    target = tmp_path / "model.keras"
    target.write_text("finished")
    with pytest.raises(KeyboardInterrupt):
        with staged_path(target) as temporary:
            assert temporary.suffix == ".keras"  # libraries choose the format from the suffix
            temporary.write_text("half")
            raise KeyboardInterrupt
    assert target.read_text() == "finished"
    assert [path.name for path in tmp_path.iterdir()] == ["model.keras"]


def test_write_text_replaces_content(tmp_path):
    target = tmp_path / "metrics" / "a.json"
    write_text(target, "1")
    write_text(target, "2")
    assert target.read_text() == "2"
    assert [path.name for path in target.parent.iterdir()] == ["a.json"]


def test_interrupted_training_leaves_neither_model_nor_logs(tmp_path, params):
    from cnn_comparison.builder import build_sequential
    from cnn_comparison.live import train_logged_and_saved
    from cnn_comparison.params import parse_recipe

    model = build_sequential("tiny", [{"type": "flatten"}, {"type": "dense", "units": 10}])
    recipe = parse_recipe("models.tiny.training", params["models"]["digits_dedicated"]["training"])

    def interrupted(callbacks):
        raise KeyboardInterrupt  # e.g. Ctrl+C during `dvc repro`

    with pytest.raises(KeyboardInterrupt):
        train_logged_and_saved(model, recipe, interrupted, tmp_path / "models" / "tiny.keras", tmp_path / "dvclive" / "tiny")
    assert not (tmp_path / "models" / "tiny.keras").exists()
    assert not (tmp_path / "dvclive" / "tiny").exists()
    assert list((tmp_path / "models").iterdir()) == [] and list((tmp_path / "dvclive").iterdir()) == []
