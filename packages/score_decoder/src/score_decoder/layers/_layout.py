"""Index bookkeeping for the triplet sums: padded per-edge slots and reverse edges.

The sum over ``k`` for each edge ``ji`` is computed as a batched matrix product over a padded
``(E, K)`` slot table (``K`` = most triplets on any edge), as in GemNet's "efficient" bilinear layer.
One gather from an edge tensor with an appended zero row fills the table: the gather of the
``kj`` messages and their placement in slots happen in one indexing operation, and its backward is
a single ``index_add``. Nothing here builds a graph: it only re-indexes the caller's graph and
triplets.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

__all__ = ["TripletLayout", "build_triplet_layout", "reverse_edges"]


@dataclass(frozen=True)
class TripletLayout:
    """Padded triplet slots of a graph.

    Attributes:
        num_edges: ``E``.
        max_triplets: ``K``, slots per edge (at least 1).
        slot_triplet: ``(E * K,)`` triplet index held by each slot, ``T`` for an empty slot.
        slot_edge_kj: ``(E * K,)`` edge ``kj`` of each slot's triplet, ``E`` for an empty slot.
        reverse: ``(E,)`` index of the reverse edge ``ij`` of each edge ``ji``, ``E`` if absent.
    """

    num_edges: int
    max_triplets: int
    slot_triplet: torch.Tensor
    slot_edge_kj: torch.Tensor
    reverse: torch.Tensor

    def gather_kj(self, x: torch.Tensor) -> torch.Tensor:
        """Edge features ``(E, F)`` -> ``(E, K, F)``: the ``kj`` feature of each slot, zero if empty."""
        padded = torch.cat([x, x.new_zeros(1, x.shape[1])])  # (E + 1, F)
        return padded[self.slot_edge_kj].view(self.num_edges, self.max_triplets, x.shape[1])

    def gather_triplets(self, values: torch.Tensor) -> torch.Tensor:
        """Triplet features ``(T, F)`` -> ``(E, K, F)``, zero in empty slots."""
        padded = torch.cat([values, values.new_zeros(1, values.shape[1])])  # (T + 1, F)
        return padded[self.slot_triplet].view(self.num_edges, self.max_triplets, values.shape[1])

    def gather_reverse(self, x: torch.Tensor) -> torch.Tensor:
        """Edge features ``(E, F)`` -> ``(E, F)`` of the reverse edge, zero where it is absent."""
        return torch.cat([x, x.new_zeros(1, x.shape[1])])[self.reverse]


def reverse_edges(edge_index: torch.Tensor, cell_offsets: torch.Tensor, num_nodes: int) -> torch.Tensor:
    """Index of the reverse of every edge: ``(j -> i, offset o)`` <-> ``(i -> j, offset -o)``.

    Args:
        edge_index: ``(2, E)`` source/target atom indices.
        cell_offsets: ``(E, 3)`` integer image of the source.
        num_nodes: Number of atoms ``N``.

    Returns:
        ``(E,)`` long tensor; ``E`` where an edge has no reverse (e.g. cut by ``max_neighbors``).
    """
    num_edges = edge_index.shape[1]
    if num_edges == 0:
        return edge_index.new_zeros(0)
    offsets = cell_offsets.long()
    reach = int(offsets.abs().max()) + 1
    base = 2 * reach + 1

    def key(src: torch.Tensor, dst: torch.Tensor, off: torch.Tensor) -> torch.Tensor:
        off = off + reach
        image = (off[:, 0] * base + off[:, 1]) * base + off[:, 2]
        return (src * num_nodes + dst) * base**3 + image

    forward_key = key(edge_index[0], edge_index[1], offsets)
    backward_key = key(edge_index[1], edge_index[0], -offsets)
    sorted_key, order = torch.sort(forward_key)
    pos = torch.searchsorted(sorted_key, backward_key).clamp_(max=num_edges - 1)
    found = sorted_key[pos] == backward_key
    return torch.where(found, order[pos], torch.full_like(pos, num_edges))


@torch.compiler.disable  # sizes known only after the search: runs eagerly inside compiled code
def build_triplet_layout(
    *,
    edge_index: torch.Tensor,
    cell_offsets: torch.Tensor,
    edge_ji: torch.Tensor,
    edge_kj: torch.Tensor,
    num_nodes: int,
) -> TripletLayout:
    """Padded slot tables for the triplets ``(edge_kj, edge_ji)`` of a graph.

    Args:
        edge_index: ``(2, E)`` edges.
        cell_offsets: ``(E, 3)`` integer images.
        edge_ji: ``(T,)`` edge receiving each triplet's message.
        edge_kj: ``(T,)`` edge sending it.
        num_nodes: Number of atoms ``N``.
    """
    num_edges = edge_index.shape[1]
    num_triplets = edge_ji.shape[0]
    device = edge_index.device
    counts = torch.zeros(num_edges, dtype=torch.long, device=device)  # (E,) triplets per receiving edge
    counts.index_add_(0, edge_ji, torch.ones_like(edge_ji))  # (bincount would read its max to the host)
    max_triplets = max(int(counts.max()) if num_edges > 0 and num_triplets > 0 else 0, 1)
    order = torch.argsort(edge_ji, stable=True)  # triplets grouped by receiving edge
    starts = torch.cumsum(counts, 0) - counts  # (E,)
    sorted_ji = edge_ji[order]
    rank = torch.arange(num_triplets, device=device) - starts[sorted_ji]  # slot within its edge
    slots = sorted_ji * max_triplets + rank  # (T,)
    slot_triplet = torch.full((num_edges * max_triplets,), num_triplets, dtype=torch.long, device=device)
    slot_triplet[slots] = order
    slot_edge_kj = torch.cat([edge_kj, edge_kj.new_full((1,), num_edges)])[slot_triplet]
    return TripletLayout(
        num_edges=num_edges,
        max_triplets=max_triplets,
        slot_triplet=slot_triplet,
        slot_edge_kj=slot_edge_kj,
        reverse=reverse_edges(edge_index, cell_offsets, num_nodes),
    )
