"""Clean scans (mnistlab.scan_eval, and the independent generator's pens with no photo effects) read through the
current pipeline and the one before issue 13 (commit 7b955ff, tests/old_pipeline.py), with one checkpoint.

    python -m benchmarks.scan_accuracy CHECKPOINT [--part tuning|held-out] [--per-class N] [--json]

Prints, per class, the images read right by each pipeline; the old pipeline is the floor on every class.
"""

from __future__ import annotations

import argparse
import importlib.util
import io
import json
from pathlib import Path

import numpy as np

from mnistlab.evaluation import scan_eval
from mnistlab.data.datasets import load_dataset
from mnistlab.evaluation.photo_eval import Photo, accuracy_table, score_photos
from mnistlab.vision.loading import load_model
from mnistlab.vision.predict import predict_probabilities
from mnistlab.vision.preprocess import preprocess

PEN_SCAN_SEEDS = {"tuning": (range(0, 5000), 23), "held-out": (range(5000, 10000), 2223)}


def old_preprocess():
    """The pipeline of commit 7b955ff, loaded from tests/old_pipeline.py."""
    path = Path(__file__).resolve().parents[1] / "tests" / "old_pipeline.py"
    spec = importlib.util.spec_from_file_location("old_pipeline", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.preprocess


def pen_scans(images, labels, part: str, count: int):
    """The independent generator's pens (not pencil) on white paper, no photo effects: `count` Photos."""
    from benchmarks.independent_photos import make_scan

    indices, seed = PEN_SCAN_SEEDS[part]
    rng = np.random.default_rng(seed)
    for index in rng.choice(np.asarray(indices), size=count, replace=False):
        buffer = io.BytesIO()
        make_scan(rng, images[index]).save(buffer, format="PNG", compress_level=1)
        yield Photo("pen-scan", int(index), int(labels[index]), buffer.getvalue(), ".png")


def scan_photos(images, labels, part: str, per_class: int | None = None) -> list[Photo]:
    """Every clean-scan class of `part`: scan_eval's classes and the independent pens."""
    count = per_class or scan_eval.PARTS[part][2]
    return list(scan_eval.scan_set(images, labels, part, count)) + list(pen_scans(images, labels, part, count))


def compare(checkpoint: Path, part: str, per_class: int | None = None, data_dir=None) -> dict:
    """{class: {"new": [right, images], "old": [right, images]}} plus "overall"."""
    dataset = load_dataset("mnist", data_dir, progress=False)
    model = load_model(checkpoint).model
    photos = scan_photos(dataset.test_images, dataset.test_labels, part, per_class)
    classify = lambda batch: predict_probabilities(model, batch).argmax(axis=1)  # noqa: E731
    new = accuracy_table(score_photos(iter(photos), preprocess, classify))
    old = accuracy_table(score_photos(iter(photos), old_preprocess(), classify))
    return {name: {"new": list(new[name]), "old": list(old[name])} for name in new}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("--part", choices=list(scan_eval.PARTS), default="tuning")
    parser.add_argument("--per-class", type=int, default=None, help="default: the part's count")
    parser.add_argument("--json", action="store_true", help="print one JSON line")
    args = parser.parse_args(argv)
    table = compare(args.checkpoint, args.part, args.per_class)
    if args.json:
        print(json.dumps(table))
        return
    for name, row in table.items():
        (right, images), (old_right, _) = row["new"], row["old"]
        print(f"{name:9s} new {right}/{images} = {100 * right / images:5.1f}%   old {old_right}/{images} = "
              f"{100 * old_right / images:5.1f}%")


if __name__ == "__main__":
    main()
