"""Turn any reasonable image into an MNIST-style input: 28x28 uint8, white digit on black.

MNIST digits are white on black, scaled so the longest side of the ink fills a
20x20 box (with anti-aliasing), and pasted into 28x28 with their centre of mass
at the centre. A digit drawn on a large white canvas or photographed on paper
is none of these, and a model fed the raw pixels guesses. The steps here redo
the MNIST authors' normalisation on any image:

1. decode within a memory budget and flatten to gray in [0, 1] (`image_decode`);
2. polarity and background: the paper's brightness is estimated at every pixel (a
   grey closing wider than any stroke, on a small copy), so a sheet lit unevenly or
   half in shadow is still paper; the ink's strength is its departure from it;
3. threshold at half the ink's peak, clear of the paper's noise; keep the heaviest
   connected component and those near it (a 5 or a 7 can be two strokes), dropping
   specks and lines that cross the image; keep the ink's gray levels around them;
4. crop to the digit and bring the stroke width, measured with a distance transform,
   into MNIST's range (a 1-pixel pen line on a big canvas would vanish when shrunk);
5. scale the longest side to 20 px keeping the aspect ratio (area averaging);
6. paste into 28x28 with the centre of mass at the centre.

    >>> from mnistlab.vision.preprocess import preprocess
    >>> preprocess("my-digit.jpg").shape   # (28, 28) uint8, ready for models.images_to_tensor

Only checkpoints trained on handwritten digits (MNIST, folders labelled 0-9) get
these steps (`kind="digits"`). Others (Fashion-MNIST, KMNIST, cat/dog/bird
folders) get `preprocess_plain` (`kind="plain"`): gray, padded to a square,
resized to 28x28, so a 28x28 image saved from such a dataset is read back pixel
for pixel. Either way the result is brought to the training images' background
(`background`): every registered dataset has light objects on black; a user's
folder of dark objects on white is "light", and inputs are inverted to match.
"""

from __future__ import annotations

import math
import os

import numpy as np
from PIL import Image
from scipy import ndimage

from mnistlab.common.errors import PreprocessError
from mnistlab.data.datasets import IMAGE_SIDE
from mnistlab.data.decode import MAX_FILE_PIXELS, check_shape, decode_image, image_to_gray, read_image_bytes, shrink

STROKE_SIZE = 80  # px; the cropped ink is resampled to this longest side to measure and fix stroke width
MIN_STROKE, MAX_STROKE = 7.5, 14.5  # px at STROKE_SIZE; the middle 80% of MNIST test digits lie in this range
STROKE_TARGET = 10.0  # px at STROKE_SIZE; MNIST's median; strokes outside the range above are moved to it
BACKGROUND_SIZE = 160  # px; the longest side of the copy the paper's brightness is estimated on
BACKGROUND_KERNEL = 1 / 4  # of that copy's longest side; wider than any pen stroke, narrow enough to follow light
UNIFORM_SPREAD = 0.04  # gray levels; a background map flatter than this is replaced by its median (a clean canvas)
EVEN_BORDER = 0.02  # gray levels; a border (2 px of that copy) spread less than this is an even sheet all round
LIGHT_INK_SKEW = 0.5  # skewness above which the ink is lighter than the paper; dark ink is the default
DARKEST_PAPER = 0.05  # gray level; dark ink's strength is measured against paper at least this bright
MIN_CONTRAST = 0.25  # of the paper's brightness; ink must darken (or lighten) the paper by this much somewhere
EVEN_MIN_CONTRAST = 0.1  # the same on an even canvas (a scan, a drawing app), where no shading can pass for ink
BLANK_FLOORS = 3.0  # the ink's peak must be this many times the noise floor below, or the image is blank
NOISE_SIGMAS = 4.0  # ink candidates stand this many standard deviations of the paper's noise above it
FAINT_SHARE = 0.5  # of the ink threshold; weaker values are paper, stronger ones ramp up to the ink's peak
EVEN_FAINT_SHARE = 0.4  # the same on an even sheet, where only ink departs from the paper: a soft stroke's edges
EDGE_MARGIN = 2  # px at work scale; anti-aliased edges kept around the thresholded strokes
FAINT_REACH = 0.1  # of the digit's size; faint strokes joined to it are kept this far beyond its strong ink
LINE_SPAN = 0.9  # share of the image's height or width; a component this long may be a ruled line or a crease
RULING_DIAGONALS = (1.5, 6.0)  # such a component's stroke length in box diagonals: under or over this is a line or grid
RULING_WIDTH = 0.02  # of the image's shorter side; printed lines and creases are thinner, a tightly cropped 1 or 7 is not
MIN_DIGIT_PIXELS = 20  # px at work scale (or 0.5% of a small image); a smaller main component is a speck
NEAR_SHARE = 0.3  # of the main component's longest side; other components within this reach may be the digit's
SPECK_SHARE = 0.03  # of the main component's ink; lighter components are specks
RULING_CHECKS, RULING_WORK = 64, 4  # components checked one by one for being lines, at most; their boxes' area, at
# most, in times the image's pixels (the rest are checked together, see `_drop_rulings`)
MAX_GROW_ROUNDS = 64  # rounds of joining nearby components to the digit; photos need at most 5
DIGIT_BOX = 20  # px; the longest side of the digit in an MNIST image
CENTRE = (14.0, 14.0)  # (row, column) where the centre of mass lands, as in MNIST (pixel-index coordinates)

