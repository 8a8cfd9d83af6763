"""Conversion between :class:`~xtal_graph.Crystal` and pymatgen ``Structure`` / ASE ``Atoms``.

pymatgen and ASE are optional (``pip install xtal-graph[io]``) and imported on first use.
Properties travel in ``Structure.properties`` / ``Atoms.info`` (numeric entries only), the id under
the key ``"id"``.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from typing import Any

import numpy as np

from .batch import Crystal
from .lattice import wrap_frac

__all__ = ["atoms_to_crystal", "crystal_to_atoms", "crystal_to_structure", "structure_to_crystal"]


def _numeric_items(mapping: Mapping[str, Any] | None) -> dict[str, float]:
    out = {}
    for key, value in (mapping or {}).items():
        if key != "id" and isinstance(value, numbers.Real) and not isinstance(value, bool):
            out[str(key)] = float(value)
    return out


def _pick_id(explicit: str | None, mapping: Mapping[str, Any] | None) -> str | None:
    if explicit is not None:
        return str(explicit)
    found = (mapping or {}).get("id")
    return None if found is None else str(found)


def structure_to_crystal(structure: Any, *, id: str | None = None, **properties: float) -> Crystal:
    """A :class:`Crystal` from an ordered pymatgen ``Structure`` (fractional coordinates wrapped).

    Numeric entries of ``structure.properties`` become properties; keyword arguments override them.

    Raises:
        ValueError: disordered sites (partial occupancy) or dummy species, naming the site.
    """
    stored = getattr(structure, "properties", None)
    id = _pick_id(id, stored)
    who = "structure" if id is None else f"structure {id!r}"
    if not structure.is_ordered:
        raise ValueError(f"atom_types: {who} is disordered (partial occupancies); order it first")
    numbers_ = []
    for index, site in enumerate(structure):
        z = getattr(site.specie, "Z", 0)
        if not isinstance(z, numbers.Integral) or z < 1:
            raise ValueError(f"atom_types: {who} site {index} has unknown element {site.specie!s}")
        numbers_.append(int(z))
    return Crystal(
        atom_types=np.asarray(numbers_, dtype=np.int64),
        frac_coords=wrap_frac(np.asarray(structure.frac_coords, dtype=np.float64)),
        lattice=np.asarray(structure.lattice.matrix, dtype=np.float64),
        properties={**_numeric_items(stored), **properties},
        id=id,
    )


def crystal_to_structure(crystal: Crystal) -> Any:
    """A pymatgen ``Structure`` with the same lattice, species and fractional coordinates."""
    from pymatgen.core import Lattice, Structure

    properties: dict[str, Any] = dict(crystal.properties)
    if crystal.id is not None:
        properties["id"] = crystal.id
    return Structure(
        Lattice(crystal.lattice),
        [int(z) for z in crystal.atom_types],
        crystal.frac_coords,
        coords_are_cartesian=False,
        properties=properties,
    )


def atoms_to_crystal(atoms: Any, *, id: str | None = None, **properties: float) -> Crystal:
    """A :class:`Crystal` from a fully periodic ASE ``Atoms`` (fractional coordinates wrapped).

    Numeric entries of ``atoms.info`` become properties; keyword arguments override them.
    """
    info = dict(getattr(atoms, "info", {}) or {})
    id = _pick_id(id, info)
    who = "atoms" if id is None else f"atoms {id!r}"
    if not all(bool(p) for p in atoms.pbc):
        raise ValueError(f"lattice: {who} is not periodic along every axis (pbc={list(atoms.pbc)})")
    lattice = np.asarray(atoms.cell.array, dtype=np.float64)
    if not math.isfinite(float(np.abs(lattice).sum())) or abs(np.linalg.det(lattice)) <= 0:
        raise ValueError(f"lattice: {who} has a degenerate or non-finite cell {lattice.tolist()}")
    frac = np.linalg.solve(lattice.T, np.asarray(atoms.positions, dtype=np.float64).T).T
    return Crystal(
        atom_types=np.asarray(atoms.numbers, dtype=np.int64),
        frac_coords=wrap_frac(frac),
        lattice=lattice,
        properties={**_numeric_items(info), **properties},
        id=id,
    )


def crystal_to_atoms(crystal: Crystal) -> Any:
    """A periodic ASE ``Atoms``; properties and id go to ``atoms.info``."""
    from ase import Atoms

    info: dict[str, Any] = dict(crystal.properties)
    if crystal.id is not None:
        info["id"] = crystal.id
    return Atoms(
        numbers=crystal.atom_types,
        scaled_positions=crystal.frac_coords,
        cell=crystal.lattice,
        pbc=True,
        info=info,
    )
