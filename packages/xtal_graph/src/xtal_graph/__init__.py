"""Periodic crystal graphs: lattice maths, complete periodic neighbour search, triplets, symmetry
test helpers.

Conventions (used by every package of the toolkit):

* Row-vector lattices: ``lattice`` is ``(3, 3)`` per crystal with the lattice vectors a, b, c as rows
  and ``cart = frac @ lattice``. Units: Å, degrees, GPa.
* Fractional coordinates live in ``[0, 1)`` (:func:`wrap_frac`, never a bare ``x % 1``).
* Flat batches (PyG style): ``atom_types (N,)``, ``frac_coords (N, 3)``, ``lattice (C, 3, 3)``,
  ``num_atoms (C,)``, ``batch (N,)``.
* Edges: ``edge_index (2, E)`` with row 0 the source ``j`` and row 1 the target ``i``, integer
  ``cell_offsets (E, 3)``, and ``vectors = cart[j] + cell_offsets @ L - cart[i]``.
"""

from .batch import Crystal, CrystalBatch, collate
from .crystalnn import crystalnn_edges
from .lattice import (
    LatticeParams,
    cart_to_frac,
    frac_to_cart,
    lattice_from_params,
    lattice_to_params,
    minimum_image,
    perpendicular_widths,
    volume,
    wrap_frac,
)
from .radius import PeriodicGraph, periodic_graph, radius_graph_pbc
from .triplets import Triplets, triplets

__version__ = "0.1.0"

__all__ = [
    "Crystal",
    "CrystalBatch",
    "LatticeParams",
    "PeriodicGraph",
    "Triplets",
    "__version__",
    "cart_to_frac",
    "collate",
    "crystalnn_edges",
    "frac_to_cart",
    "lattice_from_params",
    "lattice_to_params",
    "minimum_image",
    "periodic_graph",
    "perpendicular_widths",
    "radius_graph_pbc",
    "triplets",
    "volume",
    "wrap_frac",
]
