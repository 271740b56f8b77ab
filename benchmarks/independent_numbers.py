"""Numbers written with the independent generator's pens (issue 22): its digits, our layout, read by `read_number`.

`benchmarks.independent_photos` was written by someone who had not seen the
preprocessing; it redraws an MNIST digit as a pen stroke along its skeleton
(pressure, slant, shear, felt-tip, ballpoint or fine pen, `render_digit`). Here 2-6
such digits, one pen for the whole number, are written left to right on paper at
one height (each +-6%), baselines +-5% of it, gaps of -3% to 50% of it (touching
pairs included); half the sheets are scanned as they are, half blurred by the
scanner (0.5-1.5 px) and a quarter of those saved as JPEG (quality 60-90). Digits
5000-9999 only (the generator's rule); the segmentation was not tuned on these.

    python -m benchmarks.independent_numbers CHECKPOINT [--seed 2228] [--per-length 60] [--json]
    python -m benchmarks.independent_numbers CHECKPOINT --seed 2230 --on-photos 9107

`--on-photos` writes each number instead on a blank photo of the independent
generator (`make_image`: rulings, grids, the desk beyond the sheet, shadows,
uneven light, noise), its digits 6-14% of the photo's height, saved as a JPEG.

Prints, per number length, the numbers read exactly, and how many were read with
the wrong count of digits.
"""

from __future__ import annotations

import argparse
import io
import json
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter

from benchmarks.independent_photos import (INDEX_HI, INDEX_LO, INKS, darkness, load_mnist_test, make_image, pick,
                                          render_digit)
from mnistlab.common.errors import PreprocessError
from mnistlab.vision.loading import load_model
from mnistlab.vision.numbers import read_number

LENGTHS = (2, 3, 4, 5, 6)
PENS = {name: spec for name, spec in INKS.items() if name != "pencil"}  # pencil: a single digit's open problem


def write_number(rng: np.random.Generator, digits: list[np.ndarray]) -> bytes:
    """MNIST digits (28, 28) uint8 -> an encoded image of them written left to right with one pen."""
    sheet, darkest = number_ink(rng, digits)
    paper = rng.uniform(0.9, 1.0)
    gray = paper * (1.0 - sheet * darkest)
    return _encode(gray, rng)


def on_a_photo(rng: np.random.Generator, digits: list[np.ndarray], index: int, sheet_seed: int) -> bytes:
    """MNIST digits written with one pen (`number_ink`) on a blank photo of the independent generator
    (`make_image`, `blank=True`: rulings, grids, the desk beyond the sheet, shadows, uneven light, noise), the
    digits 6-14% of the photo's height, about its middle; saved as a JPEG (quality 80-95)."""
    ink, darkest = number_ink(rng, digits)
    photo, _, _, _, _ = make_image(np.random.default_rng([sheet_seed, index]), digits[0], 0, blank=True)
    gray = np.asarray(photo.convert("L"), dtype=np.float64) / 255
    rows = np.flatnonzero(ink.max(axis=1) > 0.05)
    scale = rng.uniform(0.06, 0.14) * gray.shape[0] / max(rows[-1] - rows[0] + 1, 1)
    ink = np.asarray(Image.fromarray(ink.astype(np.float32)).resize(
        (max(1, round(ink.shape[1] * scale)), max(1, round(ink.shape[0] * scale))), Image.Resampling.BILINEAR))
    ink = ink[:gray.shape[0], :gray.shape[1]]
    top = (gray.shape[0] - ink.shape[0]) // 2 + int(rng.uniform(-0.1, 0.1) * gray.shape[0])
    left = (gray.shape[1] - ink.shape[1]) // 2 + int(rng.uniform(-0.1, 0.1) * gray.shape[1])
    top, left = min(max(top, 0), gray.shape[0] - ink.shape[0]), min(max(left, 0), gray.shape[1] - ink.shape[1])
    region = gray[top:top + ink.shape[0], left:left + ink.shape[1]]
    region *= 1.0 - np.clip(ink, 0, 1) * darkest
    buffer = io.BytesIO()
    Image.fromarray(np.clip(gray * 255 + 0.5, 0, 255).astype(np.uint8), "L").save(
        buffer, format="JPEG", quality=int(rng.integers(80, 96)))
    return buffer.getvalue()


