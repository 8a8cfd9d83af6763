"""Lattice head and the 6-number lattice representation ``[a, b, c] / N^(1/3) ⊕ [alpha, beta, gamma]``.

The head predicts the *standardised* six numbers from ``cond_z`` (reference behaviour); the lattice
scaler maps them back to Å-per-atom^(1/3) and degrees, and ``lattice_from_params`` builds the
matrix in pymatgen's orientation.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn
from xtal_graph import lattice_from_params, lattice_to_params, volume

__all__ = ["LatticeHead", "lattice_to_scaled_params", "scaled_params_to_lattice", "validate_lattices"]

# Predicted angles are kept inside (ANGLE_MIN, ANGLE_MAX) degrees and lengths above LENGTH_MIN Å
# when a predicted lattice is turned into a cell (the reference leaves them unconstrained).
ANGLE_MIN, ANGLE_MAX, LENGTH_MIN = 5.0, 175.0, 1e-2


class LatticeHead(nn.Module):
    """``cond_z (C, D)`` -> standardised lattice numbers ``(C, 6)``: Linear -> ReLU -> Linear."""

    def __init__(self, *, in_dim: int, hidden_dim: int) -> None:
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(in_dim, hidden_dim), nn.ReLU(), nn.Linear(hidden_dim, 6))

    def forward(self, cond_z: Tensor) -> Tensor:
        return self.mlp(cond_z)


def lattice_to_scaled_params(lattice: Tensor, num_atoms: Tensor) -> Tensor:
    """``lattice (C, 3, 3)`` Å -> ``(C, 6)``: lengths / N^(1/3) in Å and angles in degrees."""
    lengths, angles = lattice_to_params(lattice)
    n = num_atoms.to(lengths.dtype).unsqueeze(-1)
    return torch.cat([lengths / n ** (1.0 / 3.0), angles], dim=-1)


def scaled_params_to_lattice(params: Tensor, num_atoms: Tensor) -> Tensor:
    """Inverse of :func:`lattice_to_scaled_params` (up to rotation): ``(C, 6)`` -> ``(C, 3, 3)`` Å.

    Lengths are floored at ``LENGTH_MIN`` and angles clamped to ``[ANGLE_MIN, ANGLE_MAX]`` so that a
    wild prediction gives a (possibly flat) cell instead of NaN; see :func:`validate_lattices`.
    """
    n = num_atoms.to(params.dtype).unsqueeze(-1)
    lengths = (params[:, :3] * n ** (1.0 / 3.0)).clamp_min(LENGTH_MIN)
    angles = params[:, 3:].clamp(ANGLE_MIN, ANGLE_MAX)
    return lattice_from_params(lengths, angles)


@dataclass(frozen=True)
class LatticeCheck:
    """Per-crystal validity of predicted cells: ``valid (C,) bool`` and ``reasons`` (``"code: detail"``,
    empty when valid)."""

    valid: Tensor
    reasons: tuple[str, ...]


def validate_lattices(params: Tensor, num_atoms: Tensor, *, min_volume_per_atom: float = 1.0) -> LatticeCheck:
    """Flag predicted cells that are not proper crystals.

    ``params (C, 6)`` unscaled (lengths / N^(1/3) in Å, angles in degrees). A cell is invalid when a
    length is not positive, an angle leaves (0, 180), the angles cannot close a cell (the metric is
    not positive definite) or the volume per atom is below ``min_volume_per_atom`` Å^3.
    """
    n = num_atoms.to(params.dtype)
    lengths = params[:, :3] * n.unsqueeze(-1) ** (1.0 / 3.0)
    angles = params[:, 3:]
    cos = torch.cos(torch.deg2rad(angles))
    gram_det = 1 - (cos**2).sum(-1) + 2 * cos.prod(-1)  # det of the normalised metric tensor
    reasons = []
    valid = torch.ones(params.shape[0], dtype=torch.bool, device=params.device)
    vol = volume(lattice_from_params(lengths.clamp_min(LENGTH_MIN), angles.clamp(ANGLE_MIN, ANGLE_MAX)))
    for k in range(params.shape[0]):
        if not bool(torch.isfinite(params[k]).all()):
            reason = "non_finite: lattice parameters are not finite"
        elif bool((lengths[k] <= 0).any()):
            reason = f"non_positive_length: lengths {lengths[k].tolist()} Å"
        elif bool(((angles[k] <= 0) | (angles[k] >= 180)).any()):
            reason = f"bad_angle: angles {angles[k].tolist()} outside (0, 180)"
        elif float(gram_det[k]) <= 0:
            reason = f"not_a_cell: angles {angles[k].tolist()} cannot close a cell"
        elif float(vol[k]) / float(n[k]) < min_volume_per_atom:
            reason = f"small_volume: {float(vol[k]) / float(n[k]):.3g} Å^3 per atom < {min_volume_per_atom}"
        else:
            reason = ""
        valid[k] = reason == ""
        reasons.append(reason)
    return LatticeCheck(valid=valid, reasons=tuple(reasons))
