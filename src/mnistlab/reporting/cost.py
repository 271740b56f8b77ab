"""The report's cost section: what each model costs beside its accuracy, and the accuracy-versus-cost figure.

Reads `metrics.json` only (each model's "cost", see `evaluation.cost`); runs written
before costs were measured have no such section.
"""

from __future__ import annotations

import os
from pathlib import Path

from matplotlib.figure import Figure

from mnistlab.reporting.drawing import draw
from mnistlab.reporting.document import FigureRef, Section, Table, percent
from mnistlab.reporting.plots import save_figure
from mnistlab.runs.folder import COST_PLOT


def has_costs(metrics: dict) -> bool:
    return all("cost" in result for result in metrics["models"].values())


def trade_off_points(metrics: dict) -> dict[str, tuple[float, float]]:
    """Each model's (mean test accuracy, multiply-adds per image)."""
    return {name: (result["test_accuracy"], result["cost"]["multiply_adds"])
            for name, result in metrics["models"].items()}


def best_trade_offs(points: dict[str, tuple[float, float]]) -> list[str]:
    """Names whose (accuracy, multiply-adds) no other model beats on both: at least as accurate and at most as
    costly, and strictly better on one (the Pareto front), in order of cost. It lives here, not beside the cost
    measurement, so that a process drawing the figure never imports PyTorch (see `reporting.drawing`)."""
    front = [name for name, (accuracy, cost) in points.items()
             if not any(other_accuracy >= accuracy and other_cost <= cost and (other_accuracy, other_cost) != (accuracy, cost)
                        for other, (other_accuracy, other_cost) in points.items() if other != name)]
    return sorted(front, key=lambda name: points[name][1])


def draw_cost_figure(run_dir: Path, metrics: dict) -> None:
    if has_costs(metrics):
        draw(plot_accuracy_against_cost, metrics, run_dir / COST_PLOT)


def plot_accuracy_against_cost(metrics: dict, path: str | os.PathLike) -> None:
    """Accuracy (with its interval over seeds) against multiply-adds per image on a log scale; the models no other
    beats on both are filled and joined by a line."""
    points = trade_off_points(metrics)
    front = best_trade_offs(points)
    figure = Figure(figsize=(6.5, 4.2))
    axes = figure.add_subplot()
    for name, result in metrics["models"].items():
        accuracy, cost = points[name]
        interval = result.get("accuracy") or {}
        low, high = interval.get("ci_low"), interval.get("ci_high")
        error = [[100 * (accuracy - low)], [100 * (high - accuracy)]] if None not in (low, high) else None
        on_front = name in front
        axes.errorbar(cost, 100 * accuracy, yerr=error, fmt="o", capsize=3, markersize=7,
                      markerfacecolor=None if on_front else "white", label=name)
        axes.annotate(name, (cost, 100 * accuracy), textcoords="offset points", xytext=(6, 4), fontsize=8)
    axes.plot([points[name][1] for name in front], [100 * points[name][0] for name in front], color="grey",
              linewidth=1, linestyle="--", label="best trade-offs (filled)")
    axes.set_xscale("log")
    axes.set_xlabel("multiply-adds per image (log scale)")
    axes.set_ylabel("test accuracy (%)")
    seeds = len(metrics["seeds"])
    axes.set_title("Accuracy against cost" + (f" (bars: 95% interval over {seeds} seeds)" if seeds > 1 else ""))
    axes.grid(alpha=0.3, which="both")
    axes.legend(fontsize=8)
    save_figure(figure, path)


def cost_section(metrics: dict) -> Section:
    """The cost table and figure, with what each column means."""
    front = best_trade_offs(trade_off_points(metrics))
    table = Table(["model", "parameters", "multiply-adds per image", "checkpoint (KiB)", "latency, 1 image (ms)",
                   "throughput (images/s)", "test accuracy (%)", "best trade-off"])
    for name, result in metrics["models"].items():
        cost = result["cost"]
        size = "–" if cost["checkpoint_bytes"] is None else f"{cost['checkpoint_bytes'] / 1024:,.0f}"
        table.rows.append([name, f"{cost['params']:,}", f"{cost['multiply_adds']:,}", size,
                           f"{cost['inference']['latency_ms_p50']:.2f}", f"{cost['inference']['images_per_second']:,.0f}",
                           percent(result["test_accuracy"]), "yes" if name in front else ""])
    threads = next(iter(metrics["models"].values()))["cost"]["inference"]["threads"]
    return Section("What each model costs", [
        f"Multiply-adds are counted by PyTorch's flop counter for one image. Latency is the median of single-image "
        f"forward passes and throughput is for batches of 256, both measured in this run on "
        f"{threads} thread{'s' if threads != 1 else ''}. A best trade-off is a model that no other model beats on "
        f"both accuracy and multiply-adds.",
        table,
        FigureRef(COST_PLOT, "Test accuracy against multiply-adds per image, log scale; best trade-offs filled"),
    ])