NO_DIGIT = "no digit found: the image is blank or has too little contrast; draw or photograph one digit, dark on light or light on dark"


def estimate_background(gray: np.ndarray) -> tuple[np.ndarray, bool, bool]:
    """The paper's brightness at each pixel (H, W), whether the ink is darker than the paper, and whether the
    sheet is even all round (its border one level: a scan or a drawing app's canvas, not a photo).

    A grey closing (max then min filter) wider than any pen stroke erases dark strokes but keeps what varies
    slowly or in steps: gradients, vignetting, shadow edges; an opening does the same for light strokes. Both are
    computed on a copy area-averaged to BACKGROUND_SIZE px (fast, and it averages out sensor noise). The
    polarity comes first, from the skewness of the departures from a Gaussian blur: ink is a sparse tail on the
    dark side (dark ink) or on the light side; gradients, noise and shadow edges are nearly symmetric.
    """
    small = shrink(gray, BACKGROUND_SIZE)
    size = max(3, round(BACKGROUND_KERNEL * max(small.shape)))
    # padded by odd reflection, which continues a gradient past the border; a mirror or a copied edge would make
    # a valley or a plateau there, and the closing would fill it with a brighter paper than the border's
    pad = size // 2 + 1
    padded = np.pad(small, pad, mode="reflect", reflect_type="odd")
    closed = ndimage.grey_closing(padded, size=size)[pad:-pad, pad:-pad]
    opened = ndimage.grey_opening(padded, size=size)[pad:-pad, pad:-pad]
    residual = small - ndimage.gaussian_filter(small, sigma=max(size / 4, 5.0))  # polarity-neutral: ink is the sparse tail
    spread = max(float(residual.std()), 1e-6)
    dark_ink = float(np.mean(residual ** 3)) / spread ** 3 < LIGHT_INK_SKEW
    background = ndimage.uniform_filter(closed if dark_ink else opened, size=3)
    border = np.concatenate([small[:2].ravel(), small[-2:].ravel(), small[:, :2].ravel(), small[:, -2:].ravel()])
    # a dark frame (paper under DARKEST_PAPER with dark ink) is darkness, not a sheet: its noise is no faint ink
    even = float(np.ptp(border)) < EVEN_BORDER and not (dark_ink and float(np.median(border)) < DARKEST_PAPER)
    if even:  # an even sheet all round (a scan): its border is the paper, under soft, wide strokes too
        background = np.full_like(background, float(np.median(border)))
    elif float(np.ptp(background)) < UNIFORM_SPREAD:  # an even canvas: one level is exact, a map only adds error
        background = np.full_like(background, float(np.median(background)))
    full = Image.fromarray(background.astype(np.float32)).resize(gray.shape[::-1], Image.Resampling.BILINEAR)
    return np.asarray(full, dtype=np.float32), dark_ink, even


