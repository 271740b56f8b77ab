"""The preprocessing pipeline before issue 13 (commit 7b955ff, src/mnistlab/preprocess.py), kept verbatim but for this
docstring: the floor the current pipeline is measured against on clean scans (tests/test_scans.py,
benchmarks/scan_accuracy.py). Not used by the package."""
from __future__ import annotations

import io
import math
import os
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from mnistlab.common.errors import PreprocessError

MAX_PIXELS = 40_000_000  # decoded pixels (width x height) allowed by default: a 40-megapixel photo
MAX_FILE_BYTES = 256 * 1024 * 1024  # bytes; larger files are refused before reading
DECODE_FORMATS = ("PNG", "JPEG", "GIF", "BMP", "TIFF", "WEBP", "PPM")  # Pillow decoders we trust with user files
WORK_LONGEST = 1024  # px; larger images are area-averaged down to this before the float steps (speed, memory)
STROKE_SIZE = 80  # px; the cropped ink is resampled to this longest side to measure and fix stroke width
MIN_STROKE, MAX_STROKE = 7.0, 14.0  # px at STROKE_SIZE; the middle 80% of MNIST test digits lie in this range
STROKE_TARGET = 10.0  # px at STROKE_SIZE; MNIST's median; strokes outside the range above are moved to it
MIN_CONTRAST = 0.08  # gray levels in [0, 1]; ink must differ from the background by this much
NOISE_LEVEL = 0.2  # fraction of the ink's peak; weaker values are background (paper texture, JPEG noise)
DIGIT_BOX = 20  # px; the longest side of the digit in an MNIST image
SIZE = 28  # px; MNIST images are SIZE x SIZE
CENTRE = (14.0, 14.0)  # (row, column) where the centre of mass lands, as in MNIST (pixel-index coordinates)

NO_DIGIT = "no digit found: the image is blank or has too little contrast; draw or photograph one digit, dark on light or light on dark"


def read_image_bytes(path: str | os.PathLike) -> bytes:
    """The bytes of an image file; `PreprocessError` says what is wrong with the path and what to do."""
    path = Path(path)
    if not path.exists():
        raise PreprocessError("no such file; check the path")
    if not path.is_file():
        raise PreprocessError("not a file; pass an image file, a folder of images or a glob")
    size = path.stat().st_size
    if size > MAX_FILE_BYTES:
        raise PreprocessError(f"{size:,} bytes is over the {MAX_FILE_BYTES:,}-byte limit; scale the image down")
    return path.read_bytes()


def decode_image(data: bytes, max_pixels: int = MAX_PIXELS, formats: tuple[str, ...] = DECODE_FORMATS) -> Image.Image:
    """Decode image bytes; the decoded size is checked against `max_pixels` from the header, before any pixel is decoded."""
    if not data:
        raise PreprocessError("empty (0 bytes); pass a PNG or JPEG image")
    try:
        image = Image.open(io.BytesIO(data), formats=list(formats))
    except Image.DecompressionBombError:  # Pillow's own cap, checked from the header
        limit = min(max_pixels, 2 * (Image.MAX_IMAGE_PIXELS or max_pixels))
        raise PreprocessError(f"image too large to decode: over the limit of {limit:,} pixels; scale it down") from None
    except UnidentifiedImageError:
        raise PreprocessError(f"not an image (readable formats: {', '.join(formats)})") from None
    except Exception as error:  # decoders raise many types (OSError, SyntaxError, struct.error) for a damaged header
        raise PreprocessError(f"damaged image header ({type(error).__name__}); re-save the image") from None
    width, height = image.size
    if width * height > max_pixels:
        raise PreprocessError(
            f"image is {width}x{height} = {width * height:,} pixels, over the limit of {max_pixels:,}; scale it down"
        )
    if width == 0 or height == 0:
        raise PreprocessError(f"image is {width}x{height} pixels; nothing to classify")
    if image.format == "JPEG" and max(width, height) > 2 * WORK_LONGEST:
        image.draft(image.mode, (WORK_LONGEST, WORK_LONGEST))  # JPEG can decode at 1/2, 1/4, 1/8 scale: faster
    try:
        image.load()
    except Exception as error:  # Pillow reports truncation and corruption as OSError, SyntaxError, ValueError...
        raise PreprocessError(
            f"truncated or damaged {image.format} data ({type(error).__name__}: {str(error)[:80]}); re-save the image"
        ) from None
    return image


