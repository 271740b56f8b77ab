"""Preprocessing: any reasonable image -> MNIST-style 28x28, and the trained CNN reads digits drawn by users."""

import json

import numpy as np
import pytest
from PIL import Image

from conftest import ARTIFACTS
from mnistlab.errors import PreprocessError
from mnistlab.preprocess import decode_image, preprocess
from serve_support import draw_seven, encode, png_header_only, render_like_a_user


def mass_centre(image: np.ndarray) -> tuple[float, float]:
    weights = image.astype(np.float64)
    total = weights.sum()
    return (weights.sum(axis=1) @ np.arange(28)) / total, (weights.sum(axis=0) @ np.arange(28)) / total


def ink_box(image: np.ndarray, level: int = 40) -> tuple[int, int]:
    rows, cols = np.flatnonzero((image > level).any(axis=1)), np.flatnonzero((image > level).any(axis=0))
    return rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1


def similarity(a: np.ndarray, b: np.ndarray) -> float:
    """Cosine similarity of two 28x28 images: 1 = identical up to brightness."""
    a, b = a.astype(np.float64).ravel(), b.astype(np.float64).ravel()
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


@pytest.fixture(scope="module")
def reference_seven():
    """The 7 drawn dark on light on a big canvas, off-centre, as PNG -> its preprocessed image."""
    return preprocess(encode(draw_seven()))


def test_output_is_mnist_style(reference_seven):
    image = reference_seven
    assert image.shape == (28, 28) and image.dtype == np.uint8
    assert image.max() == 255 and image[0].max() == 0 and image[:, 0].max() == 0  # white digit on black
    assert max(ink_box(image)) in (19, 20, 21)  # longest side fitted to 20 px
    row, col = mass_centre(image)
    assert abs(row - 14) < 0.75 and abs(col - 14) < 0.75
    assert 0.05 < np.mean((image > 0) & (image < 255)) < 0.3  # anti-aliased edges, not a hard threshold


def test_polarity_is_detected(reference_seven):
    light_on_dark = preprocess(encode(draw_seven(ink=255, paper=0)))
    grey_paper = preprocess(encode(draw_seven(ink=40, paper=190)))
    assert similarity(light_on_dark, reference_seven) > 0.98
    assert similarity(grey_paper, reference_seven) > 0.98


def test_position_and_scale_do_not_matter(reference_seven):
    small_in_corner = draw_seven(size=(1200, 900), box=(850, 500, 1000, 700), width=8)
    assert similarity(preprocess(encode(small_in_corner)), reference_seven) > 0.95


def test_alpha_palette_and_16_bit_images(reference_seven):
    strokes = np.asarray(draw_seven()) < 128
    transparent = np.zeros(strokes.shape + (4,), dtype=np.uint8)
    transparent[strokes] = (0, 0, 0, 255)  # black ink on a transparent canvas, as a drawing app exports it
    white_ink = transparent.copy()
    white_ink[strokes] = (255, 255, 255, 255)
    sixteen_bit = Image.fromarray((np.asarray(draw_seven(), dtype=np.uint16) * 257).astype(np.uint16))
    assert sixteen_bit.mode.startswith("I")
    palette = draw_seven(mode="RGB", ink=(20, 20, 120), paper=(250, 240, 200)).convert("P", palette=Image.Palette.ADAPTIVE)
    for image in (Image.fromarray(transparent), Image.fromarray(white_ink), sixteen_bit, palette):
        assert similarity(preprocess(encode(image)), reference_seven) > 0.97, image.mode


def test_exif_rotation_is_applied(reference_seven):
    sideways = draw_seven().transpose(Image.Transpose.ROTATE_90)  # the camera held sideways...
    exif = Image.Exif()
    exif[0x0112] = 6  # ...records "rotate 90 degrees clockwise to display"
    upright = preprocess(encode(sideways.convert("RGB"), "JPEG", exif=exif.tobytes(), quality=92))
    ignored = preprocess(encode(sideways))
    assert similarity(upright, reference_seven) > 0.97
    assert similarity(ignored, reference_seven) < 0.8  # the test can fail: without EXIF the 7 lies sideways


