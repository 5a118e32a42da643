"""Save a Keras model so that identical weights give an identical file, and so an identical DVC hash.

A `.keras` file is a zip of metadata.json (with the save date), config.json and model.weights.h5.
Keras stamps the zip entries with the time of the save and numbers shared objects in config.json by
their memory address, so two saves of one model differ. Here the entries get a fixed date, the date
leaves metadata.json and shared objects are numbered by their first appearance; the weights file
is left as h5py writes it (it has no time in it).
"""
from __future__ import annotations

import io
import json
import re
import tempfile
import zipfile
from pathlib import Path

from cnn_comparison import atomic

FIXED_DATE = (1980, 1, 1, 0, 0, 0)  # the earliest date a zip entry can hold
_SHARED_OBJECT_ID = re.compile(rb'"shared_object_id": (\d+)')


def renumber_shared_objects(config: bytes) -> bytes:
    """Replace the memory addresses Keras uses as shared-object ids by 1, 2, ... in order of appearance."""
    numbers: dict[bytes, int] = {}

    def number(match: re.Match) -> bytes:
        return b'"shared_object_id": %d' % numbers.setdefault(match.group(1), len(numbers) + 1)

    return _SHARED_OBJECT_ID.sub(number, config)


def normalized_keras_archive(data: bytes) -> bytes:
    """The same archive, entry order and contents kept, without the save's date and addresses."""
    output = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as source, zipfile.ZipFile(output, "w") as target:
        for entry in source.infolist():
            content = source.read(entry)
            if entry.filename == "metadata.json":
                metadata = json.loads(content)
                metadata.pop("date_saved", None)
                content = json.dumps(metadata).encode()
            elif entry.filename == "config.json":
                content = renumber_shared_objects(content)
            fixed = zipfile.ZipInfo(entry.filename, date_time=FIXED_DATE)
            fixed.compress_type = entry.compress_type
            fixed.external_attr = 0o644 << 16
            target.writestr(fixed, content)
    return output.getvalue()


def save_model(model, path: str | Path) -> None:
    """``model.save`` with the archive normalized, written whole or not at all."""
    path = Path(path)
    with tempfile.TemporaryDirectory(dir=path.parent, prefix=".saving.") as directory:
        saved = Path(directory) / path.name
        model.save(saved)
        atomic.write_bytes(path, normalized_keras_archive(saved.read_bytes()))
