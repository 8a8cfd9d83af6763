"""Geometry for curation: periodic shortest interatomic distance, cell volume, hard-sphere volume.

Covalent radii are Cordero et al., Dalton Trans. 2008, 2832 (as tabulated by pymatgen's
``pymatgen.analysis.molecule_structure_comparator.CovalentRadius``, H..Cm, largest 2.60 Å for Fr; it takes
sp2 carbon 0.73 Å and high-spin Mn/Fe/Co). Elements beyond Cm have no value (NaN).
"""

from __future__ import annotations

import functools
import itertools

import numpy as np


@functools.cache
def covalent_radii() -> np.ndarray:
    """(119,) float64 covalent radius in Å indexed by atomic number; NaN where unknown (Z = 0, Z > 96)."""
    from pymatgen.analysis.molecule_structure_comparator import CovalentRadius
    from pymatgen.core import Element

    table = np.full(119, np.nan)
    for symbol, radius in CovalentRadius.radius.items():
        table[Element(symbol).Z] = radius
    return table


def cell_volume(lattice: np.ndarray) -> np.ndarray:
    """|det L| in Å^3 for lattices (..., 3, 3)."""
    return np.abs(np.linalg.det(lattice))


def hard_sphere_volume(atomic_numbers: np.ndarray) -> float:
    """Sum of 4/3 pi r^3 over the atoms (Å^3) with covalent radii; NaN if an element has no radius."""
    r = covalent_radii()[np.asarray(atomic_numbers, dtype=np.int64)]
    return float(np.sum(4.0 / 3.0 * np.pi * r**3))


def perpendicular_widths(lattice: np.ndarray) -> np.ndarray:
    """(3,) distances between opposite faces of the cell, Å: V / |a_j x a_k|."""
    volume = cell_volume(lattice)
    cross = np.cross(lattice[[1, 2, 0]], lattice[[2, 0, 1]])  # (3, 3) face normals
    return volume / np.linalg.norm(cross, axis=1)


def shortest_distance(frac_coords: np.ndarray, lattice: np.ndarray, *, cutoff: float) -> float:
    """Shortest distance (Å) between two atoms of a periodic structure, periodic images included (an atom
    and its own image count); ``inf`` when no pair is within ``cutoff``.

    Complete for any cell shape: the image range along axis k is ``ceil(cutoff / width_k + 0.5)``, enough for
    every fractional difference wrapped into [-0.5, 0.5).
    """
    frac = np.asarray(frac_coords, dtype=np.float64)
    diff = frac[None, :, :] - frac[:, None, :]  # (n, n, 3)
    diff -= np.round(diff)
    n_img = np.ceil(cutoff / perpendicular_widths(lattice) + 0.5).astype(int)
    ranges = [range(-k, k + 1) for k in n_img]
    images = np.array(list(itertools.product(*ranges)), dtype=np.float64)  # (I, 3)
    best = np.inf
    same = np.eye(len(frac), dtype=bool)
    for start in range(0, len(images), 512):
        shifts = images[start : start + 512]  # (I', 3)
        cart = (diff[None] + shifts[:, None, None, :]) @ lattice  # (I', n, n, 3)
        dist = np.linalg.norm(cart, axis=-1)  # (I', n, n)
        zero = np.all(shifts == 0, axis=1)
        dist[zero] = np.where(same, np.inf, dist[zero])
        best = min(best, float(dist.min()))
    return best if best <= cutoff else np.inf
