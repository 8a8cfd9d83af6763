"""Curation filters of the Cond-CDVAE paper (Methods, "Dataset"), each switchable and each counted.

Filters run in this order, each on the records that survived the previous ones:

1. ``distance``: shortest interatomic distance (periodic images included) within [0.5, 5.2] Å;
2. ``volume``: cell volume at most k times the hard-sphere volume from covalent radii (k = 4 below
   ``high_pressure_gpa``, k = 2 at or above it: the paper uses 2 for the CALYPSO high-pressure searches);
3. ``max_atoms``: at most 60 atoms per cell;
4. ``formation_energy``: formation energy < 0 (when the property exists; missing values pass);
5. ``e_above_hull``: energy above hull <= 0.2 eV/atom (when the property exists; missing values pass);
6. ``duplicates``: pymatgen StructureMatcher at its default tolerances (ltol 0.2, stol 0.3, angle_tol 5),
   compared only within groups of equal reduced formula and pressure; the lowest-energy member (by
   ``energy_property`` when present, else the first stored) is kept;
7. ``search_half``: within each structure search (``search_id_property``), keep the lowest-energy half
   (``ceil(n * search_keep_fraction)``) by ``energy_property``.

The paper deduplicates first; we run the cheap per-structure filters first so that StructureMatcher only sees
plausible structures (the kept set differs only in which duplicate survives when duplicates fail a filter).
"""

from __future__ import annotations

import functools
import math
import multiprocessing
import time
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, replace

import numpy as np

from xtal_data import __version__
from xtal_data.geometry import cell_volume, hard_sphere_volume, shortest_distance
from xtal_data.records import CrystalArrays
from xtal_data.store import CrystalStore

PARALLEL_MIN_STRUCTURES = 1024  # below this, process start-up costs more than it saves
PARALLEL_MIN_GROUPS = 8


@dataclass(frozen=True)
class CurationConfig:
    """Which filters run and their thresholds; ``None`` (or False) switches a filter off."""

    min_distance: float | None = 0.5  # Å
    max_distance: float | None = 5.2  # Å, upper bound on the *shortest* distance
    volume_factor: float | None = 4.0  # k below high_pressure_gpa
    volume_factor_high_pressure: float | None = 2.0  # k at or above high_pressure_gpa
    high_pressure_gpa: float = 1.0
    max_atoms: int | None = 60
    formation_energy_property: str | None = "formation_energy_per_atom"  # must be < 0
    e_above_hull_property: str | None = "e_above_hull"
    max_e_above_hull: float = 0.2  # eV/atom
    deduplicate: bool = True
    energy_property: str | None = "energy_per_atom"  # picks duplicates' survivor, ranks search members
    search_id_property: str | None = "search_id"
    search_keep_fraction: float = 0.5


@dataclass(frozen=True)
class FilterResult:
    """One filter's outcome: ``removed`` records (ids listed), or ``applied=False`` with the reason."""

    name: str
    applied: bool
    removed: int
    removed_ids: tuple[str, ...]
    note: str = ""


@dataclass(frozen=True)
class CurationReport:
    """Outcome of :func:`curate`: the kept indices (into the input store) and each filter's removals."""

    input: int
    kept_indices: np.ndarray
    filters: tuple[FilterResult, ...]
    seconds: float

    @property
    def kept(self) -> int:
        return int(len(self.kept_indices))

    def summary(self) -> str:
        lines = [f"kept {self.kept} of {self.input} structures ({self.seconds:.1f} s)"]
        for f in self.filters:
            state = f"removed {f.removed:7d}" if f.applied else "not applied   "
            lines.append(f"  {f.name:17s} {state}  {f.note}")
        return "\n".join(lines)


def _mask_filter(name, table, keep, fails: Callable[[int], bool], note="") -> FilterResult:
    removed = [i for i in np.flatnonzero(keep) if fails(i)]
    keep[removed] = False
    return FilterResult(name, True, len(removed), tuple(table.ids[removed].tolist()), note)


def _off(name: str, note: str = "switched off") -> FilterResult:
    return FilterResult(name, False, 0, (), note)


