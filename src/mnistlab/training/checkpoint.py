"""Self-describing checkpoints: weights plus everything needed to rebuild and trust them.

A checkpoint is a `torch.save` dict of plain types and tensors, so it loads with
`weights_only=True` (no arbitrary code runs when a checkpoint is opened).

Its classes: `model_arguments["num_classes"]` (the model's outputs) and
`dataset["class_names"]` (one name per output), with `dataset["preprocess"]`
saying how `predict` and `serve` turn an image file into an input ("digits":
the MNIST photo preprocessing; "plain": a resize, see `preprocess`).
Checkpoints written before these were recorded load as the ten digits.

A model of the user's own (see `models.spec`) is recorded as `model_spec`: its
label, where its code was, its constructor arguments, and a copy of its source
with the source's SHA-256. Loading one runs that code, so it needs `trust_code`.
"""

from __future__ import annotations

import hashlib
import os
import platform
from pathlib import Path

import numpy as np
import torch
from torch import nn

from mnistlab.common.version import __version__, source_commit
from mnistlab.common.atomic import atomic_path
from mnistlab.data.registry import DATASETS
from mnistlab.training.checkpoint_path import check_checkpoint_file
from mnistlab.common.errors import CheckpointError
from mnistlab.models import MAX_CLASSES, MODELS, NUM_CLASSES
from mnistlab.models.contract import build
from mnistlab.models.spec import (KINDS, LABEL, MAX_SOURCE_BYTES, ModelSpec, as_spec, builtin_spec, plain_arguments,
                                  spec_from_record)

FORMAT_VERSION = 1
PREPROCESSING = ("digits", "plain")  # how predict and serve read image files for a checkpoint (see `preprocess`)
BACKGROUNDS = ("dark", "light")  # the training images' background, which "plain" inputs are brought to


def library_versions() -> dict[str, str]:
    """Versions that can change a run's numbers, recorded with every run."""
    return {
        "mnistlab": __version__,
        "torch": str(torch.__version__),
        "numpy": np.__version__,
        "python": platform.python_version(),
        **({"commit": source_commit()} if source_commit() else {}),  # the source's git commit, from a checkout
    }


def checkpoint_contents(model: nn.Module, spec: str | ModelSpec, config: dict, dataset: dict, metrics: dict) -> dict:
    """What a checkpoint holds: CPU weights and the records that describe them (plain types, for weights_only)."""
    spec = as_spec(spec)
    contents = {
        "format_version": FORMAT_VERSION,
        "model_name": spec.label,
        "model_arguments": {"num_classes": output_count(model, dataset)},  # all else: the model's defaults
        "state_dict": {key: value.detach().cpu().contiguous() for key, value in model.state_dict().items()},
        "config": config,
        "dataset": dataset,
        "metrics": metrics,
        "versions": library_versions(),
    }
    if not spec.builtin or spec.label != spec.target:  # a user's model, or a built-in under another label
        contents["model_spec"] = spec.to_record()
    return contents


def output_count(model: nn.Module, dataset: dict) -> int:
    """The model's class count: one per recorded class name, else its output layer's size, else 10."""
    if dataset.get("class_names"):
        return len(dataset["class_names"])
    return getattr(getattr(model, "out", None), "out_features", NUM_CLASSES)


def write_checkpoint(path: str | os.PathLike, contents: dict) -> None:
    """Write `checkpoint_contents` to `path` atomically."""
    with atomic_path(path) as temporary:
        torch.save(contents, temporary)


def save_checkpoint(
    path: str | os.PathLike, model: nn.Module, spec: str | ModelSpec, config: dict, dataset: dict, metrics: dict
) -> None:
    """Write a checkpoint atomically. `dataset` holds its name, class names and payload checksums."""
    write_checkpoint(path, checkpoint_contents(model, spec, config, dataset, metrics))


