"""Where independent tasks run: in this process, in local worker processes, or as tasks on a Ray cluster.

`compare` runs its (model, seed) jobs and `tune` its trials through the same three
executors and the same rules:

    with open_executor(placement, context) as executor:
        executor.submit(key, function, *args)     # function(context, *args) runs wherever the executor runs it
        key, result = executor.next_finished()    # a task's own error comes back as TaskFailed(key, cause)

Every task of a run shares one *context* (the dataset and what else every task reads):
in this process it is passed as it is; each local worker process builds its own once,
with a `ContextLoader`; a Ray cluster gets it once through its object store. Each task
runs with `threads` CPU threads and deterministic kernels, set in the worker (or, in
this process, for as long as the executor is open).

The retry rule: a task whose process dies (killed, out of memory) runs again, in a
new worker, up to MAX_WORKER_DEATHS deaths for local workers and MAX_RETRIES per task
on Ray; a task that raises is not retried (it would fail the same way again).
"""

from __future__ import annotations

import contextlib
import multiprocessing
import signal
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Sequence

from mnistlab.common.errors import MnistlabError
from mnistlab.training.runtime import apply_runtime, configured_runtime

MAX_WORKER_DEATHS = 3  # local worker processes that may die (killed, crashed) before a run gives up
MAX_RETRIES = 3  # times Ray reruns a task whose worker process died


@dataclass(frozen=True)
class Placement:
    """Where a run's tasks go and with how many threads each."""

    workers: int = 1  # tasks at once in local worker processes (1: one after another in this process)
    threads: int = 1  # CPU threads per task
    device: str = "cpu"  # torch device of this process and local workers (one GPU each with several)
    devices: tuple[str, ...] = ()  # local workers' devices, by worker number (default: `device` for all)
    ray_address: str | None = None  # run on this Ray cluster instead (auto, HOST:PORT or ray://HOST:PORT)
    ray_at_once: int | None = None  # at most this many Ray tasks at once (default: as many as its CPUs allow)


@dataclass(frozen=True)
class ContextLoader:
    """How a local worker process builds the shared context: `function(*arguments)`, called once per worker."""

    function: Callable[..., dict]
    arguments: tuple = field(default_factory=tuple)


class TaskFailed(Exception):
    """A task raised, wherever it ran: `key` names it, `cause` is its own exception (callers word it as one
    line, naming the task)."""

    def __init__(self, key: Any, cause: BaseException):
        super().__init__(f"{key}: {cause}")
        self.key, self.cause = key, cause


class WorkerDied(MnistlabError):
    """Worker processes died more often than the retry rule allows."""


class InProcess:
    """Tasks one after another in this process, each run when `next_finished` asks for it (so progress bars and
    Ctrl-C behave as in a plain loop)."""

    capacity = 1

    def __init__(self, context: dict):
        self.context, self.queue = context, []

    def submit(self, key: Any, function: Callable, *arguments) -> None:
        self.queue.append((key, function, arguments))

    def running(self) -> list[Any]:
        return [key for key, _, _ in self.queue]

    def next_finished(self) -> tuple[Any, Any]:
        key, function, arguments = self.queue.pop(0)
        try:
            return key, function(self.context, *arguments)
        except Exception as error:
            raise TaskFailed(key, error) from None


_worker_context: dict = {}  # in a local worker process only: its context, built once by `_start_worker`


def _start_worker(threads: int, loader: ContextLoader, devices: Sequence[str]) -> None:
    """Worker process set-up: its runtime, its device (one GPU per worker), and the shared context."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the driver's to handle; it stops the workers
    apply_runtime(threads)  # for the life of this process, which exists only to run tasks
    number = multiprocessing.current_process().name.rpartition("-")[2]  # "SpawnProcess-3": the 3rd one started
    device = devices[int(number) % len(devices) if number.isdigit() else 0]
    _worker_context.update(loader.function(*loader.arguments), device=device)


def _run_in_worker(function: Callable, arguments: tuple) -> Any:
    return function(_worker_context, *arguments)


class LocalWorkers:
    """Up to `workers` tasks at once, each in a worker process of its own (spawned: a fresh interpreter).

    A worker that dies takes the pool down with it; the tasks that were running start again in a
    new pool, up to MAX_WORKER_DEATHS times in all.
    """

    def __init__(self, placement: Placement, loader: ContextLoader, death_hint: str):
        self.placement, self.loader, self.death_hint = placement, loader, death_hint
        self.capacity = placement.workers
        self.deaths = 0
        self.futures: dict[Future, tuple[Any, Callable, tuple]] = {}
        self.pool = self._new_pool()

    def _new_pool(self) -> ProcessPoolExecutor:
        devices = list(self.placement.devices or (self.placement.device,))
        return ProcessPoolExecutor(max_workers=self.placement.workers, mp_context=multiprocessing.get_context("spawn"),
                                   initializer=_start_worker, initargs=(self.placement.threads, self.loader, devices))

    def submit(self, key: Any, function: Callable, *arguments) -> None:
        self.futures[self.pool.submit(_run_in_worker, function, arguments)] = (key, function, arguments)

    def running(self) -> list[Any]:
        return [key for key, _, _ in self.futures.values()]

    def next_finished(self) -> tuple[Any, Any]:
        while True:
            done, _ = wait(self.futures, return_when=FIRST_COMPLETED)
            future = next(iter(done))
            key, function, arguments = self.futures.pop(future)
            try:
                return key, future.result()
            except BrokenProcessPool:
                self._restart([(key, function, arguments), *self.futures.values()])
            except Exception as error:
                raise TaskFailed(key, error) from None

    def _restart(self, tasks: list[tuple[Any, Callable, tuple]]) -> None:
        """A worker died: start a new pool and submit the unfinished tasks again, or give up."""
        self.deaths += 1
        self.futures.clear()
        stop_pool(self.pool, kill=True)
        if self.deaths > MAX_WORKER_DEATHS:
            running = ", ".join(str(key) for key, _, _ in tasks[:self.capacity])
            raise WorkerDied(f"worker processes died {self.deaths} times (running: {running}); out of memory? "
                             f"Try fewer --workers; {self.death_hint}")
        self.pool = self._new_pool()
        for key, function, arguments in tasks:
            self.submit(key, function, *arguments)

    def close(self) -> None:
        stop_pool(self.pool, kill=bool(self.futures))


def stop_pool(pool: ProcessPoolExecutor, kill: bool) -> None:
    """Shut the pool down; with `kill` (tasks still running after an error), kill its workers first.

    The executor alone would wait for the running tasks to finish. With nothing running,
    workers are let go normally, so they release the pool's queues and locks.
    """
    if kill:
        for process in list(getattr(pool, "_processes", {}).values()):  # no public API until Python 3.14
            if process.is_alive():
                process.kill()
    pool.shutdown(wait=True, cancel_futures=True)


def run_ray_task(function: Callable, context: dict, threads: int, arguments: tuple) -> Any:
    """The Ray task body: the task under this run's runtime on a Ray worker."""
    with configured_runtime(threads):
        return function(context, *arguments)


