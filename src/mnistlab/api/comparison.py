"""`mnistlab.compare` and `mnistlab.train` for notebooks and scripts: the study's runs as Python objects."""

from __future__ import annotations

import html
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from mnistlab.common.errors import ConfigError
from mnistlab.data.datasets import Dataset
from mnistlab.data.folders import open_dataset
from mnistlab.evaluation.evaluate import evaluate
from mnistlab.reporting.report import significance_statements, summary_table
from mnistlab.runs.folder import METRICS_FILE, REPORT_HTML, read_metrics
from mnistlab.models.contract import check_model
from mnistlab.models.spec import split_specs
from mnistlab.study.compare import run_compare
from mnistlab.study.plan import default_run_dir, plan_placement, resolve_configs, resolve_models
from mnistlab.tracking.hooks import open_trackers
from mnistlab.training.runtime import configured_runtime, resolve_device
from mnistlab.training.train import train as train_model


class Run:
    """A finished comparison's run folder: its metrics, table, report and checkpoints.

    `Run(folder)` opens an existing one, e.g. a run made with `mnistlab compare`.
    """

    def __init__(self, folder: str | os.PathLike):
        self.folder = Path(folder)
        self.metrics = read_metrics(self.folder)  # everything in metrics.json, as a dict

    def __repr__(self) -> str:
        return f"Run({str(self.folder)!r}: {', '.join(self.metrics['models'])}, seeds {self.metrics['seeds']})"

    @property
    def models(self) -> list[str]:
        return list(self.metrics["models"])

    @property
    def accuracy(self) -> dict[str, float]:
        """Each model's test accuracy, the mean over seeds (a fraction)."""
        return {name: result["test_accuracy"] for name, result in self.metrics["models"].items()}

    @property
    def report_path(self) -> Path:
        """The self-contained HTML report."""
        return self.folder / REPORT_HTML

    @property
    def checkpoints(self) -> dict[str, list[Path]]:
        """Each model's checkpoint files, one per seed in seed order (open one with `mnistlab.load`)."""
        return {name: [self.folder / record["checkpoint"] for record in result["seeds"]]
                for name, result in self.metrics["models"].items()}

    def table(self) -> str:
        """The terminal table: accuracy with its interval, loss and training time per model, then significance."""
        return summary_table(self.metrics)

    def significance(self) -> list[str]:
        """One sentence per pair of models on whether their accuracies differ significantly."""
        return [statement.replace("**", "") for statement in significance_statements(self.metrics)]

    def _repr_html_(self) -> str:
        rows = "".join(
            f"<tr><td>{html.escape(name)}</td><td>{result['params']:,}</td>"
            f"<td>{100 * result['test_accuracy']:.2f}</td><td>{interval(result)}</td>"
            f"<td>{result['test_loss']:.4f}</td></tr>" for name, result in self.metrics["models"].items())
        sentences = "".join(f"<p>{html.escape(sentence)}</p>" for sentence in self.significance())
        return (f"<table><tr><th>model</th><th>parameters</th><th>test accuracy (%)</th><th>95% CI (%)</th>"
                f"<th>test loss</th></tr>{rows}</table>{sentences}"
                f"<p>Run folder: <code>{html.escape(str(self.folder))}</code> ({REPORT_HTML}, {METRICS_FILE}, "
                f"checkpoints)</p>")


def interval(result: dict) -> str:
    """A model's 95% interval over seeds as text, or a dash with one seed."""
    accuracy = result.get("accuracy") or {}
    if accuracy.get("ci_low") is None:
        return "–"
    return f"{100 * accuracy['ci_low']:.2f}–{100 * accuracy['ci_high']:.2f}"


