"""The JSON API: predictions for PNG, JPEG, multipart and JSON pixels; a 4xx JSON error for every bad input."""

import asyncio
import concurrent.futures
import json
import re
import socket

import numpy as np
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from mnistlab.training.checkpoint import save_checkpoint
from mnistlab.cli.main import main
from mnistlab.common.errors import CheckpointError
from mnistlab.models import build_model, count_parameters
from mnistlab.serve.app import create_app
from serve_support import draw_seven, encode, png_header_only, png_of_zeros, save_untrained_checkpoints

SEVEN_PNG = encode(draw_seven(size=(280, 280), box=(60, 40, 220, 240), width=18))


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    return save_untrained_checkpoints(tmp_path_factory.mktemp("checkpoints"))


@pytest.fixture(scope="module")
def client(checkpoints):
    return TestClient(create_app([checkpoints[0].parent], max_pixels=1_000_000, allowed_hosts=["testserver"]))


def assert_error(response, status):
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and isinstance(body["error"], str) and body["error"]
    return body["error"]


def assert_predictions(response):
    assert response.status_code == 200, response.text
    body = response.json()
    assert len(body["input"]) == 784 and all(type(v) in (int, float) and 0 <= v <= 1 for v in body["input"])
    assert [p["model"] for p in body["predictions"]] == ["ann", "cnn"]
    for prediction in body["predictions"]:
        probabilities = prediction["probabilities"]
        assert len(probabilities) == 10 and abs(sum(probabilities) - 1) < 1e-4
        assert prediction["top_class"] == prediction["classes"][int(np.argmax(probabilities))]
    return body


def test_health_and_models(client):
    assert client.get("/healthz").json() == {"status": "ok", "models": 2}
    models = client.get("/api/models").json()["models"]
    assert [(m["name"], m["dataset"], m["params"], m["test_accuracy"]) for m in models] == [
        ("ann", "mnist", 109_386, 0.1), ("cnn", "mnist", 121_930, 0.1)]


def test_predict_png_jpeg_multipart(client):
    from_png = assert_predictions(client.post("/api/predict", content=SEVEN_PNG, headers={"Content-Type": "image/png"}))
    seen = np.array(from_png["input"]).reshape(28, 28)
    assert seen.max() == 1 and seen[0].max() == 0  # the preprocessed, MNIST-style input, on the JSON pixels' scale
    jpeg = encode(draw_seven(size=(280, 280), box=(60, 40, 220, 240), width=18).convert("RGB"), "JPEG")
    assert_predictions(client.post("/api/predict", content=jpeg, headers={"Content-Type": "image/jpeg"}))
    multipart = assert_predictions(client.post("/api/predict", files={"image": ("seven.png", SEVEN_PNG, "image/png")}))
    assert multipart["input"] == from_png["input"]


def test_predict_json_pixels_used_as_is(client):
    pixels = np.zeros((28, 28))
    pixels[6:22, 12:15] = 1.0  # a "1", already MNIST-style
    flat = assert_predictions(client.post("/api/predict", json=pixels.ravel().tolist()))
    assert flat["input"] == pixels.ravel().tolist()  # the same scale both ways
    nested = assert_predictions(client.post("/api/predict", json=pixels.tolist()))
    wrapped = assert_predictions(client.post("/api/predict", json={"pixels": pixels.ravel().tolist()}))
    assert nested["predictions"] == flat["predictions"] == wrapped["predictions"]


def test_the_input_seen_posted_back_gives_the_same_answer(client):
    """`input` is on the JSON pixels' scale ([0, 1], 4 decimals): posting it back reproduces the 28x28 exactly."""
    from_png = assert_predictions(client.post("/api/predict", content=SEVEN_PNG, headers={"Content-Type": "image/png"}))
    assert any(0 < value < 1 for value in from_png["input"])  # anti-aliased levels survive the rounding
    again = assert_predictions(client.post("/api/predict", json={"pixels": from_png["input"]}))
    assert again == from_png


def post_raw(client, data, content_type):
    headers = {"Content-Type": content_type} if content_type else {}
    return client.post("/api/predict", content=data, headers=headers)


