"""Reports: metrics.json -> report.md, a self-contained report.html, the terminal table and the figures."""

from mnistlab.common.lazy import lazy_exports

_EXPORTS = {  # public name -> the module that defines it
    "summary_table": "mnistlab.reporting.report",
    "write_report": "mnistlab.reporting.report",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
