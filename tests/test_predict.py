"""`mnistlab predict`: predictions for good files, one-line errors for bad ones, exit code 2 if any failed."""

import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mnistlab.cli.main import main
from serve_support import draw_seven, encode, png_header_only, render_like_a_user, save_untrained_checkpoints


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return save_untrained_checkpoints(tmp_path_factory.mktemp("checkpoints"), names=("cnn",))[0]


@pytest.fixture
def images(tmp_path):
    """A folder with two good images, and a set of bad files beside it."""
    good = tmp_path / "good"
    good.mkdir()
    (good / "seven.png").write_bytes(encode(draw_seven()))
    (good / "photo.jpg").write_bytes(encode(draw_seven(mode="RGB", ink=(30, 30, 60), paper=(235, 230, 220)), "JPEG"))
    (good / "notes.txt").write_text("not an image, and not picked from a folder")
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "text.png").write_text("hello")
    (bad / "truncated.png").write_bytes(encode(draw_seven())[:1500])
    (bad / "empty.png").write_bytes(b"")
    (bad / "blank.png").write_bytes(encode(Image.new("L", (300, 300), 255)))
    (bad / "huge.png").write_bytes(png_header_only(20_000, 20_000))
    return good, bad


def run_cli(capsys, *argv):
    code = main([*map(str, argv)])
    out, err = capsys.readouterr()
    return code, out, err


def test_table_for_a_folder(checkpoint, images, capsys):
    good, _ = images
    code, out, err = run_cli(capsys, "predict", checkpoint, good)
    assert code == 0 and err == ""
    lines = out.strip().splitlines()
    assert lines[0].split() == ["image", "top-1", "top-2", "top-3"]
    assert sorted(line.split()[0] for line in lines[1:]) == [str(good / "photo.jpg"), str(good / "seven.png")]
    for line in lines[1:]:
        cells = line.split()[1:]
        probabilities = [float(cell.rstrip("%")) for cell in cells[1::2]]
        assert len(set(cells[0::2])) == 3 and set(cells[0::2]) <= set("0123456789")
        assert probabilities == sorted(probabilities, reverse=True)


def test_bad_files_get_one_line_each_and_others_still_predict(checkpoint, images, capsys, tmp_path):
    good, bad = images
    missing = tmp_path / "missing.png"
    code, out, err = run_cli(capsys, "predict", checkpoint, good / "seven.png", *sorted(bad.iterdir()), missing,
                             tmp_path / "nothing-*.png", "--json")
    assert code == 2
    results = {item["image"]: item for item in json.loads(out)}
    assert results[str(good / "seven.png")]["error"] is None and len(results[str(good / "seven.png")]["top"]) == 3
    expected = {"text.png": "not an image", "truncated.png": "truncated", "empty.png": "empty (0 bytes)",
                "blank.png": "no digit found", "huge.png": "too large"}
    for name, fragment in expected.items():
        assert fragment in results[str(bad / name)]["error"]
    assert "no such file" in results[str(missing)]["error"]
    assert "no files match" in results[str(tmp_path / "nothing-*.png")]["error"]
    error_lines = err.strip().splitlines()
    assert len(error_lines) == len(expected) + 2
    assert all(line.startswith("mnistlab: error: ") for line in error_lines)


def test_glob_top_k_and_show_input(checkpoint, images, capsys, tmp_path):
    good, _ = images
    seen = tmp_path / "seen"
    code, out, _ = run_cli(capsys, "predict", checkpoint, str(good / "*.png"), "--top-k", "5", "--json",
                           "--show-input", seen)
    assert code == 0
    [result] = json.loads(out)
    classes = [entry["class"] for entry in result["top"]]
    probabilities = [entry["probability"] for entry in result["top"]]
    assert len(set(classes)) == 5 and set(classes) <= set("0123456789")  # five different digits
    assert probabilities == sorted(probabilities, reverse=True)  # most likely first
    assert 0 < sum(probabilities) <= 1.0 + 1e-9
    saved = np.asarray(Image.open(seen / "seven.png"))
    assert saved.shape == (28, 28) and saved.dtype == np.uint8 and saved.max() == 255 and saved[0].max() == 0


def test_top_k_out_of_range_is_a_one_line_error(checkpoint, images, capsys):
    code, _, err = run_cli(capsys, "predict", checkpoint, images[0], "--top-k", "11")
    assert code == 2 and err.count("\n") == 1 and "--top-k 11" in err and "1 to 10" in err


