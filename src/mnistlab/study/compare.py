"""Compare models into a run folder: train, test and assess every (model, seed), then summarise and report.

    from mnistlab.study.compare import run_compare
    from mnistlab.study.plan import plan_placement
    metrics = run_compare(["ann", "cnn"], {}, "runs/demo", seeds=[0, 1, 2], placement=plan_placement(workers=2))
    # seed protocol on MNIST: ANN about 97.4%, CNN about 98.9% test accuracy; the CNN's lead is significant

A comparison is a set of jobs, one per (model, seed); each trains, tests and
saves its checkpoint and its finished state, so an interrupted run resumes
job by job (and epoch by epoch within a job).
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import os
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import torch
from tqdm import tqdm

from mnistlab.evaluation.analysis import STATISTICS_METHODS, compare_models, summarise_model
from mnistlab.evaluation.assessment import non_digit_sets, robustness_record, variants_for
from mnistlab.evaluation.assessment_summary import summarise_model_assessment, summarise_robustness
from mnistlab.training.checkpoint import library_versions, load_checkpoint, write_checkpoint
from mnistlab.training.config import SEED_LIMIT, TrainConfig
from mnistlab.data.folders import open_dataset, open_recorded_dataset
from mnistlab.data.datasets import Dataset, dataset_record
from mnistlab.common.errors import ConfigError
from mnistlab.common.extras import require_extra
from mnistlab.study.executor import ContextLoader, Placement, TaskFailed, open_executor, run_all
from mnistlab.study.jobs import Job, JobProgress, JobResult, job_failed, load_job_context, run_job
from mnistlab.study.plan import plan_placement, resolve_configs, resolve_models, warn_without_native_bf16
from mnistlab.study.seed_groups import JobGroup, choose_training, group_jobs, run_group
from mnistlab.models.catalogue import BUILT_IN
from mnistlab.evaluation.cost import model_cost
from mnistlab.models.contract import build, check_model
from mnistlab.models.spec import ModelSpec
from mnistlab.reporting.card import write_model_cards
from mnistlab.reporting.report import write_report
from mnistlab.runs.arrays import build_run_arrays
from mnistlab.evaluation.robustness import model_logits_fn
from mnistlab.runs.folder import (PREDICTIONS_FILE, check_plan, checkpoint_name, load_finished, read_metrics,
                                  read_plan, save_finished, write_metrics, write_plan, write_run_arrays)
from mnistlab.runs.claim import check_run_folder, claimed, locked
from mnistlab.tracking.hooks import Trackers
from mnistlab.training.runtime import machine_record, resolve_device


def run_compare(
    models: Sequence[str | ModelSpec],
    settings: dict,
    out_dir: str | os.PathLike,
    *,
    seeds: Sequence[int] | None = None,
    model_settings: dict[str, dict] | None = None,
    robustness: bool = False,
    resume: bool = False,
    placement: Placement | None = None,
    data_dir: str | os.PathLike | None = None,
    progress: bool = True,
    force: bool = False,
    explain: bool = False,
    trackers: Trackers | None = None,
    seeds_together: str = "off",
) -> dict:
    """Train, test and assess each model once per seed; write checkpoints, metrics.json, predictions.npz and reports.

    `models` are registered names or specs of the user's own (see `models.spec`), each
    checked against the model contract on one batch before any training;
    `settings` are the user's TrainConfig choices (see `config.read_settings`);
    each model fills the rest from its recipe, then the study's defaults;
    `model_settings` maps a model to its own choices, which win over `settings`.
    `seeds` defaults to the one seed in the config. Every job also scores its
    calibration (and, on MNIST, its confidence on the non-digit sets found locally);
    with `robustness`, its accuracy on corrupted, shifted and rotated test images.
    With `resume`, (model, seed) jobs finished in `out_dir` are not trained again and a
    half-trained one continues from its last epoch. `placement` (see `plan_placement`)
    says where the jobs run: in turn here, in local workers or on Ray; for the same
    threads per job, the numbers are the same every way. The folder is locked while
    the run writes it. `out_dir` must be new or empty, or hold a compare run: continued
    with `resume`, or with `force` started afresh after deleting that run's own files
    (see `runs.claim.claimed`). With `explain`, each model's attributions for fixed test digits go
    into the report too (`explain.run_attributions`). `trackers` (see `tracking.open_trackers`) log each job as
    it finishes and the run at the end, from what the run saved. `seeds_together` ("off", "on" or "auto") says
    whether each model's seeds train as one batched computation (see `study.seed_groups`); the way each model
    trained is recorded in the plan and in metrics.json. Returns the metrics written to `metrics.json`.
    """
    placement = placement or plan_placement()
    trackers = trackers if trackers is not None else Trackers([])
    if explain:
        require_extra("explain", "compare --explain")
    specs = resolve_models(models)
    model_names = [spec.label for spec in specs]
    configs = resolve_configs(specs, settings, model_settings)
    local = [spec.target for spec in specs if spec.builtin and spec.target not in BUILT_IN]
    if local and (placement.workers > 1 or placement.ray_address):
        raise ConfigError(f"model(s) {', '.join(local)} were registered in this process only, so worker processes "
                          f"cannot build them; put the class in a file and name it as FILE.py:Class")
    first = configs[model_names[0]]
    seeds = list(seeds) if seeds is not None else [first.seed]
    if not seeds or len(set(seeds)) != len(seeds) or min(seeds) < 0 or max(seeds) >= SEED_LIMIT:
        shown = ", ".join(map(str, seeds[:10])) + (", ..." if len(seeds) > 10 else "")
        raise ConfigError(f"seeds [{shown}] are invalid; give distinct integers from 0 to 2**32 - 1, "
                          f"e.g. --seeds 5 or --seeds 0,1,2")
    jobs = [Job(spec, dataclasses.replace(configs[spec.label], seed=seed), robustness)
            for spec in specs for seed in seeds]
    warn_without_native_bf16(configs.values(), torch.device(placement.device))
    check_run_folder(out_dir, "compare", resume, force)  # before the dataset is read (or downloaded)
    dataset = open_dataset(first.dataset, data_dir, progress=progress)
    for spec in specs:
        check_model(spec, len(dataset.class_names))  # before the run folder is claimed or anything trains
    with claimed(out_dir, "compare", resume, force) as out_dir, contextlib.closing(trackers):
        training = choose_training(specs, configs, seeds, seeds_together, dataset, placement,
                                   read_plan(out_dir) if resume else None)
        plan = {"models": list(model_names), "seeds": seeds, "dataset": dataset.checksums,
                "threads": placement.threads, "device": torch.device(placement.device).type,
                "configs": {job_key(job): job.config.to_dict() for job in jobs}}
        if any(not spec.builtin for spec in specs):  # only then: plans of built-in runs stay as they were
            plan["model_specs"] = {spec.label: spec.to_record(with_source=False) for spec in specs}
        if robustness:
            plan["robustness"] = True  # only then: plans of plain runs stay as they were
        if training:
            plan["training"] = training  # how each model's seeds train: part of what fixes the numbers
        finished = resume_finished(out_dir, plan, jobs) if resume else start_plan(out_dir, plan)
        todo = [job for job in jobs if job_key(job) not in finished]
        trackers.start(out_dir, plan)
        for job, result in run_jobs(group_jobs(todo, jobs, training), dataset, placement, out_dir, data_dir, progress):
            if job_key(job) not in finished:  # a group's seeds finished before an interruption keep their files
                finished[job_key(job)] = save_job(out_dir, job, result, several_seeds=len(seeds) > 1)  # saved at once
                trackers.job_finished(out_dir, job.model_name, job.config.to_dict(), finished[job_key(job)][0])
        costs = {spec.label: measure_cost(spec, len(dataset.class_names),
                                          out_dir / finished[f"{spec.label}-seed{seeds[0]}"][0]["checkpoint"],
                                          placement.threads) for spec in specs}
        metrics = summarise_run(specs, seeds, configs, dataset, finished, torch.device(placement.device), costs)
        for name in model_names if training else []:
            metrics["models"][name]["training"] = training[name]
        write_run_arrays(out_dir, build_run_arrays(
            dataset.test_labels, stacked_outputs(finished, model_names, seeds, "predicted"),
            stacked_outputs(finished, model_names, seeds, "confidence"), dataset.test_images,
            stacked_outputs(finished, model_names, seeds, "log_probabilities")))
        write_metrics(out_dir, metrics)
        if explain:
            from mnistlab.explain.run_attributions import write_run_attributions  # needs the explain extra

            write_run_attributions(out_dir, metrics, dataset.test_images, dataset.test_labels, placement.device,
                                   progress, models={spec.label: spec for spec in specs})  # built from the run's specs
        write_report(out_dir, metrics)
        write_model_cards(out_dir, metrics)  # <checkpoint>.md beside every checkpoint
        trackers.run_finished(out_dir, metrics)
    return metrics


def start_plan(out_dir: Path, plan: dict) -> dict:
    """A new run: write its plan; nothing is finished yet."""
    write_plan(out_dir, plan)
    return {}


def resume_finished(out_dir: Path, plan: dict, jobs: list[Job]) -> dict:
    """A resumed run: check it is the same plan; return its finished jobs (job key -> (record, outputs))."""
    check_plan(out_dir, plan)
    finished = {}
    several = len(plan["seeds"]) > 1
    for job in jobs:
        done = load_finished(out_dir, job.model_name, job.config.seed)
        if (done is not None and "log_probabilities" in done[1]  # older runs kept no probabilities: redo
                and done[0].get("checkpoint") == checkpoint_name(job.model_name, job.config.seed, several)):
            finished[job_key(job)] = done  # (a record naming another file, inside the folder or not, is redone)
    return finished


def run_jobs(jobs: list[Job | JobGroup], dataset: Dataset, placement: Placement, out_dir: Path, data_dir,
             progress: bool) -> Iterator[tuple[Job, JobResult]]:
    """Run `jobs` (and groups of one model's seeds, `seed_groups.JobGroup`) where `placement` says; yield each
    (job, result) as it finishes (a group's, one per seed, when the group finishes).

    In this process a job shows per-epoch progress bars; side by side, one line per finished job.
    """
    if not jobs:
        return
    in_process = placement.workers == 1 and not placement.ray_address
    context = {"dataset": dataset, "device": placement.device, "progress": progress and in_process,
               "non_digits": non_digit_sets(dataset.name, data_dir) if placement.workers == 1 else {},
               "variants": variants_for(dataset.test_images) if in_process else None}
    loader = ContextLoader(load_job_context, (jobs[0].config.dataset, data_dir))  # a name or the user's folder
    tracker = JobProgress(len(jobs), placement.workers, progress and not in_process)
    with open_executor(placement, context, loader, "finished jobs are kept, continue with --resume") as executor:
        tasks = [(job, run_group if isinstance(job, JobGroup) else run_job, (job, str(out_dir))) for job in jobs]
        try:
            for job, result in run_all(executor, tasks, on_start=tracker.start):
                tracker.finish(job, executor.running())
                yield from zip(job.jobs, result) if isinstance(job, JobGroup) else [(job, result)]
        except TaskFailed as failure:
            raise job_failed(failure.key, failure.cause) from None


def stacked_outputs(finished: dict, model_names, seeds, key: str) -> dict[str, np.ndarray]:
    """Per model, one finished output `key` of every seed stacked: (S, N, ...)."""
    return {name: np.stack([finished[f"{name}-seed{seed}"][1][key] for seed in seeds]) for name in model_names}


def job_key(job: Job) -> str:
    """A job's name in the plan and the state folder: `<model>-seed<N>`."""
    return f"{job.model_name}-seed{job.config.seed}"


def save_job(out_dir: Path, job: Job, result: JobResult, several_seeds: bool) -> tuple[dict, dict]:
    """Write a finished job's checkpoint, then mark it finished; return (record, outputs) as `load_finished` does."""
    checkpoint = checkpoint_name(job.model_name, job.config.seed, several_seeds)
    write_checkpoint(out_dir / checkpoint, result.checkpoint)
    record = {**result.record, "checkpoint": checkpoint}
    save_finished(out_dir, job.model_name, job.config.seed, record, result.outputs)
    return record, result.outputs


def measure_cost(spec: ModelSpec, num_classes: int, checkpoint: Path, threads: int) -> dict:
    """A model's cost (see `evaluation.cost`) on this machine's CPU with the run's threads per job; the network is
    built afresh (its speed and size do not depend on the trained values), in a forked random state."""
    with torch.random.fork_rng(devices=[]):
        return model_cost(build(spec, num_classes), checkpoint, threads)


def summarise_run(specs: Sequence[ModelSpec], seeds, configs: dict[str, TrainConfig], dataset: Dataset,
                  finished: dict, device: torch.device, costs: dict[str, dict] | None = None) -> dict:
    """metrics.json of a run from its finished jobs: per model over seeds, pairwise comparisons, provenance."""
    model_names = [spec.label for spec in specs]
    labels = dataset.test_labels
    predicted = stacked_outputs(finished, model_names, seeds, "predicted")
    records = {name: [finished[f"{name}-seed{seed}"][0] for seed in seeds] for name in model_names}
    models = {}
    for name in model_names:
        models[name] = summarise_model(records[name], labels, predicted[name], dataset.class_names)
        models[name]["config"] = dataclasses.replace(configs[name], seed=seeds[0]).to_dict()
        spec = specs[model_names.index(name)]
        if not spec.builtin or spec.label != spec.target:
            models[name]["spec"] = spec.to_record(with_source=False)
        if costs:
            models[name]["cost"] = costs[name]
        models[name].update(summarise_model_assessment(
            records[name], [finished[f"{name}-seed{seed}"][1] for seed in seeds], labels))
    first_record = records[model_names[0]][0]
    robustness = {}
    if "robustness" in first_record:
        robustness["robustness"] = summarise_robustness(
            model_names, seeds, {name: [record["robustness"] for record in records[name]] for name in model_names},
            stacked_outputs(finished, model_names, seeds, "corruption_correct"))
    return {
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "seeds": seeds,
        "dataset": dataset_record(dataset, first_record["train_size"], first_record["validation_size"]),
        "machine": machine_record(device),
        "versions": library_versions(),
        "models": models,
        "statistics": STATISTICS_METHODS,
        "comparisons": compare_models(list(model_names), seeds, labels.astype(np.uint8), predicted),
        "predictions": PREDICTIONS_FILE,
        **robustness,
    }


def add_robustness(run_dir: str | os.PathLike, data_dir: str | os.PathLike | None = None, progress: bool = True,
                   device: str = "cpu", trust_code: bool = False) -> dict:
    """Score a finished run's checkpoints as `compare --robustness` does; rewrite metrics.json and the report.

    Each (model, seed) checkpoint is tested on the corrupted, shifted and rotated
    test images of the run's dataset (checked against the run's checksums).
    """
    metrics = read_metrics(run_dir)  # before the lock: a folder that is not a run gets no lock file
    with locked(run_dir, create=False) as run_dir:
        metrics = read_metrics(run_dir)
        dataset = open_recorded_dataset(metrics["dataset"], run_dir, data_dir, progress)
        names, seeds, labels = list(metrics["models"]), metrics["seeds"], dataset.test_labels.astype(np.int64)
        correct, variants = {name: [] for name in names}, variants_for(dataset.test_images)
        for name in names:
            for record in tqdm(metrics["models"][name]["seeds"], desc=f"robustness {name}", disable=not progress):
                model, state = load_checkpoint(run_dir / record["checkpoint"], trust_code=trust_code)
                logits_fn = model_logits_fn(model.to(resolve_device(device)), state["config"].get("precision", "fp32"))
                record["robustness"], rows = robustness_record(logits_fn, dataset.test_images, labels, variants)
                correct[name].append(rows)
        metrics["robustness"] = summarise_robustness(
            names, seeds, {name: [record["robustness"] for record in metrics["models"][name]["seeds"]] for name in names},
            {name: np.stack(rows) for name, rows in correct.items()})
        write_metrics(run_dir, metrics)
        write_report(run_dir, metrics)
    return metrics
