"""IDX parsing: a round trip, and every way a file can be damaged gives a DatasetError naming it."""

import gzip
import struct

import numpy as np
import pytest

from mnistlab.common.errors import DatasetError
from mnistlab.data.idx import encode_idx, parse_idx, read_payload, write_idx


def test_round_trip_images_and_labels(tmp_path):
    images = np.random.default_rng(1).integers(0, 256, size=(7, 28, 28), dtype=np.uint8)
    labels = np.array([0, 9, 3, 3, 1, 2, 8], dtype=np.uint8)
    write_idx(tmp_path / "images.gz", images)
    write_idx(tmp_path / "labels", labels)
    assert (tmp_path / "images.gz").read_bytes()[:2] == b"\x1f\x8b"
    np.testing.assert_array_equal(parse_idx(read_payload(tmp_path / "images.gz"), "images", 3), images)
    np.testing.assert_array_equal(parse_idx(read_payload(tmp_path / "labels"), "labels", 1), labels)


def test_header_matches_the_mnist_layout():
    payload = encode_idx(np.zeros((2, 28, 28), dtype=np.uint8))
    assert payload[:4] == b"\x00\x00\x08\x03"
    assert struct.unpack(">3I", payload[4:16]) == (2, 28, 28)
    assert len(payload) == 16 + 2 * 28 * 28


GOOD = encode_idx(np.arange(2 * 28 * 28, dtype=np.uint64).astype(np.uint8).reshape(2, 28, 28))


@pytest.mark.parametrize(
    ("payload", "ndim", "message"),
    [
        (GOOD[:-10], 3, "truncated"),
        (GOOD + b"\x00", 3, "trailing bytes"),
        (b"\x12\x34" + GOOD[2:], 3, "wrong magic number"),
        (GOOD[:2] + b"\x77" + GOOD[3:], 3, "unknown IDX element type"),
        (GOOD[:2] + b"\x0d" + GOOD[3:], 3, "not unsigned bytes"),
        (GOOD, 1, "has 3 dimensions, expected 1"),
        (GOOD[:9], 3, "truncated inside the header"),
        (b"\x00", 3, "too short"),
    ],
    ids=["truncated", "trailing", "magic", "unknown-type", "float-type", "dimensions", "header", "tiny"],
)
def test_damaged_payload_is_rejected_with_the_file_named(payload, ndim, message):
    with pytest.raises(DatasetError, match=message) as caught:
        parse_idx(payload, "/data/train-images-idx3-ubyte", ndim)
    text = str(caught.value)
    assert text.startswith("/data/train-images-idx3-ubyte: ")
    assert "\n" not in text
    assert "fetch it again" in text


def test_truncated_gzip_names_the_file_and_the_fix(tmp_path):
    path = tmp_path / "t10k-labels-idx1-ubyte.gz"
    path.write_bytes(gzip.compress(GOOD)[:-20])
    with pytest.raises(DatasetError, match=r"t10k-labels-idx1-ubyte.gz: damaged gzip data.*fetch it again"):
        read_payload(path)


def test_missing_file_is_a_dataset_error(tmp_path):
    with pytest.raises(DatasetError, match="cannot be read"):
        read_payload(tmp_path / "absent")
