"""A draw-a-digit page and a JSON API over loaded checkpoints (FastAPI, served by uvicorn).

    mnistlab serve --checkpoints runs/x      # then open http://127.0.0.1:8000/

Endpoints: `GET /` the page (no external resources), `POST /api/predict`,
`GET /api/models`, `GET /healthz`, OpenAPI at `/docs` and `/openapi.json`.
Bad input gets a 4xx with `{"error": "..."}` and the server keeps serving:
bodies over `max_body_bytes` are refused from Content-Length before reading,
or while streaming, before anything is decoded; images over `max_pixels` are
refused from their header. No endpoint touches a path the client chooses.
"""

from __future__ import annotations

import json
import os
from importlib import resources
from pathlib import Path

import numpy as np
from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException

from mnistlab import __version__
from mnistlab.errors import PreprocessError
from mnistlab.predict import LoadedModel, load_models, predict_probabilities
from mnistlab.preprocess import NO_DIGIT, SIZE, decode_image, preprocess_image

MAX_BODY_BYTES = 2 * 1024 * 1024  # bytes; request bodies over this get 413 before they are decoded
MAX_PIXELS = 16_777_216  # decoded pixels (width x height) per uploaded image: 4096 x 4096
IMAGE_TYPES = ("image/png", "image/jpeg")  # raw-body content types; the bytes are sniffed, only PNG/JPEG decode
UPLOAD_FIELD = "image"  # the multipart/form-data file field
PAGE_FILES = {"index.html": "text/html; charset=utf-8", "app.js": "text/javascript; charset=utf-8",
              "style.css": "text/css; charset=utf-8"}
PAGE_HEADERS = {  # the page may talk to this server only: no CDN, no third-party anything
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
}

PREDICT_BODY_DOC = {  # request body schema for /docs: the endpoint parses the body itself to enforce limits
    "required": True,
    "content": {
        "image/png": {"schema": {"type": "string", "format": "binary"}},
        "image/jpeg": {"schema": {"type": "string", "format": "binary"}},
        "multipart/form-data": {"schema": {"type": "object", "required": [UPLOAD_FIELD], "properties": {
            UPLOAD_FIELD: {"type": "string", "format": "binary", "description": "a PNG or JPEG file"}}}},
        "application/json": {"schema": {
            "description": "an MNIST-style image fed to the models as is: 784 numbers in [0, 1] row by row "
                           "(or 28 arrays of 28), 0 = background, 1 = ink (white digit on black); "
                           "divide 0-255 values by 255",
            "type": "array", "minItems": 784, "maxItems": 784,
            "items": {"type": "number", "minimum": 0, "maximum": 1}}},
    },
}


class BodySizeLimit:
    """ASGI middleware: 413 for bodies over `max_body_bytes`, from Content-Length or counted while streaming."""

    def __init__(self, app, max_body_bytes: int):
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None:
            if not declared.isdigit():
                await error_response(400, f"Content-Length {declared[:20]!r} is not a byte count")(scope, receive, send)
                return
            if int(declared) > self.max_body_bytes:
                await error_response(413, self.too_large(int(declared)))(scope, receive, send)
                return
        received = 0

        async def counting_receive():
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:  # chunked uploads have no Content-Length: stop reading here
                    raise HTTPException(413, self.too_large(received, at_least=True))
            return message

        await self.app(scope, counting_receive, send)

    def too_large(self, size: int, at_least: bool = False) -> str:
        return (f"request body is {'over ' if at_least else ''}{size:,} bytes, over the limit of "
                f"{self.max_body_bytes:,}; send a smaller image (a 280x280 PNG is about 10 kB)")


def error_response(status: int, message: str) -> JSONResponse:
    """The API's error shape: {"error": message}."""
    return JSONResponse({"error": message}, status_code=status)


