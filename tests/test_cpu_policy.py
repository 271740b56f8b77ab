"""The CPU a run may use: its default thread count from affinity and cgroup quota, and OpenMP's passive waiting,
which the command line chooses before PyTorch loads, records, and which changes no number."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch

from conftest import REPO_ROOT, make_tiny_arrays, write_idx_folder
from mnistlab.common import cpu
from mnistlab.training.runtime import job_threads, machine_record


def write_cgroup(tmp_path, proc_line: str, files: dict[str, str]):
    root = tmp_path / "cgroup"
    for relative, text in files.items():
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_text(text)
    proc = tmp_path / "proc-self-cgroup"
    proc.write_text(proc_line + "\n")
    return root, proc


@pytest.mark.parametrize(("proc_line", "files", "quota"), [
    ("0::/user.slice/job", {"cpu.max": "max 100000\n", "user.slice/cpu.max": "150000 100000\n",
                            "user.slice/job/cpu.max": "max 100000\n"}, 1.5),  # v2: a parent's limit binds
    ("0::/job", {"cpu.max": "max 100000\n", "job/cpu.max": "400000 100000\n"}, 4.0),
    ("0::/", {"cpu.max": "max 100000\n"}, None),  # v2, unlimited
    ("4:cpu,cpuacct:/docker/abc", {"cpu,cpuacct/cpu.cfs_quota_us": "200000\n",
                                   "cpu,cpuacct/cpu.cfs_period_us": "100000\n"}, 2.0),  # v1, read at the mount
    ("1:cpu:/", {"cpu/cpu.cfs_quota_us": "-1\n", "cpu/cpu.cfs_period_us": "100000\n"}, None),  # v1, unlimited
    ("0::/", {"cpu.max": "garbage\n"}, None),  # unreadable: no limit claimed
])
def test_the_cgroup_cpu_quota_is_read_from_v2_and_v1(tmp_path, proc_line, files, quota):
    root, proc = write_cgroup(tmp_path, proc_line, files)
    assert cpu.cgroup_cpu_quota(root, proc) == quota


@pytest.mark.parametrize(("affinity", "quota_line", "cores"), [
    (8, "max 100000", 8), (8, "200000 100000", 2), (8, "150000 100000", 1), (8, "50000 100000", 1), (2, "800000 100000", 2),
])
def test_available_cores_are_the_affinity_capped_by_the_quota(tmp_path, monkeypatch, affinity, quota_line, cores):
    root, proc = write_cgroup(tmp_path, "0::/", {"cpu.max": quota_line})
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(affinity)), raising=False)
    assert cpu.available_cores(root, proc) == cores


def test_workers_share_the_cores_this_process_may_use(monkeypatch):
    monkeypatch.setattr("mnistlab.training.runtime.available_cores", lambda: 6)
    assert job_threads(None, workers=3, on_cluster=False) == 2
    assert job_threads(None, workers=12, on_cluster=False) == 1
    assert job_threads(4, workers=3, on_cluster=False) == 4  # --threads wins


def test_passive_waiting_is_chosen_only_before_pytorch_loads_and_never_over_the_users_choice(monkeypatch):
    environ = {}
    monkeypatch.delitem(sys.modules, "torch")  # as in a fresh process (put back when the test ends)
    assert cpu.prefer_passive_waiting(environ) and environ == {"OMP_WAIT_POLICY": "PASSIVE"}
    environ = {"OMP_WAIT_POLICY": "ACTIVE"}
    assert not cpu.prefer_passive_waiting(environ) and environ == {"OMP_WAIT_POLICY": "ACTIVE"}
    monkeypatch.setitem(sys.modules, "torch", torch)
    environ = {}
    assert not cpu.prefer_passive_waiting(environ) and environ == {}  # too late: OpenMP read its settings


def test_the_machine_record_says_how_many_cores_and_how_threads_waited():
    record = machine_record()
    assert record["cores_available"] == cpu.available_cores()
    assert record["omp_wait_policy"] == os.environ.get("OMP_WAIT_POLICY", "default")


@pytest.mark.slow
def test_the_command_line_waits_passively_records_it_and_trains_the_same_weights(tmp_path):
    """Two threads so that OpenMP runs parallel regions; OMP_DISPLAY_ENV shows what OpenMP itself read."""
    folder = tmp_path / "digits"
    write_idx_folder(folder, make_tiny_arrays(train=600, test=100))
    runs = {}
    for policy in (None, "ACTIVE"):
        env = {key: value for key, value in os.environ.items() if key != "OMP_WAIT_POLICY"}
        env.update({"OMP_DISPLAY_ENV": "VERBOSE", "PYTHONPATH": str(REPO_ROOT / "src")})
        if policy:
            env["OMP_WAIT_POLICY"] = policy
        out = tmp_path / (policy or "cli-default")
        done = subprocess.run([sys.executable, "-m", "mnistlab", "--quiet", "--threads", "2", "compare", "--dataset",
                               str(folder), "--models", "cnn", "--epochs", "1", "--out", str(out)],
                              env=env, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr
        runs[policy] = (done.stderr, json.loads((out / "metrics.json").read_text()),
                        torch.load(out / "cnn.pt", weights_only=True)["state_dict"])
    (passive_err, passive, passive_weights), (active_err, active, active_weights) = runs[None], runs["ACTIVE"]
    assert "GOMP_SPINCOUNT = '0'" in passive_err  # OpenMP itself read PASSIVE: idle threads sleep at once
    assert "OMP_WAIT_POLICY = 'ACTIVE'" in active_err
    assert passive["machine"]["omp_wait_policy"] == "PASSIVE" and active["machine"]["omp_wait_policy"] == "ACTIVE"
    assert passive["machine"]["threads"] == active["machine"]["threads"] == 2
    assert passive_weights.keys() == active_weights.keys()
    for name, tensor in passive_weights.items():
        assert torch.equal(tensor, active_weights[name]), name  # bit for bit
    assert passive["models"]["cnn"]["test_loss"] == active["models"]["cnn"]["test_loss"]
