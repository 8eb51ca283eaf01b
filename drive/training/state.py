"""What a training checkpoint holds beyond the policy, and how a resume checks and restores it.

A checkpoint (policies/checkpoint.py) carries the weights, wiring, preprocessing contract, policy config
and format version; training adds the optimiser state, the step, the resolved training config and, in
`extra`: the scheduler state, the RNG states, the best validation loss so far, the last validation
metrics and which episodes were trained and validated on.
"""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import torch

from drive.training.train_config import RESUME_FREE_KEYS, config_differences


def rng_state() -> dict[str, Any]:
    """The RNG states of python, numpy and torch (CPU and every CUDA device) of this process."""
    state = {
        "python": random.getstate(),
        "numpy": plain_numpy_state(np.random.get_state()),  # noqa: NPY002 (the legacy global generator)
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def plain_numpy_state(state: Any) -> tuple[Any, ...]:
    """numpy's legacy RNG state as tensors and Python scalars (what a `weights_only` checkpoint loads).

    The (624,) uint32 key array becomes an int64 tensor; `set_rng_state` turns it back.
    """
    kind, keys, pos, has_gauss, cached = state
    keys_i64 = torch.from_numpy(np.asarray(keys).astype(np.int64))
    return (str(kind), keys_i64, int(pos), int(has_gauss), float(cached))


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore `rng_state()`'s result (CUDA states only where this machine has the same GPUs)."""
    random.setstate(state["python"])
    kind, keys, pos, has_gauss, cached = state["numpy"]
    keys = np.asarray(keys.numpy() if isinstance(keys, torch.Tensor) else keys).astype(np.uint32)
    np.random.set_state((kind, keys, int(pos), int(has_gauss), float(cached)))  # noqa: NPY002
    torch.set_rng_state(state["torch"].cpu())
    cuda = state.get("cuda")
    if cuda is not None and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all([s.cpu() for s in cuda])


def check_resumable(saved_config: dict[str, Any] | None, current_config: dict[str, Any], source: str) -> None:
    """Raise ValueError unless the run being resumed computes what the saved one did.

    Keys in `RESUME_FREE_KEYS` (data location, workers, device, intervals, threads, the bar) may change.
    """
    if saved_config is None:
        raise ValueError(
            f"{source} holds no training config, so it cannot be resumed (was it saved by drive train?)"
        )
    changed = [k for k in config_differences(saved_config, current_config) if k not in RESUME_FREE_KEYS]
    if changed:
        details = "; ".join(
            f"{k}: {_get(saved_config, k)!r} saved, {_get(current_config, k)!r} now" for k in changed[:5]
        )
        raise ValueError(
            f"cannot resume from {source}: the config differs in {changed} ({details}); resume with the "
            "saved config (omit --config) or start a new run in another --out directory"
        )


def _get(config: dict[str, Any], dotted: str) -> Any:
    node: Any = config
    for key in dotted.split("."):
        if not isinstance(node, dict) or key not in node:
            return "<absent>"
        node = node[key]
    return node