@pytest.mark.parametrize("data, content_type, status, fragment", [
    (SEVEN_PNG, "text/plain", 415, "not accepted"),
    (SEVEN_PNG, None, 415, "not accepted"),
    (b"GIF89a this is not a png", "image/png", 422, "not an image"),
    (encode(Image.new("L", (40, 40), 255), "GIF"), "image/png", 422, "not an image"),  # only PNG/JPEG decode
    (SEVEN_PNG[: len(SEVEN_PNG) // 2], "image/png", 422, "truncated"),
    (b"", "image/png", 422, "empty"),
    (encode(Image.new("RGB", (280, 280), "white")), "image/png", 422, "no digit found"),  # an empty canvas
    (encode(Image.new("RGBA", (280, 280), (0, 0, 0, 0))), "image/png", 422, "no digit found"),
    (encode(Image.new("L", (1200, 1200), 255)), "image/png", 422, "1200x1200 = 1,440,000 pixels, over the limit"),
    (png_header_only(20_000, 20_000), "image/png", 422, "too large"),
    (b"[0.5, 0.5", "application/json", 422, "not valid JSON"),
    (b"\xff\xfe\x00", "application/json", 422, "not valid JSON"),
    (json.dumps([0.5] * 783).encode(), "application/json", 422, "783 items"),
    (json.dumps([[0.5] * 27] * 28).encode(), "application/json", 422, "row 0 has 27 items"),
    (json.dumps([[0.5] * 28] * 5 + [[0.5] * 27] + [[0.5] * 28] * 22).encode(), "application/json", 422,
     "row 5 has 27 items"),
    (json.dumps([[0.5] * 28] * 27 + [0.5]).encode(), "application/json", 422, "row 27 has a JSON float"),
    (json.dumps({"image": [0.5] * 784}).encode(), "application/json", 422, 'keys "image"; send {"pixels": '),
    (json.dumps("0.5").encode(), "application/json", 422, "JSON str"),
    (json.dumps([0.5] * 783 + [255]).encode(), "application/json", 422, "pixel 783 is 255"),
    (json.dumps([-0.1] + [0.5] * 783).encode(), "application/json", 422, "pixel 0 is -0.1"),
    (json.dumps(["0.5"] * 784).encode(), "application/json", 422, "pixel 0 is \"0.5\""),
    (json.dumps([True] * 784).encode(), "application/json", 422, "pixel 0 is true"),
    (("[NaN" + ", 0.5" * 783 + "]").encode(), "application/json", 422, "pixel 0 is NaN"),
    (json.dumps([0] * 784).encode(), "application/json", 422, "no digit found"),  # an empty canvas as pixels
    (b"[" * 100_000 + b"]" * 100_000, "application/json", 422, "not valid JSON"),  # nesting that exhausts recursion
])
def test_bad_input_gets_a_4xx_json_error(client, data, content_type, status, fragment):
    message = assert_error(post_raw(client, data, content_type), status)
    assert fragment in message
    assert_predictions(post_raw(client, SEVEN_PNG, "image/png"))  # and the server keeps serving


def test_multipart_without_an_image_field(client):
    message = assert_error(client.post("/api/predict", files={"picture": ("x.png", SEVEN_PNG, "image/png")}), 422)
    assert "'image'" in message
    message = assert_error(client.post("/api/predict", files={"image": ("x.png", SEVEN_PNG, "image/png")},
                                       data={"note": "mine"}), 422)  # the documented body has no other field
    assert "no other (it has 'note')" in message
    assert_error(client.post("/api/predict", content=b"--x\r\n", headers={"Content-Type": "multipart/form-data"}), 400)


def test_body_over_the_limit_is_refused_from_content_length(client):
    body = b"\x89PNG" + b"\0" * (2 * 1024 * 1024)  # default limit: 2 MiB
    assert "over the limit of 2,097,152" in assert_error(post_raw(client, body, "image/png"), 413)
    assert_error(client.post("/api/predict", files={"image": ("big.png", body, "image/png")}), 413)


def test_body_over_the_limit_is_refused_while_streaming(checkpoints):
    """No Content-Length (chunked upload): the server stops reading once the limit is passed."""
    app = create_app([checkpoints[0]], max_body_bytes=100_000)
    chunks_sent, sent = [0], []

    async def receive():
        chunks_sent[0] += 1
        return {"type": "http.request", "body": b"\0" * 10_000, "more_body": chunks_sent[0] < 1000}

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
             "path": "/api/predict", "raw_path": b"/api/predict", "root_path": "", "query_string": b"",
             "headers": [(b"host", b"127.0.0.1:8000"), (b"content-type", b"image/png"),
                         (b"transfer-encoding", b"chunked")],
             "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 80)}
    # A fresh thread has no event loop: the session's Playwright browser keeps one running in this thread.
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(asyncio.run, app(scope, receive, send)).result()
    assert sent[0]["status"] == 413
    assert "over the limit of 100,000" in json.loads(sent[1]["body"])["error"]
    assert chunks_sent[0] == 11  # 110,000 bytes read of the 10 MB offered


def test_pages_and_docs_use_no_external_resources(client):
    page = client.get("/")
    assert page.status_code == 200 and "<canvas" in page.text
    assert "default-src 'self'" in page.headers["content-security-policy"]
    for path in ("/", "/static/app.js", "/static/style.css"):
        text = client.get(path).text
        assert not re.search(r"(https?:)?//[a-z0-9.-]+\.[a-z]{2,}", text), path  # no CDN, no third-party host
    docs = client.get("/docs")
    assert docs.status_code == 200 and "/docs-assets/swagger-ui-bundle.js" in docs.text
    assert not re.search(r"(src|href)=[\"']?(https?:)?//", docs.text)  # the docs viewer loads nothing from outside
    assert "SwaggerUIBundle" in client.get("/docs-assets/swagger-ui-bundle.js").text
    assert client.get("/docs-assets/..%2Fpyproject.toml").status_code == 404
    spec = client.get("/openapi.json").json()
    content = spec["paths"]["/api/predict"]["post"]["requestBody"]["content"]
    assert set(content) == {"image/png", "image/jpeg", "multipart/form-data", "application/json"}
    assert {"/api/models", "/healthz"} <= set(spec["paths"])


@pytest.mark.parametrize("path", ["/static/../serve.py", "/static/%2e%2e%2fserve.py", "/static/..%2F__init__.py",
                                  "/static/index.html%00", "/etc/passwd", "/static//etc/passwd"])
def test_no_endpoint_reads_a_client_chosen_path(client, path):
    assert client.get(path).status_code == 404


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.binary(max_size=3000),
       content_type=st.sampled_from(["image/png", "image/jpeg", "application/json", "multipart/form-data",
                                     "application/octet-stream", ""]))
def test_fuzz_random_bytes_never_give_a_5xx(client, data, content_type):
    response = post_raw(client, data, content_type)
    assert response.status_code < 500, response.text
    assert response.status_code == 200 or "error" in response.json()


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example])
@given(payload=st.one_of(
    st.recursive(st.none() | st.booleans() | st.floats() | st.text(max_size=5),
                 lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=5), inner, max_size=5)),
    st.lists(st.floats(allow_nan=True, allow_infinity=True), min_size=780, max_size=790),
    st.lists(st.floats(min_value=0, max_value=1), min_size=784, max_size=784),
    st.lists(st.integers(min_value=-2, max_value=300), min_size=784, max_size=784),
    st.lists(st.lists(st.floats(min_value=0, max_value=1), min_size=27, max_size=29), min_size=27, max_size=29),
))
@pytest.mark.slow  # seconds of work: make test runs it, the fast suite leaves it out
def test_fuzz_random_arrays_never_give_a_5xx(client, payload):
    response = client.post("/api/predict", content=json.dumps(payload), headers={"Content-Type": "application/json"})
    assert response.status_code in (200, 422), response.text


