"""Read a handwritten number: find each digit in an image, left to right, and classify each one.

The ink is found as `preprocess` finds it (paper estimated per pixel, threshold
at half the ink's peak), then split into digits instead of keeping one:

1. connected components of the ink; specks (under SPECK_SHARE of the heaviest,
   unless a solid point standing apart between digits: `_dots`, `_points`),
   printed lines and strokes too flat and long for a digit (an underline) are
   dropped, and components touching the frame unless they are the size of the
   number's digits (a tight crop) or nothing else is left; digits under
   SMALLEST_DIGIT px are no number, and writing on more than one line is refused;
   on a photo, the desk, shadows, printed lines and creases are set aside too
   (`vision.number_photo`);
2. the pieces: each component, and a component wide enough to hold two digits
   (a touching pair) cut at the columns with the least ink (candidate cuts);
3. the digits: the pieces, in order, are grouped into runs (a 5 whose bar is
   not joined to it is two pieces, a touching pair two slices of one) by the
   grouping of least cost (dynamic programming, `vision.number_parse`): a
   digit as tall as the number's digits and no wider, little overlap between
   neighbours, and, when a classifier is given, each run read with confidence;
   a point or comma standing apart between digits, even close to one, is a digit
   of its own (`_points`);
4. each digit is cropped with its own gray levels (the faint ink nearest its
   strokes, none of a neighbour's) and normalised like a single digit (stroke
   width, 20-px box, centre of mass). More than MAX_DIGITS digits are refused, not cut, and so is a
   digit chosen under MARK_SHARE of the digit height both ways (a point) or a short stroke hanging low
   between two digits, clear of both (a comma): `_marks`.

    >>> from mnistlab.vision.numbers import segment_number
    >>> digits = segment_number(image)   # [(box (left, top, right, bottom), (28, 28) uint8), ...] left to right

`mnistlab predict --number CHECKPOINT photo.jpg` reads each image as one number.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable

import numpy as np
from PIL import Image
from scipy import ndimage

from mnistlab.common.errors import ConfigError, PreprocessError
from mnistlab.data.decode import (MAX_FILE_PIXELS, check_shape, decode_image, file_size, image_to_gray,
                                  read_image_bytes)
from mnistlab.vision.clutter import FRAME_GAP, TIGHT_CROP
from mnistlab.vision.ink import NOISE_SIGMAS, SPECK_SHARE, _bounding_boxes, _drop_rulings, ink_threshold
from mnistlab.vision.number_photo import LEAST_CONTRAST, PhotoClutter, photo_clutter, photo_strength, straight_line
from mnistlab.vision.number_parse import MAX_GAP, Piece, best_grouping, candidate_runs
from mnistlab.vision.preprocess import ink_to_mnist

MAX_DIGITS = 12  # digits read at most from one image; more are refused: a page of writing, a texture, noise
NO_NUMBER = ("no digit found: the image is blank, too faint or only specks; photograph the number, dark on light or "
             "light on dark")
SMALLEST_DIGIT = 8  # px of the work copy; a number whose digits are shorter is specks or texture (MNIST's are 20)
READABLE_SHARE = 0.5  # of the ink; components at least SMALLEST_DIGIT tall must carry more than this
FLAT_HEIGHT, FLAT_WIDTH = 0.25, 1.5  # of the digits' height: a stroke flatter and longer than this is no digit's
MARK_SHARE = 0.4  # of the digit height; a digit chosen smaller both ways is a mark (a point, a comma)
COMMA_SHARE = 0.6  # of the digit height; a shorter stroke hanging low between two digits, clear of both, is a comma
DOT_SIZE, DOT_PIXELS, DOT_FILL = 0.1, 3, 0.5  # a speck this big both ways (of the digit height, and in px of the
# work copy) and this solid (ink in its box) is a point, where it stands apart between digits
NEAR_GAP = 0.1  # of the digit height; a point low on the line, or a comma hanging below it, this far from the
HANG = 0.1  # digits stands apart (a decimal point or comma); hanging: the bottom this far below the digits' bottoms
LINE_GAP = 0.25  # of the digit height; components farther apart than this vertically are on different lines
MAX_PIECES = 40  # pieces (components and slices) grouped at most; the lightest beyond are dropped as specks
OVERLAP_SHARE = 0.5  # of the narrower component's width; components overlapping this much are one digit's height
CUT_WIDTH = 1.0  # of the digit height; a component wider than this gets candidate cuts (a touching pair)
CUT_MARGIN = 0.2  # of the digit height; a cut leaves at least this much of the component on either side
CUT_SPACING = 0.2  # of the digit height; candidate cuts are at least this far apart
MAX_CUTS = 4  # candidate cuts in one component, at most (the deepest)
FAINT_FLOOR = 0.2  # of a digit's ink peak; weaker values are paper (and at least the threshold's noise floor)
FAINT_REACH = 0.15  # of the digit height; faint ink this far from a digit's strokes is its own
FAINT_FOLLOW = 0.4  # of the digit height; faint ink joined to its strokes, this far
CLASSIFY_BATCH = 16  # candidate digits read by the model at once
Classify = Callable[[np.ndarray], np.ndarray]  # (N, 28, 28) uint8 -> (N, classes) probabilities


def segment_number(image: Image.Image, classify: Classify | None = None) -> list[tuple[tuple[int, ...], np.ndarray]]:
    """A decoded image -> its digits left to right: (box in the file's pixels (left, top, right, bottom),
    MNIST-style (28, 28) uint8). `classify` ((N, 28, 28) uint8 -> (N, classes) probabilities), when given, helps
    decide which pieces of ink are one digit. `PreprocessError` when there is no digit."""
    check_shape(*image.size)
    gray = image_to_gray(image)
    if gray.size == 0 or gray.min() == gray.max():
        raise PreprocessError(NO_NUMBER)
    scale = max(file_size(image)) / max(gray.shape)  # the work copy may be shrunk: boxes are in the file's pixels
    strength, photo = photo_strength(gray)
    even = photo is None  # a scan or a drawing app's canvas
    threshold = ink_threshold(strength, even, least=None if even else LEAST_CONTRAST)
    sample = strength[::4, ::4]
    noise = NOISE_SIGMAS * 1.4826 * float(np.median(np.abs(sample - np.median(sample))))  # the paper's, as in `ink`
    pieces, piece_map, height = _pieces(strength > threshold, strength, photo)
    faint = strength > max(FAINT_FLOOR * float(strength.max()), noise)
    owner, near = _nearest_piece(piece_map, height, faint)
    runs = candidate_runs(pieces, height)
    crops = [_crop(run, pieces, owner, near, strength, (threshold, noise), height, even) for run in runs]
    scores = None
    if classify is not None:  # a few crops at a time: a model's activations for hundreds would take tens of MB
        images = np.stack([image for _, image in crops])
        scores = np.concatenate([classify(images[start:start + CLASSIFY_BATCH])
                                 for start in range(0, len(images), CLASSIFY_BATCH)])
    chosen = best_grouping(pieces, runs, height, scores)
    if photo is not None and straight_line(piece_map > 0, len(chosen)):
        raise PreprocessError(NO_NUMBER)
    if len(chosen) > MAX_DIGITS:  # a page of writing, a texture or noise: refused, not cut to a guess
        raise PreprocessError(f"found more digit-like marks than the {MAX_DIGITS} digits a number is read up to; "
                              f"crop the image to one number")
    boxes = [crops[index][0] for index in chosen]
    for (top, left, bottom, right), mark in zip(boxes, _marks(boxes, height)):
        if mark:  # read as a digit, a point or a comma would change the number
            raise PreprocessError(f"found a mark much smaller than the digits (a point or a comma?) at "
                                  f"x={round(left * scale)} (in the file's pixels); only digits are read: cover the "
                                  f"mark, or read the digits on either side of it separately")
    return [(tuple(round(value * scale) for value in (left, top, right, bottom)), crops[index][1])
            for index, (top, left, bottom, right) in zip(chosen, boxes)]


def _marks(boxes: list[tuple[int, int, int, int]], height: float) -> list[bool]:
    """Which of the chosen digits' boxes (top, left, bottom, right), left to right, are marks: smaller than
    MARK_SHARE of the digit height both ways (a point), or a short stroke hanging low between two digits and
    clear of both (a comma): under COMMA_SHARE of the height, its top below both neighbours' middle, clear of them
    by MAX_GAP, or by NEAR_GAP where it hangs HANG below their bottoms."""
    marks = [max(bottom - top, right - left) < MARK_SHARE * height for top, left, bottom, right in boxes]
    for number in range(1, len(boxes) - 1):
        before, (top, left, bottom, right), after = boxes[number - 1:number + 2]
        clearance = min(left - before[3], after[1] - right)
        hangs = bottom > max(before[2], after[2]) + HANG * height
        low = top > max((before[0] + before[2]) / 2, (after[0] + after[2]) / 2)
        clear = clearance > MAX_GAP * height or (hangs and clearance > NEAR_GAP * height)
        marks[number] |= clear and low and bottom - top < COMMA_SHARE * height
    return marks


def read_number(loaded, source: bytes | str, max_pixels: int = MAX_FILE_PIXELS) -> dict:
    """Image bytes or a path -> {"number": "2026", "digits": [{"digit", "box", "probabilities"}, ...]} read with
    `loaded` (a `predict.LoadedModel` trained on handwritten digits); each digit also carries `not_sure` when the
    checkpoint has a threshold. `PreprocessError` with a one-line reason when no digit is found."""
    from mnistlab.vision.predict import predict_probabilities

    check_reads_digits(loaded)
    data = bytes(source) if isinstance(source, (bytes, bytearray)) else read_image_bytes(source)
    digits = segment_number(decode_image(data, max_pixels), lambda images: predict_probabilities(loaded.model, images))
    probabilities = predict_probabilities(loaded.model, np.stack([image for _, image in digits]))
    names, found = loaded.class_names, []
    for (box, _), row in zip(digits, probabilities):
        item = {"digit": names[int(row.argmax())], "box": list(box), "probabilities": [round(float(p), 4) for p in row]}
        not_sure = loaded.not_sure(float(row.max()))
        found.append(item if not_sure is None else {**item, "not_sure": not_sure})
    return {"number": "".join(item["digit"] for item in found), "digits": found}


def check_reads_digits(loaded) -> None:
    """`ConfigError` unless `loaded` (a `predict.LoadedModel`) reads handwritten digits: a number's digits are found
    and cut apart as digits, which another model's classes would only be guessed from."""
    if not loaded.reads_digits:
        raise ConfigError(f"{loaded.name} was trained on {loaded.dataset}, not on handwritten digits, so it cannot "
                          f"read a number; use a checkpoint trained on digits (e.g. mnistlab train cnn)")


