"""What on a photo of paper is not a digit (issue 22): pencil grain, the desk beyond the sheet, printed lines and
shadows; used by `vision.ink.isolate_ink` on photos (not on even sheets: scans and drawing apps).

Pencil is grey and grainy: its darkening is often a quarter or a third of the paper's brightness, under the
contrast a photo's ink was asked for, and its grain breaks strokes apart. So on a photo the ink's strength is
averaged over a pixel or two (the grain, not the stroke, goes), and the least contrast is lower
(PHOTO_MIN_CONTRAST). That alone would read blank sheets as digits (their rulings, the desk's edge, a shadow's
tip), and the threshold at half the ink's peak fails where a desk in the frame is darker than any pencil: the
peak is the desk's, and the pencil stays under half of it. So:

1. printed lines and creases that cross the image are erased first (`vision.lines.erase_lines`);
2. what carries the peak but is not a digit (components touching the frame, printed lines crossing the image,
   specks) is set aside, and the threshold is taken again from the rest, a few rounds at most (`_photo_threshold`);
3. the ink chosen must look like a digit (`looks_like_digit`), or it is set aside too and the next choice tried
   (`photo_digit`): its edge falls to the paper within a stroke (a shadow or a desk's grain fades slowly), it is
   not much wider than tall (a ruled line's piece), not one straight stroke far longer than its width or going on
   beyond its ends as a line, not a straight band longer than half the image or from edge to edge (the sheet's
   edge, a desk's strip), not a sparse network or a lattice (a grid), not a blob (a shadow's tip), not a speck,
   not all but touching the frame unless cropped tight (what a threshold leaves of the desk or the sheet's edge),
   not a piece of a texture with more of itself all around (a desk's grain beyond the sheet), and not all on
   the printed lines found (what a dark spot left of them).

Numbers (`vision.numbers`) use some of these findings per component instead (`vision.number_photo`).
"""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage

from mnistlab.common.errors import PreprocessError
from mnistlab.vision.paper import frame_band

GRAIN_SIGMA = 1.0  # px at work scale; a photo's ink strength is averaged this wide (pencil grain, sensor noise)
PHOTO_MIN_CONTRAST = 0.12  # of the paper's brightness; where a photo's ink begins, at least half this
PHOTO_FAINTEST = 0.12  # of the paper's brightness; a photo's ink must darken it this much somewhere (faint pencil)
CLUTTER_ROUNDS = 3  # times the threshold is taken again without the clutter that carried the peak
DIGIT_TRIES = 3  # choices of ink tried; each one that does not look like a digit is set aside
TIGHT_CROP = 0.25  # of the image's area; the box of a digit cropped tight covers more
FRAME_GAP = 0.01  # of the image's longest side; ink this near the frame is clutter unless cropped tight
CLUTTER_LEVEL = 0.5  # of the threshold; clutter is found above this level (a desk's grain reaches under the threshold)
CLUTTER_MARGIN = 0.01  # of the image's longest side; set-aside clutter is widened this much (its soft edges)
WIDEST_DIGIT = 2.5  # box width over height; wider ink is a line's piece or an edge, not one digit
SMALLEST_DIGIT = 0.025  # of the image's longest side; a smaller box is a speck or a grain of noise
LINE_LENGTH = 40.0  # a single straight stroke longer than this many times its width is a printed line or an edge
STRAIGHT = 1.3  # stroke length in box diagonals under which the ink is one straight stroke
CONTINUE_SHARE = 0.5  # straight ink goes on as a line where this share beyond an end is half its strength
CONTINUE_SEEN = 0.25  # share of that stretch in the frame, at least, for an end to be judged
CONTINUE_SAMPLES = (64, 9)  # spots sampled beyond each end, along and across
FRAME_LINE = 0.03  # of the image's shorter side; straight ink from edge to edge this thin is a line or an edge
SPARSE_SIZE, SPARSE_WIDE, SPARSE_FILL = 0.45, 0.06, 0.05  # ink this wide (of the image's longest side) covering
# less of its box than SPARSE_WIDE, or any covering less than SPARSE_FILL, is a network of lines, not a digit
LONGEST_STRAIGHT, BAND_SPREAD = 0.5, 0.25  # ink that reaches the frame, longer than this share of the image's
# longest side and spread across its long axis less than BAND_SPREAD times along it, is a line, an edge or a desk's
# strip (a 1 photographed large, clear of the frame, is not; a 1 cropped tight to the frame is refused with them)
MOST_HOLES = 10  # holes in the ink; more is a grid (an 8 has two)
GRID_CELL = 0.05  # of the ink's longest side; holes as wide as this and a stroke, at least, are counted
EDGE_RING = (2, 4, 8)  # px: the ring of paper around the chosen ink, a stroke wide (4 to 8 px) from half that
# whose strength is compared with the ink's
EDGE_CONTRAST = 3.0  # the ink's median strength over the ring's; less is a soft shadow or a desk's grain
BLOB = 0.35  # stroke width over the box's longest side above which the ink is a blob (a shadow), not strokes
AROUND_REACH = 0.5  # of the box's longest side; the band of paper around the chosen ink's box reaches this far
AROUND_LEVEL = 0.4  # of the ink's median strength; paper in that band this strong is more of the same texture
AROUND_BUSY = 0.2  # share of the band; more that strong and the ink is a piece of a texture (a desk's grain)
ON_LINES = 0.95  # share of the chosen ink on printed lines found, from which it is the lines, not a digit crossing them


