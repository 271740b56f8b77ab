"""Read and decode an image a user sends, within a memory budget, and turn it into gray values in [0, 1].

Images come from users (files, uploads), so decoding is guarded: the file's size
is checked before reading, the decoded size (width x height x bytes per pixel,
bit depth counted) from the header before any pixel is decoded, and only the
Pillow decoders listed in DECODE_FORMATS run. PNG text chunks are dropped,
JPEGs decode reduced, EXIF rotation is applied, and palette, alpha and 16-bit
images are flattened to gray a strip at a time, area-averaged down to
WORK_LONGEST px, so the working copies stay bounded whatever the image.
`preprocess` takes it from there.

    >>> from mnistlab.data.decode import decode_image, image_to_gray
    >>> gray = image_to_gray(decode_image(open("my-digit.jpg", "rb").read()))   # (H, W) float32 in [0, 1]
"""

from __future__ import annotations

import io
import math
import os
import re
import stat
from pathlib import Path

import numpy as np
from PIL import ExifTags, Image, ImageMode, UnidentifiedImageError

from mnistlab.common.errors import PreprocessError

MAX_FILE_PIXELS = 40_000_000  # decoded pixels (width x height) allowed by default: a 40-megapixel photo
MAX_DECODE_BYTES = 320 * 1024 * 1024  # bytes a decoded image may take by default (mode and bit depth counted)
MAX_FILE_BYTES = 256 * 1024 * 1024  # bytes; larger files are refused before reading
STRIP_PIXELS = 1 << 18  # pixels converted at a time while a large image is shrunk: bounds the working copies
DECODE_FORMATS = ("PNG", "JPEG", "GIF", "BMP", "TIFF", "WEBP", "PPM")  # Pillow decoders we trust with user files
WORK_LONGEST = 1024  # px; larger images are area-averaged down to this before the float steps (speed, memory)
FILE_SIZE = "mnistlab_file_size"  # image.info key: (size in the file, size decoded) after a reduced JPEG decode
MAX_ASPECT = 50  # the longer side may be at most this many times the shorter: a digit needs room both ways


def read_image_bytes(path: str | os.PathLike) -> bytes:
    """The bytes of an image file; `PreprocessError` says what is wrong with the path and what to do."""
    path = Path(path)
    try:
        status = path.stat()
        if not stat.S_ISREG(status.st_mode):
            raise PreprocessError("not a file; pass an image file, a folder of images or a glob")
        if status.st_size > MAX_FILE_BYTES:
            raise PreprocessError(
                f"{status.st_size:,} bytes is over the {MAX_FILE_BYTES:,}-byte limit; scale the image down")
        return path.read_bytes()
    except (FileNotFoundError, NotADirectoryError):
        raise PreprocessError("no such file; check the path") from None
    except PermissionError:
        raise PreprocessError("permission denied; check the file's and its folders' permissions") from None
    except OSError as error:  # I/O errors, a file name too long, a dangling network mount...
        raise PreprocessError(f"cannot read ({error.strerror or type(error).__name__}); check the file") from None


def decode_image(
    data: bytes, max_pixels: int = MAX_FILE_PIXELS, formats: tuple[str, ...] = DECODE_FORMATS,
    max_bytes: int = MAX_DECODE_BYTES,
) -> Image.Image:
    """Decode image bytes within a budget checked from the header, before any pixel is decoded: `max_pixels`
    (width x height) and `max_bytes` (decoded size, see `decoded_bytes`). A large JPEG decodes at 1/2 to 1/8 scale;
    `file_size(image)` is the size in the file either way."""
    if not data:
        raise PreprocessError("empty (0 bytes); pass a PNG or JPEG image")
    try:
        image = Image.open(io.BytesIO(_png_pixels_only(data)), formats=list(formats))
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
    check_shape(width, height)
    if image.format == "JPEG" and max(width, height) > 2 * WORK_LONGEST:
        image.draft(image.mode, (WORK_LONGEST, WORK_LONGEST))  # JPEG can decode at 1/2, 1/4, 1/8 scale: less memory
        image.info[FILE_SIZE] = ((width, height), image.size)  # positions are given in the file's pixels
    cost = decoded_bytes(image)
    if cost > max_bytes:
        raise PreprocessError(
            f"image is {image.size[0]}x{image.size[1]} {image.mode} at {_sample_bits(image)} bits a sample = "
            f"{cost:,} bytes decoded, over the limit of {max_bytes:,}; scale it down or save it with 8-bit samples"
        )
    try:
        image.load()
    except Exception as error:  # Pillow reports truncation and corruption as OSError, SyntaxError, ValueError...
        raise PreprocessError(
            f"truncated or damaged {image.format} data ({type(error).__name__}: {str(error)[:80]}); re-save the image"
        ) from None
    return image


