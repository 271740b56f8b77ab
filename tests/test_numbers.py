"""Numbers (issue 22): the digits of a handwritten number found left to right, read and returned with boxes."""

import json
import math
import re

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from PIL import Image, ImageDraw

from mnistlab.evaluation import number_eval
from mnistlab.cli.main import main
from mnistlab.common.errors import PreprocessError
from mnistlab.data.decode import decode_image
from mnistlab.vision.numbers import segment_number
from photo_support import DESK_CASES, SHADOW_CASES, shadow_on_a_sheet, sheet_on_a_desk
from serve_support import encode, save_untrained_checkpoints


def write_number(strokes_per_digit: list[list[tuple[int, int]]], step: int = 140, size=(800, 300)) -> Image.Image:
    """Digits drawn as polylines (coordinates within a 100x160 cell), one cell every `step` px from x = 60."""
    image = Image.new("L", size, 255)
    draw = ImageDraw.Draw(image)
    for number, points in enumerate(strokes_per_digit):
        draw.line([(60 + number * step + x, 70 + y) for x, y in points], fill=20, width=14, joint="curve")
    return image


ONE, SEVEN, FOUR = [(50, 0), (50, 160)], [(0, 0), (100, 0), (30, 160)], [(70, 160), (70, 0), (0, 110), (100, 110)]


def test_digits_are_found_left_to_right_with_their_boxes():
    written = [SEVEN, ONE, FOUR, SEVEN]
    digits = segment_number(decode_image(encode(write_number(written))))
    assert len(digits) == 4
    expected = [60 + 140 * k + min(x for x, _ in points) for k, points in enumerate(written)]
    assert all(abs(box[0] - left) <= 8 for (box, _), left in zip(digits, expected)), (digits, expected)
    assert all(image.shape == (28, 28) and image.dtype == np.uint8 for _, image in digits)
    assert all(box[1] >= 60 and box[3] <= 240 for box, _ in digits)


