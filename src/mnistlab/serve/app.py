"""A draw-a-digit page and a JSON API over loaded checkpoints (FastAPI, served by uvicorn).

    mnistlab serve --checkpoints runs/x      # then open http://127.0.0.1:8000/

Endpoints: `GET /` the page (no external resources), `POST /api/predict`,
`POST /api/explain` (see `serve.explain`), `GET /api/models`, `GET /healthz`,
OpenAPI at `/docs` and `/openapi.json`.
Bad input gets a 4xx with `{"error": "..."}` and the server keeps serving:
bodies over `max_body_bytes` are refused from Content-Length before reading,
or while streaming, before anything is decoded; images over `max_pixels` or
whose decoded pixels would take over `max_decode_bytes` are refused from their
header. At most `max_decoding` images decode at once, so the memory uploads can
cost is bounded: about max_decoding x (max_decode_bytes + 40 MiB of working
copies), whatever the number of clients; freed memory goes back to the OS when
the last decode ends. No endpoint touches a path the client chooses.
`serve_guard` checks Host and Origin and adds the security headers.
"""

from __future__ import annotations

import os
import socket
import sys
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

from mnistlab.common.version import __version__
from mnistlab.common.errors import ConfigError
from mnistlab.vision.loading import LoadedModel, load_models
from mnistlab.vision.predict import predict_probabilities
from mnistlab.serve.guard import LOOPBACK_HOSTS, BodySizeLimit, RequestGuard, error_response
from mnistlab.serve.uploads import (DecodeGate, as_json_pixels, decode_and_preprocess, decode_and_segment,
                                    json_body_pixels)
from mnistlab.serve.explain import add_explain_route
from mnistlab.serve.openapi import (HEALTH_RESPONSES, MODELS_RESPONSES, NUMBER_PARAMETER, PREDICT_BODY,
                                    PREDICT_RESPONSES, UPLOAD_FIELD)

MAX_BODY_BYTES = 2 * 1024 * 1024  # bytes; request bodies over this get 413 before they are decoded
MAX_UPLOAD_PIXELS = 16_777_216  # decoded pixels (width x height) per uploaded image: 4096 x 4096
MAX_DECODE_BYTES = 64 * 1024 * 1024  # bytes an upload's decoded pixels may take: 4096 x 4096 8-bit RGBA
MAX_DECODING = 2  # uploads decoded at once; others wait their turn (decoding is CPU-bound anyway)
MAX_JSON_BYTES = 256 * 1024  # bytes; a JSON body of 784 numbers is under 20 kB, so larger ones are refused unparsed
IMAGE_TYPES = ("image/png", "image/jpeg")  # raw-body content types; the bytes are sniffed, only PNG/JPEG decode
PAGE_FILES = {"index.html": "text/html; charset=utf-8", "app.js": "text/javascript; charset=utf-8",
              "style.css": "text/css; charset=utf-8"}
PAGE_HEADERS = {  # the page may talk to this server only: no CDN, no third-party anything
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
}
DOCS_HEADERS = {  # Swagger UI's page starts itself with an inline script; everything it loads comes from here
    "Content-Security-Policy": "default-src 'self'; script-src 'self' 'unsafe-inline'; "
                               "style-src 'self' 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'",
}


def number_query(query) -> bool:
    """Whether `?number=true` (or 1) asks for a number; `HTTPException` 422 for another value, a repeated one, or a
    misspelt name (Number, numbers), so a typo never silently gives a single-digit answer. Other parameters (a
    cache-buster) are ignored."""
    misspelt = sorted(key for key in query.keys() if key.lower().startswith("num") and key != "number")
    if misspelt:
        raise HTTPException(422, f"query parameter {misspelt[0][:20]!r} is unknown; did you mean number=true?")
    values = query.getlist("number")
    if len(values) > 1:
        raise HTTPException(422, "number is given more than once; give it once, true or false")
    number = values[0].lower() if values else "false"
    if number not in ("true", "false", "1", "0"):
        raise HTTPException(422, f"number={number[:20]!r}: use number=true or number=false")
    return number in ("true", "1")


def predict_all(models: list[LoadedModel], inputs: dict[tuple[str, str], np.ndarray]) -> list[dict]:
    """Every model's class probabilities and top class for its (28, 28) uint8 input (`inputs` by
    `LoadedModel.input_kind`), how that input was made ("preprocess"), and its "not sure" flag when the checkpoint
    has a threshold (see `assessment.not_sure_threshold`)."""
    predictions = []
    for loaded in models:
        probabilities = predict_probabilities(loaded.model, inputs[loaded.input_kind][None])[0]
        top = int(np.argmax(probabilities))
        prediction = {"model": loaded.name, "dataset": loaded.dataset, "classes": loaded.class_names,
                      "probabilities": [round(float(p), 6) for p in probabilities],
                      "top_class": loaded.class_names[top], "top_probability": round(float(probabilities[top]), 6),
                      "preprocess": loaded.preprocess}
        not_sure = loaded.not_sure(float(probabilities[top]))
        predictions.append(prediction if not_sure is None else {**prediction, "not_sure": not_sure})
    return predictions


