"""Atom embedding (with the per-crystal condition) and the edge embedding."""

from __future__ import annotations

import math

import torch
from torch import nn

from ._base import Dense

__all__ = ["AtomEmbedding", "EdgeEmbedding"]


class AtomEmbedding(nn.Module):
    """Learned per-element vectors, optionally mixed with the crystal's condition vector.

    ``h = Embedding(Z)``; with ``cond_dim > 0``: ``h = W [h | cond[batch]] + b`` (Cond-CDVAE's
    concatenation of ``cond_z`` to every atom embedding followed by a linear layer).

    Args:
        num_elements: Largest atomic number; types ``1..num_elements`` are valid.
        emb_size: Embedding width ``H``.
        cond_dim: Width of the condition vector (``0``: none, and no linear layer is built).
    """

    def __init__(self, *, num_elements: int, emb_size: int, cond_dim: int):
        super().__init__()
        self.embedding = nn.Embedding(num_elements, emb_size)
        self.mix = Dense(emb_size + cond_dim, emb_size, activation=False, bias=True) if cond_dim > 0 else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.uniform_(self.embedding.weight, -math.sqrt(3.0), math.sqrt(3.0))  # unit variance
        if self.mix is not None:
            self.mix.reset_parameters()

    def forward(
        self, atom_types: torch.Tensor, batch: torch.Tensor, cond: torch.Tensor | None
    ) -> torch.Tensor:
        """Atomic numbers ``(N,)``, crystal index ``(N,)``, condition ``(C, cond_dim)`` -> ``(N, H)``."""
        h = self.embedding(atom_types - 1)  # (N, H)
        if self.mix is None:
            return h
        return self.mix(torch.cat([h, cond[batch]], dim=-1))


class EdgeEmbedding(nn.Module):
    """``m_ji = act(W [h_i | h_j | e_ji])`` for every edge ``j -> i`` (target ``i``, source ``j``).

    Args:
        atom_features: Width of the atom features ``h``.
        edge_features: Width of the per-edge input ``e`` (radial basis or previous message).
        out_features: Output width.
    """

    def __init__(self, *, atom_features: int, edge_features: int, out_features: int):
        super().__init__()
        self.dense = Dense(2 * atom_features + edge_features, out_features, activation=True)

    def reset_parameters(self) -> None:
        self.dense.reset_parameters()

    def forward(self, h: torch.Tensor, edge_features: torch.Tensor, edge_index: torch.Tensor) -> torch.Tensor:
        """Atoms ``(N, Ha)``, edge input ``(E, He)``, ``edge_index (2, E)`` -> ``(E, out_features)``."""
        h_j, h_i = h[edge_index[0]], h[edge_index[1]]  # (E, Ha) each
        return self.dense(torch.cat([h_i, h_j, edge_features], dim=-1))
