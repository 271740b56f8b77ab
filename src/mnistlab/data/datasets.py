"""`load_dataset`: find, verify and read a registered dataset's files (the registry is `registry.py`).

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
from mnistlab.data.registry import IMAGE_SIDE, ROLES, DatasetFile, DatasetSpec, get_dataset_spec


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


def load_test_images(name: str, data_dir: str | os.PathLike | None = None, download: bool | None = None,
                     progress: bool = True) -> np.ndarray:
    """The test images (N, 28, 28) of the registered dataset `name`, found and checked as by `load_dataset`,
    without reading its other three files (the training images are six times as large)."""
    spec = get_dataset_spec(name)
    path = locate_file(spec, "test_images", resolve_data_dir(data_dir), download, progress=progress)
    images, _ = read_verified(spec.files["test_images"], path, idx_ndim("test_images"))
    check_image_side(images, path)
    return images


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


def check_image_side(images: np.ndarray, path) -> None:
    """Raise `DatasetError` unless the images read from `path` are 28x28."""
    if images.shape[1:] != (IMAGE_SIDE, IMAGE_SIDE):
        raise DatasetError(
            f"{path}: images are {images.shape[1]}x{images.shape[2]}, MNIST format needs "
            f"{IMAGE_SIDE}x{IMAGE_SIDE}; point MNISTLAB_DATA_DIR at the right files"
        )


def check_pair(spec: DatasetSpec, split: str, images: np.ndarray, labels: np.ndarray, sources: dict) -> None:
    """Raise `DatasetError` unless a split's images are 28x28, match its labels in count, and labels fit the classes."""
    image_path = sources[spec.files[f"{split}_images"].name]
    label_path = sources[spec.files[f"{split}_labels"].name]
    check_image_side(images, image_path)
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
