"""Models: the registry (`build_model`, `MODELS`, `RECIPES`), the built-in networks (`zoo`) and their catalogue.

Names load on first use; the first use also registers the built-in networks, so
`models.catalogue` alone (what the CLI lists) never imports PyTorch.
"""

import importlib

_EXPORTS = ("MAX_CLASSES", "MODELS", "NUM_CLASSES", "RECIPES", "build_model", "check_model_names", "count_parameters",
            "images_to_tensor", "infer", "register_model")
__all__ = list(_EXPORTS)


def __getattr__(name: str) -> object:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    importlib.import_module("mnistlab.models.zoo")  # registers the built-in networks
    return getattr(importlib.import_module("mnistlab.models.registry"), name)


def __dir__() -> list[str]:
    return sorted(_EXPORTS)
