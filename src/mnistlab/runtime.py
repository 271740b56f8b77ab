"""The process-wide settings a run's numbers depend on, set by entry points, and the record of the machine.

Library functions (`train`, `evaluate`, ...) never change the process: the thread
count, deterministic kernels and allocator settings are set here, once, by the
CLI, a benchmark or a worker process, or by a library user who wants the CLI's
numbers:

    from mnistlab.runtime import configured_runtime
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


@contextlib.contextmanager
def configured_runtime(threads: int | None = None) -> Iterator[None]:
    """Set what fixes a run's numbers for the block, then put back the thread count and deterministic mode.

    `threads=None` keeps the current thread count (PyTorch's default, one per core,
    in a fresh process). The thread count is part of the numbers: the same seed on
    one thread and on two differs in the last digits.
    """
    previous = (torch.get_num_threads(), torch.are_deterministic_algorithms_enabled(),
                torch.utils.deterministic.fill_uninitialized_memory)
    if threads is not None:
        torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True)
    # Deterministic mode also fills every new tensor with NaN to expose kernels that read
    # uninitialised memory. None of ours does (a test trains both ways and compares), and the
    # fill writes every activation and gradient twice.
    torch.utils.deterministic.fill_uninitialized_memory = False
    keep_freed_memory()
    try:
        yield
    finally:
        torch.set_num_threads(previous[0])
        torch.use_deterministic_algorithms(previous[1])
        torch.utils.deterministic.fill_uninitialized_memory = previous[2]


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


def machine_record(device: str = "cpu") -> dict:
    """The machine a run's numbers and timings come from.

    `cpu_capability` is the instruction set PyTorch's CPU kernels use (DEFAULT,
    AVX2, AVX512, ...): the same seed gives the same numbers bit for bit only on
    the same capability and thread count.
    """
    return {
        "platform": platform.platform(),
        "processor": platform.machine(),
        "cpu_model": cpu_model(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "cpu_count": os.cpu_count(),
        "threads": torch.get_num_threads(),
        "device": device,
    }
