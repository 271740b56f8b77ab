"""Where a comparison's jobs run: one after another in this process, or side by side in local worker processes.

A job is one (model, seed): train, test, and hand back the record, the per-image
test outputs and the checkpoint's contents. Workers only compute; the driver
(`study.run_compare`) writes the run folder, so a worker killed at any moment
costs at most its own job, which is run again. Where the run folder is at hand, a
job saves each finished epoch in `state/` and a rerun continues from there;
training is deterministic, so a rerun or a continued job gives the numbers of an
undisturbed one.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import sys
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import torch

from mnistlab.assessment import assess_job, non_digit_sets
from mnistlab.checkpoint import checkpoint_contents
from mnistlab.config import TrainConfig
from mnistlab.custom_data import open_dataset
from mnistlab.datasets import Dataset, dataset_record
from mnistlab.errors import MnistlabError, first_line
from mnistlab.evaluate import evaluate
from mnistlab.models import count_parameters
from mnistlab.run_folder import load_epoch_state, save_epoch_state
from mnistlab.runtime import apply_runtime
from mnistlab.train import train

MAX_WORKER_DEATHS = 3  # worker processes that may die (killed, crashed) before a study gives up


@dataclass(frozen=True)
class Job:
    """One (model, seed) of a comparison, with its fully resolved config."""

    model_name: str
    config: TrainConfig
    robustness: bool = False  # also score corrupted, shifted and rotated test images (`compare --robustness`)

    @property
    def name(self) -> str:
        return f"{self.model_name} seed {self.config.seed}"


@dataclass
class JobResult:
    """What a finished job hands back to the driver."""

    record: dict  # seed, test accuracy and loss, train seconds, parameters, history, split sizes, assessment
    outputs: dict[str, np.ndarray]  # per test image: "predicted" (uint8), "confidence" (float32), and
    # `assessment.JobAssessment.outputs`: "log_probabilities" (float16), "corruption_correct" (with robustness)
    checkpoint: dict  # `checkpoint.checkpoint_contents`, weights on the CPU


def execute_job(job: Job, dataset: Dataset, device: str = "cpu", run_dir: str | os.PathLike | None = None,
                progress: bool = False, non_digits: dict[str, np.ndarray] | None = None) -> JobResult:
    """Train, test and assess one job; with `run_dir`, save each epoch's state there and continue from a saved one.

    `non_digits` maps a name to test images that are not digits (see `assessment.non_digit_sets`).
    """
    name, seed = job.model_name, job.config.seed
    resume_state = load_epoch_state(run_dir, name, seed) if run_dir is not None else None
    save = (lambda state: save_epoch_state(run_dir, name, seed, state)) if run_dir is not None else None
    result = train(name, dataset, job.config, progress=progress, on_epoch_end=save, resume_state=resume_state,
                   device=device)
    evaluation = evaluate(result.model, dataset.test_images, dataset.test_labels, dataset.class_names,
                          precision=job.config.precision)
    assessed = assess_job(result.model, dataset, job.config, evaluation.logits, job.robustness, non_digits)
    scores = {"params": count_parameters(result.model), "train_seconds": result.train_seconds,
              **evaluation.metrics, "history": result.history, "not_sure_threshold": assessed.not_sure_threshold}
    record = {
        "seed": seed,
        **{key: scores[key] for key in ("test_accuracy", "test_loss", "train_seconds", "params", "history")},
        "train_size": result.train_size,
        "validation_size": result.validation_size,
        **assessed.record,
    }
    outputs = {"predicted": evaluation.predictions.astype(np.uint8),
               "confidence": evaluation.probabilities.max(axis=1).astype(np.float32), **assessed.outputs}
    checkpoint = checkpoint_contents(result.model, name, job.config.to_dict(),
                                     dataset_record(dataset, result.train_size, result.validation_size), scores)
    return JobResult(record, outputs, checkpoint)


def run_sequential(jobs: Sequence[Job], dataset: Dataset, device: str, run_dir: Path, progress: bool,
                   non_digits: dict[str, np.ndarray] | None = None) -> Iterator[tuple[Job, JobResult]]:
    """Each job in turn, in this process (per-epoch progress bars when `progress`)."""
    for job in jobs:
        yield job, execute_job(job, dataset, device, run_dir, progress, non_digits)


class JobProgress:
    """One line per finished job on stderr: how many are done, which run, and about how long is left."""

    def __init__(self, total: int, parallel: int, enabled: bool):
        self.total, self.parallel, self.enabled = total, parallel, enabled
        self.durations: list[float] = []
        self.started: dict[str, float] = {}

    def start(self, job: Job) -> None:
        self.started[job.name] = time.monotonic()

    def finish(self, job: Job, running: Sequence[Job]) -> None:
        self.durations.append(time.monotonic() - self.started.pop(job.name))
        if not self.enabled:
            return
        done, left = len(self.durations), self.total - len(self.durations)
        eta = sum(self.durations) / done * left / min(self.parallel, max(left, 1))
        text = f"mnistlab: {done}/{self.total} jobs done ({job.name} in {self.durations[-1]:.0f} s)"
        if running:
            text += f"; running: {', '.join(other.name for other in running)}; about {eta / 60:.1f} min left"
        print(text, file=sys.stderr, flush=True)  # whole lines: nothing interleaves in a log file


_worker: dict = {}  # in a worker process only: its dataset, non-digit sets and device, set once by `_start_worker`


def _start_worker(threads: int, dataset_name: str, data_dir, devices: Sequence[str]) -> None:
    """Worker process set-up: its runtime, its device (one GPU per worker), and the dataset, loaded and verified."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the driver's to handle; it stops the workers
    apply_runtime(threads)  # for the life of this process, which exists only to run jobs
    number = multiprocessing.current_process().name.rpartition("-")[2]  # "SpawnProcess-3": the 3rd one started
    _worker["device"] = devices[int(number) % len(devices) if number.isdigit() else 0]
    _worker["dataset"] = open_dataset(dataset_name, data_dir, progress=False)
    _worker["non_digits"] = non_digit_sets(dataset_name, data_dir)


