"""`mnistlab serve` as users run it (uvicorn in its own process on 127.0.0.1): memory per request is bounded
and returns to idle after a burst, concurrent clients get no errors, a client that hangs up logs nothing.

The memory figures (RSS of the server process, from /proc) go to test-artifacts/serve-memory.json.
"""

import json
import socket
import threading
import time

import httpx
import pytest

from conftest import ARTIFACTS
from mnistlab.serve.app import MAX_DECODE_BYTES, MAX_DECODING
from serve_support import (memory_kib, png_of_zeros, request_mix, reset_peak_memory, save_untrained_checkpoints,
                           serve_process, with_text_chunks)

MIB = 1024 * 1024
WORST_CASE = (4096, 4096, 8, 6)  # the largest image the decode budget admits: 4096x4096 8-bit RGBA = 64 MiB decoded
TEXT_CHUNKS = 63  # zTXt chunks of 1 MB each: Pillow would inflate them to its 64 MiB cap if they were not dropped
WORKING_MIB = 48  # per decode beyond the decoded image: strips, PNG buffers, the model input


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    folder = tmp_path_factory.mktemp("serve-process")
    save_untrained_checkpoints(folder)
    log = folder / "server.log"
    with serve_process(folder, log) as (base_url, process):
        yield base_url, process, log


def post_all(base_url: str, bodies: list[tuple[bytes, str]]) -> list[httpx.Response]:
    """POST every (body, content type) to /api/predict, all at once, one thread each."""
    responses: list = [None] * len(bodies)

    def send(index: int) -> None:
        body, content_type = bodies[index]
        responses[index] = httpx.post(base_url + "/api/predict", content=body, timeout=120,
                                      headers={"Content-Type": content_type})
    threads = [threading.Thread(target=send, args=(index,)) for index in range(len(bodies))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=180)
    return responses


@pytest.mark.slow  # seconds of processes or a real server; make test runs it
def test_memory_per_request_is_bounded_and_returns_after_a_burst(server):
    base_url, process, _ = server
    worst = (with_text_chunks(png_of_zeros(*WORST_CASE, band=(1000, 3000), columns=(1500, 2600)), TEXT_CHUNKS), "image/png")
    for response in post_all(base_url, request_mix() + [worst]):  # warm up every code path once
        assert response.status_code == 200, response.text
    time.sleep(1)
    idle = memory_kib(process.pid) / 1024
    reset_peak_memory(process.pid)
    [one] = post_all(base_url, [worst])
    one_peak = memory_kib(process.pid, "VmHWM") / 1024
    reset_peak_memory(process.pid)
    burst = post_all(base_url, [worst] * 16)
    burst_peak = memory_kib(process.pid, "VmHWM") / 1024
    time.sleep(1)
    after = memory_kib(process.pid) / 1024
    figures = {"image": f"4096x4096 8-bit RGBA PNG (a white block on transparent) with {TEXT_CHUNKS} 1-MB zTXt chunks",
               "body_bytes": len(worst[0]), "idle_mib": round(idle),
               "one_request_peak_mib": round(one_peak), "sixteen_parallel_peak_mib": round(burst_peak),
               "idle_after_burst_mib": round(after), "max_decode_bytes": MAX_DECODE_BYTES, "max_decoding": MAX_DECODING}
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "serve-memory.json").write_text(json.dumps(figures, indent=2))
    print(f"\nserve memory: {figures}")
    assert one.status_code == 200 and all(response.status_code == 200 for response in burst), figures
    per_decode = MAX_DECODE_BYTES / MIB + WORKING_MIB
    assert one_peak - idle < 2 * per_decode, figures  # generous: twice the budget
    assert burst_peak - idle < 2 * MAX_DECODING * per_decode, figures  # 16 at once cost what MAX_DECODING do
    assert after - idle < 48, figures  # memory goes back after the burst


def test_an_image_over_the_decode_budget_is_refused_unread(server):
    """The issue's case: a 130 kB PNG of 4096x4096 16-bit RGBA pixels = 128 MiB decoded."""
    base_url, _, _ = server
    response = httpx.post(base_url + "/api/predict", content=png_of_zeros(4096, 4096, 16, 6), timeout=60,
                          headers={"Content-Type": "image/png"})
    assert response.status_code == 422
    assert f"134,217,728 bytes decoded, over the limit of {MAX_DECODE_BYTES:,}" in response.json()["error"]


def test_concurrent_clients_get_no_errors(server):
    base_url, process, _ = server
    mix = request_mix()
    bodies = [mix[(client + count) % len(mix)] for client in range(8) for count in range(4)]  # 8 clients x 4
    responses = post_all(base_url, bodies)
    problems = [f"{response.status_code}: {response.text[:200]}" for response in responses
                if response.status_code != 200 or len(response.json()["predictions"]) != 2]
    assert problems == []
    assert process.poll() is None


def test_a_client_that_hangs_up_mid_body_logs_nothing(server):
    base_url, _, log = server
    port = int(base_url.rsplit(":", 1)[1])
    for content_type in (b"image/png", b"multipart/form-data; boundary=x", b"application/json"):
        with socket.create_connection(("127.0.0.1", port)) as connection:
            connection.sendall(b"POST /api/predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: " + content_type
                               + b"\r\nContent-Length: 100000\r\n\r\n" + b"--x\r\n" + b"\0" * 1000)
            time.sleep(0.2)
    time.sleep(0.5)
    assert httpx.get(base_url + "/healthz", timeout=5).status_code == 200
    text = log.read_text()
    assert "Traceback" not in text and "Exception" not in text, text


def test_a_foreign_host_header_is_refused(server):
    base_url, _, _ = server
    response = httpx.get(base_url + "/api/models", headers={"Host": "rebound.example:8000"}, timeout=5)
    assert response.status_code == 400 and "rebound.example" in response.json()["error"]
    assert httpx.get(base_url.replace("127.0.0.1", "localhost") + "/api/models", timeout=5).status_code == 200
