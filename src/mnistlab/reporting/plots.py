"""Figures for run reports. Each function takes computed numbers and writes one PNG; none computes metrics."""

from __future__ import annotations

import math
import os

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.image import imsave

from mnistlab.common.atomic import atomic_path

DPI = 120
PAD_INCHES = 0.1  # white margin around what a figure draws (savefig's default pad)
PNG_OPTIONS = {"compress_level": 1}  # zlib's fastest: encoding a figure takes a third less time, its file 5-10% more


def save_figure(figure: Figure, path: str | os.PathLike) -> None:
    """Write `figure` to `path` as a PNG cropped to what it draws, with a margin; whole or not at all (see
    `atomic_path`).

    The figure is drawn once and the image cropped to its tight box: `savefig(bbox_inches="tight")` would lay
    every text out twice, once to measure the box and once to draw, and text is most of a figure's cost. A
    figure that draws past its own edges is left to savefig, which widens the image to take that in.
    """
    figure.set_dpi(DPI)
    canvas = FigureCanvasAgg(figure)
    canvas.draw()
    drawn = np.asarray(canvas.buffer_rgba())
    tight = figure.get_tightbbox(canvas.get_renderer())
    height, width = drawn.shape[0] / DPI, drawn.shape[1] / DPI  # inches
    past_edge = max(-tight.x0, -tight.y0, tight.x1 - width, tight.y1 - height) * DPI  # pixels
    with atomic_path(path) as temporary:
        if past_edge >= 1:  # a whole pixel past an edge is not in the image (its size in pixels is rounded down)
            figure.savefig(temporary, format="png", dpi=DPI, bbox_inches="tight", pad_inches=PAD_INCHES,
                           pil_kwargs=PNG_OPTIONS)
        else:
            image = _cropped(drawn, tight.padded(PAD_INCHES), figure.get_facecolor())
            imsave(temporary, image, format="png", dpi=DPI, pil_kwargs=PNG_OPTIONS)


def _cropped(drawn: np.ndarray, box, background) -> np.ndarray:
    """The part of a drawn RGBA image (H, W, 4) inside `box` (inches, from the bottom left), where the box
    reaches past the image filled with `background` (RGBA in [0, 1]), as savefig fills its margin."""
    left, right = math.floor(box.x0 * DPI), math.ceil(box.x1 * DPI)
    top, bottom = math.floor(drawn.shape[0] - box.y1 * DPI), math.ceil(drawn.shape[0] - box.y0 * DPI)  # rows down
    image = np.empty((bottom - top, right - left, 4), np.uint8)
    image[:] = np.round(np.array(background) * 255)
    inside = drawn[max(top, 0):bottom, max(left, 0):right]
    image[max(-top, 0):, max(-left, 0):][:inside.shape[0], :inside.shape[1]] = inside
    return image


def plot_validation_accuracy(histories: dict[str, list[dict]], path: str | os.PathLike) -> None:
    """One line per model: validation accuracy (%) after each epoch."""
    figure = Figure(figsize=(6, 4))
    axes = figure.add_subplot()
    for name, history in histories.items():
        epochs = [record["epoch"] for record in history]
        axes.plot(epochs, [100 * record["val_accuracy"] for record in history], marker="o", label=name)
    axes.set_xlabel("epoch")
    axes.set_ylabel("validation accuracy (%)")
    axes.set_title("Validation accuracy per epoch")
    axes.xaxis.get_major_locator().set_params(integer=True)
    axes.grid(alpha=0.3)
    axes.legend()
    save_figure(figure, path)


def plot_confusion_matrix(
    matrix, class_names: list[str], title: str, path: str | os.PathLike, normalised: bool = False
) -> None:
    """A labelled confusion matrix: rows are true classes, columns predicted; cells counts, or shares if `normalised`."""
    counts = np.asarray(matrix) * (100 if normalised else 1)  # shares are shown as percentages
    figure = Figure(figsize=(6.5, 5.5))
    axes = figure.add_subplot()
    image = axes.imshow(counts, cmap="Blues", vmin=0, vmax=100 if normalised else None)
    figure.colorbar(image, ax=axes, fraction=0.046, pad=0.04)
    ticks = range(len(class_names))
    axes.set_xticks(ticks, class_names, rotation=45 if max(map(len, class_names)) > 2 else 0, ha="right")
    axes.set_yticks(ticks, class_names)
    axes.set_xlabel("predicted label")
    axes.set_ylabel("true label")
    axes.set_title(title)
    threshold = counts.max() / 2
    for row, column in np.ndindex(counts.shape):
        value = counts[row, column]
        text = (f"{value:.1f}" if value >= 0.05 else "0") if normalised else str(value)
        axes.text(column, row, text, ha="center", va="center", fontsize=6 if normalised else 7,
                  color="white" if value > threshold else "black")
    save_figure(figure, path)


def plot_training_curves(curves: dict[str, dict[str, tuple]], title: str, path: str | os.PathLike) -> None:
    """Loss and accuracy panels; `curves[panel][label] = (epochs, mean, std)`, drawn as a line with a +-1 std band."""
    figure = Figure(figsize=(10, 4))
    for position, (panel, lines) in enumerate(curves.items(), start=1):
        axes = figure.add_subplot(1, len(curves), position)
        for label, (epochs, mean, spread) in lines.items():
            line, = axes.plot(epochs, mean, marker="o", markersize=3, label=label,
                              linestyle="--" if label.startswith("validation") else "-")
            axes.fill_between(epochs, mean - spread, mean + spread, color=line.get_color(), alpha=0.2, linewidth=0)
        axes.set_xlabel("epoch")
        axes.set_ylabel(panel)
        axes.xaxis.get_major_locator().set_params(integer=True)
        axes.grid(alpha=0.3)
        axes.legend()
    figure.suptitle(title)
    save_figure(figure, path)


def plot_image_gallery(images: np.ndarray, captions: list[str], title: str, path: str | os.PathLike,
                       columns: int = 8) -> None:
    """A grid of 28x28 images, each with its caption (true label, predictions, confidences) above it.

    The grid is pasted into one image and drawn in one axes: five times faster than an axes per cell.
    """
    pixels_per_inch = 27  # an image is 28 pixels, about an inch, wide
    lines = max((caption.count("\n") + 1 for caption in captions), default=1)
    rows = max(1, -(-len(images) // columns))
    caption_height = 4 * lines + 2  # 7-point text is about 4 pixels high at this scale
    cell_width, cell_height = 28 + 6, caption_height + 28 + 3
    canvas = np.zeros((rows * cell_height, columns * cell_width), dtype=np.uint8)  # 0 is drawn white
    figure = Figure(figsize=(canvas.shape[1] / pixels_per_inch, canvas.shape[0] / pixels_per_inch + 0.5))
    axes = figure.add_axes((0, 0, 1, 1 - 0.5 / figure.get_figheight()))
    axes.set_axis_off()
    for position, (image, caption) in enumerate(zip(images, captions)):
        row, column = divmod(position, columns)
        top, left = row * cell_height + caption_height, column * cell_width + 3
        canvas[top:top + 28, left:left + 28] = image
        axes.text(left + 14, top - 1, caption, ha="center", va="bottom", fontsize=7)
    axes.imshow(canvas, cmap="gray_r", vmin=0, vmax=255, interpolation="nearest")
    if len(images) == 0:
        axes.text(canvas.shape[1] / 2, canvas.shape[0] / 2, "none", ha="center", va="center")
    figure.suptitle(title)
    save_figure(figure, path)