def test_serve_with_a_missing_checkpoint_is_a_one_line_error(tmp_path, capsys):
    assert main(["serve", "--checkpoints", str(tmp_path / "none.pt")]) == 2
    assert "none.pt" in capsys.readouterr().err


def test_json_body_over_its_own_limit_is_refused_unparsed(client):
    body = json.dumps([0.5] * 784 + [0.25] * 60_000).encode()  # well under the 2 MiB body limit, over 256 KiB
    assert "over the limit of 262,144" in assert_error(post_raw(client, body, "application/json"), 413)


def test_decode_budget_counts_bit_depth(checkpoints):
    """400x400 RGBA is 640,000 bytes decoded at 8 bits a sample and 1,280,000 at 16: only the first fits 1 MB."""
    client = TestClient(create_app([checkpoints[0]], max_decode_bytes=1_000_000, allowed_hosts=["testserver"]))
    sixteen = assert_error(post_raw(client, png_of_zeros(400, 400, 16, 6, band=(100, 300)), "image/png"), 422)
    assert "400x400 RGBA at 16 bits a sample = 1,280,000 bytes decoded, over the limit of 1,000,000" in sixteen
    eight = client.post("/api/predict", content=png_of_zeros(400, 400, 8, 6, band=(100, 300), columns=(150, 260)),
                        headers={"Content-Type": "image/png"})
    assert eight.status_code == 200, eight.text


