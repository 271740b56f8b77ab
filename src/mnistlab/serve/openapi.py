"""The contract of `mnistlab serve`'s JSON API in OpenAPI 3.0 terms: request bodies, answers and every error.

The endpoints parse their bodies themselves (to enforce the size and decode
limits), so FastAPI cannot infer these schemas; they are written here and
passed to the routes in `serve`. Every status an endpoint can answer is listed
with its schema, so client generators and API fuzzers (Schemathesis) can hold
the server to it: `tests/test_serve_contract.py` does.
"""

from __future__ import annotations

from mnistlab.data.registry import IMAGE_SIDE as SIDE  # px; the images the models read are SIDE x SIDE
from mnistlab.vision.numbers import MAX_DIGITS

UPLOAD_FIELD = "image"  # the multipart/form-data file field

ERROR = {"type": "object", "required": ["error"], "properties": {
    "error": {"type": "string", "description": "one line: what is wrong with the request and what to do"}}}
PIXEL = {"type": "number", "minimum": 0, "maximum": 1}
FLAT = {"type": "array", "minItems": SIDE * SIDE, "maxItems": SIDE * SIDE, "items": PIXEL,
        "not": {"items": {"maximum": 0}}}  # not all 0: a blank image holds no digit (422)
ROWS = {"type": "array", "minItems": SIDE, "maxItems": SIDE,
        "items": {"type": "array", "minItems": SIDE, "maxItems": SIDE, "items": PIXEL},
        "not": {"items": {"items": {"maximum": 0}}}}
PIXELS = {
    "description": "an MNIST-style image fed to the models as is: 784 numbers in [0, 1] row by row, or 28 arrays "
                   "of 28, bare or as {\"pixels\": ...}; 0 = background, 1 = ink (white digit on black); divide "
                   "0-255 values by 255. A blank image (all 0) is refused with 422 \"no digit found\"",
    "oneOf": [FLAT, ROWS, {"type": "object", "required": ["pixels"], "additionalProperties": False,
                           "properties": {"pixels": {"oneOf": [FLAT, ROWS]}}}],
}
IMAGE_FILE = {"type": "string", "format": "binary", "description": "a PNG or JPEG image of one digit"}

PREDICT_BODY = {
    "required": True,
    "content": {
        "image/png": {"schema": IMAGE_FILE},
        "image/jpeg": {"schema": IMAGE_FILE},
        "multipart/form-data": {"schema": {"type": "object", "required": [UPLOAD_FIELD], "additionalProperties": False,
                                           "properties": {UPLOAD_FIELD: IMAGE_FILE}}},
        "application/json": {"schema": PIXELS},
    },
}

PREDICTION = {"type": "object", "required": ["model", "dataset", "classes", "probabilities", "top_class",
                                             "top_probability"], "properties": {
    "model": {"type": "string", "description": "the model's name, unique among the loaded models"},
    "dataset": {"type": "string", "description": "the dataset it was trained on (a folder's name for one's own data)"},
    "classes": {"type": "array", "items": {"type": "string"}},
    "probabilities": {"type": "array", "items": {"type": "number", "minimum": 0, "maximum": 1},
                      "description": "one per class, in the order of `classes`"},
    "top_class": {"type": "string"},
    "top_probability": {"type": "number", "minimum": 0, "maximum": 1},
    "not_sure": {"type": "boolean", "description": "top probability under the checkpoint's threshold; "
                                                   "present only when the checkpoint has one"},
    "preprocess": {"type": "string", "enum": ["digits", "plain"],
                   "description": "how the image became this model's input: the digit photo preprocessing, or a "
                                  "plain resize to 28x28 (models not trained on handwritten digits)"},
    "input": {"type": "array", "minItems": SIDE * SIDE, "maxItems": SIDE * SIDE, "items": PIXEL,
              "description": "this model's own input, as the answer's `input`; present only when it differs from "
                             "the first model's (another preprocessing)"},
}}
ANSWER = {"type": "object", "required": ["input", "predictions"], "properties": {
    "input": {"type": "array", "minItems": SIDE * SIDE, "maxItems": SIDE * SIDE, "items": PIXEL,
              "description": "the 28x28 image the models saw, row by row, on the JSON pixels' scale: 0 = background, "
                             "1 = ink, multiples of 1/255 rounded to 4 decimals (posting it back as JSON pixels "
                             "gives the same predictions)"},
    "predictions": {"type": "array", "items": PREDICTION, "description": "one per loaded model"},
}}
NUMBER_ANSWER = {"type": "object", "required": ["number", "digits"], "properties": {
    "number": {"type": "string", "description": "the digits left to right, as the first digit model reads them"},
    "digits": {"type": "array", "minItems": 1, "items": {"type": "object", "required": ["box", "input", "predictions"],
                                                         "properties": {
        "box": {"type": "array", "minItems": 4, "maxItems": 4, "items": {"type": "integer", "minimum": 0},
                "description": "left, top, right, bottom in the uploaded image's pixels (EXIF rotation applied)"},
        "input": ANSWER["properties"]["input"],
        "predictions": {"type": "array", "items": PREDICTION, "description": "one per loaded model"},
    }}},
}}
NUMBER_PARAMETER = {"name": "number", "in": "query", "required": False, "schema": {"type": "boolean", "default": False},
                    "description": f"true: read a PNG or JPEG as a number written left to right (up to {MAX_DIGITS} "
                                   f"digits)"}
