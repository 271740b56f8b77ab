"""Reading and preprocessing an image costs time and memory bounded by its pixels, whatever its shape or content
(style guide habit 17), in `preprocess`, in `mnistlab predict` and in `mnistlab serve`.

Before issue 20 a 178-byte 100000x1 PNG made `predict` grow to 23 GB (the background's kernel was sized from the
long side on both axes), a 20000x5 PNG cost 21 s, and an all-dark image took 5-15 s and 2 GB to answer "0" (the
stroke filter's disc grew with a stroke width measured on a blob that fills its box).

Each example is measured in this process: CPU time, the peak of Python and numpy allocations (tracemalloc) and,
on Linux, the peak resident memory (VmHWM, reset before each example), which also sees what C code allocates
(scipy's filters, Pillow's decoders). The bounds are generous (about 2x what the worst content needs now on a
1024x1024 image: 62 bytes a pixel), yet a thousandth of what the old code took on those images.
"""

from __future__ import annotations

import contextlib
import ctypes
import io
import os
import time
import tracemalloc

import numpy as np
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, example, given, settings, strategies as st
from PIL import Image

from mnistlab.cli.main import main
from mnistlab.common.errors import PreprocessError
from mnistlab.vision import paper as paper_module
from mnistlab.vision.ink import isolate_ink
from mnistlab.vision.preprocess import normalise_strokes, preprocess
from mnistlab.serve.app import create_app
from serve_support import draw_seven, encode, memory_kib, reset_peak_memory, save_untrained_checkpoints

MIB = 1024 * 1024
BYTES_PER_PIXEL = 128  # bound on the memory an image's processing may take beyond a fixed allowance, a pixel
FIXED_BYTES = 32 * MIB  # allowance for what does not grow with the image (imports, the 80 px and 28 px steps)
SECONDS_PER_PIXEL = 4e-6  # bound on CPU time a pixel (now under 1 microsecond), beyond FIXED_SECONDS
FIXED_SECONDS = 3.0  # generous for a busy 2-core machine; the old code took 5-21 s on the tiny images below
CAN_RESET_PEAK = os.access("/proc/self/clear_refs", os.W_OK)
EXTREME_SHAPES = [(100000, 1), (1, 100000), (20000, 5), (5, 20000), (50, 1), (51, 1), (1, 1), (2, 2), (28, 28),
                  (1000, 20), (800, 600)]
CONTENTS = ("uniform", "noise", "stripes", "checker", "rings", "blob", "dots", "near-uniform", "desk")


