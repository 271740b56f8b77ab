"""End to end on real data: a quick two-model, two-seed compare with --robustness, every deeper number checked
against the run folder it was written to."""

from __future__ import annotations

import numpy as np
import pytest

from mnistlab.evaluation import calibration
from mnistlab.cli.main import main
from mnistlab.evaluation.corruptions import CORRUPTIONS
from mnistlab.evaluation.robustness import CLEAN
from mnistlab.runs.folder import read_metrics, read_run_arrays

MODELS = ["ann", "cnn-fast"]


@pytest.fixture(scope="module")
def quick_run(real_data_dir, tmp_path_factory):
    """ann and cnn-fast, seeds 0 and 1, one epoch on 2,000 images, with --robustness (minutes on 2 cores)."""
    out = tmp_path_factory.mktemp("assessed") / "run"
    assert main(["--quiet", "--data-dir", str(real_data_dir), "compare", "--models", ",".join(MODELS), "--seeds", "2",
                 "--epochs", "1", "--limit-train", "2000", "--robustness", "--threads", "1", "--out", str(out)]) == 0
    return out


def test_calibration_and_ensembles_agree_with_the_saved_probabilities(quick_run):
    metrics, arrays = read_metrics(quick_run), read_run_arrays(quick_run)
    labels = arrays.labels.astype(np.int64)
    for name in MODELS:
        result, probabilities = metrics["models"][name], arrays.probabilities(name)
        for seed_probabilities, record in zip(probabilities, result["seeds"]):
            before = record["calibration"]["before"]
            assert before["ece"] == calibration.expected_calibration_error(seed_probabilities, labels)
            assert before["accuracy"] == (seed_probabilities.argmax(axis=1) == labels).mean()
            assert 0.05 <= record["calibration"]["temperature"] <= 20
        # the temperature minimises validation NLL; on the test split it lowers NLL too
        assert result["calibration"]["after"]["nll"] < result["calibration"]["before"]["nll"]
        for log_probabilities, predicted in zip(arrays.log_probabilities[name].astype(np.float64), arrays.predicted[name]):
            rows = np.flatnonzero(log_probabilities.argmax(axis=1) != predicted)  # float16 rounding flipped a near-tie
            stored_top, stored_predicted = (log_probabilities[rows, log_probabilities[rows].argmax(axis=1)],
                                            log_probabilities[rows, predicted[rows]])
            assert len(rows) < 10 and np.all(stored_top - stored_predicted <= (np.abs(stored_top) +
                                                                               np.abs(stored_predicted)) * 2 ** -11)
        ensemble = probabilities.mean(axis=0)
        assert result["ensemble"]["accuracy"] == (ensemble.argmax(axis=1) == labels).mean()
        assert result["ensemble"]["nll"] == calibration.negative_log_likelihood(ensemble, labels)


def test_non_digits_get_an_auroc_and_the_checkpoints_a_threshold(quick_run, real_data_dir):
    if not (real_data_dir / "fashion-mnist").is_dir():
        pytest.skip(f"Fashion-MNIST not found at {real_data_dir}")
    metrics = read_metrics(quick_run)
    for name in MODELS:
        scores = metrics["models"][name]["not_a_digit"]["fashion-mnist"]
        assert 0.5 < scores["auroc"] <= 1  # less sure of clothes than of digits
        assert scores["digits_kept"] > 0.85  # the threshold keeps 95% of validation digits; the test set is close
        assert (real_data_dir / "kmnist").is_dir() == ("kmnist" in metrics["models"][name]["not_a_digit"])


def test_robustness_sweeps_and_report(quick_run):
    metrics = read_metrics(quick_run)
    robustness = metrics["robustness"]
    for name in MODELS:
        table = robustness["models"][name]
        assert table[CLEAN]["mean"] == pytest.approx(metrics["models"][name]["test_accuracy"])
        assert table["mean-corrupted"]["mean"] < table[CLEAN]["mean"]
        shift = robustness["shift_sweep"]["models"][name]["mean"]
        assert shift[0] == pytest.approx(table[CLEAN]["mean"]) and shift[-1] < shift[0] - 0.2  # 8 px moves a digit off
    assert len(robustness["comparisons"]) == 1 + len(CORRUPTIONS)
    for figure in ("shift_sweep.png", "rotation_sweep.png", "reliability_ann.png", "reliability_cnn-fast.png"):
        assert (quick_run / figure).stat().st_size > 10_000
    report = (quick_run / "report.md").read_text()
    for heading in ("## Are the probabilities honest?", "## Seed ensembles", "## Not a digit",
                    "## Robustness: corruptions, shift and rotation"):
        assert heading in report
    assert "| stripe | ann − cnn-fast |" in report
