"""The CPU a run may use: its default thread count from affinity and cgroup quota, and OpenMP's passive waiting,
which the command line chooses before PyTorch loads, records, and which changes no number."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch

from conftest import REPO_ROOT, assert_one_line_error, make_tiny_arrays, run_cli, write_idx_folder
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


def proc_stat(ticks: dict[int, tuple[int, ...]]) -> str:
    """/proc/stat text: an all-CPU line, then one `cpuN user nice system idle iowait irq softirq steal guest
    guest_nice` line per CPU, then other counters."""
    total = [sum(column) for column in zip(*ticks.values())]
    lines = ["cpu  " + " ".join(map(str, total))]
    lines += [f"cpu{index} " + " ".join(map(str, fields)) for index, fields in ticks.items()]
    return "\n".join(lines + ["intr 12345 0 0", "ctxt 999", "procs_running 3"]) + "\n"


def test_cpu_ticks_count_idle_and_iowait_of_each_cpu(tmp_path):
    stat = tmp_path / "stat"
    stat.write_text(proc_stat({0: (10, 1, 5, 100, 4, 1, 1, 3, 7, 0), 1: (50, 0, 0, 20, 0, 0, 0, 0, 0, 0)}))
    assert cpu.cpu_ticks(stat) == {0: (104, 125), 1: (20, 70)}  # guest (7) is inside user already; steal (3) is busy
    stat.write_text("\n  \ncpu0 1 2 3 4 5\ncpu1 1 2\n")  # blank lines and short ones are passed over
    assert cpu.cpu_ticks(stat) == {0: (9, 15)}
    stat.write_text("cpu0 1 2 x 4 5\n")
    assert cpu.cpu_ticks(stat) is None
    assert cpu.cpu_ticks(tmp_path / "missing") is None


def test_idle_cores_need_every_cpu_both_times_and_keep_each_share_within_one(monkeypatch, tmp_path):
    stat = tmp_path / "stat"
    readings = iter([{0: (1000, 0, 0, 1000, 50, 0, 0, 0, 0, 0), 1: (1000, 0, 0, 1000, 0, 0, 0, 0, 0, 0)},
                     {0: (1100, 0, 0, 1010, 10, 0, 0, 0, 0, 0), 1: (1100, 0, 0, 1000, 0, 0, 0, 0, 0, 0)}])
    stat.write_text(proc_stat(next(readings)))
    monkeypatch.setattr(cpu.time, "sleep", lambda seconds: stat.write_text(proc_stat(next(readings))))
    # cpu0: idle + iowait went back by 30 ticks while 70 passed (a tickless kernel's iowait): counted 0, not -0.43
    assert cpu.idle_cores({0, 1}, proc_stat=stat) == 0.0
    stat.write_text(proc_stat({0: (1, 0, 0, 1, 0, 0, 0, 0, 0, 0)}))
    assert cpu.idle_cores({0, 1}, proc_stat=stat) is None  # cpu1 missing: no figure rather than one scaled up


def fake_interval(monkeypatch, tmp_path, busy: dict[int, float], cores: int):
    """/proc/stat before and after the sampling sleep: CPU i busy for `busy[i]` of 100 ticks, idle the rest."""
    stat = tmp_path / "stat"
    stat.write_text(proc_stat({index: (1000, 0, 0, 1000, 0, 0, 0, 0, 0, 0) for index in range(cores)}))
    after = {index: (1000 + round(100 * busy.get(index, 0)), 0, 0, 1000 + 100 - round(100 * busy.get(index, 0)),
                     0, 0, 0, 0, 0, 0) for index in range(cores)}
    monkeypatch.setattr(cpu.time, "sleep", lambda seconds: stat.write_text(proc_stat(after)))
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(cores)), raising=False)
    return stat


@pytest.mark.parametrize(("busy", "cores", "share", "threads"), [
    ({}, 2, 1, 2),  # a quiet machine: every core
    ({0: 1.0}, 2, 1, 1),  # one busy process: the core it leaves
    ({0: 1.0, 1: 1.0}, 2, 1, 2),  # none idle: every thread shares a core anyway, so one per core
    ({0: 1.0, 1: 0.7}, 2, 1, 2),
    ({0: 0.3}, 2, 1, 2),  # a core 30% busy (a browser) still counts as idle
    ({0: 0.6, 1: 0.6}, 2, 1, 1),  # 0.8 cores idle in all
    ({0: 1.0}, 8, 2, 3),  # 7 idle cores shared by two workers
    ({}, 8, 16, 1),
])
def test_auto_threads_are_the_idle_cores_rounded_and_shared(monkeypatch, tmp_path, busy, cores, share, threads):
    stat = fake_interval(monkeypatch, tmp_path, busy, cores)
    monkeypatch.setattr(cpu, "cgroup_cpu_quota", lambda *paths: None)
    assert cpu.auto_threads(share=share, proc_stat=stat) == threads


@pytest.mark.skipif(not cpu.PROC_STAT.exists(), reason="the kernel's per-CPU counters are Linux's /proc/stat")
def test_idle_cores_of_this_machine_lie_between_none_and_all():
    cpus = cpu.affinity()
    idle = cpu.idle_cores(cpus, sample_seconds=0.05)
    assert idle is not None and 0 <= idle <= len(cpus)


def test_auto_threads_never_pass_the_quota_and_fall_back_to_the_cores_where_the_os_does_not_say(monkeypatch, tmp_path):
    stat = fake_interval(monkeypatch, tmp_path, {}, 8)
    monkeypatch.setattr(cpu, "cgroup_cpu_quota", lambda *paths: 3.0)
    assert cpu.auto_threads(proc_stat=stat) == 3  # 8 idle cores, but a quota of 3 CPUs
    monkeypatch.setattr(cpu, "cgroup_cpu_quota", lambda *paths: None)
    assert cpu.auto_threads(proc_stat=tmp_path / "no-proc-stat") == 8


def test_threads_auto_on_the_command_line_says_its_choice_records_it_and_repeats_as_that_number(
        monkeypatch, tmp_path, capsys):
    """The count `auto` chose is printed and recorded with the run, and `--threads N` with that count gives the
    same numbers bit for bit."""
    folder = tmp_path / "digits"
    write_idx_folder(folder, make_tiny_arrays(train=300, test=60))
    monkeypatch.setattr("mnistlab.cli.main.auto_threads", lambda share=1: 1)
    runs = {}
    for threads in ("auto", "1"):
        out = tmp_path / threads
        code, _, err = run_cli(capsys, "--threads", threads, "compare", "--dataset", folder, "--models", "ann",
                               "--epochs", "1", "--out", out)
        assert code == 0, err
        assert ("--threads auto chose 1 thread" in err) == (threads == "auto")
        runs[threads] = (json.loads((out / "metrics.json").read_text()),
                         torch.load(out / "ann.pt", weights_only=True)["state_dict"])
    (auto, auto_weights), (one, one_weights) = runs["auto"], runs["1"]
    assert auto["machine"]["threads"] == one["machine"]["threads"] == 1
    assert auto_weights.keys() == one_weights.keys()
    assert all(torch.equal(tensor, one_weights[name]) for name, tensor in auto_weights.items())
    assert auto["models"]["ann"]["test_loss"] == one["models"]["ann"]["test_loss"]


def test_threads_auto_resumes_a_run_with_the_count_it_started_with(monkeypatch, tmp_path, capsys):
    """Measuring the load again on --resume could choose another count, which the resumed run would refuse."""
    folder, out = tmp_path / "digits", tmp_path / "run"
    write_idx_folder(folder, make_tiny_arrays(train=300, test=60))
    flags = ["compare", "--dataset", folder, "--models", "ann", "--epochs", "1", "--out", out]
    code, _, err = run_cli(capsys, "--quiet", "--threads", "1", *flags)
    assert code == 0, err
    monkeypatch.setattr("mnistlab.cli.main.auto_threads", lambda share=1: 2)  # the machine is quieter now
    code, _, err = run_cli(capsys, "--quiet", "--threads", "auto", *flags, "--resume")
    assert code == 0, err
    assert "chose 1 thread, the count this run started with" in err  # said even with --quiet
    code, _, err = run_cli(capsys, "--quiet", "--threads", "2", *flags, "--resume")
    assert_one_line_error(code, err, "was started with different threads")  # what measuring again would meet


@pytest.mark.parametrize("argv, shown", [
    (["--threads", "auto", "compare", "--workers", "2"], "chose 3 threads per worker"),
    (["--threads", "auto", "compare-runs", "a:ann", "b:ann"], None),  # compares recorded numbers: nothing to choose
])
def test_threads_auto_is_said_per_worker_and_only_where_numbers_are_computed(monkeypatch, capsys, argv, shown):
    from mnistlab.cli.main import choose_threads
    from mnistlab.cli.parser import build_parser

    monkeypatch.setattr("mnistlab.cli.main.auto_threads", lambda share=1: 6 // share)
    chosen = choose_threads(build_parser().parse_args(argv))
    err = capsys.readouterr().err
    assert chosen == (3 if shown else None)
    assert (shown in err) if shown else err == ""


def test_threads_auto_is_refused_for_a_ray_cluster_and_a_bad_count_is_named(capsys):
    code, _, err = run_cli(capsys, "--threads", "auto", "compare", "--ray", "127.0.0.1:1")
    assert_one_line_error(code, err, "--threads auto", "Ray cluster", "--threads N")
    for wrong in ("two", "1_0", "+2", "-1"):
        with pytest.raises(SystemExit) as refused:
            run_cli(capsys, "--threads", wrong, "compare")
        assert refused.value.code == 2 and f"{wrong!r} is not a thread count" in capsys.readouterr().err


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
