"""The public Python API, re-exported by `mnistlab` itself: what a notebook or script needs, nothing internal.

    import mnistlab as ml
    run = ml.compare(["ann", "cnn"], seeds=2, epochs=1, limit_train=3000)
    print(run.table())
    model = ml.load(run.checkpoints["cnn"][0])
    model.predict(ml.load_dataset("mnist").test_images[:5])

Every call sets the thread count and deterministic kernels for its own duration and restores them.
"""

from __future__ import annotations

import os

import numpy as np

from mnistlab.api.classifier import Classifier, as_images, load
from mnistlab.api.comparison import Run, TrainedModel, compare, train
from mnistlab.common.cpu import auto_threads
from mnistlab.common.errors import ConfigError
from mnistlab.data.datasets import Dataset
from mnistlab.data.folders import open_dataset
from mnistlab.models import MODELS, NUM_CLASSES, build_model
from mnistlab.models.contract import build, check_model, resolve
from mnistlab.models.spec import as_spec
from mnistlab.training.runtime import configured_runtime

__all__ = ["Classifier", "Dataset", "Run", "TrainedModel", "compare", "create_model", "list_models", "load",
           "load_dataset", "preprocess", "runtime", "train"]


def list_models() -> list[str]:
    """The registered model names, e.g. ['ann', 'cnn', 'logreg', 'lenet5', 'cnn-fast', 'cnn-strong']."""
    return list(MODELS)


def create_model(name: str, **arguments):
    """A fresh, initialised `torch.nn.Module`: a registered model, or your own by its spec ("my_model.py:Net",
    checked against the model contract). Input (B, 1, 28, 28) in [0, 1], logits out."""
    spec = resolve(as_spec(name))
    if spec.builtin:
        return build_model(spec.target, **arguments)
    check_model(spec, arguments.get("num_classes", NUM_CLASSES))
    return build(spec, **arguments)


def load_dataset(name_or_folder: str | os.PathLike = "mnist", data_dir: str | os.PathLike | None = None,
                 progress: bool = False) -> Dataset:
    """A registered dataset ('mnist', 'fashion-mnist', 'kmnist') or a folder of your own, verified.

    The result has `train_images`, `train_labels`, `test_images`, `test_labels` (uint8 arrays) and `class_names`.
    """
    return open_dataset(str(name_or_folder), data_dir, progress=progress)


def preprocess(image) -> np.ndarray:
    """Any image (a path, a PIL image) or photo of a digit -> the MNIST-style (28, 28) uint8 the models read."""
    images, _ = as_images(image)
    return images[0]


def runtime(threads: int | str | None = None):
    """A context manager that fixes the numbers for its block: `threads` CPU threads and deterministic kernels.

        with mnistlab.runtime(threads=1):
            ...  # training and inference here repeat bit for bit on this machine

    `threads="auto"` takes the cores idle now (as `--threads auto`); the count is part of the numbers, so read
    it inside the block (`torch.get_num_threads()`) to repeat them.
    """
    if threads == "auto":
        threads = auto_threads()
    elif threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
        raise ConfigError(f"threads={threads!r} is invalid; give a whole number of 1 or more, \"auto\" or None")
    return configured_runtime(threads)
