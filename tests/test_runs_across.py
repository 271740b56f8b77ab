"""Runs side by side: the run index (mnistlab runs), comparisons across runs (compare-runs), model cards."""

import json
import os
import shutil

import numpy as np
import pytest

from conftest import assert_one_line_error, register_tiny_dataset, run_cli, snapshot
from mnistlab.cli.main import main
from mnistlab.evaluation import stats
from mnistlab.runs.folder import read_metrics, read_run_arrays

TINY = ["--quiet", "--threads", "1", "compare", "--dataset", "tiny", "--epochs", "1"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Tiny runs under one folder: `both` (logreg and ann, seeds 0,1), `a` (logreg, 0,1), `b` (ann, 0,1),
    `c` (ann, seeds 2,3) and `stopped` (b's files without metrics.json and one finished job)."""
    root = tmp_path_factory.mktemp("across")
    with pytest.MonkeyPatch.context() as monkeypatch:
        _, data_dir, _, _ = register_tiny_dataset(root / "data", monkeypatch)
        folder = root / "runs"
        for name, models, seeds in (("both", "logreg,ann", "0,1"), ("a", "logreg", "0,1"), ("b", "ann", "0,1"),
                                    ("c", "ann", "2,3")):
            assert main(["--data-dir", str(data_dir), *TINY, "--models", models, "--seeds", seeds,
                         "--out", str(folder / name)]) == 0
        shutil.copytree(folder / "b", folder / "stopped")
        (folder / "stopped" / "metrics.json").unlink()
        (folder / "stopped" / "state" / "ann-seed1.json").unlink()
        yield folder


def test_runs_lists_every_run_with_its_accuracies_and_status(runs, capsys):
    code, out, err = run_cli(capsys, "runs", runs, "--json")
    assert code == 0, err
    records = {record["path"].rsplit("/", 1)[1]: record for record in json.loads(out)}
    assert set(records) == {"both", "a", "b", "c", "stopped"}
    both = read_metrics(runs / "both")
    assert records["both"]["status"] == "finished" and records["both"]["dataset"] == "tiny"
    assert records["both"]["seeds"] == [0, 1]
    for model in records["both"]["models"]:
        interval = both["models"][model["name"]]["accuracy"]
        assert (model["accuracy"], model["ci_low"], model["ci_high"]) == (
            both["models"][model["name"]]["test_accuracy"], interval["ci_low"], interval["ci_high"])
    assert records["stopped"]["status"] == "stopped: 1 of 2 jobs done (continue with --resume)"
    assert records["both"]["machine"] and records["both"]["created"] == both["created"]
    code, out, _ = run_cli(capsys, "runs", runs)
    assert code == 0 and "stopped: 1 of 2 jobs done" in out and "logreg" in out


def test_runs_tells_a_run_being_written_from_a_stopped_one(runs, tmp_path, capsys):
    from mnistlab.runs.claim import locked

    shutil.copytree(runs / "stopped", tmp_path / "run")
    with locked(tmp_path / "run"):  # as compare holds it while it writes
        [record] = json.loads(run_cli(capsys, "runs", tmp_path, "--json")[1])
        assert record["status"] == f"running (pid {os.getpid()}): 1 of 2 jobs done"
    (tmp_path / "run" / ".lock").write_text("999999999\n")  # left by a killed run: no such process
    [record] = json.loads(run_cli(capsys, "runs", tmp_path, "--json")[1])
    assert record["status"].startswith("stopped: 1 of 2 jobs done")


def test_runs_lists_a_damaged_run_with_the_reason_and_refuses_a_missing_folder(runs, tmp_path, capsys):
    shutil.copytree(runs / "a", tmp_path / "damaged")
    (tmp_path / "damaged" / "metrics.json").write_text("{not json")
    code, out, err = run_cli(capsys, "runs", tmp_path, "--json")
    assert code == 0, err
    [record] = json.loads(out)
    assert record["status"].startswith("unreadable:") and "not valid JSON" in record["status"]
    assert_one_line_error(*run_cli(capsys, "runs", tmp_path / "nowhere")[::2], "nowhere: no such folder")


def test_compare_runs_equals_the_within_run_comparison(runs, tmp_path, capsys):
    """logreg from run a against ann from run b: the numbers run `both` computed between its two models."""
    code, out, err = run_cli(capsys, "compare-runs", f"{runs / 'a'}:logreg", runs / "b", "--out", tmp_path / "x")
    assert code == 0, err
    result = json.loads((tmp_path / "x" / "comparison.json").read_text())
    [across], [within] = result["comparisons"], read_metrics(runs / "both")["comparisons"]
    assert across["models"] == ["a:logreg", "b:ann"] and within["models"] == ["logreg", "ann"]
    assert {key: value for key, value in across.items() if key != "models"} == {
        key: value for key, value in within.items() if key != "models"}
    assert [entry["test_accuracy"] for entry in result["entries"]] == pytest.approx(
        [read_metrics(runs / "both")["models"][name]["test_accuracy"] for name in ("logreg", "ann")], abs=1e-12)
    assert "a:logreg" in out and "McNemar p" in out
    report = (tmp_path / "x" / "report.md").read_text()
    assert "## Are the differences significant?" in report and "t10k-labels-idx1-ubyte" in report
    assert "data-metric=\"entries.0.test_accuracy\"" in (tmp_path / "x" / "report.html").read_text()


def test_compare_runs_pairs_different_seeds_in_order(runs, tmp_path, capsys):
    """One model, seeds 0,1 in run b against seeds 2,3 in run c: McNemar per seed pair, against the reference."""
    assert run_cli(capsys, "compare-runs", runs / "b", runs / "c", "--out", tmp_path / "x")[0] == 0
    [comparison] = json.loads((tmp_path / "x" / "comparison.json").read_text())["comparisons"]
    b, c = read_run_arrays(runs / "b"), read_run_arrays(runs / "c")
    assert [record["seed"] for record in comparison["per_seed"]] == ["0/2", "1/3"]
    counts = [stats.discordant_counts(b.correct("ann")[row], c.correct("ann")[row]) for row in range(2)]
    assert [(r["only_first_correct"], r["only_second_correct"]) for r in comparison["per_seed"]] == counts
    p_values = [stats.mcnemar_exact(*pair) for pair in counts]
    assert comparison["p_value"] == pytest.approx(min(1.0, 2 * np.mean(p_values)))
    assert comparison["difference"] == pytest.approx(b.correct("ann").mean() - c.correct("ann").mean())


def test_compare_runs_refuses_another_test_set_and_a_folder_it_did_not_create(runs, tmp_path, capsys):
    other = tmp_path / "other"
    shutil.copytree(runs / "c", other)
    metrics = json.loads((other / "metrics.json").read_text())
    metrics["dataset"]["checksums"]["t10k-images-idx3-ubyte"] = "0" * 64
    (other / "metrics.json").write_text(json.dumps(metrics))
    code, _, err = run_cli(capsys, "compare-runs", runs / "b", other, "--out", tmp_path / "x")
    assert_one_line_error(code, err, "different test sets", "t10k-images-idx3-ubyte")
    assert not (tmp_path / "x").exists()
    assert_one_line_error(*run_cli(capsys, "compare-runs", runs / "both", runs / "b", "--out", tmp_path / "x")[::2],
                          "holds 2 models (logreg, ann); name one")
    assert_one_line_error(*run_cli(capsys, "compare-runs", f"{runs / 'b'}:cnn", runs / "c", "--out", tmp_path / "x")[::2],
                          "no model 'cnn'")
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep")
    before = snapshot(mine)
    assert_one_line_error(*run_cli(capsys, "compare-runs", runs / "b", runs / "c", "--out", mine)[::2], "not empty")
    assert_one_line_error(*run_cli(capsys, "compare-runs", runs / "b", runs / "c", "--out", runs / "a", "--force")[::2],
                          "not empty")
    assert snapshot(mine) == before
    assert run_cli(capsys, "compare-runs", runs / "b", runs / "c", "--out", tmp_path / "x")[0] == 0
    assert_one_line_error(*run_cli(capsys, "compare-runs", runs / "b", runs / "c", "--out", tmp_path / "x")[::2],
                          "--force")
    assert run_cli(capsys, "compare-runs", runs / "b", runs / "c", "--out", tmp_path / "x", "--force")[0] == 0


def test_every_checkpoint_of_a_run_has_a_card_from_the_runs_measurements(runs, capsys):
    metrics = read_metrics(runs / "both")
    for name, result in metrics["models"].items():
        for record in result["seeds"]:
            card = (runs / "both" / f"{record['checkpoint']}.md").read_text()
            assert card.startswith(f"# Model card: {name} (seed {record['seed']})")
            assert f"Test accuracy of this checkpoint: {100 * record['test_accuracy']:.2f}%" in card
            interval = result["accuracy"]
            assert f"95% interval {100 * interval['ci_low']:.2f}–{100 * interval['ci_high']:.2f}%" in card
            assert f"T = {record['calibration']['temperature']:.3g}" in card
            for digest in metrics["dataset"]["checksums"].values():
                assert digest in card
            assert "## Known failure modes" in card and "Most-confused classes" in card
            assert f'mnistlab.load("{record["checkpoint"]}")' in card
            code, out, _ = run_cli(capsys, "card", runs / "both" / record["checkpoint"])
            assert code == 0 and out == card  # the command prints what compare wrote


def test_force_deletes_the_runs_cards_with_its_checkpoints(runs, tmp_path):
    from mnistlab.runs.claim import run_files

    names = {path.name for path in run_files(runs / "a", "compare")}
    assert {"logreg-seed0.pt.md", "logreg-seed1.pt.md"} <= names


def test_train_writes_a_card_and_refuses_to_replace_one(tiny_dataset, tmp_path, capsys):
    _, data_dir, _, _ = tiny_dataset
    path = tmp_path / "ann.pt"
    (tmp_path / "ann.pt.md").write_text("my notes")
    argv = ["--quiet", "--threads", "1", "--data-dir", data_dir, "train", "ann", "--dataset", "tiny", "--epochs", "1",
            "--out", path]
    assert_one_line_error(*run_cli(capsys, *argv)[::2], "ann.pt.md: exists already", "--force")
    assert not path.exists() and (tmp_path / "ann.pt.md").read_text() == "my notes"
    assert run_cli(capsys, *argv, "--force")[0] == 0
    card = (tmp_path / "ann.pt.md").read_text()
    assert "# Model card: ann (seed 0)" in card and "Not tested" in card and "not sure" in card


def test_runs_record_the_commit_of_the_source_they_ran_from(runs):
    import subprocess

    import mnistlab

    source = os.path.dirname(mnistlab.__file__)
    described = subprocess.run(["git", "-C", source, "describe", "--always", "--dirty", "--abbrev=12"],
                               capture_output=True, text=True)
    versions = read_metrics(runs / "a")["versions"]
    if described.returncode != 0:  # an installed copy, not a checkout: no commit to record
        assert "commit" not in versions
    else:
        assert versions["commit"].removesuffix("-dirty") == described.stdout.strip().removesuffix("-dirty")
