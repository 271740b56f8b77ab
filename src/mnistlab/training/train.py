"""Train one model under a `TrainConfig`: seeded, one epoch record per epoch, resumable after any epoch.

The whole dataset stays in memory as one tensor and batches are taken by
index, so there are no data-loader workers to make runs slower or less
repeatable. The global random stream is seeded inside `torch.random.fork_rng`,
so a caller's own random state is the same after `train` as before; thread
count and deterministic kernels are the caller's (see `runtime`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from mnistlab.training.config import TrainConfig
from mnistlab.training.optim import Adam, AdamW
from mnistlab.data.datasets import Dataset
from mnistlab.data.splits import split_indices
from mnistlab.common.errors import ConfigError, TrainingDiverged
from mnistlab.models import images_to_tensor, infer
from mnistlab.models.contract import build
from mnistlab.models.spec import ModelSpec, as_spec


@dataclass
class TrainResult:
    """A trained model and how it got there."""

    model: nn.Module
    history: list[dict]  # one dict per epoch: train/val loss and accuracy, seconds
    train_seconds: float  # wall time of the optimisation loop, validation included
    train_size: int  # images trained on
    validation_size: int  # images held out for validation


def train(
    model: str | ModelSpec,
    dataset: Dataset,
    config: TrainConfig,
    progress: bool = True,
    on_epoch_end: Callable[[dict], None] | None = None,
    resume_state: dict | None = None,
    device: torch.device | str = "cpu",
) -> TrainResult:
    """Train `model` (a registered name or a spec) on `dataset`'s training split under `config`; the test split is never touched.

    `on_epoch_end(state)` receives a `training_state` dict after every epoch (to save it);
    passing such a dict back as `resume_state` continues from that epoch with the same numbers.
    On a GPU `device`, the training images live there as one tensor and batches are gathered there.
    """
    device = torch.device(device)
    gpus = [device.index or 0] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=gpus):  # seed the global streams (initial weights, dropout) for this run only
        torch.manual_seed(config.seed)
        return _train(as_spec(model), dataset, config, progress, on_epoch_end, resume_state, device)


def _train(spec, dataset, config, progress, on_epoch_end, resume_state, device) -> TrainResult:
    train_part, validation_part = split_indices(dataset.train_labels, config.validation_fraction, config.seed,
                                                config.limit_train, config.train_size)
    model = build(spec, num_classes=len(dataset.class_names)).to(device)
    # Each part is gathered as uint8 and converted alone: no float copy of every training image is held beside them.
    train_inputs = images_to_tensor(dataset.train_images[train_part]).to(device)
    validation_inputs = images_to_tensor(dataset.train_images[validation_part])
    labels = torch.from_numpy(dataset.train_labels.astype(np.int64))
    train_labels, validation_labels = labels[train_part].to(device), labels[validation_part]

    steps_per_epoch = -(-len(train_part) // config.batch_size)
    optimizer, scheduler = build_optimizer(model, config, total_steps=config.epochs * steps_per_epoch)
    generator = torch.Generator().manual_seed(config.seed)
    history = []
    start = time.perf_counter()
    if resume_state is not None:
        history = restore_training_state(resume_state, model, optimizer, scheduler, generator)
        start -= resume_state["train_seconds"]
    for epoch in range(len(history) + 1, config.epochs + 1):
        epoch_start = time.perf_counter()
        train_loss, train_accuracy = train_epoch(
            model, optimizer, scheduler, train_inputs, train_labels, config, generator,
            description=f"{spec.label} seed {config.seed} epoch {epoch}/{config.epochs}", progress=progress,
        )
        validation_logits = infer(model, validation_inputs, precision=config.precision)
        history.append({
            "epoch": epoch,
            "train_loss": train_loss,
            "train_accuracy": train_accuracy,
            "val_loss": F.cross_entropy(validation_logits, validation_labels).item(),
            "val_accuracy": (validation_logits.argmax(1) == validation_labels).float().mean().item(),
            "seconds": time.perf_counter() - epoch_start,
        })
        if progress:
            record = history[-1]
            tqdm.write(
                f"{spec.label} epoch {epoch}/{config.epochs}: loss {record['train_loss']:.4f} "
                f"acc {record['train_accuracy']:.4f} val_loss {record['val_loss']:.4f} "
                f"val_acc {record['val_accuracy']:.4f} ({record['seconds']:.1f} s)"
            )
        if on_epoch_end is not None:
            on_epoch_end(training_state(model, optimizer, scheduler, generator, history, time.perf_counter() - start))
    return TrainResult(
        model=model.eval(),
        history=history,
        train_seconds=time.perf_counter() - start,
        train_size=len(train_part),
        validation_size=len(validation_part),
    )


def training_state(model, optimizer, scheduler, generator, history: list[dict], train_seconds: float) -> dict:
    """Everything that decides the next epoch's numbers: weights, optimiser, schedule, both random streams."""
    return {
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "generator": generator.get_state(),  # batch order and augmentation
        "torch_rng": torch.get_rng_state(),  # the global stream (dropout)
        "history": [dict(record) for record in history],
        "train_seconds": train_seconds,
    }


