"""Folders that travel with a job when the cluster has no shared file system (`executor.artifacts: ship`).

A job names the folders (or files) it reads (`Task.inputs`: recordings, the checkpoint it evaluates) and
writes (`Task.outputs`: its run or report folder). On a node other than the driver's, the inputs are
unpacked at the same absolute paths before the job runs (once per node: a `<path>.shipped` file beside
each holds the digest of what was unpacked), and the outputs are packed after it and unpacked by the
driver into the study's own output folder. Paths stay the same everywhere, so the jobs' config digests
and the report are exactly those of a local run. Archives are plain tar (recordings are already compressed).
"""

from __future__ import annotations

import hashlib
import io
import tarfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

MARKER = ".shipped"
"""Suffix of the file beside an unpacked input: the digest of the archive it came from."""


def pack(paths: Sequence[str]) -> bytes:
    """A tar archive of the folders or files `paths` (absolute), each under its absolute path without the
    leading / (missing ones are left out)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for path in paths:
            folder = Path(path)
            if folder.exists():
                archive.add(str(folder), arcname=str(folder.resolve()).lstrip("/"))
    return buffer.getvalue()


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:16]


def unpack(data: bytes, root: str = "/") -> None:
    """Extract an archive of `pack` at its absolute paths (under `root`; tests use another root).

    Raises:
        tarfile.FilterError: a member that would land outside `root` or is a special file.
    """
    with tarfile.open(fileobj=io.BytesIO(data), mode="r") as archive:
        archive.extractall(root, filter="data")


def unpack_input(path: str, data: bytes, root: str = "/") -> bool:
    """Unpack the archive of input `path` unless this node already holds that very archive; returns
    whether it unpacked."""
    marker = Path(root) / (path.lstrip("/") + MARKER)
    made = digest(data)
    if marker.is_file() and marker.read_text() == made:
        return False
    unpack(data, root)
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.write_text(made)
    return True


def run_shipped(
    fn: Callable[..., Any],
    args: tuple[Any, ...],
    remote: bool,
    inputs: Sequence[str],
    packed_inputs: Sequence[bytes],
    outputs: Sequence[str],
) -> tuple[Any, bytes | None]:
    """Run `fn(*args)` where its inputs are: on a `remote` node (not the driver's) unpack `packed_inputs`
    (one archive per folder of `inputs`) first and pack `outputs` after; returns (result, packed outputs or
    None on the driver's node, whose folders are the study's own)."""
    if remote:
        for path, data in zip(inputs, packed_inputs):
            unpack_input(path, data)
    result = fn(*args)
    return result, pack(outputs) if remote else None
