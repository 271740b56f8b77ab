"""Seeds trained together against one at a time: training seconds of S seeds of the ANN and the CNN.

The study's protocol (5 epochs of Adam, batch 128, full MNIST) unless told otherwise; for each
model and thread count, the two ways run back to back in this process, alternating which goes
first, `--repeats` times, so each ratio compares adjacent runs on the same (possibly shared)
machine. Prints one table: seconds one at a time, seconds together, and together / one at a time
(below 1: together is faster). Both ways train the same seeds; their test accuracies agree to
rounding (tests/test_together.py), so only time is measured here.

    python -m benchmarks.seeds_together                                   # the protocol: 5 seeds, threads 2 and 1
    python -m benchmarks.seeds_together --epochs 1 --limit-train 10000    # a shorter, labelled run
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import time

MODELS = ("ann", "cnn")


def time_both_ways(model: str, dataset, config, seeds: list[int], together_first: bool) -> dict[str, float]:
    """Wall seconds of training `seeds` of `model` one at a time and together (validation included)."""
    from mnistlab.training.together import train_together
    from mnistlab.training.train import train

    configs = [dataclasses.replace(config, seed=seed) for seed in seeds]
    ways = {"one-at-a-time": lambda: [train(model, dataset, one, progress=False) for one in configs],
            "seeds-together": lambda: train_together(model, dataset, configs, progress=False)}
    seconds = {}
    for way in sorted(ways, reverse=together_first):  # "seeds-together" first, or "one-at-a-time" first
        start = time.perf_counter()
        ways[way]()
        seconds[way] = time.perf_counter() - start
    return seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5, help="seeds per model (default: %(default)s)")
    parser.add_argument("--threads", default="2,1", help="comma-separated thread counts (default: %(default)s)")
    parser.add_argument("--models", default=",".join(MODELS), help="comma-separated models (default: %(default)s)")
    parser.add_argument("--epochs", type=int, default=5, help="epochs (default: %(default)s, the protocol)")
    parser.add_argument("--limit-train", type=int, help="train on a subset of N images (default: all, the protocol)")
    parser.add_argument("--repeats", type=int, default=1, help="measurements of each pair (default: %(default)s)")
    parser.add_argument("--data-dir", default=os.environ.get("MNISTLAB_DATA_DIR"), help="MNIST's folder")
    args = parser.parse_args(argv)

    from mnistlab.data.folders import open_dataset
    from mnistlab.training.config import TrainConfig
    from mnistlab.training.runtime import configured_runtime

    dataset = open_dataset("mnist", args.data_dir, progress=False)
    config = TrainConfig(epochs=args.epochs, limit_train=args.limit_train)
    protocol = args.epochs == 5 and args.limit_train is None
    print(f"# {args.seeds} seeds, {args.epochs} epoch(s), {args.limit_train or 'all'} training images"
          f"{'' if protocol else ' (NOT the study protocol)'}; {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} logical CPUs")
    print(f"{'model':6} {'threads':>7} {'repeat':>6} {'one-at-a-time s':>16} {'together s':>11} {'ratio':>6}")
    for model in args.models.split(","):
        for threads in [int(part) for part in args.threads.split(",")]:
            with configured_runtime(threads):
                for repeat in range(args.repeats):
                    seconds = time_both_ways(model, dataset, config, list(range(args.seeds)), repeat % 2 == 1)
                    one, together = seconds["one-at-a-time"], seconds["seeds-together"]
                    print(f"{model:6} {threads:7d} {repeat + 1:6d} {one:16.1f} {together:11.1f} "
                          f"{together / one:6.2f}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
