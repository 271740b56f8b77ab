"""Start-up: what a user waits for outside training, each command timed as a whole fresh process.

The targets of issue 23, item 1:
- `--help`, `models`, `data list` and an argument error: at most 0.5 s;
- `predict` on one image: at most 1.5 times `python -c "import torch"`;
- `train` and `compare`: at most 1.5 s beyond the torch import outside training and evaluation.
  That overhead is the wall time, less the torch import and less the training and
  evaluation seconds the run records (`compare` records how long testing and assessing
  each model took, the imports they need included; `train` tests nothing). `compare`'s
  overhead with its evaluation counted as well is shown beside it.

The commands run in turn, round after round, so a drift in the machine's speed reaches
every command alike; each figure is the median over the rounds.

    python -m benchmarks.startup [--rounds 5] [--out startup.json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.contention import REPO, environment  # children run this checkout's src/
QUICK_SECONDS = 0.5  # --help, models, data list, an argument error
PREDICT_RATIO = 1.5  # predict on one image, against the torch import
OVERHEAD_SECONDS = 1.5  # train and compare, beyond the torch import and their training


def wall_seconds(command: list[str], expected_code: int = 0) -> float:
    """One fresh process from start to exit; a different exit code is a failure of the benchmark."""
    start = time.perf_counter()
    result = subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=environment(), cwd=REPO)
    seconds = time.perf_counter() - start
    if result.returncode != expected_code:
        raise SystemExit(f"{' '.join(command)} exited {result.returncode}: {result.stderr.decode()[-400:]}")
    return seconds


def recorded_seconds(path: Path) -> tuple[float, float]:
    """The training and evaluation seconds a `train` checkpoint or a `compare` run folder records."""
    if path.is_dir():
        models = json.loads((path / "metrics.json").read_text(encoding="utf-8"))["models"]
        seeds = [record for model in models.values() for record in model["seeds"]]
        return sum(record["train_seconds"] for record in seeds), sum(record["evaluate_seconds"] for record in seeds)
    import torch

    return torch.load(path, weights_only=True)["metrics"]["train_seconds"], 0.0


def prepare(scratch: Path) -> tuple[Path, Path]:
    """A small cnn checkpoint and one MNIST test digit as a PNG, for `predict`."""
    import numpy as np
    from PIL import Image

    from mnistlab.data.datasets import load_dataset

    checkpoint = scratch / "cnn.pt"
    wall_seconds([sys.executable, "-m", "mnistlab", "--quiet", "train", "cnn", "--epochs", "1",
                  "--limit-train", "2000", "--out", str(checkpoint)])
    image = scratch / "digit.png"
    Image.fromarray(255 - np.asarray(load_dataset("mnist", progress=False).test_images[0])).save(image)
    return checkpoint, image


def measure(rounds: int, scratch: Path) -> dict[str, list[float]]:
    """Name -> wall seconds per round, and for train and compare their overhead beyond torch, training and
    evaluation."""
    checkpoint, image = prepare(scratch)
    cli = [sys.executable, "-m", "mnistlab"]
    quick = {
        "import torch": ([sys.executable, "-c", "import torch"], 0),
        "mnistlab --help": (cli + ["--help"], 0),
        "mnistlab models": (cli + ["models"], 0),
        "mnistlab data list": (cli + ["data", "list"], 0),
        "an argument error": (cli + ["train", "no-such-model"], 2),
        "mnistlab predict (one image)": (cli + ["predict", str(checkpoint), str(image)], 0),
    }
    figures: dict[str, list[float]] = {name: [] for name in [*quick, "train ann --epochs 1", "compare ann --epochs 1",
                                                              "train: overhead", "compare: overhead",
                                                              "compare: overhead, evaluation included"]}
    for round_number in range(rounds):
        for name, (command, code) in quick.items():
            figures[name].append(wall_seconds(command, code))
        for name, command, out in [
            ("train", ["train", "ann"], scratch / f"train-{round_number}.pt"),
            ("compare", ["compare", "--models", "ann"], scratch / f"compare-{round_number}"),
        ]:
            wall = wall_seconds(cli + ["--quiet", *command, "--epochs", "1", "--out", str(out)])
            figures[f"{name} ann --epochs 1"].append(wall)
            training, evaluation = recorded_seconds(out)
            figures[f"{name}: overhead"].append(wall - figures["import torch"][-1] - training - evaluation)
            if name == "compare":
                figures["compare: overhead, evaluation included"].append(figures["compare: overhead"][-1] + evaluation)
    return figures


def verdicts(medians: dict[str, float]) -> dict[str, str]:
    """Each target of the issue, met or not, from the medians."""
    torch_import = medians["import torch"]
    result = {name: f"<= {QUICK_SECONDS} s" for name in ["mnistlab --help", "mnistlab models", "mnistlab data list",
                                                        "an argument error"]}
    result = {name: f"{target}: {'met' if medians[name] <= QUICK_SECONDS else 'NOT met'}"
              for name, target in result.items()}
    ratio = medians["mnistlab predict (one image)"] / torch_import
    result["mnistlab predict (one image)"] = (f"{ratio:.2f}x the torch import, <= {PREDICT_RATIO}x: "
                                              f"{'met' if ratio <= PREDICT_RATIO else 'NOT met'}")
    for name in ["train: overhead", "compare: overhead"]:
        result[name] = f"<= {OVERHEAD_SECONDS} s: {'met' if medians[name] <= OVERHEAD_SECONDS else 'NOT met'}"
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="rounds of every command (default: %(default)s)")
    parser.add_argument("--out", type=Path, help="also write the figures and the table as JSON here")
    args = parser.parse_args(argv)
    import torch

    with tempfile.TemporaryDirectory() as scratch:
        figures = measure(args.rounds, Path(scratch))
    medians = {name: statistics.median(values) for name, values in figures.items()}
    targets = verdicts(medians)
    lines = [f"Start-up, median of {args.rounds} rounds of fresh processes; {torch.backends.cpu.get_cpu_capability()} "
             f"CPU, {os.cpu_count()} cores, PyTorch {torch.__version__}", "",
             "| command | median (s) | min-max (s) | target |", "|---|---|---|---|"]
    lines += [f"| {name} | {medians[name]:.2f} | {min(values):.2f}-{max(values):.2f} | {targets.get(name, '')} |"
              for name, values in figures.items()]
    table = "\n".join(lines)
    print(table)
    if args.out:
        args.out.write_text(json.dumps({"figures": figures, "medians": medians, "table": table}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