def pixels_from_json(payload) -> np.ndarray:
    """A JSON value -> (28, 28) uint8; `ValueError` naming what is wrong. Accepts 784 numbers or 28 rows of 28."""
    if isinstance(payload, dict) and list(payload) == ["pixels"]:
        payload = payload["pixels"]
    if isinstance(payload, list) and len(payload) == SIZE and all(isinstance(row, list) and len(row) == SIZE
                                                                   for row in payload):
        values = [value for row in payload for value in row]
    elif isinstance(payload, list) and len(payload) == SIZE * SIZE:
        values = payload
    else:
        shape = f"an array of {len(payload)} items" if isinstance(payload, list) else f"a JSON {type(payload).__name__}"
        raise ValueError(f"got {shape}; send a JSON array of 784 numbers (28x28, row by row) or 28 arrays of 28")
    for index, value in enumerate(values):
        if type(value) not in (int, float) or not 0 <= value <= 1:  # bool, strings, NaN, infinities fail too
            raise ValueError(f"pixel {index} is {json.dumps(value)[:20]}; every pixel must be a number in [0, 1] "
                             "(0 = background, 1 = ink); divide 0-255 values by 255")
    pixels = np.array(values, dtype=np.float64).reshape(SIZE, SIZE)
    if pixels.max() == 0:
        raise ValueError(NO_DIGIT)
    return np.round(pixels * 255).astype(np.uint8)


def predict_all(models: list[LoadedModel], image: np.ndarray) -> list[dict]:
    """Every model's class probabilities and top class for one (28, 28) uint8 image."""
    predictions = []
    for loaded in models:
        probabilities = predict_probabilities(loaded.model, image[None])[0]
        top = int(np.argmax(probabilities))
        predictions.append({"model": loaded.name, "dataset": loaded.dataset, "classes": loaded.class_names,
                            "probabilities": [round(float(p), 6) for p in probabilities],
                            "top_class": loaded.class_names[top], "top_probability": round(float(probabilities[top]), 6)})
    return predictions


DOCS_ASSET_TYPES = {"swagger-ui-bundle.js": "text/javascript", "swagger-ui.css": "text/css"}


def _swagger_ui_assets() -> dict[str, bytes]:
    """Swagger UI's script and style sheet from the swagger-ui-bundle package, read once into memory."""
    import swagger_ui_bundle

    folder = Path(swagger_ui_bundle.swagger_ui_path)
    return {name: (folder / name).read_bytes() for name in DOCS_ASSET_TYPES}


