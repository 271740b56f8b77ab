"""The figure helper (`reporting.drawing`): the same files as drawing alone, errors as they would be, and no process
or half-written file left behind."""

import subprocess
import sys

import pytest
from conftest import run_cli, snapshot

from mnistlab.cli.main import figures_beside
from mnistlab.reporting.drawing import draw, figure_helper, finish_drawing
from mnistlab.reporting.plots import plot_validation_accuracy
from mnistlab.reporting.report import write_report

HISTORIES = {"ann": [{"epoch": 1, "val_accuracy": 0.9}, {"epoch": 2, "val_accuracy": 0.95}]}


@pytest.fixture
def run_folder(tiny_dataset, tmp_path, capsys):
    """A two-model comparison of the tiny dataset, its report drawn without a helper."""
    _, data_dir, _, _ = tiny_dataset
    out = tmp_path / "run"
    argv = ["--quiet", "--data-dir", data_dir, "compare", "--models", "logreg,ann", "--dataset", "tiny",
            "--epochs", "1", "--batch-size", "32", "--out", out]
    assert run_cli(capsys, *argv)[0] == 0
    return out


def report_files(folder):
    return {name: data for name, data in snapshot(folder).items()
            if name.endswith(".png") or name in ("report.md", "report.html")}


def test_a_report_drawn_beside_the_helper_is_the_report_drawn_alone(run_folder):
    alone = report_files(run_folder)
    assert sum(name.endswith(".png") for name in alone) >= 10
    for name in alone:
        (run_folder / name).unlink()
    with figure_helper() as helper:
        write_report(run_folder)
        assert helper.process.is_alive()
    assert report_files(run_folder) == alone  # byte for byte, whichever process drew each figure
    assert not helper.process.is_alive()


def test_figures_are_drawn_here_once_the_helper_is_gone(tmp_path):
    with figure_helper() as helper:
        helper.process.kill()
        helper.process.join()
        paths = [tmp_path / f"{number}.png" for number in range(3)]
        for path in paths:
            draw(plot_validation_accuracy, HISTORIES, path)
        finish_drawing()
        assert all(path.stat().st_size > 0 for path in paths)
    plot_validation_accuracy(HISTORIES, tmp_path / "alone.png")
    assert {path.read_bytes() for path in paths} == {(tmp_path / "alone.png").read_bytes()}


def test_a_figure_the_helper_cannot_draw_fails_here_as_it_would_alone(tmp_path):
    (tmp_path / "a file").write_text("not a folder")
    missing = tmp_path / "a file" / "accuracy.png"
    with pytest.raises(OSError) as alone:
        plot_validation_accuracy(HISTORIES, missing)
    with figure_helper(), pytest.raises(OSError) as beside:
        draw(plot_validation_accuracy, HISTORIES, missing)
        finish_drawing()
    assert (type(beside.value), str(beside.value)) == (type(alone.value), str(alone.value))
    assert [path.name for path in tmp_path.iterdir()] == ["a file"]


def test_a_failing_block_stops_the_helper_after_the_figures_it_was_sent(tmp_path):
    with pytest.raises(KeyboardInterrupt), figure_helper() as helper:
        for number in range(2):
            draw(plot_validation_accuracy, HISTORIES, tmp_path / f"{number}.png")
        raise KeyboardInterrupt
    assert not helper.process.is_alive()
    assert sorted(path.name for path in tmp_path.iterdir()) == ["0.png", "1.png"]  # whole, no temporary files
    plot_validation_accuracy(HISTORIES, tmp_path / "alone.png")
    assert (tmp_path / "0.png").read_bytes() == (tmp_path / "alone.png").read_bytes()


def test_a_figure_that_cannot_be_sent_is_drawn_here(tmp_path):
    def plot(path):  # a local function: it cannot be pickled for the helper
        plot_validation_accuracy(HISTORIES, path)

    with figure_helper() as helper:
        draw(plot, tmp_path / "here.png")
        finish_drawing()
        assert helper.process.is_alive()
    assert (tmp_path / "here.png").stat().st_size > 0


def test_without_a_helper_process_every_figure_is_drawn_here(tmp_path, monkeypatch):
    def no_process():
        raise OSError(11, "Resource temporarily unavailable")

    monkeypatch.setattr("mnistlab.reporting.drawing.FigureHelper", no_process)
    with figure_helper() as helper:
        assert helper is None
        draw(plot_validation_accuracy, HISTORIES, tmp_path / "here.png")
    assert (tmp_path / "here.png").is_file()


HELPER_SCRIPT = """
import os, signal, sys
from mnistlab.reporting.drawing import draw, figure_helper
from mnistlab.reporting.plots import plot_validation_accuracy

if __name__ == "__main__":
    with figure_helper() as helper:
        if sys.argv[1] == "interrupt":  # Ctrl-C while the helper's interpreter starts
            os.kill(helper.process.pid, signal.SIGINT)
        draw(plot_validation_accuracy, {"ann": [{"epoch": 1, "val_accuracy": 0.9}]}, sys.argv[2])
        if sys.argv[1] == "killed":  # the command dies while the helper draws
            os._exit(0)
"""


@pytest.mark.parametrize("event", ["interrupt", "killed"])
def test_the_helper_prints_nothing_when_interrupted_or_left_behind(tmp_path, event):
    """Ctrl-C reaching the helper as it starts, or the command killed while the helper draws: no traceback on the
    terminal (the helper's stderr is the command's), and the figure is whole or absent, never half-written."""
    script = tmp_path / "helper_script.py"
    script.write_text(HELPER_SCRIPT)
    figure = tmp_path / "figure.png"
    result = subprocess.run([sys.executable, str(script), event, str(figure)], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0 and result.stderr == "", result.stderr
    assert not list(tmp_path.glob(".*.part"))
    if event == "interrupt":
        assert figure.stat().st_size > 0


def test_the_helper_imports_no_pytorch():
    """Every module whose plots a helper draws loads without PyTorch: otherwise the helper would spend seconds
    importing it while the command trains."""
    modules = ["plots", "robustness_plots", "cost", "attribution_plots", "drawing"]
    code = ("import sys\n" + "".join(f"import mnistlab.reporting.{name}\n" for name in modules) +
            "print(sorted(name for name in sys.modules if name.split('.')[0] == 'torch'))")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout == "[]\n"


@pytest.mark.parametrize("command, own_process, cores, helped", [
    ("compare", True, 2, True), ("report", True, 2, True),
    ("compare", False, 2, False),  # main() called from Python starts no process
    ("compare", True, 1, False),  # one core: nothing to draw beside
    ("train", True, 2, False),  # no report
])
def test_the_console_script_draws_beside_a_helper_where_it_can(monkeypatch, command, own_process, cores, helped):
    monkeypatch.setattr("mnistlab.cli.main.available_cores", lambda: cores)
    with figures_beside(type("Args", (), {"command": command})(), own_process) as helper:
        assert (helper is not None) == helped
