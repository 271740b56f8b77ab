"""Training: the config, the runtime (threads, determinism, devices), the training loop and checkpoints."""

from mnistlab.common.lazy import lazy_exports

_EXPORTS = {  # public name -> the module that defines it
    "TrainConfig": "mnistlab.training.config",
    "TrainResult": "mnistlab.training.train",
    "configured_runtime": "mnistlab.training.runtime",
    "load_checkpoint": "mnistlab.training.checkpoint",
    "load_config": "mnistlab.training.config",
    "model_config": "mnistlab.training.config",
    "save_checkpoint": "mnistlab.training.checkpoint",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
