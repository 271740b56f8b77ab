"""GPU check: the CUDA tests, the seed study and time-to-99% with cnn-fast on one GPU, then one table.

Made to run unattended from a fresh checkout on a machine that has a CUDA build of
PyTorch (any version mnistlab supports, Python 3.10 or later) and no network: it runs
this checkout's `src/` with the environment's packages, installs and downloads nothing
(MNISTLAB_OFFLINE=1), and if a package is missing it names it in one line and exits 2.
Every step runs in its own process within one time budget (5 minutes by default); the
table takes each figure's device from the run's own record, so no CPU figure is shown
as a GPU one.

    MNISTLAB_DATA_DIR=/path/to/datasets python benchmarks/gpu.py    # on the GPU machine
    python benchmarks/gpu.py --device cpu --dry-run --threads 1     # checks this script on a CPU, sizes cut
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
EXIT_FAILED, EXIT_USER_ERROR = 1, 2
TARGET_ACCURACY = 0.99  # cnn-fast's time-to-99%: its training time, where the seeds reach this test accuracy
STUDY_MODELS = "ann,cnn"  # the study's protocol: each model's default recipe, once per seed
DRY_RUN_SIZES = ["--epochs", "1", "--limit-train", "2000"]  # dry run: enough to exercise every step, no more
PYTHON_VERSION_MARKER = re.compile(r"python_version\s*(<|<=|>|>=|==|!=)\s*['\"]([\d.]+)['\"]")


def required_packages() -> list[str]:
    """The distributions this check needs: mnistlab's core dependencies (pyproject.toml) that apply here, and pytest."""
    try:
        import tomllib
    except ImportError:  # Python 3.10: tomli is then one of the core dependencies
        try:
            import tomli as tomllib
        except ImportError:
            return ["tomli"]
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    names = []
    for requirement in project["dependencies"]:
        specifier, _, marker = requirement.partition(";")
        if marker and not _marker_applies(marker):
            continue
        names.append(re.match(r"[A-Za-z0-9_.-]+", specifier.strip()).group(0))
    return names + ["pytest"]


def _marker_applies(marker: str) -> bool:
    """Whether an environment marker of the form python_version <op> 'X.Y' holds here (others: assumed to)."""
    found = PYTHON_VERSION_MARKER.search(marker)
    if not found:
        return True
    here, there = sys.version_info[:2], tuple(int(part) for part in found.group(2).split(".")[:2])
    return {"<": here < there, "<=": here <= there, ">": here > there, ">=": here >= there,
            "==": here == there, "!=": here != there}[found.group(1)]


def missing_packages(names: list[str]) -> list[str]:
    """Those of `names` (distribution names, as pip spells them) not installed in this environment."""
    missing = []
    for name in names:
        try:
            metadata.version(name)
        except metadata.PackageNotFoundError:
            missing.append(name)
    return missing


def child_environment() -> dict:
    """The environment of every step: this checkout's src/ first on the path, downloads off."""
    env = dict(os.environ, MNISTLAB_OFFLINE="1")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO / "src"), env.get("PYTHONPATH")]))
    return env


def run_step(command: list[str], timeout: float) -> tuple[int | None, str, float]:
    """Run one step in a new process: (exit code, or None when it ran out of time; its output; wall seconds)."""
    start = time.perf_counter()
    try:
        done = subprocess.run(command, cwd=REPO, env=child_environment(), capture_output=True, text=True,
                              timeout=max(timeout, 1.0))
        return done.returncode, done.stdout + done.stderr, time.perf_counter() - start
    except subprocess.TimeoutExpired:
        return None, "", time.perf_counter() - start


def cuda_test_files() -> list[str]:
    """The test files that hold tests marked cuda (only those: the others may need packages a GPU box lacks)."""
    return sorted(str(path.relative_to(REPO)) for path in (REPO / "tests").glob("test_*.py")
                  if "pytest.mark.cuda" in path.read_text(encoding="utf-8"))


def pytest_outcome(output: str) -> str:
    """pytest's last summary line without its timing, e.g. "5 passed, 8 deselected"."""
    counts = re.findall(r"\d+ (?:passed|failed|skipped|deselected|errors?|xfailed|xpassed)", output)
    return ", ".join(counts) or "no summary (see its output above)"


def study_rows(metrics: dict, label: str) -> list[dict]:
    """One row per model of a compare run: mean and spread over seeds, and the device the run itself recorded."""
    machine = metrics["machine"]
    rows = []
    for name, result in metrics["models"].items():
        seeds = result.get("seeds") or [result]
        accuracy = [record["test_accuracy"] for record in seeds]
        seconds = [record["train_seconds"] for record in seeds]
        epochs = result["config"]["epochs"]
        rows.append({"step": f"{label}: {name}, {len(seeds)} seed(s) x {epochs} epoch(s)",
                     "device": f"{machine['device']} ({machine['device_name']})",
                     "accuracy": accuracy, "train_seconds": seconds,
                     "result": f"test acc {100 * statistics.fmean(accuracy):.2f}% +- {100 * _std(accuracy):.2f}; "
                               f"train {statistics.fmean(seconds):.2f} s mean per seed "
                               f"({min(seconds):.2f}-{max(seconds):.2f})"})
    return rows


def _std(values: list[float]) -> float:
    return statistics.stdev(values) if len(values) > 1 else 0.0


