"""The evaluation's inference engine: PyTorch eager (`torch`) or the exported graph (`onnx[:precision]`).

    --engine torch          `PolicyRunner`: the checkpoint's `DrivingPolicy` in PyTorch (the default)
    --engine onnx[:fp32]    `OnnxRunner`: the checkpoint exported by `drive export` and driven by the
    --engine onnx:int8      onboard runtime (`OnboardPolicy`), the graph the car runs, at that precision
    --engine onnx:fp16

With `onnx`, every checkpoint is exported once (before any episode runs, in the parent process) into a
cache folder named by the sha256 of the checkpoint file and this version, so a rerun, a study's other
groups and the pool's workers reuse the file. The export is the ordinary one (parity-checked against
PyTorch, int8 calibrated on one of the checkpoint's training drives when it is still on disk, else on
synthetic frames) as a diagnostics graph: the same step with the neuron activity and the feature maps'
channel means as extra outputs, so the report keeps its neuron traces and VisualBackProp saliency.
Grad-CAM needs gradients: a torch-engine feature.

The cache is `$DRIVE_ENGINE_CACHE`, else `$XDG_CACHE_HOME/liquid-drive/engines`, else
`~/.cache/liquid-drive/engines`; delete it freely.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from drive import __version__

if TYPE_CHECKING:
    from drive.closed_loop.onnx_runner import OnnxRunner

ENGINE_KINDS = ("torch", "onnx")
PRECISIONS = ("fp32", "int8", "fp16")
CACHE_ENV = "DRIVE_ENGINE_CACHE"


@dataclass(frozen=True)
class Engine:
    """A parsed engine name.

    Attributes:
        kind: "torch" or "onnx".
        precision: the exported graph's precision ("fp32", "int8", "fp16"); "fp32" for torch.
    """

    kind: str
    precision: str = "fp32"

    @property
    def name(self) -> str:
        """The canonical name: "torch", "onnx:fp32", "onnx:int8", "onnx:fp16"."""
        return self.kind if self.kind == "torch" else f"{self.kind}:{self.precision}"


def parse_engine(text: str) -> Engine:
    """`torch`, `onnx`, `onnx:fp32`, `onnx:int8` or `onnx:fp16` -> `Engine`.

    Raises:
        ValueError: any other text (the message lists the accepted names).
    """
    kind, _, precision = str(text).strip().partition(":")
    accepted = "torch, onnx, onnx:fp32, onnx:int8, onnx:fp16"
    if kind == "torch" and not precision:
        return Engine("torch")
    if kind == "onnx" and (precision or "fp32") in PRECISIONS:
        return Engine("onnx", precision or "fp32")
    raise ValueError(f"engine: {text!r} is not one of {accepted}")


def cache_root() -> Path:
    """The folder exported engine graphs are cached in (module docstring)."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "liquid-drive" / "engines"


_DIGESTS: dict[tuple[str, int, int], str] = {}
"""(path, mtime ns, size) -> digest, per process: every episode looks its graph up, and a CNN checkpoint
is 60 MB."""


def checkpoint_digest(path: str | Path) -> str:
    """sha256 (first 16 hex digits) of a checkpoint file's bytes (hashed once per process and file)."""
    stat = Path(path).stat()
    key = (str(Path(path).resolve()), stat.st_mtime_ns, stat.st_size)  # a rewritten file is hashed again
    if key not in _DIGESTS:
        digest = hashlib.sha256()
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        _DIGESTS[key] = digest.hexdigest()[:16]
    return _DIGESTS[key]


def model_name(precision: str) -> str:
    """File name of a precision's graph in a cache folder (as `drive export` names its siblings)."""
    return "model.onnx" if precision == "fp32" else f"model.{precision}.onnx"


