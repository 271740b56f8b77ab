"""The registry of MNIST-format datasets and `load_dataset`, which finds, verifies and reads them.

Where files come from, in order:
1. `data_dir` (the `--data-dir` flag) or `$MNISTLAB_DATA_DIR`: a folder holding
   `<dataset>/<file>.gz` or the uncompressed `<dataset>/<file>`; read in place, never written;
2. the user cache: `$MNISTLAB_HOME/datasets` or the platform cache folder;
3. a download from each mirror in turn into the cache (skipped when `$MNISTLAB_OFFLINE=1`).
Every file's decompressed payload is checked against its pinned SHA-256.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import platformdirs

from mnistlab.data.download import download_verified, mirror_url
from mnistlab.common.errors import DatasetError
from mnistlab.data.idx import GZIP_MAGIC, parse_idx, payload_sha256, read_payload

IMAGE_SIDE = 28  # pixels; every MNIST-format image is 28x28
MAX_CLASSES = 256  # labels and predictions are stored as uint8 (IDX labels, predictions.npz)
ROLES = ("train_images", "train_labels", "test_images", "test_labels")
FILE_NAMES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}


@dataclass(frozen=True)
class DatasetFile:
    """One IDX file of a dataset and the checksums that identify it."""

    name: str  # file name without ".gz", e.g. "train-images-idx3-ubyte"
    payload_sha256: str | None  # SHA-256 of the decompressed IDX bytes; None where nobody publishes it
    gz_md5: str | None = None  # MD5 of the official .gz file on the mirrors
    gz_sha256: str | None = None  # SHA-256 of the official .gz file on the mirrors

    @property
    def gz_checksums(self) -> dict[str, str]:
        """Checksums of the official compressed file, by hashlib algorithm name."""
        pinned = {"md5": self.gz_md5, "sha256": self.gz_sha256}
        return {algorithm: digest for algorithm, digest in pinned.items() if digest}


@dataclass(frozen=True)
class DatasetSpec:
    """Where a dataset lives and how to recognise it."""

    name: str  # registry name, also the sub-folder name under data and cache folders
    description: str
    mirrors: tuple[str, ...]  # base URLs ending in "/", tried in order
    files: dict[str, DatasetFile]  # role (see ROLES) -> file
    class_names: tuple[str, ...]  # one per label value, in label order
    preprocess: str = "digits"  # how predict/serve read image files: "digits" (the handwritten-digit photo
    # preprocessing) or "plain" (a resize to 28x28; see `preprocess.preprocess_plain`)


@dataclass
class Dataset:
    """A loaded dataset: uint8 images (N, 28, 28) and integer labels (N,)."""

    name: str
    class_names: tuple[str, ...]
    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray
    checksums: dict[str, str] = field(default_factory=dict)  # file name -> payload SHA-256
    sources: dict[str, str] = field(default_factory=dict)  # file name -> path it was read from
    preprocess: str = "digits"  # "digits" or "plain": how predict and serve read image files (see DatasetSpec)
    background: str = "dark"  # "dark" (light objects on black, as in every registered dataset) or "light"


def _files(checksums: dict[str, tuple]) -> dict[str, DatasetFile]:
    return {role: DatasetFile(FILE_NAMES[role], *checksums[role]) for role in ROLES}


DATASETS: dict[str, DatasetSpec] = {}


def register_dataset(spec: DatasetSpec) -> DatasetSpec:
    """Add `spec` to the registry under its name and return it."""
    if spec.preprocess not in ("digits", "plain"):
        raise ValueError(f"dataset {spec.name!r}: preprocess {spec.preprocess!r} is not 'digits' or 'plain'")
    DATASETS[spec.name] = spec
    return spec


register_dataset(DatasetSpec(
    name="mnist",
    description="Handwritten digits 0-9 (LeCun, Cortes and Burges), 60,000 train / 10,000 test",
    mirrors=(
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "https://storage.googleapis.com/cvdf-datasets/mnist/",
        "http://yann.lecun.com/exdb/mnist/",  # has answered 403/404 for years: keep it last
    ),
    files=_files({
        "train_images": ("ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
                         "f68b3c2dcbeaaa9fbdd348bbdeb94873",
                         "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609"),
        "train_labels": ("65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
                         "d53e105ee54ea40749a09fcbcd1e9432",
                         "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c"),
        "test_images": ("0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
                        "9fb629c4189551a2d022fa330f9573f3",
                        "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6"),
        "test_labels": ("ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
                        "ec29112dd5afa0611ce80d1b7f02629c",
                        "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6"),
    }),
    class_names=tuple(str(digit) for digit in range(10)),
))

register_dataset(DatasetSpec(
    name="fashion-mnist",
    description="Zalando article images in 10 classes (Xiao, Rasul and Vollgraf), 60,000 train / 10,000 test",
    mirrors=("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
    files=_files({
        "train_images": ("c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
                         "8d4fb7e6c68d591d4c3dfef9ec88bf0d"),
        "train_labels": ("bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
                         "25c81989df183df01b3e8a0aad5dffbe"),
        "test_images": ("5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
                        "bef4ecab320f06d8554ea6380940ec79"),
        "test_labels": ("0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
                        "bb300cfdad3c16e7a12a480ee83cd310"),
    }),
    class_names=("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                 "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"),
    preprocess="plain",  # product photos centred on black: the digit preprocessing would crop and re-stroke them
))

# KMNIST publishes only the MD5 of its .gz files, so a local uncompressed copy
# can be checked for structure but not identity; the .gz files are checked by MD5.
register_dataset(DatasetSpec(
    name="kmnist",
    description="Kuzushiji-MNIST: 10 classes of cursive Japanese hiragana (Clanuwat et al.), 60,000 train / 10,000 test",
    mirrors=(
        "https://codh.rois.ac.jp/kmnist/dataset/kmnist/",
        "http://codh.rois.ac.jp/kmnist/dataset/kmnist/",
    ),
    files=_files({
        "train_images": (None, "bdb82020997e1d708af4cf47b453dcf7"),
        "train_labels": (None, "e144d726b3acfaa3e44228e80efcd344"),
        "test_images": (None, "5c965bf0a639b31b8f53240b1b52f4d7"),
        "test_labels": (None, "7320c461ea6c1c855c0b718fb2a4b134"),
    }),
    class_names=("o", "ki", "su", "tsu", "na", "ha", "ma", "ya", "re", "wo"),
    preprocess="plain",  # characters, not digits: no digit stroke and size normalisation
))


def get_dataset_spec(name: str, folders: bool = True) -> DatasetSpec:
    """Look up a registered dataset by name; `folders` says whether the caller also takes a folder instead."""
    if name not in DATASETS:
        other = (", or give a folder path" if folders else
                 " (this command takes registered names only; a folder of your own data is read and checked by "
                 "the commands that take --dataset FOLDER)")
        raise DatasetError(f"unknown dataset {name!r}; choose one of: {', '.join(DATASETS)}{other}")
    return DATASETS[name]


def cache_dir() -> Path:
    """The folder downloads go to: `$MNISTLAB_HOME/datasets`, else the platform's user cache."""
    home = os.environ.get("MNISTLAB_HOME")
    root = Path(home) if home else Path(platformdirs.user_cache_dir("mnistlab"))
    return root / "datasets"


