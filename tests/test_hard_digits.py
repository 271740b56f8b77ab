"""Hard digits: per test image how many runs miss it, the hardest first, and each model's errors among the hardest."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from mnistlab.evaluation.hard_digits import error_share_in_hardest, hardest_first, wrong_counts


def test_hardest_are_those_most_runs_miss_ties_by_true_class_probability():
    labels = np.array([0, 1, 2, 3, 4])
    predicted = {"a": np.array([[0, 2, 1, 3, 0], [0, 2, 2, 3, 0]]),  # (seeds, images)
                 "b": np.array([[1, 2, 2, 3, 4]])}
    assert wrong_counts(labels, predicted).tolist() == [1, 3, 1, 0, 2]
    probabilities = {name: np.full((len(values), 5, 5), 0.2) for name, values in predicted.items()}
    probabilities["b"][0, 2, 2] = 0.01  # image 2's true class is the less likely of the tied images 0 and 2
    assert hardest_first(labels, predicted, probabilities).tolist() == [1, 4, 2, 0, 3]
    assert hardest_first(labels, predicted).tolist() == [1, 4, 0, 2, 3]  # without probabilities: by index
    shares = error_share_in_hardest(labels, predicted, hardest_first(labels, predicted), fraction=0.4)
    assert shares["a"] == {"errors": 5, "in_hardest": 4, "share": 0.8}  # its miss of image 2 is outside the 2 hardest
    assert shares["b"] == {"errors": 2, "in_hardest": 1, "share": 0.5}  # b misses 0 (not among 2 hardest) and 1


@settings(max_examples=50, deadline=None)
@given(st.integers(1, 40).flatmap(lambda n: st.tuples(
    arrays(np.uint8, n, elements=st.integers(0, 2)), arrays(np.uint8, (2, n), elements=st.integers(0, 2)),
    arrays(np.uint8, (3, n), elements=st.integers(0, 2)))), st.floats(0.001, 1.0))
def test_ranking_and_shares_hold_for_any_predictions(case, fraction):
    labels, first, second = case
    predicted = {"first": first, "second": second}
    order = hardest_first(labels, predicted)
    counts = wrong_counts(labels, predicted)
    assert sorted(order.tolist()) == list(range(len(labels)))
    assert np.all(np.diff(counts[order]) <= 0)  # never an easier image before a harder one
    for name, row in error_share_in_hardest(labels, predicted, order, fraction).items():
        assert row["errors"] == int((predicted[name] != labels).sum())
        assert 0 <= row["in_hardest"] <= row["errors"]
        assert row["share"] is None if row["errors"] == 0 else 0 <= row["share"] <= 1
