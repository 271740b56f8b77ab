"""compare --seeds-together: which way each model's seeds train, and the job that trains them together.

`--seeds-together on` trains the seeds of each model as one batched computation
(`training.together`) wherever the model allows it; `off` trains them one at a time,
as every earlier version did; `auto` (the command line's default) measures a few steps
of both ways on this machine, at the run's threads, and trains together only where that
was clearly faster. The two ways agree to float rounding, not bit for bit, so the choice
is part of the plan (`state/plan.json`, key "training") and of metrics.json: `--resume`
keeps the recorded way without measuring again, and a rerun with the recorded way
(`on` or `off`) gives the same numbers bit for bit.

A model's seeds trained together are one task (a `JobGroup`), which runs in turn, in a
local worker or as a Ray task like any job, and hands back one `JobResult` per seed.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass
from pathlib import Path

from mnistlab.common.errors import ConfigError
from mnistlab.data.datasets import Dataset
from mnistlab.data.splits import split_indices
from mnistlab.models import images_to_tensor
from mnistlab.models.spec import ModelSpec
from mnistlab.runs.folder import PLAN_FILE, STATE_DIR, load_epoch_state, save_epoch_state
from mnistlab.study.executor import Placement
from mnistlab.study.jobs import Job, JobResult, finish_job
from mnistlab.training.config import TrainConfig
from mnistlab.training.runtime import configured_runtime
from mnistlab.training.together import (ONE_AT_A_TIME, SEEDS_TOGETHER, probe_seconds, resumable_group,
                                        together_unsupported, train_together)

CHOICES = ("auto", "on", "off")
PROBE_STEPS = 4  # timed training steps of each way per model (after one warm-up step each)
MIN_STEPS_TO_MEASURE = 400  # per seed: in shorter runs the probe would cost more than it could save
FASTER_BY = 0.9  # auto trains together only where its estimate is at most this share of one-at-a-time's


@dataclass(frozen=True)
class JobGroup:
    """Every seed of one model, trained together: one task that hands back one `JobResult` per job, in order."""

    jobs: tuple[Job, ...]

    @property
    def config(self) -> TrainConfig:
        return self.jobs[0].config

    @property
    def model_name(self) -> str:
        return self.jobs[0].model_name

    @property
    def name(self) -> str:
        return f"{self.model_name} seeds {','.join(str(job.config.seed) for job in self.jobs)} (together)"


def choose_training(specs: list[ModelSpec], configs: dict[str, TrainConfig], seeds: list[int], choice: str,
                    dataset: Dataset, placement: Placement, saved: dict | None = None) -> dict | None:
    """Per model label, how its seeds train: {"way", "choice", and a "reason" or the probe's figures}; None for a run of
    one seed (nothing to train together), so its plan reads as before.

    `saved` is the plan of the run being resumed: with `auto` its recorded ways are kept as they are; with `on` or
    `off` they are kept when they are the ways this choice gives (otherwise the plan check names the change).
    """
    if choice not in CHOICES:
        raise ConfigError(f"--seeds-together {choice!r} is invalid; choose one of {', '.join(CHOICES)}")
    if len(seeds) < 2:
        return None
    if saved is not None and choice == "auto":
        return saved.get("training")  # absent in runs of earlier versions: one at a time
    training = {spec.label: _choose(spec, configs[spec.label], seeds, choice, dataset, placement)
                for spec in specs}
    if saved is not None:
        recorded = saved.get("training") or {}
        ways = {label: record["way"] for label, record in training.items()}
        if ways == {label: recorded.get(label, {}).get("way", ONE_AT_A_TIME) for label in ways}:
            return saved.get("training")  # the same ways: the plan reads as it was written
    for label, record in training.items():
        if choice == "on" and record["way"] == ONE_AT_A_TIME:
            warnings.warn(f"--seeds-together on: {label}'s seeds train one at a time, as {record['reason']}",
                          stacklevel=3)
    return training


def _choose(spec: ModelSpec, config: TrainConfig, seeds: list[int], choice: str, dataset: Dataset,
            placement: Placement) -> dict:
    num_classes, train_images = len(dataset.class_names), len(dataset.train_labels)
    if choice == "off":
        return {"way": ONE_AT_A_TIME, "choice": choice}
    reason = together_unsupported(spec, num_classes)
    if reason is not None:
        return {"way": ONE_AT_A_TIME, "choice": choice, "reason": reason}
    if choice == "on":
        return {"way": SEEDS_TOGETHER, "choice": choice}
    if placement.ray_address:
        return {"way": ONE_AT_A_TIME, "choice": choice, "reason": "the jobs run on a Ray cluster, not measured here"}
    if steps_per_seed(config, train_images) < MIN_STEPS_TO_MEASURE:
        return {"way": ONE_AT_A_TIME, "choice": choice,
                "reason": f"fewer than {MIN_STEPS_TO_MEASURE} steps per seed: too short to be worth measuring"}
    with configured_runtime(placement.threads):
        seconds = probe_seconds(spec, config, seeds, num_classes, PROBE_STEPS, placement.device)
        setup = setup_seconds(dataset, config)
    # The whole run, estimated: every step of every seed, and each seed's set-up (split, images to a tensor), which
    # one-at-a-time repeats per seed and a group does once. Side by side, one-at-a-time's seeds spread over the
    # workers; a group is one task.
    steps = steps_per_seed(config, train_images) / PROBE_STEPS
    together = steps * seconds[SEEDS_TOGETHER] + setup
    one_at_a_time = (steps * seconds[ONE_AT_A_TIME] + len(seeds) * setup) / min(placement.workers, len(seeds))
    way = SEEDS_TOGETHER if together <= FASTER_BY * one_at_a_time else ONE_AT_A_TIME
    return {"way": way, "choice": choice, "probe_seconds": {name: round(value, 4) for name, value in seconds.items()},
            "probe_steps": PROBE_STEPS, "setup_seconds": round(setup, 4),
            "estimated_seconds": {ONE_AT_A_TIME: round(one_at_a_time, 1), SEEDS_TOGETHER: round(together, 1)}}


def setup_seconds(dataset: Dataset, config: TrainConfig) -> float:
    """What one seed's set-up before its first step takes here: its split, and its training images as a tensor."""
    start = time.perf_counter()
    train_part, _ = split_indices(dataset.train_labels, config.validation_fraction, config.seed, config.limit_train,
                                  config.train_size)
    images_to_tensor(dataset.train_images[train_part])
    return time.perf_counter() - start


def steps_per_seed(config: TrainConfig, train_images: int) -> int:
    """About how many optimiser steps one seed takes on a training set of `train_images` (before the split)."""
    images = min(config.train_size or config.limit_train or train_images, train_images)
    return config.epochs * -(-round(images * (1 - config.validation_fraction)) // config.batch_size)


def group_jobs(todo: list[Job], jobs: list[Job], training: dict | None) -> list:
    """The tasks that train `todo`: a `JobGroup` of *all* the seeds of each model that trains together (a group
    always holds the same seeds, so it repeats its numbers bit for bit), one `Job` for each of the others."""
    units, grouped = [], set()
    for job in todo:
        if (training or {}).get(job.model_name, {}).get("way") != SEEDS_TOGETHER:
            units.append(job)
        elif job.model_name not in grouped:
            grouped.add(job.model_name)
            units.append(JobGroup(tuple(other for other in jobs if other.model_name == job.model_name)))
    return units


def run_group(context: dict, group: JobGroup, run_dir: str) -> list[JobResult]:
    """An executor's task: train a model's seeds together, then test and assess each; one `JobResult` per seed.

    Where the run folder is reachable, each seed's share of every finished epoch is saved in `state/` and a rerun
    continues from there when every seed's share is of the same epoch (else the group starts again).
    """
    name, dataset = group.model_name, context["dataset"]
    reachable = (Path(run_dir) / STATE_DIR / PLAN_FILE).is_file()
    resume_states, save = None, None
    if reachable:
        resume_states = resumable_group([load_epoch_state(run_dir, name, job.config.seed) for job in group.jobs])

        def save(states: list[dict]) -> None:
            for job, state in zip(group.jobs, states):
                save_epoch_state(run_dir, name, job.config.seed, state)

    results = train_together(group.jobs[0].model, dataset, [job.config for job in group.jobs],
                             progress=context.get("progress", False), on_epoch_end=save,
                             resume_states=resume_states, device=context["device"])
    return [finish_job(job, result, dataset, context.get("non_digits"), context.get("variants"))
            for job, result in zip(group.jobs, results)]

