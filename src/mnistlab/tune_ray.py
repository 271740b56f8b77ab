"""Run a tune study's trials as Ray tasks on an existing Ray cluster (`tune --ray ADDRESS`).

Needs the `ray` extra (Ray and grpcio). The driver (this process) keeps the study
in the run folder's tune.db and is the only one that counts and starts trials, so
the budget is never overshot however many machines take part. It draws each
trial's settings as a local run does (the sampler seeded by (seed, slot)); a task
trains them on a worker. While trials run, the driver serves the study through
Optuna's gRPC storage proxy, in a child process: tasks report each epoch's
validation accuracy through it and ask the median pruner whether to stop, from any
machine, with no shared filesystem. The proxy listens on 127.0.0.1 for a cluster on
loopback, otherwise on this machine's address that faces the cluster, and stops
when the study ends, by error or Ctrl-C too.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib.util
import ipaddress
import multiprocessing
import os
import signal
import socket
import threading
import time
import warnings
from pathlib import Path
from typing import Iterator

import optuna
from optuna.trial import TrialState

from mnistlab.cluster import MAX_RETRIES, connected
from mnistlab.datasets import Dataset
from mnistlab.errors import ConfigError, MnistlabError
from mnistlab.run_folder import TUNE_DATABASE
from mnistlab.runtime import configured_runtime
from mnistlab.tune_trial import (STUDY_NAME, TuneTask, ask_trial, counted_trials, median_pruner, tell_trial, train_trial,
                                 trial_failed)

SERVER_START_TIMEOUT = 60  # seconds the study's proxy may take to start listening


def run_trials_on_ray(task: TuneTask, storage_url: str, dataset: Dataset, address: str, threads: int,
                      workers: int | None, run_dir: Path) -> None:
    """Start trials as Ray tasks until the study holds `task.trials`, at most `workers` at once.

    `workers=None` runs as many at once as the cluster has CPUs for (`threads` each).
    """
    if importlib.util.find_spec("grpc") is None:  # Optuna's storage proxy needs it: say so before starting anything
        raise ConfigError("tune --ray needs grpcio; install it with: pip install 'mnistlab[ray]'")
    with connected(address) as ray, study_server(storage_url, facing_address(ray, address)) as server:
        remote = ray.remote(run_ray_trial).options(
            num_cpus=threads, num_gpus=1 if task.device.startswith("cuda") else 0, max_retries=MAX_RETRIES,
            retry_exceptions=False,  # a trial's own error (a bug, no memory) fails the same way every time
        )
        at_once = workers or max(1, int(ray.cluster_resources().get("CPU", threads)) // threads)
        shared = ray.put(without_test_split(dataset))  # shipped once; every task reads it
        study = optuna.load_study(study_name=STUDY_NAME, storage=storage_url)
        running: dict = {}  # Ray object ref -> (trial, slot)
        try:
            while True:
                while len(running) < at_once and (slot := counted_trials(study)) < task.trials:
                    trial, values = ask_trial(study, task, slot)
                    # Trial ids have no public accessor; the worker needs it to report to this trial.
                    running[remote.remote(task, trial._trial_id, values, shared, threads, server)] = (trial, slot)
                if not running:
                    return
                [done], _ = ray.wait(list(running), num_returns=1)
                trial, slot = running.pop(done)
                outcome, accuracy = trial_result(ray, done, study, trial, run_dir)
                tell_trial(study, trial, task, slot, outcome, accuracy)
        finally:
            for ref in running:  # after an error or Ctrl-C: these trials stay running, --resume restarts them
                ray.cancel(ref, force=True)


def trial_result(ray, done, study: optuna.Study, trial: optuna.Trial, run_dir: Path) -> tuple[str, float | None]:
    """A finished task's (outcome, accuracy); its failure as a one-line error, the trial marked failed."""
    try:
        return ray.get(done)
    except ray.exceptions.RayTaskError as error:
        study.tell(trial, state=TrialState.FAIL)
        cause = error.cause if error.cause is not None else error
        if isinstance(cause, MnistlabError):
            raise MnistlabError(f"trial {trial.number}: {cause}") from None
        raise trial_failed(f"trial {trial.number}", cause) from None
    except ray.exceptions.RayError as error:  # the worker died more than MAX_RETRIES times
        study.tell(trial, state=TrialState.FAIL)
        raise MnistlabError(f"trial {trial.number}: the Ray worker failed {MAX_RETRIES + 1} times "
                            f"({type(error).__name__}); finished trials are kept in {run_dir / TUNE_DATABASE}, "
                            f"continue with --resume") from None


