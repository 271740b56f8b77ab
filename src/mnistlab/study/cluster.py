"""The connection to an existing Ray cluster (`--ray ADDRESS`), for the executor's Ray tasks (`study.executor`).

Needs the `ray` extra: `pip install 'mnistlab[ray]'`. The driver puts the shared
context (the dataset) in Ray's object store once; each task asks for its CPUs
(and a GPU when the device is one) and returns its result to the driver, which
writes the run folder: workers need no shared filesystem.
"""

from __future__ import annotations

import contextlib
import socket
from typing import Iterator

from mnistlab.common.errors import ConfigError, first_line

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
