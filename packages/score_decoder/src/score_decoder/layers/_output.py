"""Output block: one scalar per edge from the edge messages (direct vector output)."""

from __future__ import annotations

import torch
from torch import nn

from ._base import Dense, ResidualLayer
from ._scale import ScaleFactor

__all__ = ["OutputBlock"]


class OutputBlock(nn.Module):
    """``F_ji = w . MLP(m_ji * W rbf_ji)``: the per-edge force-like scalar of GemNet's direct output.

    The per-atom vector is built by the model as ``sum_j F_ji * unit(r_j - r_i)``; only that branch is
    built (GemNet's energy branch is never used by a score model).

    Args:
        emb_size_edge: Edge message width ``H``.
        emb_size_rbf: Projected radial basis width.
        num_residual: Residual layers after the first dense layer.
    """

    def __init__(self, *, emb_size_edge: int, emb_size_rbf: int, num_residual: int):
        super().__init__()
        self.dense_rbf = Dense(emb_size_rbf, emb_size_edge, activation=False)
        layers = [Dense(emb_size_edge, emb_size_edge, activation=True)]
        layers += [ResidualLayer(emb_size_edge) for _ in range(num_residual)]
        self.layers = nn.Sequential(*layers)
        self.out = Dense(emb_size_edge, 1, activation=False)
        self.scale_rbf = ScaleFactor()

    def forward(self, m: torch.Tensor, rbf: torch.Tensor) -> torch.Tensor:
        """Messages ``(E, H)``, radial ``(E, emb_size_rbf)`` -> per-edge scalars ``(E,)``."""
        return self.out(self.layers(self.scale_rbf(m * self.dense_rbf(rbf)))).squeeze(-1)