def curate(
    store: CrystalStore | str,
    output: str | None = None,
    *,
    config: CurationConfig = CurationConfig(),
    workers: int = 1,
    storage_options: dict | None = None,
) -> CurationReport:
    """Apply the filters to ``store``; write the kept structures to a new store at ``output`` if given
    (with the filters and their counts in its provenance). ``workers`` processes compute the distances and
    match duplicates (spawned: call it under ``if __name__ == "__main__":`` in scripts)."""
    t0 = time.perf_counter()
    if not isinstance(store, CrystalStore):
        store = CrystalStore.open(store, storage_options=storage_options)
    table = store.read()
    c = config
    keep = np.ones(len(table), dtype=bool)
    offsets = table.offsets
    results: list[FilterResult] = []

    def atoms(i):
        return slice(offsets[i], offsets[i + 1])

    if c.min_distance is None and c.max_distance is None:
        results.append(_off("distance"))
    else:
        lo, hi = c.min_distance or 0.0, c.max_distance or math.inf
        cutoff = hi if math.isfinite(hi) else max(lo, 1.0) * 4

        shortest = _shortest_distances(table, np.flatnonzero(keep), cutoff, workers)

        def bad_distance(i):
            return not (lo <= shortest[i] <= hi)

        results.append(_mask_filter("distance", table, keep, bad_distance, f"shortest in [{lo}, {hi}] Å"))

    if c.volume_factor is None and c.volume_factor_high_pressure is None:
        results.append(_off("volume"))
    else:
        volumes = cell_volume(table.lattice)

        def bad_volume(i):
            high = table.pressure[i] >= c.high_pressure_gpa
            k = c.volume_factor_high_pressure if high else c.volume_factor
            return k is not None and not volumes[i] <= k * hard_sphere_volume(table.atomic_numbers[atoms(i)])

        note = f"V <= {c.volume_factor} x hard spheres (< {c.high_pressure_gpa} GPa), "
        note += f"{c.volume_factor_high_pressure} x (>= {c.high_pressure_gpa} GPa)"
        results.append(_mask_filter("volume", table, keep, bad_volume, note))

    if c.max_atoms is None:
        results.append(_off("max_atoms"))
    else:
        results.append(
            _mask_filter(
                "max_atoms", table, keep, lambda i: table.num_atoms[i] > c.max_atoms, f"<= {c.max_atoms}"
            )
        )

    results.append(
        _property_filter("formation_energy", table, keep, c.formation_energy_property, lambda v: v >= 0)
    )
    results.append(
        _property_filter(
            "e_above_hull", table, keep, c.e_above_hull_property, lambda v: v > c.max_e_above_hull,
            f"<= {c.max_e_above_hull} eV/atom",
        )
    )  # fmt: skip
    energy = _energy(table, c.energy_property)
    results.append(_deduplicate(table, keep, energy, workers) if c.deduplicate else _off("duplicates"))
    results.append(_search_half(table, keep, energy, c))

    report = CurationReport(len(table), np.flatnonzero(keep), tuple(results), time.perf_counter() - t0)
    if output is not None:
        _write_output(store, table, report, c, output, storage_options)
    return report


def _distance_job(job: tuple[np.ndarray, np.ndarray], cutoff: float) -> float:
    return shortest_distance(job[0], job[1], cutoff=cutoff)


def _shortest_distances(table: CrystalArrays, indices: np.ndarray, cutoff: float, workers: int) -> dict:
    """Structure index -> shortest distance (Å, inf beyond ``cutoff``), over processes if ``workers`` > 1."""
    offsets = table.offsets
    jobs = [(table.frac_coords[offsets[i] : offsets[i + 1]], table.lattice[i]) for i in indices]
    if workers > 1 and len(jobs) >= PARALLEL_MIN_STRUCTURES:
        ctx = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(workers, mp_context=ctx) as pool:
            values = list(pool.map(functools.partial(_distance_job, cutoff=cutoff), jobs, chunksize=256))
    else:
        values = [_distance_job(job, cutoff) for job in jobs]
    return dict(zip(indices.tolist(), values, strict=True))


def _property_filter(name, table, keep, prop, fails, note="< 0") -> FilterResult:
    if prop is None:
        return _off(name)
    if prop not in table.properties or table.properties[prop].dtype.kind == "U":
        return _off(name, f"no numeric property {prop!r}")
    values = table.properties[prop]
    return _mask_filter(
        name, table, keep, lambda i: not np.isnan(values[i]) and fails(values[i]), f"{prop} {note}"
    )


