"""Preprocessing time per 1-megapixel photo on one core: the whole `preprocess` from file bytes, and its parts.

The photos are `mnistlab.evaluation.photo_eval` renderings of MNIST test digits under the
"combined" condition (uneven light, paper, camera and pen effects mixed), at
two frame sizes of about one megapixel: 1152x864 (a phone's 4:3, area-averaged
to half size before the float steps) and 1000x1000 (kept at full size: the
slowest case). Decoding and the conversion to gray are timed on their own, as
the reference the steps that find the digit are compared with.

    python -m benchmarks.preprocess_speed            # prints a table; --json for a machine-readable line

Run it with one thread per library (it sets OMP/OpenBLAS/MKL threads to 1 before importing numpy).
"""

from __future__ import annotations

import os

for _variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_variable] = "1"  # one core, as the target states; set before numpy is imported

import argparse  # noqa: E402
import json  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

from mnistlab.data.datasets import load_dataset  # noqa: E402
from mnistlab.common.errors import PreprocessError  # noqa: E402
from mnistlab.evaluation.photo_eval import render_photo  # noqa: E402
from mnistlab.data.decode import decode_image, image_to_gray  # noqa: E402
from mnistlab.vision.preprocess import preprocess, preprocess_image  # noqa: E402

FRAMES = ((1152, 864), (1000, 1000))  # (width, height) px, each about one megapixel
TARGET_MS = 50.0  # issue 13: at most this per 1-megapixel photo on one core


def best_ms(call, argument, repeats: int) -> float:
    """The fastest of `repeats` calls, in milliseconds (the least disturbed by other work on the machine)."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call(argument)
        times.append(time.perf_counter() - start)
    return 1000 * min(times)


def measure(photos: list[bytes], repeats: int) -> dict:
    """Median over `photos` of each one's best time: whole preprocess, decode + gray, and the steps after."""
    def decode_to_gray(data: bytes):
        return image_to_gray(decode_image(data))

    def whole(data: bytes):
        try:
            return preprocess(data)
        except PreprocessError:  # "no digit found" costs the same work; time it too
            return None

    total = [best_ms(whole, data, repeats) for data in photos]
    decode = [best_ms(decode_to_gray, data, repeats) for data in photos]
    return {"photos": len(photos), "whole_ms": float(np.median(total)), "whole_p90_ms": float(np.percentile(total, 90)),
            "decode_gray_ms": float(np.median(decode)),
            "digit_steps_ms": float(np.median(np.subtract(total, decode)))}


def main(argv: list[str] | None = None) -> int:
    """Render the photos, time them, print one row per frame size."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--photos", type=int, default=40, help="photos per frame size (default: %(default)s)")
    parser.add_argument("--repeats", type=int, default=3, help="timed calls per photo; the best counts (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="seed for the photos (default: %(default)s)")
    parser.add_argument("--json", action="store_true", help="print one JSON line instead of a table")
    args = parser.parse_args(argv)
    dataset = load_dataset("mnist", progress=False)
    rng = np.random.default_rng(args.seed)
    results = {}
    for frame in FRAMES:
        indices = rng.choice(len(dataset.test_images), size=args.photos, replace=False)
        photos = [render_photo(dataset.test_images[index], "combined", rng, frame)[0] for index in indices]
        preprocess_image(decode_image(photos[0]))  # warm-up: imports, first-call allocations
        results[f"{frame[0]}x{frame[1]}"] = measure(photos, args.repeats)
    if args.json:
        print(json.dumps({"target_ms": TARGET_MS, "seed": args.seed, "frames": results}))
        return 0
    print(f"preprocessing per ~1-megapixel photo, one core (median of {args.photos} photos, best of {args.repeats} each)")
    print(f"{'frame':>10} {'whole (ms)':>11} {'p90 (ms)':>9} {'decode+gray (ms)':>17} {'digit steps (ms)':>17} {'target (ms)':>12}")
    for frame, row in results.items():
        print(f"{frame:>10} {row['whole_ms']:11.1f} {row['whole_p90_ms']:9.1f} {row['decode_gray_ms']:17.1f} "
              f"{row['digit_steps_ms']:17.1f} {TARGET_MS:12.0f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
