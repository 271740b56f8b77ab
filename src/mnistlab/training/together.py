"""Train the seeds of one model together: S copies as one batched computation, each seed's numbers its own.

    results = train_together("ann", dataset, [replace(config, seed=seed) for seed in range(5)])

Each seed is built exactly as `train.train` builds it (`torch.manual_seed(seed)`, then
the constructor), splits and orders its batches with its own generator, and keeps its
own Adam state. The S models' parameters are stacked (`torch.func.stack_module_state`),
their forward passes and losses run under `torch.func.vmap` with each seed's own batch,
(S, B, 1, 28, 28) in, and the S per-seed mean losses are summed: the parameters are
disjoint, so each seed's gradient is exactly its own. One fused Adam over the stacked
tensors equals S separate ones (the update is elementwise; the schedule is per step,
the same for every seed). The numbers agree with one-at-a-time training to float
rounding, not bit for bit (batched kernels add up in another order), so a run records
which way it trained (`SEEDS_TOGETHER` or `ONE_AT_A_TIME`) and repeats that way.

Only models whose training step draws no random numbers and keeps no buffers can
train this way: under vmap, dropout would draw from one stream for all seeds, and
batch norm's running statistics are buffers updated in place (`together_unsupported`).
"""

from __future__ import annotations

import copy
import dataclasses
import time
import types
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, stack_module_state, vmap
from tqdm import tqdm

from mnistlab.common.errors import TrainingDiverged, first_line
from mnistlab.data.datasets import Dataset
from mnistlab.data.splits import split_indices
from mnistlab.models import images_to_tensor, infer
from mnistlab.models.contract import build
from mnistlab.models.spec import ModelSpec, as_spec
from mnistlab.training.config import TrainConfig
from mnistlab.training.train import TrainResult, augment_batch, build_optimizer, train_epoch

ONE_AT_A_TIME = "one-at-a-time"
SEEDS_TOGETHER = "seeds-together"


