"""Read and write IDX files, the format MNIST ships in, validating every field.

Layout (big-endian): two zero bytes, an element-type byte, a dimension-count
byte, one uint32 per dimension, then the elements. Files may be gzip-compressed;
compression is detected from the content, not the file name.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import struct
import zlib
from pathlib import Path

import numpy as np

from mnistlab.common.errors import DatasetError

GZIP_MAGIC = b"\x1f\x8b"

# IDX element-type byte -> NumPy big-endian dtype.
ELEMENT_TYPES = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


def read_payload(path: str | os.PathLike) -> bytes:
    """Return the decompressed IDX bytes of `path` (gzip or raw)."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise DatasetError(f"{path}: cannot be read ({error.strerror}); check the path and its permissions") from None
    if not raw.startswith(GZIP_MAGIC):
        return raw
    try:
        return gzip.decompress(raw)
    except (EOFError, OSError, zlib.error) as error:
        raise DatasetError(
            f"{path}: damaged gzip data ({error}); delete the file and fetch it again"
        ) from None


def payload_sha256(payload: bytes) -> str:
    """SHA-256 hex digest of decompressed IDX bytes, the dataset's canonical identity."""
    return hashlib.sha256(payload).hexdigest()


def parse_idx(payload: bytes, source: str, ndim: int) -> np.ndarray:
    """Parse IDX bytes into an unsigned-byte array with `ndim` dimensions.

    `source` names the file in error messages. MNIST-format data is always
    unsigned bytes, so other element types are rejected with a clear error.
    """
    advice = "delete the file and fetch it again, or point MNISTLAB_DATA_DIR at a good copy"
    if len(payload) < 4:
        raise DatasetError(f"{source}: too short to be an IDX file ({len(payload)} bytes); {advice}")
    zero, element_type, dimensions = struct.unpack(">HBB", payload[:4])
    if zero != 0:
        raise DatasetError(
            f"{source}: wrong magic number 0x{payload[:4].hex()} (an IDX file starts with 0x0000); {advice}"
        )
    if element_type not in ELEMENT_TYPES:
        raise DatasetError(f"{source}: unknown IDX element type 0x{element_type:02x}; {advice}")
    if element_type != 0x08:
        raise DatasetError(
            f"{source}: element type {ELEMENT_TYPES[element_type]} is not unsigned bytes (0x08) as MNIST-format data must be; {advice}"
        )
    if dimensions != ndim:
        raise DatasetError(f"{source}: has {dimensions} dimensions, expected {ndim}; {advice}")
    header_bytes = 4 + 4 * dimensions
    if len(payload) < header_bytes:
        raise DatasetError(f"{source}: truncated inside the header; {advice}")
    shape = struct.unpack(f">{dimensions}I", payload[4:header_bytes])
    expected_bytes = header_bytes + int(np.prod(shape, dtype=np.int64))
    if len(payload) != expected_bytes:
        problem = "truncated" if len(payload) < expected_bytes else "has trailing bytes"
        raise DatasetError(
            f"{source}: {problem}: header says shape {shape} ({expected_bytes} bytes), file has {len(payload)}; {advice}"
        )
    return np.frombuffer(payload, dtype=np.uint8, offset=header_bytes).reshape(shape)


def encode_idx(array: np.ndarray) -> bytes:
    """Encode an unsigned-byte array as IDX bytes (the inverse of `parse_idx`)."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    header = struct.pack(">HBB", 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.tobytes()


def write_idx(path: str | os.PathLike, array: np.ndarray, compress: bool | None = None) -> None:
    """Write `array` as an IDX file; gzip it when `compress` is true or the name ends in .gz."""
    path = Path(path)
    payload = encode_idx(array)
    if compress is None:
        compress = path.suffix == ".gz"
    path.write_bytes(gzip.compress(payload, mtime=0) if compress else payload)