@pytest.mark.parametrize("path", ["/", "/healthz", "/api/models", "/static/app.js", "/docs", "/openapi.json",
                                  "/docs-assets/swagger-ui.css"])
def test_head_answers_wherever_get_does(client, path):
    got, head = client.get(path), client.head(path)
    assert got.status_code == head.status_code == 200
    assert head.content == b"" and head.headers["content-length"] == got.headers["content-length"]
    assert head.headers["content-type"] == got.headers["content-type"]


def test_405_names_the_allowed_methods(client):
    response = client.get("/api/predict")
    assert assert_error(response, 405) and response.headers["allow"] == "POST"
    response = client.post("/healthz")
    assert assert_error(response, 405) and response.headers["allow"] == "GET, HEAD"


@pytest.mark.parametrize("method, path", [("GET", "/"), ("GET", "/healthz"), ("GET", "/api/models"), ("GET", "/docs"),
                                          ("GET", "/openapi.json"), ("GET", "/static/nope"), ("POST", "/api/predict"),
                                          ("GET", "/api/predict"), ("HEAD", "/healthz")])
def test_every_response_says_nosniff_and_forbids_framing(client, method, path):
    response = client.request(method, path)
    assert response.headers["x-content-type-options"] == "nosniff"
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]


def test_the_page_keeps_its_content_security_policy(client):
    for path in ("/", "/static/app.js"):
        assert client.get(path).headers["content-security-policy"].startswith("default-src 'self'")
    assert "script-src 'self' 'unsafe-inline'" in client.get("/docs").headers["content-security-policy"]


def test_host_header_must_be_an_allowed_name(checkpoints):
    app = create_app([checkpoints[0]])  # default: this machine's loopback names
    for base_url in ("http://127.0.0.1:8000", "http://localhost:8000", "http://[::1]:8000", "http://LOCALHOST."):
        assert TestClient(app, base_url=base_url).get("/healthz").status_code == 200, base_url
    for base_url in ("http://attacker.example", "http://localhost.attacker.example:8000", "http://127.0.0.2"):
        message = assert_error(TestClient(app, base_url=base_url).get("/api/models"), 400)
        assert "is not served here" in message and "--allowed-host" in message
    assert_error(TestClient(app).get("/healthz"), 400)  # TestClient's own "testserver"
    named = create_app([checkpoints[0]], allowed_hosts=["digits.lan"])
    assert TestClient(named, base_url="http://digits.lan:8000").get("/healthz").status_code == 200
    assert_error(TestClient(named, base_url="http://127.0.0.1:8000").get("/healthz"), 400)


@pytest.mark.parametrize("headers, status", [
    ({}, 200),  # scripts and curl send no Origin
    ({"Origin": "http://testserver"}, 200),  # the server's own page
    ({"Origin": "http://testserver:8000", "Sec-Fetch-Site": "same-origin"}, 200),
    ({"Origin": "https://attacker.example"}, 403),  # a cross-site form post
    ({"Origin": "null"}, 403),  # a sandboxed frame or a file:// page
    ({"Sec-Fetch-Site": "cross-site"}, 403),
])
def test_cross_site_posts_are_refused(client, headers, status):
    response = client.post("/api/predict", files={"image": ("seven.png", SEVEN_PNG, "image/png")}, headers=headers)
    assert response.status_code == status, response.text
    if status == 403:
        assert "cross-site request refused" in response.json()["error"]


