"""Compare models across runs (`mnistlab compare-runs RUN_A[:MODEL] RUN_B[:MODEL] ...`), on one test set.

    from mnistlab.study.compare_runs import compare_runs
    result = compare_runs(["runs/recipe:cnn", "runs/tuned:cnn"], "runs/recipe-vs-tuned")
    # result["comparisons"]: difference, bootstrap interval, McNemar per seed pair, pooled, Holm

Each entry is a run folder written by `mnistlab compare` and the model to take
from it (optional when the run has one). The runs must have scored the same test
images: their test files' checksums and class names must agree, or the
comparison is refused with the reason. Seeds are paired one to one: by seed
when every entry has the same seeds, else in the order the runs list them
(each entry needs as many seeds). The statistics are the ones a run computes
between its own models (`evaluation.analysis.compare_models`, on the runs'
predictions.npz), so comparing two runs' models gives exactly the numbers a
run holding both models with those seeds would.
"""

from __future__ import annotations

import datetime
import json
import os
from pathlib import Path

import numpy as np

from mnistlab.common.atomic import write_text_atomic
from mnistlab.common.errors import ConfigError
from mnistlab.data.registry import FILE_NAMES
from mnistlab.evaluation import stats
from mnistlab.evaluation.analysis import STATISTICS_METHODS, compare_models
from mnistlab.reporting.document import cell_text
from mnistlab.reporting.html import render_html
from mnistlab.reporting.report import render_markdown, significance_statements
from mnistlab.reporting.run_comparison import ENTRY_HEADER, entry_rows, run_comparison_sections
from mnistlab.runs.claim import claimed
from mnistlab.runs.folder import COMPARISON_FILE, REPORT_HTML, REPORT_MARKDOWN, read_metrics, read_run_arrays

TEST_FILES = (FILE_NAMES["test_images"], FILE_NAMES["test_labels"])


def parse_entry(text: str) -> tuple[Path, str | None]:
    """`RUN[:MODEL]` -> (run folder, model or None); a folder whose own name holds a colon is taken whole."""
    if Path(text).is_dir() or ":" not in text:
        return Path(text), None
    run, _, model = text.rpartition(":")
    if not run or not model:
        raise ConfigError(f"{text!r}: give RUN or RUN:MODEL, e.g. runs/demo:cnn")
    return Path(run), model


def load_entry(text: str) -> dict:
    """One entry's run, model, seeds and per-seed predictions (S, N); `ConfigError` naming what is wrong."""
    run, model = parse_entry(text)
    if not run.is_dir():
        raise ConfigError(f"{text}: no such run folder; give a folder written by mnistlab compare")
    metrics = read_metrics(run)
    models = list(metrics["models"])
    if model is None:
        if len(models) > 1:
            raise ConfigError(f"{text}: the run holds {len(models)} models ({', '.join(models)}); "
                              f"name one, e.g. {run}:{models[0]}")
        model = models[0]
    if model not in metrics["models"]:
        raise ConfigError(f"{text}: the run holds no model {model!r}; it holds {', '.join(models)}")
    arrays = read_run_arrays(run)
    if model not in arrays.predicted or arrays.predicted[model].shape != (len(metrics["seeds"]), len(arrays.labels)):
        raise ConfigError(f"{run}: its predictions.npz does not match metrics.json for {model}; "
                          f"rerun mnistlab compare to write them again")
    return {"label": f"{run.name}:{model}", "run": str(run), "model": model, "metrics": metrics,
            "seeds": list(metrics["seeds"]), "labels": arrays.labels, "predicted": arrays.predicted[model]}


def check_same_test_set(entries: list[dict]) -> None:
    """Refuse entries scored on different test images (checksums), classes or labels, saying which differ."""
    first = entries[0]
    for entry in entries:
        dataset = entry["metrics"]["dataset"]
        missing = [name for name in TEST_FILES if name not in dataset["checksums"]]
        if missing:
            raise ConfigError(f"{entry['run']}: its metrics.json records no checksum for {missing[0]}, so its test set "
                              f"cannot be shown to be the others'; rerun it with mnistlab compare")
    for entry in entries[1:]:
        mine, theirs = entry["metrics"]["dataset"], first["metrics"]["dataset"]
        for name in TEST_FILES:
            if mine["checksums"][name] != theirs["checksums"][name]:
                raise ConfigError(
                    f"{entry['run']} and {first['run']} were tested on different test sets ({name}: SHA-256 "
                    f"{mine['checksums'][name][:12]}... against {theirs['checksums'][name][:12]}..., datasets "
                    f"{mine['name']!r} and {theirs['name']!r}); compare runs on the same test set only")
        if mine["class_names"] != theirs["class_names"]:
            raise ConfigError(f"{entry['run']} and {first['run']} name their classes differently; "
                              f"compare runs of one dataset")
        if not np.array_equal(entry["labels"], first["labels"]):
            raise ConfigError(f"{entry['run']}: its predictions.npz holds other test labels than {first['run']}'s; "
                              f"rerun mnistlab compare to write it again")