def format_table(header: list[str], rows: list[dict]) -> str:
    """The one table this check prints: step, device (as each run recorded it), result, wall seconds."""
    lines = header + ["", "| step | device | result | wall (s) |", "|---|---|---|---|"]
    for row in rows:
        wall = f"{row['wall']:.1f}" if row.get("wall") is not None else "-"
        lines.append(f"| {row['step']} | {row.get('device', '-')} | {row['result']} | {wall} |")
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda", help="cuda, cuda:N, or cpu with --dry-run (default: %(default)s)")
    parser.add_argument("--dry-run", action="store_true",
                        help=f"cut the sizes ({' '.join(DRY_RUN_SIZES)}, 2 seeds) to check the script, e.g. on a CPU")
    parser.add_argument("--seeds", type=int, default=5, help="seeds of the study, and of cnn-fast (default: %(default)s)")
    parser.add_argument("--dataset", default="mnist", help="registered name or IDX folder (default: %(default)s)")
    parser.add_argument("--data-dir", help="folder holding <dataset>/ (default: $MNISTLAB_DATA_DIR)")
    parser.add_argument("--threads", type=int, help="CPU threads per step (default: mnistlab's)")
    parser.add_argument("--budget", type=float, default=300.0, help="seconds for all steps (default: %(default)s)")
    parser.add_argument("--out", type=Path, help="also write the table and figures as JSON here")
    return parser.parse_args(argv)


def check_setup(args: argparse.Namespace) -> str | None:
    """One line saying what is missing for this check to run here, or None."""
    missing = missing_packages(required_packages())
    if missing:
        return (f"missing Python package(s): {', '.join(missing)}; this script installs nothing: install them into "
                f"this environment ({sys.executable}) and run it again")
    import torch

    if not args.device.startswith("cuda") and not args.dry_run:
        return f"--device {args.device}: this check measures a GPU; give --device cuda, or add --dry-run to check it"
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        build = f"CUDA {torch.version.cuda}" if torch.version.cuda else "a CPU-only build"
        return (f"PyTorch {torch.__version__} ({build}) sees no CUDA GPU here; run this on the GPU machine, "
                f"or check the script with --device cpu --dry-run")
    if str(REPO / "src") not in sys.path:
        sys.path.insert(0, str(REPO / "src"))  # a fresh checkout: mnistlab is not installed
    from mnistlab.data.datasets import find_local_copy
    from mnistlab.data.registry import DATASETS

    if args.dataset in DATASETS:
        if find_local_copy(args.dataset, args.data_dir) is None:
            return (f"{args.dataset} is not on this machine and this script downloads nothing; set MNISTLAB_DATA_DIR "
                    f"(or --data-dir) to a folder holding {args.dataset}/")
    elif not Path(args.dataset).is_dir():
        return f"--dataset {args.dataset}: neither a registered dataset nor a folder"
    return None


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    problem = check_setup(args)
    if problem:
        print(f"gpu.py: {problem}", file=sys.stderr)
        return EXIT_USER_ERROR
    import torch

    seeds = 2 if args.dry_run else args.seeds
    sizes = DRY_RUN_SIZES if args.dry_run else []
    common = [sys.executable, "-m", "mnistlab", "--quiet", "--device", args.device]
    common += ["--data-dir", args.data_dir] if args.data_dir else []
    common += ["--threads", str(args.threads)] if args.threads else []
    start = time.perf_counter()
    deadline = start + args.budget
    rows, failed = [], False
    with tempfile.TemporaryDirectory(prefix="mnistlab-gpu-") as scratch:
        files = cuda_test_files()
        code, output, wall = run_step([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", "cuda",
                                       *files], deadline - time.perf_counter())
        failed |= code not in (0, 5)  # 5: no test collected
        rows.append({"step": f"CUDA tests ({len(files)} file(s), marker cuda)", "wall": wall,
                     "device": args.device, "result": "ran out of the time budget" if code is None else
                     pytest_outcome(output) + ("" if code in (0, 5) else f" (exit {code})")})
        if code not in (0, 5, None):
            print(output[-4000:], file=sys.stderr)
        for label, models in (("time-to-99%", "cnn-fast"), ("seed study", STUDY_MODELS)):
            out = Path(scratch) / models.replace(",", "-")
            code, output, wall = run_step(common + ["compare", "--dataset", args.dataset, "--models", models,
                                                    "--seeds", str(seeds), "--out", str(out), *sizes],
                                          deadline - time.perf_counter())
            if code != 0:
                failed = True
                why = "ran out of the time budget" if code is None else f"failed (exit {code}): " + \
                    " ".join(output.strip().splitlines()[-1:])[:200]
                rows.append({"step": f"{label}: {models}", "wall": wall, "result": why})
                continue
            found = study_rows(json.loads((out / "metrics.json").read_text()), label)
            for row in found:
                row["wall"] = wall
                if label == "time-to-99%":
                    reached = sum(accuracy >= TARGET_ACCURACY for accuracy in row["accuracy"])
                    row["result"] += f"; {reached}/{len(row['accuracy'])} seeds at {100 * TARGET_ACCURACY:.0f}% or more"
            rows.extend(found)
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none visible"
    header = [f"GPU check: torch {torch.__version__} (CUDA {torch.version.cuda or 'none'}), Python "
              f"{sys.version.split()[0]}, GPU {gpu}; {time.perf_counter() - start:.0f} s of a {args.budget:.0f} s budget; "
              f"training data resident on the device"]
    if args.dry_run:
        header.append(f"DRY RUN on {args.device}: sizes cut ({' '.join(DRY_RUN_SIZES)}, {seeds} seeds) to check this "
                      f"script; not the study's figures{'' if args.device.startswith('cuda') else ', and no GPU ones'}")
    table = format_table(header, rows)
    print(table)
    if args.out:
        args.out.write_text(json.dumps({"table": table, "rows": rows, "dry_run": args.dry_run}, indent=2) + "\n")
    return EXIT_FAILED if failed else 0


if __name__ == "__main__":
    sys.exit(main())
