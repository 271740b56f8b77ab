"""Figures of attribution maps (computed by `explain.attribution`): each function takes arrays and writes one PNG.

Maps are drawn on a diverging scale centred on 0, red where a pixel raises the
explained class's logit and blue where it lowers it, over the digit in faint
gray, each map scaled to its own largest magnitude (a map's colours compare
pixels within it, not across maps).
"""

from __future__ import annotations

import os

import numpy as np
from matplotlib.figure import Figure

from mnistlab.reporting.plots import save_figure

MAP_COLOURS = "bwr"  # blue (lowers the logit), white (no effect), red (raises it)


def _draw_map(axes, image: np.ndarray, values: np.ndarray | None, title: str) -> None:
    """One panel: the image in gray, or a map over a faint copy of it."""
    axes.set_axis_off()
    axes.set_title(title, fontsize=8)
    if values is None:
        axes.imshow(image, cmap="gray", vmin=0, vmax=255, interpolation="nearest")
        return
    scale = float(np.abs(values).max()) or 1.0
    axes.imshow(image, cmap="gray_r", vmin=0, vmax=255 * 4, interpolation="nearest")  # a faint outline of the ink
    axes.imshow(values, cmap=MAP_COLOURS, vmin=-scale, vmax=scale, alpha=0.85, interpolation="nearest")


def plot_attribution(image: np.ndarray, maps: dict[str, np.ndarray], title: str, path: str | os.PathLike) -> None:
    """One image: the 28x28 input the model saw, then each named map (e.g. Integrated Gradients, occlusion)."""
    figure = Figure(figsize=(2.2 * (1 + len(maps)), 2.6))
    panels = [("input (28x28)", None), *maps.items()]
    for position, (name, values) in enumerate(panels, start=1):
        _draw_map(figure.add_subplot(1, len(panels), position), image, values, name)
    figure.suptitle(title, fontsize=9)
    save_figure(figure, path)


def plot_attribution_grid(images: np.ndarray, maps: dict[str, np.ndarray], captions: list[str], title: str,
                          path: str | os.PathLike) -> None:
    """Several images in columns; a row for the inputs, then a row per named map (N, 28, 28)."""
    rows, columns = 1 + len(maps), len(images)
    figure = Figure(figsize=(max(1.0 * columns, 4), 1.15 * rows + 0.6))
    for column, image in enumerate(images):
        _draw_map(figure.add_subplot(rows, columns, column + 1), image, None, captions[column])
        for row, (name, values) in enumerate(maps.items(), start=1):
            axes = figure.add_subplot(rows, columns, row * columns + column + 1)
            _draw_map(axes, image, values[column], "")
            if column == 0:
                axes.text(-4, 14, name, rotation=90, ha="right", va="center", fontsize=7)
    figure.suptitle(title, fontsize=9)
    save_figure(figure, path)


def plot_class_means(means: np.ndarray, class_names: list[str], title: str, path: str | os.PathLike) -> None:
    """The mean map of each class (classes, 28, 28), on one colour scale shared by all classes."""
    scale = float(np.abs(means).max()) or 1.0
    columns = min(len(means), 10)
    rows = -(-len(means) // columns)
    figure = Figure(figsize=(1.1 * columns, 1.25 * rows + 0.5))
    for index, values in enumerate(means):
        axes = figure.add_subplot(rows, columns, index + 1)
        axes.set_axis_off()
        axes.set_title(class_names[index] if index < len(class_names) else str(index), fontsize=8)
        axes.imshow(values, cmap=MAP_COLOURS, vmin=-scale, vmax=scale, interpolation="nearest")
    figure.suptitle(title, fontsize=9)
    save_figure(figure, path)
