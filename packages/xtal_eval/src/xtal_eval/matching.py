"""Exact, cached StructureMatcher decisions.

Every decision here equals the corresponding direct pymatgen call; only work that provably cannot change
the answer is skipped or shared:

* **Reduction is shared.** pymatgen reduces each structure (Niggli, then primitive cell) inside every
  ``fit`` / ``get_rms_dist`` call. The reduction depends only on the structure and ``primitive_cell``, not on
  the tolerances, so :func:`prepare` does it once and the same reduced structure serves every pair and
  preset. The matcher then runs on it with reduction skipped, i.e. on bit-identical inputs.
* **Composition prefilter.** Different comparator hashes (fractional compositions) mean ``fit`` is False
  (pymatgen checks this first) and ``get_rms_dist`` is None: with equal site counts the site-species
  multisets differ, so pymatgen's assignment test finds no zero-cost mapping.
* **Site-count prefilter.** Without ``attempt_supercell`` (and without ``allow_subset``, which we never
  set), pymatgen returns "no match" when the reduced structures have different numbers of sites. The
  filter is switched off for presets with ``attempt_supercell=True``.

pymatgen caches reductions (``StructureMatcher._get_reduced_istructure``, an LRU cache keyed by a structure
equality with a small tolerance); :func:`prepare` calls the same cached function, so it sees exactly what a
direct ``fit`` / ``get_rms_dist`` call in the same process would see.

Asymmetry: ``fit(a, b)`` and ``fit(b, a)`` can differ (lattice search is relative to the second structure's
lattice, the averaged lattice and the translation search are not symmetric). Every function here states its
argument order; the metrics follow the reference code (recon: ``get_rms_dist(pred, gt)``; CSP statistics:
``fit(target, sample)``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pymatgen.analysis.structure_matcher import StructureMatcher
from pymatgen.core import Composition, Structure

from xtal_eval.presets import MatcherPreset

__all__ = ["Criterion", "MatchResult", "PreparedStructure", "match_prepared", "prepare"]

Criterion = Literal["rms", "fit"]
"""How a pair is declared matched.

* ``"rms"``: ``get_rms_dist(a, b) is not None`` (CDVAE/DiffCSP reconstruction and CSP match rate).
* ``"fit"``: ``fit(a, b)`` (pymatgen's notion, Cond-CDVAE's CSP success statistics). ``fit`` True implies
  ``get_rms_dist`` is not None (max displacement >= RMS displacement), not the reverse.
"""


class PreparedStructure:
    """A structure as pymatgen's matcher sees it, with its reductions computed once, on demand.

    ``reduced(primitive_cell)`` is pymatgen's own Niggli (+ primitive) reduction of the structure, cached per
    setting; ``composition`` and the comparator hashes need no reduction, so the composition prefilter is
    cheap.
    """

    __slots__ = ("structure", "composition", "_reduced", "_hashes")

    def __init__(self, structure: Structure):
        self.structure = Structure.from_sites(structure)  # what StructureMatcher._process_species makes
        self.composition: Composition = self.structure.composition
        self._reduced: dict[bool, Structure] = {}
        self._hashes: dict[str, object] = {}

    def reduced(self, primitive_cell: bool = True) -> Structure:
        if primitive_cell not in self._reduced:
            self._reduced[primitive_cell] = StructureMatcher._get_reduced_structure(
                self.structure, primitive_cell, True
            )
        return self._reduced[primitive_cell]

    def n_sites(self, primitive_cell: bool = True) -> int:
        return len(self.reduced(primitive_cell))

    def comparator_hash(self, matcher: StructureMatcher) -> object:
        key = type(matcher._comparator).__name__
        if key not in self._hashes:
            self._hashes[key] = matcher._comparator.get_hash(self.composition)
        return self._hashes[key]


def prepare(structure: Structure) -> PreparedStructure:
    """Wrap ``structure`` for repeated exact matching (reductions are computed lazily and cached)."""
    return PreparedStructure(structure)


@dataclass(frozen=True)
class MatchResult:
    """Outcome of matching one pair under one preset.

    Attributes:
        matched: the decision under the chosen criterion.
        rms: normalised RMS displacement (Å / (V/N)^(1/3)) from ``get_rms_dist``; None when unmatched or
            not computed.
        max_dist: normalised largest displacement of the same mapping; None likewise.
        skipped_by: ``"composition"`` or ``"n_sites"`` when an exact prefilter decided, else None.
        error: message of an exception raised by pymatgen (the pair counts as unmatched, as in the
            reference scripts), else None.
    """

    matched: bool
    rms: float | None = None
    max_dist: float | None = None
    skipped_by: str | None = None
    error: str | None = None


def _prefilter(a: PreparedStructure, b: PreparedStructure, preset: MatcherPreset, matcher) -> str | None:
    if a.comparator_hash(matcher) != b.comparator_hash(matcher):
        return "composition"
    p = preset.primitive_cell
    if preset.site_count_filter_is_exact and a.n_sites(p) != b.n_sites(p):
        return "n_sites"
    return None


def _rms(a: PreparedStructure, b: PreparedStructure, matcher: StructureMatcher) -> tuple[float, float] | None:
    """``matcher.get_rms_dist(a, b)`` on the already reduced structures."""
    p = matcher._primitive_cell
    s1, s2, fu, s1_supercell = matcher._preprocess(a.reduced(p), b.reduced(p), skip_structure_reduction=True)
    found = matcher._match(s1, s2, fu, s1_supercell, use_rms=True, break_on_match=False)
    if found is None:
        return None
    return float(found[0]), float(max(found[1]))


def match_prepared(
    a: PreparedStructure,
    b: PreparedStructure,
    preset: MatcherPreset,
    *,
    criterion: Criterion = "rms",
    with_rms: bool = True,
    matcher: StructureMatcher | None = None,
) -> MatchResult:
    """Match ``a`` (pymatgen's ``struct1``) against ``b`` (``struct2``) under ``preset``.

    Args:
        a, b: prepared structures (see :func:`prepare`).
        preset: matcher settings.
        criterion: ``"rms"`` or ``"fit"`` (see :data:`Criterion`).
        with_rms: with ``criterion="fit"``, also compute the RMS of matched pairs (one more search).
        matcher: a ``StructureMatcher`` built from ``preset`` (built on the fly when None).
    """
    if criterion not in ("rms", "fit"):
        raise ValueError(f"criterion must be 'rms' or 'fit', got {criterion!r}")
    matcher = matcher or preset.matcher()
    try:
        skipped = _prefilter(a, b, preset, matcher)  # may reduce: inside the try, like pymatgen's own call
        if skipped is not None:
            return MatchResult(matched=False, skipped_by=skipped)
        if criterion == "fit":
            p = preset.primitive_cell
            if not matcher.fit(a.reduced(p), b.reduced(p), skip_structure_reduction=True):
                return MatchResult(matched=False)
            if not with_rms:
                return MatchResult(matched=True)
        found = _rms(a, b, matcher)
    except Exception as exc:  # noqa: BLE001 - the reference scripts count a failing pair as unmatched
        return MatchResult(matched=False, error=f"{type(exc).__name__}: {exc}")
    if found is None:
        if criterion == "fit":  # impossible by construction; never hide it
            raise AssertionError("fit() matched but get_rms_dist() found no mapping")
        return MatchResult(matched=False)
    return MatchResult(matched=True, rms=found[0], max_dist=found[1])
