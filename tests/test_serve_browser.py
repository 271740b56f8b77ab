"""The draw-a-digit page in a real browser: draw with the mouse or upload a photo, see every model's prediction."""

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import ARTIFACTS
from mnistlab.evaluation.photo_eval import render_photo
from mnistlab.serve.app import create_app
from serve_support import draw_seven, live_server, save_untrained_checkpoints

SEVEN = [[(70, 60), (210, 60), (150, 150), (110, 240)]]  # pen strokes in the 280x280 canvas's pixels


def read_panels(page) -> tuple[dict, dict, int]:
    """What the page shows: each model's top class, whether it is flagged "not sure", and the 28x28 preview's ink."""
    top = page.evaluate("() => Object.fromEntries([...document.querySelectorAll('.model')]"
                        ".map(panel => [panel.dataset.model, panel.querySelector('.top').dataset.topClass]))")
    unsure = page.evaluate("() => Object.fromEntries([...document.querySelectorAll('.model')]"
                           ".map(panel => [panel.dataset.model, !!panel.querySelector('.top .not-sure')]))")
    seen_ink = page.evaluate("() => document.getElementById('seen').getContext('2d')"
                             ".getImageData(0, 0, 28, 28).data.filter((_, i) => i % 4 === 0).reduce((a, b) => a + b, 0)")
    return top, unsure, seen_ink


def draw_on_page(browser, base_url: str, strokes, screenshot) -> dict:
    """Open the page, draw `strokes` with mouse events, wait for every model's answer, save a screenshot.

    Returns {"top": {model: top class}, "seen_ink": sum of the 28x28 preview, "requests": URLs the page asked for}.
    """
    page = browser.new_page(viewport={"width": 980, "height": 560})
    requests, problems = [], []
    page.on("request", lambda request: requests.append(request.url))
    page.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: problems.append(str(error)))
    try:
        page.goto(base_url + "/")
        page.wait_for_selector(".model .bar", timeout=10_000)
        box = page.locator("#pad").bounding_box()
        scale = box["width"] / 280
        for stroke in strokes:
            (x, y), *rest = stroke
            page.mouse.move(box["x"] + x * scale, box["y"] + y * scale)
            page.mouse.down()
            for x, y in rest:
                page.mouse.move(box["x"] + x * scale, box["y"] + y * scale, steps=12)
            page.mouse.up()
        page.wait_for_function(
            "() => [...document.querySelectorAll('.model .top')].every(top => top.dataset.topClass)", timeout=10_000)
        page.wait_for_load_state("networkidle")
        page.wait_for_timeout(300)  # the last answer's bars finish their 0.12 s transition
        top, unsure, seen_ink = read_panels(page)
        screenshot.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(screenshot))
        page.click("#clear")
        cleared = page.evaluate("() => [...document.querySelectorAll('.model .top')].every(top => !top.dataset.topClass)")
    finally:
        page.close()
    assert not problems, problems
    return {"top": top, "seen_ink": seen_ink, "requests": requests, "cleared": cleared, "not_sure": unsure}


def check_page_result(result: dict, base_url: str) -> None:
    assert set(result["top"]) == {"ann", "cnn"}
    assert all(label in "0123456789" and label for label in result["top"].values())
    assert result["seen_ink"] > 20 * 255  # the 28x28 image the models saw is shown, with a digit in it
    assert result["cleared"]
    assert all(url.startswith(base_url) for url in result["requests"]), result["requests"]  # nothing external
    assert any(url.endswith("/api/predict") for url in result["requests"])


