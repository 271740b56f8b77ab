"""A comparison's jobs: one (model, seed) each, run by any executor (`study.executor`) with the same numbers.

A job is one (model, seed): train, test, and hand back the record, the per-image
test outputs and the checkpoint's contents. Workers only compute; the driver
(`study.run_compare`) writes the run folder, so a worker killed at any moment
costs at most its own job, which is run again. Where the run folder is at hand, a
job saves each finished epoch in `state/` and a rerun continues from there;
training is deterministic, so a rerun or a continued job gives the numbers of an
undisturbed one.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from mnistlab.evaluation.assessment import assess_job, non_digit_sets, variants_for
from mnistlab.training.checkpoint import checkpoint_contents
from mnistlab.training.config import TrainConfig
from mnistlab.data.folders import open_dataset
from mnistlab.data.datasets import Dataset, dataset_record
from mnistlab.common.errors import MnistlabError, first_line
from mnistlab.evaluation.evaluate import evaluate
from mnistlab.evaluation.robustness import ImageVariants
from mnistlab.models import count_parameters
from mnistlab.models.spec import ModelSpec
from mnistlab.runs.folder import PLAN_FILE, STATE_DIR, load_epoch_state, save_epoch_state
from mnistlab.training.train import TrainResult, train

@dataclass(frozen=True)
class Job:
    """One (model, seed) of a comparison, with its fully resolved config."""

    model: ModelSpec | str  # a spec (a user's file travels in it as source text) or a registered name
    config: TrainConfig
    robustness: bool = False  # also score corrupted, shifted and rotated test images (`compare --robustness`)

    @property
    def model_name(self) -> str:
        """The model's label in the run folder."""
        return self.model.label if isinstance(self.model, ModelSpec) else self.model

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
                progress: bool = False, non_digits: dict[str, np.ndarray] | None = None,
                variants: ImageVariants | None = None) -> JobResult:
    """Train, test and assess one job; with `run_dir`, save each epoch's state there and continue from a saved one.

    `non_digits` maps a name to test images that are not digits (see `assessment.non_digit_sets`); `variants`
    (`assessment.variants_for`) shares the corrupted and rotated test images between the jobs of a process.
    """
    name, seed = job.model_name, job.config.seed
    resume_state = load_epoch_state(run_dir, name, seed) if run_dir is not None else None
    save = (lambda state: save_epoch_state(run_dir, name, seed, state)) if run_dir is not None else None
    result = train(job.model, dataset, job.config, progress=progress, on_epoch_end=save, resume_state=resume_state,
                   device=device)
    return finish_job(job, result, dataset, non_digits, variants)


def finish_job(job: Job, result: TrainResult, dataset: Dataset, non_digits: dict[str, np.ndarray] | None = None,
               variants: ImageVariants | None = None) -> JobResult:
    """Test and assess a job's trained model; its record, per-image outputs and checkpoint contents."""
    seed = job.config.seed
    start = time.perf_counter()
    evaluation = evaluate(result.model, dataset.test_images, dataset.test_labels, dataset.class_names,
                          precision=job.config.precision)
    assessed = assess_job(result.model, dataset, job.config, evaluation.logits, job.robustness, non_digits,
                          variants)
    evaluate_seconds = time.perf_counter() - start  # testing and assessing, the imports they need included
    scores = {"params": count_parameters(result.model), "train_seconds": result.train_seconds,
              **evaluation.metrics, "history": result.history, "not_sure_threshold": assessed.not_sure_threshold}
    record = {
        "seed": seed,
        **{key: scores[key] for key in ("test_accuracy", "test_loss", "train_seconds", "params", "history")},
        "train_size": result.train_size,
        "validation_size": result.validation_size,
        "evaluate_seconds": evaluate_seconds,
        **assessed.record,
    }
    outputs = {"predicted": evaluation.predictions.astype(np.uint8),
               "confidence": evaluation.probabilities.max(axis=1).astype(np.float32), **assessed.outputs}
    checkpoint = checkpoint_contents(result.model, job.model, job.config.to_dict(),
                                     dataset_record(dataset, result.train_size, result.validation_size), scores)
    return JobResult(record, outputs, checkpoint)


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


def load_job_context(dataset_name: str, data_dir) -> dict:
    """What every job of a comparison reads, built once in each local worker process: the dataset, verified, the
    non-digit sets (see `assessment.non_digit_sets`) and the test images' variants, made as first used."""
    dataset = open_dataset(dataset_name, data_dir, progress=False)
    return {"dataset": dataset, "non_digits": non_digit_sets(dataset_name, data_dir),
            "variants": variants_for(dataset.test_images)}


def run_job(context: dict, job: Job, run_dir: str) -> JobResult:
    """An executor's task: one job with the run's shared `context` (see `study.executor`).

    Where the run folder is reachable (always locally; on Ray, a one-machine cluster or a shared
    disk), each finished epoch is saved there and a rerun continues from it.
    """
    reachable = (Path(run_dir) / STATE_DIR / PLAN_FILE).is_file()
    return execute_job(job, context["dataset"], context["device"], run_dir if reachable else None,
                       progress=context.get("progress", False), non_digits=context.get("non_digits"),
                       variants=context.get("variants"))


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