def pair_seeds(entries: list[dict]) -> tuple[list, list[list[int]]]:
    """(seed label per pair, each entry's rows in pair order): by seed when all share their seeds, else by position."""
    seed_sets = {tuple(sorted(entry["seeds"])) for entry in entries}
    if len(seed_sets) == 1:
        seeds = sorted(entries[0]["seeds"])
        return seeds, [[entry["seeds"].index(seed) for seed in seeds] for entry in entries]
    counts = {len(entry["seeds"]) for entry in entries}
    if len(counts) > 1:
        shown = ", ".join(f"{entry['label']} {len(entry['seeds'])}" for entry in entries)
        raise ConfigError(f"the entries have different numbers of seeds ({shown}); compare-runs pairs seeds one to "
                          f"one, so compare runs with as many seeds each")
    labels = ["/".join(str(entry["seeds"][row]) for entry in entries) for row in range(counts.pop())]
    return labels, [list(range(len(entry["seeds"]))) for entry in entries]


def compare_run_entries(entry_texts: list[str]) -> dict:
    """The comparison of the entries (see the module docstring), as comparison.json holds it."""
    if len(entry_texts) < 2:
        raise ConfigError("compare-runs needs two or more RUN[:MODEL] entries")
    entries = [load_entry(text) for text in entry_texts]
    labels = [entry["label"] for entry in entries]
    if len(set(labels)) < len(labels):  # two runs of one name in different folders: tell them apart by path
        labels = [f"{entry['run']}:{entry['model']}" for entry in entries]
    if len(set(labels)) < len(labels):
        raise ConfigError(f"{labels[0]} is given more than once; list each run's model once")
    check_same_test_set(entries)
    seed_labels, rows = pair_seeds(entries)
    test_labels = entries[0]["labels"].astype(np.uint8)
    predicted = {label: entry["predicted"][entry_rows_] for label, entry, entry_rows_ in zip(labels, entries, rows)}
    summaries = []
    for label, entry, entry_rows_ in zip(labels, entries, rows):
        accuracies = [float((entry["predicted"][row] == test_labels).mean()) for row in entry_rows_]
        metrics = entry["metrics"]
        summaries.append({"label": label, "run": entry["run"], "model": entry["model"],
                          "seeds": [entry["seeds"][row] for row in entry_rows_],
                          "test_accuracy": float(np.mean(accuracies)),
                          "accuracy": stats.t_interval(accuracies, bounds=(0.0, 1.0)),
                          "config": metrics["models"][entry["model"]]["config"], "created": metrics["created"],
                          "commit": metrics["versions"].get("commit")})
    dataset = entries[0]["metrics"]["dataset"]
    return {
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "entries": summaries,
        "seeds": seed_labels,
        "dataset": {"name": dataset["name"], "test_size": len(test_labels),
                    "test_checksums": {name: dataset["checksums"][name] for name in TEST_FILES}},
        "statistics": STATISTICS_METHODS,
        "comparisons": compare_models(labels, seed_labels, test_labels, predicted),
    }


def compare_runs(entry_texts: list[str], out_dir: str | os.PathLike, force: bool = False) -> dict:
    """Compare the entries and write comparison.json, report.md and report.html to `out_dir`; return the result.

    `out_dir` must be new or empty, or hold an earlier compare-runs result, which `force` replaces
    (only its own three files); anything else is refused before any work.
    """
    result = compare_run_entries(entry_texts)
    with claimed(out_dir, "compare-runs", resume=False, force=force) as folder:
        title = f"Across runs: {' vs '.join(entry['label'] for entry in result['entries'])}"
        sections = run_comparison_sections(result)
        write_text_atomic(folder / REPORT_MARKDOWN, render_markdown(title, sections))
        write_text_atomic(folder / REPORT_HTML, render_html(title, sections, folder))
        write_text_atomic(folder / COMPARISON_FILE, json.dumps(result, indent=2) + "\n")  # last: marks it complete
    return result


def comparison_table(result: dict) -> str:
    """A plain-text table for the terminal, then one line per pair on significance."""
    rows = [list(ENTRY_HEADER), *([cell_text(cell) for cell in row] for row in entry_rows(result))]
    widths = [max(len(row[column]) for row in rows) for column in range(len(ENTRY_HEADER))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines + [""] + [line.replace("**", "") for line in significance_statements(result)])
