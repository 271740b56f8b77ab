"""Build the model a spec names and check it keeps the contract, before any training.

The contract every model keeps, built-in or a user's:
- built with keyword arguments only (all with defaults, or given in the spec); a constructor that takes
  `num_classes` is given the dataset's class count;
- input: a float32 batch (B, 1, 28, 28) with values in [0, 1];
- output: finite logits (B, classes), one column per class; softmax is applied only at prediction time;
- optionally a `recipe` dict attribute: TrainConfig fields it trains with unless the user says otherwise.

A spec's file is run from the source text the spec carries (not re-read from disk), so
every process that builds it, a local worker or a Ray task on another machine, builds
the same network.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import importlib
import inspect
import random
import sys
import types
from typing import Callable, Iterator

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from mnistlab.common.errors import ConfigError, first_line
from mnistlab.data.registry import IMAGE_SIDE, MAX_CLASSES
from mnistlab.models.registry import MODELS, NUM_CLASSES
from mnistlab.models.spec import ModelSpec, entry_points

CHECK_BATCH = 2  # images in the forward pass that checks a model
_FILE_MODULES: dict[str, types.ModuleType] = {}  # source SHA-256 -> the module run from that source


def load_factory(spec: ModelSpec) -> Callable[..., nn.Module]:
    """The class or function that builds the spec's model; user code runs here (its module is imported)."""
    if spec.builtin:
        if spec.target not in MODELS:
            raise ConfigError(f"unknown model {spec.target!r}; choose from: {', '.join(MODELS)}")
        return MODELS[spec.target]
    if spec.kind == "plugin":
        plugins = entry_points()
        if spec.target not in plugins:
            raise ConfigError(f"model {spec}: no installed package adds a model named {spec.target!r} (entry-point "
                              f"group mnistlab.models); install it, or name the model as FILE.py:Class")
        where, _, attribute = plugins[spec.target].partition(":")
        module = import_module(spec, where)
    elif spec.kind == "file":
        where, _, attribute = spec.target.rpartition(":")
        module = file_module(spec, where)
    else:
        where, _, attribute = spec.target.rpartition(":")
        module = import_module(spec, where)
    factory = module
    for part in attribute.split("."):
        factory = getattr(factory, part, None)
        if factory is None:
            names = sorted(name for name, value in vars(module).items()
                           if inspect.isclass(value) and issubclass(value, nn.Module) and not name.startswith("_"))
            raise ConfigError(f"model {spec}: {where} has no {attribute!r}; its nn.Module classes: "
                              f"{', '.join(names) or 'none'}")
    if not callable(factory):
        raise ConfigError(f"model {spec}: {attribute} in {where} is not a class or function; name the class")
    return factory


USER_CODE_ERRORS = (Exception, SystemExit)  # what the user's code may raise, sys.exit() included, said in one line


@contextlib.contextmanager
def seeded_import() -> Iterator[None]:
    """Run a model's module with every global random stream seeded, then put the streams back: a module that draws
    random numbers when imported draws the same ones in every process (the driver, a worker, a Ray task)."""
    state = random.getstate(), np.random.get_state()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        random.seed(0)
        np.random.seed(0)
        try:
            yield
        finally:
            random.setstate(state[0])
            np.random.set_state(state[1])


def import_module(spec: ModelSpec, name: str) -> types.ModuleType:
    try:
        with seeded_import():
            return importlib.import_module(name)
    except ModuleNotFoundError as error:
        raise ConfigError(f"model {spec}: cannot import {name} ({first_line(error)}); install the package, or give "
                          f"the file as path/to/file.py:Class") from None
    except USER_CODE_ERRORS as error:  # the user's module failed at import: say where, not a traceback
        raise ConfigError(f"model {spec}: importing {name} failed ({type(error).__name__}: {first_line(error)}); "
                          f"fix the module") from None


def file_module(spec: ModelSpec, path: str) -> types.ModuleType:
    """The spec's file run as a module, from the source the spec carries; run once per source per process."""
    if spec.source_sha256 in _FILE_MODULES:
        return _FILE_MODULES[spec.source_sha256]
    name = f"mnistlab_user_model_{spec.source_sha256[:16]}"
    module = types.ModuleType(name)
    module.__file__ = path
    try:
        code = compile(spec.source, path, "exec")
    except SyntaxError as error:
        raise ConfigError(f"model {spec}: {path} line {error.lineno}: syntax error ({error.msg}); fix the "
                          f"file") from None
    sys.modules[name] = module  # as an import would: dataclasses and pickling look their module up there
    try:
        with seeded_import():
            exec(code, module.__dict__)
    except USER_CODE_ERRORS as error:
        del sys.modules[name]
        raise ConfigError(f"model {spec}: running {path} failed ({type(error).__name__}: {first_line(error)}); "
                          f"fix the file (it must define the model and import only installed packages)") from None
    _FILE_MODULES[spec.source_sha256] = module
    return module


def resolve(spec: ModelSpec) -> ModelSpec:
    """The spec with what its code says: its `recipe` attribute (a dict of TrainConfig fields, checked by
    `training.config.model_config`) and, for an installed module, that module's source and SHA-256 (so a
    checkpoint records the code it was trained with). Built-ins are returned as they are."""
    if spec.builtin:
        return spec
    factory = load_factory(spec)
    recipe = getattr(factory, "recipe", None) or {}
    if not isinstance(recipe, dict):
        raise ConfigError(f"model {spec}: its recipe attribute is a {type(recipe).__name__}; make it a dict of "
                          f"training settings, e.g. {{'epochs': 5, 'learning_rate': 1e-3}}")
    source, digest = spec.source, spec.source_sha256
    if spec.kind != "file":
        source, digest = module_source(factory)
    return dataclasses.replace(spec, recipe=dict(recipe), source=source, source_sha256=digest)


