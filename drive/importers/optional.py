"""The importers' optional dependencies (the `import` extra), imported here and only here, lazily."""

from __future__ import annotations

import importlib
from types import ModuleType

INSTALL_HINT = "pip install -e '.[import]'"


def require(module: str, what: str) -> ModuleType:
    """Import `module` (e.g. "mcap.reader"), or raise one line saying how to install it.

    Raises:
        ModuleNotFoundError: naming the package, what needs it, and the install command.
    """
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        top = module.split(".")[0]
        raise ModuleNotFoundError(f"{what} needs the '{top}' package: {INSTALL_HINT}") from exc