def test_draw_a_digit_and_see_both_models(chromium, tmp_path):
    app = create_app(save_untrained_checkpoints(tmp_path))
    with live_server(app) as base_url:
        result = draw_on_page(chromium, base_url, SEVEN, ARTIFACTS / "serve-page-untrained.png")
    check_page_result(result, base_url)
    assert (ARTIFACTS / "serve-page-untrained.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize(("threshold", "flagged"), [(None, False), (1.0, True), (0.0, False)])
def test_a_prediction_below_the_checkpoints_threshold_is_marked_not_sure(chromium, tmp_path, threshold, flagged):
    """A top probability under the checkpoint's "not sure" threshold (here: every one, or none) shows a flag."""
    app = create_app(save_untrained_checkpoints(tmp_path, not_sure_threshold=threshold))
    with live_server(app) as base_url:
        result = draw_on_page(chromium, base_url, SEVEN, ARTIFACTS / f"serve-page-not-sure-{threshold}.png")
    assert result["not_sure"] == {"ann": flagged, "cnn": flagged}


@pytest.mark.slow
def test_trained_models_read_a_seven_drawn_in_the_browser(chromium, seed_protocol_run):
    app = create_app([seed_protocol_run / "ann.pt", seed_protocol_run / "cnn.pt"])
    with live_server(app) as base_url:
        result = draw_on_page(chromium, base_url, SEVEN, ARTIFACTS / "serve-page.png")
    check_page_result(result, base_url)
    assert result["top"] == {"ann": "7", "cnn": "7"}


def upload_on_page(browser, base_url: str, photo: Path, screenshot: Path) -> dict:
    """Open the page, choose `photo` with "Upload a photo", wait for the answer (or the error), save a screenshot.

    Returns {"top": {model: top class}, "seen_ink", "pad_ink" (non-white pixels on the pad), "status", "posts":
    the content types of the requests to /api/predict, "requests"}.
    """
    page = browser.new_page(viewport={"width": 980, "height": 560})
    requests, posts, problems = [], [], []
    page.on("request", lambda request: requests.append(request.url))
    page.on("request", lambda request: posts.append(request.headers.get("content-type"))
            if request.url.endswith("/api/predict") else None)
    page.on("console", lambda message: problems.append(message.text)
            if message.type == "error" and "422" not in message.text else None)  # "no digit found" is a 422
    page.on("pageerror", lambda error: problems.append(str(error)))
    try:
        page.goto(base_url + "/")
        page.wait_for_selector(".model .bar", timeout=10_000)
        page.set_input_files("#photo", str(photo))
        page.wait_for_function(
            "() => [...document.querySelectorAll('.model .top')].every(top => top.dataset.topClass)"
            " || document.getElementById('status').textContent.includes('no digit')", timeout=20_000)
        page.wait_for_load_state("networkidle")
        page.wait_for_timeout(300)
        top, unsure, seen_ink = read_panels(page)
        pad_ink = page.evaluate("() => document.getElementById('pad').getContext('2d').getImageData(0, 0, 280, 280)"
                                ".data.filter((value, i) => i % 4 === 0 && value < 200).length")
        status = page.text_content("#status")
        screenshot.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(screenshot))
    finally:
        page.close()
    assert not problems, problems
    assert all(url.startswith(base_url) for url in requests), requests  # nothing external
    return {"top": top, "seen_ink": seen_ink, "pad_ink": pad_ink, "status": status, "posts": posts}


def photo_of_a_seven(folder: Path) -> Path:
    """The 7 on a sheet lit unevenly, with sensor noise, as an RGB PNG over the server's 2 MiB body limit."""
    sheet = np.asarray(draw_seven(size=(1600, 1200), box=(500, 300, 900, 850), width=28), dtype=np.float32)
    light = np.linspace(1.0, 0.55, sheet.shape[1], dtype=np.float32)[None, :]  # the right side half as bright
    noise = np.random.default_rng(0).normal(0, 8, sheet.shape + (3,))
    pixels = np.clip(sheet[..., None] * light[..., None] + noise, 0, 255).astype(np.uint8)
    path = folder / "seven-photo.png"
    Image.fromarray(pixels).save(path)
    return path


def test_upload_a_photo_and_see_what_the_models_saw(chromium, tmp_path):
    photo = photo_of_a_seven(tmp_path)
    assert photo.stat().st_size > 2 * 1024 * 1024  # the page must scale it down: the server would refuse it (413)
    app = create_app(save_untrained_checkpoints(tmp_path))
    with live_server(app) as base_url:
        result = upload_on_page(chromium, base_url, photo, ARTIFACTS / "serve-page-photo-untrained.png")
    assert set(result["top"]) == {"ann", "cnn"} and all(label in "0123456789" and label for label in result["top"].values())
    assert result["seen_ink"] > 20 * 255  # the 28x28 the models saw, with the digit in it
    assert result["pad_ink"] > 200  # the photo is shown on the pad
    assert result["posts"] == ["image/jpeg"]  # scaled down in the page and sent once


def test_upload_a_blank_photo_says_no_digit(chromium, tmp_path):
    blank = tmp_path / "blank.jpg"
    Image.new("RGB", (800, 600), (235, 232, 220)).save(blank, quality=85)
    app = create_app(save_untrained_checkpoints(tmp_path))
    with live_server(app) as base_url:
        result = upload_on_page(chromium, base_url, blank, ARTIFACTS / "serve-page-photo-blank.png")
    assert "blank.jpg: no digit found" in result["status"]
    assert result["seen_ink"] == 0 and not any(result["top"].values())
    assert result["posts"] == ["image/jpeg"]  # small enough: sent as it is


@pytest.mark.slow
def test_trained_cnn_reads_a_photo_uploaded_in_the_browser(chromium, seed_protocol_run, real_data_dir, tmp_path):
    """MNIST test digit 0 (a 7) on paper half in shadow, photographed: the page shows what the models saw."""
    from mnistlab.data.datasets import load_dataset

    dataset = load_dataset("mnist", real_data_dir, progress=False)
    data, suffix = render_photo(dataset.test_images[0], "shadow", np.random.default_rng(0))
    photo = tmp_path / f"shadowed-seven{suffix}"
    photo.write_bytes(data)
    app = create_app([seed_protocol_run / "ann.pt", seed_protocol_run / "cnn.pt"])
    with live_server(app) as base_url:
        result = upload_on_page(chromium, base_url, photo, ARTIFACTS / "serve-page-photo.png")
    assert dataset.test_labels[0] == 7 and result["top"]["cnn"] == "7", result
    assert result["seen_ink"] > 20 * 255
