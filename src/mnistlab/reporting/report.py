"""Turn a run's `metrics.json` (and `predictions.npz`) into figures, `report.md`, `report.html` and the terminal table.

Everything here reads only the run folder, so `write_report(run_dir)` can
rebuild the reports long after the run. The report is built once as a list of
sections (paragraphs, tables, figures) and rendered to Markdown here and to
self-contained HTML by `html_report`.
"""

from __future__ import annotations

import os
from pathlib import Path

from mnistlab.evaluation.analysis import curve_band, select_disagreements, select_misclassified
from mnistlab.training.config import describe_training
from mnistlab.common.atomic import write_text_atomic
from mnistlab.evaluation.evaluate import row_normalise
from mnistlab.reporting.html import render_html
from mnistlab.reporting.plots import (plot_confusion_matrix, plot_image_gallery, plot_training_curves,
                                      plot_validation_accuracy)
from mnistlab.reporting.assessment import assessment_sections, draw_assessment_figures
from mnistlab.reporting.cost import cost_section, draw_cost_figure, has_costs
from mnistlab.reporting.drawing import draw, finish_drawing
from mnistlab.reporting.explain_report import explain_sections
from mnistlab.reporting.document import FigureRef, Section, Table, cell_text, format_p, percent
from mnistlab.runs.arrays import RunArrays
from mnistlab.common.errors import MnistlabError
from mnistlab.runs.folder import (ACCURACY_PLOT, DISAGREEMENT_PLOT, METRICS_FILE, PREDICTIONS_FILE, REPORT_HTML,
                                  REPORT_MARKDOWN, confusion_plot_name, curves_plot_name, errors_plot_name,
                                  read_metrics, read_run_arrays)
from mnistlab.runs.claim import locked

GALLERY_SIZE = 24  # images per gallery (3 rows of 8)


def write_report(run_dir: str | os.PathLike, metrics: dict | None = None) -> None:
    """Draw the figures and write `report.md` and `report.html` in `run_dir` from its metrics and predictions."""
    run_dir = Path(run_dir)
    metrics = metrics if metrics is not None else read_metrics(run_dir)
    arrays = read_run_arrays(run_dir)
    missing = sorted(set(metrics["models"]) - set(arrays.predicted))
    if missing:
        raise MnistlabError(f"{run_dir / PREDICTIONS_FILE}: has no predictions of {', '.join(missing)}, a model in "
                            f"{METRICS_FILE}; the two files are from different runs, rerun mnistlab compare")
    draw_figures(run_dir, metrics, arrays)
    draw_assessment_figures(run_dir, metrics, arrays)
    draw_cost_figure(run_dir, metrics)
    sections = report_sections(metrics)
    sections[-1:-1] = explain_sections(run_dir, metrics, arrays)  # before the provenance
    finish_drawing()  # the HTML report embeds the figures
    write_text_atomic(run_dir / REPORT_MARKDOWN, render_markdown(report_title(metrics), sections))
    write_text_atomic(run_dir / REPORT_HTML, render_html(report_title(metrics), sections, run_dir))


def rebuild_report(run_dir: str | os.PathLike) -> None:
    """`mnistlab report RUN_DIR`: check the run's metrics.json, then redraw its figures and reports under its lock.

    A folder that is missing or holds no readable run is an error before anything is written there.
    """
    read_metrics(run_dir)
    with locked(run_dir, create=False):
        write_report(run_dir)


