"""Periodic DimeNet++ encoder: crystal (+ condition c) -> latent mean and log-variance.

Reuses torch_geometric's DimeNet++ blocks (Bessel / spherical bases, interaction-PP and output-PP
blocks; pure torch, no torch_scatter) on a periodic graph built by the caller with xtal_graph.
Differences from PyG's ``DimeNetPlusPlus``: the atom embedding is concatenated with ``c`` and mixed
by a linear layer, the embedding block has no element table of its own, each output block ends in
``tanh`` (as Cond-CDVAE: it bounds the latent statistics), and the readout is a mean over atoms.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch_geometric.nn.models.dimenet import (
    BesselBasisLayer,
    InteractionPPBlock,
    OutputPPBlock,
    SphericalBasisLayer,
)
from torch_geometric.utils import scatter
from xtal_graph import PeriodicGraph, Triplets

from ._config import EncoderConfig

__all__ = ["LatentStats", "PeriodicDimeNetPP"]


@dataclass(frozen=True)
class LatentStats:
    """Posterior statistics ``mu (C, Z)`` and ``logvar (C, Z)`` of the latent per crystal."""

    mu: Tensor
    logvar: Tensor


@functools.lru_cache(maxsize=8)
def _spherical_basis(num_spherical: int, num_radial: int, cutoff: float, envelope_exponent: int):
    # Building the sympy Bessel forms takes ~10 s for (7, 6); the layer holds no tensors, so one
    # instance per setting can be shared by every encoder in the process.
    return SphericalBasisLayer(num_spherical, num_radial, cutoff, envelope_exponent)


class PeriodicDimeNetPP(nn.Module):
    """DimeNet++ over a periodic graph, conditioned on ``c``; output ``LatentStats``.

    Args:
        config: architecture (widths, blocks, radial/spherical basis sizes, cutoff in Å).
        cond_dim: width of the condition vector ``c`` (0: unconditional).
        latent_dim: ``Z``.
        num_elements: largest atomic number accepted.
    """

    def __init__(self, config: EncoderConfig, *, cond_dim: int, latent_dim: int, num_elements: int = 100):
        super().__init__()
        h = config.hidden_channels
        act = nn.SiLU()
        self.config = config
        self.atom_embedding = nn.Embedding(num_elements, h)
        nn.init.uniform_(self.atom_embedding.weight, -math.sqrt(3), math.sqrt(3))
        self.cond_mix = nn.Linear(h + cond_dim, h) if cond_dim > 0 else None
        self.rbf = BesselBasisLayer(config.num_radial, config.cutoff, config.envelope_exponent)
        self._sbf = (config.num_spherical, config.num_radial, config.cutoff, config.envelope_exponent)
        # Embedding block of DimeNet: act(W [x_i | x_j | act(W_rbf rbf)]); PyG's version owns an
        # element table, ours receives the conditioned atom features instead.
        self.emb_rbf = nn.Linear(config.num_radial, h)
        self.emb_mix = nn.Linear(3 * h, h)
        self.interactions = nn.ModuleList(
            InteractionPPBlock(
                h,
                config.int_emb_size,
                config.basis_emb_size,
                config.num_spherical,
                config.num_radial,
                config.num_before_skip,
                config.num_after_skip,
                act,
            )
            for _ in range(config.num_blocks)
        )
        self.outputs = nn.ModuleList(
            OutputPPBlock(
                config.num_radial, h, config.out_emb_channels, latent_dim, config.num_output_layers, act
            )
            for _ in range(config.num_blocks + 1)
        )
        self.act = act
        self.fc_mu = nn.Linear(latent_dim, latent_dim)
        self.fc_logvar = nn.Linear(latent_dim, latent_dim)

    @property
    def sbf(self) -> SphericalBasisLayer:
        # built on first use (sympy, seconds), then held as a plain attribute rather than a submodule
        # (it has no state): compiled code reads it as a constant instead of calling the cache
        if "_sbf_layer" not in self.__dict__:
            object.__setattr__(self, "_sbf_layer", _spherical_basis(*self._sbf))
        return self.__dict__["_sbf_layer"]

    def forward(
        self,
        *,
        atom_types: Tensor,
        batch: Tensor,
        graph: PeriodicGraph,
        triplets: Triplets,
        cond: Tensor | None,
        num_crystals: int,
    ) -> LatentStats:
        """Encode a batch.

        Args:
            atom_types: ``(N,)`` atomic numbers.
            batch: ``(N,)`` crystal index of each atom.
            graph: xtal_graph radius graph (``edge_index[0]`` = neighbour j, ``[1]`` = centre i).
            triplets: k -> j -> i triplets of ``graph``.
            cond: ``(C, cond_dim)`` condition vectors, or ``None`` when ``cond_dim == 0``.
            num_crystals: ``C``.
        """
        j, i = graph.edge_index
        num_nodes = atom_types.shape[0]
        x = self.atom_embedding(atom_types - 1)  # (N, H)
        if self.cond_mix is not None:
            x = self.cond_mix(torch.cat([x, cond[batch]], dim=-1))
        # DimeNet++ angle (as PyG): between r_i - r_j and r_j - r_k, i.e. between the two edge vectors.
        v_ji, v_kj = graph.vectors[triplets.edge_ji], graph.vectors[triplets.edge_kj]  # (T, 3)
        angle = torch.atan2(torch.linalg.cross(v_ji, v_kj).norm(dim=-1), (v_ji * v_kj).sum(dim=-1))
        rbf = self.rbf(graph.distances)  # (E, R)
        sbf = self.sbf(graph.distances, angle, triplets.edge_kj)  # (T, S*R)

        m = self.act(self.emb_mix(torch.cat([x[i], x[j], self.act(self.emb_rbf(rbf))], dim=-1)))  # (E, H)
        per_atom = torch.tanh(self.outputs[0](m, rbf, i, num_nodes=num_nodes))  # (N, Z)
        for interaction, output in zip(self.interactions, self.outputs[1:], strict=True):
            m = interaction(m, rbf, sbf, triplets.edge_kj, triplets.edge_ji)
            per_atom = per_atom + torch.tanh(output(m, rbf, i, num_nodes=num_nodes))
        hidden = scatter(per_atom, batch, dim=0, dim_size=num_crystals, reduce="mean")  # (C, Z)
        return LatentStats(mu=self.fc_mu(hidden), logvar=self.fc_logvar(hidden))
