"""The substitution baseline: the structure of the most alike known crystal, with the target's elements.

The oldest way to guess a crystal structure (ion substitution; Hautier et al., Inorg. Chem. 2011) and the
one a generative model must beat on a test split that shares prototypes with its training data::

    refs = [Structure(...), ...]                       # e.g. the training split
    res = substitution_baseline([("Na4Cl4", 180.0)], refs, num_per_target=20)
    res.structures[0][0]                               # NaCl on the most alike reference's sites

For a target (cell formula, cell volume in Å^3) the candidates are the references with the same number of
atoms and the same anonymous formula (element counts up to their names: ``Na4Cl4`` and ``K4Br4`` are
both ``A4B4``). Each candidate's elements are paired with the target's: within a group of elements that
have the same count, in order of Pauling electronegativity (then atomic number). Candidates are ranked by
how alike the paired elements are: the mean over the cell's atoms of ``|dX| + |dr| / 1 Å`` (Pauling
electronegativity and covalent radius, ``ase.data.covalent_radii``), plus ``|dP| / pressure_scale``
when pressures are given; equal distances keep the references' order. Sample ``k`` of a target is its
``k``-th candidate: the candidate's fractional coordinates with the target's elements, its cell scaled
to the target volume (shape kept). A target with fewer candidates than samples gets ``None`` for the
rest (reason ``"fewer analogues than samples"``; ``"no analogue"`` when there is none).

Deterministic (no seed). Torch-free; needs ASE for the radii (the ``baselines`` extra).
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Sequence
from functools import cache

from xtal_eval.baselines import BaselineResult, _check_inputs, _structure

__all__ = ["anonymous_formula", "pair_elements", "substitution_baseline"]

NO_ANALOGUE = "no analogue"
TOO_FEW = "fewer analogues than samples"


def anonymous_formula(counts: Counter) -> tuple[int, ...]:
    """Element counts of a cell, largest first: ``{Na: 4, Cl: 4}`` -> ``(4, 4)``, ABC2 -> ``(2, 1, 1)``."""
    return tuple(sorted(counts.values(), reverse=True))


@cache
def _properties(z: int) -> tuple[float, float]:
    """(Pauling electronegativity, 0 where undefined, e.g. noble gases; covalent radius in Å)."""
    from ase.data import covalent_radii
    from pymatgen.core import Element

    x = Element.from_Z(z).X
    return (0.0 if not math.isfinite(x) else float(x)), float(covalent_radii[z])


def pair_elements(target: Counter, reference: Counter) -> dict[int, int] | None:
    """``{reference Z: target Z}`` pairing elements of equal count in electronegativity order, or
    ``None`` when the anonymous formulas differ. Keys and values are atomic numbers."""
    if anonymous_formula(target) != anonymous_formula(reference):
        return None

    def order(counts: Counter) -> list[int]:
        return sorted(counts, key=lambda z: (counts[z], _properties(z)[0], z))

    return dict(zip(order(reference), order(target), strict=True))


def _distance(pairing: dict[int, int], reference: Counter) -> float:
    """Mean over the reference cell's atoms of ``|dX| + |dr|`` between paired elements."""
    total = 0.0
    for z_ref, z_tgt in pairing.items():
        (x_r, r_r), (x_t, r_t) = _properties(z_ref), _properties(z_tgt)
        total += reference[z_ref] * (abs(x_r - x_t) + abs(r_r - r_t))
    return total / sum(reference.values())


def _counts_of(formula: str) -> Counter:
    from ase.data import atomic_numbers

    from xtal_eval.baselines import parse_cell_formula

    return Counter({atomic_numbers[el]: n for el, n in parse_cell_formula(formula)})


def substitution_baseline(
    targets: Sequence[tuple[str, float]],
    references: Sequence,
    *,
    num_per_target: int,
    target_pressures: Sequence[float] | None = None,
    reference_pressures: Sequence[float] | None = None,
    pressure_scale: float = 10.0,
) -> BaselineResult:
    """Up to ``num_per_target`` substituted references per (cell formula, volume Å^3) (module docstring).

    ``references``: pymatgen ``Structure`` objects (ordered sites, one element per site). Pressures
    (GPa, one per target / reference) are given together or not at all. ``result.seeds`` holds, for
    each structure, the index of the reference it came from (-1 for none).

    Raises:
        ValueError: a bad formula or volume (named), ``num_per_target < 1``, a disordered reference,
            or pressures given for one side only or of the wrong length.
    """
    if num_per_target < 1:
        raise ValueError(f"num_per_target must be >= 1, got {num_per_target}")
    if (target_pressures is None) != (reference_pressures is None):
        raise ValueError("give pressures for both the targets and the references, or for neither")
    if target_pressures is not None and (
        len(target_pressures) != len(targets) or len(reference_pressures) != len(references)
    ):
        raise ValueError(
            f"pressures: {len(target_pressures)} for {len(targets)} targets and "
            f"{len(reference_pressures)} for {len(references)} references"
        )
    if not pressure_scale > 0:
        raise ValueError(f"pressure_scale must be > 0 GPa, got {pressure_scale!r}")
    target_counts = []
    for formula, volume in targets:
        _check_inputs(formula, volume, 0.0, 1)
        target_counts.append(_counts_of(formula))
    t0 = time.perf_counter()
    by_shape: dict[tuple[int, ...], list[int]] = {}
    ref_counts = []
    for i, ref in enumerate(references):
        if not ref.is_ordered:
            raise ValueError(f"reference {i} ({ref.composition.formula}) is disordered")
        counts = Counter(site.specie.Z for site in ref)
        ref_counts.append(counts)
        by_shape.setdefault(anonymous_formula(counts), []).append(i)

    structures, reasons, sources = [], [], []
    for t, ((_, volume), counts) in enumerate(zip(targets, target_counts, strict=True)):
        ranked = []
        for i in by_shape.get(anonymous_formula(counts), []):
            pairing = pair_elements(counts, ref_counts[i])
            d = _distance(pairing, ref_counts[i])
            if target_pressures is not None:
                d += abs(float(target_pressures[t]) - float(reference_pressures[i])) / pressure_scale
            ranked.append((d, i, pairing))
        ranked.sort(key=lambda item: item[:2])
        row, why, src = [], [], []
        for k in range(num_per_target):
            if k >= len(ranked):
                row.append(None)
                why.append(TOO_FEW if ranked else NO_ANALOGUE)
                src.append(-1)
                continue
            _, i, pairing = ranked[k]
            ref = references[i]
            lattice = ref.lattice.matrix * (float(volume) / ref.volume) ** (1.0 / 3.0)
            species = [pairing[site.specie.Z] for site in ref]
            row.append(_structure(lattice, species, ref.frac_coords))
            why.append("")
            src.append(i)
        structures.append(row)
        reasons.append(why)
        sources.append(src)
    return BaselineResult(
        "substitution",
        structures=structures,
        reasons=reasons,
        seeds=sources,
        failures=dict(Counter(r for row in reasons for r in row if r)),
        seconds=time.perf_counter() - t0,
    )
