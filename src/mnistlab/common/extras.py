"""Optional parts of mnistlab and the PyPI extras that bring them, so a missing one is a one-line error."""

from __future__ import annotations

import importlib.util

from mnistlab.common.errors import ConfigError

EXTRAS = {  # extra -> modules it provides (import names)
    "serve": ("fastapi", "uvicorn", "multipart", "swagger_ui_bundle"),
    "tune": ("optuna", "sqlalchemy"),
    "ray": ("ray",),
    "onnx": ("onnx", "onnxscript", "onnxruntime"),
    "explain": ("captum",),
    "mlflow": ("mlflow",),
    "tensorboard": ("tensorboard",),
}


def require_extra(extra: str, feature: str) -> None:
    """Raise `ConfigError` with the install line when a module of `extra` is missing; `feature` names what needs it."""
    missing = [module for module in EXTRAS[extra] if importlib.util.find_spec(module) is None]
    if missing:
        raise ConfigError(f"{feature} needs {', '.join(missing)}; install it with: pip install 'mnistlab[{extra}]'")
