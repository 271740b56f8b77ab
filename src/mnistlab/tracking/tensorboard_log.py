"""TensorBoard logging (`--tensorboard DIR`, extra: tensorboard): event files TensorBoard's own reader opens.

    DIR/<run folder name>/<model>-seed<N>/   per epoch: loss/train, loss/validation, accuracy/train,
                                              accuracy/validation; test/accuracy and test/loss; the
                                              hparams plugin's row (the resolved config, test accuracy)
    DIR/<run folder name>/<model>/           the confusion matrix over all seeds as an image
                                              (rows: true class, columns: predicted; white = all of the row)

`mnistlab train` writes DIR/<checkpoint name>/ with the per-epoch scalars; tune
writes DIR/<run folder name>/trial-<N>/ with each trial's validation accuracy per epoch.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mnistlab.common.errors import ConfigError
from mnistlab.runs.claim import check_folder_writable
from mnistlab.tracking.tracker import Tracker

SCALARS = {"train_loss": "loss/train", "val_loss": "loss/validation", "train_accuracy": "accuracy/train",
           "val_accuracy": "accuracy/validation"}
CELL_PIXELS = 16  # each confusion-matrix cell drawn as a 16x16 square


def confusion_image(matrix) -> np.ndarray:
    """A confusion matrix as a (1, H, W) uint8 image: each row normalised, 255 where it holds the whole row."""
    counts = np.asarray(matrix, dtype=np.float64)
    shares = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    return np.kron(np.round(255 * shares), np.ones((CELL_PIXELS, CELL_PIXELS))).astype(np.uint8)[None]


def hparam_value(value):
    """A config value as the hparams plugin takes it: numbers, strings and booleans; anything else as text."""
    return value if isinstance(value, (bool, int, float, str)) else str(value)


class TensorBoardTracker(Tracker):
    """Writes event files under one folder (see the module docstring)."""

    name = "TensorBoard"

    def __init__(self, folder: str):
        self.folder = Path(folder)
        try:
            check_folder_writable(self.folder)
        except ConfigError as error:
            raise ConfigError(f"--tensorboard {folder}: {str(error).split(': ', 1)[-1]}") from None
        self.run_name = "run"

    def _writer(self, *parts: str):
        from torch.utils.tensorboard import SummaryWriter

        return SummaryWriter(log_dir=str(self.folder.joinpath(*parts)))

    def start(self, out_dir: Path, plan: dict) -> None:
        self.run_name = out_dir.name

    def job_finished(self, out_dir: Path, model_name: str, config: dict, record: dict) -> None:
        from torch.utils.tensorboard.summary import hparams

        with self._writer(self.run_name, f"{model_name}-seed{record['seed']}") as writer:
            write_history(writer, record["history"])
            last = len(record["history"])
            writer.add_scalar("test/accuracy", record["test_accuracy"], last)
            writer.add_scalar("test/loss", record["test_loss"], last)
            chosen = {key: hparam_value(value) for key, value in {"model": model_name, **config}.items()
                      if value is not None}
            for summary in hparams(chosen, {"test/accuracy": record["test_accuracy"]}):
                writer.file_writer.add_summary(summary)

    def run_finished(self, out_dir: Path, metrics: dict) -> None:
        for name, result in metrics["models"].items():
            with self._writer(self.run_name, name) as writer:
                writer.add_image("confusion_matrix", confusion_image(result["confusion_matrix"]), 0, dataformats="CHW")

    def trained(self, checkpoint: Path, state: dict) -> None:
        with self._writer(checkpoint.stem) as writer:
            write_history(writer, state.get("metrics", {}).get("history", []))

    def tune_finished(self, out_dir: Path, study: dict) -> None:
        for trial in study["trials"]:
            with self._writer(out_dir.name, f"trial-{trial['number']}") as writer:
                for step, value in sorted(trial["intermediate"].items()):
                    writer.add_scalar("accuracy/validation", value, step)


def write_history(writer, history: list[dict]) -> None:
    """Per-epoch scalars, the epoch (1, 2, ...) as the step."""
    for epoch in history:
        for key, tag in SCALARS.items():
            if epoch.get(key) is not None:
                writer.add_scalar(tag, epoch[key], int(epoch.get("epoch", 0)))
