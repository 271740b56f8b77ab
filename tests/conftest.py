"""Shared fixtures: an isolated cache, no internet, tiny synthetic datasets, a local HTTP mirror."""

from __future__ import annotations

import functools
import hashlib
import http.server
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import settings

from mnistlab.common.cpu import prefer_passive_waiting
from mnistlab.data import registry
from mnistlab.data.registry import FILE_NAMES, DatasetFile, DatasetSpec
from mnistlab.data.idx import encode_idx

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATASETS = REPO_ROOT.parent / "shared" / "datasets"


# As the CLI does for its users before PyTorch loads: idle OpenMP threads sleep instead of spinning. The tests run
# the CLI in this process, after PyTorch loaded, and `make test` runs two workers on the machine's cores.
prefer_passive_waiting()

# Property tests draw the same examples on every run, so a red run means the code changed, not the draw; a
# failure found by exploring (HYPOTHESIS_PROFILE=explore) is kept as an @example beside the test.
settings.register_profile("repeatable", derandomize=True)
settings.register_profile("explore", derandomize=False)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "repeatable"))


MARKERS_BY_FIXTURE = {  # a test that uses the fixture gets the marker: `make test-fast` deselects all three
    "real_data_dir": pytest.mark.slow,  # reads the real datasets; most such tests train on them
    "chromium": pytest.mark.browser,
    "ray_cluster": pytest.mark.ray,
}


def pytest_collection_modifyitems(items):
    """Mark each test by what it needs (see MARKERS_BY_FIXTURE), so the fast suite needs none of it."""
    for item in items:
        for fixture, marker in MARKERS_BY_FIXTURE.items():
            if fixture in getattr(item, "fixturenames", ()):
                item.add_marker(marker)


@pytest.fixture(autouse=True)
def isolated_environment(tmp_path_factory, monkeypatch):
    """Every test gets an empty user cache and cannot download unless it asks to."""
    monkeypatch.setenv("MNISTLAB_HOME", str(tmp_path_factory.mktemp("mnistlab-home")))
    monkeypatch.setenv("MNISTLAB_OFFLINE", "1")
    monkeypatch.delenv("MNISTLAB_DATA_DIR", raising=False)


@pytest.fixture(scope="session")
def real_data_dir() -> Path:
    """The folder with the real MNIST and Fashion-MNIST files (read-only)."""
    folder = Path(os.environ.get("MNISTLAB_DATA_DIR") or SHARED_DATASETS)
    if not (folder / "mnist").is_dir():
        message = (f"real datasets not found at {folder}: set MNISTLAB_DATA_DIR to a folder holding mnist/ and "
                   f"fashion-mnist/, or set MNISTLAB_SKIP_REAL_DATA=1 to skip the tests that need them")
        if os.environ.get("MNISTLAB_SKIP_REAL_DATA") == "1":
            pytest.skip(message)
        pytest.fail(message)
    return folder


def make_tiny_arrays(seed: int = 0, train: int = 120, test: int = 40) -> dict[str, np.ndarray]:
    """Random uint8 images and balanced labels in the four roles."""
    rng = np.random.default_rng(seed)
    return {
        "train_images": rng.integers(0, 256, size=(train, 28, 28), dtype=np.uint8),
        "train_labels": (np.arange(train) % 10).astype(np.uint8),
        "test_images": rng.integers(0, 256, size=(test, 28, 28), dtype=np.uint8),
        "test_labels": (np.arange(test) % 10).astype(np.uint8),
    }


@pytest.fixture
def tiny_dataset(tmp_path, monkeypatch):
    """A registered dataset "tiny" with pinned checksums, its gzipped files in `data_dir/tiny/`.

    Returns (spec, data_dir, arrays, gz_bytes by role).
    """
    return register_tiny_dataset(tmp_path / "data", monkeypatch)


def write_idx_folder(folder: Path, arrays: dict[str, np.ndarray]) -> dict[str, bytes]:
    """Write `arrays` (role -> uint8 array) as the gzipped IDX files of a dataset folder; return each file's bytes."""
    import gzip

    folder.mkdir(parents=True, exist_ok=True)
    gz_bytes = {role: gzip.compress(encode_idx(array), mtime=0) for role, array in arrays.items()}
    for role, data in gz_bytes.items():
        (folder / f"{FILE_NAMES[role]}.gz").write_bytes(data)
    return gz_bytes


def register_tiny_dataset(data_dir: Path, monkeypatch):
    """Write the tiny dataset's files under `data_dir/tiny/` and register it for as long as `monkeypatch` lasts."""
    arrays = make_tiny_arrays()
    (data_dir / "tiny").mkdir(parents=True)
    gz_bytes = write_idx_folder(data_dir / "tiny", arrays)
    files = {}
    for role, array in arrays.items():
        payload = encode_idx(array)
        files[role] = DatasetFile(
            FILE_NAMES[role],
            hashlib.sha256(payload).hexdigest(),
            gz_md5=hashlib.md5(gz_bytes[role]).hexdigest(),
            gz_sha256=hashlib.sha256(gz_bytes[role]).hexdigest(),
        )
    spec = DatasetSpec("tiny", "synthetic test data", ("http://127.0.0.1:9/",), files, tuple("0123456789"))
    monkeypatch.setitem(registry.DATASETS, "tiny", spec)
    return spec, data_dir, arrays, gz_bytes