def compare(models: str | Sequence[str], *, seeds: int | Sequence[int] = 1, out: str | os.PathLike | None = None,
            data_dir: str | os.PathLike | None = None, resume: bool = False, workers: int = 1,
            threads: int | None = None, device: str = "cpu", robustness: bool = False, progress: bool = False,
            mlflow: str | None = None, tensorboard: str | os.PathLike | None = None, seeds_together: str = "off",
            **settings) -> Run:
    """Train, test and compare `models` once per seed into a run folder; return the `Run`.

    `models` are built-in names or your own as model specs ("my_model.py:Net", "pkg.nets:Wide(width=64)",
    "mine=my_model.py:Net"; see docs/models.md), in a list or as one comma-separated string.

    `seeds` is a count (counting up from `seed`, default 0) or a list; `settings` are
    `TrainConfig` fields (`epochs`, `limit_train`, `learning_rate`, `batch_size`, `seed`,
    `dataset`, ...). `out` defaults to `runs/<timestamp>-compare`. Threads and
    deterministic kernels are set for the call and restored after it. `mlflow` (a tracking
    URI) and `tensorboard` (a folder) also log the run there, as the CLI's flags do. `seeds_together` is "off" (one
    at a time), "on" (each model's seeds as one batched computation) or "auto" (`compare --seeds-together`).

        run = mnistlab.compare(["ann", "cnn"], seeds=2, epochs=1, limit_train=3000)
        print(run.table())
    """
    if isinstance(models, str):
        models = split_specs(models)
    first_seed = settings.get("seed", 0)
    if isinstance(seeds, int):
        if seeds < 1:
            raise ConfigError(f"seeds={seeds} is invalid; give a count >= 1 or a list of seeds")
        seed_list = list(range(first_seed, first_seed + seeds))
    else:
        seed_list = [int(seed) for seed in seeds]
    out_dir = Path(out) if out is not None else default_run_dir("compare")
    trackers = open_trackers(mlflow, None if tensorboard is None else str(tensorboard))  # connects: errors first
    run_compare(list(models), settings, out_dir, seeds=seed_list, robustness=robustness, resume=resume,
                placement=plan_placement(workers, threads, device), data_dir=data_dir, progress=progress,
                trackers=trackers, seeds_together=seeds_together)
    return Run(out_dir)


@dataclass
class TrainedModel:
    """`mnistlab.train`'s result: the trained module, its epoch history and its test metrics."""

    name: str
    module: object  # the torch.nn.Module, in eval mode
    config: dict  # the resolved TrainConfig
    history: list[dict]  # one dict per epoch: train/validation loss and accuracy, seconds
    metrics: dict  # test accuracy, loss, confusion matrix, per-class scores
    train_seconds: float

    def __repr__(self) -> str:
        return (f"TrainedModel({self.name!r}, {len(self.history)} epochs, "
                f"test accuracy {self.metrics['test_accuracy']:.2%})")


def train(model: str, dataset: str | os.PathLike | Dataset | None = None, *, data_dir=None,
          threads: int | None = None, device: str = "cpu", progress: bool = False, **settings) -> TrainedModel:
    """Train one model (a built-in name or a spec of your own, as `compare` takes) on `dataset` (a name, a folder,
    a `Dataset`, or the config's default) and test it.

    `settings` are `TrainConfig` fields (`epochs`, `limit_train`, `learning_rate`, `seed`, ...),
    over the model's recipe. The test split is used only for the returned metrics.
    """
    if isinstance(dataset, (str, os.PathLike)):
        settings["dataset"] = str(dataset)
    [spec] = resolve_models([model])
    config = resolve_configs([spec], settings)[spec.label]
    data = dataset if isinstance(dataset, Dataset) else open_dataset(config.dataset, data_dir, progress=progress)
    check_model(spec, len(data.class_names))
    with configured_runtime(threads):
        result = train_model(spec, data, config, progress=progress, device=resolve_device(device))
        evaluation = evaluate(result.model, data.test_images, data.test_labels, data.class_names,
                              precision=config.precision)
    return TrainedModel(spec.label, result.model, config.to_dict(), result.history, evaluation.metrics,
                        result.train_seconds)