def _pieces(mask: np.ndarray, strength: np.ndarray,
            photo: PhotoClutter | None = None) -> tuple[list[Piece], np.ndarray, float]:
    """The thresholded ink (H, W) bool -> the pieces (left to right by their centre), a map of them (H, W) int32,
    0 = none, piece k = k + 1, and the number's digit height in pixels. On a `photo`, components that fade into the
    paper (a shadow, a desk's grain) or lie on the printed lines found (`number_photo.photo_clutter`) are dropped,
    and those near the frame or at the sheet's edge count as touching the frame."""
    labels, count = ndimage.label(mask, structure=np.ones((3, 3)))
    if count == 0:
        raise PreprocessError(NO_NUMBER)
    starts, stops = _bounding_boxes(labels, count)  # (count, 2) each: [top, left], [bottom, right)
    mass = np.bincount(labels[mask], weights=strength[mask], minlength=count + 1)[1:]
    _drop_rulings(labels, starts, stops, mass)
    if mass.max() <= 0:
        raise PreprocessError(NO_NUMBER)
    keep = np.flatnonzero(mass >= SPECK_SHARE * mass.max())
    keep = keep[np.argsort(-mass[keep], kind="stable")][:MAX_PIECES]
    sizes = stops[keep] - starts[keep]
    typical = _typical_height(sizes[:, 0])  # an underline, a line struck through: no part of one digit
    keep = keep[~((sizes[:, 0] < FLAT_HEIGHT * typical) & (sizes[:, 1] > FLAT_WIDTH * typical))]
    pixels = np.bincount(labels.ravel(), minlength=count + 1)[1:]
    if photo is not None:
        keep = keep[~photo_clutter(labels, keep, pixels, strength, photo.lines)]
        if keep.size == 0:
            raise PreprocessError(NO_NUMBER)
    height = _digit_height(starts[keep], stops[keep], mass[keep])
    near = 0 if photo is None else round(FRAME_GAP * max(mask.shape))  # a photo's frame: a sliver of paper beyond
    touches = (starts[keep] <= near).any(axis=1) | (stops[keep] >= np.array(mask.shape) - near).any(axis=1)
    sizes = stops[keep] - starts[keep]
    digit_sized = (sizes[:, 0] <= 1.5 * height) & (sizes[:, 1] <= 3 * height)  # a digit, or a touching pair
    if photo is not None:  # on a photo, also at the sheet's edge; and a digit cropped tight is as tall as the others
        touches |= np.isin(keep + 1, np.unique(labels[photo.edge]))
        digit_sized &= sizes[:, 0] >= 0.5 * height
    if (~touches).any():  # the sheet's edge or the desk beyond it, unless the size of a digit (a tight crop)
        keep = keep[~touches | digit_sized]
        height = _digit_height(starts[keep], stops[keep], mass[keep])
    elif photo is not None:  # all at the frame: on a photo, a number cropped tight fills the frame with digits;
        # the sheet's edge, the desk's or a shadow's cut by the threshold does not
        extent = stops[keep].max(axis=0) - starts[keep].min(axis=0)
        if not digit_sized.all() or extent.prod() < TIGHT_CROP * mask.size:
            raise PreprocessError(NO_NUMBER)
    keep = np.concatenate([keep, _dots(pixels, starts, stops, mass, keep, height)[:MAX_PIECES - len(keep)]])
    _check_one_line(starts[keep, 0], stops[keep, 0], mass[keep])
    points = _points(pixels, starts, stops, keep, keep, height, commas=True)  # each a digit of its own: a mark
    lookup = np.zeros(count + 1, dtype=np.int32)
    lookup[keep + 1] = np.arange(1, len(keep) + 1)
    components = lookup[labels]  # 0 = dropped, k = the k-th kept component
    piece_map = np.zeros(mask.shape, dtype=np.int32)
    spans = []  # (component, strokes crossed by the cut at its left edge) of each piece
    for number, component in enumerate(keep, start=1):
        (top, left), (bottom, right) = starts[component], stops[component]
        window = components[top:bottom, left:right] == number
        edges = [left, *(_cuts(window, height) + left), right]
        for first, last in itertools.pairwise(edges):
            column = window[:, first - left].astype(np.int8)
            spans.append((number, int(np.count_nonzero(np.diff(column, prepend=0) > 0)) if first > left else 0))
            piece_map[top:bottom, first:last][window[:, first - left:last - left]] = len(spans)
    inked = piece_map > 0
    ink = np.bincount(piece_map[inked], weights=strength[inked], minlength=len(spans) + 1)[1:]
    columns = np.broadcast_to(np.arange(mask.shape[1]), mask.shape)[inked]
    centres = np.bincount(piece_map[inked], weights=strength[inked] * columns, minlength=len(spans) + 1)[1:]
    boxes = ndimage.find_objects(piece_map, max_label=len(spans))
    pieces = [Piece(number, spans[number][0], (box[0].start, box[1].start, box[0].stop, box[1].stop),
                    float(ink[number]), float(centres[number] / ink[number]), spans[number][1],
                    point=bool(points[spans[number][0] - 1]))
              for number, box in enumerate(boxes) if box is not None and ink[number] > 0]
    return sorted(pieces, key=lambda piece: piece.centre), piece_map, height


