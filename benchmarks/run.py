"""Speed benchmark: mnistlab against the Keras + TensorFlow reference, same machine, same session.

For each seed it runs `mnistlab compare` and `benchmarks/keras_reference.py`
back to back, each in a fresh process timed from start to exit, then measures
inference, and prints and writes a table of medians and ratios.

    pip install -e .[bench]
    python -m benchmarks.run --seeds 3 --fast-seeds 5 --out benchmarks/results.json
    python -m benchmarks.run --throughput    # then the study-throughput section (benchmarks/throughput.py)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch


def timed_process(command: list[str]) -> float:
    """Run a command to completion; return its wall seconds (fails loudly on a non-zero exit)."""
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def run_mnistlab(seed: int, out: Path, models: str = "ann,cnn", precision: str = "fp32") -> dict:
    """`mnistlab compare` in a new process: (wall seconds, metrics)."""
    wall = timed_process([sys.executable, "-m", "mnistlab", "--quiet", "compare", "--models", models,
                          "--seed", str(seed), "--precision", precision, "--out", str(out)])
    return {"wall_seconds": wall, "metrics": json.loads((out / "metrics.json").read_text())}


def run_keras(seed: int, out: Path) -> dict:
    """The Keras reference in a new process: (wall seconds, its JSON result)."""
    wall = timed_process([sys.executable, "-m", "benchmarks.keras_reference", "--seed", str(seed), "--out", str(out)])
    return {"wall_seconds": wall, **json.loads(out.read_text())}


def spread(values: list[float]) -> dict:
    """Median, min, max, mean and standard deviation of a list of numbers."""
    return {"median": statistics.median(values), "min": min(values), "max": max(values),
            "mean": statistics.fmean(values), "std": statistics.stdev(values) if len(values) > 1 else 0.0}


def summarise(mnistlab_runs: list[dict], keras_runs: list[dict], inference: list[dict]) -> dict:
    """Aggregate per-seed runs into the figures the README's performance table shows."""
    summary = {"models": {}}
    for name in ("ann", "cnn"):
        ours = {"test_accuracy": spread([run["metrics"]["models"][name]["test_accuracy"] for run in mnistlab_runs]),
                "train_seconds": spread([run["metrics"]["models"][name]["train_seconds"] for run in mnistlab_runs])}
        theirs = {"test_accuracy": spread([run["models"][name]["test_accuracy"] for run in keras_runs]),
                  "train_seconds": spread([run["models"][name]["train_seconds"] for run in keras_runs]),
                  "predict_images_per_second": spread([run["models"][name]["predict_images_per_second"]
                                                       for run in keras_runs]),
                  "predict_latency_p50_ms": spread([run["models"][name]["predict_latency"]["p50_ms"]
                                                    for run in keras_runs])}
        summary["models"][name] = {
            "mnistlab": ours, "keras": theirs,
            "train_ratio": ours["train_seconds"]["median"] / theirs["train_seconds"]["median"],
            "accuracy_gap_points": 100 * (ours["test_accuracy"]["mean"] - theirs["test_accuracy"]["mean"]),
            "inference": next((entry for entry in inference if entry["model"] == name), None),
        }
    ours_total = spread([run["wall_seconds"] for run in mnistlab_runs])
    theirs_total = spread([run["wall_seconds"] for run in keras_runs])
    summary["compare_wall"] = {"mnistlab": ours_total, "keras": theirs_total,
                               "ratio": ours_total["median"] / theirs_total["median"]}
    return summary


def format_table(summary: dict, seeds: list[int]) -> str:
    """The plain-text table the README's performance section shows."""
    lines = [f"seeds {seeds}; medians over seeds (min-max); accuracy mean +- std", "",
             "| model | mnistlab train (s) | Keras train (s) | ratio | mnistlab acc (%) | Keras acc (%) |",
             "|---|---|---|---|---|---|"]
    for name, entry in summary["models"].items():
        ours, theirs = entry["mnistlab"], entry["keras"]
        lines.append(
            f"| {name} | {ours['train_seconds']['median']:.1f} ({ours['train_seconds']['min']:.1f}-"
            f"{ours['train_seconds']['max']:.1f}) | {theirs['train_seconds']['median']:.1f} "
            f"({theirs['train_seconds']['min']:.1f}-{theirs['train_seconds']['max']:.1f}) | "
            f"{entry['train_ratio']:.2f}x | {100 * ours['test_accuracy']['mean']:.2f} +- "
            f"{100 * ours['test_accuracy']['std']:.2f} | {100 * theirs['test_accuracy']['mean']:.2f} +- "
            f"{100 * theirs['test_accuracy']['std']:.2f} |")
    wall = summary["compare_wall"]
    lines += ["", f"whole compare, process start to report written: mnistlab {wall['mnistlab']['median']:.1f} s, "
                  f"Keras reference {wall['keras']['median']:.1f} s, ratio {wall['ratio']:.2f}x", "",
              "| model | PyTorch img/s | ONNX Runtime img/s | Keras predict img/s | PyTorch p50 / p99 (ms) | "
              "ONNX p50 / p99 (ms) | Keras predict p50 (ms) |", "|---|---|---|---|---|---|---|"]
    for name, entry in summary["models"].items():
        inference, keras = entry["inference"], entry["keras"]
        if inference is None:
            continue
        lines.append(
            f"| {name} | {inference['torch_images_per_second']:,.0f} | {inference['onnx_images_per_second']:,.0f} | "
            f"{keras['predict_images_per_second']['median']:,.0f} | {inference['torch_latency']['p50_ms']:.3f} / "
            f"{inference['torch_latency']['p99_ms']:.3f} | {inference['onnx_latency']['p50_ms']:.3f} / "
            f"{inference['onnx_latency']['p99_ms']:.3f} | {keras['predict_latency_p50_ms']['median']:.1f} |")
    if "fast" in summary:
        fast = summary["fast"]
        lines += ["", f"cnn-fast ({fast['precision']}) over seeds {fast['seeds']}: test accuracy "
                      f"{100 * fast['test_accuracy']['mean']:.2f}% +- {100 * fast['test_accuracy']['std']:.2f} "
                      f"(min {100 * fast['test_accuracy']['min']:.2f}), "
                      f"training {fast['train_seconds']['median']:.1f} s median "
                      f"({fast['train_seconds']['min']:.1f}-{fast['train_seconds']['max']:.1f})"]
    return "\n".join(lines)


