"""Helpers for the predict/serve tests: digits drawn as a user would, small checkpoints, a live server."""

from __future__ import annotations

import contextlib
import io
import json
import socket
import struct
import threading
import time
import zlib
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from mnistlab.training.checkpoint import save_checkpoint
from mnistlab.models import build_model, count_parameters

CLASS_NAMES = [str(digit) for digit in range(10)]


def save_untrained_checkpoints(folder: Path, names=("ann", "cnn"), not_sure_threshold: float | None = None) -> list[Path]:
    """Freshly initialised models saved as real checkpoints: fast stand-ins with the real architectures."""
    paths = []
    for name in names:
        model = build_model(name)
        path = folder / f"{name}.pt"
        save_checkpoint(path, model, name, config={"seed": 0},
                        dataset={"name": "mnist", "class_names": CLASS_NAMES},
                        metrics={"test_accuracy": 0.1, "params": count_parameters(model),
                                 **({} if not_sure_threshold is None else {"not_sure_threshold": not_sure_threshold})})
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


def png_of_zeros(width: int, height: int, bit_depth: int = 8, colour_type: int = 6, band: tuple | None = None,
                 columns: tuple | None = None) -> bytes:
    """A PNG of `width` x `height` zero samples (colour type 6 = RGBA, 0 = gray, 2 = RGB) at `bit_depth`, compressed
    row by row so a huge image costs little memory to build; `band` = (top, bottom) rows drawn at full value, between
    `columns` = (left, right) (default: all columns; a bar across the whole image reads as a ruled line, not ink)."""
    channels = {0: 1, 2: 3, 4: 2, 6: 4}[colour_type]
    pixel_bytes = channels * bit_depth // 8
    row_bytes = width * pixel_bytes
    left, right = columns or (0, width)
    blank = b"\0" * (row_bytes + 1)
    full = b"\0" + b"\0" * (left * pixel_bytes) + b"\xff" * ((right - left) * pixel_bytes) + b"\0" * ((width - right) * pixel_bytes)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    compressor = zlib.compressobj(9)
    top, bottom = band or (0, 0)
    data = b"".join(compressor.compress(full if top <= row < bottom else blank) for row in range(height))
    header = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", data + compressor.flush())
            + chunk(b"IEND", b""))


def memory_kib(pid: int, field: str = "VmRSS") -> int:
    """A process's resident memory (VmRSS) or its peak since the last `reset_peak_memory` (VmHWM), in KiB (Linux)."""
    with open(f"/proc/{pid}/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith(f"{field}:"))


def reset_peak_memory(pid: int) -> None:
    """Restart VmHWM counting from the current RSS (Linux 4.0+: writing 5 to clear_refs)."""
    with open(f"/proc/{pid}/clear_refs", "w") as clear_refs:
        clear_refs.write("5")


@contextlib.contextmanager
def serve_process(checkpoints: Path, log: Path, *extra: str):
    """`python -m mnistlab serve` in its own process on a free port, its stderr in `log`; yield (base URL, process).

    Stopped (terminated, then killed after 20 s) when the block ends."""
    import subprocess
    import sys

    import httpx

    port = free_port()
    with open(log, "wb") as errors:
        server = subprocess.Popen([sys.executable, "-m", "mnistlab", "serve", "--checkpoints", str(checkpoints),
                                   "--port", str(port), *extra], stdout=subprocess.DEVNULL, stderr=errors)
    base_url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if server.poll() is not None:
                raise RuntimeError(f"server exited: {log.read_text()}")
            try:
                if httpx.get(base_url + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("server did not answer /healthz within 60 s")
            time.sleep(0.2)
        yield base_url, server
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def request_mix() -> list[tuple[bytes, str]]:
    """What users send: canvas PNGs (drawn at different places and sizes), a JPEG photo, and JSON pixels."""
    mix = []
    for shift in range(4):
        image = draw_seven(size=(280, 280), box=(40 + 10 * shift, 30, 200 + 15 * shift, 250), width=18 - 2 * shift)
        mix.append((encode(image), "image/png"))
    photo = draw_seven(size=(1200, 900), box=(300, 200, 700, 800), width=30, mode="RGB", ink=(40, 40, 70),
                       paper=(230, 225, 210))
    mix.append((encode(photo, "JPEG", quality=85), "image/jpeg"))
    pixels = np.zeros((28, 28))
    pixels[6:22, 12:15] = 1.0
    mix.append((json.dumps(pixels.ravel().tolist()).encode(), "application/json"))
    return mix


def with_text_chunks(png: bytes, count: int, inflated_bytes: int = 1_000_000) -> bytes:
    """`png` with `count` compressed text chunks (zTXt) inserted after IHDR, each about 1 kB that inflates to
    `inflated_bytes`: Pillow would hold up to 64 MiB of such text per image."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    text = zlib.compress(b"a" * inflated_bytes, 9)
    chunks = b"".join(chunk(b"zTXt", b"note%d\0\0" % number + text) for number in range(count))
    header_end = 8 + 25  # signature, then IHDR (4 length + 4 type + 13 data + 4 CRC)
    return png[:header_end] + chunks + png[header_end:]
