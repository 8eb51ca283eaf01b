"""The one place that imports the optional `carla` client package, with an install hint when it is missing.

Every `sim/carla*` module gets the package from `import_carla()` when it first needs it, so importing
those modules (and configs that name them) works without the extra installed.
"""

from __future__ import annotations

from types import ModuleType

CARLA_VERSION = "0.9.16"
"""The client release the backend is built and tested against; the server should match it."""

INSTALL_HINT = (
    f"the CARLA backend needs the carla client package {CARLA_VERSION}: pip install 'liquid-drive[carla]' "
    f"(or pip install carla=={CARLA_VERSION}); PyPI has wheels for CPython 3.10-3.12 on x86_64 Linux "
    "and Windows"
)


def import_carla() -> ModuleType:
    """The `carla` module.

    Raises:
        ImportError: carla is not installed; the message says how to install it.
    """
    try:
        import carla
    except ImportError as err:
        raise ImportError(INSTALL_HINT) from err
    module: ModuleType = carla  # carla ships no types (ignore_missing_imports), so mypy sees Any
    return module
