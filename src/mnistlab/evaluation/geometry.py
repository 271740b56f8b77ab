"""Whole-batch geometry of 28x28 images: shifts, rotations and the affine corruptions that move pixels.

`shift` and `rotate` apply one fixed amount to every image (the robustness sweeps); `shear`,
`scale`, `rotation` and `translation` are MNIST-C's geometric corruptions at its default
severities (registered in `corruptions.CORRUPTIONS`), written as affine maps about the image
centre. All take uint8 images (N, 28, 28) and return new uint8 images of the same shape.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from mnistlab.common.errors import ConfigError
from mnistlab.data.registry import IMAGE_SIDE

SIDE = IMAGE_SIDE  # pixels; images are SIDE x SIDE
CENTRE = (SIDE - 1) / 2  # pixel coordinate of the image centre, about which geometric corruptions turn and scale
CHUNK = 2048  # images warped at once: bounds the coordinate arrays to about 40 MB

SHEAR_FACTOR = 0.4  # shear: horizontal displacement per pixel of height (dimensionless), either direction
SCALE_FACTOR = 0.7  # scale: the digit shrinks to this fraction of its size about the centre
ROTATION_DEGREES = 22.9  # rotation: MNIST-C's 0.4 radians, clockwise or counter-clockwise at random
TRANSLATION_PIXELS = 3  # translation: shift along each axis in pixels, each direction at random


def as_unit_values(images: np.ndarray) -> np.ndarray:
    """`images` checked to be uint8 (N, 28, 28), as float64 in [0, 1]; `ValueError` if not."""
    if not isinstance(images, np.ndarray) or images.dtype != np.uint8 or images.shape[1:] != (SIDE, SIDE) \
            or images.ndim != 3:
        shape = getattr(images, "shape", None)
        raise ValueError(f"corruptions need uint8 images of shape (N, 28, 28), got {type(images).__name__} {shape}")
    return images.astype(np.float64) / 255.0


def to_uint8(values: np.ndarray) -> np.ndarray:
    """Values in [0, 1] back to uint8 0-255, rounded and clipped."""
    return np.clip(np.rint(values * 255.0), 0, 255).astype(np.uint8)


def _warp(values: np.ndarray, matrices: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Bilinear resampling, zero outside: output pixel p of image n reads input A_n (p - centre) + centre + offset_n.

    `values` (N, 28, 28) float, `matrices` (N, 2, 2) and `offsets` (N, 2) in (row, column) order.
    """
    grid = np.stack(np.meshgrid(np.arange(SIDE), np.arange(SIDE), indexing="ij")).reshape(2, -1) - CENTRE
    out = np.empty_like(values)
    for start in range(0, len(values), CHUNK):
        chunk = slice(start, start + CHUNK)
        sources = matrices[chunk] @ grid + CENTRE + offsets[chunk, :, None]  # (n, 2, 784)
        index = np.broadcast_to(np.arange(len(sources))[:, None], sources[:, 0].shape)
        out[chunk] = ndimage.map_coordinates(values[chunk], [index, sources[:, 0], sources[:, 1]],
                                             order=1, mode="grid-constant", cval=0.0).reshape(-1, SIDE, SIDE)
    return out


def _rotation_matrices(degrees: np.ndarray) -> np.ndarray:
    """Inverse maps (N, 2, 2) that turn images counter-clockwise as displayed (row axis pointing down)."""
    radians = np.deg2rad(degrees)
    cos, sin = np.cos(radians), np.sin(radians)
    return np.stack([np.stack([cos, sin], -1), np.stack([-sin, cos], -1)], -2)


def random_signs(rng: np.random.Generator, size) -> np.ndarray:
    return rng.choice(np.array([-1.0, 1.0]), size=size)


def shift(images: np.ndarray, pixels: int, direction: str = "right") -> np.ndarray:
    """Every image moved by a whole number of `pixels` towards `direction` (right, left, down, up); zeros fill in."""
    moves = {"right": (0, 1), "left": (0, -1), "down": (1, 0), "up": (-1, 0)}
    if direction not in moves:
        raise ConfigError(f"shift direction {direction!r} is unknown; choose one of {', '.join(moves)}")
    if int(pixels) != pixels:
        raise ValueError(f"shift needs a whole number of pixels, got {pixels}")
    as_unit_values(images)
    rows, columns = (int(pixels) * step for step in moves[direction])
    out = np.zeros_like(images)
    source = images[:, max(0, -rows):SIDE - max(0, rows), max(0, -columns):SIDE - max(0, columns)]
    out[:, max(0, rows):max(0, rows) + source.shape[1], max(0, columns):max(0, columns) + source.shape[2]] = source
    return out


def rotate(images: np.ndarray, degrees: float) -> np.ndarray:
    """Every image turned counter-clockwise by `degrees` about its centre (bilinear, zeros fill in)."""
    values = as_unit_values(images)
    matrices = np.broadcast_to(_rotation_matrices(np.float64(degrees)), (len(images), 2, 2))
    return to_uint8(_warp(values, matrices, np.zeros((len(images), 2))))


def shear(images: np.ndarray, seed: int) -> np.ndarray:
    """Slant: each row moves sideways by SHEAR_FACTOR times its height above or below the centre."""
    values = as_unit_values(images)
    factors = SHEAR_FACTOR * random_signs(np.random.default_rng(seed), len(values))
    matrices = np.zeros((len(values), 2, 2))
    matrices[:, 0, 0] = matrices[:, 1, 1] = 1.0
    matrices[:, 1, 0] = factors  # input column = output column + factor * (row - centre)
    return to_uint8(_warp(values, matrices, np.zeros((len(values), 2))))


def scale(images: np.ndarray, seed: int) -> np.ndarray:
    """Zoom out: the digit shrinks to SCALE_FACTOR of its size about the centre (the seed is unused)."""
    values = as_unit_values(images)
    matrices = np.broadcast_to(np.eye(2) / SCALE_FACTOR, (len(values), 2, 2))
    return to_uint8(_warp(values, matrices, np.zeros((len(values), 2))))


def rotation(images: np.ndarray, seed: int) -> np.ndarray:
    """Each image turned by ROTATION_DEGREES, clockwise or counter-clockwise at random."""
    values = as_unit_values(images)
    degrees = ROTATION_DEGREES * random_signs(np.random.default_rng(seed), len(values))
    return to_uint8(_warp(values, _rotation_matrices(degrees), np.zeros((len(values), 2))))


def translation(images: np.ndarray, seed: int) -> np.ndarray:
    """Each image moved TRANSLATION_PIXELS along both axes, each direction at random; zeros fill in."""
    as_unit_values(images)
    signs = random_signs(np.random.default_rng(seed), (len(images), 2)).astype(int)
    out = np.empty_like(images)
    for row_sign in (-1, 1):
        for column_sign in (-1, 1):
            chosen = (signs[:, 0] == row_sign) & (signs[:, 1] == column_sign)
            moved = shift(images[chosen], TRANSLATION_PIXELS * row_sign, "down")
            out[chosen] = shift(moved, TRANSLATION_PIXELS * column_sign, "right")
    return out