def create_app(
    checkpoint_paths: list[str | os.PathLike], max_body_bytes: int = MAX_BODY_BYTES, max_pixels: int = MAX_PIXELS
) -> FastAPI:
    """The web app for the checkpoints in `checkpoint_paths` (files or run folders), loaded now."""
    models = load_models(checkpoint_paths)
    static = resources.files("mnistlab") / "static"
    page = {name: (static / name).read_bytes() for name in PAGE_FILES}  # in memory: no request reaches the disk
    docs_assets = _swagger_ui_assets()
    app = FastAPI(title="mnistlab", version=__version__, docs_url=None, redoc_url=None,
                  description="Predict handwritten digits with mnistlab checkpoints. Errors are `{\"error\": \"...\"}`.")
    app.state.models = models
    app.add_middleware(BodySizeLimit, max_body_bytes=max_body_bytes)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException) -> JSONResponse:
        return error_response(error.status_code, str(error.detail))

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, error: RequestValidationError) -> JSONResponse:
        return error_response(422, "; ".join(str(item.get("msg")) for item in error.errors()) or "invalid request")

    @app.get("/", include_in_schema=False)
    def index() -> Response:
        return Response(page["index.html"], media_type=PAGE_FILES["index.html"], headers=PAGE_HEADERS)

    @app.get("/static/{name}", include_in_schema=False)
    def static_file(name: str) -> Response:
        if name not in page:  # a fixed set of names, never a path
            raise HTTPException(404, f"no static file {name[:40]!r}")
        return Response(page[name], media_type=PAGE_FILES[name], headers=PAGE_HEADERS)

    @app.get("/docs", include_in_schema=False)
    def docs() -> Response:
        # FastAPI's stock /docs loads Swagger UI from a CDN; this one serves the bundled copy, so it works offline.
        return get_swagger_ui_html(openapi_url=app.openapi_url, title="mnistlab API",
                                   swagger_js_url="/docs-assets/swagger-ui-bundle.js",
                                   swagger_css_url="/docs-assets/swagger-ui.css", swagger_favicon_url="")

    @app.get("/docs-assets/{name}", include_in_schema=False)
    def docs_asset(name: str) -> Response:
        if name not in docs_assets:  # a fixed set of names, never a path
            raise HTTPException(404, f"no docs asset {name[:40]!r}")
        return Response(docs_assets[name], media_type=DOCS_ASSET_TYPES[name], headers=PAGE_HEADERS)

    @app.get("/healthz", summary="Liveness: 200 while the server runs")
    def healthz() -> dict:
        return {"status": "ok", "models": len(models)}

    @app.get("/api/models", summary="The loaded models: name, dataset, test accuracy, parameters, class names")
    def list_models() -> dict:
        return {"models": [loaded.describe() for loaded in models]}

    @app.post("/api/predict", summary="Classify one image with every loaded model", openapi_extra={
        "requestBody": PREDICT_BODY_DOC})
    async def predict(request: Request) -> dict:
        """PNG or JPEG (raw body or multipart field `image`) is preprocessed to MNIST style; JSON pixels are used as is.

        Returns `input` (the 784 uint8 pixels the models saw, row by row) and `predictions`, one per model.
        """
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type in IMAGE_TYPES:
            image = await run_in_threadpool(decode_and_preprocess, await request.body(), max_pixels)
        elif content_type == "multipart/form-data":
            async with request.form(max_files=1, max_fields=4) as form:
                upload = form.get(UPLOAD_FIELD)
                if not isinstance(upload, UploadFile):
                    raise HTTPException(422, f"multipart body needs a file field named {UPLOAD_FIELD!r}")
                data = await upload.read()
            image = await run_in_threadpool(decode_and_preprocess, data, max_pixels)
        elif content_type == "application/json":
            try:
                payload = json.loads(await request.body())
            except (ValueError, RecursionError) as error:  # bad JSON, bad UTF-8, or nesting deeper than Python's stack
                raise HTTPException(422, f"body is not valid JSON ({type(error).__name__})") from None
            try:
                image = pixels_from_json(payload)
            except ValueError as error:
                raise HTTPException(422, str(error)) from None
        else:
            raise HTTPException(415, f"content type {content_type[:60]!r} is not accepted; send "
                                     f"{', '.join(IMAGE_TYPES)}, multipart/form-data or application/json")
        predictions = await run_in_threadpool(predict_all, models, image)
        return {"input": image.ravel().tolist(), "predictions": predictions}

    return app


def decode_and_preprocess(data: bytes, max_pixels: int) -> np.ndarray:
    """Uploaded bytes -> (28, 28) uint8; only PNG and JPEG decode; `HTTPException` 422 with the reason otherwise."""
    try:
        return preprocess_image(decode_image(data, max_pixels, formats=("PNG", "JPEG")))
    except PreprocessError as error:
        raise HTTPException(422, str(error)) from None


def run_server(checkpoint_paths: list[str | os.PathLike], host: str = "127.0.0.1", port: int = 8000) -> None:
    """Load the checkpoints and serve the page and API until Ctrl-C."""
    import uvicorn

    app = create_app(checkpoint_paths)
    names = ", ".join(loaded.name for loaded in app.state.models)
    print(f"mnistlab: serving {names} on http://{host}:{port}/ (API docs: /docs); Ctrl-C stops", flush=True)
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False)
