"""Perception: camera preprocessing, the NCP conv head, the PilotNet-like baseline, saliency.

Imports torch, numpy and cv2 only (never `policies/`). The names below load lazily, so that
`perception.preprocess` (numpy + cv2) serves the onboard runtime without importing torch.
"""

from __future__ import annotations

from common.lazy_exports import lazy_exports

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
    "grad_cam": "perception.attribution",
    "integrated_gradients": "perception.attribution",
    "ssim": "perception.saliency",
    "visual_backprop": "perception.saliency",
    "visual_backprop_from_means": "perception.saliency_numpy",
}

__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