def _energy(table: CrystalArrays, prop: str | None) -> np.ndarray | None:
    if prop is None or prop not in table.properties or table.properties[prop].dtype.kind == "U":
        return None
    return np.where(np.isnan(table.properties[prop]), np.inf, table.properties[prop])  # missing ranks last


def _match_group(args: tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray]]) -> list[list[int]]:
    """Group positions (0..k-1) of one formula/pressure group into StructureMatcher-equivalent classes."""
    from pymatgen.analysis.structure_matcher import StructureMatcher
    from pymatgen.core import Lattice, Structure

    zs, fracs, lats = args
    structures = [Structure(Lattice(lat), z.tolist(), f) for z, f, lat in zip(zs, fracs, lats, strict=True)]
    for k, s in enumerate(structures):
        s.properties["k"] = k
    groups = StructureMatcher().group_structures(structures)
    return [[s.properties["k"] for s in g] for g in groups]


def _deduplicate(table, keep, energy, workers) -> FilterResult:
    groups: dict[tuple[str, float], list[int]] = defaultdict(list)
    for i in np.flatnonzero(keep):
        groups[(table.formula[i], float(table.pressure[i]))].append(int(i))
    multi = [g for g in groups.values() if len(g) > 1]
    offsets = table.offsets

    def payload(members):
        sl = [slice(offsets[i], offsets[i + 1]) for i in members]
        return (
            [table.atomic_numbers[s] for s in sl],
            [table.frac_coords[s] for s in sl],
            [table.lattice[i] for i in members],
        )

    if workers > 1 and len(multi) >= PARALLEL_MIN_GROUPS:
        ctx = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(workers, mp_context=ctx) as pool:
            classes = list(pool.map(_match_group, map(payload, multi), chunksize=8))
    else:
        classes = [_match_group(payload(g)) for g in multi]
    removed: list[int] = []
    for members, cls in zip(multi, classes, strict=True):
        for positions in cls:
            idx = [members[p] for p in positions]
            best = min(idx, key=lambda i: (energy[i], i)) if energy is not None else min(idx)
            removed += [i for i in idx if i != best]
    removed.sort()
    keep[removed] = False
    note = f"StructureMatcher defaults within {len(multi)} formula/pressure groups of 2+"
    return FilterResult("duplicates", True, len(removed), tuple(table.ids[removed].tolist()), note)


def _search_half(table, keep, energy, c: CurationConfig) -> FilterResult:
    if c.search_id_property is None:
        return _off("search_half")
    if c.search_id_property not in table.properties:
        return _off("search_half", f"no property {c.search_id_property!r}")
    if energy is None:
        return _off("search_half", f"no numeric energy property {c.energy_property!r}")
    searches: dict[object, list[int]] = defaultdict(list)
    values = table.properties[c.search_id_property]
    for i in np.flatnonzero(keep):
        searches[values[i]].append(int(i))
    removed: list[int] = []
    for members in searches.values():
        ranked = sorted(members, key=lambda i: (energy[i], i))
        removed += ranked[math.ceil(len(ranked) * c.search_keep_fraction) :]
    removed.sort()
    keep[removed] = False
    note = f"lowest {c.search_keep_fraction:.0%} by {c.energy_property} in {len(searches)} searches"
    return FilterResult("search_half", True, len(removed), tuple(table.ids[removed].tolist()), note)


def _write_output(store, table, report, config, output, storage_options) -> None:
    filters = report.filters
    out = CrystalStore.create(
        output, config=replace(store.config, checksum=True), storage_options=storage_options
    )
    out.append(table.take(report.kept_indices), on_duplicate="error")
    for entry in store.provenance:
        out.add_provenance({**entry, "inherited_from": store.url})
    out.add_provenance({
        "action": "curate", "source": store.url, "xtal_data_version": __version__, "config": asdict(config),
        "input": report.input, "kept": report.kept,
        "filters": [{k: getattr(f, k) for k in ("name", "applied", "removed", "note")} for f in filters],
    })  # fmt: skip
