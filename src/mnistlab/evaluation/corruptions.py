"""Corrupted copies of MNIST-format images, in the spirit of MNIST-C (Mu and Gilmer 2019, arXiv:1906.02337).

Every corruption takes uint8 images (N, 28, 28) and a seed and returns new uint8
images of the same shape; the seed drives a numpy Generator, so the same images
and seed always give the same corrupted copies. Each works on the whole batch
at once. The severities are MNIST-C's published ones (its default level for each
corruption); the geometric ones (shear, scale, rotate, translate) live in `geometry.py`
as affine maps about the image centre, with their severities; the line drawings here use a
distance-based anti-aliased pen.

    from mnistlab.evaluation.corruptions import CORRUPTIONS, corrupt
    noisy = corrupt(test_images, "shot-noise", seed=0)

`geometry.shift` and `geometry.rotate` apply one fixed amount to every image, for accuracy sweeps.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
from scipy import ndimage

from mnistlab.common.errors import ConfigError
from mnistlab.evaluation.geometry import (SIDE, as_unit_values, rotation, scale, shear, to_uint8,
                                         translation)

SHOT_PHOTONS = 3  # shot noise: expected photon count of a white pixel (Poisson; fewer photons = more noise)
IMPULSE_FRACTION = 0.17  # impulse noise: share of pixels set to black or white (half each)
GLASS_SIGMA = 0.7  # glass blur: Gaussian blur before and after the shuffle, in pixels
GLASS_DISTANCE = 1  # glass blur: largest swap distance along each axis, in pixels
GLASS_PASSES = 2  # glass blur: passes of local pixel swaps over the image
MOTION_LENGTH = 10  # motion blur: length of the smear, in pixels
MOTION_SIGMA = 3.0  # motion blur: Gaussian fall-off of the smear's weights along its length, in pixels
MOTION_MAX_ANGLE = 45.0  # motion blur: direction drawn uniformly within +-this many degrees of horizontal
BRIGHTNESS_ADDED = 0.5  # brightness: fraction of full white added to every pixel
STRIPE_COLUMNS = (range(0, 7), range(21, 28))  # stripe: columns whose intensities are inverted
FOG_STRENGTH = 3.0  # fog: haze brightness relative to the digit's (the digit keeps 1 / (1 + this) of its contrast)
FOG_DECAY = 1.4  # fog: amplitude ratio between one octave of the fractal haze and the next finer one
FOG_GRIDS = (2, 4, 7, 14, 28)  # fog: lattice sizes of the haze's octaves, coarse to fine (each divides SIDE)
SPATTER_MEAN, SPATTER_SPREAD = 0.65, 0.3  # spatter: mean and std of the random liquid layer, in [0, 1] units
SPATTER_SIGMA, SPATTER_THRESHOLD = 1.0, 0.65  # spatter: blur of the liquid (pixels) and the level that wets
SPATTER_EDGE_SIGMA, SPATTER_OPACITY = 1.5, 0.8  # spatter: blur of the wet mask (pixels), and the least opacity kept
SPATTER_GREY = 63  # spatter: grey level of the mud, 0-255
PEN_WIDTH = 2.3  # lines: distance from the pen's centre at which the ink fades to nothing, in pixels
DASH = 2  # dotted line: length of each dash and each gap, in pixels of width
ZIGZAG_STEP, ZIGZAG_AMPLITUDE = 2.0, 2.0  # zigzag: along-line half-period and sideways amplitude, in pixels
ZIGZAG_SLOPE_PIXELS = 5  # zigzag: the line rises or falls by up to this many pixels over its length
EDGE_SIGMA = 1.0  # edges only: Gaussian smoothing of the Canny edge detector, in pixels


ROWS, COLUMNS = np.meshgrid(np.arange(SIDE, dtype=np.float64), np.arange(SIDE, dtype=np.float64), indexing="ij")


def _segment_distance(r0, c0, r1, c1) -> np.ndarray:
    """Distance (N, 28, 28) of every pixel to one segment per image from (r0, c0) to (r1, c1), each (N,)."""
    r0, c0, r1, c1 = (np.asarray(value, dtype=np.float64)[:, None, None] for value in (r0, c0, r1, c1))
    length_squared = np.maximum((r1 - r0) ** 2 + (c1 - c0) ** 2, 1e-12)
    position = np.clip(((ROWS - r0) * (r1 - r0) + (COLUMNS - c0) * (c1 - c0)) / length_squared, 0.0, 1.0)
    return np.hypot(ROWS - (r0 + position * (r1 - r0)), COLUMNS - (c0 + position * (c1 - c0)))


def _pen(distance: np.ndarray) -> np.ndarray:
    """Ink in [0, 1] at `distance` pixels from a stroke: 1 + log(1 - distance / PEN_WIDTH), MNIST-C's pen profile."""
    return np.clip(1.0 + np.log(np.clip(1.0 - distance / PEN_WIDTH, 1e-12, None)), 0.0, 1.0)


