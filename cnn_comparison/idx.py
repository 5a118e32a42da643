"""Parse the IDX format used by MNIST and Fashion-MNIST, refusing anything malformed."""
from __future__ import annotations

import numpy as np

# The third magic byte is the element type; MNIST-style files only use unsigned bytes.
_UNSIGNED_BYTE = 0x08


class IdxFormatError(ValueError):
    """An IDX file is truncated, padded or has the wrong header."""


def parse_idx(data: bytes, name: str, expected_dimensions: int | None = None) -> np.ndarray:
    """Return the array stored in ``data``; ``name`` is only used in error messages."""
    if len(data) < 4:
        raise IdxFormatError(f"{name}: file is {len(data)} bytes, too short for an IDX header")
    zero_a, zero_b, element_type, dimensions = data[0], data[1], data[2], data[3]
    if zero_a != 0 or zero_b != 0 or element_type != _UNSIGNED_BYTE:
        raise IdxFormatError(
            f"{name}: wrong magic number 0x{data[:4].hex()} (expected 0x000008NN for unsigned-byte IDX); "
            "the file is not an uncompressed IDX file (a .gz must be decompressed first)"
        )
    if expected_dimensions is not None and dimensions != expected_dimensions:
        raise IdxFormatError(f"{name}: has {dimensions} dimensions, expected {expected_dimensions}")
    header_length = 4 + 4 * dimensions
    if len(data) < header_length:
        raise IdxFormatError(f"{name}: truncated header ({len(data)} bytes, need {header_length})")
    shape = tuple(int.from_bytes(data[4 + 4 * index: 8 + 4 * index], "big") for index in range(dimensions))
    expected_length = header_length + int(np.prod(shape, dtype=np.int64))
    if len(data) != expected_length:
        problem = "truncated" if len(data) < expected_length else "has trailing bytes"
        raise IdxFormatError(
            f"{name}: {problem}: header declares shape {shape} = {expected_length} bytes, file has {len(data)}"
        )
    return np.frombuffer(data, dtype=np.uint8, offset=header_length).reshape(shape)


def encode_idx(array: np.ndarray) -> bytes:
    """Inverse of :func:`parse_idx`; used for fixtures and mirrors."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    header = bytes([0, 0, _UNSIGNED_BYTE, array.ndim]) + b"".join(
        int(size).to_bytes(4, "big") for size in array.shape
    )
    return header + array.tobytes()
