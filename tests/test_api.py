"""The public Python API (`import mnistlab as ml`): what notebooks use, on tiny data and on MNIST."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

import mnistlab as ml
from conftest import REPO_ROOT, register_tiny_dataset
from mnistlab.common.errors import ConfigError
from mnistlab.runs.folder import read_metrics


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """`ml.compare` of logreg and ann over two seeds on the tiny dataset, as a notebook would call it."""
    folder = tmp_path_factory.mktemp("api")
    with pytest.MonkeyPatch.context() as monkeypatch:
        _, data_dir, _, _ = register_tiny_dataset(folder / "data", monkeypatch)
        run = ml.compare(["logreg", "ann"], seeds=2, epochs=1, dataset="tiny", data_dir=data_dir, threads=1,
                         out=folder / "run")
        yield run, data_dir


def test_import_mnistlab_is_light_and_lists_its_api():
    code = "import sys, mnistlab; print(sorted(mnistlab.__all__)); print('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    names, torch_loaded = result.stdout.splitlines()
    assert torch_loaded == "False"
    for name in ("compare", "train", "load", "load_dataset", "list_models", "create_model", "preprocess", "runtime"):
        assert name in names
        assert getattr(ml, name).__doc__, f"{name} has no docstring"
    with pytest.raises(AttributeError):
        ml.no_such_thing  # noqa: B018


def test_list_and_create_models():
    assert ml.list_models()[:2] == ["ann", "cnn"]
    model = ml.create_model("cnn")
    assert isinstance(model, torch.nn.Module)
    assert model(torch.zeros(3, 1, 28, 28)).shape == (3, 10)


def test_compare_returns_a_run_with_metrics_table_report_and_checkpoints(tiny_run):
    run, _ = tiny_run
    assert run.metrics == read_metrics(run.folder)
    assert run.models == ["logreg", "ann"] and run.metrics["seeds"] == [0, 1]
    table = run.table()
    for name, result in run.metrics["models"].items():
        assert name in table and f"{100 * result['test_accuracy']:.2f}" in table
    assert run.report_path.is_file() and run.report_path.name == "report.html"
    assert [path.name for path in run.checkpoints["ann"]] == ["ann-seed0.pt", "ann-seed1.pt"]
    shown = run._repr_html_()
    assert "<table>" in shown and "logreg" in shown and run.significance()[0] in shown.replace("&#x27;", "'")


def test_compare_leaves_the_process_as_it_found_it(tiny_run, tmp_path, monkeypatch):
    _, data_dir = tiny_run
    register_tiny_dataset(tmp_path / "data", monkeypatch)
    before = (torch.get_num_threads(), torch.are_deterministic_algorithms_enabled())
    ml.compare(["logreg"], epochs=1, dataset="tiny", data_dir=tmp_path / "data", threads=1, out=tmp_path / "run")
    assert (torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()) == before


def test_a_reopened_run_reads_the_same(tiny_run):
    run, _ = tiny_run
    again = ml.Run(run.folder)
    assert again.metrics == run.metrics and again.table() == run.table()


def test_load_predicts_arrays_of_any_batch_and_dtype(tiny_run):
    run, data_dir = tiny_run
    classifier = ml.load(run.checkpoints["ann"][0])
    dataset = ml.load_dataset("tiny", data_dir)
    images = dataset.test_images[:7]
    probabilities = classifier.predict_proba(images)
    assert probabilities.shape == (7, len(classifier.classes))
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0)
    predicted = classifier.predict(images)
    assert list(predicted) == [classifier.classes[index] for index in probabilities.argmax(axis=1)]
    assert classifier.predict(images[0]) == predicted[0]  # one (28, 28) image gives one name
    np.testing.assert_array_equal(classifier.predict_proba(images / 255.0), probabilities)  # floats in [0, 1]
    # the classifier's numbers are the run's: the stored test accuracy recomputes
    scores = classifier.evaluate(dataset)
    assert scores["test_accuracy"] == pytest.approx(classifier.test_accuracy)


@pytest.mark.parametrize("bad, fragment", [
    (np.zeros((2, 27, 28), np.uint8), "shape (2, 27, 28)"),
    (np.full((28, 28), 2.0), "floats in [0, 1]"),
    (np.full((28, 28), 7, np.int64), "uint8"),
    (np.zeros((28, 28), np.complex64), "dtype complex64"),
])
def test_bad_arrays_get_one_line_errors(tiny_run, bad, fragment):
    run, _ = tiny_run
    with pytest.raises(ConfigError, match=None) as error:
        ml.load(run.checkpoints["ann"][0]).predict(bad)
    assert fragment in str(error.value) and "\n" not in str(error.value)


def draw_seven() -> Image.Image:
    paper = Image.new("L", (200, 240), 255)
    ImageDraw.Draw(paper).line([(50, 40), (150, 40), (90, 200)], fill=0, width=14)
    return paper


def test_paths_and_pil_images_go_through_the_photo_preprocessing(tiny_run, tmp_path):
    run, _ = tiny_run
    classifier = ml.load(run.checkpoints["ann"][0])
    paper = draw_seven()
    paper.save(tmp_path / "seven.png")
    seen = ml.preprocess(paper)
    assert seen.shape == (28, 28) and seen.dtype == np.uint8
    assert seen[0].max() == 0 and seen.max() > 200  # ink bright on black, a margin as in MNIST
    np.testing.assert_array_equal(ml.preprocess(tmp_path / "seven.png"), seen)
    expected = classifier.predict_proba(seen)
    np.testing.assert_array_equal(classifier.predict_proba(paper), expected)
    np.testing.assert_array_equal(classifier.predict_proba(str(tmp_path / "seven.png")), expected)
    # a batch of two runs other kernels than one image: the same up to float rounding
    np.testing.assert_allclose(classifier.predict_proba([tmp_path / "seven.png"] * 2), [expected, expected],
                               rtol=1e-6)


def test_train_returns_the_module_history_and_test_metrics(tmp_path, monkeypatch):
    _, data_dir, _, _ = register_tiny_dataset(tmp_path / "data", monkeypatch)
    first = ml.train("ann", "tiny", data_dir=data_dir, epochs=2, seed=3, threads=1)
    again = ml.train("ann", "tiny", data_dir=data_dir, epochs=2, seed=3, threads=1)
    assert len(first.history) == 2 and first.config["seed"] == 3
    assert 0 <= first.metrics["test_accuracy"] <= 1
    for one, other in zip(first.module.state_dict().values(), again.module.state_dict().values()):
        assert torch.equal(one, other)  # same settings, same numbers


def test_runtime_sets_threads_for_its_block_only():
    before = torch.get_num_threads()
    with ml.runtime(threads=1):
        assert torch.get_num_threads() == 1 and torch.are_deterministic_algorithms_enabled()
    assert torch.get_num_threads() == before


def test_runtime_auto_takes_the_idle_cores_and_refuses_other_words(monkeypatch):
    monkeypatch.setattr("mnistlab.api.auto_threads", lambda: 1)
    before = torch.get_num_threads()
    with ml.runtime(threads="auto"):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
    for wrong in ("two", 0, 1.5, True):
        with pytest.raises(ml.MnistlabError, match="threads="):
            ml.runtime(threads=wrong)


@pytest.mark.slow
def test_the_example_notebook_runs_on_a_real_kernel(real_data_dir, tmp_path, monkeypatch):
    """examples/compare.ipynb, executed cell by cell with nbclient: it compares, tabulates and predicts."""
    import nbformat
    from nbclient import NotebookClient

    monkeypatch.setenv("MNISTLAB_DATA_DIR", str(real_data_dir))
    notebook = nbformat.read(REPO_ROOT / "examples" / "compare.ipynb", as_version=4)
    NotebookClient(notebook, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    outputs = ["".join(output.get("text", "") or output.get("data", {}).get("text/plain", ""))
               for cell in notebook.cells if cell.cell_type == "code" for output in cell.outputs]
    text = "\n".join(outputs)
    assert "significantly" in text or "No significant difference" in text
    assert "read as: 7" in text
    metrics = read_metrics(Path(tmp_path) / "runs" / "notebook-compare")
    assert metrics["seeds"] == [0, 1]
    for name, result in metrics["models"].items():  # the printed table is the run's, and both models learned
        assert f"{100 * result['test_accuracy']:.2f}" in text and result["test_accuracy"] > 0.8, name
