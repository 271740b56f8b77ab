"""Figures for run reports. Each function takes computed numbers and writes one PNG; none computes metrics."""

from __future__ import annotations

import os

import numpy as np
from matplotlib.figure import Figure

from mnistlab.atomic import atomic_path

DPI = 120


def _save(figure: Figure, path: str | os.PathLike) -> None:
    with atomic_path(path) as temporary:
        figure.savefig(temporary, format="png", dpi=DPI, bbox_inches="tight")


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
    _save(figure, path)


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
    _save(figure, path)


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
    _save(figure, path)


def plot_image_gallery(images: np.ndarray, captions: list[str], title: str, path: str | os.PathLike,
                       columns: int = 8) -> None:
    """A grid of 28x28 images, each with its caption (true label, predictions, confidences) above it."""
    rows = max(1, -(-len(images) // columns))
    lines = max((caption.count("\n") + 1 for caption in captions), default=1)
    figure = Figure(figsize=(columns * 1.25, rows * (1.15 + 0.16 * lines) + 0.4))
    for position in range(rows * columns):
        axes = figure.add_subplot(rows, columns, position + 1)
        axes.set_axis_off()
        if position < len(images):
            axes.imshow(images[position], cmap="gray_r", vmin=0, vmax=255)
            axes.set_title(captions[position], fontsize=7)
    if len(images) == 0:
        figure.axes[0].text(0.5, 0.5, "none", ha="center", va="center")
    figure.suptitle(title)
    _save(figure, path)