def ink_strength(gray: np.ndarray) -> tuple[np.ndarray, bool]:
    """Gray (H, W) -> how much each pixel departs from the local paper toward the ink (H, W), 0 = paper, and
    whether the paper is even (one level: a scan or a drawing app's canvas rather than a photo).

    Dark ink is measured as a fraction of the local paper brightness (light and paper multiply, so a stroke in a
    shadow keeps its contrast); light ink as a difference from the local background. Paper darker than
    DARKEST_PAPER counts as that bright, and ink on it can darken it only by what brightness it has: on a black
    frame with sensor noise, nothing is ink.
    """
    background, dark_ink, even = estimate_background(gray)
    if dark_ink:
        strength = 1.0 - gray / np.maximum(background, DARKEST_PAPER)
        strength = np.where(background < DARKEST_PAPER, (background - gray) / DARKEST_PAPER, strength)
        return np.clip(strength, 0.0, 1.0), even
    return np.clip(gray - background, 0.0, 1.0), even


def ink_threshold(strength: np.ndarray, even: bool = False) -> float:
    """Where ink begins: half the ink's peak strength (a stroke's edge, whatever the pen and the light), and at
    least NOISE_SIGMAS times the paper's noise (a robust spread of the whole image) above the paper.

    The least contrast a digit may have is MIN_CONTRAST on a photo, where shading the background map misses can
    reach it, and EVEN_MIN_CONTRAST on `even` paper, where nothing but noise can: a soft, faint scan is a digit.

    Otsu's threshold is the textbook choice, but on ruled or squared paper with a small digit the lines'
    pixels outnumber the ink's, and Otsu then splits the lines from the paper instead of the ink from both.
    """
    sample = strength[::4, ::4]
    noise = 1.4826 * float(np.median(np.abs(sample - np.median(sample))))
    least = EVEN_MIN_CONTRAST if even else MIN_CONTRAST
    floor = max(NOISE_SIGMAS * noise, least / 2)
    peak = float(strength.max())
    if peak < max(least, BLANK_FLOORS * floor):  # nothing stands out from the paper's texture and noise
        raise PreprocessError(NO_DIGIT)
    return max(0.5 * peak, floor)


