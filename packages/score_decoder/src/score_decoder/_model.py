"""GemNet-T score network with direct per-atom vector output, conditioned per crystal."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch
from torch import nn

from ._config import GemNetConfig
from .layers import (
    AngleBasis,
    AtomEmbedding,
    CircularBasis,
    Dense,
    EdgeEmbedding,
    InteractionBlock,
    OutputBlock,
    RadialBasis,
    ScaleFactor,
    build_triplet_layout,
)

if TYPE_CHECKING:
    from xtal_graph import PeriodicGraph, Triplets

__all__ = ["GemNetScore"]


class GemNetScore(nn.Module):
    """GemNet-T (Gasteiger, Becker & Günnemann, NeurIPS 2021, arXiv:2106.08903), triplets only,
    with direct vector output, as the noise-conditional score decoder of Cond-CDVAE.

    O(3)-equivariant: the output rotates (and reflects) with the lattice. Invariant to translation,
    to integer image shifts and to unimodular changes of basis; permutes with the atoms. The model
    never builds graphs: build them with ``xtal_graph.radius_graph_pbc(..., cutoff=config.cutoff,
    max_neighbors=config.max_neighbors)`` and ``xtal_graph.triplets``.

    Differences from the reference GemNet-dT: no energy branch (every parameter is used), and
    scale factors for every block, fitted by :func:`~score_decoder.fit_scale_factors` and stored as
    buffers in the ``state_dict`` (the reference had fitted values for 3 blocks only). Before
    fitting, sums are divided by the square root of their expected size
    (``config.expected_neighbors``); the activations of deep networks then drift by a factor of
    about 3 per block, so fit once on a batch of training structures before training.

    Args:
        config: Network hyper-parameters.
    """

    def __init__(self, config: GemNetConfig):
        super().__init__()
        self.config = config
        c = config
        neighbors = c.expected_neighbors
        self.radial_basis = RadialBasis(
            num_radial=c.num_radial, cutoff=c.cutoff, envelope_exponent=c.envelope_exponent
        )
        self.angle_basis = AngleBasis(num_spherical=c.num_spherical)
        self.circular_basis = CircularBasis(
            num_radial=c.num_radial, num_spherical=c.num_spherical, emb_size_cbf=c.emb_size_cbf
        )
        # Radial projections shared by all blocks.
        self.mlp_rbf3 = Dense(c.num_radial, c.emb_size_rbf, activation=False)
        self.mlp_rbf_h = Dense(c.num_radial, c.emb_size_rbf, activation=False)
        self.mlp_rbf_out = Dense(c.num_radial, c.emb_size_rbf, activation=False)
        self.atom_embedding = AtomEmbedding(
            num_elements=c.num_elements, emb_size=c.emb_size_atom, cond_dim=c.cond_dim
        )
        self.edge_embedding = EdgeEmbedding(
            atom_features=c.emb_size_atom, edge_features=c.num_radial, out_features=c.emb_size_edge
        )
        self.interaction_blocks = nn.ModuleList(
            InteractionBlock(
                emb_size_atom=c.emb_size_atom,
                emb_size_edge=c.emb_size_edge,
                emb_size_trip=c.emb_size_trip,
                emb_size_rbf=c.emb_size_rbf,
                emb_size_cbf=c.emb_size_cbf,
                emb_size_bil_trip=c.emb_size_bil_trip,
                num_before_skip=c.num_before_skip,
                num_after_skip=c.num_after_skip,
                num_concat=c.num_concat,
                num_atom=c.num_atom,
                expected_neighbors=neighbors,
            )
            for _ in range(c.num_blocks)
        )
        self.output_blocks = nn.ModuleList(
            OutputBlock(emb_size_edge=c.emb_size_edge, emb_size_rbf=c.emb_size_rbf, num_residual=c.num_atom)
            for _ in range(c.num_blocks + 1)
        )
        self.output_norm = 1.0 / math.sqrt(neighbors * (c.num_blocks + 1))
        self.scale_out = ScaleFactor()
        self.register_buffer("scale_factors_fitted", torch.tensor(False))

    def forward(
        self,
        *,
        atom_types: torch.Tensor,
        batch: torch.Tensor,
        graph: PeriodicGraph,
        triplets: Triplets,
        cond: torch.Tensor | None,
    ) -> torch.Tensor:
        """Per-atom Cartesian score vectors.

        Args:
            atom_types: Atomic numbers, shape ``(N,)``, long, in ``1..config.num_elements``.
            batch: Crystal index of every atom, shape ``(N,)``, long.
            graph: Periodic radius graph of the (noisy) structures; ``vectors`` in Å.
            triplets: ``xtal_graph.triplets(graph, N)``.
            cond: Per-crystal conditioning vectors, shape ``(C, config.cond_dim)``; ``None`` or
                width 0 when ``config.cond_dim == 0``.

        Returns:
            ``(N, 3)`` Cartesian vectors in the dtype of ``graph.vectors``.
        """
        self._check_inputs(atom_types, batch, graph, cond)
        num_atoms = atom_types.shape[0]
        edge_index, vectors, distances = graph.edge_index, graph.vectors, graph.distances
        layout = build_triplet_layout(
            edge_index=edge_index,
            cell_offsets=graph.cell_offsets,
            edge_ji=triplets.edge_ji,
            edge_kj=triplets.edge_kj,
            num_nodes=num_atoms,
        )
        rbf = self.radial_basis(distances)  # (E, K_rad)
        # Angle at j between the bonds j -> i and j -> k (vectors point from target to source).
        v_ji, v_kj = vectors[triplets.edge_ji], vectors[triplets.edge_kj]  # (T, 3)
        d_ji, d_kj = distances[triplets.edge_ji], distances[triplets.edge_kj]  # (T,)
        cos_angle = (-(v_ji * v_kj).sum(-1) / (d_ji * d_kj)).clamp(-1.0, 1.0)  # (T,)
        cbf = self.circular_basis(rbf, self.angle_basis(cos_angle), layout)  # (E, cbf, K)
        rbf3, rbf_h, rbf_out = self.mlp_rbf3(rbf), self.mlp_rbf_h(rbf), self.mlp_rbf_out(rbf)

        h = self.atom_embedding(atom_types, batch, cond)  # (N, Ha)
        m = self.edge_embedding(h, rbf, edge_index)  # (E, H)
        force = self.output_blocks[0](m, rbf_out)  # (E,)
        for block, output in zip(self.interaction_blocks, self.output_blocks[1:], strict=True):
            h, m = block(h, m, rbf3=rbf3, cbf=cbf, rbf_h=rbf_h, edge_index=edge_index, layout=layout)
            force = force + output(m, rbf_out)
        edge_vec = vectors * (force / distances).unsqueeze(-1)  # (E, 3): F_ji * unit(r_j - r_i)
        score = vectors.new_zeros(num_atoms, 3).index_add_(0, edge_index[1], edge_vec)
        return self.scale_out(score * self.output_norm)

    def _check_inputs(self, atom_types, batch, graph, cond) -> None:
        if atom_types.ndim != 1 or batch.shape != atom_types.shape:
            raise ValueError(
                f"atom_types and batch must both have shape (N,), got {tuple(atom_types.shape)} "
                f"and {tuple(batch.shape)}"
            )
        if graph.vectors.ndim != 2 or graph.vectors.shape[1] != 3:
            raise ValueError(f"graph.vectors must have shape (E, 3), got {tuple(graph.vectors.shape)}")
        cond_dim = self.config.cond_dim
        if cond_dim == 0:
            if cond is not None and cond.shape[-1] != 0:
                raise ValueError(f"config.cond_dim is 0 but cond has shape {tuple(cond.shape)}")
        elif cond is None or cond.ndim != 2 or cond.shape[1] != cond_dim:
            shape = None if cond is None else tuple(cond.shape)
            raise ValueError(f"cond must have shape (C, {cond_dim}) (config.cond_dim), got {shape}")
        if atom_types.numel() and not torch.compiler.is_compiling():
            low, high = torch.stack(torch.aminmax(atom_types)).tolist()  # one device-to-host read
            if low < 1 or high > self.config.num_elements:
                raise ValueError(
                    f"atom_types must be atomic numbers in 1..{self.config.num_elements}, "
                    f"got values in [{low}, {high}]"
                )

    def extra_repr(self) -> str:
        return f"num_parameters={sum(p.numel() for p in self.parameters()):,}"
