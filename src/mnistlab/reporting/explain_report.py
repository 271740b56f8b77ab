"""The report's hard-digits and attribution sections and their figures.

Like `report`, this reads only the run folder: `predictions.npz` for the hard
digits (every run has them), `attributions.npz` for the attributions (runs made
with `compare --explain` or completed by `report --explain`; left out otherwise).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mnistlab.evaluation.hard_digits import error_share_in_hardest, hardest_first, wrong_counts
from mnistlab.reporting.attribution_plots import plot_attribution_grid, plot_class_means
from mnistlab.reporting.drawing import draw
from mnistlab.reporting.document import FigureRef, Section, Table, percent
from mnistlab.reporting.plots import plot_image_gallery
from mnistlab.runs.arrays import RunArrays
from mnistlab.runs.folder import HARD_DIGITS_PLOT, attribution_plot_name, read_attributions

HARDEST_SHOWN = 24  # images in the gallery of hard digits (3 rows of 8)
HARDEST_FRACTION = 0.01  # the share of test images whose errors the table counts


def explain_sections(run_dir: Path, metrics: dict, arrays: RunArrays) -> list[Section]:
    """Draw the figures and return the sections: hard digits, then each model's attributions if the run has them."""
    sections = [hard_digits_section(run_dir, metrics, arrays)]
    attributions = read_attributions(run_dir)
    if attributions is not None:
        sections.append(attribution_section(run_dir, metrics, attributions))
    return sections


def _class_name(names: list[str], index) -> str:
    return names[index] if index < len(names) else str(int(index))


def hard_digits_section(run_dir: Path, metrics: dict, arrays: RunArrays) -> Section:
    """The 24 test images most runs get wrong, and each model's share of errors in the 1% hardest."""
    names, models = metrics["dataset"]["class_names"], list(metrics["models"])
    predicted = {name: arrays.predicted[name] for name in models}
    probabilities = {name: arrays.probabilities(name) for name in models if name in arrays.log_probabilities}
    order = hardest_first(arrays.labels, predicted, probabilities)
    counts = wrong_counts(arrays.labels, predicted)
    runs = sum(len(values) for values in predicted.values())
    shown = [int(index) for index in order[:HARDEST_SHOWN] if counts[index] > 0]
    captions = [f"true {_class_name(names, arrays.labels[i])}, {counts[i]}/{runs} wrong\n" +
                " ".join(f"{name}: {_class_name(names, np.bincount(predicted[name][:, i]).argmax())}"
                         for name in models) for i in shown]
    draw(plot_image_gallery, arrays.images_at(shown), captions,
         f"The {len(shown)} hardest test images: most of the {runs} runs (models x seeds) get them wrong",
         run_dir / HARD_DIGITS_PLOT)
    share = error_share_in_hardest(arrays.labels, predicted, order, HARDEST_FRACTION)
    hardest = max(1, int(np.ceil(HARDEST_FRACTION * len(arrays.labels))))
    table = Table(["model", "errors (all seeds)", f"on the {hardest:,} hardest images", "share of its errors (%)"],
                  [[name, f"{row['errors']:,}", f"{row['in_hardest']:,}", percent(row["share"], 1)]
                   for name, row in share.items()])
    return Section("Hard digits", [
        f"An image's hardness is how many of the {runs} runs (every model and seed) misclassify it; ties go to the "
        f"lower mean probability of its true class. Under each image: its label, how many runs miss it, and each "
        f"model's most frequent answer over its seeds.",
        FigureRef(HARD_DIGITS_PLOT, f"Gallery of the {len(shown)} hardest test images, each captioned with its true "
                                    f"label, how many of the {runs} runs misclassify it and each model's answer"),
        f"Share of each model's errors that fall on the {percent(HARDEST_FRACTION, 0)}% hardest test images "
        f"({hardest:,}): errors spread evenly would put {percent(HARDEST_FRACTION, 0)}% there.",
        table,
    ])


def attribution_section(run_dir: Path, metrics: dict, columns: dict[str, np.ndarray]) -> Section:
    """Per model: Integrated Gradients and occlusion on the fixed test digits, and the mean map of each class."""
    names = metrics["dataset"]["class_names"]
    labels, images = columns["labels"], columns["images"]
    blocks = [
        f"What each model looks at, on the same {len(labels)} test digits for every model (the first of each "
        f"class), explained for the class the model predicts, against a black image. Red pixels raise that class's "
        f"logit, blue ones lower it; each map has its own scale. Integrated Gradients sums to the logit's rise from "
        f"black; occlusion is the logit's drop when a 4x4 patch over the pixel is blacked out. Per class: the mean "
        f"Integrated Gradients map of the first {int(columns['mean_counts'].max())} test digits of each class, "
        f"explained for their true class (one scale for all classes). Each model's first seed is shown."]
    for name in metrics["models"]:
        if f"integrated_gradients__{name}" not in columns:
            continue
        predicted = columns[f"predicted__{name}"]
        captions = [f"{_class_name(names, label)}→{_class_name(names, guess)}"
                    for label, guess in zip(labels, predicted)]
        draw(plot_attribution_grid, images, {"IG": columns[f"integrated_gradients__{name}"],
                                            "occlusion": columns[f"occlusion__{name}"]}, captions,
             f"{name}: attributions for its predicted class (true→predicted)", run_dir / attribution_plot_name(name))
        draw(plot_class_means, columns[f"class_means__{name}"], names, f"{name}: mean Integrated Gradients per class",
             run_dir / attribution_plot_name(name, per_class=True))
        blocks += [
            FigureRef(attribution_plot_name(name), f"{name}: {len(labels)} test digits in columns with their true and "
                                                   f"predicted class; below each, its Integrated Gradients and "
                                                   f"occlusion maps in red (raises the class) and blue (lowers it)"),
            FigureRef(attribution_plot_name(name, per_class=True),
                      f"{name}: the mean Integrated Gradients map of each class, red where ink raises the true "
                      f"class's logit and blue where it lowers it"),
        ]
    return Section("What the models look at", blocks)
