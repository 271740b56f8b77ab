"""What on a photo is no digit of a number (issue 22): the desk beyond the sheet, shadows, printed lines, creases;
used by `vision.numbers.segment_number` on photos (not on even sheets: scans and drawing apps).

A single digit sets its clutter aside with `vision.clutter`, which judges the one
ink it chose; a number's digits are judged together, so the same findings are
used per component instead:

1. the strength is taken against paper that follows a large shadow, nothing
   beyond the sheet is ink, and printed lines are erased (`photo_strength`), as
   for a single digit (`vision.ink.isolate_ink`); the least contrast is lower
   than an even sheet's floor allows without these (LEAST_CONTRAST: a faint pen);
2. components on the printed lines found, or fading into the paper over tens of
   pixels rather than ending at a stroke's edge (a shadow's tip, a desk's grain),
   are no ink (`photo_clutter`); components at the sheet's edge count as touching
   the frame (`vision.numbers._pieces`);
3. digits that all lie on one straight band are a line broken into dashes by the
   threshold, not a number (`straight_line`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from mnistlab.vision.clutter import EDGE_CONTRAST, EDGE_RING, LINE_LENGTH, ON_LINES
from mnistlab.vision.ink import ink_floor, stroke_width
from mnistlab.vision.lines import erase_lines
from mnistlab.vision.paper import estimate_background, ink_strength, shaded_strength
from mnistlab.vision.sheet import find_desk

LEAST_CONTRAST = 0.15  # of the paper's brightness; a photo's ink must darken it this much somewhere (a faint pen)
LINE_SHARE = 0.05  # of its length; a photo's chosen ink all in a band narrower than this is a line, not a number


@dataclass(frozen=True)
class PhotoClutter:
    """What on a photo's sheet is no digit, (H, W) bool each: `edge`, the sheet's edge where a desk lies beyond it
    (`vision.sheet.find_desk`), and `lines`, the printed lines `vision.lines.erase_lines` found."""

    edge: np.ndarray
    lines: np.ndarray


def photo_strength(gray: np.ndarray) -> tuple[np.ndarray, PhotoClutter | None]:
    """Gray (H, W) -> the ink's strength (H, W) and, on a photo, its clutter (None on an even sheet: a scan or a
    drawing app's canvas). On a photo, as for a single digit (`vision.ink.isolate_ink`): the strength is taken
    against paper that follows a large shadow, is nothing beyond the sheet (the desk) and has its printed lines
    erased."""
    paper = estimate_background(gray)
    strength, even = ink_strength(gray, paper)
    if even:
        return strength, None
    shaded = shaded_strength(gray, paper)
    strength = strength if shaded is None else shaded
    desk = find_desk(paper, gray.shape) if paper.dark_ink else None
    edge = np.zeros(gray.shape, dtype=bool) if desk is None else desk.edge
    if desk is not None:
        strength = np.where(desk.desk, 0.0, strength)
    lines = np.zeros(gray.shape, dtype=bool)
    strength = erase_lines(strength, ink_floor(strength, LEAST_CONTRAST), lines)
    return strength, PhotoClutter(edge, lines)


def photo_clutter(labels: np.ndarray, components: np.ndarray, pixels: np.ndarray, strength: np.ndarray,
                  lines: np.ndarray) -> np.ndarray:
    """Which `components` (indices into `labels`, (H, W) int, 0 = paper; `pixels` each) of a photo are no ink,
    (C,) bool: those with ON_LINES of their pixels on the printed `lines` found ((H, W) bool; what the erasing
    left of them), and those that fade into the paper rather than end at a stroke's edge: their median strength
    under EDGE_CONTRAST times that of the paper in a ring EDGE_RING px around them (`clutter.edge_contrast`, for
    all components at once: each ring pixel belongs to the nearest ink), as a shadow's tip or a desk's grain,
    fading over tens of pixels. Work linear in the pixels."""
    on_lines = np.bincount(labels[lines], minlength=len(pixels) + 1)[1:][components] >= ON_LINES * pixels[components]
    kept = np.isin(labels, components + 1)
    distances, (rows, cols) = ndimage.distance_transform_edt(~kept, return_indices=True)
    stroke = min(max(EDGE_RING[1], round(stroke_width(kept))), EDGE_RING[2])
    ring = (distances > max(EDGE_RING[0], stroke // 2)) & (distances <= stroke)
    index = components + 1
    inside = np.asarray(ndimage.median(strength, labels, index), dtype=np.float64)
    around = np.asarray(ndimage.median(strength, np.where(ring, labels[rows, cols], 0), index), dtype=np.float64)
    around = np.where(np.isnan(around), 0.0, around)  # no paper around it in the frame
    return on_lines | (inside < EDGE_CONTRAST * np.maximum(around, 1e-6))


def straight_line(ink: np.ndarray, digits: int) -> bool:
    """Whether a photo's chosen ink (H, W) bool, read as `digits` digits, is one straight line (a crease, a margin's
    printed line, the sheet's edge, broken into dashes by the threshold): a band under LINE_SHARE as wide as it is
    long (a number's digits make it as wide as they are tall), and more than one digit or longer than LINE_LENGTH
    stroke widths (a 1 alone is a band too, but a shorter one). Work linear in the ink's pixels."""
    points = np.argwhere(ink).astype(np.float64)
    if len(points) < 3:
        return False
    across, along = np.sqrt(12 * np.maximum(np.linalg.eigvalsh(np.cov(points.T)), 0.0))  # were the ink even
    return across < LINE_SHARE * along and (digits > 1 or along > LINE_LENGTH * max(stroke_width(ink), 1.0))