def image_to_gray(image: Image.Image) -> np.ndarray:
    """Gray levels in [0, 1] (H, W) float32: EXIF rotation applied, palette, alpha and 16-bit handled."""
    image = ImageOps.exif_transpose(image)  # phones store "rotate 90" in EXIF instead of rotating pixels
    if image.mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    if image.mode in ("LA", "La", "PA", "RGBa", "RGBA"):
        gray = _flatten_alpha(np.asarray(image.convert("RGBA"), dtype=np.float32) / 255.0)
    elif image.mode.startswith("I") or image.mode == "F":
        values = np.asarray(image, dtype=np.float32)  # 16- or 32-bit integers, or floats
        peak = float(values.max(initial=0.0))
        if image.mode.startswith("I;16") or peak > 255:
            top = 65535.0
        else:
            top = 1.0 if image.mode == "F" and peak <= 1 else 255.0
        gray = np.clip(values / top, 0.0, 1.0)
    else:
        if image.mode != "L":  # RGB, CMYK, YCbCr, 1-bit...
            image = image.convert("RGB").convert("L")
        gray = np.asarray(image, dtype=np.float32) / 255.0
    return _shrink(gray, WORK_LONGEST)


def _flatten_alpha(rgba: np.ndarray) -> np.ndarray:
    """(H, W, 4) in [0, 1] -> gray (H, W): opaque pixels are ink, laid on a background of the opposite brightness."""
    alpha = rgba[..., 3]
    luminance = rgba[..., :3] @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    if alpha.min() >= 1.0:
        return luminance
    covered = alpha > 0.5
    ink_is_dark = not covered.any() or float(luminance[covered].mean()) < 0.5
    background = 1.0 if ink_is_dark else 0.0  # black strokes on a transparent canvas must not vanish on black
    return luminance * alpha + background * (1.0 - alpha)


