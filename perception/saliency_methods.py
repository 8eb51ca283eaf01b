"""The names of the saliency methods (no torch here: configs check them without loading a network).

- `visual_backprop`: the project's own VisualBackProp (perception.saliency);
- `grad_cam`, `integrated_gradients`: Captum's (perception.attribution).
"""

from __future__ import annotations

from collections.abc import Sequence

SALIENCY_METHODS = ("visual_backprop", "grad_cam", "integrated_gradients")
"""Selectable saliency methods (`drive eval --saliency-method`, `EvalConfig.saliency_methods`)."""

SALIENCY_ABBREVIATIONS = {"visual_backprop": "VBP", "grad_cam": "Grad-CAM", "integrated_gradients": "IG"}
"""Short names for tables and figure titles."""


def check_methods(methods: Sequence[str], where: str = "saliency_methods") -> list[str]:
    """`methods` as a list, each known and given once; raises ValueError naming the bad one.

    Example:
        >>> check_methods(["grad_cam", "visual_backprop"])
        ['grad_cam', 'visual_backprop']
    """
    names = list(methods)
    for name in names:
        if name not in SALIENCY_METHODS:
            raise ValueError(f"{where}: unknown saliency method {name!r}; choose from {SALIENCY_METHODS}")
    if len(set(names)) != len(names):
        raise ValueError(f"{where}: repeated methods in {names}")
    return names
