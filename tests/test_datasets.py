"""Finding, verifying and downloading datasets, with synthetic files and the real MNIST copy."""

import gzip
import hashlib
import shutil

import numpy as np
import pytest

from conftest import snapshot
from mnistlab.data import datasets, registry
from mnistlab.data.datasets import cache_dir, fetch_dataset, load_dataset, load_test_images
from mnistlab.common.errors import DatasetError
from mnistlab.data.idx import encode_idx


def test_loads_from_data_dir_compressed_or_not(tiny_dataset):
    spec, data_dir, arrays, _ = tiny_dataset
    raw_file = data_dir / "tiny" / "t10k-labels-idx1-ubyte"
    raw_file.write_bytes(gzip.decompress((data_dir / "tiny" / "t10k-labels-idx1-ubyte.gz").read_bytes()))
    (data_dir / "tiny" / "t10k-labels-idx1-ubyte.gz").unlink()
    dataset = load_dataset("tiny", data_dir)
    for role, array in arrays.items():
        np.testing.assert_array_equal(getattr(dataset, role), array)
    assert dataset.sources["t10k-labels-idx1-ubyte"] == str(raw_file)
    assert dataset.checksums == {file.name: file.payload_sha256 for file in spec.files.values()}


def test_environment_variable_points_at_the_data(tiny_dataset, monkeypatch):
    _, data_dir, arrays, _ = tiny_dataset
    monkeypatch.setenv("MNISTLAB_DATA_DIR", str(data_dir))
    np.testing.assert_array_equal(load_dataset("tiny").test_labels, arrays["test_labels"])


def _corrupt(data_dir, role, arrays, payload=None):
    """Replace one file of the tiny dataset with `payload` (IDX bytes), gzipped."""
    path = data_dir / "tiny" / f"{registry.FILE_NAMES[role]}.gz"
    path.write_bytes(gzip.compress(payload, mtime=0))
    return path


def _corruptions(arrays):
    labels = arrays["train_labels"].copy()
    labels[3] = 42
    images = arrays["test_images"].copy()
    images[0, 0, 0] ^= 1
    return {
        "truncated": ("train_images", encode_idx(arrays["train_images"])[:-100], "truncated"),
        "wrong-magic": ("train_labels", b"\x01\x00" + encode_idx(arrays["train_labels"])[2:], "wrong magic"),
        "wrong-size": ("test_images", encode_idx(arrays["test_images"][:, :27, :]), "checksum mismatch"),
        "checksum": ("test_images", encode_idx(images), "checksum mismatch"),
        "label-range": ("train_labels", encode_idx(labels), "checksum mismatch"),
        "count-mismatch": ("test_labels", encode_idx(arrays["test_labels"][:-1]), "checksum mismatch"),
    }


