"""Whether a training run multiplies matrices in bfloat16 (``TrainConfig.bf16_autocast``).

bfloat16 autocast pays only where the hardware multiplies bfloat16 matrices natively: CUDA GPUs of
compute capability 8 and later, and x86 CPUs with AMX or AVX512-BF16 (measured on an AMX Xeon:
docs/benchmarks/cond_vae_training.md). Elsewhere bfloat16 is emulated and slower than float32, so
``"auto"`` turns it on only where it is native. The geometry around the networks stays in float32
either way (``xtal_graph`` computes positions, cells and neighbour lists outside autocast).
"""

from __future__ import annotations

import functools
from pathlib import Path

import torch

__all__ = ["native_bf16", "use_bf16_autocast"]


@functools.cache
def _cpu_flags() -> frozenset[str]:
    """The CPU feature flags of ``/proc/cpuinfo`` (empty where there is none, e.g. macOS)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return frozenset()
    for line in text.splitlines():
        if line.startswith("flags"):
            return frozenset(line.partition(":")[2].split())
    return frozenset()


def native_bf16(device: torch.device) -> bool:
    """Whether ``device`` multiplies bfloat16 matrices in hardware (not emulated)."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported(including_emulation=False)
    if device.type == "cpu":
        return bool(_cpu_flags() & {"amx_bf16", "avx512_bf16"})
    return False


def use_bf16_autocast(setting: bool | str, device: torch.device) -> bool:
    """Resolve ``TrainConfig.bf16_autocast`` (``True``, ``False`` or ``"auto"``) for ``device``."""
    if setting == "auto":
        return native_bf16(device)
    return bool(setting)