def _dots(pixels: np.ndarray, starts: np.ndarray, stops: np.ndarray, mass: np.ndarray, keep: np.ndarray,
          height: float) -> np.ndarray:
    """The components dropped as specks that are points standing apart between the digits (`_points`). Written
    with a heavy pen's digits, a point carries under SPECK_SHARE of the heaviest digit's ink, and dropped, 7.14
    would read as 714; kept, it is refused as a mark. A speck near a digit, or beyond the first or the last, stays
    dropped. At most MAX_PIECES point-shaped specks, the heaviest, are measured against the digits."""
    candidates = np.flatnonzero(mass > 0)
    candidates = candidates[~np.isin(candidates, keep)]
    candidates = candidates[_mark_shapes(pixels, starts, stops, candidates, keep, height)[0]]
    candidates = candidates[np.argsort(-mass[candidates], kind="stable")][:MAX_PIECES]
    return candidates[_points(pixels, starts, stops, candidates, keep, height)]


def _points(pixels: np.ndarray, starts: np.ndarray, stops: np.ndarray, candidates: np.ndarray, digits: np.ndarray,
            height: float, commas: bool = False) -> np.ndarray:
    """Which `candidates` (component indices) are marks standing apart between the `digits` (component indices;
    a candidate among them is not measured against itself), (C,) bool: a point or, with `commas`, a comma
    (`_mark_shapes`) with digits on both sides, clear of every digit by more than MAX_GAP of the height, or by more
    than NEAR_GAP where written as decimal points and commas are, nearer a digit: a point low on the line, a comma
    hanging below it. A piece of a broken digit does neither."""
    shaped, close = _mark_shapes(pixels, starts, stops, candidates, digits, height, commas)
    lefts, rights = starts[candidates, 1, None], stops[candidates, 1, None]  # (C, 1) against the digits' (K,)
    digit_lefts, digit_rights = starts[digits, 1], stops[digits, 1]
    gaps = np.maximum(digit_lefts - rights, lefts - digit_rights).astype(np.float64)  # empty columns between
    gaps[candidates[:, None] == digits[None, :]] = np.inf
    clearance = gaps.min(axis=1, initial=np.inf)
    between = (digit_rights < lefts).any(axis=1) & (digit_lefts > rights).any(axis=1)
    return shaped & between & ((clearance > MAX_GAP * height) | (close & (clearance > NEAR_GAP * height)))


