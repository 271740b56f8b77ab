"""The seeded, stratified split of a training set into the images trained on and those held out for validation.

Two ways to train on part of the training set:

- `limit_train` (quick runs): a seeded random subset, then a stratified split of it;
  as it always was, so earlier runs keep their numbers.
- `train_size` (`compare --train-sizes`): a stratified subset that is *nested*: for
  one seed, the subset of each size lies inside the subset of every larger size,
  and so do its training and validation parts, so a learning curve compares the
  same images growing, not different draws (see `nested_order`).

The stratified split is scikit-learn's `train_test_split(..., stratify=labels)`,
drawn by `stratified_split` with the same random calls, so that a run need not
import scikit-learn (about a second) before it trains; a property test holds the
two equal.
"""

from __future__ import annotations

import math

import numpy as np

from mnistlab.common.errors import ConfigError


NESTED_STREAM = 24  # a seed sequence's second word: the nested order's own random stream, apart from others


def split_indices(labels: np.ndarray, validation_fraction: float, seed: int,
                  limit_train: int | None = None, train_size: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Seeded split of the training set into sorted (train, validation) indices, stratified by label.

    With `limit_train`, a seeded random subset of that many images is split instead;
    with `train_size`, the nested stratified subset of that many (`nested_split`).
    (`TrainConfig` carries these settings; training and assessment both draw it here.)
    """
    if train_size is not None:
        return nested_split(labels, validation_fraction, seed, train_size)
    indices = np.arange(len(labels))
    if limit_train is not None and limit_train < len(labels):
        rng = np.random.default_rng(seed)
        indices = np.sort(rng.choice(indices, size=limit_train, replace=False))
    train_part, validation_part = stratified_split(labels[indices], validation_fraction, seed)
    return np.sort(indices[train_part]), np.sort(indices[validation_part])


def stratified_split(labels: np.ndarray, test_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train, test) positions of scikit-learn 1.9's `train_test_split(positions, test_size=test_fraction,
    stratify=labels, random_state=seed)`, by the same draws from the same `RandomState` stream.

    Each class gives its share of the test part, rounded as scikit-learn's `_approximate_mode` rounds it
    (leftover images go to the largest remainders, ties broken by the stream), then a shuffle of each class.
    """
    count = len(labels)
    test_count = math.ceil(test_fraction * count)
    train_count = count - test_count
    classes, class_of, class_counts = np.unique(labels, return_inverse=True, return_counts=True)
    if count == 0 or class_counts.min() < 2:
        why = "no images" if count == 0 else f"class {classes[class_counts.argmin()]} has only 1 image"
    elif min(train_count, test_count) < len(classes):
        why = f"{train_count} training and {test_count} validation images for {len(classes)} classes"
    else:
        why = None
    if why is not None:
        raise ConfigError(f"cannot hold out a stratified validation split of {count} images ({why}); "
                          f"{split_advice(labels, test_fraction)}")
    members = np.split(np.argsort(class_of, kind="stable"), np.cumsum(class_counts)[:-1])
    rng = np.random.RandomState(seed)
    train_counts = approximate_mode(class_counts, train_count, rng)
    test_counts = approximate_mode(class_counts - train_counts, test_count, rng)
    train, test = [], []
    for number, class_members in enumerate(members):
        shuffled = class_members.take(rng.permutation(class_counts[number]), mode="clip")
        train.extend(shuffled[:train_counts[number]])
        test.extend(shuffled[train_counts[number]:train_counts[number] + test_counts[number]])
    return rng.permutation(train), rng.permutation(test)


def approximate_mode(class_counts: np.ndarray, draws: int, rng: np.random.RandomState) -> np.ndarray:
    """How many of `draws` each class gives: its share floored, then one more for the largest remainders
    (scikit-learn's `utils.extmath._approximate_mode`, the same calls on `rng`)."""
    continuous = class_counts / class_counts.sum() * draws
    floored = np.floor(continuous)
    need = int(draws - floored.sum())
    if need > 0:
        remainder = continuous - floored
        for value in np.sort(np.unique(remainder))[::-1]:
            (tied,) = np.where(remainder == value)
            chosen = rng.choice(tied, size=min(len(tied), need), replace=False)
            floored[chosen] += 1
            need -= len(chosen)
            if need == 0:
                break
    return floored.astype(int)


def split_advice(labels: np.ndarray, validation_fraction: float) -> str:
    """What to change when a stratified split fails: each side needs an image of every class."""
    classes = len(np.unique(labels))
    validation = math.ceil(validation_fraction * len(labels))  # as scikit-learn rounds it
    if len(labels) - validation < classes:
        return f"use a smaller validation_fraction (it leaves {len(labels) - validation} training images)"
    if validation < classes:
        return "use a larger validation_fraction or limit_train"
    return "every class needs at least 2 images: use a larger limit_train"


def nested_order(labels: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(order, rank): every training index in the order subsets take them, and its rank within its class.

    One seeded shuffle; each image's key is its class rank's midpoint as a share of its class,
    (rank + 0.5) / class size, and images are taken by key (ties by class). A shorter prefix lies inside
    a longer one, and each class is near its share: within one image mostly, but several small classes
    rounding up together can take up to about two from a large one (a Sainte-Lague apportionment; see
    tests/test_train_sizes.py).
    """
    labels = np.asarray(labels)
    shuffled = np.random.default_rng([seed, NESTED_STREAM]).permutation(len(labels))
    classes = labels[shuffled]
    rank = np.zeros(len(labels), dtype=np.int64)
    for value in np.unique(classes):
        members = np.flatnonzero(classes == value)
        rank[members] = np.arange(len(members))
    counts = dict(zip(*np.unique(classes, return_counts=True)))
    key = (rank + 0.5) / np.array([counts[value] for value in classes])
    taken = np.lexsort((classes, key))
    return shuffled[taken], rank[taken]


def nested_split(labels: np.ndarray, validation_fraction: float, seed: int,
                 train_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Sorted (train, validation) indices of the nested subset of `train_size` images (see `nested_order`).

    An image is held out for validation when its class rank r has round((r + 1) f) > round(r f): every
    1/f-th image of each class, so each class holds out round(f x its count) and the held-out part of a
    smaller subset lies inside that of a larger one.
    """
    labels = np.asarray(labels)
    if not 0 < train_size <= len(labels):
        raise ConfigError(f"train size {train_size:,} is out of range; the training set has {len(labels):,} images")
    order, rank = nested_order(labels, seed)
    order, rank = order[:train_size], rank[:train_size]
    held_out = np.floor((rank + 1) * validation_fraction + 0.5) > np.floor(rank * validation_fraction + 0.5)
    train_part, validation_part = order[~held_out], order[held_out]
    if len(validation_part) == 0 or len(np.unique(labels[train_part])) < len(np.unique(labels)):
        raise ConfigError(f"a train size of {train_size:,} leaves {len(validation_part)} validation images and "
                          f"{len(np.unique(labels[train_part]))} classes to train on; use a larger size")
    return np.sort(train_part), np.sort(validation_part)
