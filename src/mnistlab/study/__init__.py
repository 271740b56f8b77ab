"""The study: compare models over seeds into a run folder; train or evaluate one model; run tasks anywhere."""

from mnistlab.common.lazy import lazy_exports

_EXPORTS = {  # public name -> the module that defines it
    "Placement": "mnistlab.study.executor",
    "add_robustness": "mnistlab.study.compare",
    "evaluate_checkpoint": "mnistlab.study.single",
    "open_executor": "mnistlab.study.executor",
    "plan_placement": "mnistlab.study.compare",
    "run_compare": "mnistlab.study.compare",
    "train_checkpoint": "mnistlab.study.single",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
