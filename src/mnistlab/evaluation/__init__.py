"""Evaluation: test metrics, statistics between models, calibration, not-a-digit scores, corruptions, robustness.

`photo_eval` generates the seeded photos-of-paper evaluation set (`python -m mnistlab.evaluation.photo_eval`).
"""

from mnistlab.common.lazy import lazy_exports

_EXPORTS = {  # public name -> the module that defines it
    "Evaluation": "mnistlab.evaluation.evaluate",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
