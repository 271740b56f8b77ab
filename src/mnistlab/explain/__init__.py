"""What the models look at (extra: explain): Captum attributions of images, of a run's test digits, per class."""

from mnistlab.common.lazy import lazy_exports

_EXPORTS = {  # public name -> the module that defines it
    "add_attributions": "mnistlab.explain.run_attributions",
    "attribute": "mnistlab.explain.attribution",
    "explain_files": "mnistlab.explain.files",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