def number_ink(rng: np.random.Generator, digits: list[np.ndarray]) -> tuple[np.ndarray, float]:
    """MNIST digits (28, 28) uint8 -> their ink written left to right with one pen, (H, W) coverage in [0, 1]
    with margins around it, and how much the pen darkens the paper where it covers it."""
    ink = pick(rng, PENS)
    height = rng.uniform(40, 140)  # px; the digits' ink height
    width_frac, pressure = rng.uniform(*INKS[ink][2]), 0.0 if rng.random() < 0.3 else rng.uniform(0.1, 0.45)
    method = "skeleton" if rng.random() < 0.8 else "threshold"  # a pen along the skeleton, or the digit's own shape
    alphas = []
    for digit in digits:
        alpha, _ = render_digit(rng, digit, height * rng.uniform(0.94, 1.06), rng.uniform(-8, 8),
                                rng.uniform(-0.15, 0.15), rng.uniform(0.85, 1.15),
                                method, width_frac, pressure, ink)
        rows, cols = np.flatnonzero(alpha.max(axis=1) > 0.05), np.flatnonzero(alpha.max(axis=0) > 0.05)
        alphas.append(alpha[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1])
    gaps = [int(rng.uniform(-0.03, 0.5) * height) for _ in alphas[1:]] + [0]
    margin = int(height)
    sheet = np.zeros((int(3 * height) + 2 * margin, sum(a.shape[1] for a in alphas) + sum(gaps) + 2 * margin))
    left, baseline = margin, margin + int(1.5 * height)
    for alpha, gap in zip(alphas, gaps):
        bottom = baseline + int(rng.uniform(-0.05, 0.05) * height)
        region = sheet[bottom - alpha.shape[0]:bottom, left:left + alpha.shape[1]]
        np.maximum(region, alpha, out=region)
        left += alpha.shape[1] + gap
    return sheet, float(darkness(np.array(INKS[ink][0]) / 255.0, 1.0))


def _encode(gray: np.ndarray, rng: np.random.Generator) -> bytes:
    """A sheet's gray levels (H, W) in [0, 1] -> a PNG, half of them blurred by the scanner and a quarter of those
    a JPEG instead."""
    image = Image.fromarray(np.clip(gray * 255 + 0.5, 0, 255).astype(np.uint8), "L")
    buffer = io.BytesIO()
    if rng.random() < 0.5:
        image = image.filter(ImageFilter.GaussianBlur(rng.uniform(0.5, 1.5)))
        if rng.random() < 0.5:
            image.save(buffer, format="JPEG", quality=int(rng.integers(60, 91)))
            return buffer.getvalue()
    image.save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def score(checkpoint: Path, seed: int, per_length: int, sheet_seed: int | None = None) -> dict:
    """{length: {"right": n, "wrong count": n, "numbers": n}} for `per_length` numbers of each length; with
    `sheet_seed`, written on blank photos of that draw (`on_a_photo`) instead of scanned paper."""
    images, labels = load_mnist_test()
    loaded = load_model(checkpoint)
    results = {}
    for length in LENGTHS:
        rng = np.random.default_rng([seed, length])
        right = wrong_count = 0
        for number in range(per_length):
            chosen = rng.choice(np.arange(INDEX_LO, INDEX_HI), size=length, replace=False)
            digits = [images[index] for index in chosen]
            data = (write_number(rng, digits) if sheet_seed is None
                    else on_a_photo(rng, digits, length * per_length + number, sheet_seed))
            try:
                read = read_number(loaded, data)["number"]
            except PreprocessError:
                read = ""
            right += read == "".join(str(int(labels[index])) for index in chosen)
            wrong_count += len(read) != length
        results[length] = {"right": right, "wrong count": wrong_count, "numbers": per_length}
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("--seed", type=int, default=2228, help="the draw (default %(default)s)")
    parser.add_argument("--per-length", type=int, default=60, help="numbers of each length (default %(default)s)")
    parser.add_argument("--on-photos", type=int, metavar="SHEET_SEED",
                        help="write the numbers on blank photos of the independent generator, of this draw")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args()
    results = score(args.checkpoint, args.seed, args.per_length, args.on_photos)
    if args.json:
        print(json.dumps(results, indent=2))
        return
    for length, result in results.items():
        print(f"{length} digits: {result['right']} of {result['numbers']} read exactly, "
              f"{result['wrong count']} with the wrong count of digits")


if __name__ == "__main__":
    main()
