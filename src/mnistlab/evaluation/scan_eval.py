"""A seeded set of clean scans of handwritten digits, soft and low-resolution, to measure preprocessing on them.

Photos (`photo_eval`) are sharp strokes under hard conditions; scans are the
opposite: dark ink on white, no light or paper effects, but often scanned at a
low resolution and enlarged again, so strokes are soft and blurry with a low
contrast at their edges. Each MNIST test digit is written as one of CLASSES:

- "8x8", "12x12", "16x16", "28x28": the digit reduced to a grid of that many
  pixels (area averaging; the 8x8 and 12x12 grids filled edge to edge, as
  low-resolution digit sets store them, sometimes quantised to 17 gray levels),
  then enlarged 8-40 times with a smooth (bilinear, bicubic) or blocky
  (nearest) filter, sometimes blurred again;
- "300dpi": the digit 60-250 px tall, as a 300 dpi scanner sees a pen stroke:
  smooth, blurred by 0.5-3 px, a faint ink (50-100% dark) on near-white paper.

Every image is a PNG, dark ink (35-100% dark) on paper at 0.88-1.0 white, with
a white margin. The parts are disjoint halves of the MNIST test set with their
own seeds: "tuning" (digits 0-4999) and "held-out" (5000-9999), looked at only
to report.

    python -m mnistlab.evaluation.scan_eval --part tuning --per-class 3 --out scans/   # write PNG files to look at
"""

from __future__ import annotations

import io
from typing import Iterator

import numpy as np
from PIL import Image
from scipy import ndimage

from mnistlab.evaluation.photo_eval import Photo, write_set_command

CLASSES = ("8x8", "12x12", "16x16", "28x28", "300dpi")
PARTS = {  # part -> (MNIST test indices it draws digits from, seed, images per class)
    "tuning": (range(0, 5000), 22, 100),
    "held-out": (range(5000, 10000), 2222, 200),
}
ENLARGE = (Image.Resampling.BILINEAR, Image.Resampling.BICUBIC, Image.Resampling.NEAREST)


def scan_set(images: np.ndarray, labels: np.ndarray, part: str, per_class: int | None = None,
             classes: tuple[str, ...] = CLASSES) -> Iterator[Photo]:
    """Yield `part`'s scans, class by class (as `photo_eval.Photo`, the class in `condition`)."""
    indices, seed, count = PARTS[part]
    for number, name in enumerate(CLASSES):
        if name not in classes:
            continue
        rng = np.random.default_rng([seed, number])
        for index in rng.choice(np.asarray(indices), size=per_class or count, replace=False):
            yield Photo(name, int(index), int(labels[index]), render_scan(images[index], name, rng), ".png")


def render_scan(digit: np.ndarray, name: str, rng: np.random.Generator) -> bytes:
    """An MNIST digit (28, 28) uint8 scanned as class `name` -> PNG bytes, dark ink on white."""
    coverage = digit.astype(np.float32) / 255.0
    if name == "300dpi":
        height = int(rng.integers(60, 251))
        coverage = _scale(_crop(coverage, 0.1), height / 20 * 0.8, Image.Resampling.BICUBIC)
        coverage = ndimage.gaussian_filter(coverage, rng.uniform(0.5, 3.0))
    else:
        grid = int(name.split("x")[0])
        if grid < 28:  # the digit's box (or the whole frame, for the larger grids, half the time) reduced to the grid
            source = _crop(coverage, rng.uniform(0.0, 0.15)) if grid <= 12 or rng.random() < 0.5 else coverage
            side = max(source.shape)
            square = np.zeros((side, side), dtype=np.float32)  # the longest side fills the grid, aspect kept
            top, left = (side - source.shape[0]) // 2, (side - source.shape[1]) // 2
            square[top:top + source.shape[0], left:left + source.shape[1]] = source
            coverage = np.asarray(Image.fromarray(square).resize((grid, grid), Image.Resampling.BOX))
        if rng.random() < 0.4:  # stored as 17 gray levels (0-16)
            coverage = np.round(np.clip(coverage, 0, 1) * 16) / 16
        coverage = _scale(coverage, rng.uniform(8, 40) * 28 / grid / 2, ENLARGE[int(rng.integers(len(ENLARGE)))])
        if rng.random() < 0.5:
            coverage = ndimage.gaussian_filter(coverage, rng.uniform(0.5, 0.04 * max(coverage.shape)))
    ink, paper = rng.uniform(0.0, 0.65), rng.uniform(0.88, 1.0)  # the ink's gray level at full coverage
    margin = int(rng.uniform(0.1, 0.6) * max(coverage.shape)) + 2
    canvas = np.pad(np.clip(coverage, 0, 1), margin)
    gray = paper - (paper - ink * paper) * canvas
    buffer = io.BytesIO()
    Image.fromarray(np.round(np.clip(gray, 0, 1) * 255).astype(np.uint8)).save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def _crop(coverage: np.ndarray, margin: float) -> np.ndarray:
    """The ink's box with `margin` of its longest side around it."""
    rows, cols = np.flatnonzero((coverage > 0.05).any(axis=1)), np.flatnonzero((coverage > 0.05).any(axis=0))
    pad = round(margin * max(rows[-1] - rows[0], cols[-1] - cols[0]))
    return np.pad(coverage[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1], pad)


def _scale(values: np.ndarray, factor: float, method) -> np.ndarray:
    """Enlarge (H, W) float32 by `factor` with `method`."""
    size = (max(1, round(values.shape[1] * factor)), max(1, round(values.shape[0] * factor)))
    return np.asarray(Image.fromarray(values.astype(np.float32)).resize(size, method), dtype=np.float32)


def main(argv: list[str] | None = None) -> None:
    """Write a part of the set as files <class>-<index>-<label>.png, to look at or to feed `mnistlab predict`."""
    write_set_command(argv, main.__doc__, PARTS, "class", scan_set)


if __name__ == "__main__":
    main()
