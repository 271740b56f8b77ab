"""A user's own MNIST-format data, given as a folder path instead of a registered name (`--dataset PATH`).

Two layouts are accepted:

1. IDX folder: the four files under their standard names, each optionally
   gzipped: `train-images-idx3-ubyte[.gz]`, `train-labels-idx1-ubyte[.gz]`,
   `t10k-images-idx3-ubyte[.gz]`, `t10k-labels-idx1-ubyte[.gz]`. Its classes
   are the labels 0 to the largest one found, named by number.
2. Image folder: `PATH/train/<class>/*.png` and `PATH/test/<class>/*.png`, one
   sub-folder per class with the same class folders in both splits. The folder
   names are the class names (`cat/`, `dog/`, `bird/`): numbers are sorted as
   numbers (`3/`, `5/`, `7/` are classes "3", "5", "7", labels 0-2), other names
   alphabetically. Hidden folders and files (`.ipynb_checkpoints`, `._x.png`)
   are skipped; names that are the same class once normalised (`7` and `07`,
   `cat` and `Cat `) and names made of non-ASCII digits (`²`) are errors.
   Images must be 28x28; colour becomes gray (0-255) and transparency is
   composited as `predict` does (`image_decode.image_to_gray`), so ink drawn
   only in the alpha channel is kept.

From 2 to 256 classes (labels are stored as uint8, as in IDX files). Folders
labelled 0-9 only (image folders named by digit, IDX folders whose labels stop
at 9) are taken as handwritten digits: `predict` and `serve` read photos for
their checkpoints with the digit preprocessing; any other classes get a plain
resize (see `preprocess.preprocess_plain`). Both layouts get the checks
registered datasets get (IDX structure, 28x28 images, label counts and range);
there is no pinned checksum, so the run records the SHA-256 of what was read.
Errors are one line naming the file and the fix.
"""

from __future__ import annotations

import math
import os
import unicodedata
from pathlib import Path

import numpy as np

from mnistlab.data.datasets import Dataset, load_dataset, read_dataset_files
from mnistlab.data.registry import DATASETS, FILE_NAMES, IMAGE_SIDE, MAX_CLASSES, ROLES, DatasetFile, DatasetSpec
from mnistlab.common.errors import ConfigError, DatasetError, PreprocessError
from mnistlab.data.idx import encode_idx, payload_sha256
from mnistlab.data.decode import decode_image, image_to_gray, read_image_bytes

MIN_CLASSES = 2  # a classifier needs two classes at least
DIGITS = 10  # classes labelled 0-9 at most: handwritten digits, read by predict with the digit preprocessing
MAX_NAME_LENGTH = 100  # characters in a class name (checkpoints accept no longer ones)
DECODE_PIXELS = 64 * IMAGE_SIDE * IMAGE_SIDE  # pixels an image in a dataset may declare before it is refused unread
DATASET_SUFFIXES = (".png",)  # image files of a dataset folder: lossless, as MNIST is
LAYOUTS = ("four IDX files (train-images-idx3-ubyte[.gz], train-labels-idx1-ubyte[.gz], t10k-images-idx3-ubyte[.gz], "
           "t10k-labels-idx1-ubyte[.gz]) or train/<class>/*.png and test/<class>/*.png")


def open_dataset(name: str, data_dir: str | os.PathLike | None = None, progress: bool = True) -> Dataset:
    """`--dataset`: a registered name (see `datasets.load_dataset`) or the path of a folder of the user's own data."""
    if name not in DATASETS and looks_like_path(name):
        return load_custom_dataset(name)
    return load_dataset(name, data_dir, progress=progress)


def open_recorded_dataset(record: dict, owner: str | os.PathLike, data_dir: str | os.PathLike | None = None,
                          progress: bool = True) -> Dataset:
    """The dataset a finished run recorded (its `metrics.json` "dataset": name and checksums), opened and checked
    to be that very copy; `ConfigError` naming the run (`owner`) when the copy found now differs."""
    dataset = open_dataset(record["name"], data_dir, progress=progress)
    if dataset.checksums != record["checksums"]:
        raise ConfigError(f"{owner}: its dataset {record['name']!r} differs from the copy found now (checksums); "
                          f"pass --data-dir with the copy the run used")
    return dataset


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
    """The four IDX files of `root`, checked like a registered dataset's; classes 0 to the largest label."""
    spec = _spec(root, tuple(str(label) for label in range(MAX_CLASSES)))
    paths = {}
    for role in ROLES:
        name = FILE_NAMES[role]
        found = [root / f"{name}{suffix}" for suffix in (".gz", "") if (root / f"{name}{suffix}").is_file()]
        if not found:
            raise DatasetError(f"{root}: {name}[.gz] is missing; an IDX folder needs all four files: {LAYOUTS}")
        paths[role] = found[0]
    dataset = read_dataset_files(spec, paths)
    count = 1 + max(int(labels.max(initial=0)) for labels in (dataset.train_labels, dataset.test_labels))
    if count < MIN_CLASSES:
        raise DatasetError(f"{paths['train_labels']}: every label is 0; a classifier needs at least {MIN_CLASSES} "
                           f"classes")
    dataset.class_names = tuple(str(label) for label in range(count))
    dataset.preprocess = "digits" if count <= DIGITS else "plain"
    dataset.background = background_of(dataset.train_images)
    return dataset


