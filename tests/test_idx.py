import numpy as np
import pytest

from cnn_comparison.idx import IdxFormatError, encode_idx, parse_idx


def test_round_trip_of_images_and_labels():
    images = np.arange(3 * 28 * 28, dtype=np.uint32).reshape(3, 28, 28) % 256
    labels = np.array([7, 0, 9])
    np.testing.assert_array_equal(parse_idx(encode_idx(images), "images", expected_dimensions=3), images)
    np.testing.assert_array_equal(parse_idx(encode_idx(labels), "labels", expected_dimensions=1), labels)


def test_truncated_file_names_the_file_and_sizes():
    data = encode_idx(np.zeros((2, 28, 28)))[:-10]
    with pytest.raises(IdxFormatError, match=r"train-images-idx3-ubyte: truncated.*\(2, 28, 28\)"):
        parse_idx(data, "train-images-idx3-ubyte")


def test_trailing_bytes_are_rejected():
    with pytest.raises(IdxFormatError, match="trailing bytes"):
        parse_idx(encode_idx(np.zeros(5)) + b"\x00", "labels")


def test_wrong_magic_number_is_rejected():
    data = bytearray(encode_idx(np.zeros(5)))
    data[2] = 0x0D  # float element type
    with pytest.raises(IdxFormatError, match="labels: wrong magic number 0x00000d01"):
        parse_idx(bytes(data), "labels")


def test_gzip_bytes_are_not_mistaken_for_idx():
    with pytest.raises(IdxFormatError, match="wrong magic number 0x1f8b"):
        parse_idx(b"\x1f\x8b\x08\x00rest", "train-images-idx3-ubyte.gz")


def test_unexpected_number_of_dimensions():
    with pytest.raises(IdxFormatError, match="has 1 dimensions, expected 3"):
        parse_idx(encode_idx(np.zeros(5)), "labels-as-images", expected_dimensions=3)


def test_header_shorter_than_declared():
    with pytest.raises(IdxFormatError, match="truncated header"):
        parse_idx(bytes([0, 0, 8, 3, 0, 0]), "images")
