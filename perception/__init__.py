"""Perception: camera preprocessing, the NCP conv head, the PilotNet-like baseline, saliency.

Imports torch, numpy and cv2 only (never `policies/`). The names below load lazily, so that
`perception.preprocess` (numpy + cv2) serves the onboard runtime without importing torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "ConvHead": "perception.conv_head",
    "FeatureMapNet": "perception.feature_net",
    "PilotNet": "perception.pilotnet",
    "PreprocessContract": "perception.preprocess",
    "crop_box": "perception.preprocess",
    "preprocess_u8": "perception.preprocess",
    "Preprocess": "perception.tensor_preprocess",
    "preprocess_torch": "perception.tensor_preprocess",
    "standardize": "perception.tensor_preprocess",
    "grad_cam": "perception.saliency",
    "ssim": "perception.saliency",
    "visual_backprop": "perception.saliency",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
