"""Read and write the prepared arrays that flow between stages."""
from __future__ import annotations

from pathlib import Path
from typing import Mapping

import numpy as np

from cnn_comparison.atomic import staged_path


def save_arrays(directory: str | Path, arrays: Mapping[str, np.ndarray]) -> None:
    """Write every array as ``<name>.npy`` into a directory that appears only when complete."""
    with staged_path(directory, directory=True) as temporary:
        for name, array in arrays.items():
            np.save(temporary / f"{name}.npy", array)


def load_arrays(directory: str | Path, names: list[str]) -> dict[str, np.ndarray]:
    directory = Path(directory)
    missing = [name for name in names if not (directory / f"{name}.npy").is_file()]
    if missing:
        raise FileNotFoundError(f"{directory}: missing {', '.join(n + '.npy' for n in missing)}; run `dvc repro` for the stage that writes it")
    return {name: np.load(directory / f"{name}.npy") for name in names}
