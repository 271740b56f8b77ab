"""Run folders: their layout, metrics.json, the resumable state/ and the per-image arrays of every model and seed."""

from mnistlab.common.lazy import lazy_exports

_EXPORTS = {  # public name -> the module that defines it
    "read_metrics": "mnistlab.runs.metrics_check",
    "read_run_arrays": "mnistlab.runs.folder",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
