"""Output directories that say what made them, and that one run at a time writes into.

A command that fills a directory over several runs (`drive record` resumes into its `--out`) records
the digest of the resolved config that made it in `<out>/.drive-output.json`, and holds an exclusive
`fcntl.flock` on `<out>/.lock` while it writes. A later run with another config is refused (its data
would silently mix with the old), and so is a second concurrent run (the two would interleave). The
lock is released by the kernel when the process ends, however it ends, so a killed run never leaves a
stale lock behind.
"""

from __future__ import annotations

import fcntl
import json
import os
from pathlib import Path
from typing import Any

MANIFEST_FILE = ".drive-output.json"
LOCK_FILE = ".lock"


class OutputBusyError(ValueError):
    """Another process is writing into the output directory (it holds the lock)."""


class OutputMismatchError(ValueError):
    """The output directory was made by another configuration (or by something unknown)."""


class OutputLock:
    """An exclusive, non-blocking `flock` on `<out>/.lock`; use as a context manager.

    Raises:
        OutputBusyError: at once, naming the directory, when another process holds it.
    """

    def __init__(self, out: str | Path, command: str) -> None:
        self.path = Path(out) / LOCK_FILE
        self.command = command
        self._fd: int | None = None

    def __enter__(self) -> OutputLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise OutputBusyError(
                f"{self.path.parent} is being written by another {self.command} run (it holds "
                f"{self.path}); wait for it to finish, or choose another output directory"
            ) from None
        self._fd = fd
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor releases the lock
            self._fd = None


def read_manifest(out: str | Path) -> dict[str, Any] | None:
    """The manifest of `out` ({"made_by", "config_digest"}), or None when there is none."""
    path = Path(out) / MANIFEST_FILE
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise OutputMismatchError(
            f"{path}: unreadable ({err}); delete it only if you know what made {out}"
        ) from None
    if not isinstance(data, dict) or not isinstance(data.get("config_digest"), str):
        raise OutputMismatchError(f"{path}: not a manifest written by this project")
    return data


def write_manifest(out: str | Path, made_by: str, config_digest: str) -> None:
    """Record (atomically) that `made_by` with the config of `config_digest` writes into `out`."""
    path = Path(out) / MANIFEST_FILE
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps({"made_by": made_by, "config_digest": config_digest}) + "\n")
    os.replace(tmp, path)


def config_differences(old: Any, new: Any, prefix: str = "") -> list[str]:
    """Dotted keys whose values differ between two plain config dicts (for messages)."""
    if isinstance(old, dict) and isinstance(new, dict):
        keys = sorted(set(old) | set(new), key=str)
        return [d for k in keys for d in config_differences(old.get(k), new.get(k), f"{prefix}{k}.")]
    return [] if old == new else [prefix.rstrip(".")]