def fast_precision(choice: str) -> str:
    """The precision cnn-fast's time-to-99% runs in: "native" is bf16 only where the CPU has it in hardware.

    Elsewhere autocast emulates bfloat16 and is slower than fp32; the figure states which one ran.
    """
    if choice != "native":
        return choice
    from mnistlab.training.runtime import has_native_bf16

    return "bf16" if has_native_bf16(torch.device("cpu")) else "fp32"


def parse_seeds(text: str) -> list[int]:
    """"3" -> [0, 1, 2]; "0,4,7" -> [0, 4, 7]."""
    return [int(part) for part in text.split(",")] if "," in text else list(range(int(text)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="3", help="a count (0..N-1) or a comma-separated list (default: 3)")
    parser.add_argument("--fast-seeds", default="5", help="seeds for the cnn-fast recipe; 0 skips it (default: 5)")
    parser.add_argument("--fast-precision", choices=["native", "fp32", "bf16"], default="native",
                        help="cnn-fast's precision: native is bf16 where the CPU computes bfloat16 in hardware "
                             "(AVX512_BF16 or AMX), else fp32 (default: %(default)s)")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results.json"))
    parser.add_argument("--throughput", action="store_true",
                        help="also time the study sequential, with --workers and on a local Ray cluster")
    args = parser.parse_args(argv)
    if not os.environ.get("MNISTLAB_DATA_DIR"):
        print("note: MNISTLAB_DATA_DIR is not set; datasets come from the cache or a download", file=sys.stderr)
    seeds = parse_seeds(args.seeds)
    mnistlab_runs, keras_runs = [], []
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        for seed in seeds:
            mnistlab_runs.append(run_mnistlab(seed, scratch / f"mnistlab-{seed}"))
            keras_runs.append(run_keras(seed, scratch / f"keras-{seed}.json"))
            print(f"seed {seed}: mnistlab {mnistlab_runs[-1]['wall_seconds']:.1f} s, "
                  f"Keras {keras_runs[-1]['wall_seconds']:.1f} s", file=sys.stderr)
        inference_out = scratch / "inference.json"
        subprocess.run([sys.executable, "-m", "benchmarks.inference", str(scratch / f"mnistlab-{seeds[0]}" / "ann.pt"),
                        str(scratch / f"mnistlab-{seeds[0]}" / "cnn.pt"), "--out", str(inference_out)],
                       check=True, stdout=subprocess.DEVNULL)
        summary = summarise(mnistlab_runs, keras_runs, json.loads(inference_out.read_text()))
        fast_seeds = parse_seeds(args.fast_seeds) if args.fast_seeds != "0" else []
        if fast_seeds:
            precision = fast_precision(args.fast_precision)
            runs = [run_mnistlab(seed, scratch / f"fast-{seed}", models="cnn-fast", precision=precision)
                    ["metrics"]["models"]["cnn-fast"] for seed in fast_seeds]
            summary["fast"] = {"seeds": fast_seeds, "precision": precision,
                               "test_accuracy": spread([run["test_accuracy"] for run in runs]),
                               "train_seconds": spread([run["train_seconds"] for run in runs])}
    summary["seeds"] = seeds
    summary["machine"] = {"platform": platform.platform(), "cpu_count": os.cpu_count(),
                          "torch_threads": torch.get_num_threads(), "python": platform.python_version(),
                          "torch": str(torch.__version__)}
    table = format_table(summary, seeds)
    args.out.write_text(json.dumps({"summary": summary, "table": table}, indent=2) + "\n")
    print(table)
    if args.throughput:
        from benchmarks import throughput

        throughput.main([])
    return 0


if __name__ == "__main__":
    sys.exit(main())
