"""Not-a-digit scores on hand-computed cases."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from scipy.special import softmax as scipy_softmax
from sklearn.metrics import roc_auc_score

from mnistlab.evaluation import ood


@settings(max_examples=200, deadline=None)
@given(hnp.arrays(np.float64, hnp.array_shapes(min_dims=2, max_dims=2, max_side=12),
                  elements=st.floats(-1e4, 1e4, allow_nan=False)))
def test_softmax_gives_scipys_bits(logits):
    """The not-sure threshold a run records is computed from this softmax: it must equal SciPy's bit for bit,
    so that runs before and after it agree."""
    assert np.array_equal(ood.softmax(logits), scipy_softmax(logits, axis=1))
    assert np.array_equal(ood.softmax(logits.astype(np.float32)), scipy_softmax(logits.astype(np.float32), axis=1))


@settings(max_examples=300, deadline=None)
@given(digits=st.lists(st.sampled_from([0.1, 0.5, 0.9, 0.99, 1.0]) | st.floats(0, 1), min_size=1, max_size=40),
       others=st.lists(st.sampled_from([0.1, 0.5, 0.9, 0.99, 1.0]) | st.floats(0, 1), min_size=1, max_size=40))
def test_auroc_gives_scikit_learns_bits(digits, others):
    """The not-a-digit AUROC a run records is scikit-learn's roc_auc_score bit for bit, ties (half) included."""
    labels = np.r_[np.ones(len(digits)), np.zeros(len(others))]
    assert ood.digit_auroc(digits, others) == roc_auc_score(labels, np.r_[digits, others])


def test_max_softmax_is_the_top_probability():
    probabilities = np.array([[0.7, 0.2, 0.1], [0.3, 0.3, 0.4]])
    np.testing.assert_allclose(ood.max_softmax(probabilities), [0.7, 0.4])


def test_auroc_by_hand():
    # digits 0.9, 0.8, 0.4; non-digits 0.5, 0.3. Of the 6 (digit, non-digit) pairs the digit is more
    # confident in 5 (0.4 < 0.5 is the one miss): AUROC = 5 / 6
    assert ood.digit_auroc([0.9, 0.8, 0.4], [0.5, 0.3]) == pytest.approx(5 / 6)
    assert ood.digit_auroc([0.9, 0.8], [0.5, 0.3]) == 1.0  # perfectly separated
    assert ood.digit_auroc([0.2], [0.5, 0.3]) == 0.0  # perfectly reversed
    # a tie counts half: pairs (0.5, 0.5) tie, (0.5, 0.3) win -> (0.5 + 1) / 2
    assert ood.digit_auroc([0.5], [0.5, 0.3]) == pytest.approx(0.75)


def test_threshold_keeps_the_asked_share_of_validation_digits():
    confidence = np.array([0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0])[::-1]  # order must not matter
    # keep 80% of 10: the 2 least confident may drop, so the threshold is the 3rd smallest, 0.3
    assert ood.choose_threshold(confidence, keep=0.8) == 0.3
    assert ood.choose_threshold(confidence, keep=0.85) == 0.2  # 1.5 may drop: only 1 does
    assert ood.choose_threshold(confidence, keep=1.0) == 0.1
    assert ood.choose_threshold(confidence, keep=0.9) == 0.2  # (1 - 0.9) * 10 is just below 1 in floats
    values = np.random.default_rng(0).random(1000)
    threshold = ood.choose_threshold(values)  # the default, 95%
    assert (values >= threshold).mean() == 0.95


def test_scores_of_the_not_sure_flag():
    scores = ood.not_a_digit_scores([0.99, 0.95, 0.6, 0.9], [0.5, 0.92, 0.3], threshold=0.9)
    # digits below 0.9: only 0.6 -> 3 of 4 kept; non-digits below 0.9: 0.5 and 0.3 -> 2 of 3 flagged
    assert scores["digits_kept"] == 0.75
    assert scores["non_digits_flagged"] == pytest.approx(2 / 3)
    assert scores["threshold"] == 0.9
    # pairs: 0.99, 0.95 beat all 3; 0.9 beats 0.5 and 0.3; 0.6 beats 0.5 and 0.3 -> (3 + 3 + 2 + 2) / 12
    assert scores["auroc"] == pytest.approx(10 / 12)
    np.testing.assert_array_equal(ood.not_sure([0.89, 0.9, 0.91], 0.9), [True, False, False])


def test_bad_inputs_are_named():
    with pytest.raises(ValueError, match="keep must be a share in \\(0, 1\\]"):
        ood.choose_threshold([0.5], keep=0)
    with pytest.raises(ValueError, match="at least one digit and one non-digit"):
        ood.digit_auroc([0.9], [])
    with pytest.raises(ValueError, match="at least one validation confidence"):
        ood.choose_threshold([])
    with pytest.raises(ValueError, match="\\(N, classes\\) probabilities"):
        ood.max_softmax(np.array([0.5, 0.5]))