def render(content: str, width: int, height: int, level: int, seed: int) -> np.ndarray:
    """(height, width) uint8 of one kind of content; built by broadcasting, so a 100000x1 image costs 100000 bytes."""
    x, y = np.arange(width)[None, :], np.arange(height)[:, None]
    rng = np.random.default_rng(seed)
    period = 2 + seed % 5
    values = {
        "uniform": lambda: np.full((height, width), level),
        "near-uniform": lambda: level + rng.integers(0, 3, (height, width)),  # a dark or light frame with sensor noise
        "noise": lambda: rng.integers(0, 256, (height, width)),
        "stripes": lambda: (((x if seed % 2 else y) // period) % 2) * 255 + 0 * (x + y),
        "checker": lambda: ((x // period + y // period) % 2) * 255,
        "rings": lambda: (np.hypot(x - width / 2, y - height / 2).astype(int) // period % 2) * 255,
        "blob": lambda: np.where((abs(y - height / 2) < height / 3) & (abs(x - width / 2) < width / 3), 0, 255),
        "desk": lambda: np.where(x < width / 3, 50 + (y // period % 2) * 40 + 0 * x, 220 + 0 * y),  # grain, then a sheet
        "dots": lambda: 255 - ((x % period == 0) & (y % period == 0)) * 255,
    }[content]()
    return np.clip(values, 0, 255).astype(np.uint8)


def encode_png(pixels: np.ndarray, mode: str) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).convert(mode).save(buffer, format="PNG")
    return buffer.getvalue()


@st.composite
def images(draw) -> tuple[int, int, str, bytes]:
    """(width, height, what, PNG bytes): the shapes that broke the old code and any shape up to 512x512, each
    uniform (black, white or gray), near-uniform, noise, stripes, a checkerboard, rings, a blob or dots."""
    width, height = draw(st.one_of(st.sampled_from(EXTREME_SHAPES),
                                   st.tuples(st.integers(1, 512), st.integers(1, 512))))
    content = draw(st.sampled_from(CONTENTS))
    level, seed = draw(st.sampled_from([0, 128, 255])), draw(st.integers(0, 9))
    mode = draw(st.sampled_from(["L", "RGB", "LA"]))
    pixels = render(content, width, height, level, seed)
    return width, height, f"{width}x{height} {content} (level {level}, seed {seed}, {mode})", encode_png(pixels, mode)


def dark(width: int, height: int) -> tuple[int, int, str, bytes]:
    return width, height, f"{width}x{height} all dark", encode_png(np.zeros((height, width), np.uint8), "L")


def measure(function, *args, **options):
    """(what `function(*args, **options)` returned or raised, CPU seconds, peak traced bytes, peak resident growth in bytes or
    None where it cannot be measured)."""
    trim = getattr(ctypes.CDLL(None), "malloc_trim", None) if os.name == "posix" else None
    if trim is not None:
        trim(0)  # hand back what earlier examples freed, so the resident peak measures this one
    if CAN_RESET_PEAK:
        before = memory_kib(os.getpid())
        reset_peak_memory(os.getpid())
    tracemalloc.start()
    started = time.process_time()
    try:
        outcome = function(*args, **options)
    except PreprocessError as error:
        outcome = error
    finally:
        seconds = time.process_time() - started
        traced = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    resident = (memory_kib(os.getpid(), "VmHWM") - before) * 1024 if CAN_RESET_PEAK else None
    return outcome, seconds, traced, resident


def assert_bounded(what: str, pixels: int, seconds: float, traced: int, resident: int | None) -> None:
    memory = FIXED_BYTES + BYTES_PER_PIXEL * pixels
    figures = (f"{what}: {seconds:.2f} s CPU, {traced / MIB:.1f} MiB traced, "
               f"{'-' if resident is None else f'{resident / MIB:.1f}'} MiB resident")
    assert seconds <= FIXED_SECONDS + SECONDS_PER_PIXEL * pixels, figures
    assert traced <= memory, figures
    assert resident is None or resident <= memory, figures


def bounded(examples: int) -> settings:
    """Hypothesis settings for these tests: no per-example deadline (the bounds are the assertions)."""
    return settings(max_examples=examples, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@bounded(40)
@example(dark(800, 600)).via("the issue's all-dark image")
@example(dark(1, 1)).via("the issue's tiny dark PNGs")
@example(dark(100000, 1)).via("the issue's 178-byte PNG")
@given(images())
def test_preprocess_work_is_bounded(image):
    width, height, what, data = image
    outcome, seconds, traced, resident = measure(preprocess, data)
    assert_bounded(what, width * height, seconds, traced, resident)
    if isinstance(outcome, PreprocessError):
        assert "no digit found" in str(outcome) or "times as" in str(outcome), f"{what}: {outcome}"
    else:
        assert outcome.shape == (28, 28) and outcome.dtype == np.uint8


@pytest.mark.parametrize("width, height, level", [(1, 1, 0), (2, 2, 0), (28, 28, 0), (800, 600, 0), (640, 480, 255),
                                                  (300, 300, 128)])
def test_one_colour_is_no_digit_at_once(width, height, level, monkeypatch):
    def never(gray):
        raise AssertionError("one colour reached the background step")
    monkeypatch.setattr(paper_module, "estimate_background", never)  # at once: right after the gray levels
    pixels = np.full((height, width), level, np.uint8)
    outcome, seconds, traced, resident = measure(preprocess, encode_png(pixels, "RGB"))
    assert str(outcome).startswith("no digit found")
    assert_bounded(f"{width}x{height} at {level}", width * height, seconds, traced, resident)


@pytest.mark.parametrize("width, height", [(100000, 1), (1, 100000), (20000, 5), (51, 1)])
def test_extreme_shapes_are_refused_from_the_header(width, height):
    outcome, seconds, traced, _ = measure(preprocess, encode_png(np.zeros((height, width), np.uint8), "L"))
    assert f"image is {width}x{height} pixels, over 50 times as" in str(outcome)
    assert seconds < 0.5 and traced < MIB


@bounded(12)
@example(((1, 100000), "stripes"))
@example(((5, 20000), "uniform"))
@given(st.tuples(st.sampled_from([(1, 100000), (2, 50000), (5, 20000), (30, 5000), (1, 2000), (3, 700)]),
                 st.sampled_from(CONTENTS)))
def test_every_step_is_bounded_on_slivers_too(case):
    """The steps after decoding, on the slivers the header check refuses: no step's work grows faster than the
    pixels (kernels, pads, component loops), so the shape check is a clear message, not the only guard."""
    (short, long), content = case
    gray = render(content, long, short, 0, 3).astype(np.float32) / 255.0
    for values in (gray, gray.T):
        outcome, seconds, traced, resident = measure(lambda: normalise_strokes(isolate_ink(values)[0]))
        assert_bounded(f"{values.shape} {content}", values.size, seconds, traced, resident)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A checkpoint, and `mnistlab predict` run once on it so that the measured runs do not count the imports."""
    folder = tmp_path_factory.mktemp("bounded")
    path = save_untrained_checkpoints(folder, names=("cnn",))[0]
    (folder / "seven.png").write_bytes(encode(draw_seven()))
    with contextlib.redirect_stdout(io.StringIO()):
        assert main(["predict", str(path), str(folder / "seven.png")]) == 0
    return path


@bounded(15)
@example(dark(100000, 1))
@example(dark(28, 28))
@given(image=images())
def test_serve_work_is_bounded(checkpoint, image):
    width, height, what, data = image
    client = TestClient(create_app([checkpoint], allowed_hosts=["testserver"]))  # a 500 would raise here
    response, seconds, traced, resident = measure(
        client.post, "/api/predict", content=data, headers={"Content-Type": "image/png"})
    assert response.status_code in (200, 422), f"{what}: {response.status_code} {response.text[:200]}"
    if response.status_code == 422:
        assert list(response.json()) == ["error"]
    assert_bounded(what, width * height, seconds, traced, resident)


@bounded(8)
@example(dark(100000, 1))
@example(dark(20000, 5))
@given(image=images())
def test_predict_cli_work_is_bounded(checkpoint, tmp_path_factory, image):
    width, height, what, data = image
    path = tmp_path_factory.mktemp("image") / "image.png"
    path.write_bytes(data)
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()) as errors:
        code, seconds, traced, resident = measure(main, ["predict", str(checkpoint), str(path)])
    err = errors.getvalue()
    assert code in (0, 2) and "Traceback" not in err, f"{what}: exit {code}: {err}"
    assert code == 0 or err.count("\n") == 1 and str(path) in err, err  # one line naming the file
    assert_bounded(what, width * height, seconds, traced, resident)


@bounded(15)
@example(dark(100000, 1))
@example(dark(28, 28))
@example((512, 512, "512x512 dots (seed 2)", encode_png(render("dots", 512, 512, 0, 2), "L")))
@given(image=images())
@pytest.mark.slow  # seconds of work: make test runs it, the fast suite leaves it out
def test_number_reading_work_is_bounded(checkpoint, image):
    """`?number=true` (and `predict --number`, the same `segment_number`): pieces, candidate digits and the crops
    the model reads are capped, so a speckled image costs what a clean one does a pixel."""
    from mnistlab.vision.numbers import MAX_DIGITS

    width, height, what, data = image
    client = TestClient(create_app([checkpoint], allowed_hosts=["testserver"]))
    response, seconds, traced, resident = measure(
        client.post, "/api/predict?number=true", content=data, headers={"Content-Type": "image/png"})
    assert response.status_code in (200, 422), f"{what}: {response.status_code} {response.text[:200]}"
    if response.status_code == 200:
        assert 1 <= len(response.json()["digits"]) <= MAX_DIGITS
    assert_bounded(what, width * height, seconds, traced, resident)
