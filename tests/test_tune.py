"""`mnistlab tune`: a seeded, prunable, resumable Optuna study on the validation split, and `compare --config MODEL=FILE`.

The studies here run on a small learnable synthetic dataset (ten ink templates,
shifted and noisy), where a good learning rate reaches high validation accuracy
within a few epochs and a bad one stays near chance, so the pruner has work to do.
`tune --ray` runs on a real one-node Ray cluster on 127.0.0.1, started by this module.
"""

from __future__ import annotations

import contextlib
import csv
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import assert_one_line_error, run_cli
from synthetic_digits import blobs

from mnistlab.training.config import read_settings
from mnistlab.data.datasets import Dataset
from mnistlab.data.registry import FILE_NAMES
from mnistlab.data.idx import encode_idx

SRC = Path(__file__).resolve().parents[1] / "src"
QUICK = ["--trials", "8", "--epochs", "3", "--seed", "3"]


def learnable_arrays(train: int = 600, test: int = 100, seed: int = 0) -> dict[str, np.ndarray]:
    """Ten ink templates, one per class; each image is its class's template shifted by up to 2 px, plus noise."""
    rng = np.random.default_rng(seed)
    templates = blobs(10, seed=seed).astype(np.int16)

    def images(labels):
        shifted = [np.roll(templates[label], tuple(rng.integers(-2, 3, size=2)), axis=(0, 1)) for label in labels]
        noisy = np.stack(shifted) + rng.integers(-60, 61, size=(len(labels), 28, 28))
        return np.clip(noisy, 0, 255).astype(np.uint8)

    train_labels, test_labels = (np.arange(count) % 10 for count in (train, test))
    return {"train_images": images(train_labels), "train_labels": train_labels.astype(np.uint8),
            "test_images": images(test_labels), "test_labels": test_labels.astype(np.uint8)}


@pytest.fixture(scope="module")
def learnable_folder(tmp_path_factory) -> Path:
    """An IDX folder (`--dataset FOLDER`) holding the learnable dataset."""
    folder = tmp_path_factory.mktemp("learnable")
    for role, array in learnable_arrays().items():
        (folder / FILE_NAMES[role]).write_bytes(encode_idx(array))
    return folder


def tune(capsys, folder, out, *extra):
    return run_cli(capsys, "--quiet", "--threads", "1", "tune", "ann", "--dataset", str(folder), "--out", str(out),
                   *QUICK, *extra)


