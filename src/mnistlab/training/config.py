"""Training configuration: a typed dataclass with the study's defaults, loadable from TOML."""

from __future__ import annotations

import dataclasses
import math
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from mnistlab.common.errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib


OPTIMIZERS = ("adam", "adamw")
SCHEDULES = ("constant", "onecycle", "cosine")
AUGMENTATIONS = ("none", "shift-rotate")
PRECISIONS = ("fp32", "bf16")
SEED_LIMIT = 2**32  # seeds are below this: NumPy's and scikit-learn's random states take 32-bit seeds


@dataclass
class TrainConfig:
    """Everything that determines a training run's numbers. Defaults are the seed study's protocol."""

    dataset: str = "mnist"  # registry name of the dataset
    epochs: int = 5  # passes over the training split
    batch_size: int = 128  # images per optimiser step
    learning_rate: float = 1e-3  # Adam step size
    validation_fraction: float = 0.1  # share of the training set held out (stratified) for validation
    seed: int = 0  # drives the split, the initial weights and the batch order
    limit_train: int | None = None  # use a seeded random subset of this many training images (quick runs)
    train_size: int | None = None  # use the nested, stratified subset of this many (compare --train-sizes)
    optimizer: str = "adam"  # "adam" (the study's) or "adamw" (decoupled weight decay)
    weight_decay: float = 0.0  # AdamW decoupled weight decay per step, as a multiple of the learning rate
    schedule: str = "constant"  # learning-rate schedule over all steps: "constant", "onecycle" or "cosine"
    warmup_fraction: float = 0.2  # onecycle: share of the steps spent rising to learning_rate
    label_smoothing: float = 0.0  # cross-entropy label smoothing, 0 = plain one-hot targets
    augment: str = "none"  # on-the-fly training augmentation: "none" or "shift-rotate"
    precision: str = "fp32"  # "fp32" (the study's), or "bf16": bfloat16 autocast for forward and loss

    def validate(self) -> "TrainConfig":
        """Raise `ConfigError` naming the first bad field; return self."""
        checks = [
            ("epochs", 1 <= self.epochs <= 10_000, "an integer from 1 to 10,000"),
            ("batch_size", 1 <= self.batch_size <= 65_536, "an integer from 1 to 65,536"),
            ("learning_rate", 0 < self.learning_rate <= 10, "a number > 0 and <= 10 (Adam's usual range is 1e-4 to 1e-2)"),
            ("validation_fraction", 0 < self.validation_fraction < 1, "a fraction strictly between 0 and 1"),
            ("seed", 0 <= self.seed < SEED_LIMIT, "an integer from 0 to 2**32 - 1"),
            ("limit_train", self.limit_train is None or self.limit_train >= 100, "an integer >= 100"),
            ("train_size", self.train_size is None or (self.train_size >= 20 and self.limit_train is None),
             "an integer >= 20, without limit_train"),
            ("optimizer", self.optimizer in OPTIMIZERS, f"one of {', '.join(OPTIMIZERS)}"),
            ("weight_decay", 0 <= self.weight_decay <= 10, "a number from 0 to 10"),
            ("schedule", self.schedule in SCHEDULES, f"one of {', '.join(SCHEDULES)}"),
            ("warmup_fraction", 0 < self.warmup_fraction < 1, "a fraction strictly between 0 and 1"),
            ("label_smoothing", 0 <= self.label_smoothing < 1, "a number in [0, 1)"),
            ("augment", self.augment in AUGMENTATIONS, f"one of {', '.join(AUGMENTATIONS)}"),
            ("precision", self.precision in PRECISIONS, f"one of {', '.join(PRECISIONS)}"),
        ]
        for field in dataclasses.fields(self):  # NaN passes no range check; infinity passes some
            value = getattr(self, field.name)
            if isinstance(value, float) and not math.isfinite(value):
                raise ConfigError(f"{field.name} = {value!r} is invalid; it must be a finite number")
        for name, ok, expected in checks:
            if not ok:
                raise ConfigError(f"{name} = {getattr(self, name)!r} is invalid; it must be {expected}")
        return self

    def to_dict(self) -> dict:
        """Plain dict of the fields, for JSON and checkpoints (`train_size` only when set: plans and checkpoints
        of runs without it read as they always did)."""
        values = dataclasses.asdict(self)
        if values["train_size"] is None:
            del values["train_size"]
        return values


def describe_training(config: dict) -> str:
    """How a model was trained, in one phrase, e.g. "5 epochs of Adam, learning rate 0.001, batch size 128"."""
    epochs = f"{config['epochs']} epoch{'s' if config['epochs'] > 1 else ''}"
    optimizer = "AdamW" if config.get("optimizer") == "adamw" else "Adam"
    if config.get("weight_decay"):
        optimizer += f" (weight decay {config['weight_decay']:g})"
    rate = {"onecycle": "one-cycle schedule peaking at learning rate", "cosine": "cosine decay from learning rate"}
    parts = [f"{epochs} of {optimizer}, {rate.get(config.get('schedule'), 'learning rate')} {config['learning_rate']:g}",
             f"batch size {config['batch_size']}"]
    if config.get("augment", "none") != "none":
        parts.append(f"{config['augment']} augmentation")
    if config.get("label_smoothing"):
        parts.append(f"label smoothing {config['label_smoothing']:g}")
    return ", ".join(parts)


