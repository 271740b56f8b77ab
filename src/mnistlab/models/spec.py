"""Model specs: which network a run trains, named the way a user writes it.

    cnn                                  a built-in model (`mnistlab models` lists them)
    examples/my_model.py:SmallResNet     a class or factory in a Python file
    my_package.nets:Wide(width=64)       one in an importable module, with constructor arguments
    tiny                                 a model an installed package adds (entry-point group "mnistlab.models")
    mine=examples/my_model.py:SmallResNet   any of these, labelled "mine" in the run's folder and reports

A file's source text and its SHA-256 travel with the spec, so local workers and
Ray tasks build the same network without a shared disk, and checkpoints can say
which code they need (see `training.checkpoint`). Parsing reads the file but runs
no code; `models.contract` imports, builds and checks the model.
"""

from __future__ import annotations

import ast
import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path

from mnistlab.common.errors import ConfigError
from mnistlab.models.catalogue import BUILT_IN

ENTRY_POINT_GROUP = "mnistlab.models"
KINDS = ("built-in", "file", "module", "plugin")
LABEL = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]{0,39}\Z")  # a label is part of file names (checkpoints, figures)
MAX_SOURCE_BYTES = 1_000_000  # a model file larger than this is not a model definition
MAX_ARGUMENTS = 32  # constructor arguments, and items in a list argument


@dataclass(frozen=True)
class ModelSpec:
    """One model of a run: its label, where its code is, and the constructor arguments it is built with."""

    label: str  # the model's name in the run folder, metrics and reports
    kind: str  # one of KINDS
    target: str  # "cnn", "path/to/file.py:Attr" or "package.module:Attr"
    arguments: dict = field(default_factory=dict)  # keyword arguments for the constructor (plain values)
    source: str | None = None  # kind "file": the file's text; "module"/"plugin": the module's, when recorded
    source_sha256: str | None = None  # SHA-256 of `source`'s UTF-8 bytes
    recipe: dict = field(default_factory=dict)  # TrainConfig fields the model trains with unless the user says

    @property
    def builtin(self) -> bool:
        return self.kind == "built-in"

    def __str__(self) -> str:
        """The spec as a user writes it, e.g. `mine=my.py:Net(width=64)`."""
        arguments = ", ".join(f"{key}={value!r}" for key, value in self.arguments.items())
        text = self.target + (f"({arguments})" if arguments else "")
        return text if self.label == default_label(self.kind, self.target) else f"{self.label}={text}"

    def to_record(self, with_source: bool = True) -> dict:
        """Plain types for metrics.json, plans and checkpoints (which load with `weights_only`)."""
        record = {"label": self.label, "kind": self.kind, "target": self.target, "arguments": dict(self.arguments)}
        if self.source_sha256:
            record["source_sha256"] = self.source_sha256
            if with_source:
                record["source"] = self.source
        if self.recipe:
            record["recipe"] = dict(self.recipe)
        return record


def builtin_spec(name: str) -> ModelSpec:
    """The spec of a built-in (or `register_model`-registered) model name, with its recipe."""
    import sys

    registry = sys.modules.get("mnistlab.models.registry")  # loaded: it holds notebook-registered models too
    if registry is not None and name in registry.RECIPES:
        recipe = registry.RECIPES[name]
    else:
        recipe = BUILT_IN[name].recipe if name in BUILT_IN else {}
    return ModelSpec(label=name, kind="built-in", target=name, recipe=dict(recipe))


def as_spec(model: "str | ModelSpec") -> ModelSpec:
    """A spec as is; a string parsed with `parse_spec`."""
    return model if isinstance(model, ModelSpec) else parse_spec(model)


