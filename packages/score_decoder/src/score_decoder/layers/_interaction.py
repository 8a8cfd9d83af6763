"""GemNet-T interaction: triplet (angle) messages, atom update, and the edge update from atoms."""

from __future__ import annotations

import math

import torch
from torch import nn

from ._base import INV_SQRT_2, Dense, ResidualLayer
from ._embedding import EdgeEmbedding
from ._layout import TripletLayout
from ._scale import ScaleFactor

__all__ = ["TripletInteraction", "AtomUpdate", "InteractionBlock"]


class TripletInteraction(nn.Module):
    """Messages ``k -> j`` carried onto edges ``j -> i`` through the angle at ``j``.

    For every edge ``ji``: ``sum_k B_ji(theta_kji) x_kj``, where ``x_kj`` is the edge message scaled by
    its radial basis and down-projected to ``emb_size_trip``, and ``B_ji`` is the circular basis
    (see :class:`CircularBasis`) of width ``emb_size_cbf``. A bilinear layer mixes the two, and the
    result of the reverse edge ``ij`` is added (GemNet's swap symmetrisation).

    Args:
        emb_size_edge: Edge message width ``H``.
        emb_size_trip: Triplet message width.
        emb_size_bilinear: Bilinear output width.
        emb_size_rbf: Width of the projected radial basis input.
        emb_size_cbf: Width of the circular basis.
        expected_triplets: Normaliser of the sum over ``k`` (typical number of ``k`` per edge).
    """

    def __init__(
        self,
        *,
        emb_size_edge: int,
        emb_size_trip: int,
        emb_size_bilinear: int,
        emb_size_rbf: int,
        emb_size_cbf: int,
        expected_triplets: float,
    ):
        super().__init__()
        self.dense_ba = Dense(emb_size_edge, emb_size_edge, activation=True)
        self.mlp_rbf = Dense(emb_size_rbf, emb_size_edge, activation=False)
        self.down_projection = Dense(emb_size_edge, emb_size_trip, activation=True)
        self.bilinear = Dense(emb_size_cbf * emb_size_trip, emb_size_bilinear, activation=False)
        self.up_projection_ca = Dense(emb_size_bilinear, emb_size_edge, activation=True)
        self.up_projection_ac = Dense(emb_size_bilinear, emb_size_edge, activation=True)
        self.sum_norm = 1.0 / math.sqrt(max(expected_triplets, 1.0))
        self.scale_rbf = ScaleFactor()
        self.scale_cbf_sum = ScaleFactor()

    def forward(
        self, m: torch.Tensor, rbf3: torch.Tensor, cbf: torch.Tensor, layout: TripletLayout
    ) -> torch.Tensor:
        """Messages ``(E, H)``, radial ``(E, emb_size_rbf)``, circular basis ``(E, emb_size_cbf, K)``."""
        x = self.scale_rbf(self.dense_ba(m) * self.mlp_rbf(rbf3))  # (E, H)
        x = self.down_projection(x)  # (E, trip)
        x_slots = layout.gather_kj(x)  # (E, K, trip): message of each triplet's edge kj, zero padded
        agg = self.scale_cbf_sum(torch.bmm(cbf, x_slots) * self.sum_norm)  # (E, cbf, trip)
        x = self.bilinear(agg.flatten(1))  # (E, bil)
        x_ca = self.up_projection_ca(x)  # (E, H)
        x_ac = layout.gather_reverse(self.up_projection_ac(x))  # (E, H), zero where ij is absent
        return (x_ca + x_ac) * INV_SQRT_2


