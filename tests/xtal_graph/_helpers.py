"""Shared helpers for the xtal_graph tests: independent reference neighbour lists and edge sets."""

from __future__ import annotations

import itertools

import numpy as np
import torch
from xtal_graph import PeriodicGraph


def edge_set(graph: PeriodicGraph) -> set[tuple[int, int, int, int, int]]:
    """Edges as a set of (target i, source j, ox, oy, oz)."""
    rows = torch.cat([graph.edge_index.flip(0).T, graph.cell_offsets], dim=1).tolist()
    return {tuple(r) for r in rows}


def vesin_edges(frac: np.ndarray, lattice: np.ndarray, cutoff: float) -> set[tuple[int, ...]]:
    from vesin import NeighborList

    cart = np.asarray(frac, dtype=np.float64) @ lattice
    i, j, shifts = NeighborList(cutoff=cutoff, full_list=True).compute(
        points=cart, box=lattice, periodic=True, quantities="ijS"
    )
    return {(int(a), int(b), *map(int, s)) for a, b, s in zip(i, j, shifts, strict=True)}


def pymatgen_edges(structure, cutoff: float) -> set[tuple[int, ...]]:
    """pymatgen's neighbour list, with images relative to the structure's own frac coords."""
    centers, points, images, _ = structure.get_neighbor_list(cutoff)
    return {(int(a), int(b), *map(int, np.round(s))) for a, b, s in zip(centers, points, images, strict=True)}


def brute_force_edges(frac: np.ndarray, lattice: np.ndarray, cutoff: float, extra: int = 1) -> set:
    """All (i, j, n) with |(frac_j + n - frac_i) @ L| <= cutoff, by scanning every image with
    |n_k| <= cutoff / width_k + 1 + extra (a point within the cutoff has |frac_k| <= cutoff / width_k,
    with width_k = 1 / |column k of L^-1|; ``extra`` widens the scan as a safety margin)."""
    frac = np.asarray(frac, dtype=np.float64)
    widths = 1.0 / np.linalg.norm(np.linalg.inv(lattice), axis=0)
    reach = np.ceil(cutoff / widths).astype(int) + 1 + extra
    images = np.array(list(itertools.product(*(range(-r, r + 1) for r in reach))), dtype=np.float64)
    out = set()
    for i in range(len(frac)):
        for j in range(len(frac)):
            vec = (frac[j] - frac[i] + images) @ lattice
            dist = np.linalg.norm(vec, axis=1)
            for n, d in zip(images.astype(int), dist, strict=True):
                if d <= cutoff and not (i == j and not n.any()):
                    out.add((i, j, *map(int, n)))
    return out


def has_boundary_pair(frac, lattice, num_atoms, cutoff: float, tol: float = 1e-6) -> bool:
    """True if any pair distance lies within ``tol`` of ``cutoff`` (the edge set is then decided by
    rounding, so exact comparisons between implementations are ill-posed)."""
    from xtal_graph import radius_graph_pbc

    frac, lattice = (  # copies: Crystal arrays are read-only
        x.detach().to(torch.float64)
        if isinstance(x, torch.Tensor)
        else torch.tensor(np.array(x), dtype=torch.float64)
        for x in (frac, lattice)
    )
    if lattice.ndim == 2:
        lattice, num_atoms = lattice[None], [len(frac)]
    graph = radius_graph_pbc(frac, lattice, torch.as_tensor(num_atoms), cutoff + tol)
    return bool((graph.distances > cutoff - tol).any())
