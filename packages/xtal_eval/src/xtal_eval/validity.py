"""CDVAE validity rules (``reference-anatomy.md`` §5.2).

* Structural: every pair of distinct sites is at least ``cutoff`` = 0.5 Å apart (minimum image, exact in any
  cell) and the cell volume is at least 0.1 Å^3.
* Compositional (needs the ``smact`` extra): the reference's SMACT test. Counts are reduced by their gcd; a
  single element, or only metals, passes; otherwise some combination of SMACT oxidation states must be
  charge-neutral (``smact.neutral_ratios`` with threshold = the largest count) and pass the Pauling
  electronegativity test (a TypeError there, i.e. missing data, counts as a pass).
* ``valid = structural and compositional``.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from pymatgen.core import Composition, Structure

from xtal_eval.geometry import pairwise_min_image_distances

__all__ = ["ValidityReport", "composition_valid", "structure_valid", "validity"]


def structure_valid(structure: Structure, *, cutoff: float = 0.5, min_volume: float = 0.1) -> bool:
    """All distinct-site minimum-image distances >= ``cutoff`` (Å) and volume >= ``min_volume`` (Å^3)."""
    volume = float(abs(np.linalg.det(structure.lattice.matrix)))
    if not np.isfinite(volume) or volume < min_volume:
        return False
    if len(structure) < 2:
        return True
    dist = pairwise_min_image_distances(structure.frac_coords, structure.lattice.matrix)  # (N, N)
    dist[np.diag_indices_from(dist)] = np.inf
    return bool(dist.min() >= cutoff)


def _smact():
    try:
        import smact
        from smact.screening import pauling_test
    except ImportError as exc:
        raise ImportError(
            "compositional (SMACT) validity needs the 'smact' extra: pip install 'xtal-eval[smact]'"
        ) from exc
    return smact, pauling_test


@lru_cache(maxsize=65536)
def _smact_valid(symbols: tuple[str, ...], counts: tuple[int, ...]) -> bool:
    smact, pauling_test = _smact()
    if len(set(symbols)) == 1:
        return True
    if all(s in smact.metals for s in symbols):
        return True
    elements = smact.element_dictionary(symbols)
    electronegs = [elements[s].pauling_eneg for s in symbols]
    # SMACT has no oxidation states for some elements (noble gases, Pm, At, ...): no neutral combination
    ox_combos = [elements[s].oxidation_states or () for s in symbols]
    stoichs = [(c,) for c in counts]
    threshold = max(counts)
    for ox_states in itertools.product(*ox_combos):
        found = smact.neutral_ratios(ox_states, stoichs=stoichs, threshold=threshold)
        # smact >= 3 returns the list of ratios; older releases returned (bool, list)
        neutral = found[0] if isinstance(found, tuple) and isinstance(found[0], bool) else bool(found)
        if not neutral:
            continue
        try:
            ok = pauling_test(ox_states, electronegs)
        except TypeError:  # missing electronegativity: the reference counts it as a pass
            ok = True
        if ok:
            return True
    return False


def composition_valid(composition: Composition | Structure) -> bool:
    """The reference SMACT charge-neutrality + electronegativity test on a composition (or a structure's)."""
    comp = composition.composition if isinstance(composition, Structure) else Composition(composition)
    el_amt = comp.get_el_amt_dict()
    symbols = tuple(sorted(el_amt))
    counts = [el_amt[s] for s in symbols]
    if any(abs(c - round(c)) > 1e-6 for c in counts):
        raise ValueError(f"composition {comp.formula!r} has non-integer amounts; SMACT validity needs counts")
    ints = [round(c) for c in counts]
    g = math.gcd(*ints)
    return _smact_valid(symbols, tuple(c // g for c in ints))


@dataclass(frozen=True)
class ValidityReport:
    """Validity of a set of C structures.

    Attributes:
        struct_valid: (C,) bool.
        comp_valid: (C,) bool, or None when compositional validity was not computed.
        valid: (C,) bool, ``struct_valid & comp_valid`` (``struct_valid`` alone when comp is None).
    """

    struct_valid: np.ndarray
    comp_valid: np.ndarray | None
    valid: np.ndarray

    def summary(self) -> dict[str, float | None]:
        """Fractions over all structures: ``struct_valid``, ``comp_valid``, ``valid``."""
        return {
            "struct_valid": float(self.struct_valid.mean()),
            "comp_valid": None if self.comp_valid is None else float(self.comp_valid.mean()),
            "valid": float(self.valid.mean()),
        }


def validity(
    structures: Sequence[Structure], *, composition: bool = True, cutoff: float = 0.5
) -> ValidityReport:
    """Structural (and, with ``composition=True``, SMACT) validity of every structure.

    Raises:
        ImportError: ``composition=True`` without the ``smact`` extra.
        ValueError: empty input.
    """
    if len(structures) == 0:
        raise ValueError("no structures given (empty input)")
    struct_ok = np.array([structure_valid(s, cutoff=cutoff) for s in structures], dtype=bool)
    comp_ok = np.array([composition_valid(s) for s in structures], dtype=bool) if composition else None
    valid = struct_ok & comp_ok if comp_ok is not None else struct_ok.copy()
    return ValidityReport(struct_valid=struct_ok, comp_valid=comp_ok, valid=valid)