def shot_noise(images: np.ndarray, seed: int) -> np.ndarray:
    """Photon noise: each pixel becomes Poisson(SHOT_PHOTONS * intensity) / SHOT_PHOTONS; black stays black."""
    rng = np.random.default_rng(seed)
    return to_uint8(rng.poisson(as_unit_values(images) * SHOT_PHOTONS) / SHOT_PHOTONS)


def impulse_noise(images: np.ndarray, seed: int) -> np.ndarray:
    """Salt and pepper: IMPULSE_FRACTION of the pixels, drawn at random, turn white or black with equal odds."""
    values = as_unit_values(images)
    rng = np.random.default_rng(seed)
    hit = rng.random(values.shape) < IMPULSE_FRACTION
    salt = rng.random(values.shape) < 0.5
    return to_uint8(np.where(hit, salt.astype(np.float64), values))


def glass_blur(images: np.ndarray, seed: int) -> np.ndarray:
    """Frosted glass: blur, swap each pixel with a random near neighbour (probability 1/2, in turn), blur again.

    The swaps run pixel by pixel, as in MNIST-C, but for all images at once.
    """
    rng = np.random.default_rng(seed)
    values = ndimage.gaussian_filter(as_unit_values(images), sigma=(0, GLASS_SIGMA, GLASS_SIGMA), mode="nearest")
    inner = range(SIDE - 1 - GLASS_DISTANCE, GLASS_DISTANCE - 1, -1)
    every = np.arange(len(values))
    for _ in range(GLASS_PASSES):
        swap = rng.random((SIDE, SIDE, len(values))) < 0.5
        moves = rng.integers(-GLASS_DISTANCE, GLASS_DISTANCE + 1, size=(SIDE, SIDE, 2, len(values)))
        for row in inner:
            for column in inner:
                chosen = every[swap[row, column]]
                other_row = row + moves[row, column, 0, chosen]
                other_column = column + moves[row, column, 1, chosen]
                here, there = values[chosen, row, column], values[chosen, other_row, other_column]
                values[chosen, other_row, other_column] = here
                values[chosen, row, column] = there
    return to_uint8(ndimage.gaussian_filter(values, sigma=(0, GLASS_SIGMA, GLASS_SIGMA), mode="nearest"))


