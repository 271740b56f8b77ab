"""End to end on real data: quick ANN and CNN runs through the library, then every deeper score on them."""

from __future__ import annotations

import numpy as np
import pytest

from mnistlab import corruptions, robustness
from mnistlab.assessment import assess_model
from mnistlab.checkpoint import load_checkpoint
from mnistlab.config import TrainConfig
from mnistlab.datasets import load_dataset
from mnistlab.study import train_checkpoint


@pytest.mark.slow
@pytest.mark.parametrize("model_name", ["ann", "cnn-fast"])
def test_quick_run_assessed_on_mnist_and_fashion(model_name, real_data_dir, tmp_path):
    if not (real_data_dir / "fashion-mnist").is_dir():
        pytest.skip(f"Fashion-MNIST not found at {real_data_dir}")
    path = tmp_path / f"{model_name}.pt"
    train_checkpoint(model_name, {"epochs": 1, "limit_train": 2000, "seed": 0}, path, real_data_dir, progress=False)
    model, state = load_checkpoint(path)
    dataset = load_dataset("mnist", real_data_dir, progress=False)
    fashion = load_dataset("fashion-mnist", real_data_dir, progress=False)
    result = assess_model(robustness.model_logits_fn(model), dataset, TrainConfig(**state["config"]),
                          {"fashion-mnist": fashion.test_images})
    scores = result.scores

    before, after = scores["calibration"]["before"], scores["calibration"]["after"]
    assert before["accuracy"] > 0.6  # one epoch on 1,800 images: about 70-84% over three seeds
    assert after["accuracy"] == before["accuracy"]  # temperature never changes the predicted class
    assert 0.05 <= scores["calibration"]["temperature"] <= 20
    np.testing.assert_allclose(result.test_probabilities.sum(axis=1), 1.0, rtol=1e-5)

    accuracy = scores["corruption_accuracy"]
    assert list(accuracy) == [robustness.CLEAN, *corruptions.CORRUPTIONS]
    assert accuracy[robustness.CLEAN] == pytest.approx(before["accuracy"])
    assert np.mean([accuracy[name] for name in corruptions.CORRUPTIONS]) < accuracy[robustness.CLEAN]
    assert all(rows.shape == dataset.test_labels.shape for rows in result.correct.values())

    assert result.shift_accuracy[0] == pytest.approx(before["accuracy"])  # a shift of 0 is the clean test set
    assert result.shift_accuracy[-1] < result.shift_accuracy[0] - 0.2  # 8 pixels moves most of a digit away
    assert result.rotation_accuracy[0] == pytest.approx(before["accuracy"])
    assert result.rotation_accuracy[-1] < 0.5  # a digit on its side

    not_a_digit = scores["not_a_digit"]["fashion-mnist"]
    assert 0.5 < not_a_digit["auroc"] <= 1  # less sure of clothes than of digits
    assert not_a_digit["digits_kept"] > 0.9  # the threshold kept 95% of the validation digits
    assert set(result.reliability) == {"before", "after"}
    assert result.reliability["before"]["count"].sum() == len(dataset.test_labels)
