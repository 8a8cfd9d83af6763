"""Six textbook crystal structures shared by the examples (pymatgen only, no torch)."""

from __future__ import annotations

from pymatgen.core import Lattice, Structure


def prototypes() -> list[tuple[str, Structure]]:
    """Six textbook structures (conventional cells, 2 to 8 atoms)."""
    s = Structure.from_spacegroup
    return [
        ("NaCl", s("Fm-3m", Lattice.cubic(5.64), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])),
        ("CsCl", Structure(Lattice.cubic(4.12), ["Cs", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])),
        ("Si", s("Fd-3m", Lattice.cubic(5.43), ["Si"], [[0, 0, 0]])),
        ("Cu", s("Fm-3m", Lattice.cubic(3.61), ["Cu"], [[0, 0, 0]])),
        ("ZnS", s("F-43m", Lattice.cubic(5.41), ["Zn", "S"], [[0, 0, 0], [0.25, 0.25, 0.25]])),
        (
            "SrTiO3",
            s("Pm-3m", Lattice.cubic(3.905), ["Sr", "Ti", "O"], [[0, 0, 0], [0.5] * 3, [0.5, 0.5, 0]]),
        ),
    ]
