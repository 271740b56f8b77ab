"""The structure of a run's `metrics.json` as `report` reads it, `check_metrics`, which holds a file to it, and
`read_metrics`, which reads it (light: the CLI checks a run folder with it before PyTorch loads).

A file written by `mnistlab compare` always fits; one edited by hand, cut short or
written by something else gets a one-line `MnistlabError` naming the file and the
first field that does not fit, instead of a traceback from deep inside a plot.

The schema is plain data: a type (`int`, `str`, `NUMBER`, `POSITIVE`, `OPTIONAL_NUMBER`, `ANY`),
a dict of field -> schema (a field named "?key" may be absent), `[schema]` for a
list, `NonEmpty([schema])`, and `MapOf(schema)` for a dict with any string keys.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path

from mnistlab.common.errors import MnistlabError

NUMBER = "a number"
OPTIONAL_NUMBER = "a number or null"
POSITIVE = "a number > 0"
ANY = "anything"
METRICS_FILE = "metrics.json"


@dataclass(frozen=True)
class MapOf:
    """A non-empty dict with string keys, every value fitting `values`."""

    values: object


@dataclass(frozen=True)
class NonEmpty:
    """A list with at least one item, each fitting the schema of `items` (a one-item list)."""

    items: list


SCORES = {"nll": NUMBER, "ece": NUMBER, "brier": NUMBER}
EPOCH = {"train_loss": NUMBER, "train_accuracy": NUMBER, "val_loss": NUMBER, "val_accuracy": NUMBER}
SEED_RECORD = {"history": NonEmpty([EPOCH]), "checkpoint": str, "?calibration": {"temperature": POSITIVE},
               "?evaluate_seconds": NUMBER}
MODEL = {
    "params": int, "test_accuracy": NUMBER, "test_loss": NUMBER, "train_seconds": NUMBER,
    "?accuracy": {"std": OPTIONAL_NUMBER, "ci_low": OPTIONAL_NUMBER, "ci_high": OPTIONAL_NUMBER},
    "confusion_matrix": NonEmpty([NonEmpty([NUMBER])]),
    "per_class": [{"class": str, "precision": NUMBER, "recall": NUMBER, "f1": NUMBER, "support": ANY}],
    "?confused_pairs": [{"true": str, "predicted": str, "count": ANY, "share": NUMBER}],
    "history": NonEmpty([EPOCH]), "seeds": NonEmpty([SEED_RECORD]),
    "config": {"epochs": int, "learning_rate": NUMBER, "batch_size": ANY, "?optimizer": str, "?schedule": str,
               "?augment": str, "?weight_decay": OPTIONAL_NUMBER, "?label_smoothing": OPTIONAL_NUMBER},
    "?calibration": {"temperature": POSITIVE, "before": SCORES, "after": SCORES},
    "?ensemble": {"seeds": ANY, "accuracy": NUMBER, **SCORES},
    "?not_a_digit": MapOf({"auroc": NUMBER, "threshold": NUMBER, "digits_kept": NUMBER,
                          "non_digits_flagged": NUMBER}),
    "?cost": {"params": int, "multiply_adds": int, "checkpoint_bytes": OPTIONAL_NUMBER,
              "inference": {"latency_ms_p50": POSITIVE, "images_per_second": POSITIVE, "threads": int}},
}
PAIR_TEST = {"difference": NUMBER, "only_first_correct": ANY, "only_second_correct": ANY, "p_value": NUMBER}
COMPARISON = {**PAIR_TEST, "models": [str], "ci_low": NUMBER, "ci_high": NUMBER, "p_value_holm": NUMBER,
              "significant": bool,
              "per_seed": [{**PAIR_TEST, "seed": ANY, "ci_low": NUMBER, "ci_high": NUMBER}]}
SWEEP_MODELS = MapOf({"mean": NonEmpty([NUMBER]), "std": NonEmpty([NUMBER])})
ROBUSTNESS = {
    "corruption_seed": ANY, "models": MapOf(MapOf({"mean": NUMBER, "std": OPTIONAL_NUMBER})),
    "comparisons": [{**PAIR_TEST, "models": [str], "corruption": str, "p_value_holm": NUMBER, "significant": bool}],
    "shift_sweep": {"pixels": NonEmpty([NUMBER]), "models": SWEEP_MODELS},
    "rotation_sweep": {"degrees": NonEmpty([NUMBER]), "models": SWEEP_MODELS},
}
METRICS = {
    "created": ANY, "seeds": NonEmpty([int]),
    "dataset": {"name": str, "class_names": NonEmpty([str]), "checksums": MapOf(str), "train_size": int,
                "validation_size": int, "test_size": int},
    "machine": {"platform": ANY, "cpu_count": ANY, "threads": ANY},
    "versions": MapOf(ANY),
    "models": MapOf(MODEL),
    "statistics": {"alpha": NUMBER, "difference_interval": ANY, "bootstrap_resamples": int, "bootstrap_seed": ANY,
                   "test": ANY, "pooling": ANY, "multiple_comparisons": ANY},
    "?comparisons": [COMPARISON],
    "?robustness": ROBUSTNESS,
}


class _Mismatch(Exception):
    """Where (a dotted path) and what the first field that does not fit is."""


def check_metrics(metrics, path: str | os.PathLike) -> dict:
    """Return `metrics` if it fits `METRICS` and is consistent; else `MnistlabError` naming `path` and the field."""
    try:
        _check(metrics, METRICS, "")
        _check_consistent(metrics)
    except _Mismatch as mismatch:
        raise MnistlabError(f"{Path(path)}: not a run's metrics ({mismatch}); rerun mnistlab compare "
                            f"to write it again") from None
    return metrics


def _check(value, schema, where: str) -> None:
    def fail(expected: str):
        raise _Mismatch(f"{where or 'the file'} must be {expected}, not {_describe(value)}")

    if schema is ANY:
        return
    if schema in (NUMBER, OPTIONAL_NUMBER, POSITIVE):
        if value is None and schema is OPTIONAL_NUMBER:
            return
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not _finite(value) \
                or (schema is POSITIVE and value <= 0):
            fail(schema)
    elif isinstance(schema, type):
        if not isinstance(value, schema) or (schema is int and isinstance(value, bool)):
            fail({int: "an integer", str: "a string", bool: "true or false"}[schema])
    elif isinstance(schema, dict):
        if not isinstance(value, dict):
            fail("an object")
        for key, item in schema.items():
            name = key.lstrip("?")
            if name in value:
                _check(value[name], item, f"{where}.{name}".lstrip("."))
            elif not key.startswith("?"):
                raise _Mismatch(f"{where or 'the file'} has no {name!r}")
    elif isinstance(schema, MapOf):
        if not isinstance(value, dict) or not value:
            fail("a non-empty object")
        for key, item in value.items():
            _check(item, schema.values, f"{where}.{key}")
    else:  # a list, possibly NonEmpty
        items = schema.items[0] if isinstance(schema, NonEmpty) else schema[0]
        if not isinstance(value, list) or (isinstance(schema, NonEmpty) and not value):
            fail("a non-empty list" if isinstance(schema, NonEmpty) else "a list")
        for index, item in enumerate(value):
            _check(item, items, f"{where}.{index}")


def _check_consistent(metrics: dict) -> None:
    """What the schema cannot say: sizes that must agree between fields."""
    classes = len(metrics["dataset"]["class_names"])
    for name, result in metrics["models"].items():
        matrix = result["confusion_matrix"]
        if len(matrix) != classes or any(len(row) != classes for row in matrix):
            raise _Mismatch(f"models.{name}.confusion_matrix must be {classes}x{classes}, one row and column per class")
        if "calibration" in result and not all("calibration" in record for record in result["seeds"]):
            raise _Mismatch(f"models.{name}.seeds must each have a calibration, as models.{name} has")
    for index, comparison in enumerate(metrics.get("comparisons", [])):
        if len(comparison["models"]) != 2:
            raise _Mismatch(f"comparisons.{index}.models must name two models")
    robustness = metrics.get("robustness")
    if robustness:
        corruptions = set(next(iter(robustness["models"].values())))
        for name, entry in robustness["models"].items():
            if set(entry) != corruptions:
                raise _Mismatch(f"robustness.models.{name} must score the same corruptions as the other models")
        for key, unit in (("shift_sweep", "pixels"), ("rotation_sweep", "degrees")):
            for name, entry in robustness[key]["models"].items():
                if len(entry["mean"]) != len(robustness[key][unit]) or len(entry["std"]) != len(entry["mean"]):
                    raise _Mismatch(f"robustness.{key}.models.{name} must have one mean and std per {unit[:-1]}")


def _finite(number: float) -> bool:
    """A finite number that a float can hold (JSON integers can be any size)."""
    try:
        return math.isfinite(number)
    except OverflowError:
        return False


def _describe(value) -> str:
    text = repr(value)
    return f"{type(value).__name__} {text[:40]}{'...' if len(text) > 40 else ''}"


def read_metrics(run_dir: str | os.PathLike) -> dict:
    """Load `metrics.json` from a run folder; `MnistlabError` naming the file if it is missing or does not fit
    (see `metrics_check`)."""
    path = Path(run_dir) / METRICS_FILE
    try:
        return check_metrics(json.loads(path.read_text(encoding="utf-8")), path)
    except OSError as error:
        raise MnistlabError(f"{path}: cannot read ({error.strerror}); pass a run folder written by mnistlab compare") from None
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as error:
        raise MnistlabError(f"{path}: not valid JSON ({error}); rerun mnistlab compare to write it again") from None
