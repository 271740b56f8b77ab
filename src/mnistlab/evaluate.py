"""Score a trained model on held-out images: loss, accuracy, confusion matrix, per-class metrics."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.metrics import confusion_matrix, precision_recall_fscore_support
from torch import nn

from mnistlab.models import images_to_tensor, infer


@dataclass
class Evaluation:
    """Scores (JSON-ready in `metrics`) and the raw per-image outputs behind them."""

    metrics: dict  # test_loss, test_accuracy, confusion_matrix, per_class
    predictions: np.ndarray  # (N,) predicted class per image
    probabilities: np.ndarray  # (N, classes) softmax outputs, float32


def evaluate(model: nn.Module, images: np.ndarray, labels: np.ndarray, class_names: tuple[str, ...]) -> Evaluation:
    """Evaluate `model` on uint8 `images` (N, 28, 28) with integer `labels` (N,)."""
    logits = infer(model, images_to_tensor(images))
    targets = torch.from_numpy(labels.astype(np.int64))
    probabilities = logits.softmax(dim=1).numpy()
    predictions = logits.argmax(dim=1).numpy()
    classes = list(range(len(class_names)))
    precision, recall, f1, support = precision_recall_fscore_support(
        labels, predictions, labels=classes, zero_division=0
    )
    metrics = {
        "test_loss": F.cross_entropy(logits, targets).item(),
        "test_accuracy": float((predictions == labels).mean()),
        "confusion_matrix": confusion_matrix(labels, predictions, labels=classes).tolist(),
        "per_class": [
            {"class": name, "precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
            for name, p, r, f, s in zip(class_names, precision, recall, f1, support)
        ],
    }
    return Evaluation(metrics=metrics, predictions=predictions, probabilities=probabilities)
