"""Whether training runs the perception in bfloat16: `amp_bf16` (true / false / auto) -> on or off.

`auto` asks the hardware, never a timing probe: bfloat16 pays only where the matrix units compute it
natively. Elsewhere oneDNN or CUDA emulate it through float32 and the "fast" path is slower.

    CUDA: torch.cuda.is_bf16_supported(including_emulation=False) (Ampere and later).
    CPU:  oneDNN (mkldnn) present and the CPU has AVX512-BF16 or AMX-BF16 instructions.
    else: off.

Where it is on: `launch/train_default.yaml` (the ncp-ltc config the demo and the studies start from)
says `auto`; the code default and the other policies of demo.yaml / study_small.yaml stay float32
until they are measured the same way. The measurement (issue 19, `bench/train_seeds.py`, 2-core
AVX512-BF16 CPU shared with other jobs): ncp-ltc, train_default.yaml, 1 epoch (41 steps) on 4 recorded
drives of 45 s, seeds 0 / 1 / 2, the two precisions of a seed back to back. Best validation ratio
(validation loss / the zero predictor's, computed in float32): fp32 0.432 / 0.670 / 0.565 (mean 0.555,
sd 0.119), bf16 0.462 / 0.474 / 0.498 (mean 0.478, sd 0.018); paired bf16 - fp32 +0.030 / -0.196 /
-0.067, mean -0.078: within float32's own seed-to-seed spread (the issue's criterion), at 47 vs 24
training frames/s in the whole fit. Short runs are what 2 shared cores allow; 3 seeds cannot tell a
small difference either way.

Earlier figures that kept it opt-in (same machine; short runs are chaotic, so read them as a warning, not
proof): one step's gradients stay within cosine 0.996 of float32's on every parameter group (two
batches' float32 gradients: cosine -0.9..0.3), yet at init the frame-to-frame part of some of the 32
features is off by up to 30 % (median 1.6 %); in paired short trainings bf16 ended with the higher
validation ratio in 6 of 8 seeds (a sign test cannot tell that from chance: p = 0.29), and over 4
epochs (seed 0) it ended at 0.072 against float32's 0.049. Watch long runs; `amp_bf16: false` turns
it off.
"""

from __future__ import annotations

from typing import Literal

import torch

BF16_CPU_FEATURES = ("avx512_bf16", "amx_bf16")
"""CPU instruction sets with native bfloat16 dot products (torch.cpu.get_capabilities keys)."""


def cpu_has_native_bf16() -> bool:
    """True when oneDNN is available and the CPU has AVX512-BF16 or AMX-BF16 (capability query)."""
    if not torch.backends.mkldnn.is_available():
        return False
    capabilities = getattr(torch.cpu, "get_capabilities", None)
    if not callable(capabilities):  # older torch: no capability table, stay in float32
        return False
    table = capabilities()
    return any(bool(table.get(name, False)) for name in BF16_CPU_FEATURES)


def bf16_supported(device: torch.device) -> bool:
    """Whether `device` computes bfloat16 natively (no emulation)."""
    if device.type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported(including_emulation=False)
    if device.type == "cpu":
        return cpu_has_native_bf16()
    return False


def resolve_amp_bf16(setting: bool | Literal["auto"], device: torch.device) -> bool:
    """The config's `amp_bf16` on this device: true/false as given, `auto` by `bf16_supported`.

    Raises:
        ValueError: a setting other than true, false or "auto".
    """
    if isinstance(setting, bool):
        return setting
    if setting == "auto":
        return bf16_supported(device)
    raise ValueError(f"amp_bf16 must be true, false or 'auto', got {setting!r}")
