"""Shared pieces of the training tests: tiny synthetic crystals and comparison helpers (no tests here)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from cond_vae.training import read_metrics
from safetensors.torch import load_file
from xtal_graph import Crystal


def synthetic_crystals(n: int, *, seed: int, prefix: str = "x") -> list[Crystal]:
    """``n`` small random cells (2-4 atoms, 3-4.5 Å edges) with pressures in {0, 10, 50} GPa."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        k = int(rng.integers(2, 5))
        a = 3.0 + 1.5 * rng.random()
        lattice = np.diag([a, a * (1 + 0.1 * rng.random()), a * (1 + 0.2 * rng.random())])
        lattice = lattice + 0.2 * rng.random((3, 3))
        out.append(
            Crystal(
                atom_types=rng.integers(1, 30, k).astype(np.int64),
                frac_coords=rng.random((k, 3)),
                lattice=lattice,
                properties={"pressure": float(rng.choice([0.0, 10.0, 50.0]))},
                id=f"{prefix}{i}",
            )
        )
    return out


def loss_rows(out_dir: str | Path) -> list[dict[str, str]]:
    """metrics.csv rows without the wall-clock column."""
    return [
        {k: v for k, v in row.items() if k != "seconds"}
        for row in read_metrics(Path(out_dir) / "metrics.csv")
    ]


def weights(checkpoint: str | Path) -> dict[str, torch.Tensor]:
    return load_file(str(Path(checkpoint) / "model.safetensors"))
