"""Re-export a package's public names without importing their modules until a name is first used (PEP 562).

A subpackage's `__init__` lists what it offers; importing one small module of the
package (the CLI's parser, say) then costs nothing for the heavy ones beside it.
A name that is also a submodule's (`cli.main`, `training.train`) is not re-exported:
importing the submodule would rebind it on the package.
"""

from __future__ import annotations

import importlib
from typing import Callable


def lazy_exports(package: str, exports: dict[str, str]) -> tuple[Callable[[str], object], Callable[[], list[str]]]:
    """(`__getattr__`, `__dir__`) for `package`, where `exports` maps each public name to its module's path."""

    clashes = sorted(name for name, module in exports.items() if module.rpartition(".")[2] == name)
    if clashes:
        raise ValueError(f"{package}: {', '.join(clashes)} would be rebound by the submodule of the same name")

    def __getattr__(name: str) -> object:
        if name not in exports:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(exports[name]), name)

    def __dir__() -> list[str]:
        return sorted(exports)

    return __getattr__, __dir__
