"""Geometry for curation: periodic shortest interatomic distance, cell volume, hard-sphere volume.

Covalent radii are Cordero et al., Dalton Trans. 2008, 2832 (as tabulated by pymatgen's
``pymatgen.analysis.molecule_structure_comparator.CovalentRadius``, H..Cm, largest 2.60 Å for Fr; it takes
sp2 carbon 0.73 Å and high-spin Mn/Fe/Co). Elements beyond Cm have no value (NaN).
"""

from __future__ import annotations

import functools

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

    Exact for any cell shape: ``xtal_eval.geometry.shortest_distance``, the project's one numpy minimum
    image, searching only the images within ``cutoff``.
    """
    from xtal_eval.geometry import shortest_distance as exact  # on use: xtal-eval's import loads pymatgen

    return exact(frac_coords, lattice, cutoff=cutoff)