def _run_in_worker(job: Job, run_dir: str) -> JobResult:
    return execute_job(job, _worker["dataset"], _worker["device"], run_dir, non_digits=_worker["non_digits"])


def run_local(jobs: Sequence[Job], dataset_name: str, data_dir, run_dir: Path, workers: int, threads: int,
              devices: Sequence[str], progress: bool) -> Iterator[tuple[Job, JobResult]]:
    """Up to `workers` jobs at once, each in its own process with `threads` threads; yields jobs as they finish.

    A worker that dies (killed, crashed) takes the pool down with it; its job and the
    others not yet finished run again in a new pool, each from its last saved epoch.
    """
    pending, deaths = list(jobs), 0
    tracker = JobProgress(len(pending), workers, progress)
    context = multiprocessing.get_context("spawn")  # a fresh interpreter: no threads or locks inherited
    while pending:
        pool = ProcessPoolExecutor(max_workers=min(workers, len(pending)), mp_context=context,
                                   initializer=_start_worker, initargs=(threads, dataset_name, data_dir, list(devices)))
        futures = {pool.submit(_run_in_worker, job, str(run_dir)): job for job in pending}
        for job in pending[:workers]:
            tracker.start(job)
        try:
            while futures:
                done, _ = wait(futures, return_when=FIRST_COMPLETED)
                for future in done:
                    job = futures.pop(future)
                    try:
                        result = future.result()
                    except BrokenProcessPool:
                        raise
                    except Exception as error:
                        raise job_failed(job, error) from None
                    pending.remove(job)
                    waiting = [other for other in pending if other.name not in tracker.started]
                    if waiting:  # the pool takes jobs in order: the next one starts in the freed worker
                        tracker.start(waiting[0])
                    tracker.finish(job, [other for other in pending if other.name in tracker.started])
                    yield job, result
        except BrokenProcessPool:
            deaths += 1
            if deaths > MAX_WORKER_DEATHS:
                raise MnistlabError(f"worker processes died {deaths} times (running: "
                                    f"{', '.join(job.name for job in pending[:workers])}); out of memory? "
                                    f"Try fewer --workers; finished jobs are kept, continue with --resume") from None
            for job in pending:
                tracker.started.pop(job.name, None)
        finally:
            stop_pool(pool, kill=bool(futures))


def stop_pool(pool: ProcessPoolExecutor, kill: bool) -> None:
    """Shut the pool down; with `kill` (jobs still running after an error), kill its workers first.

    The executor alone would wait for the running jobs to finish. With nothing running,
    workers are let go normally, so they release the pool's queues and locks.
    """
    if kill:
        for process in list(getattr(pool, "_processes", {}).values()):  # no public API until Python 3.14
            if process.is_alive():
                process.kill()
    pool.shutdown(wait=True, cancel_futures=True)


def job_failed(job: Job, error: BaseException) -> MnistlabError:
    """A job's own error as a one-line `MnistlabError` that names the (model, seed)."""
    if isinstance(error, MemoryError) or "out of memory" in str(error).lower():
        return MnistlabError(f"{job.name} ran out of memory; try fewer --workers or a smaller --batch-size; "
                             f"finished jobs are kept, continue with --resume")
    if isinstance(error, MnistlabError):
        return MnistlabError(f"{job.name}: {error}")
    return MnistlabError(f"{job.name} failed ({type(error).__name__}: {first_line(error)}); finished jobs are kept, "
                         f"continue with --resume")


def default_devices(device: torch.device, workers: int) -> list[str]:
    """The device each worker uses: with `cuda` and several GPUs, one GPU per worker; otherwise all the same."""
    if device.type == "cuda" and device.index in (None, 0) and torch.cuda.device_count() > 1:
        return [f"cuda:{index}" for index in range(min(workers, torch.cuda.device_count()))]
    return [str(device)]
