"""`mnistlab serve`: the draw-a-digit page and the JSON API (FastAPI), and the checks on every request.

Needs the `serve` extra (`pip install 'mnistlab[serve]'`).
"""

from mnistlab.common.lazy import lazy_exports

_EXPORTS = {  # public name -> the module that defines it
    "create_app": "mnistlab.serve.app",
    "run_server": "mnistlab.serve.app",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
