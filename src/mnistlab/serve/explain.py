"""`POST /api/explain`: each model's attribution maps for its top class on one 28x28 image (the page's toggle).

The body is JSON pixels, as `/api/predict` takes them (the page posts back the
`input` a prediction answered with); every model explains those pixels as they
are. One image per request and a fixed number of passes per model (see
`explain.attribution`), computed one request at a time, so each request's
work is bounded and a burst queues rather than multiplying the load.
"""

from __future__ import annotations

import importlib.util

import numpy as np
from fastapi import FastAPI, HTTPException, Request

from mnistlab.serve.openapi import EXPLAIN_BODY, EXPLAIN_RESPONSES
from mnistlab.serve.uploads import DecodeGate, as_json_pixels, json_body_pixels
from mnistlab.vision.loading import LoadedModel
from mnistlab.vision.predict import predict_probabilities

MAX_EXPLAINING = 1  # requests computed at once; others wait their turn (each uses every CPU thread anyway)
DIGITS = 5  # decimals kept in the maps' values


def explain_all(models: list[LoadedModel], image: np.ndarray) -> list[dict]:
    """For each model: its top class and probability, and its Integrated Gradients and occlusion maps (784 each)."""
    from mnistlab.explain.attribution import attribute

    answers = []
    for loaded in models:
        probabilities = predict_probabilities(loaded.model, image[None])[0]
        top = int(np.argmax(probabilities))
        maps = attribute(loaded.model, image[None], [top])
        answers.append({"model": loaded.name, "top_class": loaded.class_names[top],
                        "top_probability": round(float(probabilities[top]), 6),
                        "integrated_gradients": np.round(maps.integrated_gradients[0].ravel(), DIGITS).tolist(),
                        "occlusion": np.round(maps.occlusion[0].ravel(), DIGITS).tolist()})
    return answers


def add_explain_route(app: FastAPI, models: list[LoadedModel], max_json_bytes: int) -> None:
    """Add `POST /api/explain` to `app` for the loaded `models`."""
    gate = DecodeGate(MAX_EXPLAINING)

    @app.post("/api/explain", summary="What each model looks at: attribution maps of its top class for one image",
              response_model=None, responses=EXPLAIN_RESPONSES, openapi_extra={"requestBody": EXPLAIN_BODY})
    async def explain(request: Request) -> dict:
        """JSON pixels in (as for /api/predict); for each model its top class and two maps of 784 values, row by
        row: Integrated Gradients (sums to the top class's logit minus its logit on a black image) and occlusion
        (the logit's drop when a 4x4 patch over the pixel is blacked out). Positive values raise the class.
        Needs `mnistlab[explain]` on the server (else 501). Errors are 4xx with `{"error": "..."}`.
        """
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type != "application/json":
            raise HTTPException(415, f"content type {content_type[:60]!r} is not accepted; send application/json "
                                     f"pixels (the `input` /api/predict answers with)")
        image = json_body_pixels(await request.body(), max_json_bytes)
        if importlib.util.find_spec("captum") is None:
            raise HTTPException(501, "attributions need Captum on the server; install it with: "
                                     "pip install 'mnistlab[explain]'")
        return {"input": as_json_pixels(image), "attributions": await gate.run(explain_all, models, image)}