def file_size(image: Image.Image) -> tuple[int, int]:
    """(width, height) of the image in its file, before a reduced decode (`decode_image`) and EXIF rotation; the
    image's own size once it has been cropped or resized (Pillow copies `info` to the result)."""
    size_in_file, decoded = image.info.get(FILE_SIZE, (image.size, image.size))
    return size_in_file if decoded == image.size else image.size


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PNG_KEPT_CHUNKS = (b"IHDR", b"PLTE", b"tRNS", b"IDAT", b"IEND", b"eXIf")  # pixels, transparency, orientation


def _png_pixels_only(data: bytes) -> bytes:
    """A PNG without the chunks that do not change the pixels we read: a compressed text chunk can inflate to
    64 MiB in Pillow (its own cap), far over the pixels' budget. Anything else is returned unchanged."""
    if not data.startswith(PNG_SIGNATURE):
        return data
    kept, position = [PNG_SIGNATURE], len(PNG_SIGNATURE)
    while position + 12 <= len(data):
        length = int.from_bytes(data[position:position + 4], "big")
        end = position + 12 + length
        if data[position + 4:position + 8] in PNG_KEPT_CHUNKS or end > len(data):  # a cut-off chunk: Pillow reports it
            kept.append(data[position:end])
        position = end
    kept.append(data[position:])
    return b"".join(kept)


def check_shape(width: int, height: int) -> None:
    """`PreprocessError` for an empty image or one more than MAX_ASPECT times longer one way than the other (from the
    header: a 100000x1 PNG is 178 bytes, and no digit fits in it)."""
    if width == 0 or height == 0:
        raise PreprocessError(f"image is {width}x{height} pixels; nothing to classify")
    if max(width, height) > MAX_ASPECT * min(width, height):
        long_way = "wide as it is high" if width > height else "high as it is wide"
        raise PreprocessError(f"image is {width}x{height} pixels, over {MAX_ASPECT} times as {long_way}; "
                              "crop it around the digit")


def _sample_bits(image: Image.Image) -> int:
    """Bits per sample in the file (16 for a 16-bit PNG, which Pillow keeps in 8), from the decoder's raw mode."""
    args = image.tile[0][3] if image.tile else ""
    raw_mode = args if isinstance(args, str) else next((arg for arg in args if isinstance(arg, str)), "")
    found = re.search(r";(\d+)", raw_mode)  # "RGBA;16B", "I;16", "P;4"...
    return int(found.group(1)) if found else 8 * int(ImageMode.getmode(image.mode).typestr[-1])


def decoded_bytes(image: Image.Image) -> int:
    """Bytes the decoded pixels of an opened (not yet loaded) image take: width x height x the larger of Pillow's
    storage per pixel (4 for any multi-band or 32-bit mode) and the file's own sample size (a 16-bit RGBA PNG
    counts 8 bytes a pixel)."""
    descriptor = ImageMode.getmode(image.mode)
    item_bytes = int(descriptor.typestr[-1])
    stored = 4 if len(descriptor.bands) > 1 else item_bytes
    in_file = math.ceil(len(descriptor.bands) * _sample_bits(image) / 8)
    return image.size[0] * image.size[1] * max(stored, in_file)


