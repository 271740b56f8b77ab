"""Models: the registry (`build_model`, `MODELS`, `RECIPES`), the built-in networks (`zoo`), their catalogue, and
model specs (`spec`: a built-in name, a user's file or module) built and checked by `contract`.

Names load on first use; the first use of a registry name also registers the built-in networks,
so `models.catalogue` and `models.spec` alone (what the CLI reads) never import PyTorch.
"""

import importlib

_REGISTRY = ("MAX_CLASSES", "MODELS", "NUM_CLASSES", "RECIPES", "build_model", "check_model_names", "count_parameters",
             "images_to_tensor", "infer", "register_model")
_SPECS = {"ModelSpec": "mnistlab.models.spec", "as_spec": "mnistlab.models.spec", "parse_spec": "mnistlab.models.spec",
          "build": "mnistlab.models.contract", "check_model": "mnistlab.models.contract",
          "resolve": "mnistlab.models.contract"}
__all__ = sorted([*_REGISTRY, *_SPECS])


def __getattr__(name: str) -> object:
    if name not in __all__:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    if name in _SPECS and _SPECS[name].endswith(".spec"):
        return getattr(importlib.import_module(_SPECS[name]), name)
    importlib.import_module("mnistlab.models.zoo")  # registers the built-in networks
    return getattr(importlib.import_module(_SPECS.get(name, "mnistlab.models.registry")), name)


def __dir__() -> list[str]:
    return list(__all__)