def engine_model(
    checkpoint: str | Path, precision: str = "fp32", *, feature_maps: bool = True, quiet: bool = False
) -> Path:
    """The diagnostics graph of `checkpoint` at `precision`, exported into the cache unless already there.

    Written into a temporary folder beside the cache entry and moved in file by file, so a killed export
    leaves nothing half-written under the entry's name. `feature_maps=False`: the same graph without
    the feature-map outputs (for driving with saliency off; onnxruntime would compute them anyway),
    derived from it once (`drive.export.graph_edit.without_outputs`).

    Raises:
        ExportError: the exported graph failed its parity check against PyTorch.
    """
    folder = cache_root() / f"{checkpoint_digest(checkpoint)}-v{__version__}"
    target = folder / model_name(precision)
    if not feature_maps:
        return _without_feature_maps(engine_model(checkpoint, precision, quiet=quiet))
    if target.is_file():
        return target
    from drive.export.pipeline import export_checkpoint

    if not quiet:
        print(f"engine onnx:{precision}: exporting {checkpoint} -> {folder}", file=sys.stderr)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".export-", dir=folder.parent))
    try:
        frames_dir = _training_drive(checkpoint)
        export_checkpoint(
            checkpoint,
            tmp / "model.onnx",
            diagnostics=True,
            int8=precision == "int8",
            fp16=precision == "fp16",
            frames_dir=frames_dir,
        )
        folder.mkdir(exist_ok=True)
        for path in sorted(tmp.glob("*.onnx")):
            os.replace(path, folder / path.name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def _without_feature_maps(model: Path) -> Path:
    """`model`'s sibling without feature-map outputs (`model.int8.onnx` -> `model.int8.no-maps.onnx`),
    derived once and moved into place whole (a plain copy when it has none, so later calls find it)."""
    target = model.with_name(model.name.removesuffix(".onnx") + ".no-maps.onnx")
    if target.is_file():
        return target
    import onnx  # here: a worker's episode finds the file, and importing onnx takes ~0.3 s

    from drive.export.graph_edit import without_outputs

    full = onnx.load(str(model))
    maps = [o.name for o in full.graph.output if o.name.startswith("feature_map_")]
    handle, tmp = tempfile.mkstemp(prefix=".no-maps-", suffix=".onnx", dir=model.parent)
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(without_outputs(full, maps).SerializeToString())
        os.replace(tmp, target)
    finally:
        Path(tmp).unlink(missing_ok=True)
    return target


def _training_drive(checkpoint: str | Path, min_frames: int = 400) -> Path | None:
    """A recorded drive the checkpoint trained on that is still on disk and long enough for the export's
    parity frames (200) and int8 calibration (the rest); None: synthetic frames instead."""
    from policies.checkpoint import read_checkpoint
    from recordings import Recording

    payload = read_checkpoint(checkpoint)
    episodes = ((payload.get("extra") or {}).get("data") or {}).get("train_episodes") or []
    for episode in episodes:
        try:
            if Recording(episode).num_frames >= min_frames:
                return Path(episode)
        except (OSError, ValueError):
            continue
    return None


def prepare_engine(
    engine: Engine, policies: list[str], *, feature_maps: bool = True, quiet: bool = False
) -> dict[str, Path]:
    """Export (or find in the cache) every checkpoint's graph before the episodes run; {} for torch.
    `feature_maps`: the graphs with feature-map outputs (saliency on) or without (see `engine_model`).

    Returns:
        checkpoint -> graph path (the expert needs none).
    """
    from drive.eval.plan import EXPERT

    if engine.kind == "torch":
        return {}
    return {
        p: engine_model(p, engine.precision, feature_maps=feature_maps, quiet=quiet)
        for p in policies
        if p != EXPERT
    }


def describe_engine(engine: Engine, models: dict[str, Path]) -> dict[str, Any]:
    """What the report says about the engine: its name and, per checkpoint, the graph file, its digest
    and its distance from PyTorch fp32 at export (the accuracy cost of a reduced precision)."""
    from drive.onboard.contract import MetaKey

    rows = {}
    for checkpoint, path in models.items():
        metadata = _metadata(path)
        rows[checkpoint] = {
            "model": str(path),
            "model_sha256": metadata.get(MetaKey.MODEL_DIGEST),
            "precision": metadata.get(MetaKey.PRECISION),
            "parity_max_abs_diff_1pm": float(metadata.get(MetaKey.PARITY_MAX_ABS_DIFF, "nan")),
            "parity_source": metadata.get(MetaKey.PARITY_SOURCE),
            "int8_calibration": metadata.get(MetaKey.INT8_CALIBRATION),
        }
    return {"engine": engine.name, "models": rows}


def _metadata(path: Path) -> dict[str, str]:
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    return {p.key: p.value for p in model.metadata_props}


_RUNNERS: dict[Path, OnnxRunner] = {}
"""One runner per graph per process (an onnxruntime session costs ~10 ms to open; episodes in a process
run one after another, and `reset` starts each from the zero state)."""


def onnx_runner(model: Path, name: str, saliency: bool) -> OnnxRunner:
    """This process's runner of `model`, named `name`, saliency (VisualBackProp) on or off."""
    from drive.closed_loop.onnx_runner import OnnxRunner

    runner = _RUNNERS.get(model)
    if runner is None:
        runner = _RUNNERS[model] = OnnxRunner(model)
    runner.name = name
    runner.saliency_method = "visual_backprop" if saliency and runner.has_feature_maps else None
    return runner


def engine_lines(engine: dict[str, Any] | None) -> list[str]:
    """What drove: PyTorch eager, or each checkpoint's exported graph (file digest, distance to PyTorch)."""
    if not engine or engine["engine"] == "torch":
        return ["Engine: PyTorch eager (`torch`).", ""]
    lines = [f"Engine: `{engine['engine']}`, the exported graph through the onboard runtime:", ""]
    for checkpoint, row in engine["models"].items():
        lines.append(
            f"- `{checkpoint}` -> `{row['model']}` (sha256 {str(row['model_sha256'])[:12]}…, max "
            f"|curvature - PyTorch fp32| {row['parity_max_abs_diff_1pm']:.3g} 1/m at export)"
        )
    return [*lines, ""]
