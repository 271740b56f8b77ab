"""PyTorch's Adam and AdamW, stepped without importing its compiler (issue 23: start-up).

`torch.optim.Optimizer` wraps `add_param_group`, `zero_grad`, `state_dict`, `load_state_dict` and `step` so that
`torch.compile` leaves them alone; the first call of each imports `torch._dynamo`, about as long again as
`import torch` itself, which every `train` paid before its first step. Eager training never compiles them, so
these classes call the functions those wrappers wrap (`functools.wraps` keeps them as `__wrapped__`), with the
gradient mode a step sets as the wrapper does. The update is PyTorch's own, bit for bit, and the state dicts are
interchangeable with `torch.optim.Adam`'s and `AdamW`'s (tested). Where a PyTorch release has no such wrapper, its
method is called as it is.
"""

from __future__ import annotations

import inspect

import torch
from torch.optim import Optimizer


def _unwrapped(method):
    return inspect.unwrap(method)  # every layer: PyTorch's profiling hook may wrap `step` again


class _Eager:
    """The Optimizer methods that import `torch._dynamo` on first use, called without that wrapper."""

    def add_param_group(self, param_group: dict) -> None:
        _unwrapped(Optimizer.add_param_group)(self, param_group)

    def zero_grad(self, set_to_none: bool = True) -> None:
        _unwrapped(Optimizer.zero_grad)(self, set_to_none)

    def state_dict(self) -> dict:
        return _unwrapped(Optimizer.state_dict)(self)

    def load_state_dict(self, state_dict: dict) -> None:
        _unwrapped(Optimizer.load_state_dict)(self, state_dict)

    def step(self, closure=None):
        mro = type(self).__mro__
        own = next(cls for cls in mro[mro.index(_Eager) + 1:] if "step" in vars(cls))  # the PyTorch class's step
        with torch.set_grad_enabled(self.defaults["differentiable"]):  # what the wrapper does
            return _unwrapped(vars(own)["step"])(self, closure)


class Adam(_Eager, torch.optim.Adam):
    """`torch.optim.Adam`, stepped eagerly."""


class AdamW(_Eager, torch.optim.AdamW):
    """`torch.optim.AdamW`, stepped eagerly."""