def restore_training_state(state: dict, model, optimizer, scheduler, generator) -> list[dict]:
    """Load a `training_state` dict into freshly built objects; return the history so far."""
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    generator.set_state(state["generator"])
    torch.set_rng_state(state["torch_rng"])
    return [dict(record) for record in state["history"]]


def build_optimizer(
    model: nn.Module, config: TrainConfig, total_steps: int
) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler]:
    """The optimiser and per-step learning-rate schedule that `config` names (PyTorch's, stepped without its
    compiler: `training.optim`)."""
    # fused=True runs each parameter's whole Adam update in one kernel: the same update rule,
    # a third less time per step for the ANN, whose steps are dominated by such small operations.
    if config.optimizer == "adamw":
        optimizer = AdamW(model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay, fused=True)
    else:
        optimizer = Adam(model.parameters(), lr=config.learning_rate, fused=True)
    if config.schedule == "onecycle":
        if config.warmup_fraction * total_steps == 1:  # PyTorch divides by (warm-up steps - 1): it cannot run
            raise ConfigError(f"a one-cycle schedule over {total_steps} steps with warmup_fraction "
                              f"{config.warmup_fraction:g} has a warm-up of exactly one step, which PyTorch cannot "
                              f"run; change --epochs, --batch-size, --limit-train or warmup_fraction")
        # Linear rise from lr/25 to lr over the warm-up, then linear decay to about zero.
        scheduler = torch.optim.lr_scheduler.OneCycleLR(
            optimizer, max_lr=config.learning_rate, total_steps=total_steps, pct_start=config.warmup_fraction,
            anneal_strategy="linear", cycle_momentum=False,
        )
    elif config.schedule == "cosine":
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total_steps)
    else:
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
    return optimizer, scheduler


def augment_batch(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Random shifts (up to 2 px) and rotations (up to 10 degrees), one draw per image, seeded."""
    count = len(images)
    angles = (torch.rand(count, generator=generator) * 2 - 1) * (10 * torch.pi / 180)  # radians
    shifts = (torch.rand(count, 2, generator=generator) * 2 - 1) * (2 / 14)  # 2 px in [-1, 1] grid units
    cos, sin = torch.cos(angles), torch.sin(angles)
    theta = torch.stack([torch.stack([cos, -sin, shifts[:, 0]], 1), torch.stack([sin, cos, shifts[:, 1]], 1)], 1)
    grid = F.affine_grid(theta.to(images.device), list(images.shape), align_corners=False)
    warped = F.grid_sample(images.contiguous(), grid, align_corners=False, padding_mode="zeros")
    return warped.contiguous(memory_format=torch.channels_last)


def train_epoch(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    inputs: torch.Tensor,
    labels: torch.Tensor,
    config: TrainConfig,
    generator: torch.Generator,
    description: str = "",
    progress: bool = False,
) -> tuple[float, float]:
    """One pass in a seeded random order; returns (mean train loss, train accuracy) over the pass."""
    model.train()
    device = inputs.device
    order = torch.randperm(len(inputs), generator=generator).to(device)  # drawn on the CPU: the same on every device
    loss_sum = torch.zeros((), dtype=torch.float64, device=device)
    correct = torch.zeros((), dtype=torch.int64, device=device)
    bf16 = torch.autocast(device.type, dtype=torch.bfloat16, enabled=config.precision == "bf16")
    for start in tqdm(range(0, len(inputs), config.batch_size), desc=description, unit="batch", leave=False,
                      disable=None if progress else True):  # None: no bar in logs
        batch = order[start:start + config.batch_size]
        images, batch_labels = inputs.index_select(0, batch), labels.index_select(0, batch)  # 3x faster than inputs[batch]
        if config.augment == "shift-rotate":
            images = augment_batch(images, generator)
        with bf16:  # forward and loss only; a no-op in fp32
            logits = model(images)
            loss = F.cross_entropy(logits, batch_labels, label_smoothing=config.label_smoothing)
        if not torch.isfinite(loss):  # one more step would only spread NaN through the weights
            raise TrainingDiverged(
                f"training diverged: {description or 'an epoch'}, step {start // config.batch_size + 1}: the loss "
                f"became {loss.item()}; lower the learning rate (now {config.learning_rate:g}), "
                f"e.g. --lr {config.learning_rate / 10:g}")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
        loss_sum += loss.detach() * len(batch)
        correct += (logits.argmax(1) == batch_labels).sum()
    return loss_sum.item() / len(inputs), correct.item() / len(inputs)
