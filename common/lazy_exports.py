"""Lazy package exports: a package names what it offers and loads each name's module on first use, so
`import package` stays cheap (no torch) while `from package import Name` works.

Example:
    >>> getattr_, dir_ = lazy_exports("json", {"dumps": "json"})
    >>> getattr_("dumps")({"a": 1})
    '{"a": 1}'
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any


def lazy_exports(
    package: str, exports: dict[str, str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """A module-level `__getattr__` and `__dir__` for `package` that resolve `exports` (name -> module).

    Use as `__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)` in the package's `__init__.py`.
    """

    def getattr_(name: str) -> Any:
        if name in exports:
            return getattr(importlib.import_module(exports[name]), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def dir_() -> list[str]:
        return sorted(set(vars(importlib.import_module(package))) | set(exports))

    return getattr_, dir_
