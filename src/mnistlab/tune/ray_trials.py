"""What a tune study needs on a Ray cluster (`tune --ray ADDRESS`): the study served to the workers over gRPC.

Needs the `ray` extra (Ray and grpcio). The driver keeps the study in the run
folder's tune.db and alone counts and starts trials (`tune.search.run_trials`);
trials train as Ray tasks. While they run, the driver serves the study through
Optuna's gRPC storage proxy, in a child process: tasks report each epoch's
validation accuracy through it and ask the median pruner whether to stop, from any
machine, with no shared filesystem. The proxy listens on 127.0.0.1 for a cluster on
loopback, otherwise on this machine's address that faces the cluster, and stops
when the study ends, by error or Ctrl-C too.
"""

from __future__ import annotations

import contextlib
import dataclasses
import ipaddress
import multiprocessing
import os
import signal
import socket
import threading
import time
import warnings
from typing import Iterator

import optuna

from mnistlab.data.datasets import Dataset
from mnistlab.common.errors import MnistlabError

SERVER_START_TIMEOUT = 60  # seconds the study's proxy may take to start listening


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