DOCS_ASSET_TYPES = {"swagger-ui-bundle.js": "text/javascript", "swagger-ui.css": "text/css"}


def _swagger_ui_assets() -> dict[str, bytes]:
    """Swagger UI's script and style sheet from the swagger-ui-bundle package, read once into memory."""
    import swagger_ui_bundle

    folder = Path(swagger_ui_bundle.swagger_ui_path)
    return {name: (folder / name).read_bytes() for name in DOCS_ASSET_TYPES}


def create_app(
    checkpoint_paths: list[str | os.PathLike], max_body_bytes: int = MAX_BODY_BYTES, max_pixels: int = MAX_UPLOAD_PIXELS,
    max_decode_bytes: int = MAX_DECODE_BYTES, max_decoding: int = MAX_DECODING,
    allowed_hosts: list[str] | tuple[str, ...] = LOOPBACK_HOSTS, skipped: list[str] | None = None,
    device: str = "cpu", trust_code: bool = False,
) -> FastAPI:
    """The web app for the checkpoints in `checkpoint_paths` (files or run folders), loaded now.

    Requests must name one of `allowed_hosts` in their Host header. With a `skipped` list, a checkpoint that
    cannot be loaded is skipped and its one-line reason appended there (an error only if none loads).
    Models of the user's own load only with `trust_code` (see `training.checkpoint`).
    """
    models = load_models(checkpoint_paths, skipped=skipped, device=device, trust_code=trust_code)
    static = resources.files("mnistlab.serve") / "static"
    page = {name: (static / name).read_bytes() for name in PAGE_FILES}  # in memory: no request reaches the disk
    docs_assets = _swagger_ui_assets()
    gate = DecodeGate(max_decoding)
    kinds = list(dict.fromkeys(loaded.input_kind for loaded in models))  # the inputs an upload is turned into
    app = FastAPI(title="mnistlab", version=__version__, docs_url=None, redoc_url=None,
                  description="Predict handwritten digits with mnistlab checkpoints. Errors are `{\"error\": \"...\"}`.")
    app.openapi_version = "3.0.3"  # the bundled Swagger UI renders OpenAPI 3.0, not FastAPI's default 3.1
    app.state.models = models
    app.add_middleware(BodySizeLimit, max_body_bytes=max_body_bytes)
    app.add_middleware(RequestGuard, allowed_hosts=allowed_hosts)  # added last: runs first

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException) -> JSONResponse:
        headers = dict(error.headers or {})
        if "GET" in headers.get("Allow", "").split(", "):
            headers["Allow"] += ", HEAD"  # RequestGuard answers HEAD wherever GET exists
        return error_response(error.status_code, str(error.detail), headers)

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
        html = get_swagger_ui_html(openapi_url=app.openapi_url, title="mnistlab API",
                                   swagger_js_url="/docs-assets/swagger-ui-bundle.js",
                                   swagger_css_url="/docs-assets/swagger-ui.css", swagger_favicon_url="")
        html.headers.update(DOCS_HEADERS)
        return html

    @app.get("/docs-assets/{name}", include_in_schema=False)
    def docs_asset(name: str) -> Response:
        if name not in docs_assets:  # a fixed set of names, never a path
            raise HTTPException(404, f"no docs asset {name[:40]!r}")
        return Response(docs_assets[name], media_type=DOCS_ASSET_TYPES[name], headers=PAGE_HEADERS)

    @app.get("/healthz", summary="Liveness: 200 while the server runs", response_model=None,
             responses=HEALTH_RESPONSES)
    def healthz() -> dict:
        return {"status": "ok", "models": len(models)}

    @app.get("/api/models", summary="The loaded models: name, dataset, test accuracy, parameters, class names",
             response_model=None, responses=MODELS_RESPONSES)
    def list_models() -> dict:
        return {"models": [loaded.describe() for loaded in models]}

    @app.post("/api/predict", summary="Classify one image with every loaded model", response_model=None,
              responses=PREDICT_RESPONSES,
              openapi_extra={"requestBody": PREDICT_BODY, "parameters": [NUMBER_PARAMETER]})
    async def predict(request: Request) -> dict:
        """PNG or JPEG (raw body or multipart field `image`) is preprocessed to MNIST style for digit models and
        resized as it is for others; JSON pixels are used as is.

        Returns `input` (the 784 pixels the first model saw, row by row, in [0, 1] like JSON pixels) and
        `predictions`, one per model; a prediction whose model saw other pixels (another preprocessing) carries
        its own `input`. With `?number=true` an image is read as a number written left to right: `number` (the
        first digit model's reading) and `digits`, each with its `box` (left, top, right, bottom in the file's
        pixels), `input` and `predictions`. Errors are 4xx with `{"error": "..."}`.
        """
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        limits = (max_pixels, max_decode_bytes, kinds)
        number = number_query(request.query_params)
        if number and content_type not in (*IMAGE_TYPES, "multipart/form-data"):
            raise HTTPException(422, "number=true reads an image: send PNG or JPEG, raw or as multipart")
        if number and content_type in IMAGE_TYPES:
            return await read_number_in(await request.body())
        if content_type in IMAGE_TYPES:
            inputs = await gate.run(decode_and_preprocess, await request.body(), *limits)
        elif content_type == "multipart/form-data":
            async with request.form(max_files=1, max_fields=4) as form:
                upload, others = form.get(UPLOAD_FIELD), sorted({key for key in form.keys() if key != UPLOAD_FIELD})
                if not isinstance(upload, UploadFile) or others:
                    found = f" (it has {', '.join(repr(key[:20]) for key in others[:4])})" if others else ""
                    raise HTTPException(422, f"multipart body needs one file field named {UPLOAD_FIELD!r} and no "
                                             f"other{found}")
                data = await upload.read()
            if number:
                return await read_number_in(data)
            inputs = await gate.run(decode_and_preprocess, data, *limits)
        elif content_type == "application/json":
            inputs = dict.fromkeys(kinds, json_body_pixels(await request.body(), MAX_JSON_BYTES))
        else:
            raise HTTPException(415, f"content type {content_type[:60]!r} is not accepted; send "
                                     f"{', '.join(IMAGE_TYPES)}, multipart/form-data or application/json")
        predictions = await run_in_threadpool(predict_all, models, inputs)
        first = inputs[models[0].input_kind]
        for loaded, prediction in zip(models, predictions):
            if inputs[loaded.input_kind] is not first:
                prediction["input"] = as_json_pixels(inputs[loaded.input_kind])
        return {"input": as_json_pixels(first), "predictions": predictions}

    add_explain_route(app, models, MAX_JSON_BYTES)

    async def read_number_in(data: bytes) -> dict:
        """The digits of a number in uploaded bytes, each read by every model; the number as the first digit model
        reads it."""
        readers = [index for index, loaded in enumerate(models) if loaded.reads_digits]
        if not readers:
            raise HTTPException(422, "number=true reads handwritten digits, and none of the loaded models was trained "
                                     "on them; start the server with a digit checkpoint")
        reader = readers[0]  # the model whose reading is the number also decides which ink is one digit
        digits = await gate.run(decode_and_segment, data, max_pixels, max_decode_bytes,
                                lambda images: predict_probabilities(models[reader].model, images))
        found = []
        for box, image in digits:
            predictions = await run_in_threadpool(predict_all, models, dict.fromkeys(kinds, image))
            found.append({"box": list(box), "input": as_json_pixels(image), "predictions": predictions})
        return {"number": "".join(item["predictions"][reader]["top_class"] for item in found), "digits": found}

    return app


