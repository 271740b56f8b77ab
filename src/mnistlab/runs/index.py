"""The run index (`mnistlab runs DIR`): every run folder under DIR, what it holds and whether it finished.

    from mnistlab.runs.index import list_runs
    for run in list_runs("runs"):
        print(run["path"], run["status"], [model["accuracy"] for model in run["models"]])

A compare run is a folder with `metrics.json` (finished) or `state/plan.json`
only (stopped: `--resume` continues it); a tune run is a folder with `tune.db`.
Only the files each run writes are read, never the checkpoints, so listing a
folder of many runs costs a few small reads each. A run whose files do not
read back is listed with the reason, and the others still are.
"""

from __future__ import annotations

import csv
import datetime
import json
import os
import re
from pathlib import Path

from mnistlab.common.errors import ConfigError, MnistlabError
from mnistlab.runs.folder import (LOCK_FILE, METRICS_FILE, PLAN_FILE, STATE_DIR, TUNE_BEST, TUNE_DATABASE, TUNE_TRIALS,
                                  read_metrics)

MAX_DEPTH = 3  # run folders are looked for this many levels below DIR (runs/<study>/<run> is found)
MAX_FOLDERS = 10_000  # folders visited at most, so a DIR such as / answers quickly


def list_runs(directory: str | os.PathLike = "runs") -> list[dict]:
    """One record per run folder at or under `directory` (oldest first); `ConfigError` if it is not a folder.

    Each record: path, kind ("compare" or "tune"), status ("finished", "stopped: k of n jobs done",
    or "unreadable: why"), created (ISO time), dataset, seeds, models (name, accuracy with its
    95% interval over seeds; for tune the best validation accuracy), commit and machine.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise ConfigError(f"{directory}: no such folder; give a folder that holds run folders (default: runs)")
    records = [describe_run(folder) for folder in run_folders(directory)]
    return sorted(records, key=lambda record: (record["created"] or "", record["path"]))


def run_folders(directory: Path) -> list[Path]:
    """Run folders at or under `directory`, at most MAX_DEPTH levels down; a run's own subfolders are not searched."""
    found, queue, visited = [], [(directory, 0)], 0
    while queue and visited < MAX_FOLDERS:
        folder, depth = queue.pop(0)
        visited += 1
        if run_kind(folder):
            found.append(folder)
            continue
        if depth < MAX_DEPTH:
            try:
                children = sorted(entry for entry in folder.iterdir() if entry.is_dir() and not entry.is_symlink())
            except OSError:  # unreadable: nothing to list there
                continue
            queue += [(child, depth + 1) for child in children]
    return found


def run_kind(folder: Path) -> str | None:
    """"compare", "tune" or None: what kind of run `folder` holds, from the file that marks it."""
    if (folder / METRICS_FILE).is_file() or (folder / STATE_DIR / PLAN_FILE).is_file():
        return "compare"
    if (folder / TUNE_DATABASE).is_file():
        return "tune"
    return None


def describe_run(folder: Path) -> dict:
    """The index record of one run folder (see `list_runs`)."""
    record = {"path": str(folder), "kind": run_kind(folder), "status": "", "created": None, "dataset": None,
              "seeds": [], "models": [], "commit": None, "machine": None}
    try:
        record.update(describe_tune(folder) if record["kind"] == "tune" else describe_compare(folder))
    except (MnistlabError, OSError, ValueError, KeyError, TypeError) as error:
        record["status"] = f"unreadable: {' '.join(str(error).splitlines())[:160]}"
    return record


