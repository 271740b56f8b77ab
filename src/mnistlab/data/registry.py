"""The registry of MNIST-format datasets: where each lives, its files' pinned checksums, its classes.

`register_dataset` adds one; `get_dataset_spec` looks one up by name. Finding, verifying and
reading the files is `datasets.load_dataset`'s work.
"""

from __future__ import annotations

from dataclasses import dataclass

from mnistlab.common.errors import DatasetError

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
