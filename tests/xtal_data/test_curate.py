"""Curation filters on hand-made structures that must pass or fail, each switchable and counted."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given
from pymatgen.core.operations import SymmOp
from xtal_data import CrystalRecord, CrystalStore
from xtal_data.curate import CurationConfig, curate
from xtal_data.geometry import covalent_radii, shortest_distance

from tests.xtal_data._helpers import records, rock_salt, simple_cubic

pytestmark = pytest.mark.torch_free
ALL_OFF = CurationConfig(
    min_distance=None, max_distance=None, volume_factor=None, volume_factor_high_pressure=None,
    max_atoms=None, formation_energy_property=None, e_above_hull_property=None, deduplicate=False,
    search_id_property=None,
)  # fmt: skip
_n = itertools.count()


def _store(recs) -> CrystalStore:
    store = CrystalStore.create(f"memory://curate-tests/{next(_n)}")
    store.append(recs)
    return store


def _removed(report, name):
    (f,) = [f for f in report.filters if f.name == name]
    return sorted(f.removed_ids) if f.applied else None


def _brute_force_shortest(frac, lattice, reach=4):
    best = np.inf
    for shift in itertools.product(range(-reach, reach + 1), repeat=3):
        d = np.linalg.norm((frac[None] - frac[:, None] + shift) @ lattice, axis=-1)
        if shift == (0, 0, 0):
            d[np.eye(len(frac), dtype=bool)] = np.inf
        best = min(best, d.min())
    return best


@given(rec=records(max_atoms=4))
def test_shortest_distance_matches_brute_force(rec):
    rec = rec.validate()
    expected = _brute_force_shortest(rec.frac_coords, rec.lattice)
    got = shortest_distance(rec.frac_coords, rec.lattice, cutoff=expected + 0.5)
    assert got == pytest.approx(expected, rel=1e-12)
    if expected > 0:  # nothing within a cutoff below the shortest distance
        assert shortest_distance(rec.frac_coords, rec.lattice, cutoff=expected * 0.99) == np.inf


def test_shortest_distance_in_a_thin_skewed_cell():
    lattice = np.array([[1.0, 0, 0], [0.9, 0.2, 0], [0.3, 0.1, 7.0]])  # width 0.2 Å along b
    frac = np.array([[0.1, 0.2, 0.3], [0.6, 0.9, 0.4]])
    assert shortest_distance(frac, lattice, cutoff=5.2) == pytest.approx(
        _brute_force_shortest(frac, lattice, 8)
    )


def test_distance_filter_bounds():
    close = CrystalRecord("close", np.array([1, 1]), np.array([[0, 0, 0], [0.1, 0, 0]]), np.eye(3) * 4.0, 0.0)
    report = curate(
        _store([close, simple_cubic("sparse", 6.0), simple_cubic("ok", 3.0), simple_cubic("edge", 5.2)]),
        config=CurationConfig(**{**ALL_OFF.__dict__, "min_distance": 0.5, "max_distance": 5.2}),
    )
    assert _removed(report, "distance") == ["close", "sparse"]  # 0.4 Å and 6 Å; 5.2 Å itself passes


def test_volume_filter_uses_covalent_radii_and_pressure():
    assert covalent_radii()[6] == 0.73 and covalent_radii()[87] == 2.6  # Cordero 2008 (pymatgen table)
    hs = 4 * 4 / 3 * np.pi * (covalent_radii()[11] ** 3 + covalent_radii()[17] ** 3)  # NaCl cell, Å^3
    dense, loose = rock_salt("dense"), rock_salt("loose", a=(3.5 * hs) ** (1 / 3))
    squeezed = rock_salt("loose-10GPa", a=(3.5 * hs) ** (1 / 3), pressure=10.0)
    huge = rock_salt("huge", a=(4.5 * hs) ** (1 / 3))
    cfg = CurationConfig(**{**ALL_OFF.__dict__, "volume_factor": 4.0, "volume_factor_high_pressure": 2.0})
    report = curate(_store([dense, loose, squeezed, huge]), config=cfg)
    assert _removed(report, "volume") == ["huge", "loose-10GPa"]


def test_atoms_and_energy_filters():
    big = rock_salt("big").to_pymatgen()
    big.make_supercell(2)  # 64 atoms
    recs = [
        CrystalRecord.from_pymatgen(big, id="64-atoms", pressure=0.0),
        rock_salt("stable", formation_energy_per_atom=-1.0, e_above_hull=0.2),
        rock_salt("positive", formation_energy_per_atom=0.1, e_above_hull=0.0),
        rock_salt("above-hull", formation_energy_per_atom=-1.0, e_above_hull=0.25),
        rock_salt("unknown", formation_energy_per_atom=np.nan, e_above_hull=np.nan),
    ]
    report = curate(
        _store(recs), config=CurationConfig(deduplicate=False, min_distance=None, max_distance=None)
    )
    assert _removed(report, "max_atoms") == ["64-atoms"]
    assert _removed(report, "formation_energy") == ["positive"]
    assert _removed(report, "e_above_hull") == ["above-hull"]
    assert report.kept_indices.tolist() == [1, 4]


def test_duplicates_grouped_by_formula_and_pressure_keep_lowest_energy():
    base = rock_salt("a", energy_per_atom=-3.0)
    s = base.to_pymatgen()
    s.translate_sites(list(range(len(s))), [0.13, 0.2, 0.05])
    s.apply_operation(SymmOp.from_axis_angle_and_translation([1, 1, 0], 33))
    moved = CrystalRecord.from_pymatgen(s, id="a-rotated", pressure=0.0, energy_per_atom=-3.5)
    other_p = rock_salt("a-10GPa", pressure=10.0, energy_per_atom=-3.0)
    strained = rock_salt("a-strained", a=5.64 * 1.5, energy_per_atom=-2.0)  # scaled volume: still a match
    distorted = CrystalRecord(
        "distorted",
        base.atomic_numbers,
        base.frac_coords,
        np.diag([5.64, 5.64, 9.0]),
        0.0,
        {"energy_per_atom": -1.0},
    )
    report = curate(
        _store([base, moved, other_p, strained, distorted]),
        config=CurationConfig(**{**ALL_OFF.__dict__, "deduplicate": True}),
    )
    assert _removed(report, "duplicates") == ["a", "a-strained"]  # the rotated copy has the lowest energy
    assert report.kept == 3


def test_search_half_keeps_lowest_energies_per_search():
    recs = [
        simple_cubic(f"s1-{k}", 3.0, search_id="s1", enthalpy_per_atom=e)
        for k, e in enumerate([-1.0, -4.0, -2.0, -3.0])
    ] + [
        simple_cubic(f"s2-{k}", 3.0, search_id="s2", enthalpy_per_atom=e)
        for k, e in enumerate([-1.0, -2.0, -3.0])
    ]
    cfg = CurationConfig(
        **{**ALL_OFF.__dict__, "search_id_property": "search_id", "energy_property": "enthalpy_per_atom"}
    )
    report = curate(_store(recs), config=cfg)
    assert _removed(report, "search_half") == ["s1-0", "s1-2", "s2-0"]


def test_every_filter_switches_off_and_output_store_records_provenance():
    close = CrystalRecord(
        "close", np.array([1, 1]), np.array([[0, 0, 0], [0.01, 0, 0]]), np.eye(3) * 40.0, 0.0
    )
    store = _store([close, rock_salt("a"), rock_salt("b")])
    report = curate(store, config=ALL_OFF)
    assert report.kept == 3 and not any(f.applied for f in report.filters)
    out = f"memory://curate-tests/out-{next(_n)}"
    report = curate(store, out)
    kept = CrystalStore.open(out)
    assert kept.ids.tolist() == ["a"] and report.kept == 1
    entry = kept.provenance[-1]
    assert entry["action"] == "curate" and entry["input"] == 3
    assert {f["name"]: f["removed"] for f in entry["filters"]} == {
        "distance": 1, "volume": 0, "max_atoms": 0, "formation_energy": 0, "e_above_hull": 0,
        "duplicates": 1, "search_half": 0,
    }  # fmt: skip
    assert "kept 1 of 3" in report.summary()


def test_carbon24_at_10_gpa_fails_the_high_pressure_volume_rule(carbon_store):
    """Documented consequence of the paper's k = 2 with Cordero radii: no Carbon-24 cell has V < 2 V_hs."""
    cfg = CurationConfig(**{**ALL_OFF.__dict__, "volume_factor": 4.0, "volume_factor_high_pressure": 2.0})
    subset = carbon_store.read(slice(0, 200))
    report = curate(_store(list(subset)), config=cfg)
    assert _removed(report, "volume") == sorted(subset.ids.tolist())
    relaxed = CurationConfig(**{**cfg.__dict__, "volume_factor_high_pressure": 4.0})
    assert 0 < curate(_store(list(subset)), config=relaxed).kept < 200


def test_parallel_curation_equals_serial(monkeypatch):
    from xtal_data import curate as curate_module

    monkeypatch.setattr(curate_module, "PARALLEL_MIN_STRUCTURES", 1)
    monkeypatch.setattr(curate_module, "PARALLEL_MIN_GROUPS", 1)
    close = CrystalRecord(
        "close", np.array([1, 1]), np.array([[0, 0, 0], [0.05, 0, 0]]), np.eye(3) * 4.0, 0.0
    )
    recs = [
        rock_salt("a"),
        rock_salt("a-copy", a=5.7),
        close,
        rock_salt("b", pressure=10.0),
        simple_cubic("far", 6.0),
    ]
    serial, parallel = curate(_store(recs), workers=1), curate(_store(recs), workers=2)
    assert serial.kept_indices.tolist() == parallel.kept_indices.tolist() == [0, 3]
    assert [f.removed_ids for f in serial.filters] == [f.removed_ids for f in parallel.filters]