def select_digit(mask: np.ndarray, strength: np.ndarray, faint: np.ndarray | None = None) -> np.ndarray:
    """The digit's pixels (H, W) bool: the heaviest connected component and the heavy ones near it, or joined to
    it by fainter ink (`faint`, bool (H, W), a superset of `mask`: a soft stroke dips under the threshold).

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
    frame = np.array(mask.shape)
    _drop_rulings(labels, starts, stops, mass)
    touches = (starts == 0).any(axis=1) | (stops == frame).any(axis=1)
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
    strength, even = ink_strength(gray)
    threshold = ink_threshold(strength, even)
    floor = (EVEN_FAINT_SHARE if even else FAINT_SHARE) * threshold
    # on an even sheet nothing but ink reaches the faint level: a soft digit's strokes that dip under the threshold
    # join it wherever they lead; on a photo shading can, so faint ink is followed only a little beyond the strokes
    digit = select_digit(strength > threshold, strength, strength > floor if even else None)
    rows, cols = np.flatnonzero(digit.any(axis=1)), np.flatnonzero(digit.any(axis=0))
    margin = EDGE_MARGIN + round((1.0 if even else FAINT_REACH) * max(rows[-1] - rows[0], cols[-1] - cols[0]))
    top, left = max(rows[0] - margin, 0), max(cols[0] - margin, 0)
    window = (slice(top, rows[-1] + margin + 1), slice(left, cols[-1] + margin + 1))
    strength, digit = strength[window], digit[window]
    peak = float(np.percentile(strength[digit], 90))
    ink = np.clip((strength - floor) / max(peak - floor, 1e-6), 0.0, 1.0)
    faint, _ = ndimage.label(ink > 0, structure=np.ones((3, 3)))  # hysteresis: faint ink joined to the strokes
    support = np.isin(faint, np.unique(faint[digit])) | ndimage.binary_dilation(digit, iterations=EDGE_MARGIN)
    return crop_to_ink(ink * support), even


def crop_to_ink(ink: np.ndarray) -> np.ndarray:
    """The smallest rectangle holding every nonzero pixel."""
    rows, cols = np.flatnonzero(ink.any(axis=1)), np.flatnonzero(ink.any(axis=0))
    if rows.size == 0:
        raise PreprocessError(NO_DIGIT)
    return ink[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]


def _resize(values: np.ndarray, longest: int) -> np.ndarray:
    """Resize (H, W) keeping the aspect ratio so the longest side is `longest`; area averaging when shrinking."""
    height, width = values.shape
    scale = longest / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    method = Image.Resampling.BOX if scale < 1 else Image.Resampling.BILINEAR
    return np.asarray(Image.fromarray(values.astype(np.float32)).resize(size, method), dtype=np.float32)


def stroke_width(mask: np.ndarray) -> float:
    """Mean stroke width in pixels of a binary image, from its distance transform: across a stroke of width w
    the distance to the paper runs 1, 2, ..., w/2, ..., 2, 1, whose mean is about (w + 2) / 4."""
    if not mask.any():
        return 0.0
    return 4.0 * float(ndimage.distance_transform_edt(mask)[mask].mean()) - 2.0


def normalise_strokes(ink: np.ndarray, thin: bool = True) -> np.ndarray:
    """Cropped ink -> ink at STROKE_SIZE; a stroke width outside MNIST's range (MIN_STROKE..MAX_STROKE) is moved
    to STROKE_TARGET by a grey dilation or erosion with a disc (a round pen); no erosion unless `thin`.

    A scan (an even sheet) is not thinned: its wide strokes are mostly soft edges, blur or a low resolution
    enlarged, which carry the shape, and an erosion eats their faint parts (an 8x8 scan's 3 read as a 2)."""
    work = _resize(ink, STROKE_SIZE)
    strong = np.percentile(work[work > 0.02], 90) if np.count_nonzero(work > 0.02) else work.max()
    work = np.clip(work / max(float(strong), 1e-6), 0.0, 1.0)  # a thin line shrunk from a big canvas is faint
    width = stroke_width(work > 0.5)
    if width < MIN_STROKE:
        work = disc_filter(work, STROKE_TARGET - width, largest=True)
    elif width > MAX_STROKE and thin:
        thinner = disc_filter(work, width - STROKE_TARGET, largest=False)
        if np.count_nonzero(thinner > 0.5) >= 0.3 * np.count_nonzero(work > 0.5):  # never erase a blob
            work = thinner
    return work


def disc_filter(values: np.ndarray, diameter: float, largest: bool) -> np.ndarray:
    """Grey dilation (`largest`) or erosion of (H, W) with a disc about `diameter` px wide, edges mirrored: each
    edge of a stroke moves by diameter / 2.

    The disc is taken a row of it at a time, each a running max or min along the rows (`ndimage`'s 1-D filters),
    so the work is (disc's height) x pixels, not (disc's area) x pixels; a disc wider than the image's diagonal
    takes in the whole image from every pixel, so its radius stops there (the same result). `ndimage.grey_erosion`
    with a disc footprint gives the same values, but took seconds and gigabytes for a wide disc, and read memory
    outside its buffer once the disc's radius passed four times the image's shorter side.
    """
    height, width = values.shape
    radius = min(max(1, round(diameter / 2)), math.ceil(math.hypot(height - 1, width - 1)) + 1)
    line_filter = ndimage.maximum_filter1d if largest else ndimage.minimum_filter1d
    padded = np.pad(values, ((radius, radius), (0, 0)), mode="symmetric")  # ndimage's "reflect" edges
    result = None
    for offset in range(-radius, radius + 1):  # the disc's row at this offset: |column| <= sqrt(r^2 + r - offset^2)
        half = math.isqrt(radius * radius + radius - offset * offset)
        line = line_filter(padded[radius + offset:radius + offset + height], size=2 * half + 1, axis=1, mode="reflect")
        result = line if result is None else (np.maximum if largest else np.minimum)(result, line)
    return result


def center_by_mass(digit: np.ndarray) -> np.ndarray:
    """Paste (h, w) with h, w <= 28 into 28x28 so its centre of mass lies at CENTRE (clamped to stay in frame)."""
    height, width = digit.shape
    total = float(digit.sum())
    row_mass = float(digit.sum(axis=1) @ np.arange(height)) / total
    col_mass = float(digit.sum(axis=0) @ np.arange(width)) / total
    top = min(max(round(CENTRE[0] - row_mass), 0), IMAGE_SIDE - height)
    left = min(max(round(CENTRE[1] - col_mass), 0), IMAGE_SIDE - width)
    canvas = np.zeros((IMAGE_SIDE, IMAGE_SIDE), dtype=np.float32)
    canvas[top:top + height, left:left + width] = digit
    return canvas


def ink_to_mnist(ink: np.ndarray, thin: bool = True) -> np.ndarray:
    """One digit's cropped ink (h, w) in [0, 1] -> MNIST-style (28, 28) uint8: strokes, 20-px box, centre of mass."""
    digit = _resize(normalise_strokes(crop_to_ink(ink), thin), DIGIT_BOX)  # (h, w), longest side 20, area-averaged
    digit = np.clip(digit / max(float(digit.max()), 1e-6), 0.0, 1.0)
    return np.round(center_by_mass(digit) * 255.0).astype(np.uint8)


def preprocess_image(image: Image.Image) -> np.ndarray:
    """A decoded image -> MNIST-style (28, 28) uint8, white digit on black; `PreprocessError` if there is no digit
    or its shape is refused (`data.decode.check_shape`)."""
    check_shape(*image.size)
    ink, even = isolate_ink(image_to_gray(image))
    return ink_to_mnist(ink, thin=not even)


def preprocess_plain(image: Image.Image, background: str = "dark") -> np.ndarray:
    """A decoded image -> (28, 28) uint8 as it is, for models not trained on handwritten digits: gray (alpha
    composited), padded to a square with its border's median level, resized (area-averaged when shrinking), and
    inverted when its border is on the other side of half-gray from the training images' `background`.
    A 28x28 image with a background like the training images' comes back pixel for pixel."""
    gray = image_to_gray(image)
    border = float(np.median(np.concatenate([gray[0], gray[-1], gray[:, 0], gray[:, -1]])))
    height, width = gray.shape
    if height != width:  # centred on a square of the border's level: the objects keep their aspect ratio
        side = max(height, width)
        square = np.full((side, side), border, dtype=np.float32)
        top, left = (side - height) // 2, (side - width) // 2
        square[top:top + height, left:left + width] = gray
        gray = square
    if gray.shape != (IMAGE_SIDE, IMAGE_SIDE):
        gray = _resize(gray, IMAGE_SIDE)
    if (border > 0.5) != (background == "light"):
        gray = 1.0 - gray
    return np.round(np.clip(gray, 0.0, 1.0) * 255.0).astype(np.uint8)


def preprocess_decoded(image: Image.Image, kind: str = "digits", background: str = "dark") -> np.ndarray:
    """A decoded image -> the (28, 28) uint8 input of a checkpoint whose training data is of `kind` ("digits":
    `preprocess_image`; "plain": `preprocess_plain`) and has a `background` ("dark" or "light")."""
    if kind == "plain":
        return preprocess_plain(image, background)
    digit = preprocess_image(image)
    return 255 - digit if background == "light" else digit


def preprocess(source: bytes | str | os.PathLike, max_pixels: int = MAX_FILE_PIXELS, kind: str = "digits",
               background: str = "dark") -> np.ndarray:
    """Image bytes or a file path -> a (28, 28) uint8 input: MNIST-style for `kind` "digits" (the default), as it is
    for "plain" (see `preprocess_decoded`). Raises `PreprocessError` with a one-line reason."""
    if isinstance(source, (bytes, bytearray)):
        return preprocess_decoded(decode_image(bytes(source), max_pixels), kind, background)
    try:
        return preprocess_decoded(decode_image(read_image_bytes(source), max_pixels), kind, background)
    except PreprocessError as error:
        raise PreprocessError(f"{source}: {error}") from None
