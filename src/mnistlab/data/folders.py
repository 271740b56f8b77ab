"""A user's own MNIST-format data, given as a folder path instead of a registered name (`--dataset PATH`).

Two layouts are accepted:

1. IDX folder: the four files under their standard names, each optionally
   gzipped: `train-images-idx3-ubyte[.gz]`, `train-labels-idx1-ubyte[.gz]`,
   `t10k-images-idx3-ubyte[.gz]`, `t10k-labels-idx1-ubyte[.gz]`.
2. Image folder: `PATH/train/<label>/*.png` and `PATH/test/<label>/*.png`, one
   sub-folder per class with the same class folders in both splits. Images
   must be 28x28 (colour is converted to gray, 0-255; MNIST style is a light
   digit on a dark background). Class folders named 0-9 get those labels; other
   names are sorted and numbered from 0. At most 10 classes.

Both get the checks registered datasets get (IDX structure, 28x28 images,
label counts and range); there is no pinned checksum, so the run records the
SHA-256 of what was read. Errors are one line naming the file and the fix.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from mnistlab.data.datasets import (DATASETS, FILE_NAMES, IMAGE_SIDE, ROLES, Dataset, DatasetFile, DatasetSpec,
                               load_dataset, read_dataset_files)
from mnistlab.common.errors import DatasetError
from mnistlab.data.idx import encode_idx, payload_sha256

MAX_CLASSES = 10  # every registered model has 10 outputs
IMAGE_SUFFIXES = (".png",)
LAYOUTS = ("four IDX files (train-images-idx3-ubyte[.gz], train-labels-idx1-ubyte[.gz], t10k-images-idx3-ubyte[.gz], "
           "t10k-labels-idx1-ubyte[.gz]) or train/<label>/*.png and test/<label>/*.png")


def open_dataset(name: str, data_dir: str | os.PathLike | None = None, progress: bool = True) -> Dataset:
    """`--dataset`: a registered name (see `datasets.load_dataset`) or the path of a folder of the user's own data."""
    if name not in DATASETS and looks_like_path(name):
        return load_custom_dataset(name)
    return load_dataset(name, data_dir, progress=progress)


def looks_like_path(name: str) -> bool:
    """True when a `--dataset` value names a folder rather than a registered dataset."""
    return "/" in name or "\\" in name or name.startswith(".") or Path(name).is_dir()


def load_custom_dataset(path: str) -> Dataset:
    """Load a user's folder in either layout; raise `DatasetError` naming what is wrong and what to do."""
    root = Path(path).expanduser()
    if not root.is_dir():
        raise DatasetError(f"{root}: no such folder; --dataset takes a registered name or a folder holding {LAYOUTS}")
    if any((root / f"{name}{suffix}").is_file() for name in FILE_NAMES.values() for suffix in ("", ".gz")):
        return load_idx_folder(root)
    if (root / "train").is_dir() or (root / "test").is_dir():
        return load_image_folder(root)
    raise DatasetError(f"{root}: holds neither layout; put in it {LAYOUTS}")


def _spec(root: Path, class_names: tuple[str, ...]) -> DatasetSpec:
    files = {role: DatasetFile(FILE_NAMES[role], None) for role in ROLES}
    return DatasetSpec(str(root.resolve()), f"user data in {root}", (), files, class_names)


def load_idx_folder(root: Path) -> Dataset:
    """The four IDX files of `root`, checked like a registered dataset's."""
    spec = _spec(root, tuple(str(digit) for digit in range(MAX_CLASSES)))
    paths = {}
    for role in ROLES:
        name = FILE_NAMES[role]
        found = [root / f"{name}{suffix}" for suffix in (".gz", "") if (root / f"{name}{suffix}").is_file()]
        if not found:
            raise DatasetError(f"{root}: {name}[.gz] is missing; an IDX folder needs all four files: {LAYOUTS}")
        paths[role] = found[0]
    return read_dataset_files(spec, paths)


def load_image_folder(root: Path) -> Dataset:
    """`root/train/<label>/*.png` and `root/test/<label>/*.png` as a dataset."""
    folders = {}
    for split in ("train", "test"):
        if not (root / split).is_dir():
            raise DatasetError(f"{root / split}: missing; an image folder needs both train/<label>/ and test/<label>/")
        folders[split] = sorted(child.name for child in (root / split).iterdir() if child.is_dir())
        if not folders[split]:
            raise DatasetError(f"{root / split}: has no class sub-folders; put each class's images in {split}/<label>/")
    if folders["train"] != folders["test"]:
        raise DatasetError(
            f"{root}: train/ has classes {folders['train']} but test/ has {folders['test']}; use the same class folders"
        )
    names = folders["train"]
    if len(names) > MAX_CLASSES:
        raise DatasetError(f"{root}: {len(names)} class folders; the models classify at most {MAX_CLASSES}")
    digits = all(name.isdigit() and int(name) < MAX_CLASSES for name in names)
    labels_of = {name: int(name) for name in names} if digits else {name: index for index, name in enumerate(names)}
    class_names = (tuple(str(digit) for digit in range(max(labels_of.values()) + 1)) if digits else tuple(names))
    arrays, checksums, sources = {}, {}, {}
    for split in ("train", "test"):
        images, labels = _read_split(root / split, labels_of)
        arrays[f"{split}_images"], arrays[f"{split}_labels"] = images, labels
        for role, array in ((f"{split}_images", images), (f"{split}_labels", labels)):
            checksums[FILE_NAMES[role]] = payload_sha256(encode_idx(array))
            sources[FILE_NAMES[role]] = str(root / split)
    return Dataset(str(root.resolve()), class_names, checksums=checksums, sources=sources, **arrays)


def _read_split(folder: Path, labels_of: dict[str, int]) -> tuple[np.ndarray, np.ndarray]:
    images, labels = [], []
    for name, label in labels_of.items():
        files = sorted(path for path in (folder / name).iterdir() if path.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise DatasetError(f"{folder / name}: no .png images; put the class's 28x28 PNG files there")
        for path in files:
            images.append(_read_image(path))
            labels.append(label)
    return np.stack(images), np.asarray(labels, dtype=np.uint8)


def _read_image(path: Path) -> np.ndarray:
    try:
        with Image.open(path) as image:
            image.load()
            size = image.size
            pixels = np.asarray(image.convert("L"), dtype=np.uint8)
    except (OSError, UnidentifiedImageError) as error:
        raise DatasetError(f"{path}: not a readable image ({error}); replace or remove the file") from None
    if size != (IMAGE_SIDE, IMAGE_SIDE):
        raise DatasetError(
            f"{path}: image is {size[0]}x{size[1]}, MNIST format needs {IMAGE_SIDE}x{IMAGE_SIDE}; resize it first"
        )
    return pixels

