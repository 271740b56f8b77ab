"""Load on `mnistlab serve` over loopback: concurrent clients for a fixed time; throughput, latency and memory.

    python -m benchmarks.serve_load                  # 8 clients for 20 s (from the repository root)
    python -m benchmarks.serve_load --clients 16 --seconds 60

The server runs in its own process (untrained checkpoints: the same cost per request as trained ones); clients
send the mix users send (canvas PNGs, a JPEG photo, JSON pixels). Prints requests per second, p50/p99 latency,
errors, and the server's resident memory after warm-up, at the end and at its highest, as JSON. Bounded: each
client stops at the deadline or after --max-requests, whichever comes first.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import threading
import time
from pathlib import Path

import httpx
import numpy as np

from tests.serve_support import memory_kib, request_mix, save_untrained_checkpoints, serve_process

WARM_UP_SECONDS = 3  # memory is compared from here on, once allocator pools and caches have filled


def run_load(base_url: str, pid: int, clients: int, seconds: float, max_requests: int) -> dict:
    """Drive `clients` threads against /api/predict for `seconds`; sample the server's RSS every 0.5 s."""
    mix = request_mix()
    latencies, errors, rss = [], [], []
    lock = threading.Lock()
    start = time.monotonic()
    stop_at = start + seconds

    def client(number: int) -> None:
        with httpx.Client(base_url=base_url, timeout=30) as session:
            for count in range(max_requests):
                if time.monotonic() >= stop_at:
                    return
                body, content_type = mix[(number + count) % len(mix)]
                began = time.perf_counter()
                try:
                    response = session.post("/api/predict", content=body, headers={"Content-Type": content_type})
                    ok = response.status_code == 200 and len(response.json()["predictions"]) == 2
                    problem = None if ok else f"{response.status_code}: {response.text[:200]}"
                except httpx.HTTPError as error:
                    problem = f"{type(error).__name__}: {error}"
                with lock:
                    latencies.append(time.perf_counter() - began)
                    if problem:
                        errors.append(problem)

    threads = [threading.Thread(target=client, args=(number,), daemon=True) for number in range(clients)]
    for thread in threads:
        thread.start()
    while any(thread.is_alive() for thread in threads):
        rss.append((time.monotonic() - start, memory_kib(pid) / 1024))
        time.sleep(0.5)
    elapsed = time.monotonic() - start
    settled = [megabytes for moment, megabytes in rss if moment >= WARM_UP_SECONDS] or [rss[-1][1]]
    p50, p99 = (float(value) * 1000 for value in np.percentile(latencies, [50, 99]))
    return {
        "clients": clients, "seconds": round(elapsed, 1), "requests": len(latencies), "errors": len(errors),
        "requests_per_second": round(len(latencies) / elapsed, 1), "p50_ms": round(p50, 1), "p99_ms": round(p99, 1),
        "rss_mib_after_warm_up": round(float(np.median(settled[:6])), 1),  # 3 s windows, ignoring spikes
        "rss_mib_at_end": round(float(np.median(settled[-6:])), 1), "rss_mib_max": round(max(settled), 1),
        "first_errors": errors[:5],
    }


def main(argv: list[str] | None = None) -> None:
    """Start a server, load it, print the figures as JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=8, help="concurrent clients (default: %(default)s)")
    parser.add_argument("--seconds", type=float, default=20, help="duration (default: %(default)s)")
    parser.add_argument("--max-requests", type=int, default=2000, help="per client (default: %(default)s)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as folder:
        save_untrained_checkpoints(Path(folder))
        with serve_process(Path(folder), Path(folder) / "server.log") as (base_url, server):
            figures = run_load(base_url, server.pid, args.clients, args.seconds, args.max_requests)
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
