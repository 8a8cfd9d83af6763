"""Space-group agreement between matched pairs (spglib through pymatgen's ``SpacegroupAnalyzer``).

The lenient ``cdvae`` matcher can match structures of different space groups (pymatgen issue #3796), so
reports show how many matched pairs also agree on the space-group number.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from pymatgen.core import Structure
from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

__all__ = ["spacegroup_agreement", "spacegroup_number"]


def spacegroup_number(structure: Structure, *, symprec: float = 0.1, angle_tolerance: float = 5.0) -> int:
    """International space-group number (1 when spglib finds no symmetry); ``symprec`` in Å."""
    try:
        return int(
            SpacegroupAnalyzer(
                structure, symprec=symprec, angle_tolerance=angle_tolerance
            ).get_space_group_number()
        )
    except Exception:  # noqa: BLE001 - spglib fails on degenerate cells; such a cell has no symmetry to agree on
        return 1


def spacegroup_agreement(
    first: Sequence[Structure], second: Sequence[Structure], *, symprec: float = 0.1
) -> np.ndarray:
    """(M,) bool: ``first[i]`` and ``second[i]`` have the same space-group number at tolerance ``symprec``."""
    if len(first) != len(second):
        raise ValueError(f"cannot pair {len(first)} structures with {len(second)}")
    return np.array(
        [
            spacegroup_number(a, symprec=symprec) == spacegroup_number(b, symprec=symprec)
            for a, b in zip(first, second, strict=True)
        ],
        dtype=bool,
    )