def smooth_grain(strength: np.ndarray) -> np.ndarray:
    """A photo's ink strength (H, W) averaged over GRAIN_SIGMA px: graphite's grain and sensor noise go, strokes
    stay (work and memory linear in the pixels)."""
    return ndimage.gaussian_filter(strength, GRAIN_SIGMA, truncate=3.0)


def photo_digit(strength: np.ndarray, unerased: np.ndarray, threshold_of, clutter_of, select, stroke_width,
                message: str, lines: np.ndarray | None = None) -> tuple[np.ndarray, float]:
    """A photo's digit (H, W) bool and its ink threshold, or `PreprocessError(message)`.

    `threshold_of(values)` gives the threshold of a strength array (raising "no digit found" when nothing stands
    out); `clutter_of(mask)` the pixels of a mask's components that are not the digit (touching the frame, printed
    lines); `select(mask)` the digit among a mask's components. Ink chosen that does not look like a digit
    (`looks_like_digit`; `unerased` is the strength before `erase_lines`, `lines` the printed lines it found) is
    set aside as well and the next choice tried, DIGIT_TRIES times at most."""
    def is_digit(ink: np.ndarray) -> bool:
        return looks_like_digit(ink, strength, unerased, stroke_width, lines)

    aside = np.zeros(strength.shape, dtype=bool)
    margin = max(1, round(CLUTTER_MARGIN * max(strength.shape)))
    try:
        for _ in range(DIGIT_TRIES):
            threshold, aside = _photo_threshold(strength, threshold_of, clutter_of, aside, margin, is_digit)
            mask = (strength > threshold) & ~aside
            try:
                digit = select(mask)
            except PreprocessError:  # specks carry the peak (a glint, a grain of dust, a JPEG block's corner) and
                # a faint digit lies under half of it: they are set aside and the threshold taken again
                if not mask.any():
                    raise
                aside = aside | ndimage.binary_dilation(mask, iterations=margin)
                continue
            if is_digit(digit):
                return digit, threshold
            aside = aside | ndimage.binary_dilation(digit, iterations=margin)
    except PreprocessError:  # nothing but clutter and specks once the clutter is set aside: a digit cropped so
        # tight that it touches the frame is the clutter; it is taken as it is if it looks like a digit
        threshold = threshold_of(strength)
        digit = select(strength > threshold)
        rows, cols = np.flatnonzero(digit.any(axis=1)), np.flatnonzero(digit.any(axis=0))
        tight = np.ptp(rows) * np.ptp(cols) >= TIGHT_CROP * digit.size  # a desk's edge or a line covers less
        if tight and is_digit(digit):
            return digit, threshold
    raise PreprocessError(message)


def _photo_threshold(strength, threshold_of, clutter_of, aside, margin, is_digit) -> tuple[float, np.ndarray]:
    """The threshold of `strength` outside `aside`, and `aside` grown: while the strongest pixel above the
    threshold lies in clutter, the clutter (widened by `margin` px) is set aside and the threshold taken from the
    rest, CLUTTER_ROUNDS times at most; if the rest is blank, the last threshold stands. Clutter is found at
    CLUTTER_LEVEL of the threshold (a desk's grain joins there); where the peak's ink joins it only under the
    threshold (a digit beside a soft shadow or the grain at the sheet's edge), that ink is kept if `is_digit`."""
    threshold = threshold_of(np.where(aside, 0.0, strength))
    for _ in range(CLUTTER_ROUNDS):
        clutter = clutter_of((strength > CLUTTER_LEVEL * threshold) & ~aside)
        peak = np.unravel_index(np.argmax(np.where(aside, -1.0, strength)), strength.shape)
        if not clutter[peak]:
            break
        strong = (strength > threshold) & ~aside
        if not clutter_of(strong)[peak]:
            labels, _ = ndimage.label(strong, structure=np.ones((3, 3)))
            if is_digit(labels == labels[peak]):
                break
        wider = aside | ndimage.binary_dilation(clutter, iterations=margin)
        try:
            threshold, aside = threshold_of(np.where(wider, 0.0, strength)), wider
        except PreprocessError:
            break
    return threshold, aside


