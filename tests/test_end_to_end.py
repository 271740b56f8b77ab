"""The full seed study on real MNIST: both models, 5 epochs, the default seed, the accuracies it promises."""

import json

import pytest

from mnistlab.cli import main


@pytest.mark.slow
def test_seed_protocol_reaches_the_study_accuracies(real_data_dir, tmp_path, capsys):
    out = tmp_path / "compare"
    assert main(["--quiet", "--data-dir", str(real_data_dir), "compare", "--out", str(out)]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["config"]["epochs"] == 5 and metrics["config"]["batch_size"] == 128
    assert metrics["dataset"]["train_size"] == 54_000 and metrics["dataset"]["test_size"] == 10_000
    ann, cnn = metrics["models"]["ann"], metrics["models"]["cnn"]
    assert ann["test_accuracy"] >= 0.970, ann["test_accuracy"]
    assert cnn["test_accuracy"] >= 0.987, cnn["test_accuracy"]
    assert len(cnn["history"]) == 5
    print(f"seed protocol: ANN {ann['test_accuracy']:.4f} ({ann['train_seconds']:.0f} s), "
          f"CNN {cnn['test_accuracy']:.4f} ({cnn['train_seconds']:.0f} s)")