def _mark_shapes(pixels: np.ndarray, starts: np.ndarray, stops: np.ndarray, candidates: np.ndarray,
                 digits: np.ndarray, height: float, commas: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(C,) bool twice: which `candidates` are shaped as a point or, with `commas`, a comma on the `digits`' line,
    and which of those may stand nearer a digit than MAX_GAP (a point whose top is below the digits' middle, a
    comma hanging HANG of the height below their median bottom). A point is solid (`pixels` of ink over DOT_FILL
    of its box), at least DOT_SIZE of the digit height (and DOT_PIXELS) both ways and at most MARK_SHARE; a comma
    is at most MARK_SHARE wide and under COMMA_SHARE tall, with its top below the digits' middle."""
    sizes = stops[candidates] - starts[candidates]
    tops, bottoms = starts[candidates, 0], stops[candidates, 0]
    line_top, line_bottom = starts[digits, 0].min(), stops[digits, 0].max()
    low = tops > (line_top + line_bottom) / 2
    point = ((pixels[candidates] >= DOT_FILL * sizes.prod(axis=1))
             & (sizes.min(axis=1) >= max(DOT_SIZE * height, DOT_PIXELS)) & (sizes.max(axis=1) <= MARK_SHARE * height))
    comma = commas & low & (sizes[:, 0] < COMMA_SHARE * height) & (sizes[:, 1] <= MARK_SHARE * height)
    hangs = bottoms > np.median(stops[digits, 0]) + HANG * height
    on_line = (tops >= line_top) & (bottoms <= line_bottom + LINE_GAP * height)
    return on_line & (point | comma), (point & low) | (comma & hangs)


def _typical_height(heights: np.ndarray) -> float:
    """The digits' height among components' heights: the median of those at least half as tall as the tallest."""
    return float(np.median(heights[heights >= 0.5 * heights.max()]))


def _check_one_line(tops: np.ndarray, bottoms: np.ndarray, mass: np.ndarray) -> None:
    """`PreprocessError` unless the components' rows (tops, bottoms) are one line of digits of a readable size.

    The digits are the components at least half as tall as the tallest; components LINE_GAP of their median
    height or nearer one above the other are one line, and a line counts only if it holds a digit, so a 5's loose
    bar, a dot or an underline is no line of its own. Components SMALLEST_DIGIT tall or more must carry most of
    the ink (`mass`, each component's): dots that by chance clump into one taller speck are still specks.
    """
    height = _typical_height(bottoms - tops)
    readable = mass[bottoms - tops >= SMALLEST_DIGIT].sum()
    if height < SMALLEST_DIGIT or readable < READABLE_SHARE * mass.sum():  # specks, grain or a texture
        raise PreprocessError(NO_NUMBER)
    order = np.argsort(tops, kind="stable")
    lines, bottom, has_digit = 0, -np.inf, False
    for top, low in zip(tops[order], bottoms[order]):
        if top > bottom + LINE_GAP * height:  # a gap: the line above is complete
            lines += has_digit
            has_digit = False
        bottom = max(bottom, low)
        has_digit = has_digit or low - top >= 0.5 * height
    lines += has_digit
    if lines > 1:
        raise PreprocessError(f"found writing on {lines} lines; crop the image to the one line of the number")


def _digit_height(starts: np.ndarray, stops: np.ndarray, mass: np.ndarray) -> float:
    """The number's digit height in pixels: the median height of the columns of ink (components overlapping
    horizontally by OVERLAP_SHARE are one), among those at least half as tall as the tallest."""
    order = np.argsort(starts[:, 1], kind="stable")
    columns: list[list[int]] = []  # [top, left, bottom, right]
    for number in order:
        top, left, bottom, right = starts[number, 0], starts[number, 1], stops[number, 0], stops[number, 1]
        for column in columns:
            overlap = min(right, column[3]) - max(left, column[1])
            if overlap >= OVERLAP_SHARE * min(right - left, column[3] - column[1]):
                column[:] = [min(top, column[0]), min(left, column[1]), max(bottom, column[2]), max(right, column[3])]
                break
        else:
            columns.append([top, left, bottom, right])
    return _typical_height(np.array([bottom - top for top, _, bottom, _ in columns], dtype=np.float64))


def _cuts(component: np.ndarray, height: float) -> np.ndarray:
    """A component's pixels (h, w) bool -> the columns (0..w) where it may be cut into digits: the local minima of
    its ink per column, deepest first, CUT_SPACING apart and CUT_MARGIN from either end; none if it is narrow."""
    width = component.shape[1]
    if width <= CUT_WIDTH * height:
        return np.zeros(0, dtype=np.int64)
    profile = ndimage.uniform_filter1d(component.sum(axis=0).astype(np.float64), max(1, round(0.04 * height)))
    margin, spacing = max(1, round(CUT_MARGIN * height)), max(1, round(CUT_SPACING * height))
    inner = np.arange(margin, width - margin)
    if inner.size == 0:
        return np.zeros(0, dtype=np.int64)
    lower = np.r_[np.inf, profile][inner] >= profile[inner]  # no higher than the column before
    upper = np.r_[profile, np.inf][inner + 1] >= profile[inner]  # and the one after
    chosen: list[int] = []
    for column in inner[lower & upper][np.argsort(profile[inner[lower & upper]], kind="stable")]:
        if all(abs(column - other) >= spacing for other in chosen):
            chosen.append(int(column))
        if len(chosen) == MAX_CUTS:
            break
    return np.array(sorted(chosen), dtype=np.int64)


def _nearest_piece(piece_map: np.ndarray, height: float, faint: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each pixel's nearest piece (H, W) int32 (piece number + 1), and whether it may be a digit's ink: within
    FAINT_REACH of the pieces, or in `faint` ink (H, W) bool joined to them (a faint stroke, hysteresis) and
    within FAINT_FOLLOW."""
    distances, (rows, cols) = ndimage.distance_transform_edt(piece_map == 0, return_indices=True)
    groups, _ = ndimage.label(faint | (piece_map > 0), structure=np.ones((3, 3)))
    joined = np.isin(groups, np.unique(groups[piece_map > 0]))
    near = (distances <= max(2.0, FAINT_REACH * height)) | (joined & (distances <= FAINT_FOLLOW * height))
    return piece_map[rows, cols], near


def _crop(run: tuple[int, ...], pieces: list[Piece], owner: np.ndarray, near: np.ndarray, strength: np.ndarray,
          levels: tuple[float, float], height: float, even: bool) -> tuple[tuple[int, int, int, int], np.ndarray]:
    """A run of pieces -> its box (top, left, bottom, right) and its MNIST-style (28, 28) uint8: the faint ink
    nearest its pieces, with its gray levels from FAINT_FLOOR of its peak up."""
    numbers = np.array([pieces[k].number + 1 for k in run])
    top = min(pieces[k].box[0] for k in run)
    left = min(pieces[k].box[1] for k in run)
    bottom = max(pieces[k].box[2] for k in run)
    right = max(pieces[k].box[3] for k in run)
    margin = int(np.ceil(max(2.0, FAINT_FOLLOW * height)))
    window = (slice(max(top - margin, 0), bottom + margin), slice(max(left - margin, 0), right + margin))
    own = np.isin(owner[window], numbers) & near[window]
    threshold, noise = levels
    values = strength[window]
    strokes = values[own & (values > threshold)]
    peak = float(np.percentile(strokes, 90)) if strokes.size else threshold
    floor = min(max(FAINT_FLOOR * peak, noise), 0.5 * peak)
    ink = np.clip((values - floor) / max(peak - floor, 1e-6), 0.0, 1.0) * own  # > 0 on the pieces themselves
    return (top, left, bottom, right), ink_to_mnist(ink, thin=not even)
