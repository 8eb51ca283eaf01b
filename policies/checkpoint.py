"""Checkpoints: weights, wiring, preprocessing contract, configs, optimiser and step, in one file.

Saved atomically (temporary file, then rename), so a crash while saving never loses the previous one.
Loading rebuilds the policy from the saved config *and the saved wiring* (not a re-sampled one) and
refuses weights that do not fit, naming the file and the first mismatch.

A checkpoint holds tensors and plain values only (dicts, lists, tuples, str, int, float, bool, None):
`save_checkpoint` converts numpy values and paths, and `read_checkpoint` loads with
`torch.load(weights_only=True)`, so a crafted file cannot run code when it is read. A file holding other
objects (written by an older version, or by someone else) is refused; one you wrote yourself and trust
converts once with `python -m policies.checkpoint --migrate-trusted OLD.pt NEW.pt`.
"""

from __future__ import annotations

import os
import pickle
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch

from common.strict_config import ConfigError, from_dict
from policies.driving_policy import DrivingPolicy, PolicyConfig
from policies.registry import build_policy
from policies.wiring import Wiring

CHECKPOINT_FORMAT_VERSION = 1


def save_checkpoint(
    path: str | Path,
    policy: DrivingPolicy,
    *,
    step: int = 0,
    optimizer_state: dict[str, Any] | None = None,
    train_config: dict[str, Any] | None = None,
    extra: dict[str, Any] | None = None,
) -> Path:
    """Write `policy` (and training state, for `--resume`) to `path`; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    wiring = policy.wiring
    payload = {
        "format_version": CHECKPOINT_FORMAT_VERSION,
        "policy_config": policy.config.to_dict(),
        "wiring": wiring.to_dict() if wiring is not None else None,
        "preprocess": policy.config.contract.to_dict(),
        "state_dict": policy.state_dict(),
        "step": int(step),
        "optimizer": optimizer_state,
        "train_config": train_config,
        "extra": extra or {},
    }
    payload = to_plain(payload)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(payload, tmp)
    os.replace(tmp, path)
    return path


def read_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """The raw checkpoint dict, validated (format version, required keys); errors name the file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    try:
        # weights_only: the unpickler builds tensors and plain containers only, never calls a function
        # named in the file, so a crafted checkpoint cannot run code here.
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        if "weights" not in str(err).lower():  # a damaged file, not a refused object
            damaged = f"checkpoint {path} is unreadable (truncated or not a checkpoint): {err}"
            raise ValueError(damaged) from None
        raise ValueError(
            f"checkpoint {path} holds Python objects other than tensors and plain values (written by an "
            "older liquid-drive, or not a liquid-drive checkpoint); it is refused because loading it "
            "could run code. If you wrote it and trust it, convert it once with: python -m "
            f"policies.checkpoint --migrate-trusted {path} NEW.pt"
        ) from None
    except Exception as err:  # torch raises many kinds for a damaged file
        raise ValueError(f"checkpoint {path} is unreadable (truncated or not a checkpoint): {err}") from None
    if not isinstance(payload, dict) or "format_version" not in payload:
        raise ValueError(f"checkpoint {path} is not a liquid-drive checkpoint")
    if payload["format_version"] != CHECKPOINT_FORMAT_VERSION:
        raise ValueError(
            f"checkpoint {path} has format version {payload['format_version']}, "
            f"this code reads {CHECKPOINT_FORMAT_VERSION}"
        )
    missing = {"policy_config", "wiring", "state_dict", "step"} - set(payload)
    if missing:
        raise ValueError(f"checkpoint {path} lacks {sorted(missing)}")
    return payload


def load_policy(
    path: str | Path, map_location: str | torch.device = "cpu"
) -> tuple[DrivingPolicy, dict[str, Any]]:
    """Rebuild the saved policy with its weights, in eval mode; returns (policy, the checkpoint dict).

    Eval mode because a loaded policy drives or exports: the sensory feature norm then uses its saved
    running moments, not the statistics of whatever batch it is given (call `.train()` to fine-tune).
    """
    payload = read_checkpoint(path, map_location)
    try:
        # Strict: an unknown key is an error; a key added since the file was written takes its default,
        # except `sensory_norm`: checkpoints written before it existed hold policies without the norm.
        saved = {"sensory_norm": "paper", **payload["policy_config"]}
        config = from_dict(PolicyConfig, saved, prefix="policy_config.")
    except ConfigError as err:
        raise ConfigError(f"checkpoint {path}: {err}") from None
    wiring = Wiring.from_dict(payload["wiring"]) if payload["wiring"] is not None else None
    policy = build_policy(config, wiring)
    load_weights(policy, payload["state_dict"], source=str(path))
    return policy.eval(), payload


def load_weights(policy: DrivingPolicy, state_dict: dict[str, torch.Tensor], source: str = "weights") -> None:
    """Load weights into `policy`, or raise ValueError naming `source` and the first mismatch."""
    own = policy.state_dict()
    missing = sorted(set(own) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(own))
    if missing or unexpected:
        raise ValueError(
            f"{source} does not fit this {policy.config.name!r} policy: "
            f"missing {missing[:3]}, unexpected {unexpected[:3]}"
        )
    for key, value in state_dict.items():
        if hasattr(value, "shape") and tuple(value.shape) != tuple(own[key].shape):
            raise ValueError(
                f"{source} does not fit this {policy.config.name!r} policy: {key} has shape "
                f"{tuple(value.shape)} in the file and {tuple(own[key].shape)} here"
            )
    try:
        policy.load_state_dict(state_dict, strict=True)
    except (RuntimeError, ValueError) as err:
        raise ValueError(f"{source} does not fit this {policy.config.name!r} policy: {err}") from None


def to_plain(value: Any, where: str = "checkpoint") -> Any:
    """`value` with numpy values as tensors/Python scalars and paths as str: what `weights_only` loads.

    Raises:
        TypeError: naming the key path of a value of another type (it would not load back).
    """
    if isinstance(value, torch.Tensor) or value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, dict):
        return type(value)((k, to_plain(v, f"{where}.{k}")) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return type(value)(to_plain(v, f"{where}[{i}]") for i, v in enumerate(value))
    if isinstance(value, np.ndarray):
        return torch.from_numpy(np.array(value, dtype=np.int64 if value.dtype.kind == "u" else None))
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    raise TypeError(f"{where}: a {type(value).__name__} cannot be stored in a checkpoint (plain values only)")


def migrate_trusted(source: str | Path, target: str | Path) -> Path:
    """Rewrite a checkpoint from an older version as tensors and plain values; returns `target`.

    This runs the old file's pickle (it may execute code), so only for a file you wrote yourself.
    """
    payload = torch.load(Path(source), map_location="cpu", weights_only=False)
    if not isinstance(payload, dict):
        raise ValueError(f"checkpoint {source} is not a liquid-drive checkpoint")
    # numpy's RNG state (a uint32 array) becomes an int64 tensor, which `set_rng_state` reads back.
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".tmp")
    torch.save(to_plain(payload), tmp)
    os.replace(tmp, target)
    read_checkpoint(target)  # it now loads without running code
    return target


if __name__ == "__main__":
    if len(sys.argv) != 4 or sys.argv[1] != "--migrate-trusted":
        print("usage: python -m policies.checkpoint --migrate-trusted OLD.pt NEW.pt", file=sys.stderr)
        raise SystemExit(2)
    print(f"wrote {migrate_trusted(sys.argv[2], sys.argv[3])}")
