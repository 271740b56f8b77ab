"""Pencil photos and blank sheets of the independent generator (issue 22) read through `mnistlab.vision.preprocess`
and a checkpoint: pencil photos read right, and blank sheets (rulings, desk edges, shadows, no ink) read as a digit.

    python -m benchmarks.pencil_accuracy CHECKPOINT --seed 9101 --count 300 --blank-seed 9102 --blank-count 1000

`--part held-out` (the default) draws MNIST test digits 5000-9999, `--part tuning` 0-4999; each photo `i` of a
seed is drawn from its own stream (seed, i), so a smaller count gives a prefix of a larger set. Generating takes
about half a second a photo on one core.
"""

from __future__ import annotations

import argparse
import io
import json
from pathlib import Path

import numpy as np

from benchmarks.independent_photos import make_image
from mnistlab.data.datasets import load_dataset
from mnistlab.evaluation.photo_eval import Photo, score_photos
from mnistlab.vision.loading import load_model
from mnistlab.vision.predict import predict_probabilities
from mnistlab.vision.preprocess import preprocess

PARTS = {"tuning": range(0, 5000), "held-out": range(5000, 10000)}


def draw(images, labels, part: str, seed: int, count: int, blank: bool = False):
    """`count` pencil photos (or blank sheets) of the generator, as Photos."""
    rng = np.random.default_rng(seed)
    for number, index in enumerate(rng.permutation(np.asarray(PARTS[part]))[:count]):
        image, suffix, quality, _, _ = make_image(np.random.default_rng([seed, number]), images[index],
                                                  int(labels[index]), ink=None if blank else "pencil", blank=blank)
        buffer = io.BytesIO()
        image.save(buffer, "JPEG" if suffix == "jpg" else "PNG", quality=quality)
        yield Photo("blank" if blank else "pencil", int(index), int(labels[index]), buffer.getvalue(), "." + suffix)


def measure(checkpoint: Path, part: str, seed: int, count: int, blank_seed: int, blank_count: int,
            data_dir=None) -> dict:
    """{"pencil": [right, photos, "no digit found"], "blank": [read as a digit, sheets]}."""
    dataset = load_dataset("mnist", data_dir, progress=False)
    images, labels = dataset.test_images, dataset.test_labels
    model = load_model(checkpoint).model
    classify = lambda batch: predict_probabilities(model, batch).argmax(axis=1)  # noqa: E731
    pencil = score_photos(draw(images, labels, part, seed, count), preprocess, classify).get("pencil", [])
    blank = score_photos(draw(images, labels, part, blank_seed, blank_count, blank=True), preprocess,
                         classify).get("blank", [])
    return {"pencil": [sum(label == predicted for _, label, predicted in pencil), len(pencil),
                       sum(predicted is None for _, _, predicted in pencil)],
            "blank": [sum(predicted is not None for _, _, predicted in blank), len(blank)]}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("--part", choices=list(PARTS), default="held-out")
    parser.add_argument("--seed", type=int, default=9101)
    parser.add_argument("--count", type=int, default=300)
    parser.add_argument("--blank-seed", type=int, default=9102)
    parser.add_argument("--blank-count", type=int, default=1000)
    parser.add_argument("--json", action="store_true", help="print one JSON line")
    args = parser.parse_args(argv)
    result = measure(args.checkpoint, args.part, args.seed, args.count, args.blank_seed, args.blank_count)
    if args.json:
        print(json.dumps(result))
        return
    (right, photos, none), (read, sheets) = result["pencil"], result["blank"]
    print(f"pencil {right}/{photos} = {100 * right / photos:.1f}% ({none} no digit found); "
          f"blank sheets read as a digit: {read}/{sheets}")


if __name__ == "__main__":
    main()
