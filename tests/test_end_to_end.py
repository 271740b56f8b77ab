"""The full seed study on real MNIST: both models, 5 epochs, the default seed, the accuracies it promises."""

import json

import pytest


@pytest.mark.slow
def test_seed_protocol_reaches_the_study_accuracies(seed_protocol_run):
    metrics = json.loads((seed_protocol_run / "metrics.json").read_text())
    for result in metrics["models"].values():
        assert result["config"]["epochs"] == 5 and result["config"]["batch_size"] == 128
        assert result["config"]["seed"] == 0 and result["config"]["learning_rate"] == 1e-3
    assert metrics["dataset"]["train_size"] == 54_000 and metrics["dataset"]["test_size"] == 10_000
    ann, cnn = metrics["models"]["ann"], metrics["models"]["cnn"]
    assert ann["test_accuracy"] >= 0.970, ann["test_accuracy"]
    assert cnn["test_accuracy"] >= 0.987, cnn["test_accuracy"]
    assert len(cnn["history"]) == 5
