"""Find the ink of a digit on paper: the threshold and the digit's connected components, from the ink's strength
against the paper (`vision.paper`; see `vision.preprocess` for the whole pipeline).

Step 3 of `vision.preprocess`: the image is thresholded at half the ink's peak, clear of
the paper's noise, and the heaviest connected component and those near it are kept (a 5
or a 7 can be two strokes), dropping specks and lines that cross the image. An even sheet
(a scan, a drawing app's canvas) takes its border as the paper and follows faint strokes
further; on a photo the ink is measured against paper that follows a large shadow where
there is one (`vision.paper`), the desk beyond the sheet is left out (`vision.sheet`), and
its clutter is set aside first (`vision.clutter`).
Work and memory are linear in the pixels whatever the image holds.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage

from mnistlab.common.errors import PreprocessError
from mnistlab.vision.clutter import PHOTO_FAINTEST, PHOTO_MIN_CONTRAST, photo_digit, smooth_grain
from mnistlab.vision.lines import erase_lines
from mnistlab.vision.paper import estimate_background, frame_band, ink_strength, shaded_strength
from mnistlab.vision.sheet import Desk, find_desk, read_beside_desk

MIN_CONTRAST = 0.25  # of the paper's brightness; ink must darken (or lighten) the paper by this much somewhere
EVEN_MIN_CONTRAST = 0.1  # the same on an even canvas (a scan, a drawing app), where no shading can pass for ink
BLANK_FLOORS = 3.0  # the ink's peak must be this many times the noise floor below, or the image is blank
NOISE_SIGMAS = 4.0  # ink candidates stand this many standard deviations of the paper's noise above it
EVEN_BAND = 0.02  # of the longest side; on an even sheet the frame's outer band this wide is paper
FAINT_SIGMAS = 12.0  # a photo's faint ink must peak this many standard deviations of the paper's noise above it
FAINT_SHARE = 0.5  # of the ink threshold; weaker values are paper, stronger ones ramp up to the ink's peak
EVEN_FAINT_SHARE = 0.4  # the same on an even sheet, where only ink departs from the paper: a soft stroke's edges
EDGE_MARGIN = 2  # px at work scale; anti-aliased edges kept around the thresholded strokes
FAINT_REACH = 0.1  # of the digit's size; faint strokes joined to it are kept this far beyond its strong ink
FAINT_NEAR = 6  # px at work scale; on a photo, faint ink is kept only this near the strong strokes
LINE_SPAN = 0.9  # share of the image's height or width; a component this long may be a ruled line or a crease
RULING_DIAGONALS = (1.5, 6.0)  # such a component's stroke length in box diagonals: under or over this is a line or grid
RULING_WIDTH = 0.02  # of the image's shorter side; printed lines and creases are thinner, a tightly cropped 1 or 7 is not
MIN_DIGIT_PIXELS = 20  # px at work scale (or 0.5% of a small image); a smaller main component is a speck
NEAR_SHARE = 0.3  # of the main component's longest side; other components within this reach may be the digit's
SPECK_SHARE = 0.03  # of the main component's ink; lighter components are specks
RULING_CHECKS, RULING_WORK = 64, 4  # components checked one by one for being lines, at most; their boxes' area, at
# most, in times the image's pixels (the rest are checked together, see `_drop_rulings`)
MAX_GROW_ROUNDS = 64  # rounds of joining nearby components to the digit; photos need at most 5

NO_DIGIT = "no digit found: the image is blank or has too little contrast; draw or photograph one digit, dark on light or light on dark"


def ink_floor(strength: np.ndarray, least: float, even: bool = False) -> float:
    """The least strength that can be ink: NOISE_SIGMAS times the paper's noise (`paper_noise`), and half the
    `least` contrast a digit may have."""
    return max(NOISE_SIGMAS * paper_noise(strength, even), least / 2)


def paper_noise(strength: np.ndarray, even: bool = False) -> float:
    """The paper's noise in `strength` (H, W): a robust standard deviation of the whole image, sampled. On an
    `even` sheet the frame's border is paper (`paper.estimate_background`), and its spread is taken where it is
    smaller: ink covering half the frame or more (a digit cropped tight whose soft edges fill the rest, as in a
    scan enlarged from 8x8 pixels) would otherwise count as the paper's noise, and the digit as blank."""
    noise = _spread(strength[::4, ::4])
    if even:
        band = max(1, math.ceil(EVEN_BAND * max(strength.shape)))
        noise = min(noise, _spread(frame_band(strength, band)))
    return noise


