"""The search space of `mnistlab tune`: which `TrainConfig` fields a study varies, over what ranges.

The default space comes from the model's recipe:

    learning_rate   log-uniform from the recipe's rate / 10 to x 10
    batch_size      one of 64, 128, 256
    weight_decay    log-uniform from 1e-5 to 0.1, with the AdamW optimiser (1e-5 is as good as none)

Dropout is not searched: `build_model(name)` builds every model with its
constructor defaults, and `train` passes no model arguments, so a dropout rate
is not a training setting here. A TOML file's `[space]` table narrows or widens
the space, one line per field:

    [space]
    learning_rate = { low = 1e-4, high = 1e-2, log = true }
    batch_size = { choices = [128, 256] }
    label_smoothing = { low = 0.0, high = 0.2 }
    weight_decay = 0.0            # a plain value fixes the field: it is no longer searched

Training settings the user gives (flags or `--config`) are fixed too and leave the space.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path

from mnistlab.training.config import TrainConfig, load_config, read_toml
from mnistlab.common.errors import ConfigError

SEARCHABLE = ("learning_rate", "batch_size", "optimizer", "weight_decay", "schedule", "warmup_fraction",
              "label_smoothing", "augment")  # the TrainConfig fields that are training choices, not the budget
BATCH_SIZES = (64, 128, 256)
WEIGHT_DECAY_RANGE = (1e-5, 1e-1)  # AdamW decay per step, as a multiple of the learning rate
LEARNING_RATE_SPAN = 10.0  # the default range is the recipe's rate divided and multiplied by this


@dataclass(frozen=True)
class Parameter:
    """One searched field: a numeric range (`low`, `high`, on a log scale if `log`) or a list of `choices`."""

    name: str
    low: float | None = None
    high: float | None = None
    log: bool = False
    choices: tuple | None = None

    def suggest(self, trial):
        """The value an Optuna trial draws for this field."""
        if self.choices is not None:
            return trial.suggest_categorical(self.name, list(self.choices))
        if _field_types()[self.name] == "int":
            return trial.suggest_int(self.name, int(self.low), int(self.high), log=self.log)
        return trial.suggest_float(self.name, float(self.low), float(self.high), log=self.log)

    def describe(self) -> str:
        """The range in words, e.g. "0.0001 to 0.01 (log scale)" or "one of 64, 128, 256"."""
        if self.choices is not None:
            return "one of " + ", ".join(str(choice) for choice in self.choices)
        return f"{self.low:g} to {self.high:g}{' (log scale)' if self.log else ''}"

    def extremes(self) -> list:
        """The values a config must accept for the whole range to be valid."""
        return list(self.choices) if self.choices is not None else [self.low, self.high]


@dataclass
class SearchSpace:
    """The searched parameters, and the fields the study fixes for every trial (the user's settings win over them)."""

    parameters: dict[str, Parameter] = field(default_factory=dict)
    fixed: dict = field(default_factory=dict)

    def suggest(self, trial) -> dict:
        """One trial's drawn values, by field name."""
        return {name: parameter.suggest(trial) for name, parameter in self.parameters.items()}

    def to_dict(self) -> dict:
        """Plain data, recorded with the study so that `--resume` can check the space is unchanged."""
        return {"parameters": {name: {key: value for key, value in dataclasses.asdict(parameter).items()
                                      if key != "name" and value not in (None, False)}
                               for name, parameter in self.parameters.items()},
                "fixed": dict(self.fixed)}


def _field_types() -> dict[str, str]:
    return {item.name: ("int" if "int" in item.type and "float" not in item.type else "other")
            for item in dataclasses.fields(TrainConfig)}


def default_space(recipe_config: TrainConfig) -> SearchSpace:
    """The space above, around a model's recipe config."""
    rate = recipe_config.learning_rate
    return SearchSpace(
        parameters={
            "learning_rate": Parameter("learning_rate", rate / LEARNING_RATE_SPAN, rate * LEARNING_RATE_SPAN, log=True),
            "batch_size": Parameter("batch_size", choices=BATCH_SIZES),
            "weight_decay": Parameter("weight_decay", *WEIGHT_DECAY_RANGE, log=True),
        },
        fixed={"optimizer": "adamw"},  # weight decay needs it; AdamW with no decay is Adam
    )


def build_space(model_name: str, recipe: dict, settings: dict, path: str | os.PathLike | None = None) -> SearchSpace:
    """The default space, changed by the `[space]` table of the TOML file at `path`, less the fields in `settings`.

    Raises `ConfigError` naming the file and the field for anything a trial could not train with.
    """
    space = default_space(load_config(recipe=recipe))
    where = f"{path}: " if path is not None else ""
    if path is not None:
        for name, entry in _read_space_table(Path(path)).items():
            if name not in SEARCHABLE:
                raise ConfigError(f"{where}[space] {name} cannot be searched; searchable fields: {', '.join(SEARCHABLE)}")
            space.parameters.pop(name, None)
            space.fixed.pop(name, None)
            if isinstance(entry, dict):
                space.parameters[name] = _parameter(name, entry, where)
            else:
                space.fixed[name] = entry
    for name in settings:  # the user's own settings are fixed, not searched
        space.parameters.pop(name, None)
    if not space.parameters:
        raise ConfigError(f"{where}nothing left to search: every field is fixed; search at least one of "
                          f"{', '.join(SEARCHABLE)}")
    for parameter in space.parameters.values():  # every end of every range must make a valid config
        for value in parameter.extremes():
            try:
                load_config(recipe=recipe, **{**space.fixed, **settings, parameter.name: value})
            except ConfigError as error:
                raise ConfigError(f"{where}searching {parameter.name} over {parameter.describe()}: {error}") from None
    optimizer = {**space.fixed, **settings}.get("optimizer", recipe.get("optimizer", "adam"))
    if "weight_decay" in space.parameters and optimizer != "adamw":
        raise ConfigError(f"{where}weight_decay is searched but optimizer = {optimizer!r} ignores it; "
                          f"use optimizer \"adamw\" or fix weight_decay")
    return space


def _read_space_table(path: Path) -> dict:
    document = read_toml(path, "space")
    table = document.get("space")
    if not isinstance(table, dict) or set(document) - {"space"}:
        raise ConfigError(f"{path}: a space file holds one [space] table (field = {{ low = ..., high = ... }} lines) "
                          f"and nothing else; fix the file")
    return table


def _parameter(name: str, entry: dict, where: str) -> Parameter:
    """A `[space]` table entry as a `Parameter`, its keys and types checked."""
    keys = set(entry)
    if keys == {"choices"}:
        choices = entry["choices"]
        if not isinstance(choices, list) or not choices or len(set(map(repr, choices))) != len(choices):
            raise ConfigError(f"{where}[space] {name}: choices must be a non-empty list of distinct values")
        return Parameter(name, choices=tuple(choices))
    if keys not in ({"low", "high"}, {"low", "high", "log"}):
        raise ConfigError(f"{where}[space] {name} = {entry!r} is invalid; give {{ low = ..., high = ... }} "
                          f"(and log = true for a log scale) or {{ choices = [...] }}")
    low, high, log = entry["low"], entry["high"], entry.get("log", False)
    numbers = all(isinstance(value, (int, float)) and not isinstance(value, bool) for value in (low, high))
    if not numbers or not isinstance(log, bool) or not low < high or (log and low <= 0):
        raise ConfigError(f"{where}[space] {name} = {entry!r} is invalid; low and high must be numbers with "
                          f"low < high (and low > 0 on a log scale)")
    if _field_types()[name] == "int" and not (isinstance(low, int) and isinstance(high, int)):
        raise ConfigError(f"{where}[space] {name}: low and high must be integers")
    return Parameter(name, low, high, log=log)
