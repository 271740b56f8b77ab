"""Figures for robustness and calibration: accuracy sweeps and reliability diagrams.

Like `plots`, each function takes computed numbers (from `robustness` and
`calibration`) and writes one PNG; none computes a metric.
"""

from __future__ import annotations

import os

import numpy as np
from matplotlib.figure import Figure

from mnistlab.reporting.plots import save_figure


def plot_sweep(amounts, bands: dict[str, tuple], xlabel: str, title: str, path: str | os.PathLike) -> None:
    """Accuracy (%) against a shift or rotation amount: one line per model, `bands[model] = (mean, std)` over seeds.

    The shaded band is +-1 std; a single seed gives std 0 and no band.
    """
    figure = Figure(figsize=(6, 4))
    axes = figure.add_subplot()
    amounts = np.asarray(amounts)
    for name, (mean, spread) in bands.items():
        mean, spread = 100 * np.asarray(mean), 100 * np.asarray(spread)
        line, = axes.plot(amounts, mean, marker="o", markersize=3, label=name)
        axes.fill_between(amounts, mean - spread, mean + spread, color=line.get_color(), alpha=0.2, linewidth=0)
    axes.set_xlabel(xlabel)
    axes.set_ylabel("test accuracy (%)")
    axes.set_ylim(0, 100)
    axes.set_title(title)
    axes.grid(alpha=0.3)
    axes.legend()
    save_figure(figure, path)


def plot_reliability_diagram(panels: dict[str, dict], title: str, path: str | os.PathLike) -> None:
    """One panel per entry (e.g. "before" and "after" temperature scaling): accuracy per confidence bin.

    Each `panels[label]` is a `calibration.reliability_bins` table, optionally with an "ece"
    entry shown in the panel's title. Bars are the bins' accuracies, the red outline their mean
    confidence; a calibrated model's bars meet the diagonal. Empty bins are left blank.
    """
    figure = Figure(figsize=(4.2 * len(panels), 4.2))
    for position, (label, table) in enumerate(panels.items(), start=1):
        axes = figure.add_subplot(1, len(panels), position)
        edges = np.asarray(table["edges"])
        filled = np.asarray(table["count"]) > 0
        left, width = edges[:-1][filled], np.diff(edges)[filled]
        accuracy, confidence = np.asarray(table["accuracy"])[filled], np.asarray(table["confidence"])[filled]
        axes.bar(left, accuracy, width=width, align="edge", color="tab:blue", edgecolor="white", label="accuracy")
        axes.bar(left, confidence, width=width, align="edge", fill=False, edgecolor="tab:red", linewidth=1,
                 label="mean confidence")
        axes.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=1)
        axes.set_xlim(0, 1)
        axes.set_ylim(0, 1)
        axes.set_xlabel("confidence (top probability)")
        axes.set_ylabel("accuracy")
        axes.set_title(label if "ece" not in table else f"{label}: ECE {100 * table['ece']:.2f}%")
        axes.legend(loc="upper left")
    figure.suptitle(title)
    save_figure(figure, path)
