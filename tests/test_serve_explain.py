"""`POST /api/explain` and the page's attribution toggle: maps for each model's top class, 4xx for bad input."""

import json

import numpy as np
import pytest
from fastapi.testclient import TestClient

from conftest import ARTIFACTS
from mnistlab.explain.attribution import attribute
from mnistlab.serve.app import create_app
from mnistlab.vision.loading import load_models
from serve_support import live_server, save_untrained_checkpoints
from synthetic_digits import blobs
from test_serve_browser import SEVEN

DIGIT = blobs(1, seed=4)[0]
PIXELS = np.round(DIGIT / 255, 4).ravel().tolist()


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    return save_untrained_checkpoints(tmp_path_factory.mktemp("checkpoints"))


@pytest.fixture(scope="module")
def client(checkpoints):
    return TestClient(create_app([checkpoints[0].parent], allowed_hosts=["testserver"]))


def test_explain_answers_each_models_maps_for_its_top_class(client, checkpoints):
    response = client.post("/api/explain", json=PIXELS)
    assert response.status_code == 200, response.text
    body = response.json()
    predicted = client.post("/api/predict", json=PIXELS).json()["predictions"]
    assert [item["model"] for item in body["attributions"]] == ["ann", "cnn"]
    models = load_models([checkpoints[0].parent])
    for item, prediction, loaded in zip(body["attributions"], predicted, models):
        assert item["top_class"] == prediction["top_class"]  # the class the page shows on top
        expected = attribute(loaded.model, DIGIT[None], [loaded.class_names.index(item["top_class"])])
        np.testing.assert_allclose(np.array(item["integrated_gradients"]).reshape(28, 28),
                                   expected.integrated_gradients[0], atol=2e-5)
        np.testing.assert_allclose(np.array(item["occlusion"]).reshape(28, 28), expected.occlusion[0], atol=2e-5)


@pytest.mark.parametrize("body, content_type, status, fragment", [
    (json.dumps([0.5] * 783), "application/json", 422, "783 items"),
    (json.dumps([0] * 784), "application/json", 422, "no digit"),
    (json.dumps([2] * 784), "application/json", 422, "pixel 0"),
    ("{not json", "application/json", 422, "not valid JSON"),
    ("[" * 150_000 + "]" * 150_000, "application/json", 413, "over the limit"),
    (b"\x89PNG....", "image/png", 415, "application/json"),
])
def test_bad_bodies_get_a_4xx_json_error(client, body, content_type, status, fragment):
    response = client.post("/api/explain", content=body, headers={"Content-Type": content_type})
    assert response.status_code == status, response.text
    assert set(response.json()) == {"error"} and fragment in response.json()["error"]


def test_without_captum_the_endpoint_says_how_to_install_it(client, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *rest: None if name == "captum" else real(name, *rest))
    response = client.post("/api/explain", json=PIXELS)
    assert response.status_code == 501 and "mnistlab[explain]" in response.json()["error"]


def test_the_endpoint_is_in_the_openapi_description(client):
    operation = client.get("/openapi.json").json()["paths"]["/api/explain"]["post"]
    assert {"200", "413", "415", "422", "501"} <= set(operation["responses"])
    assert "application/json" in operation["requestBody"]["content"]


def test_page_shows_each_models_attribution_when_toggled(chromium, tmp_path):
    """Draw a seven with the toggle on: under each model's probabilities, its map of the class it shows on top."""
    app = create_app(save_untrained_checkpoints(tmp_path))
    problems, requests = [], []
    with live_server(app) as base_url:
        page = chromium.new_page(viewport={"width": 980, "height": 640})
        page.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
        page.on("pageerror", lambda error: problems.append(str(error)))
        page.on("request", lambda request: requests.append(request.url))
        try:
            page.goto(base_url + "/")
            page.wait_for_selector(".model .bar", timeout=10_000)
            assert not page.locator(".model .attribution").first.is_visible()  # off until asked for
            page.check("#show-attributions")
            box = page.locator("#pad").bounding_box()
            scale = box["width"] / 280
            (x, y), *rest = SEVEN[0]
            page.mouse.move(box["x"] + x * scale, box["y"] + y * scale)
            page.mouse.down()
            for x, y in rest:
                page.mouse.move(box["x"] + x * scale, box["y"] + y * scale, steps=12)
            page.mouse.up()
            page.wait_for_function("() => [...document.querySelectorAll('.model')].every(panel => "
                                   "panel.querySelector('.top').dataset.topClass && panel.querySelector("
                                   "'.attribution canvas').dataset.drawn === panel.querySelector('.top')"
                                   ".dataset.topClass)", timeout=20_000)
            page.wait_for_load_state("networkidle")
            coloured = page.evaluate(
                "() => [...document.querySelectorAll('.attribution canvas')].map(canvas => { const d = canvas"
                ".getContext('2d').getImageData(0, 0, 28, 28).data; let n = 0; for (let i = 0; i < d.length; i += 4)"
                " if (d[i] !== d[i + 2]) n++; return n; })")
            visible = page.locator(".model .attribution").first.is_visible()
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "serve-page-attributions.png"))
            page.uncheck("#show-attributions")
            hidden = not page.locator(".model .attribution").first.is_visible()
        finally:
            page.close()
    assert not problems, problems
    assert visible and hidden
    assert len(coloured) == 2 and all(count > 20 for count in coloured), coloured  # red or blue pixels, not blank
    assert any(url.endswith("/api/explain") for url in requests)
    assert all(url.startswith(base_url) for url in requests), requests
