"""The learning curve of a `compare --train-sizes` sweep: its figure, its sections, its terminal table.

Everything here takes the sweep's summary (`study.sizes.summarise_sweep`, saved as
learning_curve.json) and computes nothing.
"""

from __future__ import annotations

import os

import numpy as np
from matplotlib.figure import Figure

from mnistlab.reporting.document import FigureRef, Section, Table, format_p, percent
from mnistlab.reporting.plots import save_figure


def plot_learning_curves(sweep: dict, path: str | os.PathLike) -> None:
    """Test accuracy (%) against training-set size (log scale): per model the mean over seeds, its 95% band."""
    figure = Figure(figsize=(6.5, 4.2))
    axes = figure.add_subplot()
    sizes = np.asarray(sweep["sizes"], dtype=float)
    for name, curve in sweep["models"].items():
        mean = 100 * np.asarray(curve["mean"], dtype=float)
        line, = axes.plot(sizes, mean, marker="o", label=name)
        if all(value is not None for value in curve["ci_low"]):
            axes.fill_between(sizes, 100 * np.asarray(curve["ci_low"]), 100 * np.asarray(curve["ci_high"]),
                              color=line.get_color(), alpha=0.2, linewidth=0)
    axes.set_xscale("log")
    axes.set_xticks(sizes, [f"{int(size):,}" for size in sizes])
    axes.minorticks_off()
    axes.set_xlabel("training-set size (images, validation included)")
    axes.set_ylabel("test accuracy (%)")
    seeds = len(sweep["seeds"])
    band = f"mean and 95% interval over {seeds} seeds" if seeds > 1 else "one seed"
    axes.set_title(f"Learning curves on {sweep['dataset']} ({band})")
    axes.grid(alpha=0.3)
    axes.legend()
    save_figure(figure, path)


def learning_curve_rows(sweep: dict) -> list[list[str]]:
    """One row per size: each model's mean accuracy with its interval, and each pair's McNemar result."""
    rows = []
    for index, size in enumerate(sweep["sizes"]):
        row = [f"{size:,}"]
        for curve in sweep["models"].values():
            low, high = curve["ci_low"][index], curve["ci_high"][index]
            interval = f" ({percent(low)}–{percent(high)})" if low is not None else ""
            row.append(f"{percent(curve['mean'][index])}{interval}")
        for comparison in sweep["comparisons"][index]:
            verdict = "significant" if comparison["significant"] else "not significant"
            row.append(f"{percent(comparison['difference'])} points, p = {format_p(comparison['p_value_holm'])} "
                       f"({verdict})")
        rows.append(row)
    return rows


def learning_curve_header(sweep: dict) -> list[str]:
    pairs = [" − ".join(comparison["models"]) for comparison in (sweep["comparisons"] or [[]])[0]]
    return ["training images", *(f"{name} accuracy (%)" for name in sweep["models"]), *pairs]


def learning_curve_sections(sweep: dict, figure_file: str) -> list[Section]:
    """The sweep's page: what was run, the table and the figure."""
    seeds = sweep["seeds"]
    return [Section("Accuracy against training-set size", [
        f"Each model trained once per seed ({', '.join(map(str, seeds))}) on the nested, stratified subset of each "
        f"size (every smaller subset inside every larger one, the same images for every model), "
        f"{percent(sweep['validation_fraction'], 0)}% of it held out for validation; tested on the whole test set. "
        f"Accuracy: mean over seeds with a Student-t 95% interval. Pairs: difference in points and McNemar's test "
        f"pooled over seeds, Holm-adjusted within each size. Each size's full report is in its folder "
        f"({', '.join(sweep['runs'])}).",
        Table(learning_curve_header(sweep), learning_curve_rows(sweep)),
        FigureRef(figure_file, "Line chart of each model's test accuracy (%) against the training-set size on a "
                               "log scale, with a band for the 95% interval over seeds"),
    ])]


def sweep_table(sweep: dict) -> str:
    """The terminal table of the sweep."""
    rows = [learning_curve_header(sweep), *learning_curve_rows(sweep)]
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)