class SeedStack:
    """S models of one architecture as stacked parameters (S, ...) and one batched forward pass and loss."""

    def __init__(self, models: list[nn.Module]):
        self.count = len(models)
        self.parameters, self.buffers = stack_module_state(models)  # leaves that require grad: (S, *shape)
        self.skeleton = copy.deepcopy(models[0]).to("meta")  # the architecture only: no memory, no values

    def losses(self, images: torch.Tensor, labels: torch.Tensor,
               label_smoothing: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
        """Each seed's mean loss (S,) and logits (S, B, classes) on its own batch: images (S, B, 1, 28, 28),
        labels (S, B). randomness="error": a random operation in the forward pass raises instead of mixing seeds."""
        def seed_loss(parameters, buffers, seed_images, seed_labels):
            logits = functional_call(self.skeleton, (parameters, buffers), (seed_images,))
            return F.cross_entropy(logits, seed_labels, label_smoothing=label_smoothing), logits

        return vmap(seed_loss, randomness="error")(self.parameters, self.buffers, images, labels)

    def copy_into(self, models: list[nn.Module]) -> None:
        """Each seed's current weights into its own module (for validation, checkpoints and the result)."""
        with torch.no_grad():
            for seed, model in enumerate(models):
                for name, parameter in model.named_parameters():
                    parameter.copy_(self.parameters[name][seed])


def together_unsupported(model: str | ModelSpec, num_classes: int) -> str | None:
    """Why the model's seeds cannot train together (None when they can): it keeps buffers (batch norm's running
    statistics), draws random numbers in training (dropout), or fails or computes otherwise under vmap."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        models = [build(as_spec(model), num_classes) for _ in range(2)]
    buffers = [name for name, _ in models[0].named_buffers()]
    if buffers:
        return f"it keeps buffers that training updates ({', '.join(buffers[:3])}), e.g. batch norm statistics"
    images = torch.rand(2, 2, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    labels = torch.zeros(2, 2, dtype=torch.int64)
    try:
        losses, logits = SeedStack([model.train() for model in models]).losses(images, labels)
        losses.sum().backward()
        for seed, one in enumerate(models):
            torch.testing.assert_close(logits[seed], one(images[seed]), rtol=1e-4, atol=1e-5)
    except AssertionError:
        return "under torch.func.vmap its outputs differ from its own forward pass"
    except Exception as error:  # a random operation, .item(), data-dependent control flow...
        return f"it cannot run under torch.func.vmap ({type(error).__name__}: {first_line(error)})"
    return None


def train_together(
    model: str | ModelSpec,
    dataset: Dataset,
    configs: list[TrainConfig],
    progress: bool = True,
    on_epoch_end: Callable[[list[dict]], None] | None = None,
    resume_states: list[dict] | None = None,
    device: torch.device | str = "cpu",
) -> list[TrainResult]:
    """Train one model once per config (configs that differ only in their seed) as one batched computation.

    Returns one `TrainResult` per config, in order; `train_seconds` and each epoch's `seconds`
    are the group's wall time shared equally among its seeds. `on_epoch_end(states)` receives
    each seed's `train.training_state`-shaped dict after every epoch; passing them back as
    `resume_states` continues from that epoch with the same numbers.
    """
    if any(dataclasses.replace(config, seed=0) != dataclasses.replace(configs[0], seed=0) for config in configs):
        raise ValueError("train_together: the configs must differ only in their seed")
    device = torch.device(device)
    gpus = [device.index or 0] if device.type == "cuda" else []
    spec = as_spec(model)
    with torch.random.fork_rng(devices=gpus):  # the global streams are this run's only
        models, splits = [], []
        for config in configs:  # as `train.train` does it, seed by seed
            torch.manual_seed(config.seed)
            splits.append(split_indices(dataset.train_labels, config.validation_fraction, config.seed,
                                        config.limit_train, config.train_size))
            models.append(build(spec, num_classes=len(dataset.class_names)).to(device))
        return _train_group(spec, dataset, configs, models, splits, progress, on_epoch_end, resume_states, device)


def _train_group(spec, dataset, configs, models, splits, progress, on_epoch_end, resume_states,
                 device) -> list[TrainResult]:
    config, count = configs[0], len(configs)
    if len({len(train_part) for train_part, _ in splits}) != 1:
        raise ValueError("train_together: the seeds' training splits differ in size")
    inputs = images_to_tensor(dataset.train_images)
    labels = torch.from_numpy(dataset.train_labels.astype(np.int64))
    train_sets = [(inputs[train_part].to(device), labels[train_part].to(device)) for train_part, _ in splits]
    train_size = len(splits[0][0])
    stack = SeedStack(models)
    # `build_optimizer` reads only .parameters(): here the stacked tensors, in the models' order
    holder = types.SimpleNamespace(parameters=lambda: iter(stack.parameters.values()))
    steps_per_epoch = -(-train_size // config.batch_size)
    optimizer, scheduler = build_optimizer(holder, config, total_steps=config.epochs * steps_per_epoch)
    generators = [torch.Generator().manual_seed(seed_config.seed) for seed_config in configs]
    histories: list[list[dict]] = [[] for _ in configs]
    start = time.perf_counter()
    if resume_states is not None:
        histories = restore_group_state(resume_states, stack, optimizer, scheduler, generators)
        start -= resume_states[0]["train_seconds"] * count
    seeds = ", ".join(str(seed_config.seed) for seed_config in configs)
    for epoch in range(len(histories[0]) + 1, config.epochs + 1):
        epoch_start = time.perf_counter()
        train_losses, train_accuracies = train_group_epoch(
            stack, optimizer, scheduler, train_sets, config, generators,
            description=f"{spec.label} seeds {seeds} epoch {epoch}/{config.epochs}", progress=progress)
        stack.copy_into(models)
        for seed, (model, (_, validation_part)) in enumerate(zip(models, splits)):
            validation_logits = infer(model, inputs[validation_part], precision=config.precision)
            validation_labels = labels[validation_part]
            histories[seed].append({
                "epoch": epoch, "train_loss": train_losses[seed], "train_accuracy": train_accuracies[seed],
                "val_loss": F.cross_entropy(validation_logits, validation_labels).item(),
                "val_accuracy": (validation_logits.argmax(1) == validation_labels).float().mean().item(),
                "seconds": (time.perf_counter() - epoch_start) / count,
            })
        if progress:
            tqdm.write(f"{spec.label} seeds {seeds} epoch {epoch}/{config.epochs}: val_acc "
                       + " ".join(f"{history[-1]['val_accuracy']:.4f}" for history in histories)
                       + f" ({time.perf_counter() - epoch_start:.1f} s)")
        if on_epoch_end is not None:
            on_epoch_end(group_state(stack, optimizer, scheduler, generators, histories,
                                     (time.perf_counter() - start) / count))
    seconds = (time.perf_counter() - start) / count
    return [TrainResult(model=model.eval(), history=history, train_seconds=seconds, train_size=train_size,
                        validation_size=len(validation_part))
            for model, history, (_, validation_part) in zip(models, histories, splits)]


def train_group_epoch(stack: SeedStack, optimizer, scheduler, train_sets: list[tuple[torch.Tensor, torch.Tensor]],
                      config: TrainConfig, generators: list[torch.Generator], description: str = "",
                      progress: bool = False) -> tuple[list[float], list[float]]:
    """One pass per seed, each in its own seeded order, as `train.train_epoch` makes it; returns each seed's
    (mean train loss, train accuracy)."""
    stack.skeleton.train()
    size, device = len(train_sets[0][0]), train_sets[0][0].device
    orders = [torch.randperm(size, generator=generator).to(device) for generator in generators]
    loss_sums = torch.zeros(stack.count, dtype=torch.float64, device=device)
    correct = torch.zeros(stack.count, dtype=torch.int64, device=device)
    bf16 = torch.autocast(device.type, dtype=torch.bfloat16, enabled=config.precision == "bf16")
    for start in tqdm(range(0, size, config.batch_size), desc=description, unit="batch", leave=False,
                      disable=None if progress else True):
        batches = [order[start:start + config.batch_size] for order in orders]
        images = [inputs.index_select(0, batch) for (inputs, _), batch in zip(train_sets, batches)]
        if config.augment == "shift-rotate":  # each seed's draws from its own generator, in its own order
            images = [augment_batch(seed_images, generator) for seed_images, generator in zip(images, generators)]
        batch_labels = torch.stack([labels.index_select(0, batch) for (_, labels), batch in zip(train_sets, batches)])
        with bf16:  # forward and loss only; a no-op in fp32
            losses, logits = stack.losses(torch.stack(images), batch_labels, config.label_smoothing)  # (S,), (S, B, C)
        if not torch.isfinite(losses).all():
            raise TrainingDiverged(
                f"training diverged: {description or 'an epoch'}, step {start // config.batch_size + 1}: a seed's "
                f"loss became {losses.max().item()}; lower the learning rate (now {config.learning_rate:g}), "
                f"e.g. --lr {config.learning_rate / 10:g}")
        optimizer.zero_grad(set_to_none=True)
        losses.sum().backward()  # disjoint parameters: each seed's gradient is its own loss's
        optimizer.step()
        scheduler.step()
        loss_sums += losses.detach() * len(batches[0])
        correct += (logits.argmax(2) == batch_labels).sum(1)
    return (loss_sums / size).tolist(), (correct.double() / size).tolist()


def group_state(stack: SeedStack, optimizer, scheduler, generators, histories, train_seconds: float) -> list[dict]:
    """Each seed's share of the group's state, shaped as `train.training_state` (its own weights and Adam moments),
    marked with the way it trained and the group's seeds."""
    optimizer_state = optimizer.state_dict()
    states = []
    for seed, (generator, history) in enumerate(zip(generators, histories)):
        moments = {key: {name: value[seed].clone() if value.dim() else value.clone() for name, value in state.items()}
                   for key, state in optimizer_state["state"].items()}
        states.append({
            "training": SEEDS_TOGETHER,
            "group_size": stack.count,
            "model": {name: value[seed].detach().clone() for name, value in stack.parameters.items()},
            "optimizer": {"state": moments, "param_groups": optimizer_state["param_groups"]},
            "scheduler": scheduler.state_dict(),
            "generator": generator.get_state(),
            "torch_rng": torch.get_rng_state(),
            "history": [dict(record) for record in history],
            "train_seconds": train_seconds,
        })
    return states


def restore_group_state(states: list[dict], stack: SeedStack, optimizer, scheduler, generators) -> list[list[dict]]:
    """Load each seed's `group_state` share back into the stacked tensors; return the histories so far."""
    with torch.no_grad():
        for name, value in stack.parameters.items():
            value.copy_(torch.stack([state["model"][name] for state in states]))
    moments = {key: {name: torch.stack([state["optimizer"]["state"][key][name] for state in states])
                     if value.dim() else value for name, value in entry.items()}
               for key, entry in states[0]["optimizer"]["state"].items()}
    optimizer.load_state_dict({"state": moments, "param_groups": states[0]["optimizer"]["param_groups"]})
    scheduler.load_state_dict(states[0]["scheduler"])
    for generator, state in zip(generators, states):
        generator.set_state(state["generator"])
    torch.set_rng_state(states[0]["torch_rng"])
    return [[dict(record) for record in state["history"]] for state in states]


def resumable_group(states: list[dict | None]) -> list[dict] | None:
    """The seeds' saved states when they can continue the group together: all present, trained together in a
    group of this size, at the same epoch; otherwise None (the group starts again from its first epoch)."""
    if not states or any(state is None or state.get("training") != SEEDS_TOGETHER
                         or state.get("group_size") != len(states) for state in states):
        return None
    return states if len({len(state["history"]) for state in states}) == 1 else None


def probe_seconds(model: str | ModelSpec, config: TrainConfig, seeds: list[int], num_classes: int,
                  steps: int = 4, device: torch.device | str = "cpu") -> dict[str, float]:
    """Wall seconds of `steps` training steps of every seed, each way, through the training loops themselves
    (`train.train_epoch`, `train_group_epoch`), on this machine with its current threads: {ONE_AT_A_TIME: ...,
    SEEDS_TOGETHER: ...}. Random images; a one-step warm-up each way first. Leaves the random state as it was."""
    device = torch.device(device)
    config = dataclasses.replace(config, schedule="constant")  # a schedule's cost per step is nil; its checks are not
    generator = torch.Generator().manual_seed(0)
    images = torch.rand(steps * config.batch_size, 1, 28, 28, generator=generator).to(device)
    labels = torch.randint(num_classes, (len(images),), generator=generator).to(device)
    with torch.random.fork_rng(devices=[device.index or 0] if device.type == "cuda" else []):
        models = []
        for seed in seeds:
            torch.manual_seed(seed)
            models.append(build(as_spec(model), num_classes).to(device))
        stack = SeedStack([copy.deepcopy(one) for one in models])
        optimizers = [build_optimizer(one, config, 2 * steps) for one in models]
        stacked = build_optimizer(types.SimpleNamespace(parameters=lambda: iter(stack.parameters.values())), config,
                                  2 * steps)
        generators = [torch.Generator().manual_seed(seed) for seed in seeds]

        def one_at_a_time(count: int) -> None:
            for one, (optimizer, scheduler), seed_generator in zip(models, optimizers, generators):
                train_epoch(one, optimizer, scheduler, images[:count], labels[:count], config, seed_generator)

        def together(count: int) -> None:
            train_group_epoch(stack, *stacked, [(images[:count], labels[:count])] * len(seeds), config, generators)

        seconds = {}
        for way, run in ((ONE_AT_A_TIME, one_at_a_time), (SEEDS_TOGETHER, together)):
            run(config.batch_size)  # warm-up: first-call costs (kernel choice, vmap's set-up) are no part of a run
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            start = time.perf_counter()
            run(len(images))
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            seconds[way] = time.perf_counter() - start
    return seconds