def motion_blur(images: np.ndarray, seed: int) -> np.ndarray:
    """Camera shake: each pixel averages the MOTION_LENGTH pixels behind it along a random direction per image.

    Each image gets its own smear kernel (its weights splatted bilinearly along the direction),
    applied by FFT convolution; zeros lie outside the image.
    """
    values = as_unit_values(images)
    rng = np.random.default_rng(seed)
    angles = np.deg2rad(rng.uniform(-MOTION_MAX_ANGLE, MOTION_MAX_ANGLE, size=len(values)))
    steps = np.arange(MOTION_LENGTH)
    weights = np.exp(-steps ** 2 / (2 * MOTION_SIGMA ** 2))
    weights /= weights.sum()
    kernels = np.zeros((len(values), 2 * MOTION_LENGTH + 1, 2 * MOTION_LENGTH + 1))  # centre at MOTION_LENGTH
    rows = MOTION_LENGTH - np.sin(angles)[:, None] * steps  # (N, steps); the row axis points down
    columns = MOTION_LENGTH + np.cos(angles)[:, None] * steps
    top, left = np.floor(rows).astype(int), np.floor(columns).astype(int)
    down, right = rows - top, columns - left
    every = np.broadcast_to(np.arange(len(values))[:, None], rows.shape)
    for row_step, row_weight in ((0, 1 - down), (1, down)):
        for column_step, column_weight in ((0, 1 - right), (1, right)):
            np.add.at(kernels, (every, top + row_step, left + column_step), weights * row_weight * column_weight)
    from scipy import signal  # here, like canny below: slow imports that only --robustness needs

    return to_uint8(signal.fftconvolve(values, kernels, mode="same", axes=(1, 2)))


def brightness(images: np.ndarray, seed: int) -> np.ndarray:
    """Every pixel brightened by BRIGHTNESS_ADDED of full white, clipped at white (the seed is unused)."""
    return to_uint8(as_unit_values(images) + BRIGHTNESS_ADDED)


def stripe(images: np.ndarray, seed: int) -> np.ndarray:
    """The intensities of the STRIPE_COLUMNS inverted (255 - value); the seed is unused."""
    as_unit_values(images)
    out = images.copy()
    for columns in STRIPE_COLUMNS:
        out[:, :, columns.start:columns.stop] = 255 - images[:, :, columns.start:columns.stop]
    return out


def fog(images: np.ndarray, seed: int) -> np.ndarray:
    """Haze: a fractal noise field in [0, 1] (one per image) added FOG_STRENGTH times, then rescaled to the image's peak."""
    values = as_unit_values(images)
    rng = np.random.default_rng(seed)
    haze = np.zeros_like(values)
    for octave, grid in enumerate(FOG_GRIDS):
        lattice = rng.random((len(values), grid, grid))
        haze += ndimage.zoom(lattice, (1, SIDE / grid, SIDE / grid), order=1, grid_mode=True,
                             mode="grid-constant" if grid == SIDE else "nearest") / FOG_DECAY ** octave
    low, high = haze.min(axis=(1, 2), keepdims=True), haze.max(axis=(1, 2), keepdims=True)
    haze = (haze - low) / np.maximum(high - low, 1e-12)
    peak = values.max(axis=(1, 2), keepdims=True)
    return to_uint8((values + FOG_STRENGTH * haze) * peak / (peak + FOG_STRENGTH))


def spatter(images: np.ndarray, seed: int) -> np.ndarray:
    """Mud: blobs of a thresholded, blurred random liquid layer cover the image in SPATTER_GREY."""
    values = as_unit_values(images)
    rng = np.random.default_rng(seed)
    liquid = rng.normal(SPATTER_MEAN, SPATTER_SPREAD, size=values.shape)
    liquid = ndimage.gaussian_filter(liquid, sigma=(0, SPATTER_SIGMA, SPATTER_SIGMA), mode="nearest")
    wet = (liquid > SPATTER_THRESHOLD).astype(np.float64)
    mask = ndimage.gaussian_filter(wet, sigma=(0, SPATTER_EDGE_SIGMA, SPATTER_EDGE_SIGMA), mode="nearest")
    mask[mask < SPATTER_OPACITY] = 0.0
    return to_uint8(values * (1 - mask) + SPATTER_GREY / 255.0 * mask)


