"""Attributions (Captum): completeness of Integrated Gradients, occlusion where the evidence is, `mnistlab explain`,
and the run's attribution page (`compare --explain`, `report --explain`)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from conftest import assert_one_line_error, register_tiny_dataset, run_cli, snapshot
from mnistlab.explain.attribution import attribute, logit_gap, mean_per_class
from mnistlab.explain.run_attributions import first_of_each_class
from mnistlab.models import MODELS, build_model
from mnistlab.runs.claim import run_files
from mnistlab.runs.folder import ATTRIBUTIONS_FILE, attribution_plot_name, read_attributions
from serve_support import draw_seven, save_untrained_checkpoints
from synthetic_digits import blobs


@pytest.mark.parametrize("name", sorted(MODELS))
def test_integrated_gradients_sum_to_the_logit_gap_from_black(name):
    """Completeness: each map sums to logit(image) - logit(black image) of the class explained, for every model."""
    torch.manual_seed(0)
    model = build_model(name)
    images, targets = blobs(6, seed=1), np.array([0, 3, 5, 7, 9, 2])
    maps = attribute(model, images, targets, occlusion=False)
    gap = logit_gap(model, images, targets)  # computed here, not by Captum
    assert maps.integrated_gradients.shape == (6, 28, 28)
    np.testing.assert_allclose(maps.integrated_gradients.sum(axis=(1, 2)), gap, rtol=0.01, atol=1e-4)
    assert np.abs(gap).max() > 1e-3  # the check is not vacuous: the logits do move


def test_attribute_leaves_the_model_as_it_found_it():
    model = build_model("cnn").train()
    before = {key: value.clone() for key, value in model.state_dict().items()}
    attribute(model, blobs(2), [1, 2])
    assert model.training
    assert all(torch.equal(before[key], value) for key, value in model.state_dict().items())
    assert all(parameter.grad is None for parameter in model.parameters())


def one_pixel_model(row: int, column: int, target: int = 3) -> nn.Module:
    """A linear classifier whose `target` logit reads one pixel only: the digit's only informative pixel."""
    model = nn.Sequential(nn.Flatten(), nn.Linear(28 * 28, 10))
    with torch.no_grad():
        model[1].weight.zero_()
        model[1].bias.zero_()
        model[1].weight[target, row * 28 + column] = 5.0
    return model


def test_occlusion_lights_up_where_the_only_informative_pixel_is():
    row, column = 9, 17
    image = blobs(1, seed=3)[0].copy()  # ink elsewhere that the model ignores
    image[row, column] = 255
    maps = attribute(one_pixel_model(row, column), image[None], [3])
    occlusion = maps.occlusion[0]
    peak = np.unravel_index(np.argmax(occlusion), occlusion.shape)
    assert abs(peak[0] - row) <= 1 and abs(peak[1] - column) <= 1, peak
    assert occlusion[row, column] == pytest.approx(5.0, rel=1e-5)  # every patch over it removes its whole logit
    outside = np.ones_like(occlusion, dtype=bool)
    outside[row - 3:row + 4, column - 3:column + 4] = False  # patches of 4 px that cover the pixel reach 3 px away
    assert np.all(occlusion[outside] == 0)
    ig = maps.integrated_gradients[0]
    assert ig[row, column] == pytest.approx(5.0, rel=1e-4) and np.count_nonzero(ig) == 1


def test_bad_inputs_are_refused_with_the_shape_named():
    from mnistlab.common.errors import ConfigError

    with pytest.raises(ConfigError, match="uint8 array of shape"):
        attribute(build_model("ann"), np.zeros((2, 28, 28), dtype=np.float32), [0, 1])
    with pytest.raises(ConfigError, match="class indices from 0 to 9"):
        attribute(build_model("ann"), blobs(2), [0, 10])