def resolve_data_dir(data_dir: str | os.PathLike | None) -> Path | None:
    """The read-only data folder: the argument if given, else `$MNISTLAB_DATA_DIR`, else None."""
    chosen = data_dir or os.environ.get("MNISTLAB_DATA_DIR")
    return Path(chosen) if chosen else None


def downloads_allowed() -> bool:
    """False when `$MNISTLAB_OFFLINE` is set to a true value (1, true, yes)."""
    return os.environ.get("MNISTLAB_OFFLINE", "").lower() not in ("1", "true", "yes")


def read_verified(file: DatasetFile, path: Path, ndim: int) -> tuple[np.ndarray, str]:
    """Read an IDX file, check its structure and pinned checksums, and return (array, payload SHA-256)."""
    payload = read_payload(path)
    array = parse_idx(payload, str(path), ndim)  # structure first: its errors say more than a hash mismatch
    digest = payload_sha256(payload)
    advice = "delete it and fetch it again (mnistlab data fetch), or point MNISTLAB_DATA_DIR at a good copy"
    if file.payload_sha256 and digest != file.payload_sha256:
        raise DatasetError(
            f"{path}: checksum mismatch: payload SHA-256 {digest[:16]}... is not the pinned "
            f"{file.payload_sha256[:16]}... for {file.name}; {advice}"
        )
    if not file.payload_sha256 and file.gz_md5:  # identity only from the official .gz (KMNIST)
        raw = path.read_bytes()
        if raw[:2] == GZIP_MAGIC and (md5 := hashlib.md5(raw).hexdigest()) != file.gz_md5:
            raise DatasetError(f"{path}: checksum mismatch: MD5 {md5} is not the pinned {file.gz_md5}; {advice}")
    return array, digest


def idx_ndim(role: str) -> int:
    """Dimensions of a role's IDX array: 3 for images (N, 28, 28), 1 for labels."""
    return 3 if role.endswith("images") else 1


def local_candidates(spec: DatasetSpec, file: DatasetFile, data_dir: Path | None) -> list[Path]:
    """Paths checked for `file` before downloading, in order."""
    folders = ([data_dir / spec.name] if data_dir else []) + [cache_dir() / spec.name]
    return [folder / name for folder in folders for name in (f"{file.name}.gz", file.name)]


