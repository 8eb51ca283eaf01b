"""Training metrics: JSON lines (always), TensorBoard (when installed), loss curves as a PNG at the end.

`metrics.jsonl` holds one JSON object per line:
- `{"kind": "train", "step", "loss", ...}` every log interval: `loss` is the mean over the interval's
  steps; `last_loss`, `grad_norm` and the learning rates are of its last step; `frames_per_s` is over
  the interval, data loading included;
- `{"kind": "val", "step", "val_loss", "val_zero_loss", "val_ratio", "val_rmse_1pm", ...}` at each
  validation;
- `{"kind": "event", "step", "event": ...}` at start, resume, a non-finite loss and the end.
On resume the lines after the resumed step are dropped first, so the file tells one consistent story.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

METRICS_FILE = "metrics.jsonl"
CURVES_FILE = "loss_curves.png"


class MetricsLog:
    """Writes metrics of the main rank; every method is a no-op elsewhere (`enabled=False`).

    Args:
        out_dir: the run directory.
        enabled: True on rank 0 only.
        resume_step: when resuming, drop the lines whose step is after this one; None starts afresh.
    """

    def __init__(self, out_dir: Path, enabled: bool = True, resume_step: int | None = None) -> None:
        self.path = Path(out_dir) / METRICS_FILE
        self.enabled = enabled
        self._tb: Any = None
        if not enabled:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        kept = (
            [r for r in read_metrics(self.path) if r.get("step", 0) <= resume_step]
            if resume_step is not None
            else []
        )
        self.path.write_text("".join(json.dumps(r) + "\n" for r in kept))
        try:  # optional: TensorBoard when the package is installed
            from torch.utils.tensorboard import SummaryWriter

            self._tb = SummaryWriter(log_dir=str(Path(out_dir) / "tensorboard"), purge_step=resume_step)
        except ImportError:
            self._tb = None

    @property
    def tensorboard(self) -> bool:
        """Whether TensorBoard logging is active."""
        return self._tb is not None

    def write(self, kind: str, step: int, **values: Any) -> None:
        """Append one record; numbers are also sent to TensorBoard as `<kind>/<name>`."""
        if not self.enabled:
            return
        record = _finite_or_null({"kind": kind, "step": int(step), **values})
        with self.path.open("a") as f:  # NaN/inf are not JSON: they are written as null
            f.write(json.dumps(record, default=_jsonable, allow_nan=False) + "\n")
        if self._tb is not None:
            for name, value in values.items():
                if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
                    self._tb.add_scalar(f"{kind}/{name}", value, step)

    def close(self) -> None:
        if self._tb is not None:
            self._tb.close()
            self._tb = None


def _finite_or_null(value: Any) -> Any:
    """`value` with every non-finite float (numpy scalars included) replaced by None."""
    if isinstance(value, dict):
        return {k: _finite_or_null(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite_or_null(v) for v in value]
    if hasattr(value, "item") and getattr(value, "ndim", 1) == 0:
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _jsonable(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    return str(value)


def read_metrics(path: Path) -> list[dict[str, Any]]:
    """The records of a metrics.jsonl file ([] when it does not exist; a torn last line is skipped)."""
    path = Path(path)
    if not path.is_file():
        return []
    records = []
    for line in path.read_text().splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return records


def plot_loss_curves(records: list[dict[str, Any]], path: Path) -> Path | None:
    """Training loss (raw and smoothed), validation loss and the zero predictor's, against the step.

    Uses matplotlib's Agg canvas directly (no pyplot, no global backend change). Returns the PNG's path,
    or None when there is nothing to plot.
    """
    train = [(r["step"], r["loss"]) for r in records if r.get("kind") == "train" and _finite(r.get("loss"))]
    val = [r for r in records if r.get("kind") == "val" and _finite(r.get("val_loss"))]
    if not train and not val:
        return None
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8, 4.5), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    if train:
        steps, losses = zip(*train)
        ax.plot(steps, losses, color="tab:blue", alpha=0.3, lw=1, label="train (mean per log interval)")
        ax.plot(steps, _ema(losses, 0.9), color="tab:blue", lw=2, label="train (smoothed)")
    if val:
        ax.plot(
            [r["step"] for r in val],
            [r["val_loss"] for r in val],
            "o-",
            color="tab:orange",
            label="validation",
        )
        zero = [float(r["val_zero_loss"]) for r in val if _finite(r.get("val_zero_loss"))]
        if len(zero) == len(val):
            ax.plot([r["step"] for r in val], zero, "--", color="grey", label="validation, zero predictor")
    ax.set_xlabel("optimiser step")
    ax.set_ylabel("weighted squared error (curvature_scale²)")
    ax.set_yscale("log")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path)
    return path


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)


def _ema(values: tuple[float, ...], decay: float) -> list[float]:
    out, acc = [], None
    for v in values:
        acc = v if acc is None else decay * acc + (1 - decay) * v
        out.append(acc)
    return out