@pytest.mark.parametrize("case", ["truncated", "wrong-magic", "wrong-size", "checksum", "label-range", "count-mismatch"])
def test_each_corruption_is_one_clear_error(tiny_dataset, case):
    _, data_dir, arrays, _ = tiny_dataset
    role, payload, message = _corruptions(arrays)[case]
    path = _corrupt(data_dir, role, arrays, payload)
    with pytest.raises(DatasetError, match=message) as caught:
        load_dataset("tiny", data_dir)
    assert str(caught.value).startswith(f"{path}: ")
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize("case", ["wrong-size", "checksum", "truncated-test"])
def test_test_images_alone_are_checked_as_the_whole_dataset_is(tiny_dataset, case):
    """`load_test_images` (what the not-a-digit check reads of Fashion-MNIST) returns `load_dataset`'s test images,
    refuses a bad test-image file with the same one-line error, and never reads the other three files."""
    _, data_dir, arrays, _ = tiny_dataset
    np.testing.assert_array_equal(load_test_images("tiny", data_dir), load_dataset("tiny", data_dir).test_images)
    for role in ("train_images", "train_labels", "test_labels"):
        _corrupt(data_dir, role, arrays, b"not an IDX file")
    np.testing.assert_array_equal(load_test_images("tiny", data_dir), arrays["test_images"])
    role, payload, message = {**_corruptions(arrays), "truncated-test": (
        "test_images", encode_idx(arrays["test_images"])[:-100], "truncated")}[case]
    path = _corrupt(data_dir, role, arrays, payload)
    with pytest.raises(DatasetError, match=message) as caught:
        load_test_images("tiny", data_dir)
    assert str(caught.value).startswith(f"{path}: ") and "\n" not in str(caught.value)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda arrays: arrays["train_labels"].__setitem__(3, 42), "label 42 is outside 0-9"),
        (lambda arrays: arrays.__setitem__("test_labels", arrays["test_labels"][:-1]), "39 labels for 40 images"),
        (lambda arrays: arrays.__setitem__("train_images", arrays["train_images"][:, :20, :20]), "images are 20x20"),
    ],
    ids=["label-range", "count-mismatch", "image-size"],
)
def test_structure_is_checked_even_when_no_checksum_is_pinned(tiny_dataset, monkeypatch, mutate, message):
    """A dataset whose payload hash is unknown (like KMNIST) still gets label and shape checks."""
    spec, data_dir, arrays, _ = tiny_dataset
    mutate(arrays)
    for role, array in arrays.items():
        (data_dir / "tiny" / f"{registry.FILE_NAMES[role]}.gz").write_bytes(gzip.compress(encode_idx(array)))
    unpinned = {role: registry.DatasetFile(file.name, None) for role, file in spec.files.items()}
    monkeypatch.setitem(registry.DATASETS, "tiny", registry.DatasetSpec("tiny", "", (), unpinned, spec.class_names))
    with pytest.raises(DatasetError, match=message):
        load_dataset("tiny", data_dir)


def test_corrupted_cache_file_is_reported_and_left_as_is(tiny_dataset):
    _, data_dir, arrays, gz_bytes = tiny_dataset
    cached = cache_dir() / "tiny"
    shutil.copytree(data_dir / "tiny", cached)
    (cached / "train-labels-idx1-ubyte.gz").write_bytes(gz_bytes["train_labels"][:-30])
    before = snapshot(cache_dir())
    with pytest.raises(DatasetError, match=r"train-labels-idx1-ubyte.gz: damaged gzip data.*delete"):
        load_dataset("tiny")
    assert snapshot(cache_dir()) == before


def test_offline_with_nothing_found_says_where_it_looked(tiny_dataset, tmp_path):
    empty = tmp_path / "empty"
    with pytest.raises(DatasetError) as caught:
        load_dataset("tiny", empty)
    message = str(caught.value)
    assert str(empty / "tiny") in message and str(cache_dir() / "tiny") in message
    assert "MNISTLAB_DATA_DIR" in message and "mnistlab data fetch tiny" in message


def test_unknown_dataset_lists_the_known_ones():
    with pytest.raises(DatasetError, match="unknown dataset 'mnits'; choose one of: mnist, fashion-mnist, kmnist"):
        load_dataset("mnits")


def test_download_falls_through_404_and_corrupt_mirrors(tiny_dataset, http_mirrors):
    spec, data_dir, arrays, _ = tiny_dataset
    server, base = http_mirrors
    server.roots = {"good": data_dir / "tiny", "corrupt": data_dir / "tiny"}
    paths = fetch_dataset("tiny", mirrors=[base + "missing/", base + "corrupt/", base + "good/"], progress=False)
    assert set(paths) == {file.name for file in spec.files.values()}
    for role, file in spec.files.items():
        cached = cache_dir() / "tiny" / f"{file.name}.gz"
        assert hashlib.sha256(cached.read_bytes()).hexdigest() == file.gz_sha256
    assert sorted(path.name for path in (cache_dir() / "tiny").iterdir()) == sorted(
        f"{file.name}.gz" for file in spec.files.values()
    )
    np.testing.assert_array_equal(load_dataset("tiny").train_images, arrays["train_images"])


