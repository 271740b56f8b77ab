"""Score a folder of labelled photos through `mnistlab.vision.preprocess` and a checkpoint: overall and per tag.

The folder holds the images and a labels.csv with columns file, label and
conditions (`key=value` pairs joined by ";"), as `benchmarks.independent_photos`
writes it. A "no digit found" counts as an error.

    python -m benchmarks.photo_accuracy runs/<run>/cnn.pt photos-2027 [--json]
"""

from __future__ import annotations

import argparse
import csv
import json
from collections import defaultdict
from pathlib import Path

from mnistlab.evaluation.photo_eval import Photo, score_photos
from mnistlab.vision.loading import load_model
from mnistlab.vision.predict import predict_probabilities
from mnistlab.vision.preprocess import preprocess

# The tags reported on their own: (name, function of a photo's conditions -> group)
GROUPS = {
    "ink": lambda tags: "pencil" if tags.get("ink") == "pencil" else "pen",
    "desk in the frame": lambda tags: tags.get("table", "none").split(":")[0],
    "pen, no desk": lambda tags: str(tags.get("ink") != "pencil" and tags.get("table", "none") == "none"),
    "profile": lambda tags: tags.get("profile", "-"),
}


def score_folder(checkpoint: Path, folder: Path) -> dict:
    """{"overall": [right, images], "no digit found": n, group: {value: [right, images]}}."""
    rows = list(csv.DictReader(open(folder / "labels.csv", encoding="utf-8")))
    photos = (Photo("all", int(row["mnist_index"]), int(row["label"]), (folder / row["file"]).read_bytes(),
                    Path(row["file"]).suffix) for row in rows)
    model = load_model(checkpoint).model
    scored = score_photos(photos, preprocess, lambda images: predict_probabilities(model, images).argmax(axis=1))
    scored = scored.get("all", [])  # in the order of labels.csv: (index, label, predicted or None)
    summary: dict = {"overall": [0, 0], "no digit found": sum(predicted is None for _, _, predicted in scored)}
    for row, (_, label, predicted) in zip(rows, scored):
        right = int(predicted == label)
        tags = dict(pair.split("=", 1) for pair in row["conditions"].split(";") if "=" in pair)
        summary["overall"][0] += right
        summary["overall"][1] += 1
        for group, key in GROUPS.items():
            counts = summary.setdefault(group, {}).setdefault(key(tags), [0, 0])
            counts[0] += right
            counts[1] += 1
    return summary


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("folder", type=Path)
    parser.add_argument("--json", action="store_true", help="print one JSON line")
    args = parser.parse_args(argv)
    summary = score_folder(args.checkpoint, args.folder)
    if args.json:
        print(json.dumps(summary))
        return
    right, images = summary["overall"]
    print(f"overall {right}/{images} = {100 * right / images:.1f}%; no digit found: {summary['no digit found']}")
    for group in GROUPS:
        for value, (right, images) in sorted(summary[group].items()):
            print(f"  {group}: {value:10s} {right}/{images} = {100 * right / images:.1f}%")


if __name__ == "__main__":
    main()
