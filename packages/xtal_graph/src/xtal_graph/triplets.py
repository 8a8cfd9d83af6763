"""Triplets k -> j -> i of a directed periodic graph (for DimeNet++ / GemNet-T angles), pure torch."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from ._ragged import ragged_expand, segment_counts
from .radius import PeriodicGraph

__all__ = ["Triplets", "triplets"]


@dataclass(frozen=True)
class Triplets:
    """Pairs of edges ``kj`` (k -> j) and ``ji`` (j -> i) sharing atom j, all shapes ``(T,)`` long.

    Attributes:
        edge_kj: index of the edge k -> j (its target is j).
        edge_ji: index of the edge j -> i (its source is j).
        idx_i, idx_j, idx_k: the atoms. ``k == i`` occurs when k is another image of i.

    Triplets are ordered by ``edge_ji``, then ``edge_kj``.
    """

    edge_kj: Tensor
    edge_ji: Tensor
    idx_i: Tensor
    idx_j: Tensor
    idx_k: Tensor

    @property
    def num_triplets(self) -> int:
        return int(self.edge_kj.shape[0])


def triplets(graph: PeriodicGraph, num_nodes: int) -> Triplets:
    """All triplets ``k -> j -> i`` of ``graph``, excluding the backtracking one.

    For every edge ``ji`` and every edge ``kj`` whose target is the source of ``ji``, except the pair
    where k is the very same periodic image as i (``k == i`` and ``offset_kj + offset_ji == 0``).

    Args:
        graph: a :class:`PeriodicGraph` (any edge order).
        num_nodes: number of atoms ``N``.
    """
    source, target = graph.edge_index  # (E,), (E,)
    order = torch.sort(target, stable=True).indices  # edges grouped by target
    in_degree = segment_counts(target, num_nodes)  # (N,)
    first = torch.cumsum(in_degree, 0) - in_degree  # (N,)
    edge_ji, local = ragged_expand(in_degree[source])
    edge_ji, local = edge_ji.long(), local.long()
    edge_kj = order[first[source[edge_ji]] + local]  # (T0,)
    idx_i, idx_j, idx_k = target[edge_ji], source[edge_ji], source[edge_kj]
    offsets = graph.cell_offsets
    back = (idx_k == idx_i) & (offsets[edge_kj] + offsets[edge_ji] == 0).all(dim=1)
    keep = ~back
    return Triplets(
        edge_kj=edge_kj[keep],
        edge_ji=edge_ji[keep],
        idx_i=idx_i[keep],
        idx_j=idx_j[keep],
        idx_k=idx_k[keep],
    )
