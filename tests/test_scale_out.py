"""A study's jobs side by side: local workers and a real local Ray cluster give a sequential run's numbers bit for bit,
and a worker killed mid-job is retried to the same numbers. Devices and precision, as far as a CPU machine can test."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import assert_one_line_error, run_cli

QUICK = ["--models", "ann,logreg", "--seeds", "2", "--epochs", "3", "--limit-train", "6000", "--threads", "1"]


def numbers(run_dir: Path) -> dict:
    """Everything a run computed (metrics without timings, machine, or why --seeds-together auto chose its way,
    which names where the jobs ran), predictions, weights: to compare runs."""
    def strip(value):
        if isinstance(value, dict):
            return {key: strip(item) for key, item in value.items()
                    if key not in ("seconds", "train_seconds", "evaluate_seconds", "created", "machine", "inference", "checkpoint_bytes", "reason")}
        return [strip(item) for item in value] if isinstance(value, list) else value

    metrics = strip(json.loads((run_dir / "metrics.json").read_text()))
    with np.load(run_dir / "predictions.npz") as arrays:
        predictions = {key: arrays[key].tobytes() for key in arrays.files}
    weights = {path.name: {key: value.numpy().tobytes() for key, value in
                           torch.load(path, weights_only=True)["state_dict"].items()}
               for path in sorted(run_dir.glob("*.pt"))}
    return {"metrics": metrics, "predictions": predictions, "weights": weights}


@pytest.fixture(scope="module")
def sequential_run(real_data_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("sequential") / "run"
    from mnistlab.cli.main import main

    assert main(["--quiet", "--data-dir", str(real_data_dir), "compare", *QUICK, "--out", str(out)]) == 0
    return out


def compare_command(real_data_dir, out, *extra):
    return [sys.executable, "-m", "mnistlab", "--data-dir", str(real_data_dir), "compare", *QUICK, "--out", str(out),
            *extra]


def test_local_workers_give_the_sequential_numbers(sequential_run, real_data_dir, tmp_path):
    out = tmp_path / "parallel"
    result = subprocess.run(compare_command(real_data_dir, out, "--workers", "2"), capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    assert numbers(out) == numbers(sequential_run)
    progress = [line for line in result.stderr.splitlines() if "jobs done" in line]
    assert len(progress) == 4 and progress[-1].startswith("mnistlab: 4/4 jobs done"), result.stderr
    assert "running:" in progress[0] and "min left" in progress[0]


def children_running_jobs(parent: int, marker: str) -> list[int]:
    """Process ids whose command line holds `marker` (and, with a parent, are its children)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            status = (entry / "status").read_text()
        except OSError:
            continue
        parent_line = next((line for line in status.splitlines() if line.startswith("PPid:")), "PPid: 0")
        if marker in command and (parent == 0 or int(parent_line.split()[1]) == parent):
            found.append(int(entry.name))
    return found


def kill_a_worker_mid_job(process, out: Path, marker: str, parent: int) -> None:
    """Wait until a job has saved an epoch (it is mid-training), then SIGKILL one worker process."""
    deadline = time.monotonic() + 300
    while not list((out / "state").glob("*.epoch.pt")):
        assert process.poll() is None, process.stderr.read()
        assert time.monotonic() < deadline, "no job reached its second epoch"
        time.sleep(0.01)
    workers = children_running_jobs(parent, marker)
    assert workers, f"no worker process found for {marker!r}"
    os.kill(workers[0], signal.SIGKILL)


