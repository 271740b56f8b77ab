"""The desk beyond the sheet in a photo: where the paper ends, so that its edge and the desk's grain are never ink
(used by `vision.ink` on photos of dark ink).

A phone photo of a sheet often shows the desk along a side or at a corner. Against the
paper the desk is dark, and the step at the sheet's cut edge is as strong as a stroke: a
piece of it, or of the desk's grain, can pass for a 1 or a 7 on a blank sheet, and a faint
digit near the edge can lose to it. The desk is found on the paper's small copy
(`paper.Paper.small`: 160 px on its longest side, or a strip's 40 rows, so the work is
bounded whatever the photo's size):

1. brightness is split in two (Otsu's threshold); unless the dark part is DESK_LEAST to
   DESK_MOST of the frame, there is no desk; opened wider than a stroke or a printed
   line, it leaves only solid regions;
2. a region is desk when it touches the frame, covers DESK_LEAST to DESK_LARGEST of it,
   is DESK_CONTRAST darker than the paper, and ends in a step: across its edge the
   brightness climbs most of the way to the paper's within a pixel or two. A shadow's
   edge (a hand's, a phone's, a gradient of light) is a slope over many pixels, so
   shade is never taken for the desk; nor is a region with writing in it (pixels far
   darker than its own level), which is the sheet in shade. A region down to half as
   dark (LIGHTER_DESK) that ends in a step is the desk going on (lighter wood, brighter
   light) where it lies within DESK_REACH of the desk found, its grain judged against
   the desk's darker level;
3. the desk grows back over what the opening took off its edge and its narrow strips,
   through pixels at the desk's own brightness only (not ink, which is darker, nor
   paper), DESK_REACH at most;
4. it is widened by DESK_MARGIN, so that the soft edge between desk and paper goes too,
   and a band EDGE_BAND wide along it is returned as the sheet's edge: ink touching it is
   treated like ink touching the frame.

A bold digit cropped so tight that a stroke looks like the desk is still read
(`read_beside_desk`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
from scipy import ndimage
from skimage.filters import threshold_otsu

from mnistlab.common.errors import PreprocessError
from mnistlab.vision.clutter import TIGHT_CROP
from mnistlab.vision.paper import Paper

DESK_CONTRAST = 0.25  # of the paper's brightness; a darker region that touches the frame may be the desk
LIGHTER_DESK = 0.5  # of DESK_CONTRAST; a region this dark that ends in a step may be desk where it adjoins the desk
DESK_LEAST = 0.01  # of the small copy; smaller dark regions (a digit at the border, a corner's shade) are not desk
DESK_MOST = 0.7  # of the small copy; a dark part larger than this is the paper in shade or a dark page, not a desk
DESK_LARGEST = 0.4  # of the small copy; a larger dark region is the sheet half in a hard shadow, not the desk
SOLID = 7  # px of the small copy; the dark part is opened this wide: strokes and printed lines are thinner
DESK_INK = 0.7  # of the contrast; pixels this much darker than a region's median are ink (a desk's grain is not)
WRITING = 4  # px of the small copy; a region with this much ink in it has writing on it
STEEPEST = 75  # percentile of the brightness gradient along a region's edge that measures how steep it is
STEP = 0.28  # of the region's contrast, per pixel; an edge at least this steep is the sheet's cut edge
DESK_LEVEL = 0.35  # of the contrast; pixels within this of the desk's median brightness can be more of the desk
DESK_REACH = 14  # px of the small copy; the desk grows back at most this far through such pixels
DESK_MARGIN = 4  # px of the small copy; the desk is widened by this, the soft edge between it and the paper included
EDGE_BAND = 1  # px of the small copy; ink within this of the widened desk touches the sheet's edge
EDGE_WIDTH = 2  # px of the small copy; a region's edge is this wide on each side of its boundary
MOST_ON_DESK = 2 / 3  # share of the ink found with the desk kept that may lie on the desk (`read_beside_desk`)


@dataclass(frozen=True)
class Desk:
    """What lies beyond the sheet, at the photo's size: `desk` (H, W) bool, never ink, and `edge` (H, W) bool, the
    band of paper along it, where ink is treated like ink touching the frame."""

    desk: np.ndarray
    edge: np.ndarray


def find_desk(paper: Paper, shape: tuple[int, int]) -> Desk | None:
    """The desk beyond the sheet in a photo whose paper is `paper`, at the photo's `shape`; None when the frame
    shows no desk (the sheet fills it, or only shade darkens its sides)."""
    small = paper.small
    bright = small > threshold_otsu(small) if float(np.ptp(small)) > 0 else np.ones(small.shape, dtype=bool)
    if not DESK_LEAST <= 1.0 - float(bright.mean()) <= DESK_MOST:
        return None
    paper_level = float(np.median(small[bright]))
    solid = ndimage.binary_opening(~bright, structure=np.ones((SOLID, SOLID)))
    regions, count = ndimage.label(solid)
    frame = np.zeros(small.shape, dtype=bool)
    frame[[0, -1], :] = frame[:, [0, -1]] = True
    sizes = np.bincount(regions.ravel(), minlength=count + 1)
    candidates = [label for label in np.unique(regions[frame])
                  if label and DESK_LEAST * small.size <= sizes[label] <= DESK_LARGEST * small.size]
    steepness = np.hypot(ndimage.sobel(small, 0), ndimage.sobel(small, 1)) / 8  # gray levels per px
    desk, lighter = np.zeros(small.shape, dtype=bool), []
    for label in candidates:  # at most 1 / DESK_LEAST of them, each on the small copy: bounded work
        region = regions == label
        level = float(np.median(small[region]))
        contrast = paper_level - level
        if contrast < LIGHTER_DESK * DESK_CONTRAST * paper_level:
            continue
        edge = ndimage.binary_dilation(region, iterations=EDGE_WIDTH) & ~ndimage.binary_erosion(
            region, iterations=EDGE_WIDTH) & ~frame
        if not edge.any() or float(np.percentile(steepness[edge], STEEPEST)) < STEP * contrast:
            continue  # no step at its edge: shade
        if contrast < DESK_CONTRAST * paper_level:
            lighter.append(region)  # perhaps more of the desk, in lighter wood or brighter light: judged below
        elif not _written_on(region, small, level, contrast):
            desk |= region
    if not desk.any():
        return None
    desk_level = float(np.median(small[desk]))
    near = ndimage.binary_dilation(desk, iterations=DESK_REACH)
    for region in lighter:  # the desk going on where the opening took a narrow strip of it away: its grain is
        # judged against the desk's darker level, or it would pass for writing on a region so little darker
        if (region & near).any() and not _written_on(region, small, desk_level, paper_level - desk_level):
            desk |= region
    like_desk = np.abs(small - desk_level) < DESK_LEVEL * (paper_level - desk_level)
    desk = ndimage.binary_dilation(desk, iterations=DESK_REACH, mask=like_desk)
    desk = ndimage.binary_dilation(desk, iterations=DESK_MARGIN)
    edge = ndimage.binary_dilation(desk, iterations=EDGE_BAND) & ~desk
    # every pixel of the photo that the small copy's mask covers in part
    return Desk(paper.at(shape, desk) > 0.01, paper.at(shape, edge) > 0.01)


def _written_on(region: np.ndarray, small: np.ndarray, level: float, contrast: float) -> bool:
    """Whether a dark region at `level`, `contrast` under the paper, has writing on it (WRITING pixels or more
    DESK_INK of the contrast darker than its level): the sheet in shade with the digit, not the desk."""
    return np.count_nonzero(region & (small < level - DESK_INK * contrast)) >= WRITING


def read_beside_desk(read: Callable, strength: np.ndarray, desk: Desk):
    """`read(strength, desk)` (`ink._photo_ink`: the strength, the digit (H, W) bool, the threshold) with the desk set
    aside. Where that finds nothing, or ink that reaches the desk's edge, what `read(strength, None)` finds with the
    desk kept is taken instead if its box fills TIGHT_CROP of the frame, it holds what was found and at most
    MOST_ON_DESK of it lies on the desk: a bold digit cropped so tight that a stroke looked like the desk. A piece of
    a desk's edge or grain fills less of the frame, and the whole desk lies on itself."""
    try:
        beside, refused = read(strength, desk), None
        if not (beside[1] & desk.edge).any():
            return beside
    except PreprocessError as error:
        beside, refused = None, error
    try:
        _, digit, _ = whole = read(strength, None)
    except PreprocessError:
        whole = None
    if whole is not None and _fills_frame(digit) and (beside is None or (digit & beside[1]).any()) and \
            np.count_nonzero(digit & desk.desk) <= MOST_ON_DESK * np.count_nonzero(digit):
        return whole
    if beside is None:
        raise refused
    return beside


def _fills_frame(digit: np.ndarray) -> bool:
    rows, cols = np.flatnonzero(digit.any(axis=1)), np.flatnonzero(digit.any(axis=0))
    return np.ptp(rows) * np.ptp(cols) >= TIGHT_CROP * digit.size
