"""Calibration scores against hand-computed cases, scikit-learn, and the properties a user relies on."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import softmax
from sklearn.metrics import brier_score_loss, log_loss

from mnistlab.evaluation import calibration

# Four images, two classes; confidences chosen away from the 15-bin edges (multiples of 1/15).
HAND_PROBABILITIES = np.array([[0.9, 0.1], [0.1, 0.9], [0.62, 0.38], [0.3, 0.7]])
HAND_LABELS = np.array([0, 0, 0, 1])


def sampled_logits(seed: int, images: int = 40_000, classes: int = 10, spread: float = 3.0):
    """Random logits and labels drawn from softmax(logits): calibrated by construction."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(scale=spread, size=(images, classes))
    probabilities = softmax(logits, axis=1)
    labels = (probabilities.cumsum(axis=1) > rng.random((images, 1))).argmax(axis=1)
    return logits, labels


def test_hand_case_ece_nll_brier():
    # Bins of width 1/15: confidence 0.9 (images 0 and 1) lies in bin 13 = (0.867, 0.933],
    # 0.62 in bin 9 = (0.6, 0.667], 0.7 in bin 10 = (0.667, 0.733].
    # bin 13: 2 images, mean confidence 0.9, accuracy 1/2 -> 2/4 * |0.5 - 0.9| = 0.2
    # bin 9:  1 image, confidence 0.62, accuracy 1       -> 1/4 * 0.38      = 0.095
    # bin 10: 1 image, confidence 0.7,  accuracy 1       -> 1/4 * 0.3       = 0.075
    # ECE = 0.37
    assert calibration.expected_calibration_error(HAND_PROBABILITIES, HAND_LABELS) == pytest.approx(0.37)
    # NLL = -(ln 0.9 + ln 0.1 + ln 0.62 + ln 0.7) / 4 = (0.10536 + 2.30259 + 0.47804 + 0.35667) / 4
    assert calibration.negative_log_likelihood(HAND_PROBABILITIES, HAND_LABELS) == pytest.approx(0.8106641, abs=1e-6)
    # Brier per image: 0.1^2 + 0.1^2 = 0.02; 0.9^2 + 0.9^2 = 1.62; 0.38^2 * 2 = 0.2888; 0.3^2 * 2 = 0.18
    # mean = 2.1088 / 4
    assert calibration.brier_score(HAND_PROBABILITIES, HAND_LABELS) == pytest.approx(0.5272)
    scores = calibration.calibration_scores(HAND_PROBABILITIES, HAND_LABELS)
    assert scores["accuracy"] == 0.75
    assert scores["ece"] == pytest.approx(0.37)


def test_hand_case_reliability_bins():
    table = calibration.reliability_bins(HAND_PROBABILITIES, HAND_LABELS)
    assert table["edges"][0] == 0.0 and table["edges"][-1] == 1.0 and len(table["edges"]) == 16
    expected_count = np.zeros(15, dtype=int)
    expected_count[[9, 10, 13]] = [1, 1, 2]
    np.testing.assert_array_equal(table["count"], expected_count)
    np.testing.assert_allclose(table["confidence"][[9, 10, 13]], [0.62, 0.7, 0.9])
    np.testing.assert_allclose(table["accuracy"][[9, 10, 13]], [1.0, 1.0, 0.5])
    empty = table["count"] == 0
    assert np.isnan(table["confidence"][empty]).all() and np.isnan(table["accuracy"][empty]).all()


def test_confidence_one_falls_in_the_last_bin():
    table = calibration.reliability_bins(np.array([[1.0, 0.0], [0.0, 1.0]]), np.array([0, 0]))
    assert table["count"][-1] == 2 and table["accuracy"][-1] == 0.5


def test_ece_is_zero_for_a_perfectly_calibrated_toy():
    # 10 images at confidence 0.8, 8 of them right; 2 images at 0.5, one right.
    probabilities = np.array([[0.8, 0.2]] * 10 + [[0.5, 0.5]] * 2)
    labels = np.array([0] * 8 + [1] * 2 + [0, 1])
    assert calibration.expected_calibration_error(probabilities, labels) == pytest.approx(0.0, abs=1e-12)


def test_ece_is_small_for_labels_drawn_from_the_probabilities():
    logits, labels = sampled_logits(seed=1)
    assert calibration.expected_calibration_error(softmax(logits, axis=1), labels) < 0.015
    # and large when the same model claims certainty
    assert calibration.expected_calibration_error(softmax(10 * logits, axis=1), labels) > 0.1