def load_checkpoint(path: str | os.PathLike, trust_code: bool = False,
                    expected: ModelSpec | None = None) -> tuple[nn.Module, dict]:
    """Rebuild the model from a checkpoint; return (model in eval mode, the checkpoint dict).

    A model of the user's own is built by running the code the checkpoint records, only with `trust_code`;
    or, where the caller has the spec it trained that model from (`expected`: same label, code, hash and
    arguments), by running the caller's own spec, which needs no trust.
    """
    state = read_checkpoint(path)
    spec = recorded_spec(state, path, trust_code, expected)
    model = build(spec, num_classes=len(state["dataset"]["class_names"]))
    try:
        model.load_state_dict(state["state_dict"])
    except (RuntimeError, TypeError, AttributeError, ValueError) as error:
        first_line = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise CheckpointError(f"{path}: weights do not fit model {state['model_name']!r} ({first_line[:200]})") from None
    return model.eval(), state


def read_checkpoint(path: str | os.PathLike) -> dict:
    """A checkpoint's contents, every field checked, without building its model (so no code of it runs)."""
    path = check_checkpoint_file(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises many types (pickle, zip, runtime) for a bad file
        raise CheckpointError(
            f"{path}: not a readable mnistlab checkpoint ({type(error).__name__}); train again or pass another file"
        ) from None
    check_fields(state, path)
    state["dataset"]["class_names"] = class_names_of(state)
    return state


def check_fields(state, path: Path) -> None:
    """Raise `CheckpointError` naming the first field that is missing or wrong, before anything is built.

    A file that passes `weights_only` can still hold any dicts, lists and tensors,
    so every field the loaders use is checked for type and range here.
    """
    def fail(problem: str):
        raise CheckpointError(f"{path}: not a valid mnistlab checkpoint ({problem}); train again or pass another file")

    if not isinstance(state, dict) or type(state.get("format_version")) is not int \
            or state["format_version"] != FORMAT_VERSION:
        fail(f"format version {FORMAT_VERSION} expected")
    name = state.get("model_name")
    if "model_spec" in state:
        check_spec_record(state["model_spec"], name, fail)
    elif not isinstance(name, str) or name not in MODELS:
        raise CheckpointError(
            f"{path}: model {str(name)[:60]!r} is not registered in this mnistlab; known: {', '.join(MODELS)}")
    arguments = state.get("model_arguments", {})
    if not isinstance(arguments, dict) or set(arguments) - {"num_classes"}:
        fail("model_arguments may hold only num_classes: registered models are built with their own sizes")
    count = arguments.get("num_classes", NUM_CLASSES)
    if type(count) is not int or not 2 <= count <= MAX_CLASSES:
        fail(f"model_arguments num_classes must be an integer from 2 to {MAX_CLASSES}")
    weights = state.get("state_dict")
    if not isinstance(weights, dict) or not all(isinstance(key, str) and isinstance(value, torch.Tensor)
                                                for key, value in weights.items()):
        fail("state_dict must map parameter names to tensors")
    dataset = state.get("dataset")
    if not isinstance(dataset, dict) or not isinstance(dataset.get("name", ""), str):
        fail("dataset must be a dict, its name a string")
    class_names = dataset.get("class_names", ["0"])
    if not (isinstance(class_names, list) and 1 <= len(class_names) <= count
            and all(isinstance(label, str) and len(label) <= 100 for label in class_names)):
        fail(f"dataset class_names must be 1 to {count} short strings (one per model output)")
    if "num_classes" in arguments and len(class_names) != count and "class_names" in dataset:
        fail(f"dataset class_names has {len(class_names)} names for {count} model outputs")
    if dataset.get("preprocess", "digits") not in PREPROCESSING or dataset.get("background", "dark") not in BACKGROUNDS:
        fail(f"dataset preprocess must be one of {', '.join(PREPROCESSING)}, background one of {', '.join(BACKGROUNDS)}")
    for field in ("config", "metrics"):
        if not isinstance(state.get(field), dict):
            fail(f"{field} must be a dict")
    for key in ("test_accuracy", "not_sure_threshold"):
        value = state["metrics"].get(key)
        if value is not None and not (isinstance(value, float) and 0 <= value <= 1):
            fail(f"metrics {key} must be a fraction")


def check_spec_record(record, name, fail) -> None:
    """A recorded `model_spec` has the fields `models.spec.spec_from_record` reads, of plain types."""
    fields = {"label": str, "kind": str, "target": str, "arguments": dict, "source": str, "source_sha256": str,
              "recipe": dict}
    if not isinstance(record, dict) or set(record) - set(fields) or not {"label", "kind", "target"} <= set(record):
        fail("model_spec must be a dict with label, kind and target")
    if any(not isinstance(value, fields[key]) for key, value in record.items()):
        fail("model_spec fields have the wrong types")
    if record["kind"] not in KINDS or record["label"] != name or ("source" in record) != ("source_sha256" in record):
        fail("model_spec is inconsistent (kind, label, or source without its hash)")
    if record["kind"] == "built-in" and record.get("arguments"):
        fail("model_spec gives arguments to a built-in model, which is built with its own sizes")
    if not LABEL.match(record["label"]) or len(record["target"]) > 300 or not plain_arguments(record.get("arguments", {})):
        fail("model_spec's label, target or arguments are not what a model spec holds")


def recorded_spec(state: dict, path: Path, trust_code: bool, expected: ModelSpec | None = None) -> ModelSpec:
    """The spec that builds a checkpoint's model; a model of the user's own only with `trust_code`, from its
    recorded source, which must match its recorded hash, or as `expected` where it records exactly that spec."""
    if "model_spec" not in state:
        return builtin_spec(state["model_name"])
    spec = spec_from_record(state["model_spec"])
    if spec.builtin:
        if spec.target not in MODELS:
            raise CheckpointError(f"{path}: model {spec.target[:60]!r} is not registered in this mnistlab; "
                                  f"known: {', '.join(MODELS)}")
        return spec
    if expected is not None and same_model(spec, expected):
        return expected
    where = spec.target.rpartition(":")[0]
    changed = ""
    if spec.kind == "file" and changed_since_training(where, spec.source_sha256):
        changed = f"; {where} has changed since training (SHA-256 differs), the recorded copy would run"
    if not trust_code:
        raise CheckpointError(f"{path}: model {spec.label} is built by running code ({spec.target}, recorded in the "
                              f"checkpoint){changed}; if you trust it, pass --trust-code (Python: trust_code=True)")
    if spec.source is not None and hashlib.sha256(spec.source.encode("utf-8")).hexdigest() != spec.source_sha256:
        raise CheckpointError(f"{path}: the recorded source of model {spec.label} does not match its SHA-256 (the "
                              f"file is damaged); train again or pass another file")
    if spec.kind == "file" and spec.source is None:
        raise CheckpointError(f"{path}: model {spec.label} has no recorded source; train again")
    return spec


def same_model(recorded: ModelSpec, expected: ModelSpec) -> bool:
    """Whether a checkpoint records the model `expected` names: label, kind, target, arguments and code hash."""
    fields = ("label", "kind", "target", "arguments", "source_sha256")
    return all(getattr(recorded, field) == getattr(expected, field) for field in fields) and not expected.builtin


def changed_since_training(path: str, sha256: str | None) -> bool:
    """Whether the model file at `path` (as recorded: a crafted record may name any file) differs from the source
    the checkpoint holds. Only a readable .py file of a model file's size is read."""
    try:
        if not path.endswith(".py") or not os.path.isfile(path) or os.path.getsize(path) > MAX_SOURCE_BYTES:
            return False
        with open(path, "rb") as file:
            return hashlib.sha256(file.read(MAX_SOURCE_BYTES + 1)).hexdigest() != sha256
    except OSError:
        return False


def class_names_of(state: dict) -> list[str]:
    """One class name per model output. Checkpoints without `num_classes` have the 10 digit outputs; their names,
    where fewer (image folders labelled by digit before class counts were recorded), are completed by index."""
    count = state.get("model_arguments", {}).get("num_classes", NUM_CLASSES)
    names = list(state.get("dataset", {}).get("class_names") or [])
    return names + [str(index) for index in range(len(names), count)]


def preprocessing_of(state: dict) -> str:
    """"digits" or "plain": the recorded `dataset["preprocess"]`, else the registered dataset's, else "digits"
    (checkpoints written before it was recorded were trained on the digits or on a registered dataset)."""
    dataset = state.get("dataset", {})
    registered = DATASETS.get(dataset.get("name", ""))
    return dataset.get("preprocess") or (registered.preprocess if registered else "digits")


def background_of(state: dict) -> str:
    """"dark" or "light": the training images' background as recorded; "dark" (every registered dataset) if not."""
    return state.get("dataset", {}).get("background") or "dark"
