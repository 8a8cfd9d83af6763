"""Verlet neighbour list for Langevin sampling: reuse a radius graph while atoms move little.

A candidate list is built with xtal_graph at ``cutoff + skin`` (no neighbour cap). While no atom
has moved more than ``skin / 2`` since that build, every pair now within ``cutoff`` is in the
candidate list, so filtering it by distance and keeping the ``max_neighbors`` nearest gives exactly
the graph a fresh ``radius_graph_pbc(cutoff, max_neighbors)`` would build: same edges, same order
(target, distance, then source and offset for ties). Both paths (reuse or a fresh build every
step) compute edge vectors with the same formula, so ``skin=0`` reproduces ``skin=None`` bit for bit.
"""

from __future__ import annotations

import torch
from torch import Tensor
from xtal_graph import PeriodicGraph, Triplets, radius_graph_pbc, triplets

__all__ = ["NeighborList"]


def _stable_order(keys: list[Tensor]) -> Tensor:
    """Permutation sorting lexicographically by ``keys`` (first key most significant)."""
    order = torch.arange(keys[0].shape[0], device=keys[0].device)
    for key in reversed(keys):
        order = order[torch.sort(key[order], stable=True).indices]
    return order


class NeighborList:
    """Periodic radius graph with Verlet-skin reuse.

    Args:
        cutoff: graph cutoff in Å; max_neighbors: cap per target atom (``None``: no cap).
        skin: extra search radius in Å; ``None`` builds a fresh graph at every call.
        num_atoms: ``(C,)`` atoms per crystal; batch: ``(N,)`` crystal of each atom.

    Call :meth:`graph` with the current wrapped coordinates, and after each move :meth:`moved` with
    the Cartesian step and the integer wrap of every atom. ``num_builds`` counts xtal_graph searches,
    ``num_triplet_builds`` triplet constructions (skipped while the edge list is unchanged).
    """

    def __init__(
        self,
        *,
        cutoff: float,
        max_neighbors: int | None,
        skin: float | None,
        num_atoms: Tensor,
        batch: Tensor,
    ) -> None:
        if skin is not None and skin < 0:
            raise ValueError(f"skin must be >= 0 Å or None, got {skin}")
        self.cutoff, self.max_neighbors, self.skin = float(cutoff), max_neighbors, skin
        self.num_atoms, self.batch = num_atoms, batch
        self.num_builds = 0
        self.num_triplet_builds = 0
        self._last_edges: Tensor | None = None  # (5, E) edge_index and offsets of the last graph
        self._last_triplets: Triplets | None = None
        self._candidates: tuple[Tensor, Tensor, Tensor] | None = None  # src, dst, offsets at build
        self._disp: Tensor | None = None  # (N, 3) Cartesian displacement since the build
        self._image: Tensor | None = None  # (N, 3) integer wraps since the build
        self._last_step = float("inf")  # largest displacement of the last move, Å

    def moved(self, step: Tensor, wrap: Tensor) -> None:
        """Record a move: ``step (N, 3)`` Cartesian Å, ``wrap (N, 3)`` integers subtracted by wrapping."""
        if self.skin is None:  # a fresh graph every call: nothing to track (and no host sync per step)
            return
        self._last_step = float(step.norm(dim=-1).max()) if step.numel() else 0.0
        if self._candidates is not None:
            self._disp = self._disp + step
            self._image = self._image + wrap

    def _needs_build(self) -> bool:
        if self.skin is None or self._candidates is None:
            return True
        return bool((self._disp.norm(dim=-1).max() > 0.5 * self.skin).item()) if self._disp.numel() else False

    def graph(self, frac: Tensor, lattice: Tensor) -> tuple[PeriodicGraph, Triplets]:
        """Graph and triplets for wrapped ``frac (N, 3)`` in ``lattice (C, 3, 3)``."""
        if self._needs_build():
            self.num_builds += 1
            # a list that would not survive one step (the last step moved an atom by more than
            # skin / 2, as at high noise) is not worth its larger search: build the plain graph
            if self.skin is None or self._last_step > 0.5 * self.skin:
                self._candidates = None
                fresh = radius_graph_pbc(frac, lattice, self.num_atoms, self.cutoff, self.max_neighbors)
                src, dst = fresh.edge_index
                return self._with_triplets(self._make_graph(frac, lattice, src, dst, fresh.cell_offsets))
            cand = radius_graph_pbc(frac, lattice, self.num_atoms, self.cutoff + self.skin, None)
            src, dst = cand.edge_index
            off = cand.cell_offsets
            order = _stable_order([dst, src, off[:, 0], off[:, 1], off[:, 2]])
            self._candidates = (src[order], dst[order], off[order])
            self._disp = torch.zeros_like(frac)
            self._image = torch.zeros(frac.shape, dtype=torch.long, device=frac.device)
        return self._with_triplets(self._filter(frac, lattice))

    def _with_triplets(self, graph: PeriodicGraph) -> tuple[PeriodicGraph, Triplets]:
        # triplets depend only on the edge list: reuse them while it is unchanged (late, small steps)
        edges = torch.cat([graph.edge_index, graph.cell_offsets.T])  # (5, E)
        last = self._last_edges
        if last is None or last.shape != edges.shape or not torch.equal(last, edges):
            self._last_edges = edges
            self._last_triplets = triplets(graph, self.batch.shape[0])
            self.num_triplet_builds += 1
        return graph, self._last_triplets

    def _make_graph(
        self, frac: Tensor, lattice: Tensor, src: Tensor, dst: Tensor, off: Tensor
    ) -> PeriodicGraph:
        vectors = _edge_vectors(frac, lattice, self.batch, src, dst, off)
        return PeriodicGraph(
            edge_index=torch.stack([src, dst]),
            cell_offsets=off,
            vectors=vectors,
            distances=torch.sqrt((vectors * vectors).sum(dim=1)),
        )

    def _filter(self, frac: Tensor, lattice: Tensor) -> PeriodicGraph:
        src, dst, off = self._candidates
        off = off + self._image[src] - self._image[dst]
        vectors = _edge_vectors(frac, lattice, self.batch, src, dst, off)
        dist = torch.sqrt((vectors.double() ** 2).sum(dim=1))  # (E,)
        keep = (dist <= self.cutoff).nonzero().squeeze(1)
        src, dst, off, dist = src[keep], dst[keep], off[keep], dist[keep]
        # order as xtal_graph: by target, then distance binned at cutoff / 2^32, then (source, offset)
        bins = torch.floor(dist * (2.0**32 / self.cutoff) + 0.5).long()
        order = torch.sort(dst * 2**33 + bins, stable=True).indices
        if self.max_neighbors is not None:
            dst_sorted = dst[order]
            counts = torch.bincount(dst_sorted, minlength=frac.shape[0])
            first = torch.cumsum(counts, 0) - counts
            rank = torch.arange(order.shape[0], device=order.device) - first[dst_sorted]
            order = order[rank < self.max_neighbors]
        return self._make_graph(frac, lattice, src[order], dst[order], off[order])


def _edge_vectors(
    frac: Tensor, lattice: Tensor, batch: Tensor, src: Tensor, dst: Tensor, off: Tensor
) -> Tensor:
    """``(frac[src] - frac[dst] + off) @ L[crystal of dst]``, ``(E, 3)`` Å, written with 1-D gathers."""
    dtype = torch.promote_types(frac.dtype, lattice.dtype)
    frac, crys = frac.to(dtype), batch[dst]
    lat = lattice.to(dtype).reshape(-1, 9).T  # (9, C)
    u = [frac[:, k][src] - frac[:, k][dst] + off[:, k].to(dtype) for k in range(3)]  # 3 x (E,)
    return torch.stack(
        [u[0] * lat[c][crys] + u[1] * lat[3 + c][crys] + u[2] * lat[6 + c][crys] for c in range(3)], 1
    )
