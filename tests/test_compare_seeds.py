"""Multi-seed comparisons on real data: the numbers agree with the saved predictions, reports rebuild, HTML loads."""

import re

import numpy as np
import pytest

from conftest import ARTIFACTS
from mnistlab.evaluation import stats
from mnistlab.cli.flags import parse_seeds
from mnistlab.cli.main import main
from mnistlab.common.errors import ConfigError
from mnistlab.reporting.explain_report import explain_sections
from mnistlab.reporting.report import report_sections
from mnistlab.reporting.document import FigureRef
from mnistlab.runs.folder import read_metrics, read_run_arrays

QUICK = ["--epochs", "1", "--limit-train", "2000", "--threads", "1"]  # one thread: the CI machine is shared
MODELS = ["ann", "logreg", "lenet5"]


@pytest.fixture(scope="module")
def multi_seed_run(real_data_dir, tmp_path_factory):
    """Three models, two seeds, a quick protocol (about 30 s)."""
    out = tmp_path_factory.mktemp("multi-seed") / "run"
    argv = ["--quiet", "--data-dir", str(real_data_dir), "compare", "--models", ",".join(MODELS), "--seeds", "3,5",
            "--out", str(out), *QUICK]
    assert main(argv) == 0
    return out


def test_metrics_agree_with_the_saved_predictions(multi_seed_run):
    metrics = read_metrics(multi_seed_run)
    arrays = read_run_arrays(multi_seed_run)
    assert metrics["seeds"] == [3, 5] and list(metrics["models"]) == MODELS
    for name, result in metrics["models"].items():
        accuracies = [(row == arrays.labels).mean() for row in arrays.predicted[name]]
        assert [record["test_accuracy"] for record in result["seeds"]] == pytest.approx(accuracies, abs=1e-12)
        assert result["test_accuracy"] == pytest.approx(np.mean(accuracies))
        assert result["accuracy"]["std"] == pytest.approx(np.std(accuracies, ddof=1))
        assert result["accuracy"]["ci_low"] < result["test_accuracy"] < result["accuracy"]["ci_high"]
        assert sum(map(sum, result["confusion_matrix"])) == 2 * 10_000  # both seeds pooled
        assert [record["checkpoint"] for record in result["seeds"]] == [f"{name}-seed3.pt", f"{name}-seed5.pt"]
        assert {"test_loss", "params", "train_seconds", "history"} <= set(result)
        assert result["confused_pairs"][0]["count"] >= result["confused_pairs"][-1]["count"]
    assert [comparison["models"] for comparison in metrics["comparisons"]] == [
        ["ann", "logreg"], ["ann", "lenet5"], ["logreg", "lenet5"]]
    for comparison in metrics["comparisons"]:
        first, second = (arrays.correct(name) for name in comparison["models"])
        counts = [stats.discordant_counts(first[row], second[row]) for row in range(2)]
        assert [(r["only_first_correct"], r["only_second_correct"]) for r in comparison["per_seed"]] == counts
        p_values = [stats.mcnemar_exact(*pair) for pair in counts]
        assert comparison["p_value"] == pytest.approx(min(1, 2 * np.mean(p_values)))
        assert comparison["difference"] == pytest.approx(first.mean() - second.mean())
        assert comparison["ci_low"] <= comparison["difference"] <= comparison["ci_high"]
        assert comparison["significant"] == (comparison["p_value_holm"] < 0.05)


def test_run_folder_holds_the_error_analysis(multi_seed_run):
    files = {path.name for path in multi_seed_run.iterdir()}
    for name in MODELS:
        assert {f"cm_{name}.png", f"cm_{name}_normalised.png", f"curves_{name}.png", f"errors_{name}.png",
                f"{name}-seed3.pt", f"{name}-seed5.pt"} <= files
    assert {"disagreements.png", "predictions.npz", "report.md", "report.html", "metrics.json"} <= files
    report = (multi_seed_run / "report.md").read_text()
    assert "Most-confused class pairs" in report and "significantly more accurate" in report
    assert "twice the mean of the per-seed McNemar p-values" in report


def test_report_states_each_models_own_recipe(multi_seed_run):
    """A model with a recipe trains differently from the seed protocol, and the summary must say so."""
    from mnistlab.reporting.report import training_summary

    metrics = read_metrics(multi_seed_run)
    assert training_summary(metrics) == "Training: 1 epoch of Adam, learning rate 0.001, batch size 128."
    metrics["models"]["logreg"]["config"].update(epochs=15, schedule="onecycle", learning_rate=0.003,
                                                 augment="shift-rotate")
    assert training_summary(metrics) == (
        "Training: ann, 1 epoch of Adam, learning rate 0.001, batch size 128; "
        "logreg, 15 epochs of Adam, one-cycle schedule peaking at learning rate 0.003, batch size 128, "
        "shift-rotate augmentation; lenet5, 1 epoch of Adam, learning rate 0.001, batch size 128.")


