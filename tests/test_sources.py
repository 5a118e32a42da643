import gzip
import hashlib

import pytest

from cnn_comparison.params import Dataset, validated
from cnn_comparison.sources import FILE_KEYS, NoVerifiedSource, acquire

CONTENT = {key: f"{key} bytes".encode() for key in FILE_KEYS}
FILES = {key: {"name": f"{key}-idx", "sha256": hashlib.sha256(data).hexdigest()} for key, data in CONTENT.items()}


def entry(files: dict, sources: list[dict]) -> Dataset:
    """A validated ``datasets.<name>`` entry, as the download stage hands it to ``acquire``."""
    return Dataset.model_validate({"class_names": ["a", "b"], "files": files, "sources": sources})


def write_mirror(directory, corrupt=None, compress=False):
    directory.mkdir()
    for key, data in CONTENT.items():
        if key == corrupt:
            data = data + b"!"
        name = FILES[key]["name"]
        if compress:
            (directory / f"{name}.gz").write_bytes(gzip.compress(data))
        else:
            (directory / name).write_bytes(data)
    return directory


def test_checksum_mismatch_falls_through_to_the_next_source(tmp_path):
    corrupted = write_mirror(tmp_path / "corrupted", corrupt="train_labels")
    good = write_mirror(tmp_path / "good", compress=True)
    messages = []
    files, used = acquire("toy", entry(FILES, [{"type": "directory", "path": str(corrupted)},
                                               {"type": "directory", "path": str(good)}]), log=messages.append)
    assert files == CONTENT
    assert used == f"directory {good}"
    assert len(messages) == 2
    assert "train_labels-idx: checksum mismatch" in messages[0]
    assert FILES["train_labels"]["sha256"] in messages[0]
    assert hashlib.sha256(CONTENT["train_labels"] + b"!").hexdigest() in messages[0]


def damage(path, how):
    data = bytearray(path.read_bytes())
    if how == "byte-flipped":  # inside the deflate stream: zlib.error before #24
        data[len(data) // 2] ^= 0xFF
        path.write_bytes(bytes(data))
    else:  # truncated: EOFError, reported without the file's name before #24
        path.write_bytes(bytes(data[: len(data) // 2]))


@pytest.mark.parametrize("how", ["byte-flipped", "truncated"])
def test_a_damaged_gzip_is_reported_by_name_and_the_next_source_is_tried(tmp_path, how):
    CONTENT_LONG = {key: (key * 400).encode() for key in FILE_KEYS}  # long enough to have a deflate body
    files_spec = {key: {"name": f"{key}-idx", "sha256": hashlib.sha256(data).hexdigest()}
                  for key, data in CONTENT_LONG.items()}
    damaged, good = tmp_path / "damaged", tmp_path / "good"
    for directory in (damaged, good):
        directory.mkdir()
        for key, data in CONTENT_LONG.items():
            (directory / f"{key}-idx.gz").write_bytes(gzip.compress(data, mtime=0))
    damage(damaged / "test_labels-idx.gz", how)
    messages = []
    files, used = acquire("toy", entry(files_spec, [{"type": "directory", "path": str(damaged)},
                                                    {"type": "directory", "path": str(good)}]), log=messages.append)
    assert files == CONTENT_LONG and used == f"directory {good}"
    assert f"{damaged / 'test_labels-idx.gz'}: damaged gzip file" in messages[0], messages


def test_every_failure_is_listed_when_nothing_verifies(tmp_path, monkeypatch):
    monkeypatch.delenv("CNN_DATA_MIRROR", raising=False)
    sources = [
        {"type": "directory", "path": str(write_mirror(tmp_path / "bad", corrupt="test_images"))},
        {"type": "directory", "path": str(tmp_path / "missing")},
        {"type": "directory", "path": "$CNN_DATA_MIRROR/toy"},
        {"type": "url", "url": "http://127.0.0.1:9", "timeout_seconds": 2.0},  # discard port: refused
    ]
    with pytest.raises(NoVerifiedSource) as raised:
        acquire("toy", entry(FILES, sources), log=lambda message: None)
    message = str(raised.value)
    assert "test_images-idx: checksum mismatch" in message
    assert f"{tmp_path / 'missing'} does not exist" in message
    assert "environment variable not set" in message
    assert "http://127.0.0.1:9/train_images-idx" in message
    assert "datasets.toy.sources" in message


def test_unknown_source_type_is_a_params_error_before_anything_is_fetched(params):
    changed = {**params, "datasets": {**params["datasets"], "fashion": {**params["datasets"]["fashion"],
                                                                          "sources": [{"type": "ftp"}]}}}
    with pytest.raises(ValueError, match=r"datasets\.fashion\.sources\[0\]: unknown source type"):
        validated(changed)


def test_missing_package_tool_is_reported_not_raised(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no npm, no apt-get on this PATH
    good = write_mirror(tmp_path / "good")
    messages = []
    _, used = acquire("toy", entry(FILES, [{"type": "npm_package", "package": "nothing@1", "path": "package/data"},
                                           {"type": "directory", "path": str(good)}]), log=messages.append)
    assert used == f"directory {good}"
    assert "`npm` is not installed" in messages[0]
