"""The draw-a-digit page in a real browser: draw with the mouse, see every model's prediction, clear."""

import pytest

from conftest import ARTIFACTS
from mnistlab.serve import create_app
from serve_support import live_server, save_untrained_checkpoints

SEVEN = [[(70, 60), (210, 60), (150, 150), (110, 240)]]  # pen strokes in the 280x280 canvas's pixels


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
        top = page.evaluate("() => Object.fromEntries([...document.querySelectorAll('.model')]"
                            ".map(panel => [panel.dataset.model, panel.querySelector('.top').dataset.topClass]))")
        seen_ink = page.evaluate("() => document.getElementById('seen').getContext('2d')"
                                 ".getImageData(0, 0, 28, 28).data.filter((_, i) => i % 4 === 0).reduce((a, b) => a + b, 0)")
        screenshot.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(screenshot))
        page.click("#clear")
        cleared = page.evaluate("() => [...document.querySelectorAll('.model .top')].every(top => !top.dataset.topClass)")
    finally:
        page.close()
    assert not problems, problems
    return {"top": top, "seen_ink": seen_ink, "requests": requests, "cleared": cleared}


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


@pytest.mark.slow
def test_trained_models_read_a_seven_drawn_in_the_browser(chromium, seed_protocol_run):
    app = create_app([seed_protocol_run / "ann.pt", seed_protocol_run / "cnn.pt"])
    with live_server(app) as base_url:
        result = draw_on_page(chromium, base_url, SEVEN, ARTIFACTS / "serve-page.png")
    check_page_result(result, base_url)
    assert result["top"] == {"ann": "7", "cnn": "7"}
