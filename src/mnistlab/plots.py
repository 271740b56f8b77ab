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


def plot_confusion_matrix(matrix: list[list[int]], class_names: list[str], title: str, path: str | os.PathLike) -> None:
    """A labelled confusion matrix: rows are true classes, columns predicted, cells counts."""
    counts = np.asarray(matrix)
    figure = Figure(figsize=(6.5, 5.5))
    axes = figure.add_subplot()
    image = axes.imshow(counts, cmap="Blues")
    figure.colorbar(image, ax=axes, fraction=0.046, pad=0.04)
    ticks = range(len(class_names))
    axes.set_xticks(ticks, class_names, rotation=45 if max(map(len, class_names)) > 2 else 0, ha="right")
    axes.set_yticks(ticks, class_names)
    axes.set_xlabel("predicted label")
    axes.set_ylabel("true label")
    axes.set_title(title)
    threshold = counts.max() / 2
    for row, column in np.ndindex(counts.shape):
        axes.text(column, row, str(counts[row, column]), ha="center", va="center", fontsize=7,
                  color="white" if counts[row, column] > threshold else "black")
    _save(figure, path)