def _spread(values: np.ndarray) -> float:
    """A robust standard deviation: the median absolute deviation, scaled to a normal distribution's."""
    return 1.4826 * float(np.median(np.abs(values - np.median(values))))


def ink_threshold(strength: np.ndarray, even: bool = False, least: float | None = None,
                  faintest: float | None = None) -> float:
    """Where ink begins: half the ink's peak strength (a stroke's edge, whatever the pen and the light), and at
    least NOISE_SIGMAS times the paper's noise (`paper_noise`) above the paper.

    The least contrast a digit may have is `least` when given (a single digit on a photo passes
    `clutter.PHOTO_MIN_CONTRAST`, where the clutter is set aside first), else MIN_CONTRAST on a photo (numbers),
    where shading the background map misses can reach it, and EVEN_MIN_CONTRAST on `even` paper, where nothing
    but noise can: a soft, faint scan is a digit. `faintest`, when given, is the least peak instead of
    BLANK_FLOORS times that floor (still BLANK_FLOORS times the noise's part of it): a photo's faint pencil, whose
    candidates must then look like a digit (`clutter.looks_like_digit`).

    Otsu's threshold is the textbook choice, but on ruled or squared paper with a small digit the lines'
    pixels outnumber the ink's, and Otsu then splits the lines from the paper instead of the ink from both.
    """
    least = (EVEN_MIN_CONTRAST if even else MIN_CONTRAST) if least is None else least
    floor = ink_floor(strength, least, even)
    peak = float(strength.max())
    lowest = max(least, BLANK_FLOORS * floor) if faintest is None else max(faintest, FAINT_SIGMAS * paper_noise(strength))
    if peak < lowest:  # nothing stands out from the paper's texture and noise
        raise PreprocessError(NO_DIGIT)
    return max(0.5 * peak, floor)


