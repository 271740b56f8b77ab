"""Datasets with their own classes (2 to 256, named by their folders) through every command; folder validation;
how predict reads images for checkpoints not trained on handwritten digits."""

import json

import numpy as np
import pytest
import torch
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from conftest import assert_one_line_error, run_cli
from mnistlab.training.checkpoint import load_checkpoint, save_checkpoint
from mnistlab.training.config import TrainConfig
from mnistlab.data.folders import class_folders, open_dataset
from mnistlab.data.registry import DATASETS
from mnistlab.common.errors import DatasetError
from mnistlab.evaluation.evaluate import evaluate
from mnistlab.models import MODELS, build_model
from mnistlab.vision.loading import load_model
from mnistlab.vision.predict import predict_files, predict_probabilities
from mnistlab.serve.app import create_app
from mnistlab.training.train import train
from serve_support import draw_seven, encode, png_header_only

TINY = ["--epochs", "1", "--threads", "1", "--batch-size", "16"]


def class_images(label: int, count: int, seed: int) -> np.ndarray:
    """`count` 28x28 uint8 images of class `label`: a bright bar whose row band tells the class, on noise."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 40, size=(count, 28, 28), dtype=np.uint8)
    top = 2 + 5 * (label % 5)
    images[:, top:top + 4, 4 + 10 * (label // 5):14 + 10 * (label // 5)] = 255
    return images


def write_classes(root, names, train=12, test=4, save=lambda image, path: Image.fromarray(image).save(path)):
    """root/{train,test}/<name>/*.png with learnable images, one class per name (labels in sorted-name order)."""
    for label, name in enumerate(names):
        for split, count in (("train", train), ("test", test)):
            folder = root / split / name
            folder.mkdir(parents=True, exist_ok=True)
            for index, image in enumerate(class_images(label, count, seed=label * 7 + len(split))):
                save(image, folder / f"{index:03d}.png")
    return root


def test_three_named_classes_through_compare_report_predict_evaluate_serve(tmp_path, capsys):
    data = write_classes(tmp_path / "animals", ["bird", "cat", "dog"])
    out = tmp_path / "run"
    code, _, err = run_cli(capsys, "--quiet", "compare", "--dataset", data, "--models", "logreg,cnn-fast", *TINY,
                           "--out", out)  # 36 training images: smaller than --limit-train allows
    assert code == 0, err
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["dataset"]["class_names"] == ["bird", "cat", "dog"]
    assert metrics["dataset"]["preprocess"] == "plain"
    for result in metrics["models"].values():
        assert np.asarray(result["confusion_matrix"]).shape == (3, 3)
        assert [row["class"] for row in result["per_class"]] == ["bird", "cat", "dog"]
    assert (out / "errors_logreg.png").is_file() and (out / "disagreements.png").is_file()
    model, state = load_checkpoint(out / "logreg.pt")
    assert model.out.out_features == 3 and state["model_arguments"] == {"num_classes": 3}

    assert run_cli(capsys, "report", out)[0] == 0

    code, printed, err = run_cli(capsys, "predict", out / "logreg.pt", data / "test" / "cat", "--json")
    assert code == 0, err
    assert "not on handwritten digits" in err  # the note on how the images were read
    results = json.loads(printed)
    assert len(results) == 4
    for result in results:
        assert sorted(entry["class"] for entry in result["top"]) == ["bird", "cat", "dog"]

    code, printed, err = run_cli(capsys, "evaluate", out / "logreg.pt", "--dataset", data)
    assert code == 0, err
    assert [line.split()[0] for line in printed.splitlines()[2:]] == ["bird", "cat", "dog"]

    client = TestClient(create_app([out / "logreg.pt"], allowed_hosts=["testserver"]))
    assert client.get("/api/models").json()["models"][0]["class_names"] == ["bird", "cat", "dog"]
    png = encode(Image.fromarray(class_images(1, 1, seed=99)[0]).resize((140, 140), Image.Resampling.NEAREST))
    response = client.post("/api/predict", content=png, headers={"Content-Type": "image/png"})
    assert response.status_code == 200, response.text
    prediction = response.json()["predictions"][0]
    assert prediction["classes"] == ["bird", "cat", "dog"] and len(prediction["probabilities"]) == 3
    assert prediction["top_class"] in prediction["classes"] and prediction["preprocess"] == "plain"


def test_evaluate_refuses_other_classes_unless_told(tmp_path, capsys):
    model = build_model("logreg", num_classes=3)
    save_checkpoint(tmp_path / "animals.pt", model, "logreg", {}, {"name": "x", "class_names": ["bird", "cat", "dog"]},
                    {})
    others = write_classes(tmp_path / "other", ["car", "bus", "van"], train=4, test=2)
    code, _, err = run_cli(capsys, "evaluate", tmp_path / "animals.pt", "--dataset", others)
    assert_one_line_error(code, err, "'bird', 'cat', 'dog'", "'bus', 'car', 'van'", "--allow-class-mismatch")
    code, printed, err = run_cli(capsys, "evaluate", tmp_path / "animals.pt", "--dataset", others, "--allow-class-mismatch")
    assert code == 0 and "scored by class index" in err and "accuracy" in printed


def test_digit_labels_3_5_7_are_three_classes(tmp_path, capsys):
    data = write_classes(tmp_path / "digits", ["3", "5", "07"], train=8, test=2)  # 07 is class "7"
    dataset = open_dataset(str(data))
    assert dataset.class_names == ("3", "5", "7") and sorted(set(dataset.train_labels.tolist())) == [0, 1, 2]
    assert dataset.preprocess == "digits"  # named by digits: handwritten digits, read with the photo preprocessing
    code, _, err = run_cli(capsys, "--quiet", "train", "logreg", "--dataset", data, *TINY, "--out", tmp_path / "m.pt")
    assert code == 0, err
    loaded = load_model(tmp_path / "m.pt")
    assert loaded.class_names == ["3", "5", "7"] and loaded.model.out.out_features == 3
    assert loaded.preprocess == "digits" and loaded.note() is None


def test_evaluate_maps_a_subset_of_the_classes_by_name(tmp_path, capsys):
    """An MNIST-classes checkpoint tested on a folder of 3/, 5/, 7/: labels 0-2 there are the digits 3, 5 and 7."""
    data = write_classes(tmp_path / "digits", ["3", "5", "7"], train=2, test=3)
    save_checkpoint(tmp_path / "m.pt", build_model("logreg"), "logreg", {},
                    {"name": "mnist", "class_names": list("0123456789")}, {})
    code, printed, err = run_cli(capsys, "evaluate", tmp_path / "m.pt", "--dataset", data, "--json")
    assert code == 0 and "matched to them by name" in err
    support = {row["class"]: row["support"] for row in json.loads(printed)["per_class"]}
    assert support == {digit: 3 if digit in "357" else 0 for digit in "0123456789"}


def test_two_classes_predict_shows_both(tmp_path, capsys):
    data = write_classes(tmp_path / "pair", ["no", "yes"], train=8, test=2)
    code, _, err = run_cli(capsys, "--quiet", "train", "cnn", "--dataset", data, *TINY, "--out", tmp_path / "m.pt")
    assert code == 0, err
    code, printed, err = run_cli(capsys, "predict", tmp_path / "m.pt", data / "test" / "yes" / "000.png", "--json")
    assert code == 0, err
    assert [entry["class"] for entry in json.loads(printed)[0]["top"]] in (["no", "yes"], ["yes", "no"])


def make_folder_case(root, case):
    write_classes(root, ["0", "1", "2"], train=2, test=1)
    if case == "7-and-07":
        for name in ("7", "07"):
            write_classes(root / "tmp", [name], train=1, test=1)
            for split in ("train", "test"):
                (root / "tmp" / split / name).rename(root / split / name)
    elif case == "superscript":
        for split in ("train", "test"):
            (root / split / "2").rename(root / split / "²")
    elif case == "case-and-space":
        for split in ("train", "test"):
            (root / split / "2").rename(root / split / "Cat ")
            (root / split / "1").rename(root / split / "cat")
    elif case == "one-class":
        for split in ("train", "test"):
            for name in ("1", "2"):
                for path in (root / split / name).iterdir():
                    path.unlink()
                (root / split / name).rmdir()
    elif case == "bomb":
        (root / "train" / "1" / "bomb.png").write_bytes(png_header_only(100_000, 100_000))
    elif case == "bomb-small-file":
        (root / "train" / "1" / "wide.png").write_bytes(png_header_only(300, 300))


@pytest.mark.parametrize(("case", "fragments"), [
    ("7-and-07", ["'07' and '7'", "same class"]),
    ("superscript", ["'²'", "non-ASCII digits"]),
    ("case-and-space", ["'Cat '", "'cat'", "same class"]),
    ("one-class", ["one class folder", "at least 2"]),
    ("bomb", ["bomb.png", "too large"]),
    ("bomb-small-file", ["wide.png", "300x300"]),
])
def test_bad_class_folders_are_one_line_errors(tmp_path, capsys, case, fragments):
    make_folder_case(tmp_path / "data", case)
    with pytest.raises(DatasetError) as caught:
        open_dataset(str(tmp_path / "data"))
    assert "\n" not in str(caught.value) and all(fragment in str(caught.value) for fragment in fragments), caught.value
    code, _, err = run_cli(capsys, "--quiet", "train", "logreg", "--dataset", tmp_path / "data", *TINY,
                           "--out", tmp_path / "m.pt")
    assert_one_line_error(code, err, *fragments)


def test_hidden_folders_and_files_are_skipped(tmp_path):
    data = write_classes(tmp_path / "data", ["a", "b"], train=3, test=1)
    for split in ("train", "test"):
        write_classes(tmp_path / "data" / split / ".ipynb_checkpoints", ["x"], train=1, test=1)
        (data / split / "a" / "._000.png").write_bytes(b"\x00\x05\x16\x07 AppleDouble")  # not an image
    dataset = open_dataset(str(data))
    assert dataset.class_names == ("a", "b") and len(dataset.train_labels) == 6


FOLDER_NAMES = st.lists(st.text(alphabet="07aAbB ²._", min_size=1, max_size=3), min_size=1, max_size=5, unique=True)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(names=FOLDER_NAMES)
def test_class_folders_are_distinct_classes_or_one_line_errors(tmp_path_factory, names):
    """Any set of folder names: distinct classes that no two folders share once normalised, or a one-line error."""
    folder = tmp_path_factory.mktemp("split")
    for name in names:
        (folder / name).mkdir(exist_ok=True)
    try:
        found = class_folders(folder)
    except DatasetError as error:
        assert "\n" not in str(error)
        return
    visible = [name for name in names if not name.startswith(".") and name not in (".", "..")]
    assert sorted(found.values()) == sorted(visible)
    numbers = [int(name) for name in visible if name.strip().isdigit()]
    assert len(set(numbers)) == len(numbers)
    words = [name.strip().casefold() for name in visible if not name.strip().isdigit()]
    assert len(set(words)) == len(words) and all(word for word in words)


def test_alpha_only_ink_trains_above_chance(tmp_path):
    """RGBA PNGs whose RGB is black everywhere and whose ink is only in alpha: read as predict reads them."""
    def save_alpha(image, path):
        rgba = np.zeros((28, 28, 4), dtype=np.uint8)
        rgba[..., 3] = np.where(image > 128, 255, 0)
        Image.fromarray(rgba, "RGBA").save(path)

    data = write_classes(tmp_path / "alpha", ["a", "b", "c"], train=20, test=8, save=save_alpha)
    dataset = open_dataset(str(data))
    assert dataset.background == "light"  # black ink composited on white, as predict does
    assert len(np.unique(dataset.train_images.reshape(len(dataset.train_images), -1), axis=0)) == 3
    config = TrainConfig(epochs=3, batch_size=8, learning_rate=1e-2, validation_fraction=0.25, seed=0)
    model = train("logreg", dataset, config, progress=False).model
    accuracy = evaluate(model, dataset.test_images, dataset.test_labels, dataset.class_names).metrics["test_accuracy"]
    assert accuracy > 0.9  # chance is 1/3; every image of a class is the same


FASHION_NAMES = list(DATASETS["fashion-mnist"].class_names)


def fashion_like_images(count=6) -> np.ndarray:
    """28x28 light objects on black, as in Fashion-MNIST: soft-edged blobs of varied gray."""
    rng = np.random.default_rng(3)
    rows, cols = np.mgrid[0:28, 0:28]
    images = []
    for _ in range(count):
        centre, radius = rng.uniform(10, 18, 2), rng.uniform(5, 11)
        blob = np.clip(radius - np.hypot(rows - centre[0], cols - centre[1]), 0, 3) / 3
        images.append(np.round(blob * rng.uniform(120, 255, (28, 28))).astype(np.uint8))
    return np.stack(images)


def test_fashion_checkpoint_reads_its_own_images_as_raw_pixels(tmp_path, capsys):
    """A checkpoint written before preprocessing was recorded, trained on Fashion-MNIST: predict gives it the raw
    pixels of a 28x28 PNG, of the same picture at 56x56, and of its negative, not the digit preprocessing."""
    torch.manual_seed(0)
    model = build_model("cnn-fast")
    save_checkpoint(tmp_path / "fashion.pt", model, "cnn-fast", {},
                    {"name": "fashion-mnist", "class_names": FASHION_NAMES}, {})
    state = torch.load(tmp_path / "fashion.pt", weights_only=True)
    state["model_arguments"] = {}  # as an older mnistlab wrote it: no class count, no preprocessing recorded
    torch.save(state, tmp_path / "fashion.pt")
    raw = fashion_like_images()
    paths = []
    for index, image in enumerate(raw):
        for kind, picture in (("raw", Image.fromarray(image)),
                              ("big", Image.fromarray(image).resize((56, 56), Image.Resampling.NEAREST)),
                              ("negative", Image.fromarray(255 - image).convert("RGB"))):
            paths.append(tmp_path / f"{index}-{kind}.png")
            picture.save(paths[-1])
    loaded = load_model(tmp_path / "fashion.pt")
    assert loaded.preprocess == "plain" and loaded.class_names == FASHION_NAMES
    results = predict_files(loaded, [str(path) for path in paths], top_k=10)
    seen = np.stack([result.image for result in results]).reshape(len(raw), 3, 28, 28)
    for kind in range(3):
        np.testing.assert_array_equal(seen[:, kind], raw)
    expected = predict_probabilities(loaded.model, raw)
    for index, result in enumerate(results[::3]):
        assert [name for name, _ in result.top] == [FASHION_NAMES[i] for i in np.argsort(-expected[index], kind="stable")]
    assert "not on handwritten digits" in run_cli(capsys, "predict", tmp_path / "fashion.pt", paths[0])[2]


def test_old_checkpoints_load_as_the_ten_digits(tmp_path):
    save_checkpoint(tmp_path / "old.pt", build_model("logreg"), "logreg", {}, {"name": "mnist"}, {})
    state = torch.load(tmp_path / "old.pt", weights_only=True)
    state["model_arguments"] = {}
    torch.save(state, tmp_path / "old.pt")
    loaded = load_model(tmp_path / "old.pt")
    assert loaded.class_names == list("0123456789") and loaded.preprocess == "digits"
    state["dataset"]["class_names"] = ["bird", "cat", "dog"]  # a folder run from before: 10 outputs, 3 names
    torch.save(state, tmp_path / "old.pt")
    assert load_model(tmp_path / "old.pt").class_names == ["bird", "cat", "dog", *"3456789"]


@pytest.mark.parametrize("name", sorted(MODELS))
def test_every_model_takes_a_class_count(name):
    for count in (2, 256):
        assert build_model(name, num_classes=count).eval()(torch.zeros(2, 1, 28, 28)).shape == (2, count)
    with pytest.raises(Exception, match="2 to 256"):
        build_model(name, num_classes=1)


def test_serve_reads_an_upload_for_each_checkpoint_its_own_way(tmp_path):
    """A digit model and a Fashion-MNIST model side by side: each gets its own input and its own class names."""
    digits, fashion = build_model("logreg"), build_model("logreg")
    save_checkpoint(tmp_path / "digits.pt", digits, "logreg", {}, {"name": "mnist", "class_names": list("0123456789")}, {})
    save_checkpoint(tmp_path / "fashion.pt", fashion, "logreg", {},
                    {"name": "fashion-mnist", "class_names": FASHION_NAMES, "preprocess": "plain"}, {})
    client = TestClient(create_app([tmp_path / "digits.pt", tmp_path / "fashion.pt"], allowed_hosts=["testserver"]))
    models = client.get("/api/models").json()["models"]
    assert [model["preprocess"] for model in models] == ["digits", "plain"]
    # light on black as Fashion-MNIST is, and shaped like a digit so the digit model's preprocessing finds one
    raw = np.asarray(draw_seven(size=(28, 28), box=(7, 5, 21, 23), width=3, ink=255, paper=0))
    response = client.post("/api/predict", content=encode(Image.fromarray(raw)), headers={"Content-Type": "image/png"})
    assert response.status_code == 200, response.text
    body = response.json()
    first, second = body["predictions"]
    # inputs on the JSON pixels' scale, [0, 1]
    assert "input" not in first and second["input"] == np.round(raw.ravel() / 255.0, 4).tolist()
    assert body["input"] != second["input"]
    assert second["classes"] == FASHION_NAMES and second["top_class"] in FASHION_NAMES


def test_digit_inputs_follow_a_light_training_background():
    """Digits trained dark on white get the MNIST-style input inverted; a plain input is inverted only when its
    background differs from the training images'."""
    from mnistlab.vision.preprocess import preprocess_decoded

    photo = Image.new("L", (200, 200), 255)
    photo.paste(0, (90, 40, 110, 160))  # a dark "1" on white paper
    dark = preprocess_decoded(photo, "digits", "dark")
    np.testing.assert_array_equal(preprocess_decoded(photo, "digits", "light"), 255 - dark)
    assert dark[0, 0] == 0 and dark.max() == 255
    plain_light = preprocess_decoded(photo, "plain", "light")
    assert plain_light[0, 0] == 255 and plain_light[14, 14] == 0  # kept as it is: white paper, dark stroke
    np.testing.assert_array_equal(preprocess_decoded(photo, "plain", "dark"), 255 - plain_light)


@pytest.mark.parametrize(("classes", "preprocess"), [(3, "digits"), (12, "plain")])
def test_idx_folder_classes_run_to_the_largest_label(tmp_path, classes, preprocess):
    from test_custom_data import write_idx_folder

    arrays = {f"{split}_{kind}": class_images(0, 24, seed=0) if kind == "images" else
              (np.arange(24) % classes).astype(np.uint8) for split in ("train", "test") for kind in ("images", "labels")}
    write_idx_folder(tmp_path / "idx", arrays)
    dataset = open_dataset(str(tmp_path / "idx"))
    assert dataset.class_names == tuple(str(label) for label in range(classes)) and dataset.preprocess == preprocess
