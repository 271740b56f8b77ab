"""The seeded, stratified split of a training set into the images trained on and those held out for validation."""

from __future__ import annotations

import math

import numpy as np
from sklearn.model_selection import train_test_split

from mnistlab.common.errors import ConfigError


def split_indices(labels: np.ndarray, validation_fraction: float, seed: int,
                  limit_train: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Seeded split of the training set into sorted (train, validation) indices, stratified by label.

    With `limit_train`, a seeded random subset of that many images is split instead
    (`TrainConfig` carries all three settings; training and assessment both draw it here).
    """
    indices = np.arange(len(labels))
    if limit_train is not None and limit_train < len(labels):
        rng = np.random.default_rng(seed)
        indices = np.sort(rng.choice(indices, size=limit_train, replace=False))
    try:
        train_part, validation_part = train_test_split(
            indices, test_size=validation_fraction, stratify=labels[indices], random_state=seed
        )
    except ValueError as error:
        raise ConfigError(f"cannot hold out a stratified validation split of {len(indices)} images ({error}); "
                          f"{split_advice(labels[indices], validation_fraction)}") from None
    return np.sort(train_part), np.sort(validation_part)


def split_advice(labels: np.ndarray, validation_fraction: float) -> str:
    """What to change when a stratified split fails: each side needs an image of every class."""
    classes = len(np.unique(labels))
    validation = math.ceil(validation_fraction * len(labels))  # as scikit-learn rounds it
    if len(labels) - validation < classes:
        return f"use a smaller validation_fraction (it leaves {len(labels) - validation} training images)"
    if validation < classes:
        return "use a larger validation_fraction or limit_train"
    return "every class needs at least 2 images: use a larger limit_train"
