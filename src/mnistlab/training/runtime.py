"""The process-wide settings a run's numbers depend on, set by entry points, and the record of the machine.

Library functions (`train`, `evaluate`, ...) never change the process: the thread
count, deterministic kernels and allocator settings are set here, once, by the
CLI, a benchmark or a worker process, or by a library user who wants the CLI's
numbers:

    from mnistlab.training.runtime import configured_runtime
    with configured_runtime(threads=2):
        result = train("cnn", dataset, config)   # the numbers `mnistlab train cnn --threads 2` gives
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import platform
import sys
from typing import Iterator

import torch

from mnistlab.common.cpu import WAIT_POLICY, available_cores
from mnistlab.common.errors import ConfigError


DEVICE_CHOICES = "auto, cpu, cuda, cuda:N or mps"
WORKER_MEMORY_BYTES = 540 * 2**20  # what one local worker process holds: the interpreter, PyTorch and a dataset copy
# How OpenMP's idle threads wait in this process: fixed when PyTorch loaded it, which was at the latest just above.
OPENMP_WAIT_POLICY = os.environ.get(WAIT_POLICY, "default")  # "default": spin a while, then sleep


@contextlib.contextmanager
def configured_runtime(threads: int | None = None) -> Iterator[None]:
    """Set what fixes a run's numbers for the block, then put back the thread count and deterministic mode.

    `threads=None` keeps the current thread count (PyTorch's default, one per core,
    in a fresh process). The thread count is part of the numbers: the same seed on
    one thread and on two differs in the last digits. On a GPU, deterministic mode
    makes cuDNN and cuBLAS pick reproducible kernels (cuBLAS also needs
    CUBLAS_WORKSPACE_CONFIG, set here unless the user set it, before CUDA starts).
    """
    previous = (torch.get_num_threads(), torch.are_deterministic_algorithms_enabled(),
                torch.utils.deterministic.fill_uninitialized_memory, torch.backends.cudnn.benchmark)
    apply_runtime(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous[0])
        set_deterministic(previous[1])
        torch.utils.deterministic.fill_uninitialized_memory = previous[2]
        torch.backends.cudnn.benchmark = previous[3]


def job_threads(threads: int | None, workers: int, on_cluster: bool) -> int:
    """PyTorch threads for each job: `threads` if given; else the cores this process may use (affinity, cgroup
    quota) shared among `workers` processes (all of them for one job on a cluster, which asks for that many
    CPUs); else the current setting."""
    if threads:
        return threads
    if workers > 1 or on_cluster:
        return max(1, available_cores() // workers)
    return torch.get_num_threads()


def max_local_workers() -> int:
    """The most local worker processes this machine runs well: one per core it may use, each with its memory."""
    return max(1, min(available_cores(), memory_bytes() // WORKER_MEMORY_BYTES))


def memory_bytes() -> int:
    """This process's memory: the machine's physical memory, or its container's limit (cgroup v2) if lower."""
    try:
        memory = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError):  # not a POSIX system that says
        memory = 2**62
    try:
        with open("/sys/fs/cgroup/memory.max", encoding="ascii") as handle:
            limit = handle.read().strip()
        memory = min(memory, int(limit)) if limit.isdigit() else memory
    except OSError:
        pass
    return memory


def check_workers(workers: int | None) -> None:
    """`ConfigError` unless `workers` local worker processes (None: one) fit this machine (see `max_local_workers`)."""
    if workers is None:
        return
    most = max_local_workers()
    if not 1 <= workers <= most:
        raise ConfigError(f"--workers {workers} is invalid; give an integer from 1 to {most} (on this machine: one per "
                          f"CPU core, each worker holding about {WORKER_MEMORY_BYTES // 2**20} MB of memory)")


