"""Decoding within a memory budget: the decoded size counts mode and bit depth, and the gray conversion of a large
image needs no full-size float copy, yet gives what a full-resolution computation gives."""

import tracemalloc

import numpy as np
import pytest
from PIL import Image

from mnistlab.common.errors import PreprocessError
from mnistlab.data.decode import WORK_LONGEST, decode_image, decoded_bytes, image_to_gray
from serve_support import draw_seven, encode, png_of_zeros, with_text_chunks


@pytest.mark.parametrize("bit_depth, colour_type, bytes_per_pixel", [
    (8, 0, 1), (16, 0, 2), (8, 2, 4), (16, 2, 6), (8, 6, 4), (16, 6, 8),  # gray, RGB, RGBA at 8 and 16 bits
])
def test_decoded_size_counts_mode_and_bit_depth(bit_depth, colour_type, bytes_per_pixel):
    import io

    image = Image.open(io.BytesIO(png_of_zeros(64, 32, bit_depth, colour_type)))
    assert decoded_bytes(image) == 64 * 32 * bytes_per_pixel


def test_budget_is_checked_from_the_header():
    data = png_of_zeros(1000, 1000, 16, 6)  # 16-bit RGBA: 8,000,000 bytes decoded
    with pytest.raises(PreprocessError, match="1000x1000 RGBA at 16 bits a sample = 8,000,000 bytes decoded, "
                                              "over the limit of 7,999,999"):
        decode_image(data, max_bytes=7_999_999)
    assert decode_image(data, max_bytes=8_000_000).size == (1000, 1000)


def reference_gray(image: Image.Image) -> np.ndarray:
    """The whole image in float at once, then averaged over blocks: what the strip-wise conversion must equal."""
    factor = -(-max(image.size) // WORK_LONGEST)
    if image.mode == "RGBA":
        rgba = np.asarray(image, dtype=np.float64) / 255.0
        luminance, alpha = rgba[..., :3] @ [0.299, 0.587, 0.114], rgba[..., 3]
        ink_is_dark = luminance[alpha > 0.5].mean() < 0.5
        values = luminance * alpha + (1.0 if ink_is_dark else 0.0) * (1.0 - alpha)
    else:
        values = np.asarray(image.convert("L"), dtype=np.float64) / 255.0
    height, width = (values.shape[0] // factor) * factor, (values.shape[1] // factor) * factor
    return values[:height, :width].reshape(height // factor, factor, width // factor, factor).mean(axis=(1, 3))


def big_sevens() -> dict[str, Image.Image]:
    seven = draw_seven(size=(3001, 2402), box=(600, 400, 1800, 2000), width=90)
    strokes = np.asarray(seven) < 128
    black_on_clear = np.zeros(strokes.shape + (4,), dtype=np.uint8)
    black_on_clear[..., :3] = 255  # transparent white: flattening after averaging must still give black ink on white
    black_on_clear[strokes] = (0, 0, 0, 255)
    white_on_clear = np.zeros_like(black_on_clear)
    white_on_clear[strokes] = (255, 255, 255, 255)
    return {"gray": seven, "black-on-transparent": Image.fromarray(black_on_clear),
            "white-on-transparent": Image.fromarray(white_on_clear)}


@pytest.mark.parametrize("name", ["gray", "black-on-transparent", "white-on-transparent"])
def test_strip_wise_conversion_equals_full_resolution(name):
    image = big_sevens()[name]
    gray = image_to_gray(decode_image(encode(image)))
    expected = reference_gray(image)
    assert gray.shape == expected.shape == (800, 1000)
    assert np.abs(gray - expected).max() < 1e-5


def traced_peak(function, *args):
    """(result, the peak bytes Python objects and numpy arrays took during the call)."""
    tracemalloc.start()
    try:
        return function(*args), tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_gray_conversion_makes_no_full_size_copy():
    """A 4096x4096 RGBA image is 64 MiB in Pillow; in float32 it would be 256 MiB. The conversion's own arrays
    (numpy reports them to tracemalloc; Pillow's pixels are not counted) stay far below one full-size copy."""
    image = decode_image(png_of_zeros(4096, 4096, 8, 6, band=(1000, 3000)), max_pixels=4096 * 4096)
    gray, peak = traced_peak(image_to_gray, image)
    assert gray.shape == (1024, 1024) and gray.max() == 1.0
    assert peak < 48 * 1024 * 1024, f"{peak:,} bytes"  # the old conversion peaked over 500 MiB here


def test_png_text_chunks_are_not_inflated():
    """Text is no part of the digit: 40 zTXt chunks of 40 kB would inflate to 40 MB of Python strings."""
    image, peak = traced_peak(decode_image, with_text_chunks(encode(draw_seven()), 40))
    assert not any(key.startswith("note") for key in image.info)
    assert peak < 4 * 1024 * 1024, f"{peak:,} bytes"
    assert np.array_equal(image_to_gray(image), image_to_gray(decode_image(encode(draw_seven()))))
