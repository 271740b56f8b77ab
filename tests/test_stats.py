"""The comparison statistics against hand-computed cases and reference implementations."""

import math

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from scipy import stats as scipy_stats
from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

from mnistlab.evaluation import stats
from mnistlab.evaluation.analysis import compare_models, mean_history, select_disagreements, select_misclassified
from mnistlab.evaluation.evaluate import most_confused_pairs, row_normalise, score_predictions


def test_t_interval_by_hand():
    # values 1..5: mean 3, sample variance 10/4 = 2.5, t(0.975, df=4) = 2.776445 (any t table)
    result = stats.t_interval([1, 2, 3, 4, 5])
    half_width = 2.776445 * math.sqrt(2.5) / math.sqrt(5)  # 1.963243
    assert result["n"] == 5 and result["mean"] == 3 and result["std"] == pytest.approx(math.sqrt(2.5))
    assert result["ci_low"] == pytest.approx(3 - half_width, abs=1e-5)
    assert result["ci_high"] == pytest.approx(3 + half_width, abs=1e-5)


def test_t_interval_of_one_seed_has_no_spread_and_bounds_clip():
    assert stats.t_interval([0.97]) == {"n": 1, "mean": 0.97, "std": None, "ci_low": None, "ci_high": None}
    clipped = stats.t_interval([0.99, 0.999], bounds=(0, 1))
    assert clipped["ci_high"] == 1 and clipped["ci_low"] < 0.99


@pytest.mark.parametrize(
    ("only_a", "only_b", "expected"),
    [
        (1, 6, 2 * (1 + 7) / 2**7),  # P(X <= 1), n = 7: (C(7,0) + C(7,1)) / 128 = 8/128; two-sided 0.125
        (2, 10, 2 * (1 + 12 + 66) / 2**12),  # n = 12: (1 + 12 + 66) / 4096; two-sided 0.0385742...
        (0, 5, 2 / 2**5),  # all five discordant pairs favour B: 2 * (1/32) = 0.0625
        (4, 4, 1.0),  # balanced: no evidence either way
        (0, 0, 1.0),  # no discordant pairs at all
    ],
)
def test_mcnemar_exact_by_hand(only_a, only_b, expected):
    assert stats.mcnemar_exact(only_a, only_b) == pytest.approx(expected, rel=1e-12)
    assert stats.mcnemar_exact(only_b, only_a) == pytest.approx(expected, rel=1e-12)  # symmetric


@pytest.mark.parametrize(("only_a", "only_b"), [(3, 17), (40, 61), (120, 80), (0, 1)])
def test_mcnemar_matches_scipys_binomial_test(only_a, only_b):
    reference = scipy_stats.binomtest(only_a, only_a + only_b, 0.5).pvalue
    assert stats.mcnemar_exact(only_a, only_b) == pytest.approx(reference, rel=1e-9)


def test_discordant_counts_of_a_paired_table():
    a = np.array([1, 1, 1, 0, 0, 1, 0, 1], dtype=bool)
    b = np.array([1, 0, 0, 1, 0, 1, 0, 0], dtype=bool)
    assert stats.discordant_counts(a, b) == (3, 1)


def test_bootstrap_of_a_two_point_vector_by_hand():
    # Resampling [0, 1] twice: means 0, 0.5, 1 with probabilities 1/4, 1/2, 1/4, so the 2.5% and 97.5% points are 0 and 1.
    assert stats.bootstrap_mean_interval([0.0, 1.0], seed=3) == (0.0, 1.0)


def test_bootstrap_of_a_constant_vector_is_that_constant():
    assert stats.bootstrap_mean_interval([0.25] * 7, resamples=500) == (0.25, 0.25)


def test_bootstrap_resample_distribution_matches_the_binomial():
    # Mean of 3 draws from [0, 0, 1] is Binomial(3, 1/3) / 3: P(0) = 8/27, so its 25% point is 0;
    # P(<= 1/3) = 20/27 = 0.741, so the 50% interval (25%, 75%) is (0, 2/3).
    assert stats.bootstrap_mean_interval([0.0, 0.0, 1.0], confidence=0.5, seed=1) == (0.0, pytest.approx(2 / 3))


def test_bootstrap_is_seeded_and_agrees_with_scipy():
    values = np.random.default_rng(0).choice([-1.0, 0.0, 1.0], size=400, p=[0.1, 0.8, 0.1])
    ours = stats.bootstrap_mean_interval(values, seed=7)
    assert stats.bootstrap_mean_interval(values, seed=7) == ours
    reference = scipy_stats.bootstrap((values,), np.mean, method="percentile", n_resamples=10_000,
                                      random_state=np.random.default_rng(1)).confidence_interval
    assert ours[0] == pytest.approx(reference.low, abs=0.004) and ours[1] == pytest.approx(reference.high, abs=0.004)