def test_binary_case_matches_scikit_learn():
    rng = np.random.default_rng(0)
    positive = rng.uniform(0.01, 0.99, size=200)
    labels = (rng.random(200) < positive).astype(int)
    probabilities = np.stack([1 - positive, positive], axis=1)
    assert calibration.negative_log_likelihood(probabilities, labels) == pytest.approx(log_loss(labels, positive))
    # scikit-learn's binary Brier score is the squared error of one class; the two-class sum is twice it
    assert calibration.brier_score(probabilities, labels) == pytest.approx(2 * brier_score_loss(labels, positive))


def test_nll_stays_finite_for_a_certain_mistake():
    value = calibration.negative_log_likelihood(np.array([[1.0, 0.0]], dtype=np.float32), np.array([1]))
    assert value == pytest.approx(-np.log(calibration.PROBABILITY_FLOOR))


def test_temperature_one_is_recovered_for_calibrated_logits():
    logits, labels = sampled_logits(seed=2)
    assert calibration.fit_temperature(logits, labels) == pytest.approx(1.0, abs=0.05)


def test_temperature_undoes_overconfidence_and_lowers_ece():
    logits, labels = sampled_logits(seed=3)
    validation, test = slice(0, 20_000), slice(20_000, None)
    report = calibration.temperature_report(2.5 * logits[validation], labels[validation],
                                            2.5 * logits[test], labels[test])
    assert report["temperature"] == pytest.approx(2.5, rel=0.05)
    assert report["after"]["ece"] < report["before"]["ece"] / 3
    assert report["after"]["nll"] < report["before"]["nll"]
    assert report["after"]["accuracy"] == report["before"]["accuracy"]


def test_fitted_temperature_is_deterministic_and_a_minimum():
    logits, labels = sampled_logits(seed=4, images=5_000)
    logits = 0.5 * logits  # underconfident: T < 1
    temperature = calibration.fit_temperature(logits, labels)
    assert temperature == calibration.fit_temperature(logits, labels)
    assert temperature < 1

    def nll(value):
        return calibration.negative_log_likelihood(calibration.apply_temperature(logits, value), labels)

    assert nll(temperature) < nll(temperature * 1.05) and nll(temperature) < nll(temperature / 1.05)


@pytest.mark.parametrize("temperature", [0.1, 1.0, 7.0])
def test_temperature_never_changes_the_predicted_class(temperature):
    logits, _ = sampled_logits(seed=5, images=2_000)
    scaled = calibration.apply_temperature(logits, temperature)
    np.testing.assert_array_equal(scaled.argmax(axis=1), logits.argmax(axis=1))
    np.testing.assert_allclose(scaled.sum(axis=1), 1.0)


def test_ensemble_is_the_mean_of_the_seeds_probabilities():
    # One image, label 0: seed A says [0.9, 0.1] (right), seed B [0.3, 0.7] (wrong); the mean [0.6, 0.4] is right.
    seeds = np.array([[[0.9, 0.1]], [[0.3, 0.7]]])
    np.testing.assert_allclose(calibration.ensemble_probabilities(seeds), [[0.6, 0.4]])
    scores = calibration.ensemble_scores(seeds, np.array([0]))
    assert scores["seeds"] == 2 and scores["accuracy"] == 1.0
    assert scores["nll"] == pytest.approx(-np.log(0.6))
    assert scores["brier"] == pytest.approx(0.32)  # 0.4^2 + 0.4^2
    assert scores["ece"] == pytest.approx(0.4)  # one image: |1 - 0.6|


def test_bad_inputs_are_named():
    with pytest.raises(ValueError, match="labels must be integers in \\[0, 2\\)"):
        calibration.brier_score(HAND_PROBABILITIES, np.array([0, 1, 2, 0]))
    with pytest.raises(ValueError, match="shapes"):
        calibration.expected_calibration_error(HAND_PROBABILITIES, HAND_LABELS[:3])
    with pytest.raises(ValueError, match="temperature must be > 0"):
        calibration.apply_temperature(HAND_PROBABILITIES, 0.0)
    with pytest.raises(ValueError, match="seeds, N, C"):
        calibration.ensemble_probabilities(HAND_PROBABILITIES)
