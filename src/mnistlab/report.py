"""Turn a run's `metrics.json` into its figures, `report.md` and the terminal summary table.

Everything here reads only the metrics dict, so `write_report(run_dir)` can
rebuild a report long after the run.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from mnistlab.atomic import write_text_atomic
from mnistlab.errors import MnistlabError
from mnistlab.plots import plot_confusion_matrix, plot_validation_accuracy

ACCURACY_PLOT = "accuracy_plot.png"


def confusion_plot_name(model_name: str) -> str:
    """File name of a model's confusion-matrix figure in a run folder."""
    return f"cm_{model_name}.png"


def read_metrics(run_dir: str | os.PathLike) -> dict:
    """Load `metrics.json` from a run folder."""
    path = Path(run_dir) / "metrics.json"
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise MnistlabError(f"{path}: cannot read ({error.strerror}); pass a run folder written by mnistlab compare") from None
    except json.JSONDecodeError as error:
        raise MnistlabError(f"{path}: not valid JSON ({error}); rerun mnistlab compare to write it again") from None


def write_metrics(run_dir: str | os.PathLike, metrics: dict) -> None:
    """Write `metrics.json` atomically."""
    write_text_atomic(Path(run_dir) / "metrics.json", json.dumps(metrics, indent=2) + "\n")


def write_report(run_dir: str | os.PathLike, metrics: dict | None = None) -> None:
    """Draw the figures and write `report.md` in `run_dir` from its metrics."""
    run_dir = Path(run_dir)
    metrics = metrics if metrics is not None else read_metrics(run_dir)
    models = metrics["models"]
    class_names = metrics["dataset"]["class_names"]
    plot_validation_accuracy({name: result["history"] for name, result in models.items()}, run_dir / ACCURACY_PLOT)
    for name, result in models.items():
        title = f"{name}: confusion matrix on the {metrics['dataset']['name']} test set"
        plot_confusion_matrix(result["confusion_matrix"], class_names, title, run_dir / confusion_plot_name(name))
    write_text_atomic(run_dir / "report.md", markdown_report(metrics))


def summary_rows(metrics: dict) -> list[tuple[str, str, str, str, str]]:
    """(model, parameters, test accuracy %, test loss, training seconds) per model, formatted."""
    return [
        (name, f"{result['params']:,}", f"{100 * result['test_accuracy']:.2f}", f"{result['test_loss']:.4f}",
         f"{result['train_seconds']:.1f}")
        for name, result in metrics["models"].items()
    ]


SUMMARY_HEADER = ("model", "parameters", "test accuracy (%)", "test loss", "train time (s)")


def summary_table(metrics: dict) -> str:
    """A plain-text table for the terminal."""
    rows = [SUMMARY_HEADER, *summary_rows(metrics)]
    widths = [max(len(row[column]) for row in rows) for column in range(len(SUMMARY_HEADER))]
    lines = ["  ".join(cell.rjust(width) if index else cell.ljust(width)
                       for index, (cell, width) in enumerate(zip(row, widths))) for row in rows]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)


def markdown_report(metrics: dict) -> str:
    """The study's results section, regenerated from the numbers in `metrics`."""
    dataset, config, machine = metrics["dataset"], metrics["config"], metrics["machine"]
    lines = [
        f"# Results: {' vs '.join(metrics['models'])} on {dataset['name']}",
        "",
        f"Trained on {dataset['train_size']:,} images, validated on {dataset['validation_size']:,} held out "
        f"(stratified, seed {config['seed']}), tested on {dataset['test_size']:,}. "
        f"{config['epochs']} epochs of Adam (learning rate {config['learning_rate']}), batch size {config['batch_size']}.",
        "",
        "| " + " | ".join(SUMMARY_HEADER) + " |",
        "|" + "---|" * len(SUMMARY_HEADER),
        *("| " + " | ".join(row) + " |" for row in summary_rows(metrics)),
        "",
        "## Validation accuracy per epoch",
        "",
        f"![Validation accuracy per epoch]({ACCURACY_PLOT})",
        "",
        "| epoch | " + " | ".join(metrics["models"]) + " |",
        "|---|" + "---|" * len(metrics["models"]),
    ]
    epochs = max(len(result["history"]) for result in metrics["models"].values())
    for epoch in range(epochs):
        cells = [f"{100 * result['history'][epoch]['val_accuracy']:.2f}" if epoch < len(result["history"]) else ""
                 for result in metrics["models"].values()]
        lines.append(f"| {epoch + 1} | " + " | ".join(cells) + " |")
    lines += ["", "## Confusion matrices", ""]
    for name in metrics["models"]:
        lines += [f"![{name} confusion matrix]({confusion_plot_name(name)})", ""]
    lines += [
        "## Provenance",
        "",
        f"- Machine: {machine['platform']}, {machine['cpu_count']} CPU cores, {machine['threads']} PyTorch threads",
        "- Versions: " + ", ".join(f"{name} {version}" for name, version in metrics["versions"].items()),
        f"- Created: {metrics['created']}",
        "- Dataset payload SHA-256:",
        *(f"  - `{name}`: `{digest}`" for name, digest in dataset["checksums"].items()),
        "",
    ]
    return "\n".join(lines)