def describe_compare(folder: Path) -> dict:
    """A compare run: from metrics.json when it finished, else from its plan and finished jobs."""
    if (folder / METRICS_FILE).is_file():
        metrics = read_metrics(folder)
        machine = metrics["machine"]
        models = []
        for name, result in metrics["models"].items():
            interval = result.get("accuracy") or {}
            models.append({"name": name, "accuracy": result["test_accuracy"], "ci_low": interval.get("ci_low"),
                           "ci_high": interval.get("ci_high"), "measure": "test"})
        return {"status": "finished", "created": metrics["created"], "dataset": metrics["dataset"]["name"],
                "seeds": metrics["seeds"], "models": models, "commit": metrics["versions"].get("commit"),
                "machine": f"{machine.get('cpu_model', machine['platform'])}, {machine['threads']} threads"}
    plan_path = folder / STATE_DIR / PLAN_FILE
    plan = json.loads(plan_path.read_text(encoding="utf-8"))
    models, seeds = list(plan["models"]), list(plan["seeds"])
    done = sum((folder / STATE_DIR / f"{name}-seed{seed}.json").is_file() for name in models for seed in seeds)
    configs = plan.get("configs") or {}
    dataset = next((config.get("dataset") for config in configs.values() if isinstance(config, dict)), None)
    writer = writing_process(folder)
    state = f"running (pid {writer})" if writer else "stopped"
    return {"status": f"{state}: {done} of {len(models) * len(seeds)} jobs done"
                      f"{'' if writer else ' (continue with --resume)'}",
            "created": modified_time(plan_path), "dataset": dataset, "seeds": seeds,
            "models": [{"name": name, "accuracy": None, "ci_low": None, "ci_high": None, "measure": "test"}
                       for name in models]}


def describe_tune(folder: Path) -> dict:
    """A tune run: its model and best validation accuracy from best.toml and trials.csv."""
    best_path, trials_path = folder / TUNE_BEST, folder / TUNE_TRIALS
    model, best, complete = None, None, 0
    if best_path.is_file():
        match = re.match(r"# mnistlab tune (\S+):", best_path.read_text(encoding="utf-8"))
        model = match.group(1) if match else None
        dataset = re.search(r'^dataset = "(.*)"$', best_path.read_text(encoding="utf-8"), re.MULTILINE)
    if trials_path.is_file():
        with open(trials_path, encoding="utf-8", newline="") as handle:
            rows = [row for row in csv.DictReader(handle) if row.get("state") == "complete"]
        complete = len(rows)
        scores = [float(row["val_accuracy"]) for row in rows if row.get("val_accuracy")]
        best = max(scores) if scores else None
    status = f"finished: {complete} complete trial(s)" if best_path.is_file() else "stopped (continue with --resume)"
    return {"status": status, "created": modified_time(folder / TUNE_DATABASE),
            "dataset": dataset.group(1) if best_path.is_file() and dataset else None,
            "models": [{"name": model or "?", "accuracy": best, "ci_low": None, "ci_high": None,
                        "measure": "validation, best trial"}]}


def writing_process(folder: Path) -> int | None:
    """The pid in the folder's lock file if that process is alive: the run is being written now.

    Only read, never locked (a lock taken here, however briefly, could turn away a run starting at that
    moment); a lock file left by a killed process names a pid that is gone, or rarely one reused since.
    """
    try:
        pid = int((folder / LOCK_FILE).read_text(encoding="utf-8").strip())
    except (OSError, ValueError):  # no lock file, or not a pid
        return None
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except PermissionError:  # alive, but another user's
        return pid
    except OSError:  # no such process
        return None
    return pid


def modified_time(path: Path) -> str:
    """A file's modification time as an ISO string in UTC (seconds)."""
    stamp = datetime.datetime.fromtimestamp(path.stat().st_mtime, datetime.timezone.utc)
    return stamp.isoformat(timespec="seconds")


def format_runs(records: list[dict]) -> str:
    """The index as a plain-text table: one row per (run, model)."""
    header = ["run", "date", "dataset", "model", "seeds", "accuracy (%)", "95% CI (%)", "status", "commit", "machine"]
    rows = [header]
    for record in records:
        date = (record["created"] or "")[:16].replace("T", " ")
        seeds = ",".join(map(str, record["seeds"][:6])) + ("..." if len(record["seeds"]) > 6 else "")
        for index, model in enumerate(record["models"] or [{"name": "", "accuracy": None, "ci_low": None}]):
            accuracy = "–" if model["accuracy"] is None else f"{100 * model['accuracy']:.2f}"
            if model.get("measure", "test") != "test" and model["accuracy"] is not None:
                accuracy += " (val)"
            ci = "–" if model["ci_low"] is None else f"{100 * model['ci_low']:.2f}–{100 * model['ci_high']:.2f}"
            first = index == 0
            rows.append([record["path"] if first else "", date if first else "", (record["dataset"] or "") if first else "",
                         model["name"], seeds if first else "", accuracy, ci, record["status"] if first else "",
                         (record["commit"] or "–") if first else "", (record["machine"] or "") if first else ""])
    widths = [max(len(row[column]) for row in rows) for column in range(len(header))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)