def test_a_killed_local_worker_is_retried_to_the_same_numbers(sequential_run, real_data_dir, tmp_path):
    out = tmp_path / "killed"
    process = subprocess.Popen(compare_command(real_data_dir, out, "--workers", "2", "--quiet"),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    kill_a_worker_mid_job(process, out, "spawn_main", process.pid)
    _, err = process.communicate(timeout=600)
    assert process.returncode == 0, err
    assert numbers(out) == numbers(sequential_run)


def test_ray_cluster_gives_the_sequential_numbers(sequential_run, real_data_dir, ray_cluster, tmp_path):
    address, env = ray_cluster
    out = tmp_path / "ray"
    result = subprocess.run(compare_command(real_data_dir, out, "--ray", address), capture_output=True, text=True,
                            timeout=600, env=env)
    assert result.returncode == 0, result.stderr[-2000:]
    assert numbers(out) == numbers(sequential_run)


def test_a_killed_ray_worker_is_retried_to_the_same_numbers(sequential_run, real_data_dir, ray_cluster, tmp_path):
    address, env = ray_cluster
    out = tmp_path / "ray-killed"
    process = subprocess.Popen(compare_command(real_data_dir, out, "--ray", address, "--quiet"),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    kill_a_worker_mid_job(process, out, "ray::run_ray_task", parent=0)  # Ray names a busy worker after its task
    _, err = process.communicate(timeout=600)
    assert process.returncode == 0, err
    assert numbers(out) == numbers(sequential_run)


def test_ray_without_the_extra_is_a_one_line_error(monkeypatch, tiny_dataset, tmp_path, capsys):
    _, data_dir, _, _ = tiny_dataset
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray now raises ImportError
    code, _, err = run_cli(capsys, "--data-dir", data_dir, "compare", "--dataset", "tiny", "--models", "logreg",
                           "--out", tmp_path / "run", "--ray", "auto")
    assert_one_line_error(code, err, "pip install 'mnistlab[ray]'")


def test_a_job_that_fails_in_a_worker_is_a_one_line_error_naming_it(tiny_dataset, tmp_path):
    """A job's own error in a worker process (here: a model this mnistlab does not have) stops the study."""
    from mnistlab.training.config import TrainConfig
    from mnistlab.common.errors import MnistlabError
    from mnistlab.data.folders import open_dataset
    from mnistlab.study.compare import run_jobs
    from mnistlab.study.executor import Placement
    from mnistlab.study.jobs import Job

    _, data_dir, _, _ = tiny_dataset
    folder = str(data_dir / "tiny")
    jobs = [Job("no-such-model", TrainConfig(epochs=1, seed=4, dataset=folder))]
    with pytest.raises(MnistlabError, match=r"^no-such-model seed 4: unknown model 'no-such-model'") as caught:
        list(run_jobs(jobs, open_dataset(folder), Placement(workers=2, threads=1), tmp_path, None, progress=False))
    assert "\n" not in str(caught.value)


@pytest.mark.cuda
@pytest.mark.parametrize(("device", "fragment"), [("cuda", "CUDA GPU"), ("cuda:7", "CUDA GPU"), ("tpu", "invalid")])
def test_a_device_that_is_not_there_is_a_one_line_error(device, fragment, tiny_dataset, tmp_path, capsys):
    if device.startswith("cuda") and torch.cuda.device_count() > int(device.partition(":")[2] or 0):
        pytest.skip("this machine has that GPU")
    _, data_dir, _, _ = tiny_dataset
    for argv in (["compare", "--dataset", "tiny", "--models", "logreg", "--out", tmp_path / "run"],
                 ["train", "logreg", "--dataset", "tiny", "--out", tmp_path / "m.pt"]):
        code, _, err = run_cli(capsys, "--data-dir", data_dir, *argv, "--device", device)
        assert_one_line_error(code, err, f"--device {device}", fragment)


@pytest.mark.cuda
def test_device_auto_and_cpu_train_the_same_numbers_on_a_cpu_machine(tiny_dataset, tmp_path, capsys):
    if torch.cuda.is_available() or torch.backends.mps.is_available():
        pytest.skip("auto picks a GPU here")
    _, data_dir, _, _ = tiny_dataset
    for device in ("cpu", "auto"):
        code, _, err = run_cli(capsys, "--quiet", "--data-dir", data_dir, "compare", "--dataset", "tiny",
                               "--models", "ann", "--epochs", "2", "--out", tmp_path / device, "--device", device)
        assert code == 0, err
    assert numbers(tmp_path / "cpu") == numbers(tmp_path / "auto")
    assert json.loads((tmp_path / "auto" / "metrics.json").read_text())["machine"]["device"] == "cpu"


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU; this machine has none")
def test_gpu_training_is_repeatable_and_its_checkpoint_loads_on_the_cpu(tiny_dataset, tmp_path, capsys):
    from mnistlab.training.checkpoint import load_checkpoint

    _, data_dir, _, _ = tiny_dataset
    for attempt in ("a", "b"):
        code, _, err = run_cli(capsys, "--quiet", "--data-dir", data_dir, "compare", "--dataset", "tiny",
                               "--models", "cnn", "--epochs", "2", "--out", tmp_path / attempt, "--device", "cuda")
        assert code == 0, err
    assert numbers(tmp_path / "a") == numbers(tmp_path / "b")
    model, _ = load_checkpoint(tmp_path / "a" / "cnn.pt")
    assert next(model.parameters()).device.type == "cpu"


def test_bf16_trains_and_is_recorded(tiny_dataset, tmp_path, capsys, monkeypatch):
    _, data_dir, _, _ = tiny_dataset
    monkeypatch.setattr("mnistlab.study.plan.has_native_bf16", lambda device: False)
    argv = ["--quiet", "--data-dir", data_dir, "compare", "--dataset", "tiny", "--models", "cnn", "--epochs", "2",
            "--precision", "bf16", "--out", tmp_path / "bf16"]
    code, _, err = run_cli(capsys, *argv)
    assert code == 0 and "no native bfloat16" in err, err
    metrics = json.loads((tmp_path / "bf16" / "metrics.json").read_text())
    assert metrics["models"]["cnn"]["config"]["precision"] == "bf16"
    assert np.isfinite(metrics["models"]["cnn"]["test_loss"])
    assert run_cli(capsys, *argv[:-1], tmp_path / "fp32", "--precision", "fp32")[0] == 0
    assert numbers(tmp_path / "bf16")["weights"] != numbers(tmp_path / "fp32")["weights"]  # autocast really ran


def test_the_bf16_warning_is_one_line_on_the_command_line(tiny_dataset, tmp_path, capsys, monkeypatch):
    _, data_dir, _, _ = tiny_dataset
    monkeypatch.setattr("mnistlab.study.plan.has_native_bf16", lambda device: False)
    code, _, err = run_cli(capsys, "--quiet", "--data-dir", data_dir, "compare", "--dataset", "tiny", "--models",
                           "logreg", "--epochs", "1", "--precision", "bf16", "--out", tmp_path / "run")
    assert code == 0
    assert err.strip().splitlines() == [f"mnistlab: warning: {err.split('warning: ', 1)[1].strip()}"]
    assert "no native bfloat16" in err and "slower than fp32" in err
