"""What pressure does to real structures, from a pressure-labelled store (e.g. the CHGNet pressure set):
the mean volume per atom of each composition at each pressure (:func:`reference_trend`), and the
compositions worth asking a model about (:func:`store_compositions`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["ReferencePoint", "reference_trend", "store_compositions", "wanted"]


@dataclass(frozen=True)
class ReferencePoint:
    """Mean volume per atom (Å^3/atom) of ``n`` stored structures of one reduced formula at one pressure
    (GPa); ``cell_formula`` is the full-cell formula of the first of them (what a model is asked for)."""

    formula: str
    cell_formula: str
    pressure: float
    volume_per_atom: float
    n: int


def _cell_formula(numbers) -> str:
    from ase.data import chemical_symbols

    counts: dict[str, int] = {}
    for z in numbers:
        counts[chemical_symbols[int(z)]] = counts.get(chemical_symbols[int(z)], 0) + 1
    return "".join(f"{el}{n}" for el, n in counts.items())


def reference_trend(
    data: str, *, formulas: Sequence[str] | None = None, max_pressure: float | None = None
) -> list[ReferencePoint]:
    """Per reduced formula and stored pressure: the mean volume per atom of a pressure-labelled store.

    ``formulas``: reduced formulas (``"MgO"``) or cell formulas (``"Mg2O2"``) to keep (all when None);
    ``max_pressure`` (GPa): ignore structures above it (the CHGNet set is credible to about 50 GPa).

    Raises:
        ValueError: the selection is empty.
    """
    from pymatgen.core import Composition
    from xtal_data import CrystalStore

    store = CrystalStore.open(data)
    reduced = store.formula
    pressure = store.pressure
    keep = np.ones(len(store), dtype=bool)
    if max_pressure is not None:
        keep &= pressure <= max_pressure
    if formulas is not None:
        wanted = {Composition(f).reduced_formula for f in formulas}
        keep &= np.array([Composition(str(f)).reduced_formula in wanted for f in reduced])
    idx = np.flatnonzero(keep)
    if idx.size == 0:
        raise ValueError(f"{data}: no structure of {formulas} at <= {max_pressure} GPa")
    arrays = store.read(idx)
    groups: dict[tuple[str, float], list[float]] = defaultdict(list)
    cells: dict[str, str] = {}
    for c in range(len(arrays)):
        numbers = arrays.atomic_numbers[arrays.offsets[c] : arrays.offsets[c + 1]]
        key = Composition(_cell_formula(numbers)).reduced_formula
        cells.setdefault(key, _cell_formula(numbers))
        vol = abs(float(np.linalg.det(arrays.lattice[c]))) / len(numbers)
        groups[(key, float(arrays.pressure[c]))].append(vol)
    return [ReferencePoint(f, cells[f], p, float(np.mean(v)), len(v)) for (f, p), v in sorted(groups.items())]


def store_compositions(
    data: str,
    *,
    limit: int,
    max_atoms: int = 8,
    pressures: Sequence[float] = (0.0, 25.0, 50.0),
    seed: int = 0,
    max_compression: float = 0.5,
    elements: Sequence[int] | None = None,
) -> list[str]:
    """``limit`` cell formulas of a pressure store, drawn in a seeded random order, that have a structure
    at every one of ``pressures`` (GPa), at most ``max_atoms`` atoms, only ``elements`` (atomic numbers;
    e.g. a model's ``trained_on["elements"]``) and a volume at the highest pressure of at least
    ``max_compression`` times the lowest-pressure one (drops cells the potential crushed).

    Raises:
        ValueError: fewer than ``limit`` compositions qualify.
    """
    from ase.data import atomic_numbers
    from xtal_eval.baselines import parse_cell_formula

    ref = reference_trend(data, max_pressure=max(pressures))
    by_formula: dict[str, dict[float, ReferencePoint]] = defaultdict(dict)
    for r in ref:
        by_formula[r.formula][r.pressure] = r
    allowed = None if elements is None else {int(z) for z in elements}
    ok = []
    for pts in by_formula.values():
        if not all(p in pts for p in pressures):
            continue
        comp = parse_cell_formula(pts[pressures[0]].cell_formula)
        if sum(n for _, n in comp) > max_atoms:
            continue
        if allowed is not None and any(atomic_numbers[el] not in allowed for el, _ in comp):
            continue
        lo, hi = pts[min(pressures)].volume_per_atom, pts[max(pressures)].volume_per_atom
        if hi < max_compression * lo:
            continue
        ok.append(pts[pressures[0]].cell_formula)
    ok.sort()
    if len(ok) < limit:
        raise ValueError(f"{data}: only {len(ok)} compositions qualify, {limit} asked for")
    order = np.random.default_rng(seed).permutation(len(ok))
    return [ok[i] for i in order[:limit]]


def wanted(r: ReferencePoint, formulas: Sequence[str]) -> bool:
    """Whether ``r`` is of one of the (cell) ``formulas``' compositions."""
    from pymatgen.core import Composition

    return r.formula in {Composition(f).reduced_formula for f in formulas}
