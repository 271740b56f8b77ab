"""Run a comparison's jobs as Ray tasks on an existing Ray cluster (`compare --ray ADDRESS`).

Needs the `ray` extra: `pip install 'mnistlab[ray]'`. The driver puts the
dataset in Ray's object store once; each task asks for its CPUs (and a GPU
when the device is one), trains and tests one job, and returns its result to
the driver, which writes the run folder: workers need no shared filesystem.
A worker process that dies is retried by Ray (`max_retries`); where the run
folder is reachable from the worker (a one-machine cluster, a shared disk),
the retry continues from the job's last saved epoch.
"""

from __future__ import annotations

import contextlib
import socket
from pathlib import Path
from typing import Iterator, Sequence

from mnistlab.datasets import Dataset
from mnistlab.errors import ConfigError, MnistlabError, first_line
from mnistlab.jobs import Job, JobProgress, JobResult, execute_job, job_failed
from mnistlab.run_folder import PLAN_FILE, STATE_DIR
from mnistlab.runtime import configured_runtime

MAX_RETRIES = 3  # times Ray reruns a task whose worker process died
CONNECT_TIMEOUT = 10  # seconds to wait for the cluster's HOST:PORT to answer before giving up


def require_ray():
    """The `ray` module, or a one-line error that says how to install it."""
    try:
        import ray
    except ImportError:
        raise ConfigError("--ray needs Ray; install it with: pip install 'mnistlab[ray]'") from None
    return ray


@contextlib.contextmanager
def connected(address: str) -> Iterator:
    """Connect this process to the Ray cluster at `address` (auto, host:port or ray://host:port) for the block.

    A connection the caller already made is used as it is and left open.
    """
    ray = require_ray()
    if ray.is_initialized():
        yield ray
        return
    try:
        check_listening(address)
        ray.init(address=address, logging_level="ERROR", log_to_driver=False, configure_logging=False)
    except (ConnectionError, RuntimeError, ValueError) as error:
        raise ConfigError(f"--ray {address}: cannot connect to a Ray cluster ({first_line(error, 160)}); "
                          f"start one with 'ray start --head' or check the address") from None
    try:
        yield ray
    finally:
        ray.shutdown()


def check_listening(address: str) -> None:
    """Raise ConnectionError when nothing answers at HOST:PORT (Ray itself would retry for minutes); "auto" passes."""
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        return  # "auto", or a form Ray judges itself
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=CONNECT_TIMEOUT).close()
    except OSError as error:
        raise ConnectionError(f"nothing answers at {host}:{port}: {error.strerror or error}") from None


def run_ray_job(job: Job, dataset: Dataset, device: str, threads: int, run_dir: str,
                non_digits: dict | None = None) -> JobResult:
    """The task body: train and test one job on a Ray worker (its own runtime; epoch state where reachable)."""
    reachable = (Path(run_dir) / STATE_DIR / PLAN_FILE).is_file()
    with configured_runtime(threads):
        return execute_job(job, dataset, device, run_dir if reachable else None, non_digits=non_digits)


def run_on_ray(jobs: Sequence[Job], dataset: Dataset, address: str, threads: int, device: str, run_dir: Path,
               progress: bool, non_digits: dict | None = None) -> Iterator[tuple[Job, JobResult]]:
    """Submit every job as a Ray task; yield (job, result) as they finish."""
    with connected(address) as ray:
        task = ray.remote(run_ray_job).options(
            num_cpus=threads, num_gpus=1 if device.startswith("cuda") else 0, max_retries=MAX_RETRIES,
            retry_exceptions=False,  # a job's own error (divergence, a bug) fails the same way every time
        )
        shared, shared_non_digits = ray.put(dataset), ray.put(non_digits)  # shipped once; every task reads them
        futures = {task.remote(job, shared, device, threads, str(Path(run_dir).resolve()), shared_non_digits): job
                   for job in jobs}
        slots = int(ray.cluster_resources().get("CPU", threads)) // max(threads, 1) or 1
        tracker = JobProgress(len(futures), slots, progress)
        for job in jobs:
            tracker.start(job)
        while futures:
            [done], _ = ray.wait(list(futures), num_returns=1)
            job = futures.pop(done)
            try:
                result = ray.get(done)
            except ray.exceptions.RayTaskError as error:
                raise job_failed(job, error.cause if error.cause is not None else error) from None
            except ray.exceptions.RayError as error:  # the worker died more than MAX_RETRIES times
                raise MnistlabError(f"{job.name}: the Ray worker failed {MAX_RETRIES + 1} times "
                                    f"({type(error).__name__}); finished jobs are kept, continue with --resume") from None
            tracker.finish(job, list(futures.values()))
            yield job, result
