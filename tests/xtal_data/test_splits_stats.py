"""Seeded splits stored as index arrays, statistics, figures and export."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from xtal_data import CrystalStore
from xtal_data.export import export_cif, export_extxyz
from xtal_data.splits import split_by_composition, split_random
from xtal_data.stats import compute_stats

from tests.xtal_data._helpers import rock_salt, simple_cubic

pytestmark = pytest.mark.torch_free
_n = itertools.count()


def _store(n=200) -> CrystalStore:
    store = CrystalStore.create(f"memory://split-tests/{next(_n)}")
    store.append([simple_cubic(f"s{i}", 3.0, z=1 + i % 37, pressure=float(i % 3)) for i in range(n)])
    return store


def test_random_split_is_seeded_disjoint_complete_and_stored():
    store = _store(1001)
    a = split_random(store, seed=7)
    assert {k: len(v) for k, v in a.items()} == {"train": 801, "val": 100, "test": 100}
    assert np.array_equal(np.sort(np.concatenate(list(a.values()))), np.arange(1001))
    b = split_random(store, seed=7, write=False)
    c = split_random(store, seed=8, write=False)
    assert all(np.array_equal(a[k], b[k]) for k in a) and not np.array_equal(a["val"], c["val"])
    stored = CrystalStore.open(store.url).split("random")
    assert all(np.array_equal(stored[k], a[k]) for k in a)
    assert store.attributes["splits"]["random"]["seed"] == 7


def test_composition_split_shares_no_formula():
    store = _store(370)
    parts = split_by_composition(store, seed=0)
    formulas = {k: set(store.formula[v]) for k, v in parts.items()}
    assert not (formulas["train"] & formulas["val"]) and not (formulas["train"] & formulas["test"])
    assert not (formulas["val"] & formulas["test"])
    assert sum(len(v) for v in parts.values()) == 370
    assert abs(len(parts["train"]) - 296) <= 10  # 37 formulas of 10 structures: sizes are approximate
    assert CrystalStore.open(store.url).split_names == ["composition"]


def test_split_validation():
    store = _store(10)
    with pytest.raises(ValueError, match="summing to 1"):
        split_random(store, seed=0, fractions=(0.5, 0.1, 0.1))
    with pytest.raises(ValueError, match="overlaps"):
        store.write_split("bad", {"a": np.array([0, 1]), "b": np.array([1])})
    with pytest.raises(ValueError, match="outside"):
        store.write_split("bad", {"a": np.array([10])})
    with pytest.raises(KeyError, match="no split 'nope'"):
        store.split("nope")


def test_stats_counts_and_figures(tmp_path):
    pytest.importorskip("matplotlib")
    from xtal_data.plots import plot_histograms, plot_periodic_table

    store = CrystalStore.create(f"memory://split-tests/{next(_n)}")
    store.append([rock_salt("a"), rock_salt("b", pressure=10.0), simple_cubic("c", 3.0, z=11)])
    stats = compute_stats(store)
    assert stats.num_structures == 3 and stats.num_atoms == 17
    assert stats.structures_with_element[11] == 3 and stats.structures_with_element[17] == 2
    assert stats.atoms_of_element[11] == 9 and stats.element_counts() == {"Na": 3, "Cl": 2}
    text = stats.summary()
    assert "structures: 3" in text and "pressure (GPa): min 0, max 10" in text
    for path in (plot_periodic_table(stats.structures_with_element, tmp_path / "pt.png"),
                 plot_histograms(stats, tmp_path / "h.png")):  # fmt: skip
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_export_cif_and_extxyz_round_trip(tmp_path):
    from pymatgen.core import Structure

    store = CrystalStore.create(f"memory://split-tests/{next(_n)}")
    store.append([rock_salt("mp/1", energy=-1.5), simple_cubic("c", 3.0)])
    assert export_cif(store, str(tmp_path / "cifs")) == 2
    back = Structure.from_file(tmp_path / "cifs" / "mp_1.cif")
    assert back.matches(store[0].to_pymatgen()) and len(back) == 8
    pytest.importorskip("ase")
    from ase.io import read

    assert export_extxyz(store, str(tmp_path / "s.extxyz"), indices=[1, 0]) == 2
    frames = read(tmp_path / "s.extxyz", index=":")
    assert [f.info["id"] for f in frames] == ["c", "mp/1"]
    np.testing.assert_allclose(frames[1].get_scaled_positions(), store[0].frac_coords, atol=1e-10)
    from xtal_data import ingest

    ingest(str(tmp_path / "s.extxyz"), "memory://split-tests/back", workers=1, progress=False)
    back = CrystalStore.open("memory://split-tests/back")
    assert back.ids.tolist() == ["c", "mp/1"] and back.get_property("energy")[1] == -1.5
