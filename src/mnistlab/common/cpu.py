"""The CPU this process may use, read without importing PyTorch: its cores, and how idle threads wait.

`available_cores` counts the cores the process may run on (its affinity mask) and
caps them by a container's CPU quota (cgroup v2 `cpu.max`, or v1's CFS quota): on
a 16-core host, a container allowed 2 CPUs gets 2 threads, not 16 that the kernel
would throttle in turn. `prefer_passive_waiting` asks OpenMP to put idle threads to
sleep at once instead of spinning (OMP_WAIT_POLICY=PASSIVE): on a shared CPU a
spinning thread burns the core another process, or our own other thread, needs.
OpenMP reads the setting once, when PyTorch loads it, so only a process entry point
that has not imported torch yet can choose it; it changes how threads wait, never
what they compute.

`auto_threads` is `--threads auto`: as many threads as those cores have idle right
now, measured over a fifth of a second. PyTorch splits each operation evenly among
its threads, so one thread sharing its core with another process holds all the
others back at every step; fewer threads that each keep a core lose less. Where no
core is idle, every thread shares one anyway, and one per core gets the largest
share. The thread count is part of a run's numbers, so a run records the count it
used and `--threads N` repeats them.
"""

from __future__ import annotations

import math
import os
import sys
import time
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")
PROC_CGROUP = Path("/proc/self/cgroup")
PROC_STAT = Path("/proc/stat")
IDLE_SAMPLE_SECONDS = 0.2  # long enough to see a busy process, short beside any command that trains
WAIT_POLICY = "OMP_WAIT_POLICY"


def available_cores(cgroup_root: Path = CGROUP_ROOT, proc_cgroup: Path = PROC_CGROUP) -> int:
    """The cores this process may use: its affinity mask, capped by its cgroup's CPU quota (at least 1)."""
    cores = len(affinity())
    quota = cgroup_cpu_quota(cgroup_root, proc_cgroup)
    if quota is not None:
        cores = min(cores, math.floor(quota))  # a thread past the quota only waits to be scheduled
    return max(1, cores)


def affinity() -> set[int]:
    """The CPUs this process may run on (all of them where the OS has no affinity call: macOS, Windows)."""
    if hasattr(os, "sched_getaffinity"):
        return set(os.sched_getaffinity(0))
    return set(range(os.cpu_count() or 1))


def auto_threads(share: int = 1, sample_seconds: float = IDLE_SAMPLE_SECONDS, proc_stat: Path = PROC_STAT) -> int:
    """`--threads auto`: the idle cores among those this process may use, rounded, shared among `share` worker
    processes; at least 1.

    All available cores, as by default, where none is idle (every thread then shares a core whatever the count,
    and one per core claims a share of each) or where the OS does not say how busy its CPUs are.
    """
    cores = available_cores()
    idle = idle_cores(affinity(), sample_seconds, proc_stat)
    whole = 0 if idle is None else math.floor(idle + 0.5)
    usable = min(cores, whole) if whole else cores
    return max(1, usable // max(1, share))


def idle_cores(cpus: set[int], sample_seconds: float = IDLE_SAMPLE_SECONDS,
               proc_stat: Path = PROC_STAT) -> float | None:
    """How many of `cpus` were idle over the next `sample_seconds` (while this process sleeps), from the kernel's
    per-CPU counters; None where they cannot be read for every one of `cpus` both times (not Linux, a CPU taken
    offline meanwhile, a container whose /proc/stat numbers its CPUs otherwise)."""
    before = cpu_ticks(proc_stat)
    if before is None or not cpus <= before.keys():
        return None
    time.sleep(sample_seconds)
    after = cpu_ticks(proc_stat)
    if after is None or not cpus <= after.keys():
        return None
    idle = 0.0
    for cpu in cpus:
        elapsed = after[cpu][1] - before[cpu][1]
        if elapsed > 0:  # iowait may run backwards on a tickless kernel: each CPU's share is kept within [0, 1]
            idle += min(max((after[cpu][0] - before[cpu][0]) / elapsed, 0.0), 1.0)
    return idle


def cpu_ticks(proc_stat: Path = PROC_STAT) -> dict[int, tuple[int, int]] | None:
    """{CPU number: (idle, total) clock ticks so far} from /proc/stat's `cpuN` lines; None if unreadable.

    A line reads "cpuN user nice system idle iowait irq softirq steal guest guest_nice". Idle is idle plus
    iowait; the total leaves out guest and guest_nice, which the kernel already counts in user and nice. Time
    stolen by a hypervisor counts as busy: those cycles are not this machine's to use.
    """
    try:
        lines = proc_stat.read_text(encoding="ascii").splitlines()
    except (OSError, UnicodeDecodeError):
        return None
    ticks = {}
    for line in lines:
        parts = line.split()
        if len(parts) < 6 or not (parts[0].startswith("cpu") and parts[0][3:].isdigit()):
            continue
        try:
            fields = [int(field) for field in parts[1:9]]
        except ValueError:
            return None
        ticks[int(parts[0][3:])] = (fields[3] + fields[4], sum(fields))
    return ticks or None


def cgroup_cpu_quota(cgroup_root: Path = CGROUP_ROOT, proc_cgroup: Path = PROC_CGROUP) -> float | None:
    """CPUs' worth of time per period this process's cgroup (or any above it) allows, or None when unlimited.

    cgroup v2: `cpu.max` ("max 100000" or "<quota> <period>") in the process's cgroup and each parent;
    cgroup v1: `cpu.cfs_quota_us` / `cpu.cfs_period_us` of the cpu controller (-1: unlimited).
    """
    try:
        lines = proc_cgroup.read_text(encoding="utf-8").splitlines()
    except OSError:  # not Linux, or no /proc
        return None
    limits = []
    for line in lines:
        hierarchy, _, rest = line.partition(":")
        controllers, _, path = rest.partition(":")
        if hierarchy == "0" and controllers == "":  # v2: one unified tree
            folder = cgroup_root / path.strip("/")
            for level in [folder, *folder.parents]:
                limits.append(_read_v2_limit(level / "cpu.max"))
                if level == cgroup_root:
                    break
        elif "cpu" in controllers.split(","):  # v1: the cpu controller's own tree
            mount = cgroup_root / controllers
            limits.append(_read_v1_limit(mount / path.strip("/")))
            limits.append(_read_v1_limit(mount))
    found = [limit for limit in limits if limit is not None]
    return min(found) if found else None


def _read_v2_limit(path: Path) -> float | None:
    try:
        quota, period = path.read_text(encoding="ascii").split()[:2]
        return None if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError, ZeroDivisionError):
        return None


def _read_v1_limit(folder: Path) -> float | None:
    try:
        quota = int((folder / "cpu.cfs_quota_us").read_text(encoding="ascii"))
        period = int((folder / "cpu.cfs_period_us").read_text(encoding="ascii"))
        return None if quota <= 0 else quota / period
    except (OSError, ValueError, ZeroDivisionError):
        return None


def prefer_passive_waiting(environ=os.environ) -> bool:
    """Set OMP_WAIT_POLICY=PASSIVE for this process and its children, unless the user chose a policy or PyTorch
    is already loaded (then OpenMP has read its settings: changing them now would only make the record lie).

    For process entry points only (the CLI, benchmarks). Returns whether it set the variable.
    """
    if WAIT_POLICY in environ or "torch" in sys.modules:
        return False
    environ[WAIT_POLICY] = "PASSIVE"
    return True