def test_thin_strokes_are_thickened(reference_seven):
    hairline = draw_seven(size=(2000, 1600), box=(400, 300, 1200, 1400), width=2)
    image = preprocess(encode(hairline))
    assert image.max() == 255 and np.count_nonzero(image > 127) >= 40  # a 2-px line on 2000 px would vanish
    assert similarity(image, reference_seven) > 0.9


@pytest.mark.parametrize("blank", [
    Image.new("L", (400, 300), 255),
    Image.new("RGB", (400, 300), (128, 128, 128)),
    Image.new("RGBA", (280, 280), (0, 0, 0, 0)),  # an untouched transparent canvas
])
def test_blank_image_is_an_error(blank):
    for image_format in ("PNG", "JPEG") if blank.mode != "RGBA" else ("PNG",):
        with pytest.raises(PreprocessError, match="no digit found"):
            preprocess(encode(blank, image_format))


@pytest.mark.parametrize("data, message", [
    (b"", "empty"),
    (b"just some text, not a picture", "not an image"),
    (encode(draw_seven())[:2000], "truncated"),
    (png_header_only(20_000, 20_000), "too large"),  # refused from the header: decoding would find no pixels
])
def test_bad_bytes_are_errors(data, message):
    with pytest.raises(PreprocessError, match=message):
        preprocess(data)


def test_pixel_limit_is_checked_before_decoding():
    with pytest.raises(PreprocessError, match=r"3000x3000 = 9,000,000 pixels, over the limit of 1,000,000"):
        decode_image(png_header_only(3000, 3000), max_pixels=1_000_000)
    assert decode_image(encode(Image.new("L", (1000, 1000))), max_pixels=1_000_000).size == (1000, 1000)


def test_missing_file_names_the_path(tmp_path):
    with pytest.raises(PreprocessError, match=f"{tmp_path / 'nope.png'}: no such file"):
        preprocess(tmp_path / "nope.png")


@pytest.mark.slow
def test_cnn_reads_digits_drawn_by_users(seed_protocol_run, real_data_dir):
    """300 MNIST test digits rendered as users make them -> preprocess -> the seed-protocol CNN gets >= 97% right."""
    from mnistlab.datasets import load_dataset
    from mnistlab.predict import load_model, predict_probabilities

    dataset = load_dataset("mnist", real_data_dir, progress=False)
    cnn = load_model(seed_protocol_run / "cnn.pt")
    rng = np.random.default_rng(0)
    chosen = rng.choice(len(dataset.test_images), size=300, replace=False)
    renderings = [(stroke, image_format) for stroke in ("normal", "thick", "thin") for image_format in ("PNG", "JPEG")]
    images, kinds = [], []
    for number, index in enumerate(chosen):
        kind = renderings[number % len(renderings)]
        images.append(preprocess(render_like_a_user(dataset.test_images[index], rng, *kind)))
        kinds.append(kind)
    predicted = predict_probabilities(cnn.model, np.stack(images)).argmax(axis=1)
    correct = predicted == dataset.test_labels[chosen]
    by_kind = {f"{stroke}/{fmt}": float(np.mean([ok for ok, k in zip(correct, kinds) if k == (stroke, fmt)]))
               for stroke, fmt in renderings}
    ARTIFACTS.mkdir(exist_ok=True)
    summary = {"images": len(chosen), "accuracy": float(correct.mean()), "by_rendering": by_kind}
    (ARTIFACTS / "preprocess-accuracy.json").write_text(json.dumps(summary, indent=2))
    print(f"\nrendered-digit accuracy of the seed-protocol cnn: {summary}")
    assert correct.mean() >= 0.97, summary