def draw_figures(run_dir: Path, metrics: dict, arrays: RunArrays) -> None:
    """Every figure the report shows, from computed numbers (plots compute nothing)."""
    models, dataset = metrics["models"], metrics["dataset"]
    names = dataset["class_names"]

    def class_name(index) -> str:  # run folders written before class counts followed the data: 10 outputs, fewer names
        return names[index] if index < len(names) else str(int(index))
    draw(plot_validation_accuracy, {name: result["history"] for name, result in models.items()},
         run_dir / ACCURACY_PLOT)
    for name, result in models.items():
        histories = [record["history"] for record in result["seeds"]]
        seeds = len(histories)
        pooled = f" ({seeds} seeds pooled)" if seeds > 1 else ""
        title = f"{name}: confusion matrix on the {dataset['name']} test set{pooled}"
        draw(plot_confusion_matrix, result["confusion_matrix"], names, title, run_dir / confusion_plot_name(name))
        draw(plot_confusion_matrix, row_normalise(result["confusion_matrix"]), names,
             f"{name}: share of each true class (%){pooled}", run_dir / confusion_plot_name(name, normalised=True),
             normalised=True)
        curves = {
            panel: {f"{split} ({name})": curve_band(histories, f"{prefix}_{key}")
                    for split, prefix in (("train", "train"), ("validation", "val"))}
            for panel, key in (("loss", "loss"), ("accuracy", "accuracy"))
        }
        band = f", mean and +-1 std over {seeds} seeds" if seeds > 1 else ""
        draw(plot_training_curves, curves, f"{name}: training curves{band}", run_dir / curves_plot_name(name))
    for name in models:
        predicted, confidence = arrays.predicted[name][0], arrays.confidence[name][0]
        chosen = select_misclassified(arrays.labels, predicted, confidence, GALLERY_SIZE)
        captions = [f"true {class_name(arrays.labels[i])}\npred {class_name(predicted[i])} ({100 * confidence[i]:.0f}%)"
                    for i in chosen]
        draw(plot_image_gallery, arrays.images_at(chosen), captions,
             f"{name}: most confident mistakes (seed {metrics['seeds'][0]})", run_dir / errors_plot_name(name))
    if len(models) > 1:
        predicted = {name: arrays.predicted[name][0] for name in models}
        confidence = {name: arrays.confidence[name][0] for name in models}
        chosen = select_disagreements(arrays.labels, predicted, confidence, GALLERY_SIZE)
        captions = ["\n".join([f"true {class_name(arrays.labels[i])}"] +
                              [f"{name}: {class_name(predicted[name][i])} ({100 * confidence[name][i]:.0f}%)"
                               for name in models]) for i in chosen]
        draw(plot_image_gallery, arrays.images_at(chosen), captions,
             "Test images on which the models disagree (first seed)", run_dir / DISAGREEMENT_PLOT)


SUMMARY_HEADER = ("model", "parameters", "multiply-adds", "test accuracy (%)", "std (points)", "95% CI (%)",
                  "test loss", "train time (s)")


def summary_rows(metrics: dict) -> list[list]:
    """One row per model: mean test accuracy over seeds, its std and t-interval, loss and training seconds."""
    rows = []
    for name, result in metrics["models"].items():
        interval = result.get("accuracy") or {"std": None, "ci_low": None, "ci_high": None}
        ci = "–" if interval["ci_low"] is None else f"{percent(interval['ci_low'])}–{percent(interval['ci_high'])}"
        multiply_adds = f"{result['cost']['multiply_adds']:,}" if "cost" in result else "–"
        rows.append([name, f"{result['params']:,}", multiply_adds,
                     (percent(result["test_accuracy"]), f"models.{name}.test_accuracy"),
                     percent(interval["std"]), ci, f"{result['test_loss']:.4f}", f"{result['train_seconds']:.1f}"])
    return rows


def significance_statements(metrics: dict) -> list[str]:
    """One plain sentence per pair of models saying whether their accuracies differ significantly."""
    statements = []
    for comparison in metrics.get("comparisons", []):
        first, second = comparison["models"]
        sign = 1 if comparison["difference"] >= 0 else -1
        better, worse = (first, second) if sign > 0 else (second, first)
        low, high = sorted((sign * comparison["ci_low"], sign * comparison["ci_high"]))
        gap = f"{percent(sign * comparison['difference'])} points (95% CI {percent(low)} to {percent(high)})"
        seeds = len(metrics["seeds"])
        test = f"McNemar p = {format_p(comparison['p_value_holm'])} ({f'pooled over {seeds} seeds, ' if seeds > 1 else ''}Holm-adjusted)"
        if comparison["significant"]:
            statements.append(f"**{better} is significantly more accurate than {worse}**: by {gap}; {test}.")
        else:
            caveat = (" The interval excludes 0, but it covers only the sampling of test images for these seeds; "
                      "the per-seed tests disagree, so the gap is not established across seeds."
                      if low > 0 else "")
            statements.append(f"**No significant difference between {better} and {worse}** at the "
                              f"{metrics['statistics']['alpha']:g} level: {better} leads by {gap}; {test}.{caveat}")
    return statements


