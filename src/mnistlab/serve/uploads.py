"""What `mnistlab serve` makes of a request body: JSON pixels checked, uploads decoded within a budget (a few
at a time, their memory handed back), and the answer's pixels on the JSON scale."""

from __future__ import annotations

import asyncio
import concurrent.futures
import ctypes
import functools
import json

import numpy as np
from fastapi import HTTPException

from mnistlab.common.errors import PreprocessError
from mnistlab.data.registry import IMAGE_SIDE
from mnistlab.data.decode import decode_image
from mnistlab.vision.ink import NO_DIGIT
from mnistlab.vision.preprocess import preprocess_decoded


def json_body_pixels(body: bytes, max_bytes: int) -> np.ndarray:
    """A request's JSON body -> (28, 28) uint8, or the `HTTPException` that says what is wrong: 413 over
    `max_bytes`, 422 for bad JSON or pixels (see `pixels_from_json`)."""
    if len(body) > max_bytes:
        raise HTTPException(413, f"JSON body is {len(body):,} bytes, over the limit of {max_bytes:,}; "
                                 "send 784 numbers (under 20 kB)")
    try:
        payload = json.loads(body)
    except (ValueError, RecursionError) as error:  # bad JSON, bad UTF-8, or nesting deeper than Python's stack
        raise HTTPException(422, f"body is not valid JSON ({type(error).__name__})") from None
    try:
        return pixels_from_json(payload)
    except ValueError as error:
        raise HTTPException(422, str(error)) from None


def pixels_from_json(payload) -> np.ndarray:
    """A JSON value -> (28, 28) uint8; `ValueError` naming what is wrong. Accepts 784 numbers or 28 rows of 28."""
    if isinstance(payload, dict):
        if list(payload) != ["pixels"]:
            keys = ", ".join(json.dumps(key)[:20] for key in list(payload)[:3]) or "none"
            raise ValueError(f"got a JSON object with keys {keys}; send {{\"pixels\": [784 numbers in [0, 1]]}} or the "
                             "array alone (28x28 row by row, or 28 arrays of 28); send an image file as image/png "
                             "or image/jpeg, not inside JSON")
        payload = payload["pixels"]
    if isinstance(payload, list) and len(payload) == IMAGE_SIDE and any(isinstance(row, list) for row in payload):
        for index, row in enumerate(payload):
            if not isinstance(row, list) or len(row) != IMAGE_SIDE:
                what = f"{len(row)} items" if isinstance(row, list) else f"a JSON {type(row).__name__}"
                raise ValueError(f"row {index} has {what}; send 28 rows of 28 numbers, or 784 numbers row by row")
        values = [value for row in payload for value in row]
    elif isinstance(payload, list) and len(payload) == IMAGE_SIDE * IMAGE_SIDE:
        values = payload
    else:
        shape = f"an array of {len(payload)} items" if isinstance(payload, list) else f"a JSON {type(payload).__name__}"
        raise ValueError(f"got {shape}; send a JSON array of 784 numbers (28x28, row by row) or 28 arrays of 28")
    for index, value in enumerate(values):
        if type(value) not in (int, float) or not 0 <= value <= 1:  # bool, strings, NaN, infinities fail too
            raise ValueError(f"pixel {index} is {json.dumps(value)[:20]}; every pixel must be a number in [0, 1] "
                             "(0 = background, 1 = ink); divide 0-255 values by 255")
    pixels = np.array(values, dtype=np.float64).reshape(IMAGE_SIDE, IMAGE_SIDE)
    if pixels.max() == 0:
        raise ValueError(NO_DIGIT)
    return np.round(pixels * 255).astype(np.uint8)


@functools.cache
def _malloc_trim():
    """glibc's malloc_trim, or None where there is none (musl, macOS)."""
    try:
        return ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):
        return None


def release_free_memory() -> None:
    """Hand freed heap memory back to the OS. glibc keeps it for reuse otherwise: after a burst of large decodes
    in several threads, idle memory would stay near the burst's peak."""
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


class DecodeGate:
    """Uploads decode in a pool of `limit` threads, in turn; when the last one ends and none waits, freed memory
    is released. Few threads matter as much as few decodes: glibc gives each thread its own heap (arena), and
    what one thread frees only it reuses, so N decoding threads hold N high-water marks."""

    def __init__(self, limit: int):
        self.pool = concurrent.futures.ThreadPoolExecutor(max_workers=limit, thread_name_prefix="mnistlab-decode")
        self.pending = 0

    async def run(self, function, *args):
        """`function(*args)` in one of the pool's threads, once one is free."""
        loop = asyncio.get_running_loop()
        self.pending += 1
        try:
            return await loop.run_in_executor(self.pool, function, *args)
        finally:
            self.pending -= 1
            if self.pending == 0:
                await loop.run_in_executor(self.pool, release_free_memory)


def as_json_pixels(image: np.ndarray) -> list[float]:
    """A (28, 28) uint8 input as the API returns it: 784 numbers in [0, 1], row by row, like JSON pixels."""
    return np.round(image.ravel() / 255.0, 4).tolist()


def decode_and_segment(data: bytes, max_pixels: int, max_decode_bytes: int, classify=None) -> list:
    """Uploaded bytes -> the number's digits [(box, (28, 28) uint8)] left to right, `classify` ((N, 28, 28) uint8 ->
    probabilities) helping to tell which pieces of ink are one digit; `HTTPException` 422 otherwise."""
    from mnistlab.vision.numbers import segment_number

    try:
        image = decode_image(data, max_pixels, formats=("PNG", "JPEG"), max_bytes=max_decode_bytes)
        return segment_number(image, classify)
    except PreprocessError as error:
        raise HTTPException(422, str(error)) from None


def decode_and_preprocess(data: bytes, max_pixels: int, max_decode_bytes: int,
                          kinds: list[tuple[str, str]] = (("digits", "dark"),)) -> dict[tuple[str, str], np.ndarray]:
    """Uploaded bytes, decoded once -> a (28, 28) uint8 input per (preprocessing, background) in `kinds`; only PNG
    and JPEG decode; `HTTPException` 422 with the reason otherwise."""
    try:
        image = decode_image(data, max_pixels, formats=("PNG", "JPEG"), max_bytes=max_decode_bytes)
        return {kind: preprocess_decoded(image, *kind) for kind in kinds}
    except PreprocessError as error:
        raise HTTPException(422, str(error)) from None
