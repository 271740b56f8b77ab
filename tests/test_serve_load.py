"""A bounded load test on loopback: `mnistlab serve` in its own process, 8 clients for about 20 s.

Zero errors allowed; p50/p99 latency and the server's memory (RSS) are reported in
test-artifacts/serve-load.json. Bounded: every client stops at the deadline or after
MAX_REQUESTS_PER_CLIENT requests, whichever comes first. MNISTLAB_LOAD_SECONDS changes the duration.
"""

import json
import os
import subprocess
import sys
import threading
import time

import httpx
import numpy as np

from conftest import ARTIFACTS
from serve_support import draw_seven, encode, free_port, save_untrained_checkpoints

CLIENTS = 8
SECONDS = float(os.environ.get("MNISTLAB_LOAD_SECONDS", "20"))
MAX_REQUESTS_PER_CLIENT = 2000
WARM_UP_SECONDS = 3  # RSS is compared from here on, once allocator pools and caches have filled


def resident_megabytes(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:")) / 1024


def request_mix() -> list[tuple[bytes, str]]:
    """What users send: canvas PNGs (drawn at different places and sizes), a JPEG photo, and JSON pixels."""
    mix = []
    for shift in range(4):
        image = draw_seven(size=(280, 280), box=(40 + 10 * shift, 30, 200 + 15 * shift, 250), width=18 - 2 * shift)
        mix.append((encode(image), "image/png"))
    photo = draw_seven(size=(1200, 900), box=(300, 200, 700, 800), width=30, mode="RGB", ink=(40, 40, 70),
                       paper=(230, 225, 210))
    mix.append((encode(photo, "JPEG", quality=85), "image/jpeg"))
    pixels = np.zeros((28, 28))
    pixels[6:22, 12:15] = 1.0
    mix.append((json.dumps(pixels.ravel().tolist()).encode(), "application/json"))
    return mix


def test_serve_under_concurrent_load(tmp_path):
    save_untrained_checkpoints(tmp_path)  # untrained weights cost the same to run as trained ones
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "mnistlab", "serve", "--checkpoints", str(tmp_path),
                               "--port", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base_url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert server.poll() is None, server.stderr.read().decode()
            try:
                if httpx.get(base_url + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "server did not answer /healthz within 60 s"
            time.sleep(0.2)

        mix = request_mix()
        latencies, errors, rss = [], [], []
        lock = threading.Lock()
        start = time.monotonic()
        stop_at = start + SECONDS

        def client(number: int) -> None:
            with httpx.Client(base_url=base_url, timeout=30) as session:
                for count in range(MAX_REQUESTS_PER_CLIENT):
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

        threads = [threading.Thread(target=client, args=(number,), daemon=True) for number in range(CLIENTS)]
        for thread in threads:
            thread.start()
        while any(thread.is_alive() for thread in threads):
            rss.append((time.monotonic() - start, resident_megabytes(server.pid)))
            time.sleep(0.5)
        for thread in threads:
            thread.join(timeout=60)
        elapsed = time.monotonic() - start
        assert server.poll() is None, "the server died under load"
        assert httpx.get(base_url + "/healthz", timeout=5).status_code == 200
    finally:
        server.terminate()
        server.wait(timeout=20)

    settled = [megabytes for moment, megabytes in rss if moment >= WARM_UP_SECONDS]
    p50, p99 = (float(value) * 1000 for value in np.percentile(latencies, [50, 99]))
    early, late = float(np.median(settled[:6])), float(np.median(settled[-6:]))  # 3 s windows, ignoring spikes
    summary = {
        "clients": CLIENTS, "seconds": round(elapsed, 1), "requests": len(latencies), "errors": len(errors),
        "requests_per_second": round(len(latencies) / elapsed, 1), "p50_ms": round(p50, 1), "p99_ms": round(p99, 1),
        "rss_mb_after_warm_up": round(early, 1), "rss_mb_at_end": round(late, 1), "rss_mb_max": round(max(settled), 1),
        "first_errors": errors[:5],
    }
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "serve-load.json").write_text(json.dumps(summary, indent=2))
    print(f"\nserve load test: {summary}")
    assert errors == [], summary
    assert len(latencies) >= CLIENTS * 10, summary  # it really ran
    assert elapsed < SECONDS + 35, summary  # bounded: stops by itself
    assert late - early < max(30.0, 0.1 * early), summary  # memory stable: no per-request leak
