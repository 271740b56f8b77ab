"""Turn any reasonable image into an MNIST-style input: 28x28 uint8, white digit on black.

MNIST digits are white on black, scaled so the longest side of the ink fills a
20x20 box (with anti-aliasing), and pasted into 28x28 with their centre of mass
at the centre. A digit drawn on a large white canvas or photographed on paper
is none of these, and a model fed the raw pixels guesses. The steps here redo
the MNIST authors' normalisation on any image:

1. decode within a memory budget and flatten to gray in [0, 1] (`image_decode`);
2. polarity and background: the paper's brightness is estimated at every pixel (a
   grey closing wider than any stroke, on a small copy), so a sheet lit unevenly or
   half in shadow is still paper; the ink's strength is its departure from it (`paper`);
3. threshold at half the ink's peak, clear of the paper's noise; keep the heaviest
   connected component and those near it (a 5 or a 7 can be two strokes), dropping
   specks and lines that cross the image; keep the ink's gray levels around them (`ink`);
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
from mnistlab.data.registry import IMAGE_SIDE
from mnistlab.data.decode import MAX_FILE_PIXELS, check_shape, decode_image, image_to_gray, read_image_bytes
from mnistlab.vision.clutter import hole_sizes
from mnistlab.vision.ink import crop_to_ink, isolate_ink, stroke_width
from mnistlab.vision.paper import frame_band

STROKE_SIZE = 80  # px; the cropped ink is resampled to this longest side to measure and fix stroke width
MIN_STROKE, MAX_STROKE = 7.5, 14.5  # px at STROKE_SIZE; the middle 80% of MNIST test digits lie in this range
STROKE_TARGET = 10.0  # px at STROKE_SIZE; MNIST's median; strokes outside the range above are moved to it
LOOP_AREA = 16  # px at STROKE_SIZE; a hole in the ink this large is a loop of the digit, a smaller one a grain's pit
DIGIT_BOX = 20  # px; the longest side of the digit in an MNIST image
CENTRE = (14.0, 14.0)  # (row, column) where the centre of mass lands, as in MNIST (pixel-index coordinates)



def _resize(values: np.ndarray, longest: int) -> np.ndarray:
    """Resize (H, W) keeping the aspect ratio so the longest side is `longest`; area averaging when shrinking."""
    height, width = values.shape
    scale = longest / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    method = Image.Resampling.BOX if scale < 1 else Image.Resampling.BILINEAR
    return np.asarray(Image.fromarray(values.astype(np.float32)).resize(size, method), dtype=np.float32)


def normalise_strokes(ink: np.ndarray, thin: bool = True) -> np.ndarray:
    """Cropped ink -> ink at STROKE_SIZE; a stroke width outside MNIST's range (MIN_STROKE..MAX_STROKE) is moved
    to STROKE_TARGET by a grey dilation or erosion with a disc (a round pen); no erosion unless `thin`.

    A thin stroke round a loop, or one that widening to the median would close into a loop, is widened only to
    MIN_STROKE, the edge of MNIST's range: each pixel of widening narrows a loop from all sides and a gap from
    both, so a small loop all but closes (the small top of an 8 read as 0) and a narrow gap shuts (an open 4
    read as 9). A scan (an even sheet) is not thinned: its wide strokes are mostly soft edges, blur or a low
    resolution enlarged, which carry the shape, and an erosion eats their faint parts (an 8x8 scan's 3 read as
    a 2)."""
    work = _resize(ink, STROKE_SIZE)
    strong = np.percentile(work[work > 0.02], 90) if np.count_nonzero(work > 0.02) else work.max()
    work = np.clip(work / max(float(strong), 1e-6), 0.0, 1.0)  # a thin line shrunk from a big canvas is faint
    width = stroke_width(work > 0.5)
    if width < MIN_STROKE:
        wider = None if has_loop(work > 0.5) else disc_filter(work, STROKE_TARGET - width, largest=True)
        if wider is None or has_loop(wider > 0.5):  # a loop already, or one the widening would close
            wider = disc_filter(work, MIN_STROKE - width, largest=True)
        work = wider
    elif width > MAX_STROKE and thin:
        thinner = disc_filter(work, width - STROKE_TARGET, largest=False)
        if np.count_nonzero(thinner > 0.5) >= 0.3 * np.count_nonzero(work > 0.5):  # never erase a blob
            work = thinner
    return work


def has_loop(mask: np.ndarray) -> bool:
    """Whether the ink encloses a hole of LOOP_AREA pixels or more."""
    return bool(np.any(hole_sizes(mask) >= LOOP_AREA))


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
    border = float(np.median(frame_band(gray, 1)))
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
