"""compare keeps every seed's probabilities and scores calibration, seed ensembles and robustness; predict and
serve flag "not sure". Fast: the tiny synthetic dataset (random pixels, so the scores themselves mean nothing;
what is checked is that every stored number recomputes from the run folder)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from fastapi.testclient import TestClient

from conftest import register_tiny_dataset, run_cli
from mnistlab.evaluation import calibration
from mnistlab.training.checkpoint import load_checkpoint
from mnistlab.training.config import TrainConfig
from mnistlab.evaluation.corruptions import CORRUPTIONS
from mnistlab.models import images_to_tensor, infer
from mnistlab.evaluation.robustness import CLEAN, ROTATION_DEGREES, SHIFT_PIXELS
from mnistlab.runs.folder import read_metrics, read_run_arrays
from mnistlab.training.runtime import configured_runtime
from mnistlab.serve.app import create_app
from mnistlab.data.splits import split_indices
from serve_support import draw_seven, encode

MODELS = ["logreg", "ann"]


@pytest.fixture(scope="module")
def robustness_run(tmp_path_factory):
    """Two models, two seeds, one epoch on the tiny dataset, with --robustness (registered for the whole module)."""
    from mnistlab.cli.main import main

    folder = tmp_path_factory.mktemp("robustness")
    with pytest.MonkeyPatch.context() as monkeypatch:
        _, data_dir, _, _ = register_tiny_dataset(folder / "data", monkeypatch)
        out = folder / "run"
        assert main(["--quiet", "--threads", "1", "--data-dir", str(data_dir), "compare", "--dataset", "tiny",
                     "--models", ",".join(MODELS), "--seeds", "2", "--epochs", "1", "--robustness",
                     "--out", str(out)]) == 0
        yield out, data_dir


def test_calibration_and_ensembles_recompute_from_the_stored_probabilities(robustness_run):
    out, _ = robustness_run
    metrics, arrays = read_metrics(out), read_run_arrays(out)
    labels = arrays.labels.astype(np.int64)
    for name in MODELS:
        result = metrics["models"][name]
        assert arrays.log_probabilities[name].dtype == np.float16
        assert arrays.log_probabilities[name].shape == (2, len(labels), 10)
        probabilities = arrays.probabilities(name)
        np.testing.assert_allclose(probabilities.sum(axis=2), 1, atol=5e-3)  # float16 rounding of each log p
        for seed_probabilities, log_probabilities, record in zip(probabilities, arrays.log_probabilities[name],
                                                                 result["seeds"]):
            scores = record["calibration"]
            assert scores["before"] == calibration.calibration_scores(seed_probabilities, labels)  # exactly
            assert scores["after"] == calibration.calibration_scores(
                calibration.apply_temperature(log_probabilities.astype(np.float64), scores["temperature"]), labels)
            assert scores["after"]["accuracy"] == scores["before"]["accuracy"]
        for stage in ("before", "after"):
            for key in ("nll", "ece", "brier"):
                assert result["calibration"][stage][key] == pytest.approx(
                    np.mean([record["calibration"][stage][key] for record in result["seeds"]]))
        ensemble = probabilities.mean(axis=0)
        assert result["ensemble"]["seeds"] == 2
        assert result["ensemble"]["accuracy"] == (ensemble.argmax(axis=1) == labels).mean()
        assert result["ensemble"]["ece"] == calibration.expected_calibration_error(ensemble, labels)
        assert "not_a_digit" not in result  # only MNIST runs are scored on non-digits


def test_temperature_and_threshold_come_from_the_validation_split(robustness_run):
    out, data_dir = robustness_run
    from mnistlab.data.folders import open_dataset

    dataset = open_dataset("tiny", data_dir, progress=False)
    metrics = read_metrics(out)
    for record in metrics["models"]["ann"]["seeds"]:
        model, state = load_checkpoint(out / record["checkpoint"])
        config = TrainConfig(**state["config"])
        _, validation = split_indices(dataset.train_labels, config.validation_fraction, config.seed, config.limit_train)
        with configured_runtime(threads=metrics["machine"]["threads"]):  # the job's thread count fixes its logits
            logits = infer(model, images_to_tensor(dataset.train_images[validation])).numpy().astype(np.float64)
        labels = dataset.train_labels[validation].astype(np.int64)
        assert record["calibration"]["temperature"] == pytest.approx(calibration.fit_temperature(logits, labels))
        top = calibration.apply_temperature(logits, 1.0).max(axis=1)
        threshold = state["metrics"]["not_sure_threshold"]
        assert threshold in top and (top >= threshold).mean() >= 0.95


def test_robustness_tables_figures_and_report(robustness_run):
    out, _ = robustness_run
    metrics, arrays = read_metrics(out), read_run_arrays(out)
    robustness = metrics["robustness"]
    assert robustness["corruptions"] == [CLEAN, *CORRUPTIONS]
    for name in MODELS:
        table = robustness["models"][name]
        assert list(table) == [CLEAN, *CORRUPTIONS, "mean-corrupted"]
        assert table[CLEAN]["mean"] == pytest.approx(arrays.correct(name).mean())  # clean = the plain test run
        assert table["mean-corrupted"]["mean"] == pytest.approx(np.mean([table[c]["mean"] for c in CORRUPTIONS]))
        shift, rotation = robustness["shift_sweep"]["models"][name], robustness["rotation_sweep"]["models"][name]
        assert np.shape(shift["per_seed"]) == (2, len(SHIFT_PIXELS))
        assert np.shape(rotation["per_seed"]) == (2, len(ROTATION_DEGREES))
        assert shift["mean"][0] == pytest.approx(table[CLEAN]["mean"])  # no shift is the clean test set
        assert rotation["mean"][0] == pytest.approx(table[CLEAN]["mean"])
    assert [test["corruption"] for test in robustness["comparisons"]] == [CLEAN, *CORRUPTIONS]
    assert all(test["models"] == MODELS for test in robustness["comparisons"])
    files = {path.name for path in out.iterdir()}
    assert {"shift_sweep.png", "rotation_sweep.png", "reliability_logreg.png", "reliability_ann.png"} <= files
    report = (out / "report.md").read_text()
    for heading in ("## Are the probabilities honest?", "## Seed ensembles", "## Robustness"):
        assert heading in report
    assert "| glass-blur |" in report
    assert "accuracy against the shift of the test images, mean over seeds with a band](shift_sweep.png)" in report
    html = (out / "report.html").read_text()
    assert 'data-metric="models.ann.ensemble.accuracy"' in html


@pytest.mark.slow  # seconds of work: make test runs it, the fast suite leaves it out
def test_report_robustness_adds_the_same_numbers_to_a_plain_run(robustness_run, tmp_path, capsys):
    out, data_dir = robustness_run
    plain = tmp_path / "plain"
    argv = ["--quiet", "--threads", "1", "--data-dir", data_dir, "compare", "--dataset", "tiny", "--models",
            ",".join(MODELS), "--seeds", "2", "--epochs", "1", "--out", plain]
    assert run_cli(capsys, *argv)[0] == 0
    assert "robustness" not in read_metrics(plain)
    assert "robustness" not in json.loads((plain / "state" / "plan.json").read_text())
    code, _, err = run_cli(capsys, "--quiet", "--threads", "1", "--data-dir", data_dir, "report", plain, "--robustness")
    assert code == 0, err
    assert read_metrics(plain)["robustness"] == read_metrics(out)["robustness"]
    assert "## Robustness" in (plain / "report.md").read_text()


def test_predict_and_serve_flag_not_sure_below_the_checkpoints_threshold(tiny_dataset, tmp_path, capsys):
    _, data_dir, _, _ = tiny_dataset
    path = tmp_path / "ann.pt"
    assert run_cli(capsys, "--quiet", "--data-dir", data_dir, "train", "ann", "--dataset", "tiny", "--epochs", "1",
                   "--out", path)[0] == 0
    threshold = load_checkpoint(path)[1]["metrics"]["not_sure_threshold"]
    assert 0 < threshold <= 1
    image = tmp_path / "seven.png"
    image.write_bytes(encode(draw_seven()))
    code, out, err = run_cli(capsys, "predict", path, image, "--json", "--top-k", "1")
    assert code == 0, err
    [result] = json.loads(out)
    assert result["not_sure"] == (result["top"][0]["probability"] < threshold)

    client = TestClient(create_app([path], allowed_hosts=["testserver"]))
    response = client.post("/api/predict", files={"image": ("seven.png", encode(draw_seven()), "image/png")})
    [prediction] = response.json()["predictions"]
    assert prediction["not_sure"] == (prediction["top_probability"] < threshold)


def test_model_cards_carry_the_runs_robustness_and_hardest_corruptions(robustness_run):
    out, _ = robustness_run
    table = read_metrics(out)["robustness"]["models"]["ann"]
    card = (out / "ann-seed1.pt.md").read_text()
    hardest = min((entry["mean"], name) for name, entry in table.items() if name not in (CLEAN, "mean-corrupted"))[1]
    assert f"| {CLEAN} | {100 * table[CLEAN]['mean']:.2f} |" in card
    assert "Hardest corruptions: " + hardest in card
