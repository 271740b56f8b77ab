"""Printed lines and creases on a photo of paper (issue 22): found and erased before the digit is looked for.

Ruled and squared paper, a margin's lines and a fold cross the sheet straight, within LINE_TILT degrees of the
rows or the columns. A Hough transform of the pixels over the noise floor finds them; one is erased where it
covers over half its way across, is thinner than a printed line, has paper on both sides (strength going on
beside it is the desk beyond the sheet's edge, or a wood grain's stripes) and is not a long stroke inside the
frame. Ink crossing a line is kept. Used by `vision.ink` on photos; `vision.clutter` reads the lines found.
"""

from __future__ import annotations

import math

import numpy as np
from skimage.transform import hough_line, hough_line_peaks

LINE_TILT, LINE_STEP = 15.0, 0.25  # degrees; printed lines are looked for this far from the rows and columns
LINE_COVER = 0.5  # of its way across the image; a line's strength passes the level over this much of it
LINE_BINS = 5  # px; the least distance between two lines found
LINE_SPLIT = 0.75  # peaks with this share of LINE_COVER's votes are counted again at their own angle (a line
# tilted between two angles tried loses up to a tenth of its votes at either when 3 px wide, a 1-px line more)
LINE_REFINE = 8  # steps between two angles tried at which such a line's votes are counted again
LINE_WIDTH = 0.02  # of the shorter side (LINE_BINS at least); a printed line is thinner, a tight crop's stroke not
STROKE_SPAN = 0.75  # of its way across; a printed line's ink spans more (it crosses the sheet), a digit's stroke less
STROKE_END = 0.1  # of the image's height (or width); a line's end farther from the frame it faces stops inside it
LINE_KEEP = 1.6  # times a line's median strength; stronger pixels on it are ink crossing it
MAX_LINES = 64  # lines erased at most
LINE_WORK = 4  # the Hough accumulator may be this many times the image's pixels; a smaller image keeps its lines
LINE_MASK = 0.5  # share of the image over the level above which lines are not looked for (noise everywhere)


def erase_lines(strength: np.ndarray, level: float, lines: np.ndarray | None = None) -> np.ndarray:
    """`strength` (H, W) with the printed lines and creases that cross the image taken out: straight, within
    LINE_TILT degrees of the rows or the columns, found where the strength passes `level` (a Hough transform, on
    those pixels only), each covering at least LINE_COVER of its way across (counted again at its own angle where
    that falls between two tried, `_at_own_angle`), thinner than LINE_WIDTH of the image,
    with paper on both sides (not the sheet's edge; a second printed line beside it is erased with it,
    `_line_bins`) and not a long stroke inside the frame (`_stroke_inside`). A pixel on such a line keeps its
    strength where it is LINE_KEEP times the line's (ink crossing the line).
    `lines`, a bool (H, W) array if given, is set True on every pixel of the lines found (kept or not).
    Work: (pixels over `level`) x (angles tried), plus for each of at most MAX_LINES peaks the pixels near it
    LINE_REFINE + 1 times and sorting its pixels; small images and slivers (the accumulator would outgrow them)
    keep their lines."""
    mask = strength > level
    tilt = np.deg2rad(np.arange(-LINE_TILT, LINE_TILT + 1e-9, LINE_STEP))
    angles = np.concatenate([tilt, np.pi / 2 + tilt[tilt < 0], -np.pi / 2 + tilt[tilt > 0], [np.pi / 2]])
    height, width = strength.shape
    bins = angles.size * 2 * (height + width)  # the Hough accumulator's size, at most
    if not mask.any() or bins > LINE_WORK * strength.size or mask.mean() > LINE_MASK:  # a small image or a sliver
        return strength  # (its accumulator would outgrow it), or noise everywhere: no line can be told
    accumulator, theta, distances = hough_line(mask, theta=angles)
    rows, cols = np.nonzero(mask)
    values = strength[rows, cols]
    keep = np.ones(rows.size, dtype=bool)
    peaks = hough_line_peaks(accumulator, theta, distances, min_distance=LINE_BINS, min_angle=1,
                             threshold=LINE_SPLIT * LINE_COVER * min(height, width), num_peaks=MAX_LINES)
    widest = max(LINE_BINS, LINE_WIDTH * min(height, width))
    for votes, angle, distance in zip(*peaks):
        across = min(width / max(abs(math.sin(angle)), 1e-6), height / max(abs(math.cos(angle)), 1e-6))
        column, bins = accumulator[:, int(np.argmin(np.abs(theta - angle)))], distances
        if votes < LINE_SPLIT * LINE_COVER * across:  # short even if its votes were split between two angles
            continue
        if votes < LINE_COVER * across:  # perhaps a line tilted between two angles tried: counted at its own
            angle, column, bins, peak = _at_own_angle(rows, cols, angle, distance, LINE_BINS + 4 * widest + 3,
                                                      strength.shape)
            votes, distance = int(column[peak]), float(bins[peak])
            if votes < LINE_COVER * across:
                continue  # a short line: a stroke, or a line that does not cross the image
        peak = int(np.argmin(np.abs(bins - distance)))
        half = 0.5 * votes
        near = column[max(peak - round(widest), 0):peak + round(widest) + 1] >= half
        if near.all():  # as thick as a stroke of a digit cropped tight: not a printed line
            continue
        low, high = peak - max(peak - round(widest), 0), peak - max(peak - round(widest), 0)
        while low > 0 and near[low - 1]:
            low -= 1
        while high < near.size - 1 and near[high + 1]:
            high += 1
        start = max(peak - round(widest), 0)
        found = _line_bins(column, start + low, start + high, half, widest)
        if found is None:  # strength goes on beside it: the sheet's edge, not a printed line
            continue
        if found != (start + low, start + high):  # a second line beside it: the band covers both
            distance = (bins[found[0]] + bins[found[1]]) / 2
        on = _band(rows, cols, angle, distance, (found[1] - found[0] + 1) / 2 + 1.5)
        if _stroke_inside(rows[on], cols[on], angle, across, widest, strength.shape):
            continue
        keep &= ~on | (values > LINE_KEEP * float(np.median(values[on])))
        if lines is not None:
            lines[rows[on], cols[on]] = True
    cleaned = strength.copy()
    cleaned[rows[~keep], cols[~keep]] = 0.0
    return cleaned


