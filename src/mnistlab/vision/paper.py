"""The paper's brightness at every pixel of a photo or a scan, and the ink's strength against it (step 2 of
`vision.preprocess`).

A grey closing wider than any stroke, on a small copy, erases the strokes and keeps what varies slowly or in steps
(gradients, vignetting, a shadow's edge); on a photo, what the closing leaves of a large shadow (its rounded body
and soft edges, which a square window wider than a finger cannot follow) is taken out too, so ink is measured
against the paper next to it. An even sheet (a scan, a drawing app's canvas) takes its border as the paper. Work and
memory are linear in the pixels whatever the image holds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image
from scipy import ndimage

from mnistlab.data.decode import MAX_ASPECT, shrink

BACKGROUND_SIZE = 160  # px; the longest side of the copy the paper's brightness is estimated on
BACKGROUND_KERNEL = 1 / 4  # of that copy's longest side; wider than any pen stroke, narrow enough to follow light
BACKGROUND_ROWS = 40  # px; about the copy's shortest side at least, where the image has them (past 4:1: larger)
UNIFORM_SPREAD = 0.04  # gray levels; a background map flatter than this is replaced by its median (a clean canvas)
EVEN_BORDER = 0.02  # gray levels; a border (2 px of that copy) spread less than this is an even sheet all round
CANVAS_LEVEL = 0.004  # gray levels; a canvas's paper is one level within this (a photo's is spread wider)
CANVAS_SHARE = 0.5  # of the border; a canvas whose ink crosses its border has at least this much paper there
CANVAS_INK = 0.5  # gray levels; what crosses a canvas's border departs this far from the paper (ink, not shade)
LIGHT_INK_SKEW = 0.5  # skewness above which the ink is lighter than the paper; dark ink is the default
DARKEST_PAPER = 0.05  # gray level; dark ink's strength is measured against paper at least this bright
SHADOW_SIZE = 1 / 10  # of that copy's longest side; darkening wider than this every way is shade, not a stroke
LEAST_SHADE = 0.03  # of the paper's brightness; shallower shade is not followed (the paper would be the same)
ROUGHEST_SHADE = 0.05  # of the paper's brightness; shade whose texture (what the opening took off it) is deeper on
# average is a desk's grain or weave beyond the sheet, not a shadow on paper


@dataclass(frozen=True)
class Paper:
    """The paper as `estimate_background` finds it, on the small copy it works on."""

    small: np.ndarray  # the image area-averaged (h, w)
    background: np.ndarray  # the paper's brightness on that copy (h, w)
    dark_ink: bool  # the ink is darker than the paper
    even: bool  # the border is one level all round: a scan or a drawing app's canvas, not a photo
    flat: bool  # one level everywhere: a clean canvas

    def at(self, shape: tuple[int, int], background: np.ndarray | None = None) -> np.ndarray:
        """The brightness map (the paper's own, or `background` on the small copy) enlarged to `shape`."""
        small = self.background if background is None else background
        return np.asarray(Image.fromarray(small.astype(np.float32)).resize(shape[::-1], Image.Resampling.BILINEAR),
                          dtype=np.float32)


def estimate_background(gray: np.ndarray) -> Paper:
    """The paper's brightness, on a small copy of `gray` (H, W): whether the ink is darker than the paper, and
    whether the sheet is even all round (its border one level: a scan or a drawing app's canvas, not a photo).

    A grey closing (max then min filter) wider than any pen stroke erases dark strokes but keeps what varies
    slowly or in steps: gradients, vignetting, shadow edges; an opening does the same for light strokes. Both are
    computed on a copy area-averaged to BACKGROUND_SIZE px, or longer for a strip (fast, and it averages out sensor
    noise). The polarity comes first, from the skewness of the departures from a Gaussian blur: ink is a sparse
    tail on the dark side (dark ink) or on the light side; gradients, noise and shadow edges are nearly symmetric.
    On a canvas whose strokes cross the border, the paper is its lightest or darkest level (`even_border`), which
    says the polarity instead: heavy strokes are no sparse tail.
    """
    # a strip (a number cropped tight) keeps about BACKGROUND_ROWS across (shrink divides by a whole number: 25-40),
    # and the window stays within half of that: a window taller than the strip would take its ink for the paper's
    # darkest level. A sliver longer than MAX_ASPECT (which decoding refuses) is shrunk as if it were that long.
    strip = round(BACKGROUND_ROWS * min(max(gray.shape) / min(gray.shape), MAX_ASPECT))
    small = shrink(gray, max(BACKGROUND_SIZE, strip))
    size = max(3, round(min(BACKGROUND_KERNEL * max(small.shape), min(small.shape) / 2)))
    # padded by odd reflection, which continues a gradient past the border; a mirror or a copied edge would make
    # a valley or a plateau there, and the closing would fill it with a brighter paper than the border's
    pad = size // 2 + 1
    padded = np.pad(small, pad, mode="reflect", reflect_type="odd")
    closed = ndimage.grey_closing(padded, size=size)[pad:-pad, pad:-pad]
    opened = ndimage.grey_opening(padded, size=size)[pad:-pad, pad:-pad]
    residual = small - ndimage.gaussian_filter(small, sigma=max(size / 4, 5.0))  # polarity-neutral: ink is the sparse tail
    spread = max(float(residual.std()), 1e-6)
    dark_ink = float(np.mean(residual ** 3)) / spread ** 3 < LIGHT_INK_SKEW
    level, even, canvas_ink = even_border(small, gray)
    dark_ink = dark_ink if canvas_ink is None else canvas_ink
    # a dark frame (paper under DARKEST_PAPER with dark ink) is darkness, not a sheet: its noise is no faint ink
    even = even and not (dark_ink and level < DARKEST_PAPER)
    background = ndimage.uniform_filter(closed if dark_ink else opened, size=3)
    flat = float(np.ptp(background)) < UNIFORM_SPREAD
    if even:  # an even sheet all round (a scan): its border is the paper, under soft, wide strokes too
        background = np.full_like(background, level)
    elif flat:  # an even canvas: one level is exact, a map only adds error
        background = np.full_like(background, float(np.median(background)))
    return Paper(small, background, dark_ink, even, flat)


def even_border(small: np.ndarray, gray: np.ndarray) -> tuple[float, bool, bool | None]:
    """The paper's level on the border of `small` (the small copy of `gray`); whether the sheet is even, its
    border one level (a scan or a drawing app's canvas, not a photo); and, for a canvas, whether its ink is dark
    (None otherwise: the ink's polarity is found from the image's skewness).

    A canvas's paper is one level exactly: `gray`'s border (as deep as the small copy's two border pixels) lies
    within CANVAS_LEVEL of one value, and the ink is what departs from it most (heavy strokes are no sparse tail,
    and their skewness can point the wrong way). Strokes may cross its border (a digit drawn to the edge, or cropped tight): it is still a canvas if at
    least CANVAS_SHARE of those pixels lie within CANVAS_LEVEL of their lightest value (dark ink) or darkest (light
    ink), the paper, and what crosses them reaches CANVAS_INK from it somewhere: ink, not shade. A photo's paper is
    never one level so exactly (noise, grain, light). Otherwise the sheet is even if the small copy's border
    spreads less than EVEN_BORDER. The work is bounded by that border's pixels and the small copy's."""
    depth = math.ceil(2 * max(gray.shape) / max(small.shape))  # the small copy's two border pixels, at full size
    ring = frame_band(gray, depth)
    border = frame_band(small, 2)
    level = float(np.median(border))
    if float(np.ptp(ring)) <= CANVAS_LEVEL:  # exactly one level all round: the ink is what departs from it most
        departures = small - level
        return level, True, float(-departures[departures < 0].sum()) >= float(departures[departures > 0].sum())
    for paper_level, dark_ink in ((float(ring.max()), True), (float(ring.min()), False)):
        paper = np.abs(ring - paper_level) <= CANVAS_LEVEL
        if paper.mean() >= CANVAS_SHARE and float(np.abs(ring[~paper] - paper_level).max()) >= CANVAS_INK:
            return paper_level, True, dark_ink
    return level, float(np.ptp(border)) < EVEN_BORDER, None


def frame_band(values: np.ndarray, depth: int) -> np.ndarray:
    """The pixels of (H, W) `values` within `depth` of the frame, flat (the corners counted twice)."""
    return np.concatenate([values[:depth].ravel(), values[-depth:].ravel(), values[:, :depth].ravel(),
                           values[:, -depth:].ravel()])


def ink_strength(gray: np.ndarray, paper: Paper | None = None) -> tuple[np.ndarray, bool]:
    """Gray (H, W) -> how much each pixel departs from the local paper toward the ink (H, W), 0 = paper, and
    whether the paper is even (one level: a scan or a drawing app's canvas rather than a photo). `paper` is
    `estimate_background(gray)`, estimated here when not given.

    Dark ink is measured as a fraction of the local paper brightness (light and paper multiply, so a stroke in a
    shadow keeps its contrast); light ink as a difference from the local background. Paper darker than
    DARKEST_PAPER counts as that bright, and ink on it can darken it only by what brightness it has: on a black
    frame with sensor noise, nothing is ink.
    """
    paper = paper if paper is not None else estimate_background(gray)
    return _strength(gray, paper.at(gray.shape), paper.dark_ink), paper.even


def shaded_strength(gray: np.ndarray, paper: Paper) -> np.ndarray | None:
    """`ink_strength` of a photo's dark ink against paper that follows the large, soft shade the first map misses
    (`follow_shade`); None where there is no such shade (the strength would be the same) or it is no such photo.
    A photo whose map is one level (`flat`) is followed too: the closing fills a soft dark spot narrower than its
    window, which would leave the spot in the strength around a digit written on it."""
    if not paper.dark_ink or paper.even:
        return None
    background = follow_shade(paper.small, paper.background)
    return None if background is None else _strength(gray, paper.at(gray.shape, background), paper.dark_ink)


def _strength(gray: np.ndarray, background: np.ndarray, dark_ink: bool) -> np.ndarray:
    """How much each pixel of `gray` (H, W) departs from the paper's brightness `background` (H, W) toward the ink."""
    if dark_ink:
        strength = 1.0 - gray / np.maximum(background, DARKEST_PAPER)
        strength = np.where(background < DARKEST_PAPER, (background - gray) / DARKEST_PAPER, strength)
        return np.clip(strength, 0.0, 1.0)
    return np.clip(gray - background, 0.0, 1.0)


def follow_shade(small: np.ndarray, background: np.ndarray) -> np.ndarray | None:
    """The paper's brightness `background` (h, w) on the small copy `small` lowered by the shade it misses: the
    darkening left against it, opened (a min then a max filter) SHADOW_SIZE wide, so that strokes and lines, thinner
    than that, go, and what is that wide every way stays: the body of a hand's or a phone's shadow, rounded and soft,
    that the closing (a square window a quarter of the copy wide) fills at its edges and fingers. Shade as rough as
    a desk's grain (ROUGHEST_SHADE) is left as it was; None where no shade LEAST_SHADE deep is left to follow."""
    darkening = np.clip(1.0 - small / np.maximum(background, DARKEST_PAPER), 0.0, 1.0)
    size = max(3, round(SHADOW_SIZE * max(small.shape)))
    opened = ndimage.grey_opening(darkening, size=size)
    shade = ndimage.uniform_filter(opened, size=3)
    regions, count = ndimage.label(shade >= LEAST_SHADE)
    pixels = np.maximum(np.bincount(regions.ravel(), minlength=count + 1), 1)
    texture = np.bincount(regions.ravel(), weights=(darkening - opened).ravel(), minlength=count + 1) / pixels
    shade[(texture > ROUGHEST_SHADE)[regions] & (regions > 0)] = 0.0  # a desk's grain beyond the sheet, not a shadow
    return background * (1.0 - shade) if float(shade.max()) >= LEAST_SHADE else None