class RayTasks:
    """Tasks on a Ray cluster (needs the `ray` extra); the context goes to the object store once.

    Each task asks for `threads` CPUs (and a GPU when the device is one); Ray reruns a task
    whose worker died, up to MAX_RETRIES times.
    """

    def __init__(self, ray, placement: Placement, context: dict, death_hint: str):
        self.ray, self.death_hint = ray, death_hint
        self.threads = placement.threads
        self.remote = ray.remote(run_ray_task).options(
            num_cpus=placement.threads, num_gpus=1 if placement.device.startswith("cuda") else 0,
            max_retries=MAX_RETRIES,
            retry_exceptions=False,  # a task's own error (divergence, a bug) fails the same way every time
        )
        self.context = ray.put(context)  # shipped once; every task reads it
        slots = int(ray.cluster_resources().get("CPU", placement.threads)) // max(placement.threads, 1) or 1
        self.capacity = placement.ray_at_once or slots
        self.futures: dict = {}

    def submit(self, key: Any, function: Callable, *arguments) -> None:
        self.futures[self.remote.remote(function, self.context, self.threads, arguments)] = key

    def running(self) -> list[Any]:
        return list(self.futures.values())

    def next_finished(self) -> tuple[Any, Any]:
        [done], _ = self.ray.wait(list(self.futures), num_returns=1)
        key = self.futures.pop(done)
        try:
            return key, self.ray.get(done)
        except self.ray.exceptions.RayTaskError as error:
            raise TaskFailed(key, error.cause if error.cause is not None else error) from None
        except self.ray.exceptions.RayError as error:  # the worker died more than MAX_RETRIES times
            raise WorkerDied(f"{key}: the Ray worker failed {MAX_RETRIES + 1} times ({type(error).__name__}); "
                             f"{self.death_hint}") from None

    def close(self) -> None:
        for ref in self.futures:  # after an error or Ctrl-C
            self.ray.cancel(ref, force=True)


@contextlib.contextmanager
def open_executor(placement: Placement, context: dict, loader: ContextLoader | None = None,
                  death_hint: str = "finished work is kept, continue with --resume") -> Iterator:
    """The executor `placement` asks for, open for the block.

    `context` is what every task reads (in this process, or shipped to Ray); `loader` builds it
    in each local worker process instead, where there are several (`placement.workers` > 1).
    `death_hint` ends the message when workers keep dying (what is kept, how to continue).
    """
    if placement.ray_address:
        from mnistlab.study.cluster import connected  # Ray is an optional extra

        with connected(placement.ray_address) as ray:
            executor = RayTasks(ray, placement, context, death_hint)
            try:
                yield executor
            finally:
                executor.close()
    elif placement.workers > 1:
        if loader is None:
            raise ValueError("local workers need a ContextLoader")
        executor = LocalWorkers(placement, loader, death_hint)
        try:
            yield executor
        finally:
            executor.close()
    else:
        with configured_runtime(placement.threads):
            yield InProcess(context)


def run_all(executor, tasks: Sequence[tuple[Any, Callable, tuple]],
            on_start: Callable[[Any], None] = lambda key: None) -> Iterator[tuple[Any, Any]]:
    """Submit every task (key, function, arguments), keeping at most the executor's capacity running;
    yield (key, result) as each finishes."""
    waiting = list(tasks)
    while waiting or executor.running():
        while waiting and len(executor.running()) < executor.capacity:
            key, function, arguments = waiting.pop(0)
            executor.submit(key, function, *arguments)
            on_start(key)
        yield executor.next_finished()