def image_to_gray(image: Image.Image) -> np.ndarray:
    """Gray levels in [0, 1] (H, W) float32: EXIF rotation applied, palette, alpha and 16-bit handled; a large image
    is area-averaged down by an integer factor so its longest side is at most WORK_LONGEST (a sliver thinner than
    the factor only along its length).

    The image is read a strip of rows at a time (STRIP_PIXELS), so the float copies stay small whatever the size:
    the decoded image is the only full-size array. Alpha is flattened after averaging, which is exact because the
    flattening is linear in (luminance x alpha, alpha).
    """
    orientation = image.getexif().get(ExifTags.Base.Orientation, 1)  # phones store "rotate 90" in EXIF
    alpha = image.mode in ("LA", "La", "PA", "RGBa", "RGBA") or (image.mode == "P" and "transparency" in image.info)
    full_scale = _full_scale(image)
    width, height = image.size
    factors = _shrink_factors(height, width, WORK_LONGEST)  # (rows, columns) averaged into one pixel
    width, height = (width // factors[1]) * factors[1], (height // factors[0]) * factors[0]  # remainders dropped
    rows = factors[0] * max(1, STRIP_PIXELS // (width * factors[0]))
    grays, alphas, alpha_min, covered_sum, covered_count = [], [], 1.0, 0.0, 0
    for top in range(0, height, rows):
        strip = image.crop((0, top, width, min(height, top + rows)))
        if alpha:
            rgba = np.asarray(strip.convert("RGBA"), dtype=np.float32) / 255.0
            luminance, opacity = rgba[..., :3] @ np.array([0.299, 0.587, 0.114], dtype=np.float32), rgba[..., 3]
            covered = opacity > 0.5
            alpha_min = min(alpha_min, float(opacity.min()))
            covered_sum, covered_count = covered_sum + float(luminance[covered].sum()), covered_count + int(covered.sum())
            grays.append(_block_mean(luminance * opacity, factors))
            alphas.append(_block_mean(opacity, factors))
        elif image.mode.startswith("I") or image.mode == "F":
            grays.append(_block_mean(np.clip(np.asarray(strip, dtype=np.float32) / full_scale, 0.0, 1.0), factors))
        else:
            if strip.mode != "L":  # RGB, CMYK, YCbCr, 1-bit, palette...
                strip = strip.convert("RGB").convert("L")
            grays.append(_block_mean(np.asarray(strip, dtype=np.float32) / 255.0, factors))
    gray = np.concatenate(grays)
    if alpha and alpha_min < 1.0:  # opaque pixels are ink, laid on a background of the opposite brightness
        ink_is_dark = covered_count == 0 or covered_sum / covered_count < 0.5
        gray += (1.0 if ink_is_dark else 0.0) * (1.0 - np.concatenate(alphas))  # black ink must not vanish on black
    if orientation in EXIF_TRANSPOSE:
        gray = np.asarray(Image.fromarray(gray).transpose(EXIF_TRANSPOSE[orientation]), dtype=np.float32)
    return gray


EXIF_TRANSPOSE = {2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180, 4: Image.Transpose.FLIP_TOP_BOTTOM,
                  5: Image.Transpose.TRANSPOSE, 6: Image.Transpose.ROTATE_270, 7: Image.Transpose.TRANSVERSE,
                  8: Image.Transpose.ROTATE_90}  # EXIF orientation -> the transpose that displays the image upright


def _full_scale(image: Image.Image) -> float:
    """The value of white in a 16-bit, 32-bit or float image (from the whole image's extrema, without a copy)."""
    if not (image.mode.startswith("I") or image.mode == "F"):
        return 255.0
    peak = float(image.getextrema()[1])
    if image.mode.startswith("I;16") or peak > 255:
        return 65535.0
    return 1.0 if image.mode == "F" and peak <= 1 else 255.0


def _shrink_factors(height: int, width: int, longest: int) -> tuple[int, int]:
    """(rows, columns) to average into one pixel so the longest side is at most `longest`: the same integer factor
    both ways, or, for a side shorter than that factor (a sliver), the whole side: its length still shrinks."""
    factor = max(1, math.ceil(max(height, width) / longest))
    return min(factor, height), min(factor, width)


def _block_mean(values: np.ndarray, factors: tuple[int, int]) -> np.ndarray:
    """Average (H, W) over blocks of factors = (rows, columns); H and W are multiples of them."""
    if factors == (1, 1):
        return values
    (height, width), (rows, columns) = values.shape, factors
    return values.reshape(height // rows, rows, width // columns, columns).mean(axis=(1, 3), dtype=np.float32)


def shrink(values: np.ndarray, longest: int) -> np.ndarray:
    """Area-average (H, W) down by an integer factor so the longest side is at most `longest` (a sliver thinner
    than the factor: along its length only)."""
    rows, columns = _shrink_factors(*values.shape, longest)
    height, width = (values.shape[0] // rows) * rows, (values.shape[1] // columns) * columns
    return _block_mean(values[:height, :width], (rows, columns))