def read_settings(path: str | os.PathLike | None = None, **overrides) -> dict:
    """The settings a user chose: the `[train]` table (or top level) of a TOML file, then non-None `overrides`.

    Keys and types are checked here; values are checked when a config is built.
    """
    values: dict = {}
    if path is not None:
        values = _read_toml(Path(path))
    values.update({key: value for key, value in overrides.items() if value is not None})
    _check_types(values)
    return values


def load_config(path: str | os.PathLike | None = None, recipe: dict | None = None, **overrides) -> TrainConfig:
    """Defaults, then a model's `recipe`, then a TOML file, then non-None `overrides`."""
    settings = read_settings(path, **overrides)
    _check_types(recipe or {})
    return TrainConfig(**{**(recipe or {}), **settings}).validate()


def _check_types(values: dict) -> None:
    fields = {field.name: field for field in dataclasses.fields(TrainConfig)}
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise ConfigError(f"unknown config key(s) {', '.join(unknown)}; known keys: {', '.join(fields)}")
    for name, value in values.items():
        if not _matches(fields[name].type, value):
            raise ConfigError(f"config key {name} = {value!r} has the wrong type; expected {fields[name].type}")


def read_toml(path: Path, kind: str = "config") -> dict:
    """A TOML file's contents; `ConfigError` naming the `kind` of file when it cannot be read or parsed."""
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise ConfigError(f"{path}: cannot read {kind} file ({error.strerror}); check the path") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise ConfigError(f"{path}: not valid TOML ({error}); fix the file") from None


def read_model_tables(path: str | os.PathLike | None) -> dict[str, dict]:
    """A config file's `[models.LABEL]` tables: models of the user's own named in the file, each with a `spec`
    string and optional `arguments` table (constructor arguments), e.g.

        [models.wide]
        spec = "examples/my_model.py:SmallResNet"
        arguments = { width = 32 }
    """
    if path is None:
        return {}
    tables = read_toml(Path(path)).get("models", {})
    if not isinstance(tables, dict) or not all(isinstance(table, dict) for table in tables.values()):
        raise ConfigError(f"{path}: 'models' must hold tables ([models.LABEL] with spec = \"FILE.py:Class\"); "
                          f"fix the file")
    for label, table in tables.items():
        if not isinstance(table.get("spec"), str) or set(table) - {"spec", "arguments"} \
                or not isinstance(table.get("arguments", {}), dict):
            raise ConfigError(f"{path}: [models.{label}] needs spec = \"FILE.py:Class\" and may have an arguments "
                              f"table, nothing else; fix the file")
    return tables


def _read_toml(path: Path) -> dict:
    """The settings of a config file: its `[train]` table, or its top level when it has no tables; every other
    key or table is a `ConfigError` (a setting left out of `[train]`, or a misspelled table, is never dropped).
    `[models.LABEL]` tables are read by `read_model_tables`."""
    document = read_toml(path)
    document.pop("models", None)
    if "train" not in document:
        tables = [key for key, value in document.items() if isinstance(value, dict)]
        if tables:
            raise ConfigError(f"{path}: unknown table [{tables[0]}]; the accepted tables are [train] (or the settings "
                              f"at the top level, with no table) and [models.LABEL]; fix the file")
        return document
    values = document["train"]
    if not isinstance(values, dict):
        raise ConfigError(f"{path}: 'train' must be a table of settings ([train] with key = value lines), "
                          f"not {type(values).__name__}; fix the file")
    outside = [key for key in document if key != "train"]
    if outside:
        kind = "table" if isinstance(document[outside[0]], dict) else "setting"
        raise ConfigError(f"{path}: {kind} {outside[0]!r} is outside the [train] table, the only one read; move "
                          f"it into [train] (key = value lines after the [train] line) or remove it")
    return values


def _matches(annotation: str, value) -> bool:
    """Type check against the dataclass annotation strings used above."""
    if isinstance(value, bool):
        return False
    if "int" in annotation and isinstance(value, int):
        return True
    if "float" in annotation and isinstance(value, (int, float)):
        return True
    return "str" in annotation and isinstance(value, str)


def model_config(model, settings: dict) -> TrainConfig:
    """The config a model trains with: the study's defaults, then its recipe, then the user's `settings`.

    `model` is a registered name or a `models.spec.ModelSpec` (whose recipe comes from its code).
    """
    from mnistlab.models.spec import as_spec

    spec = as_spec(model)
    try:
        return load_config(recipe=spec.recipe, **settings)
    except ConfigError as error:
        if spec.builtin or spec.recipe.keys() <= settings.keys():
            raise
        raise ConfigError(f"model {spec}: {error} (from its recipe, or your settings on top of it)") from None
