"""Named StructureMatcher settings.

Three presets cover the literature (``docs/anchors.md`` §1, ``reference-anatomy.md`` §5):

* ``cdvae``  (ltol 0.3, stol 0.5, angle_tol 10): CDVAE/DiffCSP reconstruction and CSP benchmark. Lenient:
  it can match structures of different space groups (pymatgen issue #3796).
* ``paper``  (ltol 0.2, stol 0.3, angle_tol 5): pymatgen's defaults; Cond-CDVAE's CSP success rate and
  de-duplication ("medium" in its ``statgen`` scripts).
* ``strict`` (ltol 0.1, stol 0.2, angle_tol 5): the "strict" matcher of the same scripts.

All presets keep pymatgen's other defaults: primitive reduction on, volume scaling on, no supercell search,
``SpeciesComparator``. ``ltol`` is a fractional length tolerance, ``stol`` a site tolerance in units of
``(V / N) ** (1/3)``, ``angle_tol`` in degrees.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from pymatgen.analysis.structure_matcher import ElementComparator, SpeciesComparator, StructureMatcher

__all__ = ["PRESETS", "MatcherPreset", "resolve_presets"]


@dataclass(frozen=True)
class MatcherPreset:
    """A named, hashable set of ``StructureMatcher`` arguments.

    Attributes:
        name: label used in reports and CSV columns.
        ltol: fractional length tolerance.
        stol: site tolerance, in units of the free length per atom ``(V / N) ** (1/3)``.
        angle_tol: angle tolerance in degrees.
        primitive_cell: reduce both structures to primitive cells before matching.
        scale: scale both structures to the same volume before matching.
        attempt_supercell: let pymatgen try supercells when the site counts differ. When True, the exact
            site-count prefilter is switched off (it is only provably exact without supercells).
        comparator: ``"species"`` (oxidation states must agree; pymatgen's default) or ``"element"``.
    """

    name: str
    ltol: float
    stol: float
    angle_tol: float
    primitive_cell: bool = True
    scale: bool = True
    attempt_supercell: bool = False
    comparator: Literal["species", "element"] = "species"

    def __post_init__(self) -> None:
        for field in ("ltol", "stol", "angle_tol"):
            value = getattr(self, field)
            if not value > 0:
                raise ValueError(f"preset {self.name!r}: {field} must be positive, got {value!r}")
        if self.comparator not in ("species", "element"):
            raise ValueError(f"preset {self.name!r}: unknown comparator {self.comparator!r}")

    def matcher(self) -> StructureMatcher:
        """A fresh pymatgen ``StructureMatcher`` with exactly these settings."""
        comparator = SpeciesComparator() if self.comparator == "species" else ElementComparator()
        return StructureMatcher(
            ltol=self.ltol,
            stol=self.stol,
            angle_tol=self.angle_tol,
            primitive_cell=self.primitive_cell,
            scale=self.scale,
            attempt_supercell=self.attempt_supercell,
            comparator=comparator,
        )

    @property
    def site_count_filter_is_exact(self) -> bool:
        """Whether "different number of sites after reduction" provably means "no match"."""
        return not self.attempt_supercell


PRESETS: dict[str, MatcherPreset] = {
    "cdvae": MatcherPreset(name="cdvae", ltol=0.3, stol=0.5, angle_tol=10.0),
    "paper": MatcherPreset(name="paper", ltol=0.2, stol=0.3, angle_tol=5.0),
    "strict": MatcherPreset(name="strict", ltol=0.1, stol=0.2, angle_tol=5.0),
}


def resolve_presets(
    presets: str | MatcherPreset | Iterable[str | MatcherPreset],
) -> tuple[MatcherPreset, ...]:
    """Turn a preset name, a preset, a comma-separated string or a list of either into presets.

    Raises:
        ValueError: an unknown name (the message lists the known ones), duplicate names, or an empty list.
    """
    if isinstance(presets, (str, MatcherPreset)):
        presets = [presets]
    out: list[MatcherPreset] = []
    for item in presets:
        if isinstance(item, MatcherPreset):
            out.append(item)
            continue
        for name in str(item).split(","):
            name = name.strip()
            if name not in PRESETS:
                raise ValueError(f"unknown matcher preset {name!r}; known presets: {', '.join(PRESETS)}")
            out.append(PRESETS[name])
    if not out:
        raise ValueError("no matcher preset given")
    names = [p.name for p in out]
    if len(set(names)) != len(names):
        raise ValueError(f"duplicate preset names: {names}")
    return tuple(out)