def resolve_device(name: str = "cpu") -> torch.device:
    """`--device`: "auto" (CUDA, then Apple's MPS, then the CPU), "cpu", "cuda", "cuda:N" or "mps".

    Raises `ConfigError` for a device this machine does not have.
    """
    name = name.strip().lower()
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda:0")
        return torch.device("mps") if torch.backends.mps.is_available() else torch.device("cpu")
    if name == "cpu":
        return torch.device("cpu")
    if name == "mps":
        if not torch.backends.mps.is_available():
            raise ConfigError("--device mps: Apple's Metal backend is not available here; use --device cpu")
        return torch.device("mps")
    if name == "cuda" or name.startswith("cuda:"):
        index = name.partition(":")[2] or "0"
        if not index.isdigit():
            raise ConfigError(f"--device {name} is invalid; choose {DEVICE_CHOICES}")
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if int(index) >= count:
            raise ConfigError(f"--device {name}: this machine has {count} CUDA GPU(s) visible to PyTorch "
                              f"{torch.__version__}; use --device cpu, or install a CUDA build of PyTorch")
        return torch.device(f"cuda:{index}")
    raise ConfigError(f"--device {name[:40]} is invalid; choose {DEVICE_CHOICES}")


def device_name(device: torch.device) -> str:
    """A device's model name: the GPU's, or the CPU's."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return "Apple GPU (MPS)" if device.type == "mps" else cpu_model()


def has_native_bf16(device: torch.device) -> bool:
    """Whether `device` computes bfloat16 in hardware (CPU: AVX512_BF16 or AMX; GPU: compute capability 8+)."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type != "cpu":
        return False
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            flags = next((line for line in handle if line.startswith("flags")), "").split()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def apply_runtime(threads: int | None = None) -> None:
    """`configured_runtime`'s settings for the rest of the process: for worker processes that only run jobs."""
    if threads is not None:
        torch.set_num_threads(threads)
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.backends.cudnn.benchmark = False  # autotuning picks kernels by timing: not repeatable
    set_deterministic(True)
    # Deterministic mode also fills every new tensor with NaN to expose kernels that read
    # uninitialised memory. None of ours does (a test trains both ways and compares), and the
    # fill writes every activation and gradient twice.
    torch.utils.deterministic.fill_uninitialized_memory = False
    keep_freed_memory()


def set_deterministic(mode: bool) -> None:
    """`torch.use_deterministic_algorithms(mode)` without importing PyTorch's compiler stack.

    The public function first sets TorchInductor's `deterministic` flag, which imports
    torch._inductor (seconds of start-up on every command); the kernels eager PyTorch
    runs read only the flag set by `torch._C._set_deterministic_algorithms`. Where the
    compiler is already loaded (a user of torch.compile), or this PyTorch lacks the
    private call, the public function is used.
    """
    if "torch._inductor.config" in sys.modules or not hasattr(torch._C, "_set_deterministic_algorithms"):
        torch.use_deterministic_algorithms(mode)
    else:
        torch._C._set_deterministic_algorithms(mode)


def keep_freed_memory() -> None:
    """Have glibc keep freed blocks of up to 32 MiB for reuse instead of returning them to the kernel.

    PyTorch allocates each activation and gradient afresh every step. By default glibc
    maps blocks over 128 KiB straight from the kernel and unmaps them when freed, so
    every step page-faults its activations in again. Numbers are unchanged; only where
    the memory comes from. A no-op off glibc. glibc cannot report the old values, so
    this one setting outlives `configured_runtime`.
    """
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:  # musl and other C libraries: keep their defaults
        return
    m_trim_threshold, m_mmap_threshold = -1, -3  # mallopt parameter numbers from glibc's malloc.h
    libc.mallopt(m_mmap_threshold, 32 * 1024 * 1024)  # the largest glibc allows
    libc.mallopt(m_trim_threshold, 1024 * 1024 * 1024)


def cpu_model() -> str:
    """The CPU's marketing name (e.g. "AMD EPYC 7B13"), or the architecture where the OS does not say."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_record(device: torch.device = torch.device("cpu")) -> dict:
    """The machine a run's numbers and timings come from.

    `cpu_capability` is the instruction set PyTorch's CPU kernels use (DEFAULT,
    AVX2, AVX512, ...): the same seed gives the same numbers bit for bit only on
    the same capability and thread count. `cores_available` (affinity and cgroup
    quota) is where the default thread count comes from; `omp_wait_policy` says
    how idle threads waited, which changes timings, never numbers.
    """
    return {
        "platform": platform.platform(),
        "processor": platform.machine(),
        "cpu_model": cpu_model(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "cpu_count": os.cpu_count(),
        "cores_available": available_cores(),
        "threads": torch.get_num_threads(),
        "omp_wait_policy": OPENMP_WAIT_POLICY,
        "device": str(device),
        "device_name": device_name(device),
    }
