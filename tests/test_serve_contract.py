"""`mnistlab serve` keeps the contract its OpenAPI description states: Schemathesis runs all its checks against a
real server on 127.0.0.1 and finds no failure.

The checks: no 5xx; every status, content type, header and body as documented (the errors' `{"error": ...}`
included); schema-valid requests accepted and invalid ones refused with a 4xx; undocumented methods answered 405
with an Allow header. Settings in tests/schemathesis.toml (why 422 counts as an accepted answer to a valid image).
About 150 requests, seeded, so a run takes seconds and a failure reproduces.
"""

import subprocess
import sys
from pathlib import Path

import pytest

from serve_support import save_untrained_checkpoints, serve_process

CONFIG = Path(__file__).with_name("schemathesis.toml")
MAX_EXAMPLES = 40  # per operation and phase; enough for every media type and error path, under a minute


@pytest.mark.slow  # seconds of processes or a real server; make test runs it
def test_schemathesis_finds_no_break_of_the_documented_contract(tmp_path):
    save_untrained_checkpoints(tmp_path)
    log = tmp_path / "server.log"
    command = [sys.executable, "-m", "schemathesis.cli", "--no-color", "--config-file", str(CONFIG), "run",
               "--checks", "all", "--max-examples", str(MAX_EXAMPLES), "--seed", "0", "--workers", "1",
               "--request-timeout", "60"]
    with serve_process(tmp_path, log) as (base_url, server):
        result = subprocess.run([*command, f"{base_url}/openapi.json"], capture_output=True, text=True, timeout=300,
                                cwd=tmp_path)
        assert server.poll() is None, log.read_text()
    report = result.stdout[-8000:] + result.stderr[-2000:]
    assert result.returncode == 0, report
    assert "No issues found" in result.stdout, report
    assert "Traceback" not in log.read_text()
