"""A run's attributions (`compare --explain`, `report --explain`): what each model looks at, in attributions.npz.

For every model (its first seed's checkpoint), on the same test digits for all:

- the fixed digits: the first FIXED_PER_CLASS test images of each class, each
  explained for the class the model predicts (Integrated Gradients and occlusion);
- the mean Integrated Gradients map of each class, over the first
  MEAN_PER_CLASS test images of the class, explained for their true class.

The report draws them from the file (`reporting.explain_report`), so it rebuilds
without the dataset or Captum. Work per model is bounded by these two constants.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from tqdm import tqdm

from mnistlab.common.extras import require_extra
from mnistlab.data.folders import open_recorded_dataset
from mnistlab.explain.attribution import attribute, mean_per_class
from mnistlab.models import images_to_tensor, infer
from mnistlab.reporting.report import write_report
from mnistlab.runs.claim import locked
from mnistlab.runs.folder import read_metrics, write_attributions
from mnistlab.training.checkpoint import load_checkpoint
from mnistlab.training.runtime import resolve_device

FIXED_PER_CLASS = 2  # test digits of each class shown per model
MEAN_PER_CLASS = 50  # test digits of each class averaged into its mean map


def first_of_each_class(labels: np.ndarray, classes: int, per_class: int) -> np.ndarray:
    """The first `per_class` test indices of each class, class by class (fewer where a class has fewer images)."""
    labels = np.asarray(labels)
    return np.concatenate([np.flatnonzero(labels == index)[:per_class] for index in range(classes)]).astype(np.int64)


def compute_run_attributions(checkpoints: dict[str, str | os.PathLike], images: np.ndarray, labels: np.ndarray,
                             classes: int, device: str = "cpu", progress: bool = False,
                             trust_code: bool = False, models: dict | None = None) -> dict[str, np.ndarray]:
    """attributions.npz's columns for each model's checkpoint, on the test `images` and `labels`. A checkpoint of a
    user's own model loads with `trust_code`, or when it records the spec `models` gives for it (the run that
    trained it), see `training.checkpoint.load_checkpoint`."""
    require_extra("explain", "attributions (--explain)")
    fixed = first_of_each_class(labels, classes, FIXED_PER_CLASS)
    sample = first_of_each_class(labels, classes, MEAN_PER_CLASS)
    columns = {"indices": fixed, "images": images[fixed], "labels": np.asarray(labels)[fixed].astype(np.int64),
               "mean_counts": np.bincount(np.asarray(labels)[sample], minlength=classes)}
    for name, path in tqdm(checkpoints.items(), desc="attributions", disable=not progress):
        model, _ = load_checkpoint(path, trust_code=trust_code, expected=(models or {}).get(name))
        model.to(resolve_device(device))
        predicted = infer(model, images_to_tensor(images[fixed])).argmax(dim=1).numpy()
        maps = attribute(model, images[fixed], predicted)
        means = attribute(model, images[sample], np.asarray(labels)[sample], occlusion=False)
        columns[f"predicted__{name}"] = predicted.astype(np.int64)
        columns[f"integrated_gradients__{name}"] = maps.integrated_gradients
        columns[f"occlusion__{name}"] = maps.occlusion
        columns[f"class_means__{name}"] = mean_per_class(means.integrated_gradients, np.asarray(labels)[sample],
                                                         classes)
        del model
    return columns


def write_run_attributions(run_dir: str | os.PathLike, metrics: dict, images: np.ndarray, labels: np.ndarray,
                           device: str = "cpu", progress: bool = False, trust_code: bool = False,
                           models: dict | None = None) -> None:
    """Compute and write attributions.npz for the first seed of each model in a run's `metrics`."""
    checkpoints = {name: Path(run_dir) / result["seeds"][0]["checkpoint"] for name, result in metrics["models"].items()}
    classes = len(metrics["dataset"]["class_names"])
    write_attributions(run_dir, compute_run_attributions(checkpoints, images, labels, classes, device, progress,
                                                         trust_code, models))


def add_attributions(run_dir: str | os.PathLike, data_dir: str | os.PathLike | None = None, progress: bool = True,
                     device: str = "cpu", trust_code: bool = False) -> None:
    """`mnistlab report RUN --explain`: compute a finished run's attributions, then rewrite its report."""
    require_extra("explain", "report --explain")
    metrics = read_metrics(run_dir)  # before the lock: a folder that is not a run gets no lock file
    with locked(run_dir, create=False) as run_dir:
        metrics = read_metrics(run_dir)
        dataset = open_recorded_dataset(metrics["dataset"], run_dir, data_dir, progress)
        write_run_attributions(run_dir, metrics, dataset.test_images, dataset.test_labels, device, progress,
                               trust_code)
        write_report(run_dir, metrics)
