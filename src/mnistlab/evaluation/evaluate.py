"""Score a trained model on held-out images: loss, accuracy, confusion matrix, per-class metrics, confused pairs."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from mnistlab.models import images_to_tensor, infer


@dataclass
class Evaluation:
    """Scores (JSON-ready in `metrics`) and the raw per-image outputs behind them."""

    metrics: dict  # test_loss (None when labels exceed the model's outputs), test_accuracy, confusion_matrix, per_class
    predictions: np.ndarray  # (N,) predicted class per image
    probabilities: np.ndarray  # (N, classes) softmax outputs, float32
    logits: np.ndarray  # (N, classes) raw outputs, float32


def evaluate(model: nn.Module, images: np.ndarray, labels: np.ndarray, class_names: tuple[str, ...],
             precision: str = "fp32") -> Evaluation:
    """Evaluate `model` on uint8 `images` (N, 28, 28) with integer `labels` (N,)."""
    logits = infer(model, images_to_tensor(images), precision=precision)
    targets = torch.from_numpy(labels.astype(np.int64))
    probabilities = logits.softmax(dim=1).numpy()
    predictions = logits.argmax(dim=1).numpy()
    fits = len(labels) == 0 or int(labels.max()) < logits.shape[1]  # not so when scoring another dataset's classes
    metrics = {
        "test_loss": F.cross_entropy(logits, targets).item() if fits else None,
        **score_predictions(labels, predictions, class_names),
    }
    return Evaluation(metrics=metrics, predictions=predictions, probabilities=probabilities, logits=logits.numpy())


def score_predictions(labels: np.ndarray, predictions: np.ndarray, class_names) -> dict:
    """Accuracy, confusion matrix (rows true, columns predicted) and per-class precision/recall/F1.

    `labels` and `predictions` may hold several seeds' predictions concatenated;
    the counts then add up over seeds. The figures are scikit-learn's (`confusion_matrix`, and
    `precision_recall_fscore_support` with `zero_division=0`) by the same float operations, so the same bits,
    without its second of import; a test holds them equal. A label outside the classes counts nowhere.
    """
    count = len(class_names)
    labels, predictions = np.asarray(labels, dtype=np.int64), np.asarray(predictions, dtype=np.int64)
    known = (labels >= 0) & (labels < count) & (predictions >= 0) & (predictions < count)
    confusion = np.bincount(labels[known] * count + predictions[known], minlength=count * count).reshape(count, count)
    right = np.diag(confusion)
    predicted = np.bincount(predictions[(predictions >= 0) & (predictions < count)], minlength=count)
    support = np.bincount(labels[(labels >= 0) & (labels < count)], minlength=count)
    precision, recall = share(right, predicted), share(right, support)
    f1 = share(2.0 * right, 1.0 * support + predicted)
    return {
        "test_accuracy": float((predictions == labels).mean()),
        "confusion_matrix": confusion.tolist(),
        "per_class": [
            {"class": name, "precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
            for name, p, r, f, s in zip(class_names, precision, recall, f1, support)
        ],
    }


def share(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """numerator / denominator, 0 where the denominator is 0 (scikit-learn's `zero_division=0`)."""
    return numerator / np.where(denominator == 0, 1, denominator) * (denominator != 0)


def row_normalise(matrix) -> list[list[float]]:
    """Each row of a confusion matrix divided by its total (the share of each true class); empty rows stay 0."""
    counts = np.asarray(matrix, dtype=np.float64)
    totals = counts.sum(axis=1, keepdims=True)
    return np.divide(counts, totals, out=np.zeros_like(counts), where=totals > 0).tolist()


def most_confused_pairs(matrix, class_names, top: int = 5) -> list[dict]:
    """The `top` off-diagonal cells by count: true class, predicted class, count, share of the true class."""
    counts = np.asarray(matrix)
    totals = counts.sum(axis=1)
    cells = [(int(counts[true, predicted]), true, predicted) for true, predicted in np.ndindex(counts.shape)
             if true != predicted and counts[true, predicted] > 0]
    cells.sort(key=lambda cell: (-cell[0], cell[1], cell[2]))
    return [
        {"true": class_names[true], "predicted": class_names[predicted], "count": count,
         "share": count / int(totals[true])}
        for count, true, predicted in cells[:top]
    ]
