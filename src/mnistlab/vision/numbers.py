"""Read a handwritten number: find each digit in an image, left to right, and classify each one.

The ink is found as `preprocess` finds it (paper estimated per pixel, threshold
at half the ink's peak), then split into digits instead of keeping one:

1. connected components of the ink; specks (under SPECK_SHARE of the heaviest),
   lines across the image and components touching the frame are dropped;
2. components that overlap horizontally by half the narrower one's width are one
   digit (the bar of a 5, a broken stroke);
3. a group much wider than the number's digits are tall is a touching pair (or
   more): it is cut at the column with the least ink near its expected joins;
4. each digit is cropped with its own gray levels and normalised like a single
   digit (stroke width, 20-px box, centre of mass).

    >>> from mnistlab.vision.numbers import segment_number
    >>> digits = segment_number(image)   # [(box (left, top, right, bottom), (28, 28) uint8), ...] left to right

`mnistlab predict --number CHECKPOINT photo.jpg` reads each image as one number.
"""

from __future__ import annotations

import numpy as np
from PIL import Image
from scipy import ndimage

from mnistlab.common.errors import PreprocessError
from mnistlab.data.decode import MAX_FILE_PIXELS, decode_image, image_to_gray, read_image_bytes
from mnistlab.vision.ink import FAINT_SHARE, LINE_SPAN, NO_DIGIT, SPECK_SHARE, ink_strength, ink_threshold
from mnistlab.vision.preprocess import ink_to_mnist

MAX_DIGITS = 12  # digits read at most from one image; more components are specks or writing that is not a number
OVERLAP_SHARE = 0.5  # of the narrower component's width; components overlapping this much are one digit
WIDE_DIGIT = 1.1  # width / height of the number's median digit height over which a group is split (a touching pair)
CUT_SEARCH = 0.25  # of the expected digit width; a cut is searched this far either side of the expected join


def segment_number(image: Image.Image) -> list[tuple[tuple[int, int, int, int], np.ndarray]]:
    """A decoded image -> its digits left to right: (box in the image's pixels (left, top, right, bottom),
    MNIST-style (28, 28) uint8). `PreprocessError` when there is no digit."""
    gray = image_to_gray(image)
    scale = max(image.size) / max(gray.shape)  # the work copy may be shrunk: boxes are given in the image's pixels
    strength, even = ink_strength(gray)
    threshold = ink_threshold(strength, even)
    groups = _digit_groups(strength > threshold, strength)
    floor = FAINT_SHARE * threshold
    digits = []
    for mask in groups:
        rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
        window = (slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1))
        own = ndimage.binary_dilation(mask, iterations=2)[window]  # its strokes and their soft edges, no neighbour's
        values = strength[window]
        peak = float(np.percentile(values[mask[window]], 90))
        ink = np.clip((values - floor) / max(peak - floor, 1e-6), 0.0, 1.0) * own
        box = tuple(int(round(value * scale)) for value in (cols[0], rows[0], cols[-1] + 1, rows[-1] + 1))
        digits.append((box, ink_to_mnist(ink, thin=not even)))
    return digits


def read_number(loaded, source: bytes | str, max_pixels: int = MAX_FILE_PIXELS) -> dict:
    """Image bytes or a path -> {"number": "2026", "digits": [{"digit", "box", "probabilities"}, ...]} read with
    `loaded` (a `predict.LoadedModel`); `PreprocessError` with a one-line reason when no digit is found."""
    from mnistlab.vision.predict import predict_probabilities

    data = bytes(source) if isinstance(source, (bytes, bytearray)) else read_image_bytes(source)
    digits = segment_number(decode_image(data, max_pixels))
    probabilities = predict_probabilities(loaded.model, np.stack([image for _, image in digits]))
    names = loaded.class_names
    found = [{"digit": names[int(row.argmax())], "box": list(box), "probabilities": [round(float(p), 4) for p in row]}
             for (box, _), row in zip(digits, probabilities)]
    return {"number": "".join(item["digit"] for item in found), "digits": found}


def _digit_groups(mask: np.ndarray, strength: np.ndarray) -> list[np.ndarray]:
    """The thresholded ink (H, W) bool -> one bool mask per digit, left to right."""
    labels, count = ndimage.label(mask, structure=np.ones((3, 3)))
    if count == 0:
        raise PreprocessError(NO_DIGIT)
    boxes = ndimage.find_objects(labels)
    mass = np.bincount(labels[mask], weights=strength[mask], minlength=count + 1)[1:]
    height, width = mask.shape
    spans = np.array([[b[0].start, b[1].start, b[0].stop, b[1].stop] for b in boxes])  # top, left, bottom, right
    line = (spans[:, 2] - spans[:, 0] >= LINE_SPAN * height) | (spans[:, 3] - spans[:, 1] >= LINE_SPAN * width)
    frame = (spans[:, 0] == 0) | (spans[:, 1] == 0) | (spans[:, 2] == height) | (spans[:, 3] == width)
    mass[line] = 0
    if mass[~frame].max(initial=0) > 0:
        mass[frame] = 0
    keep = np.flatnonzero(mass >= SPECK_SHARE * mass.max()) if mass.max() > 0 else []
    if len(keep) == 0:
        raise PreprocessError(NO_DIGIT)
    keep = sorted(keep, key=lambda number: spans[number, 1])
    merged: list[list[int]] = []
    for number in keep:  # left to right: join a component to the group it overlaps horizontally
        left, right = spans[number, 1], spans[number, 3]
        for group in merged:
            group_left, group_right = spans[group, 1].min(), spans[group, 3].max()
            overlap = min(right, group_right) - max(left, group_left)
            if overlap >= OVERLAP_SHARE * min(right - left, group_right - group_left):
                group.append(number)
                break
        else:
            merged.append([number])
    heights = [spans[group, 2].max() - spans[group, 0].min() for group in merged]
    digit_height = float(np.median(heights))
    masks = []
    for group in merged:
        masks.extend(_split_touching(np.isin(labels, np.asarray(group) + 1), digit_height))
    masks = sorted(masks, key=lambda piece: int(np.flatnonzero(piece.any(axis=0))[0]))
    heaviest = max(float(strength[piece].sum()) for piece in masks)
    masks = [piece for piece in masks if float(strength[piece].sum()) >= SPECK_SHARE * heaviest]
    return masks[:MAX_DIGITS]


def _split_touching(mask: np.ndarray, digit_height: float) -> list[np.ndarray]:
    """One group's ink (H, W) bool -> itself, or its pieces when it is as wide as several digits side by side:
    cut at the column with the least ink near each expected join."""
    cols = np.flatnonzero(mask.any(axis=0))
    rows = np.flatnonzero(mask.any(axis=1))
    width, height = cols[-1] - cols[0] + 1, max(rows[-1] - rows[0] + 1, digit_height)
    pieces = int(round(width / (0.75 * height)))
    if width <= WIDE_DIGIT * height or pieces < 2:
        return [mask]
    profile = mask[:, cols[0]:cols[-1] + 1].sum(axis=0).astype(np.float64)
    step = width / pieces
    cuts = []
    for join in range(1, pieces):
        centre = join * step
        low, high = int(max(1, centre - CUT_SEARCH * step)), int(min(width - 1, centre + CUT_SEARCH * step))
        cuts.append(cols[0] + low + int(np.argmin(profile[low:high + 1])))
    result, start = [], 0
    for cut in cuts + [mask.shape[1]]:
        piece = np.zeros_like(mask)
        piece[:, start:cut] = mask[:, start:cut]
        if piece.any():
            result.append(piece)
        start = cut
    return result