def test_boxes_of_a_cropped_or_resized_decode_are_in_its_own_pixels():
    """The file's size that a reduced decode records is not carried over to a crop or a resized copy."""
    decoded = decode_image(encode(write_number([SEVEN, ONE, FOUR]).resize((7200, 2700)), "JPEG", quality=95))
    for image in (decoded.crop((0, 0, decoded.width // 2, decoded.height)), decoded.resize((800, 300))):
        boxes = [box for box, _ in segment_number(image)]
        assert boxes and all(box[2] <= image.width and box[3] <= image.height for box in boxes), (image.size, boxes)


@pytest.mark.parametrize("factor", [1, 5, 9])  # 9: 7200 x 2700, which a JPEG decodes at half size
def test_boxes_are_in_the_files_pixels_however_the_image_decodes(factor):
    """A large JPEG decodes reduced (1/2 to 1/8); its boxes are still given in the file's pixels, as a PNG's are."""
    written = write_number([SEVEN, ONE, FOUR])
    size = (written.width * factor, written.height * factor)
    reference = [box for box, _ in segment_number(decode_image(encode(written.resize(size))))]
    found = [box for box, _ in segment_number(decode_image(encode(written.resize(size), "JPEG", quality=95)))]
    assert len(found) == len(reference) == 3
    tolerance = 10 * factor  # JPEG's blur at the strokes' edges, in the enlarged image's pixels
    assert all(abs(a - b) <= tolerance for box, other in zip(found, reference) for a, b in zip(box, other)), (
        found, reference)
    assert abs(found[-1][2] - (60 + 2 * 140 + 100 + 7) * factor) <= tolerance  # the 4's right edge, pen included


def test_touching_digits_are_cut_apart():
    digits = segment_number(decode_image(encode(write_number([SEVEN, FOUR, SEVEN], step=98))))  # strokes touch
    assert len(digits) == 3


FIVE_BODY = [(10, 70), (0, 60), (10, 60), (70, 80), (90, 120), (60, 155), (0, 140)]  # a 5 written without its bar
FIVE_BAR = [(70, 5), (150, 5)]  # the bar, apart from the body and reaching past it
ZERO = [(50, 0), (100, 40), (100, 120), (50, 160), (0, 120), (0, 40), (50, 0)]


def test_a_digit_in_two_strokes_is_one_digit():
    """A 5 whose bar does not touch its body, and a 4 whose strokes do not meet, are one digit each, not two."""
    open_four = [[(60, 0), (0, 110), (100, 110)], [(75, 40), (75, 160)]]
    image = Image.new("L", (800, 300), 255)
    draw = ImageDraw.Draw(image)
    for number, strokes in enumerate([[FIVE_BODY, FIVE_BAR], open_four, [ONE]]):  # cells 150 px apart
        for points in strokes:
            draw.line([(60 + number * 150 + x, 70 + y) for x, y in points], fill=20, width=14, joint="curve")
    digits = segment_number(decode_image(encode(image)))
    assert len(digits) == 3, [box for box, _ in digits]


def test_digits_touching_the_frame_of_a_tight_crop_are_kept():
    image = write_number([ZERO, ONE, SEVEN])
    digits = segment_number(decode_image(encode(image.crop((60, 70, 60 + 2 * 140 + 100, 230)))))  # ink to the edges
    assert len(digits) == 3


def test_blank_page_has_no_number():
    with pytest.raises(PreprocessError, match="no digit found"):
        segment_number(decode_image(encode(Image.new("L", (600, 300), 250))))


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(**DESK_CASES)
def test_a_blank_sheet_beside_the_desk_is_no_number(side, share, tilt, desk, paper, shade):
    """The desk beyond a photo's sheet, its edge and its grain, is no digit, however wide, tilted, dark or grained."""
    with pytest.raises(PreprocessError, match="no digit found"):
        segment_number(decode_image(encode(Image.fromarray(sheet_on_a_desk(side, share, tilt, desk, paper, shade)))))


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(**SHADOW_CASES)
def test_a_soft_shadow_on_a_blank_sheet_is_no_number(centre, radius, depth, soft, paper):
    """A hand's or a phone's shadow on a blank sheet, wherever it falls, however large, deep or soft, is no digit."""
    with pytest.raises(PreprocessError, match="no digit found"):
        segment_number(decode_image(encode(Image.fromarray(shadow_on_a_sheet(centre, radius, depth, soft, paper)))))


def on_a_photo(sheet: np.ndarray, contrast: float = 0.9, left: int = 250, top: int = 230) -> np.ndarray:
    """7 1 4 written on a photo's sheet (H, W) uint8, darkening it by `contrast` of its brightness: 100-px digits
    (108 with the pen) 100 px apart, the 7's box from (`left`, `top`)."""
    pen = Image.new("L", (sheet.shape[1], sheet.shape[0]), 0)
    draw = ImageDraw.Draw(pen)
    for number, points in enumerate([SEVEN, ONE, FOUR]):
        draw.line([(left + number * 100 + x * 0.62, top + y * 0.62) for x, y in points], fill=255, width=8,
                  joint="curve")
    return np.round(sheet * (1 - contrast * np.asarray(pen, dtype=np.float64) / 255)).astype(np.uint8)


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(**{**DESK_CASES, "share": st.floats(0.04, 0.2)})
def test_a_number_beside_the_desk_is_read_digit_for_digit(side, share, tilt, desk, paper, shade):
    """The same photos with 7 1 4 written clear of the desk: the three digits are found, nothing of the desk."""
    photo = on_a_photo(sheet_on_a_desk(side, share, tilt, desk, paper, shade))
    boxes = [box for box, _ in segment_number(decode_image(encode(Image.fromarray(photo))))]
    assert len(boxes) == 3 and all(250 <= box[0] and box[2] <= 520 for box in boxes), boxes


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(contrast=st.floats(0.17, 0.3), paper=st.floats(170, 235), seed=st.integers(0, 3))
def test_a_number_in_a_faint_pen_on_a_photo_is_read(contrast, paper, seed):
    """A faint pen (a sixth to a third of the paper's brightness) on a photo with uneven light is read digit for
    digit, not taken for a blank sheet."""
    photo = on_a_photo(shadow_on_a_sheet((0.5, 0.5), 0.0, 0.0, 0.05, paper, seed), contrast)
    assert len(segment_number(decode_image(encode(Image.fromarray(photo))))) == 3


def test_predict_number_prints_each_digit_and_box(tmp_path, capsys):
    checkpoint = save_untrained_checkpoints(tmp_path, names=("cnn",))[0]
    (tmp_path / "number.png").write_bytes(encode(write_number([SEVEN, ONE, FOUR])))
    assert main(["predict", "--number", "--json", str(checkpoint), str(tmp_path / "number.png")]) == 0
    (result,) = json.loads(capsys.readouterr().out)
    assert len(result["number"]) == 3 and len(result["digits"]) == 3
    assert all(len(item["box"]) == 4 and abs(sum(item["probabilities"]) - 1) < 1e-3 for item in result["digits"])
    assert main(["predict", "--number", str(checkpoint), str(tmp_path / "missing.png")]) == 2


def save_fashion_checkpoint(folder) -> "Path":
    """An untrained cnn saved as a Fashion-MNIST checkpoint: a model that does not read digits."""
    from mnistlab.data.registry import DATASETS
    from mnistlab.models import build_model
    from mnistlab.training.checkpoint import save_checkpoint

    path = folder / "fashion.pt"
    save_checkpoint(path, build_model("cnn"), "cnn", {},
                    {"name": "fashion-mnist", "class_names": list(DATASETS["fashion-mnist"].class_names)}, {})
    return path


@pytest.mark.parametrize("options, named", [(["--top-k", "3"], "--top-k"), (["--top-k", "0"], "--top-k"),
                                            (["--show-input", "out"], "--show-input")])
def test_predict_number_refuses_options_it_would_ignore(tmp_path, capsys, options, named):
    checkpoint = save_untrained_checkpoints(tmp_path, names=("cnn",))[0]
    (tmp_path / "number.png").write_bytes(encode(write_number([SEVEN, ONE])))
    assert main(["predict", "--number", *options, str(checkpoint), str(tmp_path / "number.png")]) == 2
    error = capsys.readouterr().err
    assert f"--number does not take {named}" in error and "Traceback" not in error
    assert not (tmp_path / "out").exists()


def test_a_number_is_read_only_by_a_digit_model_and_flags_unsure_digits(tmp_path, capsys):
    image = tmp_path / "number.png"
    image.write_bytes(encode(write_number([SEVEN, ONE, FOUR])))
    assert main(["predict", "--number", str(save_fashion_checkpoint(tmp_path)), str(image)]) == 2
    error = capsys.readouterr().err
    assert "not on handwritten digits" in error and error.count("\n") == 1
    unsure = save_untrained_checkpoints(tmp_path, names=("cnn",), not_sure_threshold=1.0)[0]  # every digit unsure
    assert main(["predict", "--number", "--json", str(unsure), str(image)]) == 0
    (result,) = json.loads(capsys.readouterr().out)
    assert [item["not_sure"] for item in result["digits"]] == [True] * 3
    assert main(["predict", "--number", str(unsure), str(image)]) == 0
    assert capsys.readouterr().out.count("(not sure)") == 3


def write_lines(lines: list[list[list[tuple[int, int]]]], line_step: int, size=(700, 700)) -> Image.Image:
    """Lines of digits (each as `write_number` draws them), one every `line_step` px down from y = 40."""
    image = Image.new("L", size, 255)
    draw = ImageDraw.Draw(image)
    for row, digits in enumerate(lines):
        for number, points in enumerate(digits):
            draw.line([(60 + number * 140 + x, 40 + row * line_step + y) for x, y in points], fill=20, width=14)
    return image


@pytest.mark.parametrize("lines", [[[SEVEN, ONE], [FOUR, SEVEN]], [[SEVEN], [ONE], [FOUR]]])  # two lines, a column
def test_writing_on_several_lines_is_refused_not_read_as_one_number(lines):
    with pytest.raises(PreprocessError, match=f"writing on {len(lines)} lines"):
        segment_number(decode_image(encode(write_lines(lines, line_step=220, size=(700, 40 + 220 * len(lines))))))


@pytest.mark.parametrize("mark", [[(75, 75), (150, 75)], [(50, 330), (480, 330)]])  # a 5's loose bar, an underline
def test_a_mark_that_is_no_digit_is_not_a_second_line(mark):
    image = write_number([FIVE_BODY, SEVEN, ONE], size=(800, 400))
    ImageDraw.Draw(image).line(mark, fill=20, width=10)
    boxes = [box for box, _ in segment_number(decode_image(encode(image)))]
    assert len(boxes) == 3 and all(box[3] < 300 for box in boxes), boxes


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_specks_and_grain_are_no_number(seed):
    """Dots scattered over a page, or a strip of one-pixel marks: nothing a model could read is a guess."""
    rng = np.random.default_rng(seed)
    page = np.full((600, 600), 255, np.uint8)
    page[rng.random(page.shape) < 0.02] = 0
    with pytest.raises(PreprocessError, match="no digit found"):
        segment_number(decode_image(encode(Image.fromarray(page))))
    strip = np.full((3, 60), 255, np.uint8)
    strip[1, ::2] = 0
    with pytest.raises(PreprocessError, match="no digit found"):
        segment_number(decode_image(encode(Image.fromarray(strip))))


@settings(max_examples=100, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), width=st.integers(40, 900), height=st.integers(40, 600),
       density=st.floats(0.002, 0.04), dot=st.integers(1, 2), paper=st.integers(180, 255))
def test_scattered_dots_are_never_read_as_a_number(seed, width, height, density, dot, paper):
    """Any page of 1- or 2-px dots, sparse or dense, on any paper: refused, never a guessed number."""
    rng = np.random.default_rng(seed)
    page = np.full((height, width), paper, np.uint8)
    rows, columns = np.nonzero(rng.random((height, width)) < density)
    for down in range(dot):
        for across in range(dot):
            page[np.minimum(rows + down, height - 1), np.minimum(columns + across, width - 1)] = 0
    with pytest.raises(PreprocessError):
        segment_number(decode_image(encode(Image.fromarray(page))))


DIGIT_STROKES = [ONE, SEVEN, FOUR, ZERO]
WRITTEN = st.lists(st.tuples(st.integers(0, 3), st.integers(-12, 12)), min_size=1, max_size=5)  # (digit, raised)


def write_rows(rows: list[list[tuple[int, int]]], gap: int) -> Image.Image:
    """Rows of (digit, px raised or lowered) with `gap` px between rows (`write_lines`)."""
    lines = [[[(x, y + shift) for x, y in DIGIT_STROKES[digit]] for digit, shift in row] for row in rows]
    return write_lines(lines, line_step=160 + gap, size=(60 + 140 * max(map(len, rows)) + 60,
                                                         40 + len(rows) * (160 + gap) + 40))


@settings(max_examples=40, deadline=None)
@given(rows=st.lists(WRITTEN, min_size=2, max_size=3), gap=st.integers(100, 200))
def test_any_lines_half_a_digit_apart_are_refused(rows, gap):
    """Two or three lines of 1-5 digits, each digit up to 12 px off its line, over half a digit height apart."""
    with pytest.raises(PreprocessError, match=f"writing on {len(rows)} lines"):
        segment_number(decode_image(encode(write_rows(rows, gap))))


@settings(max_examples=40, deadline=None)
@given(row=WRITTEN)
def test_one_uneven_line_is_read_digit_by_digit(row):
    assert len(segment_number(decode_image(encode(write_rows([row], 0))))) == len(row)


def test_more_digits_than_a_number_holds_are_refused_not_cut():
    with pytest.raises(PreprocessError, match="marks than the 12 digits"):
        segment_number(decode_image(encode(write_number([ONE, SEVEN] * 7, step=90, size=(1400, 300)))))


@pytest.mark.slow
def test_numbers_are_read_exactly(seed_protocol_run, real_data_dir):
    """Held-out numbers (MNIST test digits 5000-9999): >= 95% of 4-digit numbers read exactly when clean, 90% in
    the photo-like condition."""
    from mnistlab.data.datasets import load_dataset
    from mnistlab.vision.numbers import read_number
    from mnistlab.vision.loading import load_model

    dataset = load_dataset("mnist", real_data_dir, progress=False)
    loaded = load_model(seed_protocol_run / "cnn.pt")
    right = {condition: [0, 0] for condition in number_eval.CONDITIONS}
    for item in number_eval.number_set(dataset.test_images, dataset.test_labels, "held-out"):
        if len(item.labels) != 4:
            continue
        try:
            read = read_number(loaded, item.data)["number"]
        except PreprocessError:
            read = ""
        right[item.condition][0] += read == "".join(map(str, item.labels))
        right[item.condition][1] += 1
    print(f"\nheld-out 4-digit numbers read exactly: {right}")
    assert right["clean"][0] >= 0.95 * right["clean"][1] and right["photo"][0] >= 0.90 * right["photo"][1], right


def seven_gap_one_four(height: int) -> Image.Image:
    """7 1 4 with a gap 1.7 digit heights wide after the 7 (160-px digits, 174 px with the pen): its right edge at
    x = 167, the 1's left edge at x = 443; an image 900 px wide and `height` tall, for a mark drawn in the gap."""
    image = write_number([SEVEN, ONE, ONE, FOUR], step=170, size=(900, height))
    ImageDraw.Draw(image).rectangle([60 + 100 + 8, 0, 60 + 2 * 170 + 50 - 8, height - 1], fill=255)  # a 1 taken out
    return image


@settings(max_examples=25, deadline=None)
@given(length=st.integers(40, 75), slant=st.floats(5, 35), place=st.floats(0.35, 0.65), head=st.booleans())
def test_a_long_comma_between_digits_is_refused(length, slant, place, head):
    """7,14 with a comma a quarter to nearly half the digits' 160-px height: a stroke from the baseline down and
    to the left, with or without a round head, in the middle third of a gap 1.7 digit heights wide. Taller than a
    point, it is still no digit: refused as a mark, not read as a 1."""
    image = seven_gap_one_four(height=340)
    draw = ImageDraw.Draw(image)
    x = 167 + place * (444 - 167)
    end = (x - length * math.sin(math.radians(slant)), 225 + length * math.cos(math.radians(slant)))
    draw.line([(x, 225), end], fill=20, width=12)
    if head:
        draw.ellipse([x - 9, 215, x + 9, 233], fill=20)
    with pytest.raises(PreprocessError, match="mark much smaller than the digits"):
        segment_number(decode_image(encode(image)))


@settings(max_examples=30, deadline=None)
@given(comma=st.booleans(), size=st.integers(20, 40), length=st.integers(40, 70), slant=st.floats(5, 35),
       clear=st.floats(0.13, 0.33), beside_first=st.booleans())
def test_a_point_or_a_comma_close_to_a_digit_is_refused(comma, size, length, slant, clear, beside_first):
    """7.14 or 7,14 written as decimals are: the mark 0.13-0.33 of the digits' height (174 px with the pen) clear
    of the digit before or after it (nearer than a point standing apart), a point on the baseline or a comma
    hanging below it. It is refused as a mark, not taken into the digit beside it (7.14 read as 714)."""
    image = seven_gap_one_four(height=340)
    draw = ImageDraw.Draw(image)
    across = round(length * math.sin(math.radians(slant)))
    reach = across + 12 if comma else size  # the mark's width, a 12-px pen's included
    left = round(167 + clear * 174) if beside_first else round(443 - clear * 174) - reach  # 7's right, 1's left
    if comma:  # from the baseline down and to the left
        x = left + 6 + across
        draw.line([(x, 225), (x - across, 225 + length * math.cos(math.radians(slant)))], fill=20, width=12)
    else:
        draw.ellipse([left, 230 - size, left + size, 230], fill=20)
    with pytest.raises(PreprocessError, match="mark much smaller than the digits"):
        segment_number(decode_image(encode(image)))


def heavy_number(pen: int, point: tuple[int, int] | None = None) -> Image.Image:
    """00 1 written with a heavy pen (160-px digits, a touching pair of 0s, the 1 1.7 digit heights after them),
    and a round point of `point` = (size, centre column) on the baseline."""
    image = Image.new("L", (1000, 300), 255)
    draw = ImageDraw.Draw(image)
    for left in (60, 155):  # the second 0 touches the first
        draw.ellipse([left, 70, left + 100, 230], outline=20, width=pen)
    draw.line([(527 + pen // 2, 70), (527 + pen // 2, 230)], fill=20, width=pen)
    if point:
        size, centre = point
        draw.ellipse([centre - size // 2, 230 - size, centre + size // 2, 230], fill=20)
    return image


@settings(max_examples=15, deadline=None)
@given(size=st.integers(20, 24), pen=st.integers(30, 36), place=st.floats(0.4, 0.6))
def test_a_point_beside_heavy_digits_is_refused(size, pen, place):
    """00.1: a point an eighth of the digits' height in the gap. The pair of 0s carries over 30 times the point's
    ink, so by ink alone the point is a speck; it is refused as a mark, not dropped (which would read 001)."""
    centre = round(255 + place * 272)
    image = heavy_number(pen, (size, centre))
    pixels = np.asarray(image) < 128
    assert pixels[:, centre - size:centre + size].sum() < 0.03 * pixels[:, :260].sum()  # a speck by ink alone
    with pytest.raises(PreprocessError, match="mark much smaller than the digits"):
        segment_number(decode_image(encode(image)))


@pytest.mark.parametrize("centre", [25, 620, 900])
def test_a_speck_beyond_the_first_or_last_digit_is_no_point(centre):
    """The same speck in the margin before or after the number (a crumb, a blot) stands between no digits: the
    number is read without it, not refused."""
    assert len(segment_number(decode_image(encode(heavy_number(32, (22, centre)))))) == 3


def test_serve_reads_a_number_with_boxes(tmp_path):
    from fastapi.testclient import TestClient

    from mnistlab.serve.app import create_app

    save_untrained_checkpoints(tmp_path, names=("cnn",))
    client = TestClient(create_app([tmp_path], max_pixels=1_000_000, allowed_hosts=["testserver"]))
    data = encode(write_number([SEVEN, ONE, FOUR]))
    for kwargs in ({"content": data, "headers": {"content-type": "image/png"}},
                   {"files": {"image": ("number.png", data, "image/png")}}):
        body = client.post("/api/predict?number=true", **kwargs).json()
        assert len(body["number"]) == 3 and [len(item["box"]) for item in body["digits"]] == [4, 4, 4]
        assert all(len(item["input"]) == 784 for item in body["digits"])
    for query in ("number=maybe", "number=true&number=false", "Number=true", "numbers=true"):
        response = client.post(f"/api/predict?{query}", content=data, headers={"content-type": "image/png"})
        assert response.status_code == 422 and response.json()["error"], query
    busted = client.post("/api/predict?number=true&_=123", content=data, headers={"content-type": "image/png"})
    assert len(busted.json()["number"]) == 3  # a cache-buster is ignored


def test_serve_reads_a_number_with_the_first_digit_model(tmp_path):
    from fastapi.testclient import TestClient

    from mnistlab.serve.app import create_app

    fashion = save_fashion_checkpoint(tmp_path)
    digits = save_untrained_checkpoints(tmp_path, names=("cnn",))[0]
    data = encode(write_number([SEVEN, ONE, FOUR]))
    client = TestClient(create_app([fashion, digits], max_pixels=1_000_000, allowed_hosts=["testserver"]))
    body = client.post("/api/predict?number=true", content=data, headers={"content-type": "image/png"}).json()
    assert body["number"] == "".join(item["predictions"][1]["top_class"] for item in body["digits"])
    assert body["number"].isdigit()
    alone = TestClient(create_app([fashion], max_pixels=1_000_000, allowed_hosts=["testserver"]))
    response = alone.post("/api/predict?number=true", content=data, headers={"content-type": "image/png"})
    assert response.status_code == 422 and "digit" in response.json()["error"]
    blank = encode(Image.new("L", (300, 200), 255))
    response = client.post("/api/predict?number=true", content=blank, headers={"content-type": "image/png"})
    assert response.status_code == 422 and "no digit found" in response.text


def test_page_outlines_each_digit_of_an_uploaded_number(chromium, tmp_path):
    from mnistlab.serve.app import create_app
    from serve_support import live_server

    photo = tmp_path / "number.png"
    write_number([SEVEN, ONE, FOUR]).save(photo)
    app = create_app(save_untrained_checkpoints(tmp_path, names=("cnn",)))
    with live_server(app) as base_url:
        page = chromium.new_page(viewport={"width": 980, "height": 560})
        problems = []
        page.on("pageerror", lambda error: problems.append(str(error)))
        try:
            page.goto(base_url + "/")
            page.wait_for_selector(".model .bar", timeout=10_000)
            page.check("#as-number")
            page.set_input_files("#photo", str(photo))
            page.wait_for_function("() => document.getElementById('status').textContent.includes('Read as the number')",
                                   timeout=20_000)
            status = page.text_content("#status")
            outline = page.evaluate("() => { const d = document.getElementById('pad').getContext('2d')"
                                    ".getImageData(0, 0, 280, 280).data; let n = 0;"
                                    " for (let i = 0; i < d.length; i += 4) if (d[i] > 200 && d[i + 1] < 120) n++;"
                                    " return n; }")
        finally:
            page.close()
    assert not problems, problems
    assert "(3 digits)" in status, status
    assert outline > 3 * 40  # three boxes outlined in red on the photo


POINT, COMMA = [(40, 145), (58, 160)], [(50, 145), (56, 160), (44, 178)]


@pytest.mark.parametrize("mark", [POINT, COMMA])
def test_a_point_or_a_comma_between_digits_is_refused_not_read_as_a_digit(mark):
    """7.14 or 7,14 written with room around the mark: it is far smaller than the digits, and reading it as the
    digit it looks most like (3.14 as 3014) would give a wrong number, so it is refused with the mark's place."""
    written = [SEVEN, mark, ONE, FOUR]
    with pytest.raises(PreprocessError, match=r"mark much smaller than the digits .* at x=\d+ .*only digits") as error:
        segment_number(decode_image(encode(write_number(written, step=170, size=(900, 300)))))
    assert 60 + 170 < int(re.search(r"x=(\d+)", str(error.value)).group(1)) < 60 + 2 * 170  # after the 7, before the 1


@settings(max_examples=25, deadline=None)
@given(size=st.integers(20, 50), lift=st.integers(0, 80), place=st.floats(0.35, 0.65))
def test_any_point_between_digits_is_refused(size, lift, place):
    """Any round mark 20-50 px across (an eighth to a third of the digits' 160-px height), from the baseline to the
    middle, in the middle third of a 1.7-digit-height gap between a 7 and a 1: refused as a mark."""
    image = seven_gap_one_four(height=300)
    draw = ImageDraw.Draw(image)
    left = round(167 + place * (444 - 167) - size / 2)  # the gap runs from the 7's right edge to the 1's stroke
    draw.ellipse([left, 230 - lift - size, left + size, 230 - lift], fill=20)
    with pytest.raises(PreprocessError, match="mark much smaller than the digits"):
        segment_number(decode_image(encode(image)))