def module_source(factory: Callable) -> tuple[str | None, str | None]:
    """The text and SHA-256 of the file that defines `factory`, where Python can find it."""
    try:
        path = inspect.getsourcefile(inspect.getmodule(factory))
        data = open(path, "rb").read()
        return data.decode("utf-8"), hashlib.sha256(data).hexdigest()
    except (TypeError, OSError, UnicodeDecodeError):
        return None, None


def build(spec: ModelSpec, num_classes: int = NUM_CLASSES) -> nn.Module:
    """A fresh, initialised model (from the caller's random state) in channels-last layout, as the built-ins."""
    if not (isinstance(num_classes, int) and 2 <= num_classes <= MAX_CLASSES):
        raise ConfigError(f"num_classes {num_classes!r} is out of range; a model classifies 2 to {MAX_CLASSES} classes")
    factory = load_factory(spec)
    arguments = dict(spec.arguments)
    if spec.builtin or takes_num_classes(factory):
        arguments["num_classes"] = num_classes
    try:
        model = factory(**arguments)
    except TypeError as error:
        if spec.builtin:
            raise
        raise ConfigError(f"model {spec}: cannot build it ({first_line(error)}); give every constructor argument "
                          f"a default, or give values as {spec.target}(name=value)") from None
    except USER_CODE_ERRORS as error:
        raise ConfigError(f"model {spec}: building it failed ({type(error).__name__}: {first_line(error)}); "
                          f"fix the constructor") from None
    if not isinstance(model, nn.Module):
        raise ConfigError(f"model {spec}: building it gave a {type(model).__name__}, not a torch.nn.Module; "
                          f"name the class (or a function that returns the module)")
    return model.to(memory_format=torch.channels_last)


def takes_num_classes(factory: Callable) -> bool:
    try:
        parameters = inspect.signature(factory).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(parameter.name == "num_classes" or parameter.kind is parameter.VAR_KEYWORD for parameter in parameters)


def check_model(spec: ModelSpec, num_classes: int) -> None:
    """Build the model and run it as training and testing will, on small batches; `ConfigError` naming the spec
    when it breaks the contract: in eval mode (as testing and prediction run it) and in train mode with a
    backward pass (as training does, on a batch of another size, so a model fixed to one batch size shows).

    Runs inside a forked random state, so the check changes no random numbers the run draws later.
    """
    if spec.builtin:
        return
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = build(spec, num_classes)
        if not any(parameter.requires_grad for parameter in model.parameters()):
            raise ConfigError(f"model {spec}: it has no trainable parameters; give it layers to train")
        with torch.no_grad():
            check_output(spec, model.eval(), CHECK_BATCH, num_classes, "testing")
        output = check_output(spec, model.train(), CHECK_BATCH + 1, num_classes, "training")
        if not output.requires_grad:
            raise ConfigError(f"model {spec}: its output does not depend on its parameters in training (is forward "
                              f"under torch.no_grad, or does it detach?); {contract_text(num_classes)}")
        try:
            F.cross_entropy(output.float(), torch.arange(CHECK_BATCH + 1) % num_classes).backward()
        except USER_CODE_ERRORS as error:
            raise ConfigError(f"model {spec}: the backward pass fails ({type(error).__name__}: "
                              f"{first_line(error, 120)}); {contract_text(num_classes)}") from None


def contract_text(num_classes: int) -> str:
    return (f"the contract: input (B, 1, {IMAGE_SIDE}, {IMAGE_SIDE}) floats in [0, 1], output float logits "
            f"(B, {num_classes}); see docs/models.md")


def check_output(spec: ModelSpec, model: nn.Module, batch: int, num_classes: int, mode: str) -> torch.Tensor:
    """Run `model` on `batch` random images; its output, checked: a finite float tensor (batch, num_classes)."""
    contract = contract_text(num_classes)
    images = torch.rand(batch, 1, IMAGE_SIDE, IMAGE_SIDE).contiguous(memory_format=torch.channels_last)
    try:
        output = model(images)
    except USER_CODE_ERRORS as error:
        raise ConfigError(f"model {spec}: a batch of shape ({batch}, 1, {IMAGE_SIDE}, {IMAGE_SIDE}) fails in forward "
                          f"({mode}: {type(error).__name__}: {first_line(error, 120)}); {contract}") from None
    if not isinstance(output, torch.Tensor):
        raise ConfigError(f"model {spec}: forward returns a {type(output).__name__}, not a tensor of logits; {contract}")
    if tuple(output.shape) != (batch, num_classes):
        raise ConfigError(f"model {spec}: forward returns shape {tuple(output.shape)} for a batch of {batch}, "
                          f"not ({batch}, {num_classes}) ({mode}); {contract}")
    if not output.is_floating_point():
        raise ConfigError(f"model {spec}: forward returns {output.dtype} values, not float logits; {contract}")
    if not torch.isfinite(output).all():
        raise ConfigError(f"model {spec}: forward returns NaN or infinite logits for ordinary images ({mode}); "
                          f"{contract}")
    return output