def load_image_folder(root: Path) -> Dataset:
    """`root/train/<class>/*.png` and `root/test/<class>/*.png` as a dataset."""
    folders = {}
    for split in ("train", "test"):
        if not (root / split).is_dir():
            raise DatasetError(f"{root / split}: missing; an image folder needs both train/<class>/ and test/<class>/")
        folders[split] = class_folders(root / split)
        if not folders[split]:
            raise DatasetError(f"{root / split}: has no class sub-folders; put each class's images in {split}/<class>/")
    if sorted(folders["train"]) != sorted(folders["test"]):
        train, test = sorted(folders["train"].values()), sorted(folders["test"].values())
        raise DatasetError(f"{root}: train/ has classes {train} but test/ has {test}; use the same class folders")
    keys = sorted(folders["train"])  # (number, "") for numeric names, sorted as numbers first; (inf, name) otherwise
    if len(keys) < MIN_CLASSES:
        raise DatasetError(f"{root / 'train'}: one class folder ({folders['train'][keys[0]]}); a classifier needs "
                           f"at least {MIN_CLASSES}, one sub-folder per class")
    if len(keys) > MAX_CLASSES:
        raise DatasetError(f"{root / 'train'}: {len(keys)} class folders; the models classify at most {MAX_CLASSES}")
    numeric = all(number < math.inf for number, _ in keys)
    class_names = tuple(str(number) if numeric else clean_name(folders["train"][(number, name)])
                        for number, name in keys)
    arrays, checksums, sources = {}, {}, {}
    for split in ("train", "test"):
        images, labels = _read_split(root / split, [folders[split][key] for key in keys])
        arrays[f"{split}_images"], arrays[f"{split}_labels"] = images, labels
        for role, array in ((f"{split}_images", images), (f"{split}_labels", labels)):
            checksums[FILE_NAMES[role]] = payload_sha256(encode_idx(array))
            sources[FILE_NAMES[role]] = str(root / split)
    return Dataset(str(root.resolve()), class_names, checksums=checksums, sources=sources,
                   preprocess="digits" if numeric and keys[-1][0] < DIGITS else "plain",
                   background=background_of(arrays["train_images"]), **arrays)


def clean_name(name: str) -> str:
    """A folder name as a class name: Unicode NFC (one form for "é"), surrounding spaces dropped."""
    return unicodedata.normalize("NFC", name).strip()


def class_folders(split_dir: Path) -> dict[tuple[float, str], str]:
    """The class sub-folders of `split_dir` (hidden ones skipped) by sort key: (number, "") for a name of ASCII
    digits, (inf, casefolded name) otherwise; `DatasetError` for a name that is blank, too long, of non-ASCII
    digits, or the same class as another once normalised."""
    found: dict[tuple[float, str], str] = {}
    for child in sorted(split_dir.iterdir()):
        if child.name.startswith(".") or not child.is_dir():
            continue
        name = clean_name(child.name)
        if not name or len(name) > MAX_NAME_LENGTH:
            raise DatasetError(f"{child}: a class folder needs a name of 1 to {MAX_NAME_LENGTH} characters; rename it")
        if name.isdigit() and not name.isascii():
            raise DatasetError(f"{child}: class folder name {name!r} is made of non-ASCII digits; rename it with "
                               f"0-9 or a word")
        key = (int(name), "") if name.isdigit() else (math.inf, name.casefold())
        if key in found:
            raise DatasetError(f"{split_dir}: folders {found[key]!r} and {child.name!r} name the same class once "
                               f"normalised; merge them into one folder or rename one")
        found[key] = child.name
    return found


def background_of(images: np.ndarray) -> str:
    """"light" when the median of the images' border pixels is over half way to white, else "dark"."""
    if len(images) == 0:
        return "dark"
    border = np.concatenate([images[:, 0, :], images[:, -1, :], images[:, :, 0], images[:, :, -1]], axis=1)
    return "light" if float(np.median(border)) > 127.5 else "dark"


def _read_split(folder: Path, names: list[str]) -> tuple[np.ndarray, np.ndarray]:
    images, labels = [], []
    for label, name in enumerate(names):
        files = sorted(path for path in (folder / name).iterdir()
                       if path.suffix.lower() in DATASET_SUFFIXES and not path.name.startswith("."))
        if not files:
            raise DatasetError(f"{folder / name}: no .png images; put the class's 28x28 PNG files there")
        for path in files:
            images.append(_read_image(path))
            labels.append(label)
    return np.stack(images), np.asarray(labels, dtype=np.uint8)


def _read_image(path: Path) -> np.ndarray:
    """A 28x28 PNG as uint8 gray, decoded within a small budget (a decompression bomb is refused from its header)
    and flattened as `predict` flattens images (alpha composited, 16-bit scaled)."""
    try:
        image = decode_image(read_image_bytes(path), max_pixels=DECODE_PIXELS)
        size = image.size
        gray = image_to_gray(image) if size == (IMAGE_SIDE, IMAGE_SIDE) else None
    except PreprocessError as error:
        raise DatasetError(f"{path}: not a readable image ({error}); replace or remove the file") from None
    if gray is None:
        raise DatasetError(
            f"{path}: image is {size[0]}x{size[1]}, MNIST format needs {IMAGE_SIDE}x{IMAGE_SIDE}; resize it first"
        )
    return np.round(gray * 255.0).astype(np.uint8)
