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

from benchmarks.independent_photos import INDEX_HI, INDEX_LO, INKS, darkness, load_mnist_test, pick, render_digit
from mnistlab.common.errors import PreprocessError
from mnistlab.vision.loading import load_model
from mnistlab.vision.numbers import read_number

LENGTHS = (2, 3, 4, 5, 6)
PENS = {name: spec for name, spec in INKS.items() if name != "pencil"}  # pencil: a single digit's open problem


def write_number(rng: np.random.Generator, digits: list[np.ndarray]) -> bytes:
    """MNIST digits (28, 28) uint8 -> an encoded image of them written left to right with one pen."""
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
    paper = rng.uniform(0.9, 1.0)
    gray = paper * (1.0 - sheet * float(darkness(np.array(INKS[ink][0]) / 255.0, 1.0)))
    image = Image.fromarray(np.clip(gray * 255 + 0.5, 0, 255).astype(np.uint8), "L")
    buffer = io.BytesIO()
    if rng.random() < 0.5:
        image = image.filter(ImageFilter.GaussianBlur(rng.uniform(0.5, 1.5)))
        if rng.random() < 0.5:
            image.save(buffer, format="JPEG", quality=int(rng.integers(60, 91)))
            return buffer.getvalue()
    image.save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def score(checkpoint: Path, seed: int, per_length: int) -> dict:
    """{length: {"right": n, "wrong count": n, "numbers": n}} for `per_length` numbers of each length."""
    images, labels = load_mnist_test()
    loaded = load_model(checkpoint)
    results = {}
    for length in LENGTHS:
        rng = np.random.default_rng([seed, length])
        right = wrong_count = 0
        for _ in range(per_length):
            chosen = rng.choice(np.arange(INDEX_LO, INDEX_HI), size=length, replace=False)
            data = write_number(rng, [images[index] for index in chosen])
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
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args()
    results = score(args.checkpoint, args.seed, args.per_length)
    if args.json:
        print(json.dumps(results, indent=2))
        return
    for length, result in results.items():
        print(f"{length} digits: {result['right']} of {result['numbers']} read exactly, "
              f"{result['wrong count']} with the wrong count of digits")


if __name__ == "__main__":
    main()
