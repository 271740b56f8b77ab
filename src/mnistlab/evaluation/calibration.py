"""Are a model's probabilities honest? Calibration scores, temperature scaling and seed ensembles.

Pure functions of arrays: `probabilities` are (N, C) rows that sum to 1,
`logits` (N, C) raw network outputs, `labels` (N,) integer classes. The
definitions follow Guo et al. 2017, "On Calibration of Modern Neural Networks":

- Expected calibration error (ECE): the images are put into equal-width bins
  by their confidence (the top probability); ECE is the mean over bins of
  |accuracy - mean confidence|, each bin weighted by its share of the images.
  Bin i holds confidences in (i/B, (i+1)/B].
- Negative log-likelihood (NLL): the mean of -log p(true class).
- Brier score: the squared distance between the probability row and the
  one-hot label, summed over classes and averaged over images (0 is perfect,
  2 the worst).
- Temperature scaling: one scalar T divides the logits; T is fitted on the
  validation split (never the test split) by minimising NLL. It never changes
  the predicted class, only how sure the model says it is.
- Seed ensemble: the mean of the seeds' probabilities, scored like one model.
"""

from __future__ import annotations

import numpy as np

BINS = 15  # equal-width confidence bins of the ECE and the reliability diagram
PROBABILITY_FLOOR = 1e-12  # smallest probability NLL takes the log of: float32 softmax rounds far-off classes to 0
TEMPERATURE_BOUNDS = (0.05, 20.0)  # range searched for the temperature (dimensionless divisor of the logits)
LOG_TEMPERATURE_TOLERANCE = 1e-6  # the fit stops when log T is known to this absolute precision


def _check(probabilities, labels) -> tuple[np.ndarray, np.ndarray]:
    probabilities = np.asarray(probabilities, dtype=np.float64)
    labels = np.asarray(labels)
    if probabilities.ndim != 2 or labels.shape != (len(probabilities),) or len(labels) == 0:
        raise ValueError(f"need (N, C) probabilities and (N,) labels with N >= 1, got shapes "
                         f"{probabilities.shape} and {labels.shape}")
    if not np.issubdtype(labels.dtype, np.integer) or labels.min() < 0 or labels.max() >= probabilities.shape[1]:
        raise ValueError(f"labels must be integers in [0, {probabilities.shape[1]}), got {labels.dtype} "
                         f"values in [{labels.min()}, {labels.max()}]")
    return probabilities, labels.astype(np.int64)


def reliability_bins(probabilities, labels, bins: int = BINS) -> dict[str, np.ndarray]:
    """Per confidence bin: `edges` (bins + 1,), `confidence` and `accuracy` (bins,), NaN where empty, `count` (bins,)."""
    probabilities, labels = _check(probabilities, labels)
    confidence = probabilities.max(axis=1)
    correct = probabilities.argmax(axis=1) == labels
    edges = np.linspace(0.0, 1.0, bins + 1)
    index = np.clip(np.searchsorted(edges, confidence, side="left") - 1, 0, bins - 1)  # (edge_i, edge_i+1]
    count = np.bincount(index, minlength=bins)
    with np.errstate(invalid="ignore", divide="ignore"):  # empty bins become NaN on purpose
        mean_confidence = np.bincount(index, weights=confidence, minlength=bins) / count
        accuracy = np.bincount(index, weights=correct, minlength=bins) / count
    return {"edges": edges, "confidence": mean_confidence, "accuracy": accuracy, "count": count}


def expected_calibration_error(probabilities, labels, bins: int = BINS) -> float:
    """ECE: sum over bins of (share of images) * |accuracy - mean confidence|, in [0, 1]."""
    table = reliability_bins(probabilities, labels, bins)
    filled = table["count"] > 0
    weights = table["count"][filled] / table["count"].sum()
    return float((weights * np.abs(table["accuracy"][filled] - table["confidence"][filled])).sum())


