"""Shared helpers for the cond_vae tests: small random crystals and a fitted tiny model."""

from __future__ import annotations

import numpy as np
import torch
from cond_vae import CondCDVAE, CondCDVAEConfig
from xtal_graph import Crystal, collate, lattice_from_params

ELEMENTS = (1, 6, 8, 14, 26)


def random_crystals(
    n: int, *, seed: int = 0, max_atoms: int = 6, pressure_range=(0.0, 20.0)
) -> list[Crystal]:
    """``n`` random crystals with 1..max_atoms atoms, cell volume ~12 Å^3/atom, random pressures."""
    rng = np.random.default_rng(seed)
    out = []
    for k in range(n):
        num = int(rng.integers(1, max_atoms + 1))
        angles = rng.uniform(70, 110, size=3)
        lengths = rng.uniform(0.8, 1.2, size=3) * (12.0 * num) ** (1 / 3)
        lattice = lattice_from_params(lengths, angles).numpy()
        out.append(
            Crystal(
                atom_types=rng.choice(ELEMENTS, size=num).astype(np.int64),
                frac_coords=rng.random((num, 3)),
                lattice=lattice,
                properties={"pressure": float(rng.uniform(*pressure_range))},
                id=f"c{k}",
            )
        )
    return out


def tiny_model(crystals=None, *, seed: int = 0, dtype=torch.float64, **overrides) -> CondCDVAE:
    """A tiny model with scalers fitted on ``crystals`` (default: 16 random crystals)."""
    torch.manual_seed(seed)
    model = CondCDVAE(CondCDVAEConfig.tiny(**overrides)).to(dtype)
    model.fit_scalers(crystals if crystals is not None else random_crystals(16, seed=seed + 1))
    return model


def batch_of(crystals, dtype=torch.float64):
    return collate(crystals, dtype=dtype)
