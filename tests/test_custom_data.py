"""A user's own data via `--dataset PATH`: IDX folders, image folders, and one-line errors for bad ones."""

import gzip
import json

import numpy as np
import pytest
from PIL import Image

from conftest import make_tiny_arrays
from mnistlab.cli.main import main
from mnistlab.data.folders import open_dataset
from mnistlab.data.registry import FILE_NAMES
from mnistlab.common.errors import DatasetError
from mnistlab.data.idx import encode_idx


def write_idx_folder(folder, arrays, compress_roles=("train_images", "test_labels")):
    folder.mkdir(parents=True, exist_ok=True)
    for role, array in arrays.items():
        payload = encode_idx(array)
        if role in compress_roles:
            (folder / f"{FILE_NAMES[role]}.gz").write_bytes(gzip.compress(payload))
        else:
            (folder / FILE_NAMES[role]).write_bytes(payload)


def write_image_folder(root, arrays, names=None):
    for split in ("train", "test"):
        for index, (image, label) in enumerate(zip(arrays[f"{split}_images"], arrays[f"{split}_labels"])):
            folder = root / split / (names[label] if names else str(label))
            folder.mkdir(parents=True, exist_ok=True)
            Image.fromarray(image).save(folder / f"{index:04d}.png")


def test_idx_folder_mixed_gzip_loads_the_arrays(tmp_path):
    arrays = make_tiny_arrays()
    write_idx_folder(tmp_path / "mine", arrays)
    dataset = open_dataset(str(tmp_path / "mine"))
    for role, array in arrays.items():
        np.testing.assert_array_equal(getattr(dataset, role), array)
    assert dataset.name == str((tmp_path / "mine").resolve()) and dataset.class_names == tuple("0123456789")
    assert len(dataset.checksums) == 4


def test_image_folder_with_digit_labels(tmp_path):
    arrays = make_tiny_arrays(train=30, test=20)
    write_image_folder(tmp_path / "pngs", arrays)
    dataset = open_dataset(str(tmp_path / "pngs"))
    order = np.argsort(arrays["train_labels"], kind="stable")  # files are read class by class
    np.testing.assert_array_equal(dataset.train_images, arrays["train_images"][order])
    np.testing.assert_array_equal(dataset.train_labels, arrays["train_labels"][order])
    assert len(dataset.test_labels) == 20 and dataset.class_names == tuple("0123456789")


def test_image_folder_with_named_classes_sorts_them(tmp_path):
    arrays = make_tiny_arrays(train=30, test=20)
    for split in ("train", "test"):
        arrays[f"{split}_labels"] %= 3
    write_image_folder(tmp_path / "pngs", arrays, names=["cat", "ant", "bee"])
    dataset = open_dataset(str(tmp_path / "pngs"))
    assert dataset.class_names == ("ant", "bee", "cat")
    # labels (0..29 % 10) % 3 give cat (0) 12 images, ant (1) 9, bee (2) 9; sorted names renumber them
    assert np.bincount(dataset.train_labels).tolist() == [9, 9, 12]


def _image_folder_cases(root, arrays):
    write_image_folder(root, arrays)
    return root


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda root: Image.new("L", (32, 28)).save(root / "train" / "3" / "big.png"), "is 32x28, MNIST format needs 28x28"),
        (lambda root: (root / "train" / "3" / "broken.png").write_bytes(b"not a png"), "not a readable image"),
        (lambda root: (root / "test" / "3").rename(root / "test" / "three"), "use the same class folders"),
        (lambda root: [p.unlink() for p in (root / "test" / "4").iterdir()], "no .png images"),
        (lambda root: [(root / "train" / str(n)).mkdir() for n in range(10, 12)], "use the same class folders"),
    ],
    ids=["size", "unreadable", "class-mismatch", "empty-class", "extra-classes"],
)
def test_bad_image_folder_is_one_clear_error(tmp_path, damage, message):
    root = _image_folder_cases(tmp_path / "pngs", make_tiny_arrays(train=30, test=20))
    damage(root)
    with pytest.raises(DatasetError, match=message) as caught:
        open_dataset(str(root))
    assert "\n" not in str(caught.value)


def test_bad_idx_folder_names_the_file(tmp_path):
    arrays = make_tiny_arrays()
    arrays["test_labels"] = arrays["test_labels"][:-1]
    write_idx_folder(tmp_path / "mine", arrays)
    with pytest.raises(DatasetError, match="39 labels for 40 images"):
        open_dataset(str(tmp_path / "mine"))
    (tmp_path / "mine" / "train-labels-idx1-ubyte").unlink()
    with pytest.raises(DatasetError, match="train-labels-idx1-ubyte\\[.gz\\] is missing"):
        open_dataset(str(tmp_path / "mine"))


@pytest.mark.parametrize(("make", "message"), [
    (lambda root: None, "no such folder"),
    (lambda root: root.mkdir(), "holds neither layout"),
])
def test_folder_that_is_not_a_dataset(tmp_path, make, message):
    make(tmp_path / "nothing")
    with pytest.raises(DatasetError, match=message):
        open_dataset(str(tmp_path / "nothing"))


def test_compare_on_an_image_folder_end_to_end(tmp_path, capsys):
    arrays = make_tiny_arrays(train=200, test=40)
    write_image_folder(tmp_path / "pngs", arrays)
    out = tmp_path / "run"
    code = main(["--quiet", "compare", "--dataset", str(tmp_path / "pngs"), "--models", "logreg", "--epochs", "1", "--threads", "1",
                 "--out", str(out)])
    assert code == 0, capsys.readouterr().err
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["dataset"]["name"] == str((tmp_path / "pngs").resolve()) and metrics["dataset"]["test_size"] == 40
    assert (out / "report.html").is_file()
