"""Clean scans (issue 22): soft, low-resolution, low-contrast handwriting reads at least as well as before the
photo work (the pipeline of commit 7b955ff, tests/old_pipeline.py), and blank scans stay "no digit found"."""

import sys

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFilter

from conftest import REPO_ROOT
from mnistlab.evaluation import scan_eval
from mnistlab.common.errors import PreprocessError
from mnistlab.vision.paper import ink_strength
from mnistlab.vision.preprocess import image_to_gray, preprocess
from serve_support import draw_seven, encode


def similarity(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.astype(np.float64).ravel(), b.astype(np.float64).ravel()
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


@pytest.mark.parametrize("ink", [150, 180])  # 41% and 29% darker than the paper: under the photo rule's 37.5%
@pytest.mark.parametrize("blur", [0, 6])
def test_faint_soft_scan_is_read_like_a_dark_one(ink, blur):
    reference = preprocess(encode(draw_seven()))
    scan = draw_seven(ink=ink).filter(ImageFilter.GaussianBlur(blur))
    assert similarity(preprocess(encode(scan)), reference) > 0.9


def soft_ring(side: int, width: int, margin: float = 0.1) -> Image.Image:
    """A 0 drawn with a `width`-px pen on a 280-px page, scanned at side x side pixels and enlarged again
    (bilinear) to about 300 px: its soft edges cover half the frame or more."""
    page = Image.new("L", (280, 280), 230)
    inset = round(280 * margin)
    ImageDraw.Draw(page).ellipse((inset + 30, inset, 280 - inset - 30, 280 - inset), outline=40, width=width)
    small = page.resize((side, side), Image.Resampling.BOX)
    return small.resize((side * (300 // side),) * 2, Image.Resampling.BILINEAR)


@pytest.mark.parametrize("side", [10, 12])
@pytest.mark.parametrize("width", [50, 60])
def test_a_soft_scan_that_fills_most_of_the_frame_is_read(side, width):
    """Ink over half the frame is not the paper's noise: the noise is measured on the border of an even sheet."""
    ink, _ = ink_strength(image_to_gray(soft_ring(side, width)))
    assert np.mean(ink > 0.05) >= 0.45
    digit = preprocess(encode(soft_ring(side, width))).astype(np.float64)
    assert digit[12:16, 12:16].mean() < 0.6 * digit.max()  # a ring, its hole kept


@pytest.mark.parametrize("paper", [255, 230, 200])
@pytest.mark.parametrize("noise", [0.0, 3.0])
def test_blank_scan_is_no_digit(paper, noise):
    gray = paper + np.random.default_rng(paper).normal(0, noise, (300, 400))
    with pytest.raises(PreprocessError, match="no digit found"):
        preprocess(encode(Image.fromarray(np.clip(gray, 0, 255).astype(np.uint8))))


def test_scan_set_is_seeded_and_its_parts_are_disjoint():
    digits, labels = np.random.default_rng(0).integers(0, 256, (10_000, 28, 28), dtype=np.uint8), np.zeros(10_000, int)
    first = [scan.data for scan in scan_eval.scan_set(digits, labels, "held-out", per_class=1)]
    assert first == [scan.data for scan in scan_eval.scan_set(digits, labels, "held-out", per_class=1)]
    (tuning, tuning_seed, _), (held_out, held_out_seed, _) = scan_eval.PARTS["tuning"], scan_eval.PARTS["held-out"]
    assert not set(tuning) & set(held_out) and tuning_seed != held_out_seed


@pytest.mark.slow
@pytest.mark.xfail(raises=AssertionError, strict=False,
                   reason="issue 22 is open: each class is within one image of the old pipeline, above or below by "
                          "chance; with a cnn trained on AVX2 kernels 8x8 and 28x28 read one under it "
                          "(docs/preprocessing.md)")
def test_clean_scans_read_at_least_as_well_as_the_old_pipeline(seed_protocol_run, real_data_dir):
    """The held-out scans (200 a class: 8x8, 12x12, 16x16, 28x28 enlarged, 300 dpi, the independent generator's
    pens on white), the seed-protocol cnn: on every class the current pipeline reads at least as many right as the
    pipeline of commit 7b955ff on the same images."""
    sys.path.insert(0, str(REPO_ROOT))
    try:
        from benchmarks.scan_accuracy import compare
    finally:
        sys.path.remove(str(REPO_ROOT))
    table = compare(seed_protocol_run / "cnn.pt", "held-out", data_dir=real_data_dir)
    print(f"\nheld-out scans (right, images) current vs old: {table}")
    assert set(table) == {*scan_eval.CLASSES, "pen-scan", "overall"}
    for name, row in table.items():
        assert row["new"][1] == 200 * (len(scan_eval.CLASSES) + 1) if name == "overall" else 200
        assert row["new"][0] >= row["old"][0], (name, table)