def open_listener(host: str, port: int) -> socket.socket:
    """A socket bound to host:port, so a bad or busy address is a one-line error before anything says "serving"."""
    if not 1 <= port <= 65535:
        raise ConfigError(f"--port {port} is out of range; choose 1 to 65535 (8000 is the default)")
    try:
        family, kind, protocol, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                                                flags=socket.AI_PASSIVE)[0]
    except (socket.gaierror, UnicodeError) as error:
        raise ConfigError(f"--host {host!r} is not an address of this machine ({error}); try 127.0.0.1") from None
    listener = socket.socket(family, kind, protocol)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does: restart at once after a stop
    try:
        listener.bind(address)
    except OSError as error:
        listener.close()
        raise ConfigError(f"cannot listen on {host}:{port} ({error.strerror}); choose another --port, "
                          "or stop the program using it") from None
    return listener


def allowed_hosts_for(host: str, extra: list[str] | tuple[str, ...] = ()) -> list[str]:
    """The Host names a server bound to `host` answers: the address itself, this machine's loopback names when it
    listens there (a loopback or wildcard address), and `extra`."""
    names = [host, *extra]
    if host in ("0.0.0.0", "::", "") or host in LOOPBACK_HOSTS or host.startswith("127."):
        names += LOOPBACK_HOSTS
    return list(dict.fromkeys(names))


def run_server(checkpoint_paths: list[str | os.PathLike], host: str = "127.0.0.1", port: int = 8000,
               allowed_hosts: list[str] | tuple[str, ...] = (), device: str = "cpu", trust_code: bool = False) -> None:
    """Bind host:port, load the checkpoints (skipping bad ones with a warning) and serve until Ctrl-C."""
    import uvicorn

    listener = open_listener(host, port)
    try:
        skipped: list[str] = []
        hosts = allowed_hosts_for(host, allowed_hosts)
        app = create_app(checkpoint_paths, allowed_hosts=hosts, skipped=skipped, device=device, trust_code=trust_code)
        for problem in skipped:
            print(f"mnistlab: warning: skipped {problem}", file=sys.stderr)
        names = ", ".join(loaded.name for loaded in app.state.models)
        print(f"mnistlab: serving {names} on http://{host}:{port}/ (API docs: /docs) for Host "
              f"{', '.join(hosts)}; Ctrl-C stops", flush=True)
        server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))
        server.run(sockets=[listener])
    finally:
        listener.close()