def test_fixed_digits_are_the_first_of_each_class_and_class_means_average_them():
    labels = np.array([3, 1, 3, 0, 1, 3, 2, 0])
    assert first_of_each_class(labels, 4, 2).tolist() == [3, 7, 1, 4, 6, 0, 2]
    maps = np.arange(8 * 4, dtype=np.float32).reshape(8, 2, 2)
    means = mean_per_class(maps, labels, 5)
    np.testing.assert_allclose(means[3], maps[[0, 2, 5]].mean(axis=0))
    assert not means[4].any()  # a class with no image


def test_explain_command_writes_a_figure_per_image_for_the_class_predict_gives(tmp_path, capsys):
    checkpoint = save_untrained_checkpoints(tmp_path, names=("cnn",))[0]
    images = tmp_path / "images"
    images.mkdir()
    draw_seven().save(images / "seven.png")
    Image.fromarray(255 - blobs(1)[0]).save(images / "blob.png")
    out = tmp_path / "figures"
    code, stdout, stderr = run_cli(capsys, "--threads", "1", "explain", checkpoint, images, "--out", out, "--json")
    assert code == 0, stderr
    results = json.loads(stdout)
    code, predicted, _ = run_cli(capsys, "--threads", "1", "predict", checkpoint, images, "--json", "--top-k", "1")
    for result, prediction in zip(results, json.loads(predicted)):
        assert result["class"] == prediction["top"][0]["class"]  # same preprocessing, same model
        assert np.array(result["integrated_gradients"]).shape == (28, 28)
        assert np.array(result["occlusion"]).shape == (28, 28)
        assert abs(result["completeness_error"]) < 0.05
        assert Path(result["figure"]).read_bytes()[:4] == b"\x89PNG"
    assert sorted(path.name for path in out.iterdir()) == ["blob.explain.png", "seven.explain.png"]
    before = snapshot(out)
    code, _, stderr = run_cli(capsys, "--threads", "1", "explain", checkpoint, images, "--out", out)
    assert_one_line_error(code, stderr, "exists already", "--force")
    assert snapshot(out) == before  # refused before any work: nothing replaced
    assert run_cli(capsys, "--threads", "1", "explain", checkpoint, images, "--out", out, "--force")[0] == 0


def test_explain_refuses_an_out_folder_that_is_a_file_and_reports_unreadable_images(tmp_path, capsys):
    checkpoint = save_untrained_checkpoints(tmp_path, names=("ann",))[0]
    draw_seven().save(tmp_path / "seven.png")
    code, _, stderr = run_cli(capsys, "explain", checkpoint, tmp_path / "seven.png", "--out", checkpoint)
    assert_one_line_error(code, stderr, "is a file, not a folder")
    (tmp_path / "broken.png").write_bytes(b"not an image")
    code, stdout, stderr = run_cli(capsys, "--threads", "1", "explain", checkpoint, tmp_path / "seven.png",
                                   tmp_path / "broken.png", "--out", tmp_path / "figures")
    assert code == 2 and "broken.png" in stderr and "seven.png" in stdout
    assert (tmp_path / "figures" / "seven.explain.png").is_file()


@pytest.fixture(scope="module")
def explained_run(tmp_path_factory):
    """Two models, one epoch on the tiny dataset, with --explain."""
    from mnistlab.cli.main import main

    folder = tmp_path_factory.mktemp("explain")
    with pytest.MonkeyPatch.context() as monkeypatch:
        _, data_dir, arrays, _ = register_tiny_dataset(folder / "data", monkeypatch)
        out = folder / "run"
        assert main(["--quiet", "--threads", "1", "--data-dir", str(data_dir), "compare", "--dataset", "tiny",
                     "--models", "logreg,cnn", "--epochs", "1", "--explain", "--out", str(out)]) == 0
        yield out, data_dir, arrays, monkeypatch


