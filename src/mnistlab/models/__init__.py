"""Models: the registry (`build_model`, `MODELS`, `RECIPES`) and the built-in networks, registered on import."""

from mnistlab.models import zoo  # noqa: F401  (registers the built-in networks)
from mnistlab.models.registry import (MODELS, NUM_CLASSES, RECIPES, build_model, check_model_names, count_parameters,
                                      describe_models, images_to_tensor, infer, register_model)

__all__ = ["MODELS", "NUM_CLASSES", "RECIPES", "build_model", "check_model_names", "count_parameters",
           "describe_models", "images_to_tensor", "infer", "register_model"]