def parse_spec(text: str, arguments: dict | None = None, label: str | None = None) -> ModelSpec:
    """Read a model spec (see the module's docstring); `ConfigError` naming the spec and the fix when it is wrong.

    `arguments` (a TOML table) and `label` are used when the text gives none of its own.
    """
    text = text.strip()
    given_label, text = split_label(text)
    if given_label is not None:
        check_label(given_label, text)
    target, written = split_arguments(text)
    arguments = {**(arguments or {}), **written}
    if not plain_arguments(arguments):
        raise ConfigError(f"model {text!r}: its constructor arguments must be up to {MAX_ARGUMENTS} name=value pairs "
                          f"of numbers, short strings, booleans or short lists of those")
    if target in BUILT_IN or (":" not in target and target in registered_names()):
        if arguments:
            raise ConfigError(f"model {text!r}: built-in models take no constructor arguments; "
                              f"drop the (...) or name a model of your own")
        spec = builtin_spec(target)
    elif ":" in target:
        where, _, attribute = target.rpartition(":")
        if not where or not re.fullmatch(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*", attribute):
            raise ConfigError(f"model {text!r}: expected FILE.py:Name or package.module:Name, with Name a class or "
                              f"function in it")
        if where.endswith(".py") or "/" in where or "\\" in where:
            spec = file_spec(text, Path(where), attribute, arguments)
        else:
            spec = ModelSpec(label=attribute, kind="module", target=target, arguments=arguments)
    else:
        spec = plugin_spec(text, target, arguments)
    label = given_label or label or spec.label
    check_label(label, text)
    return ModelSpec(label, spec.kind, spec.target, spec.arguments, spec.source, spec.source_sha256, spec.recipe)


def plain_arguments(arguments) -> bool:
    """Whether constructor arguments are what a spec may carry: a few names, each a number, bool, None, a string of
    at most 200 characters, or a list of at most MAX_ARGUMENTS of those (checked without deep recursion: a
    checkpoint's record may be crafted)."""
    def scalar(value) -> bool:
        return value is None or isinstance(value, (bool, int, float)) or (isinstance(value, str) and len(value) <= 200)

    return (isinstance(arguments, dict) and len(arguments) <= MAX_ARGUMENTS
            and all(isinstance(key, str) and key.isidentifier() and len(key) <= 40 for key in arguments)
            and all(scalar(value) or (isinstance(value, (list, tuple)) and len(value) <= MAX_ARGUMENTS
                                      and all(scalar(item) for item in value)) for value in arguments.values()))


def check_label(label: str, text: str) -> None:
    if not LABEL.match(label):
        raise ConfigError(f"model {text!r}: label {label!r} is not usable as a name; give one of letters, digits, "
                          f"'_', '.', '+', '-' (up to 40), e.g. --models mine={text}")


def split_label(text: str) -> tuple[str | None, str]:
    """`label=spec` -> (label, spec); the `=` counts only before any `:` or `(` (arguments hold `=` too)."""
    head = re.split(r"[:(]", text, maxsplit=1)[0]
    if "=" in head:
        label, _, rest = text.partition("=")
        return label.strip(), rest.strip()
    return None, text


def split_arguments(text: str) -> tuple[str, dict]:
    """`target(name=value, ...)` -> (target, {name: value}); values are Python literals."""
    if not text.endswith(")") or "(" not in text:
        return text, {}
    target, _, inside = text.partition("(")
    try:
        call = ast.parse(f"f({inside}", mode="eval").body
        if not isinstance(call, ast.Call) or call.args or any(keyword.arg is None for keyword in call.keywords):
            raise ValueError("only name=value arguments are accepted")
        return target.strip(), {keyword.arg: ast.literal_eval(keyword.value) for keyword in call.keywords}
    except (SyntaxError, ValueError) as error:
        raise ConfigError(f"model {text!r}: cannot read its arguments ({error}); write them as "
                          f"{target.strip()}(name=value, ...) with numbers, strings, booleans or lists") from None


def file_spec(text: str, path: Path, attribute: str, arguments: dict) -> ModelSpec:
    """A model in a Python file: the file is read (not run) and its text kept with the spec."""
    if path.suffix != ".py":
        raise ConfigError(f"model {text!r}: {path} is not a .py file; give path/to/file.py:Name")
    try:
        if path.stat().st_size > MAX_SOURCE_BYTES:
            raise ConfigError(f"model {text!r}: {path} is over {MAX_SOURCE_BYTES:,} bytes; a model file holds "
                              f"the model's code only")
        data = path.read_bytes()
        source = data.decode("utf-8")
    except FileNotFoundError:
        raise ConfigError(f"model {text!r}: no such file {path}; check the path (relative to the current "
                          f"folder)") from None
    except (OSError, UnicodeDecodeError) as error:
        reason = getattr(error, "strerror", None) or "not UTF-8 text"
        raise ConfigError(f"model {text!r}: cannot read {path} ({reason}); pass a readable Python file") from None
    return ModelSpec(label=attribute.rpartition(".")[2], kind="file", target=f"{path.as_posix()}:{attribute}",
                     arguments=arguments, source=source, source_sha256=hashlib.sha256(data).hexdigest())


def plugin_spec(text: str, name: str, arguments: dict) -> ModelSpec:
    """A model an installed package adds through the `mnistlab.models` entry-point group."""
    plugins = entry_points()
    if name not in plugins:
        known = ", ".join([*BUILT_IN, *plugins])
        raise ConfigError(f"unknown model {text!r}; choose from: {known}; or name your own as FILE.py:Class or "
                          f"package.module:Class")
    return ModelSpec(label=name, kind="plugin", target=name, arguments=arguments)


def entry_points() -> dict[str, str]:
    """Installed plugins' models: name -> "package.module:Attr" (built when a run uses them)."""
    from importlib.metadata import entry_points as installed

    return {point.name: point.value for point in installed(group=ENTRY_POINT_GROUP)}


def registered_names() -> list[str]:
    """Models registered with `register_model` in this process (built-ins and a notebook's own)."""
    import sys

    registry = sys.modules.get("mnistlab.models.registry")  # only if loaded: parsing must not import PyTorch
    return list(registry.MODELS) if registry is not None else []


def written_label(text: str) -> str:
    """The label a spec's text gives its model, read without checking the spec (`parse_spec` checks it)."""
    label, rest = split_label(text.strip())
    return label or rest.partition("(")[0].rpartition(":")[2].rpartition(".")[2].strip()


def default_label(kind: str, target: str) -> str:
    return target if kind in ("built-in", "plugin") else target.rpartition(":")[2].rpartition(".")[2]


def spec_from_record(record: dict) -> ModelSpec:
    """The spec a checkpoint or plan recorded (checked by the caller: see `training.checkpoint.check_fields`)."""
    return ModelSpec(label=record["label"], kind=record["kind"], target=record["target"],
                     arguments=dict(record.get("arguments", {})), source=record.get("source"),
                     source_sha256=record.get("source_sha256"), recipe=dict(record.get("recipe", {})))


def split_specs(text: str) -> list[str]:
    """A `--models` value split at its top-level commas (arguments in parentheses keep theirs)."""
    parts, depth, current = [], 0, ""
    for character in text:
        depth += {"(": 1, "[": 1, ")": -1, "]": -1}.get(character, 0)
        if character == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += character
    parts.append(current)
    return [part.strip() for part in parts if part.strip()]
