"""Images: decode a user's file within a budget, turn any image or photo into an MNIST-style 28x28, predict, export."""

from mnistlab.common.lazy import lazy_exports

_EXPORTS = {  # public name -> the module that defines it
    "load_model": "mnistlab.vision.loading",
    "predict_files": "mnistlab.vision.predict",
    "preprocess_image": "mnistlab.vision.preprocess",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
