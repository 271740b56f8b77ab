"""A seeded set of handwritten numbers (2-6 MNIST test digits side by side) to measure `numbers.segment_number`.

Each number is written left to right on paper, each digit at its own height and
slant of the baseline, gaps of -5% (touching, overlapping boxes) to 60% of a
digit's width; "clean" is dark ink on white, "photo" adds light falling off by
up to 40% across the sheet, paper grain, sensor noise, a blur and JPEG. Parts:
"tuning" (digits 0-4999) and "held-out" (5000-9999, looked at only to report).
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Iterator

import numpy as np
from PIL import Image, ImageFilter

CONDITIONS = ("clean", "photo")
PARTS = {"tuning": (range(0, 5000), 33, 40), "held-out": (range(5000, 10000), 3333, 100)}  # per length and condition
LENGTHS = (2, 3, 4, 5, 6)


@dataclass(frozen=True)
class NumberImage:
    """One written number: its condition, the digits' labels left to right, and the encoded image."""

    condition: str
    labels: tuple[int, ...]
    data: bytes


def number_set(images: np.ndarray, labels: np.ndarray, part: str, per_length: int | None = None) -> Iterator[NumberImage]:
    """Yield `part`'s numbers: for each condition and length, `per_length` of them."""
    indices, seed, count = PARTS[part]
    for number, condition in enumerate(CONDITIONS):
        for length in LENGTHS:
            rng = np.random.default_rng([seed, number, length])
            for _ in range(per_length or count):
                chosen = rng.choice(np.asarray(indices), size=length, replace=False)
                data = render_number([images[index] for index in chosen], condition, rng)
                yield NumberImage(condition, tuple(int(labels[index]) for index in chosen), data)


def render_number(digits: list[np.ndarray], condition: str, rng: np.random.Generator) -> bytes:
    """MNIST digits (28, 28) uint8 written left to right -> an encoded image of the number, dark ink on paper."""
    height = int(rng.integers(40, 121))  # px; one digit's 28-px frame
    pieces = []
    for digit in digits:
        cols = np.flatnonzero(digit.max(axis=0) > 30)
        tight = digit[:, cols[0]:cols[-1] + 1].astype(np.float32) / 255
        side = max(1, round(tight.shape[1] * height / 28))
        pieces.append(np.asarray(Image.fromarray(tight).resize((side, height), Image.Resampling.BICUBIC)))
    gaps = [int(rng.uniform(-0.05, 0.6) * height * 20 / 28) for _ in pieces[1:]]
    shifts = [int(rng.uniform(-0.08, 0.08) * height) for _ in pieces]
    margin = height
    width = sum(piece.shape[1] for piece in pieces) + sum(gaps) + 2 * margin
    coverage = np.zeros((height * 2 + 2 * margin, width), dtype=np.float32)
    left = margin
    for number, piece in enumerate(pieces):
        top = margin + height // 2 + shifts[number]
        region = coverage[top:top + height, left:left + piece.shape[1]]
        np.maximum(region, np.clip(piece, 0, 1), out=region)
        left += piece.shape[1] + (gaps[number] if number < len(gaps) else 0)
    ink, paper = rng.uniform(0.0, 0.3), rng.uniform(0.85, 1.0)
    gray = paper * (1 - (1 - ink) * coverage)
    if condition == "photo":
        rows, cols = np.mgrid[0:gray.shape[0], 0:gray.shape[1]].astype(np.float32)
        angle = rng.uniform(0, 2 * np.pi)
        along = cols * np.cos(angle) + rows * np.sin(angle)
        gray = gray * (1 - rng.uniform(0.1, 0.4) * (along - along.min()) / max(float(np.ptp(along)), 1.0))
        gray = gray * (1 + rng.uniform(0.01, 0.03) * rng.normal(0, 1, gray.shape))
        gray = gray + rng.normal(0, rng.uniform(0.01, 0.04), gray.shape)
    image = Image.fromarray(np.round(np.clip(gray, 0, 1) * 255).astype(np.uint8))
    buffer = io.BytesIO()
    if condition == "photo":
        image = image.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 1.5)))
        image.save(buffer, format="JPEG", quality=int(rng.integers(60, 91)))
    else:
        image.save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()
