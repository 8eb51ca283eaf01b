"""Whether training runs the perception in bfloat16: `amp_bf16` (true / false / auto) -> on or off.

`auto` asks the hardware, never a timing probe: bfloat16 pays only where the matrix units compute it
natively. Elsewhere oneDNN or CUDA emulate it through float32 and the "fast" path is slower.

    CUDA: torch.cuda.is_bf16_supported(including_emulation=False) (Ampere and later).
    CPU:  oneDNN (mkldnn) present and the CPU has AVX512-BF16 or AMX-BF16 instructions.
    else: off.

Why float32 stays the default (measured on a 2-core AVX512-BF16 CPU, ncp-ltc on 12 min of recorded
drives, launch/train_default.yaml): bf16 makes the training step ~1.75x faster (bench/train.py) and
one step's gradients stay within cosine 0.996 of float32's on every parameter group (two batches'
float32 gradients: cosine -0.9..0.3), yet at init the frame-to-frame part of some of the 32 features
is off by up to 30 % (median 1.6 %), and in paired short trainings (same seed, schedule run to its
end) bf16 ended with the higher validation/zero-predictor loss ratio in 6 of 8 seeds and trailed after
the first epoch in 5 of 6; over 4 epochs (seed 0) it ended at 0.072 against float32's 0.049, behind
even at equal wall-clock time. Short runs are chaotic (float32 alone spreads 0.12-0.99 over seeds), so
that is a warning, not proof; `amp_bf16: auto` is there for runs that trade it for speed.
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