def run_ray_trial(task: TuneTask, trial_id: int, values: dict, dataset: Dataset, threads: int,
                  server: tuple[str, int]) -> tuple[str, float | None]:
    """The task body: train one trial's settings on a Ray worker, reporting each epoch through the study's proxy."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)  # the proxy is new in Optuna 4.2
        storage = optuna.storages.GrpcStorageProxy(host=server[0], port=server[1])
    try:
        # The driver drew the settings already; this study object only reports and consults the pruner.
        study = optuna.load_study(study_name=STUDY_NAME, storage=storage, pruner=median_pruner(),
                                  sampler=optuna.samplers.RandomSampler())
        with configured_runtime(threads):
            return train_trial(optuna.Trial(study, trial_id), task, dataset, values)
    finally:
        storage.close()


def without_test_split(dataset: Dataset) -> Dataset:
    """The dataset with an empty test split: trials never read it, so it is not shipped to the workers."""
    return dataclasses.replace(dataset, test_images=dataset.train_images[:0], test_labels=dataset.train_labels[:0])


def facing_address(ray, address: str) -> str:
    """This machine's address as the cluster reaches it: 127.0.0.1 for a cluster on loopback, else the address
    of the interface that routes to the head node."""
    head = ray.get_runtime_context().gcs_address if address == "auto" else address.removeprefix("ray://")
    host = (head.rpartition(":")[0] or head).strip("[]")  # "10.0.0.5:6379" -> "10.0.0.5"
    ip = socket.gethostbyname(host)
    if ipaddress.ip_address(ip).is_loopback:
        return "127.0.0.1"
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.connect((ip, 9))  # a UDP "connect" sends nothing; it only picks the outgoing interface
        return probe.getsockname()[0]


@contextlib.contextmanager
def study_server(storage_url: str, host: str) -> Iterator[tuple[str, int]]:
    """Serve the study at `storage_url` on `host` (a free port) from a child process; yield (host, port)."""
    import grpc

    with socket.socket() as probe:
        probe.bind((host, 0))
        port = probe.getsockname()[1]
    context = multiprocessing.get_context("spawn")  # a fresh interpreter: no threads or locks inherited
    server = context.Process(target=_serve_study, args=(storage_url, host, port), name="mnistlab-study-server")
    server.start()
    try:
        deadline = time.monotonic() + SERVER_START_TIMEOUT
        with grpc.insecure_channel(f"{host}:{port}") as channel:
            ready = grpc.channel_ready_future(channel)
            while not ready.done():
                if not server.is_alive() or time.monotonic() > deadline:
                    raise MnistlabError(f"the study's server could not listen on {host}:{port}; check that this "
                                        f"machine accepts connections there from the cluster")
                time.sleep(0.05)
        yield host, port
    finally:
        server.terminate()
        server.join(timeout=10)
        if server.is_alive():
            server.kill()
            server.join()


def _serve_study(storage_url: str, host: str, port: int) -> None:
    """The server process: serve the study until the driver stops it, or exits without doing so."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the driver's to handle; it stops this process
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # no "Server started" lines in the user's terminal
    warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
    parent = multiprocessing.parent_process()
    threading.Thread(target=lambda: (parent.join(), os._exit(0)), daemon=True).start()  # a killed driver
    optuna.storages.run_grpc_proxy_server(optuna.storages.get_storage(storage_url), host=host, port=port)
