"""Hard digits: the test images that many models and seeds get wrong, and how much of each model's errors they hold.

    wrong = wrong_counts(labels, predicted)           # per test image: how many (model, seed) runs miss it
    order = hardest_first(labels, predicted, probabilities)
    shares = error_share_in_hardest(labels, predicted, order, fraction=0.01)

An image's hardness is the number of (model, seed) runs that misclassify it;
ties are broken by the mean probability the runs give its true class (lower is
harder), then by test index, so the ranking is total and reproducible. Errors
that cluster on the same few ambiguous digits show as a large share of each
model's errors inside the 1% hardest images.
"""

from __future__ import annotations

import math

import numpy as np


def wrong_counts(labels: np.ndarray, predicted: dict[str, np.ndarray]) -> np.ndarray:
    """(N,) int: over every model and seed (`predicted[model]` is (S, N)), how many runs misclassify each image."""
    counts = np.zeros(len(labels), dtype=np.int64)
    for values in predicted.values():
        counts += (np.asarray(values) != np.asarray(labels)).sum(axis=0)
    return counts


def true_class_probability(labels: np.ndarray, probabilities: dict[str, np.ndarray]) -> np.ndarray | None:
    """(N,) mean over models and seeds of the probability given to each image's true class; None without any."""
    if not probabilities:
        return None
    rows = np.arange(len(labels))
    columns = [np.asarray(values, dtype=np.float64)[:, rows, np.asarray(labels, dtype=np.int64)]
               for values in probabilities.values()]
    return np.concatenate(columns).mean(axis=0)


def hardest_first(labels: np.ndarray, predicted: dict[str, np.ndarray],
                  probabilities: dict[str, np.ndarray] | None = None) -> np.ndarray:
    """Test indices from hardest to easiest: most runs wrong first, then lowest true-class probability, then index."""
    counts = wrong_counts(labels, predicted)
    true_probability = true_class_probability(labels, probabilities or {})
    if true_probability is None:
        true_probability = np.zeros(len(labels))
    return np.lexsort((np.arange(len(labels)), true_probability, -counts))


def error_share_in_hardest(labels: np.ndarray, predicted: dict[str, np.ndarray], order: np.ndarray,
                           fraction: float = 0.01) -> dict[str, dict]:
    """Per model: its errors over all seeds, how many fall on the `fraction` hardest images (at least one image),
    and their share (None for a model without errors)."""
    hardest = np.zeros(len(labels), dtype=bool)
    hardest[order[:max(1, math.ceil(fraction * len(labels)))]] = True
    shares = {}
    for name, values in predicted.items():
        wrong = np.asarray(values) != np.asarray(labels)  # (S, N)
        errors, inside = int(wrong.sum()), int(wrong[:, hardest].sum())
        shares[name] = {"errors": errors, "in_hardest": inside, "share": inside / errors if errors else None}
    return shares