class AtomUpdate(nn.Module):
    """``h_i <- MLP(sum_j m_ji * W rbf_ji / sqrt(n))``: edge messages pooled onto their target atom.

    Args:
        emb_size_atom: Atom width.
        emb_size_edge: Edge width.
        emb_size_rbf: Projected radial basis width.
        num_residual: Residual layers after the first dense layer.
        expected_neighbors: Normaliser ``n`` of the sum over edges.
    """

    def __init__(
        self,
        *,
        emb_size_atom: int,
        emb_size_edge: int,
        emb_size_rbf: int,
        num_residual: int,
        expected_neighbors: float,
    ):
        super().__init__()
        self.dense_rbf = Dense(emb_size_rbf, emb_size_edge, activation=False)
        layers = [Dense(emb_size_edge, emb_size_atom, activation=True)]
        layers += [ResidualLayer(emb_size_atom) for _ in range(num_residual)]
        self.layers = nn.Sequential(*layers)
        self.sum_norm = 1.0 / math.sqrt(expected_neighbors)
        self.scale_sum = ScaleFactor()

    def forward(
        self, m: torch.Tensor, rbf: torch.Tensor, target: torch.Tensor, num_atoms: int
    ) -> torch.Tensor:
        """Messages ``(E, H)``, radial ``(E, emb_size_rbf)``, target atom ``(E,)`` -> ``(N, Ha)``."""
        x = m * self.dense_rbf(rbf)  # (E, H)
        pooled = x.new_zeros(num_atoms, x.shape[1]).index_add_(0, target, x)  # (N, H)
        return self.layers(self.scale_sum(pooled * self.sum_norm))


class InteractionBlock(nn.Module):
    """One GemNet-T interaction block (triplets only): updates atoms ``h`` and edge messages ``m``.

    Args:
        emb_size_atom, emb_size_edge, emb_size_trip, emb_size_rbf, emb_size_cbf, emb_size_bil_trip:
            Widths, as in :class:`~score_decoder.GemNetConfig`.
        num_before_skip, num_after_skip, num_concat, num_atom: Residual layer counts.
        expected_neighbors: Typical number of edges into an atom.
    """

    def __init__(
        self,
        *,
        emb_size_atom: int,
        emb_size_edge: int,
        emb_size_trip: int,
        emb_size_rbf: int,
        emb_size_cbf: int,
        emb_size_bil_trip: int,
        num_before_skip: int,
        num_after_skip: int,
        num_concat: int,
        num_atom: int,
        expected_neighbors: float,
    ):
        super().__init__()
        self.dense_ca = Dense(emb_size_edge, emb_size_edge, activation=True)
        self.triplet = TripletInteraction(
            emb_size_edge=emb_size_edge,
            emb_size_trip=emb_size_trip,
            emb_size_bilinear=emb_size_bil_trip,
            emb_size_rbf=emb_size_rbf,
            emb_size_cbf=emb_size_cbf,
            expected_triplets=expected_neighbors - 1.0,
        )
        self.before_skip = nn.Sequential(*[ResidualLayer(emb_size_edge) for _ in range(num_before_skip)])
        self.after_skip = nn.Sequential(*[ResidualLayer(emb_size_edge) for _ in range(num_after_skip)])
        self.atom_update = AtomUpdate(
            emb_size_atom=emb_size_atom,
            emb_size_edge=emb_size_edge,
            emb_size_rbf=emb_size_rbf,
            num_residual=num_atom,
            expected_neighbors=expected_neighbors,
        )
        self.concat = EdgeEmbedding(
            atom_features=emb_size_atom, edge_features=emb_size_edge, out_features=emb_size_edge
        )
        self.after_concat = nn.Sequential(*[ResidualLayer(emb_size_edge) for _ in range(num_concat)])
        # Residual sums of positively correlated terms grow the streams by up to sqrt(2) per sum.
        self.scale_h = ScaleFactor()
        self.scale_m = ScaleFactor()

    def forward(
        self,
        h: torch.Tensor,
        m: torch.Tensor,
        *,
        rbf3: torch.Tensor,
        cbf: torch.Tensor,
        rbf_h: torch.Tensor,
        edge_index: torch.Tensor,
        layout: TripletLayout,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Atoms ``(N, Ha)`` and edges ``(E, H)`` -> updated ``(h, m)`` of the same shapes."""
        x = (self.dense_ca(m) + self.triplet(m, rbf3, cbf, layout)) * INV_SQRT_2  # (E, H)
        x = self.before_skip(x)
        m = self.after_skip((m + x) * INV_SQRT_2)
        h = (h + self.atom_update(m, rbf_h, edge_index[1], h.shape[0])) * INV_SQRT_2  # (N, Ha)
        m = (m + self.concat(h, m, edge_index)) * INV_SQRT_2
        return self.scale_h(h), self.scale_m(self.after_concat(m))
