"""Periodic crystal graphs: lattice maths, complete periodic neighbour search, triplets, symmetry test helpers."""

__version__ = "0.1.0"

__all__ = ["__version__"]