def negative_log_likelihood(probabilities, labels) -> float:
    """Mean of -log p(true class), with p floored at PROBABILITY_FLOOR so one certain mistake stays finite."""
    probabilities, labels = _check(probabilities, labels)
    true_class = probabilities[np.arange(len(labels)), labels]
    return float(-np.log(np.maximum(true_class, PROBABILITY_FLOOR)).mean())


def brier_score(probabilities, labels) -> float:
    """Mean over images of the summed squared error against the one-hot label, in [0, 2]."""
    probabilities, labels = _check(probabilities, labels)
    one_hot = np.eye(probabilities.shape[1])[labels]
    return float(((probabilities - one_hot) ** 2).sum(axis=1).mean())


def calibration_scores(probabilities, labels, bins: int = BINS) -> dict[str, float]:
    """Accuracy, NLL, ECE and Brier score of one set of probabilities (JSON-ready)."""
    probabilities, labels = _check(probabilities, labels)
    return {
        "accuracy": float((probabilities.argmax(axis=1) == labels).mean()),
        "nll": negative_log_likelihood(probabilities, labels),
        "ece": expected_calibration_error(probabilities, labels, bins),
        "brier": brier_score(probabilities, labels),
    }


def apply_temperature(logits, temperature: float) -> np.ndarray:
    """Probabilities (N, C) float64 of `logits / temperature`; the argmax is unchanged for any temperature > 0."""
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    from scipy.special import softmax

    return softmax(np.asarray(logits, dtype=np.float64) / temperature, axis=1)


def fit_temperature(logits, labels) -> float:
    """The temperature T minimising the NLL of softmax(logits / T): fit on validation logits, never test ones.

    A bounded scalar search over log T within TEMPERATURE_BOUNDS: deterministic, and
    T > 1 means the model was overconfident, T < 1 underconfident.
    """
    from scipy.optimize import minimize_scalar  # here, as SciPy's softmax elsewhere: slow to import, and
    from scipy.special import log_softmax  # `train` (which imports this module) calibrates nothing

    logits, labels = _check(logits, labels)
    rows = np.arange(len(labels))

    def nll(log_temperature: float) -> float:
        return float(-log_softmax(logits / np.exp(log_temperature), axis=1)[rows, labels].mean())

    low, high = np.log(TEMPERATURE_BOUNDS)
    result = minimize_scalar(nll, bounds=(low, high), method="bounded",
                             options={"xatol": LOG_TEMPERATURE_TOLERANCE})
    return float(np.exp(result.x))


def temperature_report(validation_logits, validation_labels, test_logits, test_labels, bins: int = BINS) -> dict:
    """Fit T on the validation split and score the test split before and after scaling (JSON-ready)."""
    from scipy.special import softmax

    temperature = fit_temperature(validation_logits, validation_labels)
    return {
        "temperature": temperature,
        "before": calibration_scores(softmax(np.asarray(test_logits, dtype=np.float64), axis=1), test_labels, bins),
        "after": calibration_scores(apply_temperature(test_logits, temperature), test_labels, bins),
    }


def ensemble_probabilities(seed_probabilities) -> np.ndarray:
    """The seed ensemble's probabilities: the mean over seeds of (S, N, C) probabilities -> (N, C)."""
    seed_probabilities = np.asarray(seed_probabilities, dtype=np.float64)
    if seed_probabilities.ndim != 3 or len(seed_probabilities) == 0:
        raise ValueError(f"need (seeds, N, C) probabilities, got shape {seed_probabilities.shape}")
    return seed_probabilities.mean(axis=0)


def ensemble_scores(seed_probabilities, labels, bins: int = BINS) -> dict[str, float]:
    """Accuracy, NLL, ECE and Brier score of the seed ensemble (mean of the seeds' probabilities)."""
    return {"seeds": len(seed_probabilities),
            **calibration_scores(ensemble_probabilities(seed_probabilities), labels, bins)}
