"""Datasets: IDX files, verified downloads, the registry of MNIST-format datasets, a user's own folders, splits."""

from mnistlab.common.lazy import lazy_exports

_EXPORTS = {  # public name -> the module that defines it
    "DATASETS": "mnistlab.data.registry",
    "Dataset": "mnistlab.data.datasets",
    "IMAGE_SIDE": "mnistlab.data.registry",
    "load_dataset": "mnistlab.data.datasets",
    "open_dataset": "mnistlab.data.folders",
    "split_indices": "mnistlab.data.splits",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