def report_title(metrics: dict) -> str:
    """The report's heading."""
    return f"Results: {' vs '.join(metrics['models'])} on {metrics['dataset']['name']}"


def training_summary(metrics: dict) -> str:
    """One sentence if every model trained the same way, else one per model (recipes differ)."""
    texts = {name: describe_training(result["config"]) for name, result in metrics["models"].items()}
    if len(set(texts.values())) == 1:
        return f"Training: {next(iter(texts.values()))}."
    return "Training: " + "; ".join(f"{name}, {text}" for name, text in texts.items()) + "."


def report_sections(metrics: dict) -> list[Section]:
    """The whole report as sections, from metrics alone."""
    dataset, seeds = metrics["dataset"], metrics["seeds"]
    seed_text = (f"once per seed for {len(seeds)} seeds ({', '.join(map(str, seeds))}); accuracies are means over seeds "
                 f"with a Student-t 95% interval" if len(seeds) > 1 else f"with seed {seeds[0]}")
    summary = Section("Summary", [
        f"Trained on {dataset['train_size']:,} images, validated on {dataset['validation_size']:,} held out "
        f"(stratified), tested on {dataset['test_size']:,}; each model trained {seed_text}. "
        f"{training_summary(metrics)}",
        Table(list(SUMMARY_HEADER), summary_rows(metrics)),
    ])
    sections = [summary]
    if metrics.get("comparisons"):
        sections.append(comparison_section(metrics))
    curves = Section("Training curves", [FigureRef(
        ACCURACY_PLOT, "Line chart of validation accuracy (%) after each epoch, one line per model")])
    table = Table(["epoch", *metrics["models"]])
    epochs = max(len(result["history"]) for result in metrics["models"].values())
    for epoch in range(epochs):
        table.rows.append([str(epoch + 1)] + [percent(result["history"][epoch]["val_accuracy"])
                                              if epoch < len(result["history"]) else ""
                                              for result in metrics["models"].values()])
    curves.blocks += ["Validation accuracy (%) after each epoch" + (", mean over seeds:" if len(seeds) > 1 else ":"),
                      table]
    curves.blocks += [FigureRef(curves_plot_name(name),
                                f"{name}: training and validation loss (left) and accuracy (right) per epoch")
                      for name in metrics["models"]]
    sections.append(curves)
    for name, result in metrics["models"].items():
        sections.append(error_section(name, result, len(seeds)))
    if len(metrics["models"]) > 1:
        sections.append(Section("Where the models disagree", [FigureRef(
            DISAGREEMENT_PLOT, "Gallery of test images on which the models disagree, each captioned with its true "
                               "label and every model's prediction and confidence")]))
    sections += assessment_sections(metrics)
    if has_costs(metrics):
        sections.append(cost_section(metrics))
    sections.append(provenance_section(metrics))
    return sections


def comparison_section(metrics: dict) -> Section:
    """Pairwise differences, their intervals and tests, with the method stated."""
    methods = metrics["statistics"]
    section = Section("Are the differences significant?", [
        f"Difference = first model's accuracy minus second's, in percentage points, averaged over seeds. "
        f"Interval: {methods['difference_interval']}, {methods['bootstrap_resamples']:,} resamples, "
        f"seed {methods['bootstrap_seed']}. Test: {methods['test']}; pooled over seeds by {methods['pooling']}, "
        f"since every seed is scored on the same test images; {methods['multiple_comparisons']}. "
        f"Significant means adjusted p < {methods['alpha']:g}.",
        *[f"- {statement}" for statement in significance_statements(metrics)],
    ])
    pooled = Table(["models", "difference (points)", "95% CI", "only first right", "only second right",
                    "McNemar p", "Holm p", "significant"])
    per_seed = Table(["models", "seed", "difference (points)", "95% CI", "only first right", "only second right",
                      "McNemar p"])
    for index, comparison in enumerate(metrics["comparisons"]):
        pair = " − ".join(comparison["models"])
        pooled.rows.append([pair, (percent(comparison["difference"]), f"comparisons.{index}.difference"),
                            f"{percent(comparison['ci_low'])} to {percent(comparison['ci_high'])}",
                            str(comparison["only_first_correct"]), str(comparison["only_second_correct"]),
                            format_p(comparison["p_value"]), format_p(comparison["p_value_holm"]),
                            "yes" if comparison["significant"] else "no"])
        for record in comparison["per_seed"]:
            per_seed.rows.append([pair, str(record["seed"]), percent(record["difference"]),
                                  f"{percent(record['ci_low'])} to {percent(record['ci_high'])}",
                                  str(record["only_first_correct"]), str(record["only_second_correct"]),
                                  format_p(record["p_value"])])
    section.blocks += [pooled, "Per seed:", per_seed]
    return section


