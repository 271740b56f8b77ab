"""Study throughput: the same comparison sequential, with local workers, and through a local Ray cluster.

Each way runs `mnistlab compare --models ann,cnn --seeds 4` in a fresh process,
timed from process start to the report written, one after another in one
session; the numbers of every run are checked to be the same (bit for bit for
the same per-job thread count).

    python -m benchmarks.throughput                   # needs the ray extra for the Ray row
    python -m benchmarks.throughput --ways sequential,workers
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

STUDY = ["--models", "ann,cnn", "--seeds", "4"]


def timed_compare(out: Path, *extra: str, env: dict | None = None) -> dict:
    """`mnistlab compare` of the study in a new process: wall seconds and the per-job train seconds."""
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "mnistlab", "--quiet", "compare", *STUDY, "--out", str(out), *extra],
                   check=True, stdout=subprocess.DEVNULL, env=env)
    wall = time.perf_counter() - start
    metrics = json.loads((out / "metrics.json").read_text())
    jobs = [record["train_seconds"] for result in metrics["models"].values() for record in result["seeds"]]
    accuracies = {name: [record["test_accuracy"] for record in result["seeds"]]
                  for name, result in metrics["models"].items()}
    return {"wall_seconds": wall, "job_train_seconds": jobs, "accuracies": accuracies}


def start_ray(temp_dir: Path) -> tuple[str, dict]:
    """A one-node Ray cluster on 127.0.0.1 with this machine's cores; returns (address, environment)."""
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    subprocess.run([str(Path(sys.executable).parent / "ray"), "start", "--head", "--node-ip-address=127.0.0.1",
                    f"--port={port}", f"--num-cpus={os.cpu_count()}", "--include-dashboard=false",
                    "--disable-usage-stats", f"--temp-dir={temp_dir}"],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    return f"127.0.0.1:{port}", env


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ways", default="sequential,workers,ray", help="which ways to run (default: %(default)s)")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/throughput.json"))
    args = parser.parse_args(argv)
    cores = os.cpu_count() or 1
    ways = args.ways.split(",")
    runs: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        if "sequential" in ways:
            runs["sequential"] = timed_compare(scratch / "sequential", "--threads", str(cores))
        if "workers" in ways:
            runs["workers"] = timed_compare(scratch / "workers", "--workers", str(cores), "--threads", "1")
        if "ray" in ways:
            address, env = start_ray(scratch / "ray-temp")
            try:
                runs["ray"] = timed_compare(scratch / "ray", "--ray", address, "--threads", "1", env=env)
            finally:
                subprocess.run([str(Path(sys.executable).parent / "ray"), "stop", "--force"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
            shutil.rmtree(scratch / "ray-temp", ignore_errors=True)
    base = runs.get("sequential", next(iter(runs.values())))["wall_seconds"]
    lines = [f"compare {' '.join(STUDY)}: wall seconds from process start to report, {cores} cores, "
             f"PyTorch CPU capability {torch.backends.cpu.get_cpu_capability()}", "",
             "| way | threads per job | wall (s) | ratio to sequential | sum of job train times (s) |",
             "|---|---|---|---|---|"]
    for way, run in runs.items():
        threads = cores if way == "sequential" else 1
        lines.append(f"| {way} | {threads} | {run['wall_seconds']:.1f} | {run['wall_seconds'] / base:.2f}x | "
                     f"{sum(run['job_train_seconds']):.1f} |")
    if "ray" in runs and "workers" in runs:
        overhead = (runs["ray"]["wall_seconds"] - runs["workers"]["wall_seconds"]) / len(runs["ray"]["job_train_seconds"])
        lines.append(f"\nRay's overhead per job against local workers: {overhead:.2f} s "
                     f"(connect, ship the dataset, schedule, return results)")
    table = "\n".join(lines)
    args.out.write_text(json.dumps({"runs": runs, "table": table}, indent=2) + "\n")
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