def test_missing_checkpoint_is_a_one_line_error(tmp_path, images, capsys):
    code, _, err = run_cli(capsys, "predict", tmp_path / "nope.pt", images[0])
    assert code == 2 and err.count("\n") == 1 and "nope.pt" in err


@pytest.mark.slow
def test_trained_cnn_predicts_files_drawn_by_users(seed_protocol_run, real_data_dir, tmp_path, capsys):
    from mnistlab.data.datasets import load_dataset

    dataset = load_dataset("mnist", real_data_dir, progress=False)
    rng = np.random.default_rng(1)
    for index in range(20):
        data = render_like_a_user(dataset.test_images[index], rng, "normal", "JPEG")
        (tmp_path / f"{index:02d}-label{dataset.test_labels[index]}.jpg").write_bytes(data)
    code, out, _ = run_cli(capsys, "predict", seed_protocol_run / "cnn.pt", tmp_path, "--json", "--top-k", "1")
    assert code == 0
    results = json.loads(out)
    correct = sum(item["top"][0]["class"] == item["image"][-5] for item in results)
    assert len(results) == 20 and correct >= 19


def refuse(monkeypatch, method: str, denied: set, error: OSError) -> None:
    """Make `Path.<method>` raise `error` for the paths in `denied`: tests run as root, where chmod 000 stops nothing."""
    original = getattr(Path, method)

    def guarded(self, *args, **kwargs):
        if str(self) in denied:
            raise error
        return original(self, *args, **kwargs)
    monkeypatch.setattr(Path, method, guarded)


def test_unreadable_files_and_folders_do_not_stop_the_batch(checkpoint, images, capsys, tmp_path, monkeypatch):
    good, _ = images
    locked, broken, hidden = tmp_path / "locked", tmp_path / "broken.png", tmp_path / "locked-dir" / "inside.png"
    locked.mkdir()
    (locked / "a.png").write_bytes(encode(draw_seven()))
    broken.write_bytes(encode(draw_seven()))
    hidden.parent.mkdir()
    hidden.write_bytes(encode(draw_seven()))
    refuse(monkeypatch, "iterdir", {str(locked)}, PermissionError(13, "Permission denied"))
    refuse(monkeypatch, "read_bytes", {str(good / "photo.jpg")}, PermissionError(13, "Permission denied"))
    refuse(monkeypatch, "read_bytes", {str(broken)}, OSError(5, "Input/output error"))
    refuse(monkeypatch, "stat", {str(hidden)}, PermissionError(13, "Permission denied"))  # its folder is locked
    code, out, err = run_cli(capsys, "predict", checkpoint, locked, good, broken, hidden, "--json")
    assert code == 2
    results = {item["image"]: item for item in json.loads(out)}
    assert results[str(good / "seven.png")]["error"] is None and len(results[str(good / "seven.png")]["top"]) == 3
    assert "cannot list this folder (permission denied)" in results[str(locked)]["error"]
    assert "permission denied" in results[str(good / "photo.jpg")]["error"]
    assert "permission denied" in results[str(hidden)]["error"]
    assert "cannot read (Input/output error)" in results[str(broken)]["error"]
    lines = err.strip().splitlines()
    assert len(lines) == 4 and all(line.startswith("mnistlab: error: ") for line in lines)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode; the monkeypatched test covers it")
def test_files_without_read_permission_do_not_stop_the_batch(checkpoint, images, capsys, tmp_path):
    good, _ = images
    locked = tmp_path / "locked.png"
    locked.write_bytes(encode(draw_seven()))
    locked.chmod(0)
    code, out, err = run_cli(capsys, "predict", checkpoint, good / "seven.png", locked, "--json")
    results = {item["image"]: item for item in json.loads(out)}
    assert code == 2 and results[str(good / "seven.png")]["error"] is None
    assert "permission denied" in results[str(locked)]["error"] and err.count("\n") == 1


@pytest.mark.parametrize("make_target, fragment", [
    (lambda folder: folder / "notes.txt", "not a folder"),
    (lambda folder: folder / "notes.txt" / "seen", "cannot create this folder"),
])
def test_show_input_that_cannot_be_a_folder_is_an_error_before_any_work(checkpoint, images, capsys, tmp_path,
                                                                        monkeypatch, make_target, fragment):
    (tmp_path / "notes.txt").write_text("a file")
    monkeypatch.setattr("mnistlab.vision.predict.predict_files", lambda *args, **kwargs: pytest.fail("work started"))
    code, out, err = run_cli(capsys, "predict", checkpoint, images[0], "--show-input", make_target(tmp_path))
    assert code == 2 and out == "" and err.count("\n") == 1 and fragment in err and "--show-input" in err
