"""Data efficiency: nested, stratified training subsets and `compare --train-sizes` (learning curves)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.model_selection import train_test_split

from conftest import assert_one_line_error, register_tiny_dataset, run_cli
from mnistlab.common.errors import ConfigError
from mnistlab.data.splits import nested_split, split_indices, stratified_split
from mnistlab.runs.folder import read_metrics
from mnistlab.study.sizes import parse_train_sizes, resolve_sizes
from mnistlab.training.config import TrainConfig


@st.composite
def labels_and_sizes(draw):
    classes = draw(st.integers(2, 10))
    counts = draw(st.lists(st.integers(8, 60), min_size=classes, max_size=classes))
    labels = np.repeat(np.arange(classes), counts)
    labels = np.random.default_rng(draw(st.integers(0, 99))).permutation(labels)
    small = draw(st.integers(4 * classes, len(labels)))
    large = draw(st.integers(small, len(labels)))
    return labels, small, large


@settings(max_examples=60, deadline=None)
@given(labels_and_sizes(), st.integers(0, 2**32 - 1), st.sampled_from([0.1, 0.2, 0.25, 0.5]))
def test_nested_subsets_are_nested_and_stratified(case, seed, fraction):
    labels, small, large = case
    try:
        small_train, small_validation = nested_split(labels, fraction, seed, small)
    except ConfigError:
        return  # too few images to hold out a validation image and keep every class: refused, not mis-split
    large_train, large_validation = nested_split(labels, fraction, seed, large)
    assert set(small_train) <= set(large_train) and set(small_validation) <= set(large_validation)
    assert len(small_train) + len(small_validation) == small
    assert not set(small_train) & set(small_validation)
    classes = np.unique(labels)
    for train, validation in ((small_train, small_validation), (large_train, large_validation)):
        # each class's share of a subset: test_every_nested_subset_holds_each_class_within_one_image_of_its_share
        counts = np.array([np.sum(labels[np.concatenate([train, validation])] == value) for value in classes])
        held_out = np.array([np.sum(labels[validation] == value) for value in classes])
        assert np.all(np.abs(held_out - fraction * counts) <= 1.0)  # each class holds out its fraction


@pytest.mark.xfail(raises=AssertionError, strict=True,
                   reason="the midpoint order (a Sainte-Lague apportionment) can miss a class's share by more than one "
                          "image when several small classes round up together; a quota method (Balinski-Young) would "
                          "not, but changes every --train-sizes subset: open")
def test_every_nested_subset_holds_each_class_within_one_image_of_its_share():
    labels = np.repeat(np.arange(4), [8, 8, 8, 53])  # found by the property test above: 2, 2, 2, 10 of 16
    train, validation = nested_split(labels, 0.1, 0, 16)
    counts = np.bincount(labels[np.concatenate([train, validation])], minlength=4)
    assert np.all(np.abs(counts - 16 * np.bincount(labels) / len(labels)) <= 1.0), counts


def test_nested_subsets_differ_between_seeds_and_repeat_for_one():
    labels = np.arange(600) % 10
    first = nested_split(labels, 0.1, 3, 200)
    assert all(np.array_equal(a, b) for a, b in zip(first, nested_split(labels, 0.1, 3, 200)))
    assert not np.array_equal(first[0], nested_split(labels, 0.1, 4, 200)[0])


@pytest.mark.parametrize("limit_train", [None, 300, 1500])
def test_runs_without_train_sizes_split_exactly_as_before(limit_train):
    """limit_train keeps drawing its subset as it always did, so existing runs keep their numbers."""
    labels = np.random.default_rng(5).integers(0, 10, 3000)
    indices = np.arange(len(labels))
    if limit_train is not None:
        indices = np.sort(np.random.default_rng(7).choice(indices, size=limit_train, replace=False))
    train, validation = train_test_split(indices, test_size=0.1, stratify=labels[indices], random_state=7)
    got = split_indices(labels, 0.1, 7, limit_train)
    assert np.array_equal(got[0], np.sort(train)) and np.array_equal(got[1], np.sort(validation))
    assert "train_size" not in TrainConfig().to_dict()  # plans and checkpoints of earlier runs compare equal


@settings(max_examples=150, deadline=None)
@given(counts=st.lists(st.integers(1, 40), min_size=1, max_size=12), fraction=st.floats(0.01, 0.9),
       seed=st.integers(0, 2**32 - 1), order_seed=st.integers(0, 99), names=st.sampled_from(["int", "str"]))
def test_the_stratified_split_draws_as_scikit_learn_does(counts, fraction, seed, order_seed, names):
    """`stratified_split` is scikit-learn's stratified `train_test_split`, without importing it: the same parts
    for any class sizes (ties, classes of one image), fraction and seed, and a refusal wherever it refuses."""
    labels = np.random.default_rng(order_seed).permutation(np.repeat(np.arange(len(counts)), counts))
    if names == "str":
        labels = np.array([f"class {label}" for label in labels])
    positions = np.arange(len(labels))
    try:
        expected = train_test_split(positions, test_size=fraction, stratify=labels, random_state=seed)
    except ValueError:
        with pytest.raises(ConfigError, match="stratified validation split"):
            stratified_split(labels, fraction, seed)
        return
    got = stratified_split(labels, fraction, seed)
    assert all(np.array_equal(a, b) for a, b in zip(got, expected))


def test_sizes_parse_as_counts_or_fractions():
    assert resolve_sizes(parse_train_sizes("600, 0.1,60000"), 60000) == [600, 6000, 60000]
    for bad in ("600,x", "0", "1.5", "-3", ""):
        with pytest.raises(ConfigError, match="--train-sizes"):
            resolve_sizes(parse_train_sizes(bad), 60000)
    with pytest.raises(ConfigError, match="out of range"):
        resolve_sizes([70000], 60000)


@pytest.mark.slow  # seconds of work: make test runs it, the fast suite leaves it out
def test_compare_train_sizes_writes_a_learning_curve_from_a_compare_run_per_size(tmp_path, monkeypatch, capsys):
    _, data_dir, _, _ = register_tiny_dataset(tmp_path / "data", monkeypatch)
    out = tmp_path / "sweep"
    argv = ["--quiet", "--threads", "1", "--data-dir", data_dir, "compare", "--dataset", "tiny", "--models",
            "logreg,ann", "--seeds", "2", "--epochs", "1", "--validation-fraction", "0.25", "--train-sizes", "40,1.0",
            "--out", out]
    code, stdout, stderr = run_cli(capsys, *argv)
    assert code == 0, stderr
    sweep = json.loads((out / "learning_curve.json").read_text())
    assert sweep["sizes"] == [40, 120] and sweep["runs"] == ["size-40", "size-120"]
    for index, size in enumerate(sweep["sizes"]):
        metrics = read_metrics(out / f"size-{size}")
        assert metrics["dataset"]["train_size"] + metrics["dataset"]["validation_size"] == size
        for name in ("logreg", "ann"):
            assert sweep["models"][name]["mean"][index] == metrics["models"][name]["test_accuracy"]
            assert sweep["models"][name]["ci_low"][index] == metrics["models"][name]["accuracy"]["ci_low"]
            assert metrics["models"][name]["config"]["train_size"] == size
        assert sweep["comparisons"][index][0]["p_value"] == metrics["comparisons"][0]["p_value"]
    assert (out / "learning_curve.png").read_bytes()[:4] == b"\x89PNG"
    assert "| 40 |" in (out / "learning_curve.md").read_text() and "40" in stdout
    again = run_cli(capsys, *argv, "--resume")  # every job is finished: nothing retrains, the same curve
    assert again[0] == 0 and json.loads((out / "learning_curve.json").read_text()) == sweep
    code, _, stderr = run_cli(capsys, *argv[:-2], "--out", out, "--limit-train", "100")
    assert_one_line_error(code, stderr, "--train-sizes and --limit-train")
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    code, _, stderr = run_cli(capsys, *argv[:-1], tmp_path / "other")
    assert_one_line_error(code, stderr, "notes.txt", "not part of a --train-sizes run")
