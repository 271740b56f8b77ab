"""Slowdown on a shared CPU: the seed ANN and CNN trained quiet and beside one and two CPU-bound processes.

Both stacks, one session: `mnistlab compare` at its default threads (one per core this
process may use) and with `--threads auto` (the cores idle when it starts), and the
Keras + TensorFlow reference (benchmarks/keras_reference.py, the bench extra), each in a
fresh process, under each load in turn. The busy processes
are plain Python loops started here and stopped after each measurement. The table gives
each model's training seconds and its slowdown factor against the quiet run; the issue's
aim is mnistlab slowing no more than Keras does.

    python -m benchmarks.contention                                     # needs: pip install -e '.[bench]'
    python -m benchmarks.contention --mnistlab-only --epochs 1 --limit-train 2000   # a smoke run of the script
"""

from __future__ import annotations

import argparse
import functools
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MODELS = ("ann", "cnn")
KERAS_PACKAGES = {"tensorflow": "tensorflow-cpu", "keras": "keras"}  # import name -> what pip installs
BUSY_LOOP = "while True: pass"  # one core's worth of pure CPU work, no memory traffic
WARM_UP_SECONDS = 0.5  # the busy processes are running flat out before a measurement starts
DEFAULT = "default"  # mnistlab's own thread count: no --threads


def missing_keras_packages() -> list[str]:
    """The bench extra's packages the Keras reference needs that are not installed here (pip names)."""
    return [package for module, package in KERAS_PACKAGES.items() if importlib.util.find_spec(module) is None]