def edge_contrast(digit: np.ndarray, strength: np.ndarray, stroke: float) -> float:
    """How much stronger the chosen ink (H, W) bool is than a ring of paper EDGE_RING px around it: the median
    strength on the ink over that in the ring. A pen or pencil stroke falls to the paper within a pixel or two of
    its edge (blur included); a shadow or a desk's grain fades over tens of pixels."""
    rows, cols = np.flatnonzero(digit.any(axis=1)), np.flatnonzero(digit.any(axis=0))
    outer = min(max(EDGE_RING[1], round(stroke)), EDGE_RING[2])
    inner = max(EDGE_RING[0], outer // 2)
    reach = outer + 1
    window = (slice(max(rows[0] - reach, 0), rows[-1] + reach + 1), slice(max(cols[0] - reach, 0), cols[-1] + reach + 1))
    ink, values = digit[window], strength[window]
    ring = ndimage.binary_dilation(ink, iterations=outer) & ~ndimage.binary_dilation(ink, iterations=inner)
    if not ring.any():
        return math.inf
    return float(np.median(values[ink])) / max(float(np.median(values[ring])), 1e-6)


def busy_around(digit: np.ndarray, strength: np.ndarray) -> float:
    """The share of a band around the chosen ink's box (AROUND_REACH of its longest side wide, within the image)
    whose strength passes AROUND_LEVEL of the ink's median. A digit is written on paper, and the paper around it
    is empty but for printed lines; a piece of a desk's grain or of a dense pattern has more of itself all around.
    """
    rows, cols = np.flatnonzero(digit.any(axis=1)), np.flatnonzero(digit.any(axis=0))
    reach = max(1, round(AROUND_REACH * max(rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1)))
    top, left = max(rows[0] - reach, 0), max(cols[0] - reach, 0)
    band = np.ones((min(rows[-1] + reach + 1, digit.shape[0]) - top, min(cols[-1] + reach + 1, digit.shape[1]) - left),
                   dtype=bool)
    band[rows[0] - top:rows[-1] + 1 - top, cols[0] - left:cols[-1] + 1 - left] = False  # the box itself
    if not band.any():
        return 0.0
    values = strength[top:top + band.shape[0], left:left + band.shape[1]][band]
    return float(np.mean(values > AROUND_LEVEL * float(np.median(strength[digit]))))


def continues(digit: np.ndarray, unerased: np.ndarray, stroke: float) -> bool:
    """Whether straight ink (H, W) bool goes on beyond its ends as a line of about its strength (a piece of a
    printed line, of the sheet's edge, of a crease), sampled in `unerased` along its long axis as far again as it
    is long, half a stroke's width and a pixel either side (a line at an angle to it, a grid's, passes through
    that only briefly); or reaches the frame at both ends, thinner than FRAME_LINE of the image
    (a digit cropped tight to the frame has thicker strokes)."""
    points = np.argwhere(digit).astype(np.float64)
    if len(points) < 2:  # a single pixel has no axis to go on along
        return False
    centre = points.mean(axis=0)
    _, vectors = np.linalg.eigh(np.cov((points - centre).T))
    axis, across = vectors[:, 1], vectors[:, 0]  # the long axis and the one across it
    along = (points - centre) @ axis
    length, level = float(np.ptp(along)), CONTINUE_SHARE * float(np.median(unerased[digit]))
    beyond = np.linspace(2 * stroke, 2 * stroke + length, CONTINUE_SAMPLES[0])  # spots sampled: bounded work
    sideways = np.linspace(-(stroke / 2 + 1), stroke / 2 + 1, CONTINUE_SAMPLES[1])
    outside = 0
    for end, sign in ((along.max(), 1.0), (along.min(), -1.0)):
        spots = centre + np.outer(end + sign * beyond, axis)[:, None, :] + np.outer(sideways, across)[None]
        rows, cols = np.round(spots[..., 0]).astype(int), np.round(spots[..., 1]).astype(int)
        inside = (rows >= 0) & (rows < digit.shape[0]) & (cols >= 0) & (cols < digit.shape[1])
        seen = inside.all(axis=1)
        if not seen[0]:  # the ink reaches the frame here
            outside += 1
            continue
        if seen.sum() < CONTINUE_SEEN * beyond.size:  # too little of the stretch beyond it is in the frame to judge
            continue
        strongest = unerased[rows[seen], cols[seen]].max(axis=1)
        if np.mean(strongest >= level) >= CONTINUE_SHARE:
            return True
    return outside == 2 and stroke < FRAME_LINE * min(digit.shape)


def looks_like_digit(digit: np.ndarray, strength: np.ndarray, unerased: np.ndarray, stroke_width,
                     lines: np.ndarray | None = None) -> bool:
    """Whether the chosen ink (H, W) bool looks like a digit rather than clutter (see the module's notes); `lines`
    marks the printed lines `erase_lines` found, if any."""
    rows, cols = np.flatnonzero(digit.any(axis=1)), np.flatnonzero(digit.any(axis=0))
    box = digit[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
    height, width = box.shape
    # beyond the box is paper (a stroke filling it is no wider); pits of a grainy pencil stroke are closed first (a
    # one-pixel closing, the 3x3 cross), or they would make it look thinner than it is; it also fills one- or
    # two-pixel gaps between strokes, widening a small tight loop a little
    stroke = max(stroke_width(ndimage.binary_closing(np.pad(box, 2))), 1.0)
    if edge_contrast(digit, strength, stroke) < EDGE_CONTRAST:
        return False
    if width > WIDEST_DIGIT * height or max(height, width) < SMALLEST_DIGIT * max(digit.shape):
        return False
    across = (rows[0] == 0 and rows[-1] == digit.shape[0] - 1) or (cols[0] == 0 and cols[-1] == digit.shape[1] - 1)
    if across and box.size < TIGHT_CROP * digit.size:  # from edge to edge, narrow: a desk's strip or a sheet's edge
        return False
    gap = min(rows[0], cols[0], digit.shape[0] - 1 - rows[-1], digit.shape[1] - 1 - cols[-1])
    if gap <= FRAME_GAP * max(digit.shape) and box.size < TIGHT_CROP * digit.size:  # at the frame, not cropped
        return False  # tight: what the threshold cut from the frame (a desk's grain, the sheet's edge, a shadow)
    if box.mean() < SPARSE_FILL or (max(height, width) > SPARSE_SIZE * max(digit.shape) and box.mean() < SPARSE_WIDE):
        return False
    if busy_around(digit, strength) > AROUND_BUSY:
        return False
    if lines is not None and lines[digit].mean() >= ON_LINES:  # what shading left of printed lines, where it made
        return False  # them stronger than they are elsewhere (a grid's crossing in a dark spot)
    length = np.count_nonzero(box) / stroke
    if length < STRAIGHT * math.hypot(height, width):
        if max(height, width) > LINE_LENGTH * stroke or continues(digit, unerased, stroke):
            return False
    at_frame = rows[0] == 0 or cols[0] == 0 or rows[-1] == digit.shape[0] - 1 or cols[-1] == digit.shape[1] - 1
    if at_frame and max(height, width) > LONGEST_STRAIGHT * max(digit.shape):  # long, at the frame: a straight band?
        spread = np.linalg.eigvalsh(np.cov(np.argwhere(box).T.astype(np.float64)))
        if spread[0] < (BAND_SPREAD ** 2) * spread[1]:
            return False
    if stroke > BLOB * max(height, width):
        return False
    smallest = max(stroke, GRID_CELL * max(height, width)) ** 2  # a grid's cells; grain's pits in a thick pencil
    # stroke are smaller
    return np.count_nonzero(hole_sizes(box) >= smallest) <= MOST_HOLES


def hole_sizes(mask: np.ndarray) -> np.ndarray:
    """The pixels of each hole in `mask`'s ink: background (4-connected) that does not reach the frame."""
    if mask.size == 0:
        return np.zeros(0, dtype=np.intp)
    background, _ = ndimage.label(~mask)
    sizes = np.bincount(background.ravel())
    sizes[frame_band(background, 1)] = 0  # around it
    sizes[0] = 0  # the ink itself
    return sizes[sizes > 0]
