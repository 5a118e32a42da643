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


def test_a_directory_is_replaced_whole_or_not_at_all(tmp_path):
    """The evaluate, aggregate and report stages' outputs: the previous directory stays complete when
    the new one fails midway, and a finished one replaces it in one step, leaving no stale file."""
    target = tmp_path / "seed_42"
    target.mkdir()
    (target / "metrics.json").write_text("old")
    (target / "stale.txt").write_text("from a run that wrote more files")
    with pytest.raises(RuntimeError):
        with staged_path(target, directory=True) as staged:
            (staged / "metrics.json").write_text("new")
            raise RuntimeError("disk full")
    assert sorted(path.name for path in tmp_path.iterdir()) == ["seed_42"]
    assert (target / "metrics.json").read_text() == "old" and (target / "stale.txt").exists()
    with staged_path(target, directory=True) as staged:
        (staged / "metrics.json").write_text("new")
    assert sorted(path.name for path in tmp_path.iterdir()) == ["seed_42"]
    assert sorted(path.name for path in target.iterdir()) == ["metrics.json"]
    assert (target / "metrics.json").read_text() == "new"