def locate_file(
    spec: DatasetSpec,
    role: str,
    data_dir: Path | None = None,
    download: bool | None = None,
    mirrors: Sequence[str] | None = None,
    progress: bool = True,
) -> Path:
    """Return the path of a dataset file, downloading it into the cache if it is nowhere local."""
    file = spec.files[role]
    candidates = local_candidates(spec, file, data_dir)
    for path in candidates:
        if path.is_file():
            return path
    offline = download is None and not downloads_allowed()
    looked = ", ".join(str(path.parent) for path in candidates[::2])
    if offline or download is False:
        why = " and downloads are off (MNISTLAB_OFFLINE)" if offline else ""
        raise DatasetError(
            f"{spec.name}: {file.name} not found (looked in {looked}){why}; "
            f"copy the four files into <folder>/{spec.name}/ and set MNISTLAB_DATA_DIR=<folder>, "
            f"or run 'mnistlab data fetch {spec.name}'{' where the network is reachable' if offline else ''}"
        )
    destination = cache_dir() / spec.name / f"{file.name}.gz"
    download_verified(
        [mirror_url(base, f"{file.name}.gz") for base in (mirrors or spec.mirrors)],
        destination,
        file.gz_checksums,
        verify_payload=lambda path: read_verified(file, path, idx_ndim(role)),
        progress=progress,
    )
    return destination


def load_dataset(
    name: str,
    data_dir: str | os.PathLike | None = None,
    download: bool | None = None,
    mirrors: Sequence[str] | None = None,
    progress: bool = True,
) -> Dataset:
    """Find, verify and read the four files of the registered dataset `name`.

    Raises `DatasetError` naming the file and the fix when anything is missing or wrong.
    (A user's own folder is loaded by `custom_data.open_dataset`, which also takes names.)
    """
    spec = get_dataset_spec(name)
    folder = resolve_data_dir(data_dir)
    paths = {role: locate_file(spec, role, folder, download, mirrors, progress) for role in ROLES}
    return read_dataset_files(spec, paths)


def read_dataset_files(spec: DatasetSpec, paths: dict[str, Path]) -> Dataset:
    """Read and check the four files (role -> path) of `spec` into a `Dataset`."""
    arrays, checksums, sources = {}, {}, {}
    for role in ROLES:
        arrays[role], checksums[spec.files[role].name] = read_verified(spec.files[role], paths[role], idx_ndim(role))
        sources[spec.files[role].name] = str(paths[role])
    for split in ("train", "test"):
        check_pair(spec, split, arrays[f"{split}_images"], arrays[f"{split}_labels"], sources)
    return Dataset(spec.name, spec.class_names, checksums=checksums, sources=sources, preprocess=spec.preprocess,
                   **arrays)


def check_pair(spec: DatasetSpec, split: str, images: np.ndarray, labels: np.ndarray, sources: dict) -> None:
    """Raise `DatasetError` unless a split's images are 28x28, match its labels in count, and labels fit the classes."""
    image_path = sources[spec.files[f"{split}_images"].name]
    label_path = sources[spec.files[f"{split}_labels"].name]
    if images.shape[1:] != (IMAGE_SIDE, IMAGE_SIDE):
        raise DatasetError(
            f"{image_path}: images are {images.shape[1]}x{images.shape[2]}, MNIST format needs "
            f"{IMAGE_SIDE}x{IMAGE_SIDE}; point MNISTLAB_DATA_DIR at the right files"
        )
    if len(labels) != len(images):
        raise DatasetError(
            f"{label_path}: {len(labels)} labels for {len(images)} images in {image_path}; "
            f"the files are from different datasets or damaged, fetch them again"
        )
    if labels.size and labels.max() >= len(spec.class_names):
        raise DatasetError(
            f"{label_path}: label {labels.max()} is outside 0-{len(spec.class_names) - 1}; "
            f"the file is damaged or not a {spec.name} label file, fetch it again"
        )


def fetch_dataset(name: str, mirrors: Sequence[str] | None = None, progress: bool = True) -> dict[str, str]:
    """Make sure the user cache holds a verified copy of every file; return file name -> path."""
    spec = get_dataset_spec(name, folders=False)
    for base in mirrors or ():
        mirror_url(base, "")  # a bad URL is an error before any download
    paths = {}
    for role in ROLES:
        file = spec.files[role]
        path = locate_file(spec, role, None, download=True, mirrors=mirrors, progress=progress)
        read_verified(file, path, idx_ndim(role))
        paths[file.name] = str(path)
    return paths


def find_local_copy(name: str, data_dir: str | os.PathLike | None = None) -> Path | None:
    """The folder holding all of a dataset's files without downloading, or None."""
    spec = get_dataset_spec(name)
    found = set()
    for file in spec.files.values():
        present = [path.parent for path in local_candidates(spec, file, resolve_data_dir(data_dir)) if path.is_file()]
        if not present:
            return None
        found.add(present[0])
    return found.pop() if len(found) == 1 else cache_dir() / spec.name


def dataset_record(dataset: Dataset, train_size: int, validation_size: int) -> dict:
    """What a run records about its data: name, classes, how images are read for it, checksums and split sizes."""
    return {
        "name": dataset.name,
        "class_names": list(dataset.class_names),
        "preprocess": dataset.preprocess,
        "background": dataset.background,
        "checksums": dataset.checksums,
        "train_size": train_size,
        "validation_size": validation_size,
        "test_size": len(dataset.test_labels),
    }