def read_trials(run_dir: Path) -> list[dict]:
    with open(run_dir / "trials.csv", newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def without_timing(rows: list[dict], *also: str) -> list[dict]:
    """Trials as rows without their durations (and the columns in `also`): what a rerun must repeat exactly."""
    return [{key: value for key, value in row.items() if key not in ("seconds", *also)} for row in rows]


@pytest.fixture(scope="module")
def tuned(learnable_folder, tmp_path_factory):
    """One study of 8 trials x 3 epochs (seed 3), shared by the tests that only read it."""
    from mnistlab.cli.main import main

    out = tmp_path_factory.mktemp("tuned") / "run"
    assert main(["--quiet", "--threads", "1", "tune", "ann", "--dataset", str(learnable_folder), "--out", str(out),
                 *QUICK]) == 0
    return out


def test_study_writes_its_outputs_and_prunes(tuned):
    for name in ("best.toml", "trials.csv", "tune.md", "optimization_history.png", "param_importances.png", "tune.db"):
        assert (tuned / name).is_file(), name
    trials = read_trials(tuned)
    assert [int(row["trial"]) for row in trials] == list(range(8))
    states = [row["state"] for row in trials]
    assert set(states) <= {"complete", "pruned"} and "pruned" in states and states.count("complete") >= 3
    for row in trials:  # a pruned trial stopped before its last epoch; a complete one ran them all
        assert int(row["epochs_run"]) == 3 if row["state"] == "complete" else 1 <= int(row["epochs_run"]) < 3
    assert {"learning_rate", "batch_size", "weight_decay"} <= set(trials[0])
    best = max((row for row in trials if row["state"] == "complete"), key=lambda row: float(row["val_accuracy"]))
    settings = read_settings(tuned / "best.toml")
    assert settings["learning_rate"] == pytest.approx(float(best["learning_rate"]))
    assert settings["batch_size"] == int(best["batch_size"]) and settings["optimizer"] == "adamw"
    assert settings["epochs"] == 3 and "seed" not in settings
    assert float(best["val_accuracy"]) > 0.5  # the data are learnable and the search found a rate that learns them
    summary = (tuned / "tune.md").read_text()
    assert "test split was not read" in summary and f"validation accuracy {100 * float(best['val_accuracy']):.2f}%" in summary


def test_same_seed_same_trials(tuned, learnable_folder, tmp_path, capsys):
    code, out, err = tune(capsys, learnable_folder, tmp_path / "again")
    assert code == 0, err
    assert without_timing(read_trials(tmp_path / "again")) == without_timing(read_trials(tuned))
    assert "best trial" in out and "validation accuracy" in out


def test_another_seed_draws_other_settings(tuned, learnable_folder, tmp_path, capsys):
    code, _, err = run_cli(capsys, "--quiet", "--threads", "1", "tune", "ann", "--dataset", str(learnable_folder),
                           "--out", str(tmp_path / "other"), "--trials", "3", "--epochs", "1", "--seed", "4")
    assert code == 0, err
    assert [row["learning_rate"] for row in read_trials(tmp_path / "other")] != \
        [row["learning_rate"] for row in read_trials(tuned)][:3]


def test_compare_uses_each_models_config(tuned, learnable_folder, tmp_path, capsys):
    shared = tmp_path / "shared.toml"
    shared.write_text("[train]\nlearning_rate = 0.002\nbatch_size = 32\n")
    out = tmp_path / "compare"
    code, _, err = run_cli(capsys, "--quiet", "--threads", "1", "compare", "--models", "ann,logreg", "--dataset",
                           str(learnable_folder), "--config", str(shared), "--config", f"ann={tuned / 'best.toml'}",
                           "--epochs", "2", "--out", str(out))
    assert code == 0, err
    import json

    configs = {name: model["config"] for name, model in json.loads((out / "metrics.json").read_text())["models"].items()}
    best = read_settings(tuned / "best.toml")
    assert configs["ann"]["learning_rate"] == best["learning_rate"] and configs["ann"]["optimizer"] == "adamw"
    assert configs["ann"]["batch_size"] == best["batch_size"] and configs["ann"]["weight_decay"] == best["weight_decay"]
    assert configs["logreg"]["learning_rate"] == 0.002 and configs["logreg"]["batch_size"] == 32  # the shared file
    assert configs["ann"]["epochs"] == configs["logreg"]["epochs"] == 2  # flags win over every file


@pytest.mark.parametrize("configs, message", [
    (["cnn=a.toml"], "cnn is not a model of this command"),
    (["ann=a.toml", "ann=b.toml"], "given twice"),
    (["a.toml", "b.toml"], "a file for every model is given already"),
])
def test_bad_config_arguments_are_one_line_errors(configs, message, capsys):
    arguments = [part for config in configs for part in ("--config", config)]
    code, _, err = run_cli(capsys, "compare", "--models", "ann,logreg", *arguments, "--out", "never")
    assert_one_line_error(code, err, message)
    assert not Path("never").exists()


class Untouchable:
    """Stands in for the test split: any use of it fails the test."""

    def __getattr__(self, name):
        raise AssertionError(f"the test split was read ({name})")

    def __len__(self):
        raise AssertionError("the test split was read (len)")

    def __getitem__(self, key):
        raise AssertionError("the test split was read (indexing)")

    def __array__(self, *args, **kwargs):
        raise AssertionError("the test split was read (as an array)")


def test_trials_never_read_the_test_split(monkeypatch, tmp_path):
    from mnistlab.tune import search as tune_module

    arrays = learnable_arrays()
    poisoned = Dataset("learnable", tuple("0123456789"), arrays["train_images"], arrays["train_labels"],
                       Untouchable(), Untouchable(), checksums={"train": "x"})
    monkeypatch.setattr(tune_module, "open_dataset", lambda *args, **kwargs: poisoned)
    summary = tune_module.run_tune("ann", {"epochs": 2, "dataset": "learnable-folder"}, tmp_path / "run", trials=4,
                                   progress=False, threads=1)
    assert sum(summary["trials"].values()) == 4 and summary["best_val_accuracy"] > 0.5


def test_space_file_narrows_and_fixes(learnable_folder, tmp_path, capsys):
    space = tmp_path / "space.toml"
    space.write_text('[space]\nlearning_rate = { low = 0.002, high = 0.004, log = true }\n'
                     'label_smoothing = { choices = [0.0, 0.1] }\nbatch_size = 128\nweight_decay = 0.0\n')
    out = tmp_path / "run"
    code, _, err = run_cli(capsys, "--quiet", "--threads", "1", "tune", "ann", "--dataset", str(learnable_folder),
                           "--out", str(out), "--trials", "4", "--epochs", "1", "--space", str(space))
    assert code == 0, err
    trials = read_trials(out)
    assert all(0.002 <= float(row["learning_rate"]) <= 0.004 for row in trials)
    assert {row["label_smoothing"] for row in trials} <= {"0.0", "0.1"} and "batch_size" not in trials[0]
    settings = read_settings(out / "best.toml")
    assert settings["batch_size"] == 128 and settings["weight_decay"] == 0.0 and "label_smoothing" in settings


def test_flags_fix_what_they_name(learnable_folder, tmp_path, capsys):
    out = tmp_path / "run"
    code, _, err = run_cli(capsys, "--quiet", "--threads", "1", "tune", "ann", "--dataset", str(learnable_folder),
                           "--out", str(out), "--trials", "2", "--epochs", "1", "--lr", "0.003")
    assert code == 0, err
    assert "learning_rate" not in read_trials(out)[0]
    assert read_settings(out / "best.toml")["learning_rate"] == 0.003


@pytest.mark.parametrize("space, message", [
    ("[space]\ndropout = { low = 0.1, high = 0.5 }\n", "dropout cannot be searched"),
    ("[space]\nlearning_rate = { low = 0.1, high = 0.01 }\n", "low < high"),
    ("[space]\nlearning_rate = { low = 0.0, high = 0.01, log = true }\n", "low > 0 on a log scale"),
    ("[space]\nbatch_size = { low = 16.5, high = 64 }\n", "must be integers"),
    ("[space]\nlearning_rate = { low = 0.001, high = 20.0 }\n", "learning_rate = 20.0 is invalid"),
    ("[space]\nschedule = { choices = [\"constant\", \"sawtooth\"] }\n", "schedule = 'sawtooth' is invalid"),
    ("[space]\nlearning_rate = { low = 0.001 }\n", "give { low = ..., high = ... }"),
    ("[space]\noptimizer = \"adam\"\n", "weight_decay is searched but optimizer = 'adam' ignores it"),
    ("[train]\nepochs = 2\n", "holds one [space] table"),
    ("[space\n", "not valid TOML"),
])
def test_bad_space_files_are_one_line_errors(space, message, learnable_folder, tmp_path, capsys):
    path = tmp_path / "space.toml"
    path.write_text(space)
    code, _, err = tune(capsys, learnable_folder, tmp_path / "run", "--space", str(path))
    assert_one_line_error(code, err, str(path), message)
    assert not (tmp_path / "run" / "tune.db").exists()


@pytest.mark.parametrize("arguments, message", [
    (["tune", "resnet"], "unknown model 'resnet'"),
    (["tune", "ann", "--trials", "0"], "--trials 0 is invalid"),
    (["tune", "ann", "--workers", "0"], "--workers 0 is invalid"),
    (["tune", "ann", "--resume"], "--resume needs --out"),
    (["tune", "ann", "--space", "/nonexistent/space.toml"], "cannot read space file"),
])
def test_bad_tune_input_is_a_one_line_error(arguments, message, capsys):
    code, _, err = run_cli(capsys, *arguments)
    assert_one_line_error(code, err, message)


def test_a_finished_study_is_not_overwritten_and_resume_checks_the_plan(tuned, learnable_folder, tmp_path, capsys):
    before = (tuned / "tune.db").read_bytes()
    code, _, err = tune(capsys, learnable_folder, tuned)
    assert_one_line_error(code, err, "holds an earlier tune run; continue it with --resume", "--force")
    code, _, err = run_cli(capsys, "--quiet", "tune", "ann", "--dataset", str(learnable_folder), "--out", str(tuned),
                           "--trials", "8", "--epochs", "4", "--seed", "3", "--resume")
    assert_one_line_error(code, err, "started with different config")
    code, _, err = tune(capsys, learnable_folder, tmp_path / "empty", "--resume")
    assert_one_line_error(code, err, "nothing to resume")
    assert (tuned / "tune.db").read_bytes() == before


def tune_command(folder: Path, out: Path, *extra) -> list[str]:
    return [sys.executable, "-m", "mnistlab", "--quiet", "--threads", "1", "tune", "ann", "--dataset", str(folder),
            "--out", str(out), "--trials", "10", "--epochs", "4", "--seed", "5", *extra]


def study_progress(database: Path) -> tuple[int, int]:
    """(trials finished, trials running that have not reported an epoch yet), read from the study's SQLite file."""
    if not database.is_file():
        return 0, 0
    with contextlib.closing(sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=10)) as connection:
        try:
            finished = connection.execute("SELECT COUNT(*) FROM trials WHERE state IN ('COMPLETE', 'PRUNED')")
            fresh = connection.execute("SELECT COUNT(*) FROM trials WHERE state = 'RUNNING' AND trial_id NOT IN "
                                       "(SELECT trial_id FROM trial_intermediate_values)")
            return finished.fetchone()[0], fresh.fetchone()[0]
        except sqlite3.OperationalError:  # the tables are still being created
            return 0, 0