def test_paired_differences_average_seeds_per_image():
    a = np.array([[1, 1, 0], [1, 0, 0]], dtype=bool)
    b = np.array([[0, 1, 1], [0, 1, 0]], dtype=bool)
    assert stats.paired_differences(a, b).tolist() == [1.0, -0.5, -0.5]  # image 1: (0 + -1) / 2


def test_combined_p_value_is_twice_the_mean_capped_at_one():
    assert stats.combine_p_values([0.01, 0.03]) == pytest.approx(0.04)
    assert stats.combine_p_values([0.6, 0.9]) == 1.0
    assert stats.combine_p_values([0.2]) == 0.2


def test_holm_adjustment_by_hand():
    # sorted 0.01, 0.02, 0.04 times 3, 2, 1 -> 0.03, 0.04, 0.04 (made monotone), back in input order
    assert stats.holm_adjust([0.04, 0.01, 0.02]) == pytest.approx([0.04, 0.03, 0.04])


def test_compare_models_on_a_table_with_known_counts():
    labels = np.zeros(20, dtype=np.uint8)
    first = np.zeros((1, 20), dtype=np.uint8)
    second = np.zeros((1, 20), dtype=np.uint8)
    first[0, :1] = 1  # first model wrong on image 0 only
    second[0, 10:16] = 1  # second wrong on images 10-15
    (comparison,) = compare_models(["a", "b"], [0], labels, {"a": first, "b": second})
    assert (comparison["only_first_correct"], comparison["only_second_correct"]) == (6, 1)
    assert comparison["p_value"] == pytest.approx(0.125) and comparison["difference"] == pytest.approx(5 / 20)
    assert comparison["ci_low"] < 0.25 < comparison["ci_high"] and not comparison["significant"]


def test_error_analysis_helpers_by_hand():
    matrix = [[8, 2, 0], [1, 5, 4], [0, 0, 0]]
    assert row_normalise(matrix) == [[0.8, 0.2, 0.0], [0.1, 0.5, 0.4], [0.0, 0.0, 0.0]]
    pairs = most_confused_pairs(matrix, ["x", "y", "z"], top=2)
    assert pairs == [{"true": "y", "predicted": "z", "count": 4, "share": 0.4},
                     {"true": "x", "predicted": "y", "count": 2, "share": 0.2}]
    labels = np.array([0, 1, 2, 3, 4])
    predicted = np.array([0, 2, 1, 3, 0])
    confidence = np.array([0.9, 0.6, 0.8, 0.7, 0.6])
    assert select_misclassified(labels, predicted, confidence, 5).tolist() == [2, 1, 4]
    other = np.array([0, 1, 1, 2, 0])
    assert select_disagreements(labels, {"a": predicted, "b": other}, {"a": confidence, "b": confidence}, 5).tolist() == [3, 1]


def test_mean_history_averages_each_epoch():
    histories = [[{"epoch": 1, "val_accuracy": 0.5}], [{"epoch": 1, "val_accuracy": 0.7}]]
    assert mean_history(histories) == [{"epoch": 1.0, "val_accuracy": pytest.approx(0.6)}]


@pytest.mark.filterwarnings("ignore:A single label was found:UserWarning")  # the reference's, on one class
@settings(max_examples=200, deadline=None)
@given(classes=st.integers(1, 12), pairs=st.lists(st.tuples(st.integers(0, 14), st.integers(0, 11)), min_size=1,
                                                   max_size=200))
def test_scores_are_scikit_learns_bit_for_bit(classes, pairs):
    """The confusion matrix and per-class precision, recall and F1 a run records are scikit-learn's, to the bit,
    also for classes never predicted or never present and for labels outside the classes (another dataset's)."""
    labels, predictions = (np.array(column) for column in zip(*pairs))
    predictions = predictions % classes  # a model predicts one of its own classes
    assume((labels < classes).any())  # scikit-learn refuses to score when no label is one of the classes
    got = score_predictions(labels, predictions, [str(name) for name in range(classes)])
    names = list(range(classes))
    precision, recall, f1, support = precision_recall_fscore_support(labels, predictions, labels=names,
                                                                     zero_division=0)
    assert got["confusion_matrix"] == confusion_matrix(labels, predictions, labels=names).tolist()
    assert [(row["precision"], row["recall"], row["f1"], row["support"]) for row in got["per_class"]] == [
        (float(p), float(r), float(f), int(s)) for p, r, f, s in zip(precision, recall, f1, support)]