class _MirrorHandler(http.server.SimpleHTTPRequestHandler):
    """Serves `root/<mirror>/...`; the mirror named "corrupt" flips bytes in every file it serves."""

    def log_message(self, *args):  # keep test output clean
        pass

    def do_GET(self):
        mirror, _, rest = self.path.lstrip("/").partition("/")
        source = Path(self.server.roots.get(mirror, "/nonexistent")) / rest
        if not source.is_file():
            self.send_error(404)
            return
        body = bytearray(source.read_bytes())
        if mirror == "corrupt":
            body[len(body) // 2] ^= 0xFF
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def http_mirrors():
    """A local HTTP server on 127.0.0.1. Set `server.roots = {"good": folder, "corrupt": folder}`.

    Returns (server, base_url); mirrors are `base_url + name + "/"`, and unknown names answer 404.
    """
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_MirrorHandler))
    server.roots = {}
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server, f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


def run_cli(capsys, *argv):
    """Run `mnistlab` in-process; return (exit code, stdout, stderr)."""
    from mnistlab.cli.main import main

    code = main([*map(str, argv)])
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(code, err, *fragments):
    """Exit code 2 and exactly one stderr line, `mnistlab: error: ...`, holding every fragment."""
    assert code == 2, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("mnistlab: error: "), err
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under `folder` (relative path -> bytes), to prove a folder did not change."""
    if not folder.exists():
        return {}
    return {str(path.relative_to(folder)): path.read_bytes() for path in sorted(folder.rglob("*")) if path.is_file()}


def shared_tmp(tmp_path_factory, worker_id: str) -> Path:
    """The session's temporary folder that every xdist worker sees (`make test` runs two, one test file each)."""
    return tmp_path_factory.getbasetemp() if worker_id == "master" else tmp_path_factory.getbasetemp().parent


@pytest.fixture(scope="session")
def seed_protocol_run(real_data_dir, tmp_path_factory, worker_id) -> Path:
    """One full run of `mnistlab compare` with the defaults (slow: about 2 minutes), shared by the tests that need it,
    in every xdist worker: the first to need it runs it, the others wait for it."""
    from filelock import FileLock

    from mnistlab.cli.main import main

    shared = shared_tmp(tmp_path_factory, worker_id)
    out, done = shared / "seed-protocol" / "compare", shared / "seed-protocol.done"
    with FileLock(shared / "seed-protocol.lock"):
        if not done.exists():
            shutil.rmtree(out, ignore_errors=True)  # a worker that failed part way left it
            assert main(["--quiet", "--data-dir", str(real_data_dir), "compare", "--out", str(out)]) == 0
            done.touch()
    return out


CHROMIUM_FLAGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync",
]


@pytest.fixture(scope="session")
def chromium():
    """A headless Chromium (Debian's package, or $MNISTLAB_CHROMIUM) driven by Playwright."""
    executable = os.environ.get("MNISTLAB_CHROMIUM", "/usr/bin/chromium")
    if not Path(executable).exists():
        pytest.fail(f"{executable} not found; run scripts/install-chromium (make test does) or set MNISTLAB_CHROMIUM")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_FLAGS)
        yield browser
        browser.close()


ARTIFACTS = REPO_ROOT / "test-artifacts"  # screenshots and other files a person may want to look at after a run


@pytest.fixture(scope="module")
def ray_cluster(tmp_path_factory, worker_id):
    """A real one-node Ray cluster on 127.0.0.1 with 2 CPUs, for each test module that uses it; yields
    (address, environment for its drivers).

    `ray start --block` runs in a session of its own, so the end of the module (a failure
    included) stops this cluster's processes and no other Ray on the machine. One cluster
    runs at a time: a second would want the same default ports (Ray's client server's
    among them), so another xdist worker's module waits for this one's to end.
    """
    pytest.importorskip("ray", reason="Ray is a test extra: pip install -e '.[test]'")
    from filelock import FileLock

    with FileLock(shared_tmp(tmp_path_factory, worker_id) / "ray-cluster.lock"):
        yield from _ray_cluster(tmp_path_factory)


def _ray_cluster(tmp_path_factory):
    """Start the cluster, yield (address, environment for its drivers), stop it."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0",
           "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",  # binds every Ray server (and drivers) to 127.0.0.1 only
           "PYTHONPATH": os.pathsep.join([str(REPO_ROOT / "src"), str(REPO_ROOT / "tests"), os.environ.get("PYTHONPATH", "")])}  # this checkout, for
    # the workers: they import mnistlab and test helpers (pickled test classes)
    head = subprocess.Popen([str(Path(sys.executable).parent / "ray"), "start", "--head", "--block",
                             "--node-ip-address=127.0.0.1", f"--port={port}", "--num-cpus=2", "--include-dashboard=false",
                             "--disable-usage-stats", f"--temp-dir={tmp_path_factory.mktemp('ray')}"],
                            env=env, start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline, started = time.monotonic() + 180, []
        while not any("Ray runtime started" in line for line in started):
            assert head.poll() is None and time.monotonic() < deadline, "".join(started)[-2000:]
            started.append(head.stdout.readline())
        yield f"127.0.0.1:{port}", env
    finally:
        os.killpg(head.pid, signal.SIGKILL)  # the head and every process it started: nothing here needs saving
        head.wait(timeout=60)
        head.stdout.close()