@pytest.mark.slow  # seconds of processes or a real server; make test runs it
def test_resume_after_sigkill_gives_the_undisturbed_study(learnable_folder, tmp_path):
    environment = {**os.environ, "PYTHONPATH": f"{SRC}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    undisturbed = tmp_path / "undisturbed"
    assert subprocess.run(tune_command(learnable_folder, undisturbed), env=environment, timeout=300).returncode == 0

    killed = tmp_path / "killed"
    process = subprocess.Popen(tune_command(learnable_folder, killed), env=environment)
    deadline = time.monotonic() + 120
    # Kill it inside a trial: three finished, the fourth started but in its first epoch (it cannot end before then).
    while time.monotonic() < deadline and process.poll() is None:
        finished, fresh = study_progress(killed / "tune.db")
        if finished >= 3 and fresh == 1:
            break
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    assert process.wait() == -signal.SIGKILL, "the study finished before it could be killed"
    finished, fresh = study_progress(killed / "tune.db")
    assert 3 <= finished < 10 and fresh == 1 and not (killed / "best.toml").exists()

    result = subprocess.run(tune_command(learnable_folder, killed, "--resume"), env=environment, timeout=300,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    trials = read_trials(killed)
    assert [row["state"] for row in trials].count("interrupted") == 1 and len(trials) == 11
    resumed = [row for row in trials if row["state"] != "interrupted"]
    expected = read_trials(undisturbed)
    # the same draws, outcomes and accuracies, in the same order (the interrupted trial's number is skipped)
    assert without_timing(resumed, "trial") == without_timing(expected, "trial")
    assert read_settings(killed / "best.toml") == read_settings(undisturbed / "best.toml")


@pytest.mark.slow  # seconds of work: make test runs it, the fast suite leaves it out
def test_workers_share_one_study(learnable_folder, tmp_path, capsys):
    out = tmp_path / "parallel"
    code, _, err = run_cli(capsys, "--quiet", "tune", "ann", "--dataset", str(learnable_folder), "--out", str(out),
                           "--trials", "5", "--epochs", "2", "--workers", "2", "--threads", "1")
    assert code == 0, err
    trials = read_trials(out)
    assert [int(row["trial"]) for row in trials] == list(range(5))  # the budget exactly: no worker overshoots
    assert {row["state"] for row in trials} <= {"complete", "pruned"}
    assert len({row["learning_rate"] for row in trials}) == 5  # each worker draws its own settings


def test_ray_with_one_trial_at_a_time_gives_the_local_study(tuned, learnable_folder, ray_cluster, tmp_path):
    """Trials on Ray report every epoch to the driver's study and are pruned as local ones are: the same 8 trials."""
    address, env = ray_cluster
    out = tmp_path / "ray"
    command = [sys.executable, "-m", "mnistlab", "--quiet", "--threads", "1", "tune", "ann", "--dataset",
               str(learnable_folder), "--out", str(out), *QUICK, "--ray", address, "--workers", "1"]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    trials = read_trials(out)
    assert "pruned" in {row["state"] for row in trials}
    assert without_timing(trials) == without_timing(read_trials(tuned))


POISONED_TUNE = """\
import sys
import mnistlab.cli.main as cli
from mnistlab.tune import search as tune
from test_tune import Untouchable

load = tune.open_dataset
def poisoned(*args, **kwargs):  # the real training split; a test split that fails the run if anything reads it
    dataset = load(*args, **kwargs)
    dataset.test_images, dataset.test_labels = Untouchable(), Untouchable()
    return dataset
tune.open_dataset = poisoned
sys.exit(cli.main(sys.argv[1:]))
"""


def test_ray_trials_run_side_by_side_within_budget_and_never_read_the_test_split(real_data_dir, ray_cluster,
                                                                               tmp_path):
    address, env = ray_cluster
    out = tmp_path / "ray"
    command = [sys.executable, "-c", POISONED_TUNE, "--quiet", "--threads", "1", "--data-dir", str(real_data_dir),
               "tune", "ann", "--out", str(out), "--trials", "4", "--epochs", "2", "--limit-train", "600",
               "--ray", address]  # two trials at once: the cluster's 2 CPUs at one thread each
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    trials = read_trials(out)
    assert [int(row["trial"]) for row in trials] == list(range(4))  # the budget exactly: the driver alone counts
    assert {row["state"] for row in trials} <= {"complete", "pruned"}
    assert all(int(row["epochs_run"]) == 2 for row in trials if row["state"] == "complete")  # every epoch reported
    assert (out / "best.toml").is_file() and (out / "tune.md").is_file()


def test_a_ray_address_where_nothing_listens_is_a_one_line_error(learnable_folder, tmp_path, capsys):
    pytest.importorskip("ray", reason="Ray is a test extra: pip install -e '.[test]'")
    with socket.socket() as probe:  # a port that was free a moment ago: nothing listens there
        probe.bind(("127.0.0.1", 0))
        address = f"127.0.0.1:{probe.getsockname()[1]}"
    started = time.monotonic()
    code, _, err = tune(capsys, learnable_folder, tmp_path / "run", "--ray", address)
    assert_one_line_error(code, err, f"--ray {address}: cannot connect to a Ray cluster", "ray start --head")
    assert time.monotonic() - started < 60  # Ray alone would retry for minutes


def test_tune_ray_without_the_extra_is_a_one_line_error(monkeypatch, learnable_folder, tmp_path, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray now raises ImportError
    code, _, err = tune(capsys, learnable_folder, tmp_path / "run", "--ray", "auto")
    assert_one_line_error(code, err, "pip install 'mnistlab[ray]'")
