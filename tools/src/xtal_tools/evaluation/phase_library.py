"""Textbook crystal phases to look for at their pressure: rock-salt and CsCl-type NaCl, diamond and
beta-tin Si, alpha-quartz and stishovite SiO2, built with pymatgen from lattice parameters
(:data:`KNOWN_PHASES`, :func:`known_phase_targets`): the known-phase searches of
:mod:`xtal_tools.evaluation.pressure_response` and the landmarks of
:mod:`xtal_tools.evaluation.structure_map`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from xtal_tools.evaluation.targets import BenchTarget

__all__ = ["KNOWN_PHASES", "KnownPhase", "known_phase_targets"]


@dataclass(frozen=True)
class KnownPhase:
    """A textbook phase: ``space_group`` (symbol or number), conventional ``lattice`` parameters
    (a, b, c in Å; alpha, beta, gamma in degrees), Wyckoff ``species`` and fractional ``sites``, at
    ``pressure`` GPa. :meth:`structure` is its primitive standard cell (what the model is asked for)."""

    id: str
    space_group: str | int
    lattice: tuple[float, float, float, float, float, float]
    species: tuple[str, ...]
    sites: tuple[tuple[float, float, float], ...]
    pressure: float
    note: str = ""

    def structure(self):
        from pymatgen.core import Lattice, Structure
        from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

        conv = Structure.from_spacegroup(
            self.space_group,
            Lattice.from_parameters(*self.lattice),
            list(self.species),
            [list(s) for s in self.sites],
        )
        return SpacegroupAnalyzer(conv, symprec=0.01).get_primitive_standard_structure()

    def target(self) -> BenchTarget:
        return BenchTarget(self.id, self.structure(), self.pressure)


# Lattice parameters: room-temperature textbook values (Wyckoff, Crystal Structures; high-pressure cells
# at roughly the pressure given). Only the shape matters for matching (the matcher scales volumes); the
# volume is what the random searcher is given.
KNOWN_PHASES: tuple[KnownPhase, ...] = (
    KnownPhase(
        "NaCl-B1",
        "Fm-3m",
        (5.64, 5.64, 5.64, 90, 90, 90),
        ("Na", "Cl"),
        ((0, 0, 0), (0.5, 0.5, 0.5)),
        0.0,
        "rock salt, stable below about 30 GPa",
    ),
    KnownPhase(
        "NaCl-B2",
        "Pm-3m",
        (3.12, 3.12, 3.12, 90, 90, 90),
        ("Na", "Cl"),
        ((0, 0, 0), (0.5, 0.5, 0.5)),
        40.0,
        "CsCl type, stable above about 30 GPa",
    ),
    KnownPhase(
        "Si-diamond",
        "Fd-3m",
        (5.431, 5.431, 5.431, 90, 90, 90),
        ("Si",),
        ((0, 0, 0),),
        0.0,
        "cubic diamond, stable below about 11 GPa",
    ),
    KnownPhase(
        "Si-beta-tin",
        141,
        (4.686, 4.686, 2.585, 90, 90, 90),
        ("Si",),
        ((0, 0, 0),),
        12.0,
        "I4_1/amd, stable from about 11 to 13 GPa",
    ),
    KnownPhase(
        "SiO2-quartz",
        154,
        (4.913, 4.913, 5.405, 90, 90, 120),
        ("Si", "O"),
        ((0.4697, 0, 2 / 3), (0.4135, 0.2669, 0.7858)),
        0.0,
        "alpha-quartz P3_221, 9 atoms",
    ),
    KnownPhase(
        "SiO2-stishovite",
        136,
        (4.177, 4.177, 2.666, 90, 90, 90),
        ("Si", "O"),
        ((0, 0, 0), (0.3062, 0.3062, 0)),
        15.0,
        "rutile type, stable above about 8-10 GPa",
    ),
)


def known_phase_targets(ids: Sequence[str] | None = None) -> list[BenchTarget]:
    """Targets of :data:`KNOWN_PHASES` (all, or those named in ``ids``, in that order).

    Raises:
        KeyError: an unknown id (naming the known ones).
    """
    table = {p.id: p for p in KNOWN_PHASES}
    if ids is None:
        return [p.target() for p in KNOWN_PHASES]
    unknown = [i for i in ids if i not in table]
    if unknown:
        raise KeyError(f"unknown phase(s) {unknown}; known: {sorted(table)}")
    return [table[i].target() for i in ids]
