"""benchmarks/gpu.py, checked where there is no GPU: what it refuses, in one line, and its dry run on the CPU."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from benchmarks import gpu
from conftest import REPO_ROOT, make_tiny_arrays, write_idx_folder


def test_a_missing_package_is_named_in_one_line(monkeypatch, capsys):
    monkeypatch.setattr(gpu, "required_packages", lambda: ["numpy", "no-such-package-mnistlab", "pytest"])
    assert gpu.main(["--device", "cpu", "--dry-run"]) == gpu.EXIT_USER_ERROR
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no-such-package-mnistlab" in err and "numpy" not in err
    assert "installs nothing" in err


def test_the_packages_it_checks_are_the_core_dependencies_that_apply_here():
    names = gpu.required_packages()
    assert {"torch", "numpy", "filelock", "pytest"} <= set(names)
    assert ("tomli" in names) == (sys.version_info < (3, 11))  # the python_version marker is honoured
    assert gpu.missing_packages(names) == []  # this environment has them all


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_without_a_gpu_it_refuses_to_measure_one(capsys):
    for argv in ([], ["--device", "cpu"]):
        assert gpu.main(argv) == gpu.EXIT_USER_ERROR
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "--dry-run" in err


def test_each_figure_names_the_device_its_run_recorded():
    metrics = {"machine": {"device": "cpu", "device_name": "Some CPU"},
               "models": {"cnn-fast": {"config": {"epochs": 2}, "seeds": [
                   {"test_accuracy": 0.991, "train_seconds": 3.0}, {"test_accuracy": 0.989, "train_seconds": 5.0}]}}}
    (row,) = gpu.study_rows(metrics, "time-to-99%")
    assert row["device"] == "cpu (Some CPU)"
    assert "test acc 99.00% +- 0.14" in row["result"] and "train 4.00 s mean" in row["result"]


@pytest.mark.slow
def test_the_dry_run_runs_every_step_on_the_cpu_and_says_it_is_no_gpu_figure(tmp_path):
    folder = tmp_path / "digits"
    write_idx_folder(folder, make_tiny_arrays(train=2000, test=200))
    done = subprocess.run([sys.executable, "benchmarks/gpu.py", "--device", "cpu", "--dry-run", "--threads", "1",
                           "--dataset", str(folder)], cwd=REPO_ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    table = done.stdout
    assert "DRY RUN on cpu" in table and "no GPU ones" in table
    for step in ("CUDA tests", "time-to-99%: cnn-fast, 2 seed(s) x 1 epoch(s)", "seed study: ann, 2 seed(s)",
                 "seed study: cnn, 2 seed(s)"):
        assert step in table
    assert "cuda:" not in table and table.count("| cpu (") == 3  # every training figure: the CPU, as recorded