def test_compare_explain_shows_the_same_test_digits_for_every_model(explained_run):
    out, _, arrays, _ = explained_run
    columns = read_attributions(out)
    expected = first_of_each_class(arrays["test_labels"], 10, 2)
    assert columns["indices"].tolist() == expected.tolist()
    np.testing.assert_array_equal(columns["images"], arrays["test_images"][expected])
    for name in ("logreg", "cnn"):
        assert columns[f"integrated_gradients__{name}"].shape == (20, 28, 28)
        assert columns[f"class_means__{name}"].shape == (10, 28, 28)
        for per_class in (False, True):
            assert (out / attribution_plot_name(name, per_class)).read_bytes()[:4] == b"\x89PNG"
    report = (out / "report.md").read_text()
    assert "## What the models look at" in report and "## Hard digits" in report
    own = {path.name for path in run_files(out, "compare")}  # what --force deletes
    assert {ATTRIBUTIONS_FILE, "hard_digits.png", attribution_plot_name("cnn"),
            attribution_plot_name("cnn", per_class=True)} <= own
    assert f"]({attribution_plot_name('cnn')})" in report


@pytest.mark.slow  # seconds of work: make test runs it, the fast suite leaves it out
def test_report_explain_adds_the_same_attributions_to_a_plain_run(explained_run, tmp_path, capsys):
    out, data_dir, _, _ = explained_run
    plain = tmp_path / "plain"
    argv = ["--quiet", "--threads", "1", "--data-dir", data_dir, "compare", "--dataset", "tiny", "--models",
            "logreg,cnn", "--epochs", "1", "--out", plain]
    assert run_cli(capsys, *argv)[0] == 0
    assert not (plain / ATTRIBUTIONS_FILE).exists()
    assert "What the models look at" not in (plain / "report.md").read_text()
    assert run_cli(capsys, "--quiet", "--threads", "1", "--data-dir", data_dir, "report", plain, "--explain")[0] == 0
    first, second = read_attributions(out), read_attributions(plain)
    assert sorted(first) == sorted(second)
    for key in first:
        np.testing.assert_array_equal(first[key], second[key])
    assert "What the models look at" in (plain / "report.md").read_text()


def test_html_report_is_one_file_that_opens_in_chromium_without_errors(explained_run, chromium):
    """Every figure is embedded (no other request), decodes, and has alt text that says what it shows."""
    out = explained_run[0]
    page = chromium.new_page()
    problems, requests = [], []
    page.on("console", lambda message: problems.append(message.text) if message.type in ("error", "warning") else None)
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.on("request", lambda request: requests.append(request.url))
    try:
        page.goto((out / "report.html").as_uri())
        page.wait_for_load_state("load")
        images = page.evaluate("() => [...document.images].map(image => ({alt: image.alt, width: image.naturalWidth, "
                               "complete: image.complete, embedded: image.src.startsWith('data:image/png;base64,')}))")
    finally:
        page.close()
    assert not problems, problems
    assert [url for url in requests if not url.startswith("data:")] == [(out / "report.html").as_uri()]
    figures = (out / "report.md").read_text().count("![")
    assert len(images) == figures >= 10  # hard digits and four attribution figures among them
    for image in images:
        assert image["embedded"] and image["complete"] and image["width"] > 0, image
        assert len(image["alt"].split()) >= 6, image["alt"]  # a sentence, not a file name


def test_attribute_runs_bounded_batches_whatever_the_number_of_images():
    """Memory per forward pass does not grow with the images given: at most BATCH inputs a pass."""
    from mnistlab.explain.attribution import BATCH

    model = build_model("ann")
    sizes = []
    model.register_forward_hook(lambda module, inputs, output: sizes.append(len(inputs[0])))
    maps = attribute(model, blobs(130), np.arange(130) % 10)
    assert maps.integrated_gradients.shape == maps.occlusion.shape == (130, 28, 28)
    assert max(sizes) <= BATCH and sum(sizes) > 130 * 32  # every IG step and occluded copy, in bounded passes
