"""Not a digit: how well a digit model's confidence tells digits from other images, and an honest "not sure" flag.

The score is the maximum softmax probability (MSP; Hendrycks and Gimpel 2017,
"A Baseline for Detecting Misclassified and Out-of-Distribution Examples"):
a model should be less sure of a shoe (Fashion-MNIST) or a kana (KMNIST)
than of a digit. The AUROC is the chance that a random digit gets a higher
MSP than a random non-digit (1 = perfectly separated, 0.5 = no better than a
coin). The "not sure" threshold is chosen on validation digits only, as the
MSP that keeps a set share of them; images below it are flagged, and the test
sets then show how many non-digits the flag catches.
"""

from __future__ import annotations

import math

import numpy as np

trapezoid = getattr(np, "trapezoid", None) or np.trapz  # NumPy 2 renamed it
KEEP_DIGITS = 0.95  # share of validation digits that must stay at or above the "not sure" threshold


def softmax(logits) -> np.ndarray:
    """Row-wise softmax of (N, classes) logits by the float operations of `scipy.special.softmax` (so the same
    bits), without importing SciPy on `train`'s path."""
    logits = np.asarray(logits)
    shifted = np.exp(logits - np.max(logits, axis=1, keepdims=True))
    return shifted / np.sum(shifted, axis=1, keepdims=True)


def max_softmax(probabilities) -> np.ndarray:
    """Maximum softmax probability (N,) of (N, classes) probabilities: the model's confidence in its answer."""
    probabilities = np.asarray(probabilities, dtype=np.float64)
    if probabilities.ndim != 2 or len(probabilities) == 0:
        raise ValueError(f"need (N, classes) probabilities with N >= 1, got shape {probabilities.shape}")
    return probabilities.max(axis=1)


def digit_auroc(digit_confidence, other_confidence) -> float:
    """AUROC of confidence for digits (positive) against non-digits; ties count half, as in scikit-learn."""
    digit_confidence, other_confidence = np.ravel(digit_confidence), np.ravel(other_confidence)
    if len(digit_confidence) == 0 or len(other_confidence) == 0:
        raise ValueError("digit_auroc needs at least one digit and one non-digit confidence")
    labels = np.concatenate([np.ones(len(digit_confidence)), np.zeros(len(other_confidence))])
    scores = np.concatenate([digit_confidence, other_confidence])
    if not np.isfinite(scores).all():
        raise ValueError("digit_auroc needs finite confidences")
    # scikit-learn's roc_auc_score by its own float operations (so the same bits, without its second of import;
    # a test holds them equal): the ROC's corners at each distinct score, collinear ones dropped, trapezoids.
    order = np.argsort(scores, kind="stable")[::-1]
    scores, labels = scores[order], labels[order]
    corners = np.concatenate([np.flatnonzero(np.diff(scores)), [len(scores) - 1]])
    true_positives = np.cumsum(labels, dtype=np.float64)[corners]
    false_positives = 1 + corners.astype(np.float64) - true_positives
    if len(corners) > 2:
        kept = np.flatnonzero(np.concatenate(
            [[True], np.logical_or(np.diff(false_positives, 2), np.diff(true_positives, 2)), [True]]))
        true_positives, false_positives = true_positives[kept], false_positives[kept]
    true_positives, false_positives = np.concatenate([[0.0], true_positives]), np.concatenate([[0.0], false_positives])
    return float(trapezoid(true_positives / true_positives[-1], false_positives / false_positives[-1]))


def choose_threshold(validation_confidence, keep: float = KEEP_DIGITS) -> float:
    """The highest threshold that keeps at least `keep` of the validation digits (confidence >= threshold).

    It is one of the observed confidences: with n digits, the floor((1 - keep) * n) least
    confident ones may fall below it. Choose it on validation data, never on the test split.
    """
    if not 0 < keep <= 1:
        raise ValueError(f"keep must be a share in (0, 1], got {keep}")
    ordered = np.sort(np.ravel(validation_confidence))
    if len(ordered) == 0:
        raise ValueError("choose_threshold needs at least one validation confidence")
    may_drop = math.floor(round((1 - keep) * len(ordered), 9))  # round: (1 - 0.9) * 10 is 0.9999999999999998
    return float(ordered[may_drop])


def not_sure(confidence, threshold: float) -> np.ndarray:
    """The "not sure" flag (N,) bool: confidence strictly below `threshold`."""
    return np.asarray(confidence) < threshold


def not_a_digit_scores(digit_confidence, other_confidence, threshold: float) -> dict[str, float]:
    """JSON-ready: AUROC, the threshold, the share of digits kept and of non-digits flagged "not sure"."""
    return {
        "auroc": digit_auroc(digit_confidence, other_confidence),
        "threshold": float(threshold),
        "digits_kept": float(1 - not_sure(digit_confidence, threshold).mean()),
        "non_digits_flagged": float(not_sure(other_confidence, threshold).mean()),
    }
