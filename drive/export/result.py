"""What `drive export` gives back: the files written and how close each graph is to PyTorch."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from drive.export.parity import ParityResult

PARITY_TOLERANCE_1PM = 1e-4
"""Max |curvature difference| allowed between PyTorch and the fp32 graph over the parity sequence, 1/m."""


class ExportError(ValueError):
    """The export failed a check (parity, onnx.checker); nothing was written."""


@dataclass(frozen=True)
class ExportResult:
    """What an export wrote and how close it is to PyTorch.

    Attributes:
        paths: written files by role: "full", and "vision"/"policy" (split), "fp16", "int8".
        parity: PyTorch vs the fp32 full graph.
        tolerance_1pm: the bound the fp32 graphs were held to, 1/m.
        split_parity: PyTorch vs the vision graph chained into the policy graph (split only).
        variants: PyTorch fp32 vs each reduced-precision variant ("fp16", "int8"): its accuracy cost.
        metadata: the full graph's metadata_props.
        int8_calibration: the frames the int8 variant was calibrated on ("" without one).
    """

    paths: dict[str, Path]
    parity: ParityResult
    tolerance_1pm: float = PARITY_TOLERANCE_1PM
    split_parity: ParityResult | None = None
    variants: dict[str, ParityResult] = field(default_factory=dict)
    metadata: dict[str, str] = field(default_factory=dict)
    int8_calibration: str = ""

    def summary(self) -> str:
        """Human-readable lines: files, parity, variant costs."""
        p = self.parity
        lines = [
            f"parity ({p.source}, {p.steps} steps): max |dcurvature| {p.max_abs_diff_1pm:.3g} 1/m "
            f"(tolerance {self.tolerance_1pm:g}), rms {p.rms_diff_1pm:.3g}, max |dstate| "
            f"{p.max_state_diff:.3g}; curvature rms {p.curvature_rms_1pm:.3g} 1/m"
        ]
        if self.split_parity is not None:
            lines.append(f"split parity: max |dcurvature| {self.split_parity.max_abs_diff_1pm:.3g} 1/m")
        for name, cost in self.variants.items():
            relative = 100 * cost.rms_diff_1pm / max(cost.curvature_rms_1pm, 1e-12)
            lines.append(
                f"{name} accuracy cost: max |dcurvature| {cost.max_abs_diff_1pm:.3g} 1/m, rms "
                f"{cost.rms_diff_1pm:.3g} 1/m ({relative:.2g}% of the curvature rms)"
            )
        if self.int8_calibration:
            lines.append(f"int8 calibrated on: {self.int8_calibration}")
        lines += [f"wrote {role}: {path}" for role, path in self.paths.items()]
        return "\n".join(lines)