def test_bad_checkpoints_are_skipped_when_others_load(tmp_path):
    good = save_untrained_checkpoints(tmp_path, names=("ann",))[0]
    (tmp_path / "broken.pt").write_bytes(b"not a checkpoint")
    skipped = []
    app = create_app([tmp_path], skipped=skipped, allowed_hosts=["testserver"])
    assert [loaded.name for loaded in app.state.models] == ["ann"] and len(skipped) == 1
    assert "broken.pt" in skipped[0] and "\n" not in skipped[0]
    good.unlink()
    with pytest.raises(CheckpointError, match="none of the checkpoints could be loaded: .*broken.pt"):
        create_app([tmp_path], skipped=[])
    with pytest.raises(CheckpointError, match="broken.pt"):  # without a skipped list the first bad one raises
        create_app([tmp_path / "broken.pt"])


@pytest.mark.parametrize("argv, fragment", [
    (["--port", "99999"], "--port 99999 is out of range; choose 1 to 65535"),
    (["--port", "0"], "--port 0 is out of range"),
    (["--host", "no-such-host.invalid"], "--host 'no-such-host.invalid' is not an address of this machine"),
])
def test_serve_with_a_bad_address_is_a_one_line_error(checkpoints, capsys, argv, fragment):
    assert main(["serve", "--checkpoints", str(checkpoints[0]), *argv]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and fragment in err


def test_serve_on_a_busy_port_says_so_before_serving(checkpoints, capsys):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert main(["serve", "--checkpoints", str(checkpoints[0]), "--port", str(port)]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and f"cannot listen on 127.0.0.1:{port}" in err


def test_checkpoints_of_the_same_model_are_named_after_their_files(tmp_path):
    folder, other = tmp_path / "runs", tmp_path / "other"
    folder.mkdir(), other.mkdir()
    for stem in ("cnn-seed1", "best", "cnn"):  # three checkpoints of the model "cnn" in one folder
        save_untrained_checkpoints(folder, names=("cnn",))[0].rename(folder / f"{stem}.pt")
    save_untrained_checkpoints(folder, names=("ann",))
    save_untrained_checkpoints(other, names=("cnn",))  # other/cnn.pt: the same stem as runs/cnn.pt
    models = TestClient(create_app([folder, other], allowed_hosts=["testserver"])).get("/api/models").json()["models"]
    assert [(model["name"], model["checkpoint"]) for model in models] == [
        ("ann", "ann.pt"), ("best", "best.pt"), ("cnn-seed1", "cnn-seed1.pt"), ("runs/cnn", "cnn.pt"),
        ("other/cnn", "cnn.pt")]


def test_models_show_no_server_path(tmp_path):
    """A model trained on one's own data records the folder's absolute path as its dataset: only its name shows."""
    data = tmp_path / "private" / "my-digits"
    model = build_model("ann")
    save_checkpoint(tmp_path / "ann.pt", model, "ann", config={"seed": 0},
                    dataset={"name": str(data.resolve()), "class_names": [str(digit) for digit in range(10)]},
                    metrics={"test_accuracy": 0.5, "params": count_parameters(model)})
    client = TestClient(create_app([tmp_path / "ann.pt"], allowed_hosts=["testserver"]))
    models = client.get("/api/models")
    answer = client.post("/api/predict", content=SEVEN_PNG, headers={"Content-Type": "image/png"})
    assert models.json()["models"][0]["dataset"] == answer.json()["predictions"][0]["dataset"] == "my-digits"
    assert str(tmp_path) not in models.text + answer.text and "private" not in models.text + answer.text


def test_openapi_documents_every_status_with_its_schema(client):
    """Each status the API answers is in its OpenAPI description; every error has the {"error": ...} schema
    (Schemathesis holds a live server to this in test_serve_contract.py)."""
    spec = client.get("/openapi.json").json()
    predict = spec["paths"]["/api/predict"]["post"]
    assert sorted(predict["responses"]) == ["200", "400", "403", "413", "415", "422"]
    for status, response in predict["responses"].items():
        schema = response["content"]["application/json"]["schema"]
        required = [option["required"] for option in schema.get("oneOf", [schema])]
        assert required == ([["input", "predictions"], ["number", "digits"]] if status == "200" else [["error"]])
    assert [(parameter["name"], parameter["in"]) for parameter in predict["parameters"]] == [("number", "query")]
    assert set(predict["requestBody"]["content"]) == {"image/png", "image/jpeg", "multipart/form-data",
                                                      "application/json"}
    for path in ("/api/models", "/healthz"):
        assert sorted(spec["paths"][path]["get"]["responses"]) == ["200", "400"]