def test_report_command_rebuilds_both_reports_identically(multi_seed_run, capsys):
    originals = {name: (multi_seed_run / name).read_bytes() for name in ("report.md", "report.html")}
    for name in ("report.md", "report.html", "errors_ann.png", "disagreements.png"):
        (multi_seed_run / name).unlink()
    assert main(["report", str(multi_seed_run)]) == 0
    for name, content in originals.items():
        assert (multi_seed_run / name).read_bytes() == content, name


def check_html_report(run_dir, chromium, screenshot):
    """Open report.html offline: every figure loads, and the headline numbers equal metrics.json's."""
    metrics = read_metrics(run_dir)
    sections = report_sections(metrics) + explain_sections(run_dir, metrics, read_run_arrays(run_dir))
    figures = [block for section in sections for block in section.blocks if isinstance(block, FigureRef)]
    page = chromium.new_page()
    requests = []
    page.on("request", lambda request: requests.append(request.url))
    page.goto((run_dir / "report.html").resolve().as_uri())
    page.wait_for_load_state("load")
    images = page.evaluate("Array.from(document.images).map(img => [img.alt, img.complete, img.naturalWidth])")
    assert len(images) == len(figures) >= 4 * len(metrics["models"]) + 2
    assert all(complete and width > 0 for _, complete, width in images), images
    assert [url for url in requests if not url.startswith(("file:", "data:"))] == []
    shown = dict(page.evaluate("Array.from(document.querySelectorAll('[data-metric]')).map(e => [e.dataset.metric, e.textContent])"))
    expected = {f"models.{name}.test_accuracy": f"{100 * result['test_accuracy']:.2f}"
                for name, result in metrics["models"].items()}
    expected |= {f"comparisons.{index}.difference": f"{100 * comparison['difference']:.2f}"
                 for index, comparison in enumerate(metrics["comparisons"])}
    assert set(expected) <= set(shown)
    for path, text in shown.items():  # every marked number, headline or not, is metrics.json's
        value = metrics
        for part in path.split("."):
            value = value[int(part)] if isinstance(value, list) else value[part]
        assert text == f"{100 * value:.2f}", path
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / screenshot), full_page=False)
    page.close()


def test_html_report_loads_offline_with_every_figure_and_the_headline_numbers(multi_seed_run, chromium):
    check_html_report(multi_seed_run, chromium, "report-html.png")


@pytest.mark.slow
def test_seed_protocol_html_report(seed_protocol_run, chromium):
    check_html_report(seed_protocol_run, chromium, "report-html-seed-protocol.png")
    assert "cnn is significantly more accurate than ann" in (seed_protocol_run / "report.md").read_text()


def test_fashion_mnist_end_to_end(real_data_dir, tmp_path, capsys):
    out = tmp_path / "run"
    code = main(["--quiet", "--data-dir", str(real_data_dir), "compare", "--dataset", "fashion-mnist",
                 "--models", "logreg", "--out", str(out), *QUICK])
    assert code == 0
    metrics = read_metrics(out)
    assert metrics["dataset"]["name"] == "fashion-mnist"
    assert metrics["dataset"]["checksums"]["t10k-labels-idx1-ubyte"].startswith("0402a96d")
    assert [row["class"] for row in metrics["models"]["logreg"]["per_class"]][-1] == "Ankle boot"
    assert 0.5 < metrics["models"]["logreg"]["test_accuracy"] < 0.95
    assert "| Ankle boot |" in (out / "report.md").read_text()


@pytest.mark.parametrize(("text", "first", "given", "expected"), [
    (None, 0, False, None), ("5", 0, False, [0, 1, 2, 3, 4]), ("3", 7, True, [7, 8, 9]),
    ("0,1,2", 0, False, [0, 1, 2]), ("4,", 0, False, [4]),
])
def test_parse_seeds(text, first, given, expected):
    assert parse_seeds(text, first, given) == expected


@pytest.mark.parametrize(("text", "given", "message"), [
    ("0", False, "a count from 1 to 1000"), ("a,b", False, "is invalid"), ("1,2", True, "must not be given too"),
])
def test_bad_seeds_are_config_errors(text, given, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        parse_seeds(text, 0, given)


def test_duplicate_seeds_are_a_one_line_error(capsys):
    assert main(["compare", "--seeds", "1,1"]) == 2
    assert "seeds [1, 1] are invalid" in capsys.readouterr().err