def select_digit(mask: np.ndarray, strength: np.ndarray, faint: np.ndarray | None = None,
                 edge: np.ndarray | None = None) -> np.ndarray:
    """The digit's pixels (H, W) bool: the heaviest connected component and the heavy ones near it, or joined to
    it by fainter ink (`faint`, bool (H, W), a superset of `mask`: a soft stroke dips under the threshold).
    Ink on `edge` (bool (H, W), the sheet's edge where a desk lies beyond it: `sheet.find_desk`) touches the frame.

    Lines that cross the whole image (ruled or squared paper, a crease) are dropped first, and components that
    touch the frame (the sheet's edge, the table beyond it) when one inside the frame carries at least
    SPECK_SHARE of the heaviest's ink (a tight crop has only specks inside); then specks under SPECK_SHARE of
    the heaviest component's ink and components away from its box. Work and memory are linear in the pixels
    whatever the number of components (see `_drop_rulings` and MAX_GROW_ROUNDS).
    """
    labels, count = ndimage.label(mask, structure=np.ones((3, 3)))
    if count == 0:
        raise PreprocessError(NO_DIGIT)
    starts, stops = _bounding_boxes(labels, count)  # (count, 2) each: [top, left], [bottom, right)
    mass = np.bincount(labels[mask], weights=strength[mask], minlength=count + 1)[1:]  # ink per component
    _drop_rulings(labels, starts, stops, mass)
    touches = _touches_frame(labels, count, starts, stops, edge)
    if mass[~touches].max(initial=0) >= SPECK_SHARE * mass.max():  # a digit inside: the rest is the sheet's edge
        mass[touches] = 0
    main = int(np.argmax(mass))
    main_box = tuple(slice(start, stop) for start, stop in zip(starts[main], stops[main]))
    if mass[main] <= 0 or np.count_nonzero(labels[main_box] == main + 1) < min(MIN_DIGIT_PIXELS, mask.size // 200):
        raise PreprocessError(NO_DIGIT)  # specks of noise or paper texture are not a digit
    box = np.array([starts[main], stops[main]])  # [[top, left], [bottom, right]]
    reach = NEAR_SHARE * float(np.max(box[1] - box[0]))
    heavy = (mass >= SPECK_SHARE * mass[main]) & (mass > 0)
    group = np.zeros(count, dtype=np.int64)  # the faint component each one lies in (0: none given)
    if faint is not None:
        group[labels[mask] - 1] = ndimage.label(faint, structure=np.ones((3, 3)))[0][mask]
    keep = np.zeros(count, dtype=bool)
    keep[main] = True
    candidates = np.flatnonzero((mass > 0) & ~keep)
    margin = np.where(heavy[candidates], reach, 2.0)[:, None]
    for _ in range(MAX_GROW_ROUNDS):  # grow the digit by the components near it (light ones only where they touch
        # its box), and by those its faint ink joins it to
        near = np.all((starts[candidates] < box[1] + margin) & (stops[candidates] > box[0] - margin), axis=1)
        near |= (group[candidates] > 0) & np.isin(group[candidates], group[keep])
        if not near.any():
            break
        joined = candidates[near]
        keep[joined] = True
        box = np.array([np.minimum(box[0], starts[joined].min(axis=0)), np.maximum(box[1], stops[joined].max(axis=0))])
        candidates, margin = candidates[~near], margin[~near]
    keep = np.flatnonzero(keep) + 1
    return np.isin(labels, keep)


def frame_clutter(mask: np.ndarray, strength: np.ndarray, edge: np.ndarray | None = None) -> np.ndarray:
    """The pixels of `mask` (H, W) bool in components that touch the frame (or the sheet's `edge`, as in
    `select_digit`) or are printed lines (`_drop_rulings`)."""
    labels, count = ndimage.label(mask, structure=np.ones((3, 3)))
    if count == 0:
        return mask
    starts, stops = _bounding_boxes(labels, count)
    mass = np.bincount(labels[mask], weights=strength[mask], minlength=count + 1)[1:]
    _drop_rulings(labels, starts, stops, mass)
    clutter = _touches_frame(labels, count, starts, stops, edge) | (mass <= 0)
    return np.concatenate([[False], clutter])[labels]


def _touches_frame(labels: np.ndarray, count: int, starts: np.ndarray, stops: np.ndarray,
                   edge: np.ndarray | None) -> np.ndarray:
    """(count,) bool: which components reach the image's border, or the sheet's `edge` where one is given."""
    touches = (starts == 0).any(axis=1) | (stops == np.array(labels.shape)).any(axis=1)
    if edge is not None:
        touches |= np.bincount(labels[edge], minlength=count + 1)[1:] > 0
    return touches


def _bounding_boxes(labels: np.ndarray, count: int) -> tuple[np.ndarray, np.ndarray]:
    """Each label's box (1..count): starts [top, left] and stops [bottom, right), (count, 2) each, in one pass
    (`ndimage.find_objects` builds a Python tuple per component: tens of MB for a speckled image)."""
    rows, cols = np.nonzero(labels)
    index = labels[rows, cols] - 1
    starts = np.full((count, 2), np.iinfo(np.intp).max, dtype=np.intp)
    stops = np.zeros((count, 2), dtype=np.intp)
    for axis, positions in enumerate((rows, cols)):
        np.minimum.at(starts[:, axis], index, positions)
        np.maximum.at(stops[:, axis], index, positions + 1)
    return starts, stops


def _drop_rulings(labels: np.ndarray, starts: np.ndarray, stops: np.ndarray, mass: np.ndarray) -> None:
    """Set to 0 the `mass` of the components that span LINE_SPAN of the image and are printed lines, creases or
    grids (`_is_ruling`).

    Each is measured in its own box, heaviest first, up to RULING_CHECKS components whose boxes add up to at most
    RULING_WORK times the image (a photo has a handful of such components; stripes or nested rings can have
    thousands, each with a box the size of the image); the rest are measured together on a distance transform of
    the whole mask, which differs only near their boxes' edges.
    """
    height, width = labels.shape
    widest = RULING_WIDTH * min(height, width)
    spans = stops - starts
    spanning = np.flatnonzero((spans[:, 0] >= LINE_SPAN * height) | (spans[:, 1] >= LINE_SPAN * width))
    order = spanning[np.argsort(-mass[spanning], kind="stable")]  # heaviest first
    work = np.cumsum(np.prod(spans[order], axis=1))  # pixels of the boxes measured one by one so far
    fits = (work <= RULING_WORK * labels.size) & (np.arange(len(order)) < RULING_CHECKS)
    for number in order[fits]:
        box = tuple(slice(start, stop) for start, stop in zip(starts[number], stops[number]))
        mass[number] *= not _is_ruling(labels[box] == number + 1, widest)
    rest = order[~fits]
    if rest.size:
        distances = ndimage.distance_transform_edt(labels > 0)
        pixels = np.bincount(labels.ravel(), minlength=len(mass) + 1)[1:]
        total = np.bincount(labels.ravel(), weights=distances.ravel(), minlength=len(mass) + 1)[1:]
        stroke = 4.0 * total[rest] / pixels[rest] - 2.0
        diagonals = pixels[rest] / np.maximum(stroke, 1.0) / np.hypot(spans[rest, 0], spans[rest, 1])
        ruling = (stroke < widest) & ((diagonals < RULING_DIAGONALS[0]) | (diagonals > RULING_DIAGONALS[1]))
        mass[rest[ruling]] = 0


def stroke_width(mask: np.ndarray) -> float:
    """Mean stroke width in pixels of a binary image, from its distance transform: across a stroke of width w
    the distance to the paper runs 1, 2, ..., w/2, ..., 2, 1, whose mean is about (w + 2) / 4."""
    if not mask.any():
        return 0.0
    return 4.0 * float(ndimage.distance_transform_edt(mask)[mask].mean()) - 2.0


def _is_ruling(component: np.ndarray, widest: float) -> bool:
    """Whether a component that crosses the image (bool, cropped to its box) is a printed line, a crease or a grid
    rather than a digit: its strokes are thinner than `widest` px and their total length (area / stroke width) is
    about its box's diagonal (one line) or many times it (a grid); a digit's strokes run two to four diagonals."""
    width = stroke_width(component)
    diagonals = np.count_nonzero(component) / max(width, 1.0) / math.hypot(*component.shape)
    return width < widest and (diagonals < RULING_DIAGONALS[0] or diagonals > RULING_DIAGONALS[1])


def isolate_ink(gray: np.ndarray) -> tuple[np.ndarray, bool]:
    """Gray (H, W) -> the digit's ink (h, w) in [0, 1], 0 = background, cropped to the digit with anti-aliased
    gray levels kept: background flattened, ink thresholded, clutter dropped; and whether the sheet is even."""
    if gray.size == 0 or gray.min() == gray.max():  # one level: no ink (a black one is not ink on black paper)
        raise PreprocessError(NO_DIGIT)
    paper = estimate_background(gray)  # once: the shaded paper below starts from the same estimate
    strength, even = ink_strength(gray, paper)
    if even:
        try:
            threshold = ink_threshold(strength, even)
            floor = EVEN_FAINT_SHARE * threshold
            # on an even sheet nothing but ink reaches the faint level: a soft digit's strokes that dip under the
            # threshold join it wherever they lead
            digit = select_digit(strength > threshold, strength, strength > floor)
        except PreprocessError:  # no digit on what looks like a scan: it may be an evenly lit photo of grainy
            even = False  # pencil, whose grain breaks the strokes into specks; it is read as a photo (which may refuse)
    if not even:  # a photo: grain averaged, the desk and printed lines set aside, and what is chosen must look like a digit
        shaded = shaded_strength(gray, paper)  # against paper that follows a hand's or a phone's shadow, if any
        strength = strength if shaded is None else shaded
        desk = find_desk(paper, gray.shape) if paper.dark_ink else None  # the desk beyond the sheet, if in view
        if desk is None:
            strength, digit, threshold = _photo_ink(strength)
        else:
            strength, digit, threshold = read_beside_desk(_photo_ink, strength, desk)
        floor = FAINT_SHARE * threshold  # shading can reach it: faint ink is followed only a little beyond the strokes
    rows, cols = np.flatnonzero(digit.any(axis=1)), np.flatnonzero(digit.any(axis=0))
    margin = EDGE_MARGIN + round((1.0 if even else FAINT_REACH) * max(rows[-1] - rows[0], cols[-1] - cols[0]))
    top, left = max(rows[0] - margin, 0), max(cols[0] - margin, 0)
    window = (slice(top, rows[-1] + margin + 1), slice(left, cols[-1] + margin + 1))
    strength, digit = strength[window], digit[window]
    peak = float(np.percentile(strength[digit], 90))
    ink = np.clip((strength - floor) / max(peak - floor, 1e-6), 0.0, 1.0)
    faint, _ = ndimage.label(ink > 0, structure=np.ones((3, 3)))  # hysteresis: faint ink joined to the strokes
    support = np.isin(faint, np.unique(faint[digit])) | ndimage.binary_dilation(digit, iterations=EDGE_MARGIN)
    if not even:  # on a photo, faint ink is followed only near the strokes: a faint printed line that crosses them
        support &= ndimage.binary_dilation(digit, iterations=FAINT_NEAR)  # them far from the digit is left out
    return crop_to_ink(ink * support), even


def _photo_ink(strength: np.ndarray, desk: Desk | None = None) -> tuple[np.ndarray, np.ndarray, float]:
    """A photo's ink strength (H, W) -> the strength with its grain averaged and printed lines erased, the digit's
    pixels (H, W) bool, and its threshold (`clutter.photo_digit`); `PreprocessError` when no ink looks like a digit.
    Beyond the sheet (`desk`) nothing is ink, and ink at its edge is clutter like ink at the frame."""
    edge = None if desk is None else desk.edge
    strength = smooth_grain(strength if desk is None else np.where(desk.desk, 0.0, strength))
    lines = np.zeros(strength.shape, dtype=bool)
    unerased, strength = strength, erase_lines(strength, ink_floor(strength, PHOTO_MIN_CONTRAST), lines)
    digit, threshold = photo_digit(strength, unerased, lambda values: ink_threshold(values, least=PHOTO_MIN_CONTRAST,
                                                                               faintest=PHOTO_FAINTEST),
                                   lambda mask: frame_clutter(mask, strength, edge),
                                   lambda mask: select_digit(mask, strength, edge=edge), stroke_width, NO_DIGIT, lines)
    return strength, digit, threshold


def crop_to_ink(ink: np.ndarray) -> np.ndarray:
    """The smallest rectangle holding every nonzero pixel."""
    rows, cols = np.flatnonzero(ink.any(axis=1)), np.flatnonzero(ink.any(axis=0))
    if rows.size == 0:
        raise PreprocessError(NO_DIGIT)
    return ink[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