def _band(rows: np.ndarray, cols: np.ndarray, angle: float, distance: float, half: float) -> np.ndarray:
    """Which of the pixels (`rows`, `cols`) lie on the line found at `angle` and `distance`: within `half` px of
    it as found, or of the line fitted to them. The angle found is one of those tried (or a step of
    `_at_own_angle`), up to half a step off the line's own, so a long line drifts across its band and its far
    ends fall outside a band drawn at that angle. The offsets across it of the pixels within `half` are fitted as
    a straight line along it (least squares), and the pixels within `half` of that fit (up to LINE_BINS farther
    out) are added to the band: added, not swapped for it, as clutter beside the line (the sheet's edge, a
    shadow) can tilt the fit at one end. Work: the pixels once."""
    across = cols * math.cos(angle) + rows * math.sin(angle) - distance
    near, core = np.abs(across) <= half + LINE_BINS, np.abs(across) <= half
    along = rows * math.cos(angle) - cols * math.sin(angle)
    if np.count_nonzero(core) > 1 and np.ptp(along[core]) > 0:
        slope, offset = np.polyfit(along[core], across[core], 1)
        core |= near & (np.abs(across - (slope * along + offset)) <= half)
    return core


def _at_own_angle(rows: np.ndarray, cols: np.ndarray, angle: float, distance: float, reach: float,
                  shape: tuple[int, int]) -> tuple[float, np.ndarray, np.ndarray, int]:
    """A line found at `angle` and `distance` as the Hough transform would see it at its own angle and offset.
    Of LINE_REFINE + 1 angles spanning LINE_STEP around `angle` (turned about the line's point nearest the image's
    centre, so the count stays on this line) and bins shifted by 0 or half a bin, the one where a bin within
    LINE_BINS / 2 of the line gets the most of its pixels' (`rows`, `cols`) votes; returned as that angle, the
    votes per bin of every pixel within `reach` of the line at it (zeros where there are none, as in the Hough
    accumulator), the bins' distances, and the line's bin. A line tilted between two angles tried drifts across
    the distance bins at both, and a thin one whose centre lies on a bin's edge splits between two, so its peak
    undercounts it (by over a tenth for a 3-px line) and its band looks wider; at its own angle and offset one bin
    holds it. Work: the pixels within LINE_BINS of the line 2 (LINE_REFINE + 1) times, and those within
    `reach` once."""
    normal = np.array([math.sin(angle), math.cos(angle)])  # (row, col) of the line's normal
    centre = np.array([(shape[0] - 1) / 2, (shape[1] - 1) / 2])
    pivot = centre + (distance - centre @ normal) * normal  # on the line, nearest the centre
    width = math.ceil(reach)
    off_line = np.abs(cols * normal[1] + rows * normal[0] - distance)  # at `angle`
    near = np.flatnonzero(off_line <= width + 3)  # the rest cannot reach the bins looked at
    rows, cols, off_line = rows[near] - pivot[0], cols[near] - pivot[1], off_line[near]
    side = LINE_BINS // 2
    close = off_line <= side + 3  # the line's own pixels, at any angle tried (turning moves them a pixel or two)
    best, most = (angle, 0.0), -1
    for tried in angle + np.linspace(-0.5, 0.5, LINE_REFINE + 1) * math.radians(LINE_STEP):
        apart = cols[close] * math.cos(tried) + rows[close] * math.sin(tried)  # from the line through the pivot
        for offset in (0.0, 0.5):
            bins = np.round(apart + offset).astype(np.int64)
            votes = np.bincount(bins[np.abs(bins) <= side] + side, minlength=2 * side + 1).max()
            if votes > most:
                best, most = (float(tried), offset), int(votes)
    tried, offset = best
    bins = np.round(cols * math.cos(tried) + rows * math.sin(tried) + offset).astype(np.int64)
    column = np.bincount(bins[np.abs(bins) <= width] + width, minlength=2 * width + 1)
    through = pivot[1] * math.cos(tried) + pivot[0] * math.sin(tried)  # the pivot's distance at this angle
    distances = through - offset + np.arange(-width, width + 1)
    return tried, column, distances, width - side + int(np.argmax(column[width - side:width + side + 1]))


