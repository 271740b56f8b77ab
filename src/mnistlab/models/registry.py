"""The model registry: `build_model(name)` returns a fresh, initialised network by its registered name.

Every model maps a batch of images (B, 1, 28, 28), float32 in [0, 1], to class
logits (B, num_classes): 10 by default (the digits), the dataset's class count
when trained on other data; softmax is applied only at prediction time. Register
a new model with `@register_model("name")`; its constructor takes `num_classes`,
and the tests cover it automatically.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch
from torch import nn

from mnistlab.common.errors import ConfigError
from mnistlab.data.registry import MAX_CLASSES

NUM_CLASSES = 10  # outputs of a model built without `num_classes`: the ten digits
MODELS: dict[str, Callable[..., nn.Module]] = {}
RECIPES: dict[str, dict] = {}  # model name -> TrainConfig fields it trains with unless the user says otherwise


def register_model(name: str, recipe: dict | None = None) -> Callable:
    """Decorator: add a model constructor to the registry under `name`, with its training recipe.

    A recipe is a dict of `TrainConfig` fields (schedule, epochs, ...); models
    without one train under the seed study's protocol.
    """

    def add(constructor: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        MODELS[name] = constructor
        RECIPES[name] = dict(recipe or {})
        return constructor

    return add


def check_model_names(names: list[str]) -> None:
    """Raise `ConfigError` unless every name is registered (checked before any slow work starts)."""
    unknown = [name for name in names if name not in MODELS]
    if unknown or not names:
        raise ConfigError(f"unknown model(s) {', '.join(unknown) or '(none given)'}; choose from: {', '.join(MODELS)}")


def build_model(name: str, num_classes: int = NUM_CLASSES, **arguments) -> nn.Module:
    """Build a registered model by name with `num_classes` outputs, in channels-last memory layout (faster
    convolutions on CPU). Only the output layer's size depends on `num_classes`: with 10 the random draws, and so
    the initial weights, are the same as ever."""
    check_model_names([name])
    if not (isinstance(num_classes, int) and 2 <= num_classes <= MAX_CLASSES):
        raise ConfigError(f"num_classes {num_classes!r} is out of range; a model classifies 2 to {MAX_CLASSES} classes")
    return MODELS[name](num_classes=num_classes, **arguments).to(memory_format=torch.channels_last)


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(parameter.numel() for parameter in model.parameters() if parameter.requires_grad)


def images_to_tensor(images: np.ndarray) -> torch.Tensor:
    """uint8 images (N, 28, 28) -> float32 (N, 1, 28, 28) in [0, 1], channels-last; `images` is never changed.

    PyTorch converts to float, into memory from its own allocator: for a training set, NumPy's `astype` into fresh
    pages is several times slower (docs/performance.md). A read-only array (a dataset's) is copied first, since
    PyTorch wraps one only with a warning, and so is one of the other byte order, which it does not wrap.
    """
    images = np.asarray(images)
    if not images.dtype.isnative:
        images = images.astype(images.dtype.newbyteorder("="))
    source = torch.from_numpy(np.require(images, requirements=["C", "W"]))
    tensor = source.unsqueeze(1).to(torch.float32, copy=True).div_(255.0)  # a copy even when already float32
    return tensor.contiguous(memory_format=torch.channels_last)


@torch.inference_mode()
def infer(model: nn.Module, inputs: torch.Tensor, batch_size: int = 256, precision: str = "fp32") -> torch.Tensor:
    """Logits (N, classes) on the CPU, float32, for `inputs` (N, 1, 28, 28), computed batch by batch in eval mode.

    Batches move to the model's device; "bf16" runs them under bfloat16 autocast. 256
    images a batch keeps the CNN's activations in the CPU's cache, which makes
    inference several times faster than large batches (benchmarks/inference.py).
    """
    model.eval()
    device = next(model.parameters()).device
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16"):
        batches = [model(inputs[start:start + batch_size].to(device)).float().cpu()
                   for start in range(0, len(inputs), batch_size)]
    return torch.cat(batches)