def _shrink(values: np.ndarray, longest: int) -> np.ndarray:
    """Area-average (H, W) down by an integer factor so the longest side is at most `longest`."""
    factor = math.ceil(max(values.shape) / longest)
    if factor <= 1:
        return values
    height, width = (values.shape[0] // factor) * factor, (values.shape[1] // factor) * factor
    if height == 0 or width == 0:  # a sliver thinner than the factor: average it along the long side only
        return values
    blocks = values[:height, :width].reshape(height // factor, factor, width // factor, factor)
    return blocks.mean(axis=(1, 3), dtype=np.float32)


def isolate_ink(gray: np.ndarray) -> np.ndarray:
    """Gray (H, W) -> ink (H, W) in [0, 1], 0 = background: polarity fixed, background and faint noise removed."""
    frame = max(1, round(0.02 * min(gray.shape)))
    border = np.concatenate([gray[:frame].ravel(), gray[-frame:].ravel(), gray[:, :frame].ravel(), gray[:, -frame:].ravel()])
    background = float(np.median(border))
    darker, lighter = background - float(gray.min()), float(gray.max()) - background
    if max(darker, lighter) < MIN_CONTRAST:
        raise PreprocessError(NO_DIGIT)
    ink = (background - gray) / darker if darker > lighter else (gray - background) / lighter  # dark ink is inverted
    ink = np.clip((ink - NOISE_LEVEL) / (1.0 - NOISE_LEVEL), 0.0, 1.0)
    if np.count_nonzero(ink > 0.5) < 2:  # a lone speck of noise is not a digit
        raise PreprocessError(NO_DIGIT)
    return ink


def crop_to_ink(ink: np.ndarray) -> np.ndarray:
    """The smallest rectangle holding every nonzero pixel."""
    rows, cols = np.flatnonzero(ink.any(axis=1)), np.flatnonzero(ink.any(axis=0))
    return ink[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]


def _resize(values: np.ndarray, longest: int) -> np.ndarray:
    """Resize (H, W) keeping the aspect ratio so the longest side is `longest`; area averaging when shrinking."""
    height, width = values.shape
    scale = longest / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    method = Image.Resampling.BOX if scale < 1 else Image.Resampling.BILINEAR
    return np.asarray(Image.fromarray(values.astype(np.float32)).resize(size, method), dtype=np.float32)


def stroke_width(mask: np.ndarray) -> float:
    """Mean stroke width in pixels of a binary image: a stroke of width w and length L has area wL and edge ~2L."""
    padded = np.pad(mask, 1)
    interior = padded[1:-1, 1:-1] & padded[:-2, 1:-1] & padded[2:, 1:-1] & padded[1:-1, :-2] & padded[1:-1, 2:]
    area = int(mask.sum())
    edge = area - int(interior.sum())
    return 2.0 * area / max(edge, 1)


def _rank_filter(values: np.ndarray, size: int, reduce) -> np.ndarray:
    """Square max (dilation) or min (erosion) filter of odd `size`, done separably; outside the image is 0."""
    radius = size // 2
    for axis in (0, 1):
        pad = [(0, 0), (0, 0)]
        pad[axis] = (radius, radius)
        padded = np.pad(values, pad, mode="constant")
        length = values.shape[axis]
        values = reduce.reduce([np.take(padded, range(shift, shift + length), axis=axis) for shift in range(size)])
    return values


def normalise_strokes(ink: np.ndarray) -> np.ndarray:
    """Cropped ink -> ink at STROKE_SIZE; a stroke width outside MNIST's range (MIN_STROKE..MAX_STROKE) is moved
    to STROKE_TARGET by a square max (dilation) or min (erosion) filter."""
    work = _resize(ink, STROKE_SIZE)
    work = np.clip(work / max(float(work.max()), 1e-6), 0.0, 1.0)  # a thin line shrunk from a big canvas is faint
    width = stroke_width(work > 0.5)
    if width < MIN_STROKE:
        size = 2 * round((STROKE_TARGET - width) / 2) + 1
        work = _rank_filter(work, size, np.maximum)
    elif width > MAX_STROKE:
        size = 2 * round((width - STROKE_TARGET) / 2) + 1
        thinner = _rank_filter(work, size, np.minimum)
        if np.count_nonzero(thinner > 0.5) >= 0.3 * np.count_nonzero(work > 0.5):  # never erase a blob
            work = thinner
    return work


def center_by_mass(digit: np.ndarray) -> np.ndarray:
    """Paste (h, w) with h, w <= 28 into 28x28 so its centre of mass lies at CENTRE (clamped to stay in frame)."""
    height, width = digit.shape
    total = float(digit.sum())
    row_mass = float(digit.sum(axis=1) @ np.arange(height)) / total
    col_mass = float(digit.sum(axis=0) @ np.arange(width)) / total
    top = min(max(round(CENTRE[0] - row_mass), 0), SIZE - height)
    left = min(max(round(CENTRE[1] - col_mass), 0), SIZE - width)
    canvas = np.zeros((SIZE, SIZE), dtype=np.float32)
    canvas[top:top + height, left:left + width] = digit
    return canvas


def preprocess_image(image: Image.Image) -> np.ndarray:
    """A decoded image -> MNIST-style (28, 28) uint8, white digit on black; `PreprocessError` if there is no digit."""
    ink = crop_to_ink(isolate_ink(image_to_gray(image)))
    digit = _resize(normalise_strokes(ink), DIGIT_BOX)  # (h, w), longest side 20, area-averaged
    digit = np.clip(digit / max(float(digit.max()), 1e-6), 0.0, 1.0)
    return np.round(center_by_mass(digit) * 255.0).astype(np.uint8)


def preprocess(source: bytes | str | os.PathLike, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Image bytes or a file path -> MNIST-style (28, 28) uint8. Raises `PreprocessError` with a one-line reason."""
    if isinstance(source, (bytes, bytearray)):
        return preprocess_image(decode_image(bytes(source), max_pixels))
    try:
        return preprocess_image(decode_image(read_image_bytes(source), max_pixels))
    except PreprocessError as error:
        raise PreprocessError(f"{source}: {error}") from None