def _line_bins(column: np.ndarray, low: int, high: int, half: float, widest: float) -> tuple[int, int] | None:
    """The bins of a line found in bins `low`..`high` of its angle's Hough `column` (`half`: half its peak's
    votes), widened to a second line beside it (a margin's double line); None where strength goes on beside it.

    A run of bins with `half` votes or more that starts within LINE_BINS of the line goes on (the desk beyond a
    sheet's edge, a wood grain's stripes) where it starts right beside it (a ramp up to a band), is wider than
    `widest`, or has more strength within twice `widest` beyond it; and so do runs on both sides. One run past a
    gap of paper, as thin as a line and with paper beyond it, is the second line of a pair."""
    found = [low, high]
    beside = 0
    reach = LINE_BINS + round(3 * widest) + 1  # bins looked at on each side: bounded work
    for side, bins in ((0, column[max(low - reach, 0):low][::-1]), (1, column[high + 1:high + 1 + reach])):
        strong = bins >= half
        if not strong[:LINE_BINS].any():
            continue
        first = int(np.argmax(strong))
        width = int(np.argmin(strong[first:])) if not strong[first:].all() else strong.size - first
        beyond = strong[first + width:first + width + round(2 * widest)]
        if first == 0 or width > widest or first + width >= strong.size or beyond.any():
            return None  # no paper between (a ramp), wide, to the end, or more after it
        beside += 1
        found[side] += (first + width) * (1 if side else -1)
    return None if beside > 1 else (found[0], found[1])


def _stroke_inside(rows: np.ndarray, cols: np.ndarray, angle: float, across: float, gap: float, shape) -> bool:
    """Whether the ink on a line found (its pixels' `rows` and `cols`; `angle` as `hough_line` gives it, `across`
    its way across the image) is a long stroke rather than a printed line: its longest run (breaks up to `gap` px
    bridged; other lines crossing it add only short runs) spans less than STROKE_SPAN of its way across and stops
    short of the frame at both of its ends, measured along it (a printed line that fades still reaches the frame
    at one). This takes a sheet that fills most of the frame: a ruled line on a sheet well inside the frame, or
    one dashed with gaps wider than `gap`, is kept too (the clutter rules then judge its pieces)."""
    along = rows * math.cos(angle) - cols * math.sin(angle)
    order = np.argsort(along)
    breaks = np.flatnonzero(np.diff(along[order]) > gap)
    starts, stops = np.concatenate([[0], breaks + 1]), np.concatenate([breaks, [along.size - 1]])
    longest = int(np.argmax(along[order[stops]] - along[order[starts]]))
    ends = order[[starts[longest], stops[longest]]]
    if along[ends[1]] - along[ends[0]] >= STROKE_SPAN * across:
        return False
    if abs(math.cos(angle)) >= abs(math.sin(angle)):  # near the columns: its ends face the top and the bottom
        gaps, size = np.minimum(rows[ends], shape[0] - 1 - rows[ends]), shape[0]
    else:  # near the rows: its ends face the sides
        gaps, size = np.minimum(cols[ends], shape[1] - 1 - cols[ends]), shape[1]
    return bool((gaps > STROKE_END * size).all())
