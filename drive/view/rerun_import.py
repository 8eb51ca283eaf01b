"""The one place that imports the optional `rerun` package (the `view` extra), with the install hint."""

from __future__ import annotations

from types import ModuleType

INSTALL_HINT = "the viewer needs the Rerun SDK: pip install -e '.[view]'"


def import_rerun() -> ModuleType:
    """The `rerun` module.

    Raises:
        ImportError: rerun-sdk is not installed; the message says how to install it.
    """
    try:
        import rerun
    except ImportError as err:
        raise ImportError(INSTALL_HINT) from err
    return rerun
