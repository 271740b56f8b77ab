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
"""

from __future__ import annotations

import math
import os
import sys
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")
PROC_CGROUP = Path("/proc/self/cgroup")
WAIT_POLICY = "OMP_WAIT_POLICY"


def available_cores(cgroup_root: Path = CGROUP_ROOT, proc_cgroup: Path = PROC_CGROUP) -> int:
    """The cores this process may use: its affinity mask, capped by its cgroup's CPU quota (at least 1)."""
    if hasattr(os, "sched_getaffinity"):
        cores = len(os.sched_getaffinity(0))
    else:  # macOS, Windows: no affinity call
        cores = os.cpu_count() or 1
    quota = cgroup_cpu_quota(cgroup_root, proc_cgroup)
    if quota is not None:
        cores = min(cores, math.floor(quota))  # a thread past the quota only waits to be scheduled
    return max(1, cores)


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
