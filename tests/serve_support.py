"""Helpers for the predict/serve tests: digits drawn as a user would, small checkpoints, a live server."""

from __future__ import annotations

import contextlib
import io
import socket
import struct
import threading
import time
import zlib
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from mnistlab.checkpoint import save_checkpoint
from mnistlab.models import build_model, count_parameters

CLASS_NAMES = [str(digit) for digit in range(10)]


def save_untrained_checkpoints(folder: Path, names=("ann", "cnn")) -> list[Path]:
    """Freshly initialised models saved as real checkpoints: fast stand-ins with the real architectures."""
    paths = []
    for name in names:
        model = build_model(name)
        path = folder / f"{name}.pt"
        save_checkpoint(path, model, name, config={"seed": 0},
                        dataset={"name": "mnist", "class_names": CLASS_NAMES},
                        metrics={"test_accuracy": 0.1, "params": count_parameters(model)})
        paths.append(path)
    return paths


def encode(image: Image.Image, image_format: str = "PNG", **options) -> bytes:
    """Image -> file bytes in `image_format`."""
    buffer = io.BytesIO()
    image.save(buffer, format=image_format, **options)
    return buffer.getvalue()


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims `width` x `height` but holds almost no pixel data."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def draw_seven(size=(800, 600), box=(150, 100, 450, 500), width=24, ink=0, paper=255, mode="L") -> Image.Image:
    """A hand-drawn-looking 7: dark strokes on a light canvas (colours are `mode` values)."""
    image = Image.new(mode, size, paper)
    left, top, right, bottom = box
    ImageDraw.Draw(image).line([(left, top), (right, top), (left + (right - left) // 3, bottom)],
                               fill=ink, width=width, joint="curve")
    return image


def render_like_a_user(digit: np.ndarray, rng: np.random.Generator, stroke: str, image_format: str) -> bytes:
    """An MNIST digit (28, 28) drawn as a person would: dark on light paper, scaled up 4-12x, off-centre on a
    600-1400 px canvas, with a thicker, thinner or unchanged pen, saved as PNG or JPEG (quality 70-94)."""
    scale = int(rng.integers(4, 13))
    side = 28 * scale
    ink = Image.fromarray(digit).resize((side, side), Image.Resampling.BICUBIC)
    if stroke == "thick":
        ink = ink.filter(ImageFilter.MaxFilter(2 * (scale // 2) + 1))
    elif stroke == "thin":
        ink = ink.filter(ImageFilter.MinFilter(2 * (scale // 3) + 1))
    paper, pen = int(rng.integers(200, 256)), int(rng.integers(0, 60))
    width, height = int(rng.integers(600, 1400)), int(rng.integers(600, 1400))
    canvas = np.full((height, width), paper, dtype=np.float32)
    x, y = int(rng.integers(0, width - side)), int(rng.integers(0, height - side))
    coverage = np.asarray(ink, dtype=np.float32) / 255.0
    canvas[y:y + side, x:x + side] = paper * (1 - coverage) + pen * coverage
    image = Image.fromarray(np.round(canvas).astype(np.uint8)).convert("RGB")
    options = {"quality": int(rng.integers(70, 95))} if image_format == "JPEG" else {}
    return encode(image, image_format, **options)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def live_server(app):
    """Serve `app` with uvicorn on 127.0.0.1 (a free port) in a background thread; yield its base URL."""
    import uvicorn

    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start within 20 s")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        listener.close()