def dotted_line(images: np.ndarray, seed: int) -> np.ndarray:
    """A dashed white line across the full width between two random heights (DASH-wide gaps, then dashes)."""
    values = as_unit_values(images)
    rng = np.random.default_rng(seed)
    start_rows, end_rows = rng.integers(0, SIDE - 1, size=(2, len(values)))
    ink = _pen(_segment_distance(start_rows, np.zeros(len(values)), end_rows, np.full(len(values), SIDE - 1.0)))
    ink[:, :, (np.arange(SIDE) // DASH) % 2 == 0] = 0.0  # columns 0-1 gap, 2-3 dash, 4-5 gap, ...
    return to_uint8(values + ink)


def zigzag(images: np.ndarray, seed: int) -> np.ndarray:
    """A white zigzag (teeth ZIGZAG_AMPLITUDE high every ZIGZAG_STEP pixels) from column 2 to 25 at a random height."""
    values = as_unit_values(images)
    rng = np.random.default_rng(seed)
    start_rows = rng.integers(0, SIDE - 1, size=len(values)).astype(np.float64)
    end_rows = start_rows + rng.integers(-ZIGZAG_SLOPE_PIXELS, ZIGZAG_SLOPE_PIXELS, size=len(values))
    start_column, end_column = 2.0, 25.0
    length = np.hypot(end_rows - start_rows, end_column - start_column)  # (N,)
    unit = np.stack([end_rows - start_rows, np.full(len(values), end_column - start_column)]) / length  # (2, N)
    normal = np.stack([unit[1], -unit[0]])  # sideways, perpendicular to the line
    teeth = int((length.min() - ZIGZAG_STEP) // (2 * ZIGZAG_STEP)) + 1
    # vertices along the line at 0, a, 3a, 5a, ... and its end; sideways 0, +b, -b, +b, ... and 0 at the end
    along = np.concatenate([[0.0], (2 * np.arange(teeth) + 1) * ZIGZAG_STEP])[:, None] * np.ones(len(values))
    along = np.concatenate([along, length[None]])  # (V, N)
    sideways = np.concatenate([[0.0], ZIGZAG_AMPLITUDE * (-1.0) ** np.arange(teeth), [0.0]])[:, None]
    vertices = len(along) - 1
    points_row = start_rows + along * unit[0] + sideways * normal[0]
    points_column = start_column + along * unit[1] + sideways * normal[1]
    distance = np.full_like(values, np.inf)
    for vertex in range(vertices):
        distance = np.minimum(distance, _segment_distance(points_row[vertex], points_column[vertex],
                                                          points_row[vertex + 1], points_column[vertex + 1]))
    return to_uint8(values + _pen(distance))


def edges_only(images: np.ndarray, seed: int) -> np.ndarray:
    """Only the digit's outline: white where scikit-image's Canny detector finds an edge, black elsewhere."""
    values = as_unit_values(images)
    from skimage.feature import canny

    return np.stack([canny(image, sigma=EDGE_SIGMA) for image in values]).astype(np.uint8) * 255


CORRUPTIONS: dict[str, Callable[[np.ndarray, int], np.ndarray]] = {
    "shot-noise": shot_noise,
    "impulse-noise": impulse_noise,
    "glass-blur": glass_blur,
    "motion-blur": motion_blur,
    "shear": shear,
    "scale": scale,
    "rotate": rotation,
    "brightness": brightness,
    "translate": translation,
    "stripe": stripe,
    "fog": fog,
    "spatter": spatter,
    "dotted-line": dotted_line,
    "zigzag": zigzag,
    "edges-only": edges_only,
}


def corrupt(images: np.ndarray, name: str, seed: int = 0) -> np.ndarray:
    """The registered corruption `name` applied to uint8 `images` (N, 28, 28) with `seed`."""
    if name not in CORRUPTIONS:
        raise ConfigError(f"unknown corruption {name!r}; choose one of: {', '.join(CORRUPTIONS)}")
    return CORRUPTIONS[name](images, seed)
