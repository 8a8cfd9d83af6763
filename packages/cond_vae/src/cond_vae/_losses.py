"""Loss terms of Cond-CDVAE and the ``LossOutput`` returned by ``CondCDVAE.forward``."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor
from torch_geometric.utils import scatter

__all__ = ["LossOutput", "coord_loss_per_crystal", "kl_per_crystal", "noise_levels"]


@dataclass(frozen=True)
class LossOutput:
    """One training/validation step's losses.

    Scalars (0-d tensors): ``total = cost_lattice * lattice + cost_coord * coord + beta * kl``,
    ``lattice`` (MSE of the standardised 6 lattice numbers), ``coord`` (denoising score loss),
    ``kl``. ``per_crystal_total (C,)``: the same weighted sum per crystal (its mean is ``total``),
    for reporting non-finite losses by crystal id. Detached diagnostics for validation metrics:
    ``pred_lengths (C, 3)`` Å, ``pred_angles (C, 3)`` degrees of the predicted lattice, and
    ``noise_level (C,)`` the index of the noise level drawn per crystal. ``degenerate_lattices``
    (0-d long): crystals whose predicted lattice was degenerate and replaced by the true one (only
    without teacher forcing; see ``cond_vae._model.usable_predicted_lattice``).
    """

    total: Tensor
    lattice: Tensor
    coord: Tensor
    kl: Tensor
    per_crystal_total: Tensor
    pred_lengths: Tensor
    pred_angles: Tensor
    noise_level: Tensor
    degenerate_lattices: Tensor | None = None


def noise_levels(*, sigma_begin: float, sigma_end: float, num_levels: int) -> Tensor:
    """Geometric noise levels ``(L,)`` in Å from ``sigma_begin`` down to ``sigma_end`` (float64)."""
    logs = torch.linspace(math.log(sigma_begin), math.log(sigma_end), num_levels, dtype=torch.float64)
    return torch.exp(logs)


def coord_loss_per_crystal(
    *, displacement: Tensor, sigma: Tensor, score: Tensor, batch: Tensor, num_crystals: int
) -> Tensor:
    """``(C,)`` mean over each crystal's atoms of ``1/2 |d / sigma - score|^2``.

    Args:
        displacement: ``(N, 3)`` minimum-image vector from the noisy to the true position, Å.
        sigma: ``(N,)`` noise level of each atom's crystal, Å.
        score: ``(N, 3)`` decoder output (dimensionless, ~ -noise direction).
    """
    per_atom = 0.5 * ((displacement / sigma.unsqueeze(-1) - score) ** 2).sum(-1)  # (N,)
    return scatter(per_atom, batch, dim=0, dim_size=num_crystals, reduce="mean")


def kl_per_crystal(mu: Tensor, logvar: Tensor) -> Tensor:
    """``(C,)`` KL( N(mu, exp(logvar)) || N(0, I) ), summed over latent dimensions."""
    return -0.5 * torch.sum(1 + logvar - mu**2 - logvar.exp(), dim=-1)