def environment() -> dict:
    """Every child's environment: this checkout's src/ first, so the code measured is the code here."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO / "src"), env.get("PYTHONPATH")]))
    return env


class BusyProcesses:
    """`count` CPU-bound processes for the length of a `with` block; each is stopped by its own pid at the end."""

    def __init__(self, count: int):
        self.count, self.processes = count, []

    def __enter__(self) -> "BusyProcesses":
        self.processes = [subprocess.Popen([sys.executable, "-c", BUSY_LOOP]) for _ in range(self.count)]
        if self.processes:
            time.sleep(WARM_UP_SECONDS)
        return self

    def __exit__(self, *exc_info) -> None:
        for process in self.processes:
            process.kill()
            process.wait()


def train_mnistlab(seed: int, out: Path, args: argparse.Namespace, threads: str = DEFAULT) -> dict:
    """The study's models in one `mnistlab compare` process at `--threads threads` (DEFAULT: none given):
    {model: training seconds}, and the machine record."""
    command = [sys.executable, "-m", "mnistlab", "--quiet", "compare", "--models", ",".join(MODELS),
               "--seed", str(seed), "--out", str(out)]
    command += ["--threads", threads] if threads != DEFAULT else []
    command += ["--epochs", str(args.epochs)] if args.epochs else []
    command += ["--limit-train", str(args.limit_train)] if args.limit_train else []
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, cwd=REPO, env=environment())
    metrics = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    return {"seconds": {name: metrics["models"][name]["train_seconds"] for name in MODELS},
            "machine": metrics["machine"]}


def train_keras(seed: int, out: Path, args: argparse.Namespace) -> dict:
    """The same models with the Keras reference in one process: {model: training seconds}."""
    command = [sys.executable, "-m", "benchmarks.keras_reference", "--seed", str(seed), "--models", ",".join(MODELS),
               "--latency-repeats", "5", "--out", str(out)]
    command += ["--epochs", str(args.epochs)] if args.epochs else []
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, cwd=REPO, env=environment())
    result = json.loads(out.read_text(encoding="utf-8"))
    return {"seconds": {name: result["models"][name]["train_seconds"] for name in MODELS}}


def slowdowns(seconds: dict[int, float]) -> dict[int, float]:
    """Each load's training seconds over the quiet run's (load 0)."""
    return {busy: value / seconds[0] for busy, value in seconds.items()}


def format_table(results: dict, loads: list[int], header: list[str]) -> str:
    """One row per (model, stack): seconds under each load and the slowdown factor against quiet."""
    columns = " | ".join(f"{busy} busy (s) | x" if busy else "quiet (s)" for busy in loads)
    lines = header + ["", f"| model | stack | {columns} |", "|---|---|" + "---|" * (2 * len(loads) - 1)]
    for name in MODELS:
        for stack, by_load in results.items():
            seconds = {busy: by_load[busy][name] for busy in loads}
            factors = slowdowns(seconds)
            cells = " | ".join(f"{seconds[busy]:.2f} | {factors[busy]:.2f}x" if busy else f"{seconds[busy]:.2f}"
                               for busy in loads)
            lines.append(f"| {name} | {stack} | {cells} |")
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--loads", default="0,1,2", help="busy processes beside each run; 0 must come first "
                                                          "(default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="seed of every run (default: %(default)s)")
    parser.add_argument("--repeats", type=int, default=1, help="rounds of every run; each figure is their median "
                                                               "(default: %(default)s)")
    parser.add_argument("--mnistlab-only", action="store_true", help="skip the Keras reference")
    parser.add_argument("--threads", default=f"{DEFAULT},auto",
                        help="mnistlab's --threads, one row each, comma-separated: default (none given), auto or N "
                             "(default: %(default)s)")
    parser.add_argument("--epochs", type=int, help="fewer epochs than the study's 5, for a smoke run")
    parser.add_argument("--limit-train", type=int, help="mnistlab only: fewer training images, for a smoke run")
    parser.add_argument("--out", type=Path, help="also write the figures and the table as JSON here")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    loads = [int(part) for part in args.loads.split(",")]
    choices = args.threads.split(",")
    if len(set(choices)) != len(choices) or not all(
            choice in (DEFAULT, "auto") or (choice.isdigit() and int(choice) >= 1) for choice in choices):
        print(f"contention: --threads {args.threads}: give distinct values, each {DEFAULT}, auto or a whole number "
              f"of 1 or more", file=sys.stderr)
        return 2
    if args.repeats < 1:
        print(f"contention: --repeats {args.repeats}: give at least 1", file=sys.stderr)
        return 2
    if loads[0] != 0 or any(busy < 0 for busy in loads):
        print(f"contention: --loads {args.loads}: give 0 (quiet) first, then busy-process counts", file=sys.stderr)
        return 2
    missing = [] if args.mnistlab_only else missing_keras_packages()
    if missing:
        print(f"contention: the Keras reference needs {', '.join(missing)} (the bench extra: pip install -e "
              f"'.[bench]'); install it, or measure mnistlab alone with --mnistlab-only", file=sys.stderr)
        return 2
    if args.limit_train and not args.mnistlab_only:
        print("contention: --limit-train shortens only mnistlab's runs; add --mnistlab-only", file=sys.stderr)
        return 2
    stacks = {("mnistlab" if threads == DEFAULT else f"mnistlab --threads {threads}"):
              functools.partial(train_mnistlab, threads=threads) for threads in choices}
    if not args.mnistlab_only:
        stacks["keras"] = train_keras
    runs = {stack: {busy: [] for busy in loads} for stack in stacks}  # each round's training seconds
    used = {stack: {busy: [] for busy in loads} for stack in stacks}  # the threads each mnistlab run recorded
    machine = None
    with tempfile.TemporaryDirectory(prefix="mnistlab-contention-") as scratch:
        for round_ in range(args.repeats):  # rounds in turn, so a drift in the machine's speed reaches every cell
            for busy in loads:
                for number, (stack, run) in enumerate(stacks.items()):
                    with BusyProcesses(busy):
                        found = run(args.seed, Path(scratch) / f"{round_}-{number}-{busy}", args)
                    runs[stack][busy].append(found["seconds"])
                    machine = found.get("machine", machine)
                    if "machine" in found:
                        used[stack][busy].append(found["machine"]["threads"])
                    print(f"round {round_ + 1}, {busy} busy, {stack}: " + ", ".join(
                        f"{name} {value:.1f} s" for name, value in found["seconds"].items()), file=sys.stderr)
    results = {stack: {busy: {name: statistics.median(seconds[name] for seconds in rounds) for name in MODELS}
                       for busy, rounds in by_load.items()} for stack, by_load in runs.items()}
    header = [f"Training seconds beside CPU-bound processes (median of {args.repeats} round"
              f"{'s' if args.repeats > 1 else ''}), seed {args.seed}; {machine['cpu_model']} "
              f"({machine['cpu_capability']}), {machine.get('cores_available', machine['cpu_count'])} cores available, "
              f"OpenMP wait policy {machine.get('omp_wait_policy', '?')}; threads each mnistlab run used, "
              f"by busy processes: " + "; ".join(f"{stack}: " + ", ".join(
                  f"{busy}: {'/'.join(map(str, counts))}" for busy, counts in by_load.items())
                  for stack, by_load in used.items() if any(by_load.values()))]
    if args.epochs or args.limit_train:
        header.append(f"SMOKE RUN (--epochs {args.epochs or 'default'}, --limit-train {args.limit_train or 'all'}): "
                      f"checks the script; not the study's figures")
    table = format_table(results, loads, header)
    print(table)
    if args.out:
        args.out.write_text(json.dumps({"results": results, "rounds": runs, "threads": used, "machine": machine,
                                        "table": table}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