def test_failed_download_leaves_nothing_in_the_cache(tiny_dataset, http_mirrors):
    _, data_dir, _, _ = tiny_dataset
    server, base = http_mirrors
    server.roots = {"corrupt": data_dir / "tiny"}
    with pytest.raises(DatasetError) as caught:
        fetch_dataset("tiny", mirrors=[base + "missing/", base + "corrupt/"], progress=False)
    message = str(caught.value)
    assert "HTTP 404" in message and "does not match the pinned" in message
    assert snapshot(cache_dir()) == {}


def test_refuses_bytes_whose_payload_is_wrong_even_if_the_gz_checksum_is_not_pinned(
    tiny_dataset, http_mirrors, monkeypatch, tmp_path
):
    """Without gz checksums (a recompressed mirror), the payload SHA-256 still guards the cache."""
    spec, data_dir, arrays, _ = tiny_dataset
    unpinned_gz = {role: registry.DatasetFile(file.name, file.payload_sha256) for role, file in spec.files.items()}
    monkeypatch.setitem(registry.DATASETS, "tiny", registry.DatasetSpec("tiny", "", (), unpinned_gz, spec.class_names))
    bad = tmp_path / "bad"
    shutil.copytree(data_dir / "tiny", bad)
    labels = arrays["train_labels"].copy()
    labels[0] = 1
    (bad / "train-labels-idx1-ubyte.gz").write_bytes(gzip.compress(encode_idx(labels)))
    server, base = http_mirrors
    server.roots = {"bad": bad}
    with pytest.raises(DatasetError, match="checksum mismatch"):
        fetch_dataset("tiny", mirrors=[base + "bad/"], progress=False)
    assert "train-labels-idx1-ubyte.gz" not in snapshot(cache_dir())


def test_real_mnist_file_downloads_from_a_local_mirror(real_data_dir, http_mirrors):
    """The official t10k-labels file passes both the gz and the payload checksums after a download."""
    server, base = http_mirrors
    server.roots = {"good": real_data_dir / "mnist", "corrupt": real_data_dir / "mnist"}
    spec = registry.get_dataset_spec("mnist")
    path = datasets.locate_file(spec, "test_labels", None, download=True,
                                mirrors=[base + "gone/", base + "corrupt/", base + "good/"], progress=False)
    assert path == cache_dir() / "mnist" / "t10k-labels-idx1-ubyte.gz"
    assert path.read_bytes() == (real_data_dir / "mnist" / "t10k-labels-idx1-ubyte.gz").read_bytes()


def test_real_mnist_loads_with_the_published_shapes_and_checksums(real_data_dir):
    dataset = load_dataset("mnist", real_data_dir)
    assert dataset.train_images.shape == (60000, 28, 28) and dataset.test_images.shape == (10000, 28, 28)
    assert np.bincount(dataset.test_labels).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    spec = registry.get_dataset_spec("mnist")
    assert dataset.checksums == {file.name: file.payload_sha256 for file in spec.files.values()}
    assert snapshot(cache_dir()) == {}  # read in place, nothing copied


def test_real_fashion_mnist_loads(real_data_dir):
    dataset = load_dataset("fashion-mnist", real_data_dir)
    assert dataset.class_names[9] == "Ankle boot"
    assert np.bincount(dataset.train_labels).tolist() == [6000] * 10


def test_gz_md5_guards_datasets_without_a_payload_checksum(tiny_dataset, monkeypatch):
    """KMNIST-style entries (only the official .gz MD5 is known) accept the official file and refuse others."""
    spec, data_dir, arrays, _ = tiny_dataset
    md5_only = {role: registry.DatasetFile(file.name, None, gz_md5=file.gz_md5) for role, file in spec.files.items()}
    monkeypatch.setitem(registry.DATASETS, "tiny", registry.DatasetSpec("tiny", "", (), md5_only, spec.class_names))
    np.testing.assert_array_equal(load_dataset("tiny", data_dir).test_labels, arrays["test_labels"])
    recompressed = data_dir / "tiny" / "t10k-labels-idx1-ubyte.gz"
    recompressed.write_bytes(gzip.compress(encode_idx(arrays["test_labels"]), mtime=12345))
    with pytest.raises(DatasetError, match=r"t10k-labels-idx1-ubyte.gz: checksum mismatch: MD5 .* is not the pinned"):
        load_dataset("tiny", data_dir)
