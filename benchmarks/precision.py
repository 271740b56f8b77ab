"""bf16 against fp32: the study's CNN over several seeds, mnistlab fp32, mnistlab bf16 and Keras mixed_bfloat16.

Each run is a fresh process, one after another in one session. bf16 pays off
only where the CPU computes bfloat16 in hardware (AVX512_BF16 or AMX); the
output says whether this one does.

    pip install -e '.[bench]'       # Keras and TensorFlow, for the Keras column
    python -m benchmarks.precision --seeds 5
    python -m benchmarks.precision --seeds 5 --no-keras
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

from mnistlab.training.runtime import cpu_model, has_native_bf16


def mnistlab_cnn(seed: int, precision: str, out: Path) -> dict:
    subprocess.run([sys.executable, "-m", "mnistlab", "--quiet", "compare", "--models", "cnn", "--seed", str(seed),
                    "--precision", precision, "--out", str(out)], check=True, stdout=subprocess.DEVNULL)
    result = json.loads((out / "metrics.json").read_text())["models"]["cnn"]
    return {"test_accuracy": result["test_accuracy"], "train_seconds": result["train_seconds"]}


def keras_cnn(seed: int, out: Path) -> dict:
    subprocess.run([sys.executable, "-m", "benchmarks.keras_reference", "--seed", str(seed), "--models", "cnn",
                    "--mixed-bfloat16", "--latency-repeats", "1", "--out", str(out)], check=True,
                   stdout=subprocess.DEVNULL)
    result = json.loads(out.read_text())["models"]["cnn"]
    return {"test_accuracy": result["test_accuracy"], "train_seconds": result["train_seconds"]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5, help="seeds 0..N-1 (default: %(default)s)")
    parser.add_argument("--no-keras", action="store_true", help="skip the Keras mixed_bfloat16 column")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/precision.json"))
    args = parser.parse_args(argv)
    runs: dict[str, list[dict]] = {"fp32": [], "bf16": [], "keras-mixed_bfloat16": []}
    with tempfile.TemporaryDirectory() as scratch:
        for seed in range(args.seeds):
            for precision in ("fp32", "bf16"):
                runs[precision].append(mnistlab_cnn(seed, precision, Path(scratch) / f"{precision}-{seed}"))
            if not args.no_keras:
                runs["keras-mixed_bfloat16"].append(keras_cnn(seed, Path(scratch) / f"keras-{seed}.json"))
            print(f"seed {seed}: " + ", ".join(f"{way} {rows[-1]['train_seconds']:.1f} s"
                                               for way, rows in runs.items() if rows), file=sys.stderr)
    native = has_native_bf16(torch.device("cpu"))
    fp32_time = statistics.median(run["train_seconds"] for run in runs["fp32"])
    lines = [f"cnn, seeds 0-{args.seeds - 1}, {cpu_model()} ({torch.backends.cpu.get_cpu_capability()}, "
             f"native bf16: {'yes' if native else 'no'}), {torch.get_num_threads()} threads", "",
             "| way | test accuracy (%), mean +- std | train time (s), median (min-max) | time vs mnistlab fp32 |",
             "|---|---|---|---|"]
    for way, rows in runs.items():
        if not rows:
            continue
        accuracy = [100 * row["test_accuracy"] for row in rows]
        times = [row["train_seconds"] for row in rows]
        lines.append(f"| {way} | {statistics.fmean(accuracy):.2f} +- {statistics.stdev(accuracy) if len(rows) > 1 else 0:.2f} "
                     f"| {statistics.median(times):.1f} ({min(times):.1f}-{max(times):.1f}) "
                     f"| {statistics.median(times) / fp32_time:.2f}x |")
    table = "\n".join(lines)
    args.out.write_text(json.dumps({"runs": runs, "table": table}, indent=2) + "\n")
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
