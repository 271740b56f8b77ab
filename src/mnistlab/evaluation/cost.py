"""What a model costs beside its accuracy: parameters, multiply-adds per image, checkpoint size and inference speed.

Multiply-adds are counted with PyTorch's own flop formulas (`torch.utils.flop_counter`)
on one image (two flops per multiply-add), so they are the same on every machine. The two
speeds are measured on this machine with the run's thread count: the median
latency of one image at a time, as `predict` and `serve` see it, and the
throughput of batches of `BATCH` images, as `evaluate` sees it.
"""

from __future__ import annotations

import os
import statistics
import time

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import flop_registry

from mnistlab.data.registry import IMAGE_SIDE
from mnistlab.models import count_parameters
from mnistlab.training.runtime import configured_runtime

SINGLE_RUNS = 50  # single-image forward passes timed (after WARMUP)
BATCH = 256  # images per batch for throughput, as `models.infer` runs them
BATCH_RUNS = 5
WARMUP = 5


class _FlopCounter(TorchDispatchMode):
    """The flops of the operations run under it, by PyTorch's formulas (`flop_registry`: matrix products,
    convolutions, attention), as `torch.utils.flop_counter.FlopCounterMode` counts an eager forward pass (tested).
    That mode's dispatch is wrapped to keep `torch.compile` out, which imports `torch._dynamo` (as long again as
    `import torch`) on first use; this one is never compiled, so it opts out of that wrapper."""

    @classmethod
    def _should_skip_dynamo(cls) -> bool:
        return False

    def __init__(self):
        super().__init__()
        self.flops = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        formula = flop_registry.get(func._overloadpacket)
        if formula is None and func is not torch.ops.prim.device.default:  # a composite: count what it runs
            with self:
                result = func.decompose(*args, **kwargs)
            if result is not NotImplemented:
                return result
        out = func(*args, **kwargs)
        if formula is not None:
            self.flops += formula(*args, **kwargs, out_val=out)
        return out


def multiply_adds(model: nn.Module) -> int:
    """Multiply-adds of one forward pass on one image, by PyTorch's flop formulas. A model built of higher-order
    operators (`torch.cond` and the like), which `_FlopCounter` does not take apart, is counted by PyTorch's
    `FlopCounterMode` itself (which counts the costlier branch)."""
    image = torch.rand(1, 1, IMAGE_SIDE, IMAGE_SIDE).contiguous(memory_format=torch.channels_last)
    try:
        with torch.inference_mode(), _FlopCounter() as counter:
            model.eval()(image)
        return counter.flops // 2
    except NotImplementedError:  # "no rule registered for HigherOrderOperator"
        from torch.utils.flop_counter import FlopCounterMode

        with torch.inference_mode(), FlopCounterMode(display=False) as counter:
            model.eval()(image)
        return counter.get_total_flops() // 2


def inference_speed(model: nn.Module, threads: int | None) -> dict:
    """Median single-image latency (ms) and batched throughput (images per second) on `threads` threads."""
    model.eval()
    single = torch.rand(1, 1, IMAGE_SIDE, IMAGE_SIDE).contiguous(memory_format=torch.channels_last)
    batch = torch.rand(BATCH, 1, IMAGE_SIDE, IMAGE_SIDE).contiguous(memory_format=torch.channels_last)
    with configured_runtime(threads), torch.inference_mode():
        for _ in range(WARMUP):
            model(single)
            model(batch)
        latencies = []
        for _ in range(SINGLE_RUNS):
            start = time.perf_counter()
            model(single)
            latencies.append(time.perf_counter() - start)
        start = time.perf_counter()
        for _ in range(BATCH_RUNS):
            model(batch)
        batch_seconds = time.perf_counter() - start
        used = torch.get_num_threads()
    return {"latency_ms_p50": 1000 * statistics.median(latencies),
            "images_per_second": BATCH * BATCH_RUNS / batch_seconds, "threads": used}


def model_cost(model: nn.Module, checkpoint: str | os.PathLike | None, threads: int | None) -> dict:
    """A model's cost record for metrics.json. "inference" holds the timed part, which differs run to run, and
    "checkpoint_bytes" varies by a few bytes too (the checkpoint records its training's timings)."""
    return {"params": count_parameters(model), "multiply_adds": multiply_adds(model),
            "checkpoint_bytes": os.path.getsize(checkpoint) if checkpoint is not None else None,
            "inference": inference_speed(model, threads)}
