"""Counter-based random numbers: every number a pure function of (seed, row, sample, stream, position).

A structure's latent, starting coordinates and the noise of every step are drawn from keys, not from a
generator's running state, so the same request gives the same random numbers whatever the batch size,
the chunking or the number of processes. Integer hashing (SplitMix64's finaliser) runs vectorised in
torch int64 on any device; uniforms take the top 53 bits, normals use Box-Muller in float64.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

_M1 = 0xBF58476D1CE4E5B9 - (1 << 64)  # SplitMix64 multipliers as signed int64
_M2 = 0x94D049BB133111EB - (1 << 64)
_GOLDEN = 0x9E3779B97F4A7C15 - (1 << 64)
_MASK64 = (1 << 64) - 1

# streams: what a number is for (each draws from its own sequence)
LATENT, START, NOISE, SPECIES = 1, 2, 3, 4


def _shr(x: Tensor, s: int) -> Tensor:
    """Logical right shift of int64 (torch's ``>>`` is arithmetic)."""
    return (x >> s) & ((1 << (64 - s)) - 1)


def _mix(x: Tensor) -> Tensor:
    x = (x ^ _shr(x, 30)) * _M1
    x = (x ^ _shr(x, 27)) * _M2
    return x ^ _shr(x, 31)


def _signed(x: int) -> int:
    """A Python int wrapped to a signed 64-bit value (what a torch int64 holds)."""
    x &= _MASK64
    return x - (1 << 64) if x >> 63 else x


def _mix_int(x: int) -> int:
    x &= _MASK64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK64
    return x ^ (x >> 31)


def structure_key(seed: int, row: int, index: int) -> int:
    """A 63-bit key for sample ``index`` of request row ``row`` under ``seed``."""
    k = _mix_int(int(seed) * 0x9E3779B97F4A7C15 + 0x632BE59BD9B4E019)
    k = _mix_int(k ^ (int(row) * 0xD6E8FEB86659FD93 + 1))
    k = _mix_int(k ^ (int(index) * 0xA0761D6478BD642F + 2))
    return k >> 1


def atom_keys(structure_keys: Tensor, local_index: Tensor) -> Tensor:
    """Keys ``(N,)`` of atoms from their structure's key and their index within the structure."""
    return _mix(structure_keys ^ ((local_index + 1) * _GOLDEN))


def _bits(keys: Tensor, stream: int, counter: int, width: int) -> Tensor:
    """``(len(keys), width)`` hashed int64 words for ``keys (M,)`` at ``(stream, counter)``."""
    base = _mix(keys + _signed(((stream << 40) + counter) * _GOLDEN))  # (M,)
    lanes = torch.arange(1, width + 1, device=keys.device, dtype=torch.int64) * _GOLDEN
    return _mix(base[:, None] ^ lanes)  # (M, width)


def uniform(keys: Tensor, stream: int, counter: int, width: int, dtype: torch.dtype) -> Tensor:
    """Uniform numbers in (0, 1), shape ``(M, width)``."""
    u = (_shr(_bits(keys, stream, counter, width), 11).double() + 0.5) * 2.0**-53
    return u.to(dtype)


def normal(keys: Tensor, stream: int, counter: int, width: int, dtype: torch.dtype) -> Tensor:
    """Standard normal numbers, shape ``(M, width)``."""
    words = _bits(keys, stream, counter, 2 * width)
    u = (_shr(words, 11).double() + 0.5) * 2.0**-53  # (M, 2 width) in (0, 1)
    radius = torch.sqrt(-2.0 * torch.log(u[:, :width]))
    return (radius * torch.cos((2.0 * math.pi) * u[:, width:])).to(dtype)