MODELS = {"type": "object", "required": ["models"], "properties": {"models": {"type": "array", "items": {
    "type": "object", "required": ["name", "dataset", "test_accuracy", "params", "class_names", "checkpoint"],
    "properties": {
        "name": {"type": "string", "description": "the model name, or the checkpoint file's stem where several "
                                                  "checkpoints hold the same model (then its folder too if needed)"},
        "dataset": PREDICTION["properties"]["dataset"],
        "test_accuracy": {"type": "number", "nullable": True, "description": "as measured when it was saved"},
        "params": {"type": "integer"},
        "class_names": {"type": "array", "items": {"type": "string"}},
        "checkpoint": {"type": "string", "description": "the checkpoint's file name (no folder)"},
        "preprocess": PREDICTION["properties"]["preprocess"],
    }}}}}
HEALTH = {"type": "object", "required": ["status", "models"], "properties": {
    "status": {"type": "string", "enum": ["ok"]}, "models": {"type": "integer", "minimum": 1}}}


def _json(description: str, schema: dict) -> dict:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _error(description: str) -> dict:
    return _json(description + '; the body is {"error": "..."}', ERROR)


HOST_REFUSED = _error("Bad Request: the Host header is not a name this server answers to (or Content-Length is "
                      "not a number)")
PREDICT_RESPONSES = {
    200: _json("the image the models saw and each model's prediction; with number=true, each digit's box, input "
               "and predictions", {"oneOf": [ANSWER, NUMBER_ANSWER]}),
    400: _error("Bad Request: the Host header is not a name this server answers to, Content-Length is not a "
                "number, or a multipart body cannot be parsed"),
    403: _error("Forbidden: a cross-site request (Origin or Sec-Fetch-Site names another site)"),
    413: _error("Content Too Large: the body is over the server's limit (2 MiB; 256 KiB for JSON)"),
    415: _error("Unsupported Media Type: send image/png, image/jpeg, multipart/form-data or application/json"),
    422: _error("Unprocessable Content: not a readable PNG or JPEG, over the pixel or decode limits, an image whose "
                "shape no digit fits (over 50 times longer one way), pixels out of shape or range, or no digit found; "
                "a query other than one number=true or number=false, number=true without an image or a digit "
                "model, or more digits than a number is read up to"),
}
MODELS_RESPONSES = {200: _json("the loaded models", MODELS), 400: HOST_REFUSED}
HEALTH_RESPONSES = {200: _json("the server runs", HEALTH), 400: HOST_REFUSED}

EXPLAIN_BODY = {"required": True, "content": {"application/json": {"schema": PIXELS}}}
MAP = {"type": "array", "minItems": SIDE * SIDE, "maxItems": SIDE * SIDE, "items": {"type": "number"}}
ATTRIBUTION = {"type": "object", "required": ["model", "top_class", "top_probability", "integrated_gradients",
                                              "occlusion"], "properties": {
    "model": PREDICTION["properties"]["model"],
    "top_class": {"type": "string", "description": "the class explained: the model's most likely one"},
    "top_probability": {"type": "number", "minimum": 0, "maximum": 1},
    "integrated_gradients": {**MAP, "description": "per pixel, row by row: its share of the top class's logit minus "
                                                   "that logit on a black image; positive raises the class"},
    "occlusion": {**MAP, "description": "per pixel, row by row: the mean drop of the top class's logit when a 4x4 "
                                        "patch over it is blacked out"},
}}
EXPLAIN_ANSWER = {"type": "object", "required": ["input", "attributions"], "properties": {
    "input": ANSWER["properties"]["input"],
    "attributions": {"type": "array", "items": ATTRIBUTION, "description": "one per loaded model"},
}}
EXPLAIN_RESPONSES = {
    200: _json("each model's top class and its attribution maps", EXPLAIN_ANSWER),
    400: HOST_REFUSED,
    403: PREDICT_RESPONSES[403],
    413: _error("Content Too Large: the body is over 256 KiB"),
    415: _error("Unsupported Media Type: send application/json pixels"),
    422: _error("Unprocessable Content: not valid JSON, pixels out of shape or range, or no digit found"),
    501: _error("Not Implemented: the server lacks Captum (pip install 'mnistlab[explain]')"),
}
