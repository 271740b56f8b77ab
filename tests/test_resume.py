"""A multi-seed run killed with SIGKILL and resumed with --resume ends with exactly the numbers of an uninterrupted run."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from mnistlab.cli.main import main

RUN = ["compare", "--models", "ann", "--seeds", "2", "--epochs", "5", "--limit-train", "20000", "--batch-size", "64",
       "--seeds-together", "off",  # both runs the same way: auto measures each run afresh
       "--threads", "1"]  # one thread: two threads on a busy 2-core machine run 50x slower


def without_timings(metrics: dict) -> dict:
    """metrics.json minus wall-clock fields, which differ between any two runs."""
    def strip(value):
        if isinstance(value, dict):
            return {key: strip(item) for key, item in value.items() if key not in ("seconds", "train_seconds", "evaluate_seconds", "created", "inference", "checkpoint_bytes")}
        if isinstance(value, list):
            return [strip(item) for item in value]
        return value

    return strip(metrics)


def test_sigkilled_run_resumes_to_identical_numbers(real_data_dir, tmp_path):
    reference, killed = tmp_path / "reference", tmp_path / "killed"
    assert main(["--quiet", "--data-dir", str(real_data_dir), *RUN, "--out", str(reference)]) == 0

    command = [sys.executable, "-m", "mnistlab", "--quiet", "--data-dir", str(real_data_dir), *RUN, "--out", str(killed)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    epoch_state = killed / "state" / "ann-seed1.epoch.pt"
    deadline = time.monotonic() + 240
    while not epoch_state.exists():  # seed 0 finished, seed 1 half-way: kill now
        assert process.poll() is None, process.stderr.read().decode()
        assert time.monotonic() < deadline, "the run never reached seed 1"
        time.sleep(0.005)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL and not (killed / "metrics.json").exists()

    finished_seed0 = json.loads((killed / "state" / "ann-seed0.json").read_text())
    partial = torch.load(epoch_state, weights_only=True)
    assert 1 <= len(partial["history"]) < 5

    assert main(["--quiet", "--data-dir", str(real_data_dir), *RUN, "--out", str(killed), "--resume"]) == 0
    resumed = json.loads((killed / "metrics.json").read_text())
    expected = json.loads((reference / "metrics.json").read_text())
    assert without_timings(resumed) == without_timings(expected)
    seed0, seed1 = resumed["models"]["ann"]["seeds"]
    assert seed0["train_seconds"] == finished_seed0["train_seconds"]  # seed 0 was not trained again
    done = len(partial["history"])
    assert seed1["history"][:done] == partial["history"]  # nor were seed 1's finished epochs
    with np.load(killed / "predictions.npz") as got, np.load(reference / "predictions.npz") as want:
        assert sorted(got.files) == sorted(want.files)
        for key in want.files:
            np.testing.assert_array_equal(got[key], want[key], err_msg=key)


def test_resume_refuses_a_run_with_other_settings(real_data_dir, tmp_path, capsys):
    out = tmp_path / "run"
    quick = ["compare", "--models", "logreg", "--epochs", "1", "--limit-train", "500", "--threads", "1", "--out", str(out)]
    assert main(["--quiet", "--data-dir", str(real_data_dir), *quick]) == 0
    capsys.readouterr()
    assert main(["--quiet", "--data-dir", str(real_data_dir), *quick, "--resume", "--lr", "0.01"]) == 2
    assert "was started with different configs" in capsys.readouterr().err
    assert main(["--quiet", "--data-dir", str(real_data_dir), *quick, "--resume"]) == 0  # nothing left to train


@pytest.mark.parametrize(("argv", "message"), [
    (["compare", "--resume"], "--resume needs --out DIR"),
    (["compare", "--resume", "--out", "/nonexistent-run"], "nothing to resume"),
])
def test_resume_without_a_run_folder_is_a_one_line_error(argv, message, capsys, real_data_dir):
    assert main(["--data-dir", str(real_data_dir), *argv]) == 2
    assert message in capsys.readouterr().err
