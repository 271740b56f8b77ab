"""`mnistlab.load(checkpoint)`: a trained model as a scikit-learn-style classifier of images."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np

from mnistlab.common.errors import ConfigError
from mnistlab.data.datasets import Dataset
from mnistlab.data.registry import IMAGE_SIDE
from mnistlab.data.folders import open_dataset
from mnistlab.evaluation.evaluate import evaluate
from mnistlab.training.runtime import configured_runtime
from mnistlab.vision.loading import LoadedModel, load_model
from mnistlab.vision.predict import predict_probabilities
from mnistlab.vision.preprocess import preprocess, preprocess_decoded


class Classifier:
    """A checkpoint ready to classify images: `predict`, `predict_proba`, `evaluate`.

    `x` may be a uint8 array (0-255) or a float array (0-1) of shape (N, 28, 28) or
    (28, 28), as the training images are (for MNIST, ink bright on black); or an image
    file path, a list of paths, or a PIL image, read as `mnistlab predict` reads them:
    through the photo preprocessing for a model of handwritten digits (any size, dark
    ink on light paper as well as the reverse), resized to 28x28 for other models.
    """

    def __init__(self, loaded: LoadedModel, threads: int | None = None):
        self._loaded = loaded
        self.threads = threads  # CPU threads while predicting (None: the process's current count)

    @property
    def name(self) -> str:
        return self._loaded.name

    @property
    def classes(self) -> list[str]:
        """The class names, in the order of `predict_proba`'s columns."""
        return list(self._loaded.class_names)

    @property
    def module(self):
        """The PyTorch module, in eval mode."""
        return self._loaded.model

    @property
    def test_accuracy(self) -> float | None:
        """Test accuracy as measured when the checkpoint was written."""
        return self._loaded.test_accuracy

    def __repr__(self) -> str:
        accuracy = "" if self.test_accuracy is None else f", test accuracy {self.test_accuracy:.2%}"
        return f"Classifier({self.name!r}, {len(self.classes)} classes{accuracy}, {self._loaded.path})"

    def predict_proba(self, x) -> np.ndarray:
        """Class probabilities (N, classes), float64 rows summing to 1; (classes,) for one image."""
        images, single = as_images(x, *self._loaded.input_kind)
        with configured_runtime(self.threads):
            probabilities = predict_probabilities(self._loaded.model, images)
        return probabilities[0] if single else probabilities

    def predict(self, x) -> np.ndarray:
        """The most likely class name of each image (N,); one name for one image."""
        probabilities = self.predict_proba(x)
        names = np.asarray(self.classes)
        return names[probabilities.argmax(axis=-1)]

    def evaluate(self, dataset: str | os.PathLike | Dataset | None = None, data_dir=None) -> dict:
        """Test accuracy, loss, confusion matrix and per-class scores on a dataset's test split.

        `dataset` is a registered name, a folder, a `Dataset`, or None for the one the model was trained on.
        """
        data = dataset if isinstance(dataset, Dataset) else open_dataset(
            str(dataset) if dataset is not None else self._loaded.dataset, data_dir, progress=False)
        with configured_runtime(self.threads):
            return evaluate(self._loaded.model, data.test_images, data.test_labels, data.class_names).metrics


def load(checkpoint: str | os.PathLike, *, device: str = "cpu", threads: int | None = None,
         trust_code: bool = False) -> Classifier:
    """Open a checkpoint written by `compare`, `train` or the `mnistlab` command.

    No code in it runs, except for a model of your own (a spec such as "my_model.py:Net"): that model is built
    by running the source the checkpoint recorded, only with `trust_code=True`.
    """
    return Classifier(load_model(checkpoint, device=device, trust_code=trust_code), threads=threads)


def as_images(x, kind: str = "digits", background: str = "dark") -> tuple[np.ndarray, bool]:
    """(uint8 images (N, 28, 28), whether `x` was one image) from any input `Classifier` takes.

    Files and PIL images are read as `mnistlab predict` reads them for a model of this `kind` and
    training `background` (`LoadedModel.input_kind`): the digit photo preprocessing, or a plain resize.
    """
    if isinstance(x, (str, os.PathLike)):
        return preprocess(x, kind=kind, background=background)[None], True
    if hasattr(x, "convert") and hasattr(x, "size"):  # a PIL image
        return preprocess_decoded(x, kind, background)[None], True
    if isinstance(x, Sequence) and x and all(isinstance(item, (str, os.PathLike)) for item in x):
        return np.stack([preprocess(Path(item), kind=kind, background=background) for item in x]), False
    array = np.asarray(x)
    if array.ndim not in (2, 3) or array.shape[-2:] != (IMAGE_SIDE, IMAGE_SIDE):
        raise ConfigError(f"images of shape {array.shape} given; expected (N, {IMAGE_SIDE}, {IMAGE_SIDE}) or "
                          f"({IMAGE_SIDE}, {IMAGE_SIDE}), or image file paths, or a PIL image")
    if array.dtype == np.uint8:
        images = array
    elif np.issubdtype(array.dtype, np.floating) or np.issubdtype(array.dtype, np.integer):
        values = array.astype(np.float64)
        if np.issubdtype(array.dtype, np.integer) or not np.isfinite(values).all() or values.min() < 0 \
                or values.max() > 1:
            raise ConfigError(f"image values of dtype {array.dtype} must be uint8 (0-255) or floats in [0, 1]")
        images = np.rint(values * 255).astype(np.uint8)
    else:
        raise ConfigError(f"images of dtype {array.dtype} given; expected uint8 (0-255) or floats in [0, 1]")
    return (images[None], True) if images.ndim == 2 else (images, False)