def error_section(name: str, result: dict, seeds: int) -> Section:
    """Confusion matrices, per-class scores, the most-confused pairs and the gallery of mistakes of one model."""
    pooled = f", all {seeds} seeds' predictions pooled" if seeds > 1 else ""
    per_class = Table(["class", "precision", "recall", "F1", "support"], [
        [row["class"], f"{row['precision']:.4f}", f"{row['recall']:.4f}", f"{row['f1']:.4f}", str(row["support"])]
        for row in result["per_class"]
    ])
    confused = Table(["true", "predicted as", "count", "share of the true class (%)"], [
        [pair["true"], pair["predicted"], str(pair["count"]), percent(pair["share"])]
        for pair in result.get("confused_pairs", [])
    ])
    blocks = [f"Per-class scores on the test set{pooled}:", per_class,
              FigureRef(confusion_plot_name(name), f"{name}: confusion matrix of test images, true class by row, "
                                                   f"predicted class by column, counts in the cells"),
              FigureRef(confusion_plot_name(name, normalised=True),
                        f"{name}: confusion matrix as the share (%) of each true class predicted as each class")]
    if confused.rows:
        blocks += ["Most-confused class pairs:", confused]
    blocks.append(FigureRef(errors_plot_name(name), f"{name}: gallery of its most confident mistakes on test "
                                                    f"images, each with its true label, prediction and confidence"))
    return Section(f"Errors of {name}", blocks)


def provenance_section(metrics: dict) -> Section:
    """Machine, versions, creation time and the dataset's checksums."""
    machine, dataset = metrics["machine"], metrics["dataset"]
    return Section("Provenance", [
        f"- Machine: {machine['platform']}, {machine['cpu_count']} CPU cores, {machine['threads']} PyTorch threads",
        "- Versions: " + ", ".join(f"{name} {version}" for name, version in metrics["versions"].items()),
        f"- Created: {metrics['created']}",
        "- Dataset payload SHA-256:",
        *(f"  - `{name}`: `{digest}`" for name, digest in dataset["checksums"].items()),
    ])


def render_markdown(title: str, sections: list[Section]) -> str:
    """The report as Markdown, figures referenced by file name."""
    lines = [f"# {title}", ""]
    for section in sections:
        lines += [f"## {section.title}", ""]
        for block in section.blocks:
            is_item = isinstance(block, str) and block.startswith(("- ", "  - "))
            if not is_item and lines[-1] != "":
                lines.append("")  # a list ends before the next paragraph, table or figure
            if isinstance(block, Table):
                lines += ["| " + " | ".join(block.header) + " |", "|" + "---|" * len(block.header)]
                lines += ["| " + " | ".join(map(cell_text, row)) + " |" for row in block.rows]
                lines.append("")
            elif isinstance(block, FigureRef):
                lines += [f"![{block.alt}]({block.file})", ""]
            elif is_item:
                lines.append(block)
            else:
                lines += [block, ""]
        if lines[-1] != "":
            lines.append("")
    return "\n".join(lines)


def summary_table(metrics: dict) -> str:
    """A plain-text table for the terminal, then one line per pair of models on significance."""
    rows = [list(SUMMARY_HEADER), *([cell_text(cell) for cell in row] for row in summary_rows(metrics))]
    widths = [max(len(row[column]) for row in rows) for column in range(len(SUMMARY_HEADER))]
    lines = ["  ".join(cell.rjust(width) if index else cell.ljust(width)
                       for index, (cell, width) in enumerate(zip(row, widths))) for row in rows]
    lines.insert(1, "  ".join("-" * width for width in widths))
    if metrics.get("comparisons"):
        lines += [""] + [statement.replace("**", "") for statement in significance_statements(metrics)]
    return "\n".join(lines)
