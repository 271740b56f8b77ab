"""Hyperparameter search with Optuna: the search, its space, one trial's steps, the study served to Ray, its report.

Needs the `tune` extra (`pip install 'mnistlab[tune]'`).
"""

from mnistlab.common.lazy import lazy_exports

_EXPORTS = {  # public name -> the module that defines it
    "run_tune": "mnistlab.tune.search",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
