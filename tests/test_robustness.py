"""Robustness scoring with test doubles whose answers are known, the table's statistics by hand, and the figures."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from mnistlab.evaluation import corruptions
from mnistlab.evaluation import robustness
from mnistlab.evaluation.calibration import reliability_bins
from mnistlab.models import build_model, images_to_tensor, infer
from mnistlab.reporting.robustness_plots import plot_reliability_diagram, plot_sweep

from synthetic_digits import blobs

IMAGES = blobs(count=30)
LABELS = np.arange(30) % 10


def memorising_logits_fn(images_seen: np.ndarray, labels: np.ndarray):
    """Right on exactly the images it has seen, pixel for pixel; wrong (label + 1) on anything else."""
    known = {image.tobytes(): label for image, label in zip(images_seen, labels)}

    def logits_fn(images):
        predicted = [known.get(image.tobytes(), -1) for image in images]
        return np.eye(10)[[label if label >= 0 else (labels[index] + 1) % 10
                           for index, label in enumerate(predicted)]]
    return logits_fn


def dot_column_logits_fn(images):
    """Predicts (column of the brightest pixel - 9) mod 10: a classifier that reads position only."""
    columns = images.reshape(len(images), -1).argmax(axis=1) % 28
    return np.eye(10)[(columns - 9) % 10]


def test_each_corruption_is_scored_on_the_same_corrupted_images():
    correct = robustness.corruption_correctness(memorising_logits_fn(IMAGES, LABELS), IMAGES, LABELS, seed=4)
    assert list(correct) == [robustness.CLEAN, *corruptions.CORRUPTIONS]
    assert correct[robustness.CLEAN].all()
    for name in corruptions.CORRUPTIONS:  # right exactly where the corruption (same seed) left the image as it was
        unchanged = (corruptions.corrupt(IMAGES, name, seed=4) == IMAGES).all(axis=(1, 2))
        np.testing.assert_array_equal(correct[name], unchanged)


def test_sweeps_of_a_model_that_memorised_the_clean_images():
    logits_fn = memorising_logits_fn(IMAGES, LABELS)
    shifts = robustness.shift_sweep(logits_fn, IMAGES, LABELS)
    np.testing.assert_array_equal(shifts, [1.0] + [0.0] * 8)
    rotations = robustness.rotation_sweep(logits_fn, IMAGES, LABELS, degrees=[0, 10, 90])
    np.testing.assert_array_equal(rotations, [1.0, 0.0, 0.0])


def test_shift_sweep_averages_over_directions():
    dots = np.zeros((10, 28, 28), dtype=np.uint8)
    dots[np.arange(10), 14, np.arange(10) + 9] = 255  # label = column - 9
    # right and left moves change the column (wrong), up and down do not (right): half right at every shift
    accuracy = robustness.shift_sweep(dot_column_logits_fn, dots, np.arange(10), pixels=[0, 1, 5])
    np.testing.assert_allclose(accuracy, [1.0, 0.5, 0.5])


def test_models_sharing_variants_score_the_same_and_each_variant_is_made_once(monkeypatch):
    """The jobs of one process share the corrupted and rotated images: the scores are those of fresh copies, and
    each corruption and rotation is computed once however many models are scored."""
    from mnistlab.evaluation import assessment, geometry

    first, second = memorising_logits_fn(IMAGES, LABELS), dot_column_logits_fn
    fresh = [assessment.robustness_record(logits_fn, IMAGES, LABELS) for logits_fn in (first, second)]
    made = []

    def counted(function, key):
        def making(images, argument):
            made.append(key(argument))
            return function(images, argument)
        return making

    monkeypatch.setattr(corruptions, "CORRUPTIONS", {name: counted(function, lambda seed, name=name: name)
                                                     for name, function in corruptions.CORRUPTIONS.items()})
    monkeypatch.setattr(geometry, "rotate", counted(geometry.rotate, lambda degrees: degrees))
    variants = assessment.variants_for(IMAGES)
    shared = [assessment.robustness_record(logits_fn, IMAGES, LABELS, variants) for logits_fn in (first, second)]
    for (fresh_record, fresh_rows), (shared_record, shared_rows) in zip(fresh, shared):
        assert shared_record == fresh_record
        np.testing.assert_array_equal(shared_rows, fresh_rows)
    assert sorted(made, key=str) == sorted([*corruptions.CORRUPTIONS, *robustness.ROTATION_DEGREES], key=str)
    with pytest.raises(ValueError):  # the kept copies are shared: nobody may draw on them
        variants.corrupted("fog")[0, 0, 0] = 1


def test_variants_of_other_images_or_another_seed_are_refused():
    variants = robustness.ImageVariants(IMAGES, seed=4)
    with pytest.raises(ValueError, match="other images or with another seed"):
        robustness.corruption_correctness(dot_column_logits_fn, IMAGES.copy(), LABELS, seed=4, variants=variants)
    with pytest.raises(ValueError, match="other images or with another seed"):
        robustness.corruption_correctness(dot_column_logits_fn, IMAGES, LABELS, seed=5, variants=variants)


def test_model_logits_fn_is_infer_on_the_images():
    model = build_model("ann").eval()
    logits = robustness.model_logits_fn(model)(IMAGES)
    np.testing.assert_allclose(logits, infer(model, images_to_tensor(IMAGES)).numpy())


def test_bad_logits_are_named():
    with pytest.raises(ValueError, match=r"logits_fn returned shape \(29, 10\) for 30 images"):
        robustness.score_images(lambda images: np.zeros((29, 10)), IMAGES, LABELS)


def test_summary_per_corruption_over_seeds():
    correct = {  # two seeds, four images
        robustness.CLEAN: np.array([[1, 1, 0, 1], [1, 1, 1, 1]], dtype=bool),  # 0.75, 1.0
        "fog": np.array([[0, 1, 0, 0], [1, 0, 0, 0]], dtype=bool),  # 0.25, 0.25
        "stripe": np.array([[1, 1, 0, 0], [0, 0, 0, 0]], dtype=bool),  # 0.5, 0.0
    }
    summary = robustness.summarise_corruptions(correct)
    assert summary[robustness.CLEAN]["mean"] == pytest.approx(0.875)
    assert summary["fog"]["mean"] == 0.25 and summary["fog"]["std"] == 0.0
    # per seed, the mean over corruptions: (0.25 + 0.5) / 2 = 0.375 and (0.25 + 0) / 2 = 0.125
    assert summary["mean-corrupted"]["mean"] == pytest.approx(0.25)
    assert summary["mean-corrupted"]["std"] == pytest.approx(np.std([0.375, 0.125], ddof=1))


def test_table_mcnemar_pooled_over_seeds_and_holm_adjusted():
    first = np.ones(10, dtype=bool)
    second = np.array([False] * 8 + [True] * 2)
    correct = {
        "a": {robustness.CLEAN: np.stack([first, first]), "fog": np.stack([first, second])},
        "b": {robustness.CLEAN: np.stack([second, second]), "fog": np.stack([first, first])},
    }
    tests = robustness.compare_corruptions(["a", "b"], [0, 1], correct)
    clean, fog = tests
    assert clean["corruption"] == robustness.CLEAN and clean["models"] == ["a", "b"]
    # clean: 8 images only "a" got right in each seed: p = 2 * 0.5^8 = 0.0078125 per seed, pooled 2 * mean
    assert [record["p_value"] for record in clean["per_seed"]] == [0.0078125, 0.0078125]
    assert clean["p_value"] == pytest.approx(0.015625)
    assert (clean["only_first_correct"], clean["only_second_correct"]) == (16, 0)
    assert clean["difference"] == pytest.approx(0.8)
    # fog: seed 0 has no discordant pair (p = 1), seed 1 has 8 only "b" got right; pooled min(1, 2 * mean) = 1
    assert [record["p_value"] for record in fog["per_seed"]] == [1.0, 0.0078125]
    assert fog["p_value"] == 1.0 and fog["difference"] == pytest.approx((1.0 + 0.2) / 2 - 1.0)
    # Holm over the two tests: 2 * 0.015625 and max(that, 1 * 1)
    assert clean["p_value_holm"] == pytest.approx(0.03125) and clean["significant"]
    assert fog["p_value_holm"] == 1.0 and not fog["significant"]


def test_sweep_band_is_mean_and_std_over_seeds():
    mean, spread = robustness.sweep_band([[1.0, 0.5], [0.8, 0.7]])
    np.testing.assert_allclose(mean, [0.9, 0.6])
    np.testing.assert_allclose(spread, [np.std([1.0, 0.8], ddof=1), np.std([0.5, 0.7], ddof=1)])
    np.testing.assert_array_equal(robustness.sweep_band([0.9, 0.4])[1], [0.0, 0.0])


def test_figures_are_written_with_one_panel_per_table(tmp_path):
    plot_sweep(range(9), {"ann": robustness.sweep_band(np.linspace(1, 0.2, 9)),
                          "cnn": robustness.sweep_band([np.linspace(1, 0.5, 9), np.linspace(1, 0.6, 9)])},
               "shift (pixels)", "Accuracy against shift", tmp_path / "shift.png")
    probabilities = np.array([[0.9, 0.1], [0.3, 0.7], [0.55, 0.45]])
    table = {**reliability_bins(probabilities, np.array([0, 0, 1])), "ece": 0.3}
    plot_reliability_diagram({"before": table}, "one", tmp_path / "one.png")
    plot_reliability_diagram({"before": table, "after": table}, "two", tmp_path / "two.png")
    sizes = {}
    for name in ("shift", "one", "two"):
        with Image.open(tmp_path / f"{name}.png") as image:
            assert image.format == "PNG"
            sizes[name] = image.size
    assert sizes["two"][0] > 1.7 * sizes["one"][0]
    assert sorted(path.name for path in tmp_path.iterdir()) == ["one.png", "shift.png", "two.png"]  # no leftovers
