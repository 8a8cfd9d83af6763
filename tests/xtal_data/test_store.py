"""The Zarr store: exact round trips, fsspec URLs, duplicates, interrupted appends, bad input."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from xtal_data import CrystalArrays, CrystalStore, StoreConfig

from tests.xtal_data._helpers import records, rock_salt, simple_cubic

pytestmark = pytest.mark.torch_free

_counter = iter(range(10**9))


def _memory_url() -> str:
    return f"memory://xtal-data-tests/store-{next(_counter)}"


def assert_tables_equal(a: CrystalArrays, b: CrystalArrays) -> None:
    for name in ("ids", "formula", "num_atoms", "atomic_numbers", "frac_coords", "lattice", "pressure"):
        x, y = getattr(a, name), getattr(b, name)
        same = x.dtype.kind == y.dtype.kind == "U" or x.dtype == y.dtype  # str widths may differ
        assert same, (name, x.dtype, y.dtype)
        np.testing.assert_array_equal(x, y, err_msg=name)
    assert set(a.properties) == set(b.properties)
    for k in a.properties:
        assert a.properties[k].dtype.kind == b.properties[k].dtype.kind
        np.testing.assert_array_equal(a.properties[k], b.properties[k], err_msg=k)


@given(recs=st.lists(records(), min_size=1, max_size=8, unique_by=lambda r: r.id))
def test_round_trip_is_exact(recs):
    table = CrystalArrays.from_records(recs)
    store = CrystalStore.create(_memory_url(), config=StoreConfig(chunk_structures=3, chunk_atoms=5))
    store.append(table)
    reopened = CrystalStore.open(store.url)
    assert len(reopened) == len(recs)
    assert_tables_equal(table, reopened.read())
    # random access in any order, with repeats, equals taking from the in-memory table
    idx = np.array([len(recs) - 1, 0, len(recs) - 1])
    assert_tables_equal(table.take(idx), reopened.read(idx))
    last = reopened[-1]
    np.testing.assert_array_equal(last.frac_coords, recs[-1].validate().frac_coords)


def test_sparse_random_access_matches_dense_read():
    recs = [simple_cubic(f"c{i}", 3.0 + i / 100, z=1 + i % 90) for i in range(300)]
    store = CrystalStore.create(_memory_url(), config=StoreConfig(chunk_structures=16, chunk_atoms=16))
    store.append(recs)
    idx = np.array([299, 3, 150, 3])  # sparse: read by orthogonal selection, not by span
    assert_tables_equal(store.read().take(idx), store.read(idx))
    assert [r.id for r in store.read(slice(10, 20, 3))] == ["c10", "c13", "c16", "c19"]


@pytest.mark.parametrize("scheme", ["path", "file", "memory"])
def test_store_on_fsspec_urls(tmp_path, scheme):
    url = {
        "path": str(tmp_path / "s.zarr"),
        "file": f"file://{tmp_path}/nested/s.zarr",
        "memory": _memory_url(),
    }
    store = CrystalStore.create(url[scheme])
    store.append([rock_salt("a"), rock_salt("b", pressure=5.0)])
    again = CrystalStore.open(url[scheme])
    assert list(again.ids) == ["a", "b"] and list(again.pressure) == [0.0, 5.0]
    assert again.formula.tolist() == ["NaCl", "NaCl"]
    with pytest.raises(FileExistsError, match="already exists"):
        CrystalStore.create(url[scheme])


def test_duplicates_are_skipped_or_refused_never_doubled():
    store = CrystalStore.create(_memory_url())
    store.append([rock_salt("a"), rock_salt("b")])
    result = store.append([rock_salt("b"), rock_salt("c"), rock_salt("c")])
    assert result.written == 1 and set(result.duplicate_ids) == {"b", "c"}
    assert list(store.ids) == ["a", "b", "c"]
    with pytest.raises(ValueError, match="1 ids already in store"):
        store.append([rock_salt("a"), rock_salt("d")], on_duplicate="error")
    assert len(store) == 3 and len(CrystalStore.open(store.url)) == 3


def test_properties_added_later_are_padded():
    store = CrystalStore.create(_memory_url())
    store.append([rock_salt("a", energy=-1.0)])
    store.append([rock_salt("b", source="icsd")])
    assert np.isnan(store.get_property("energy")[1]) and store.get_property("energy")[0] == -1.0
    assert store.get_property("source").tolist() == ["", "icsd"]
    with pytest.raises(ValueError, match="is float in the store but str"):
        store.append([rock_salt("c", energy="high")])
    with pytest.raises(KeyError, match="no property 'gap'"):
        store.get_property("gap")


def test_interrupted_append_leaves_previous_state(monkeypatch):
    store = CrystalStore.create(_memory_url(), config=StoreConfig(chunk_structures=2, chunk_atoms=4))
    store.append([rock_salt("a"), rock_salt("b")])
    before = store.read()

    def crash(**updates):
        raise KeyboardInterrupt("simulated crash before the commit")

    monkeypatch.setattr(store, "_write_meta", crash)
    with pytest.raises(KeyboardInterrupt):
        store.append([simple_cubic("c", 3.0, energy=1.0), simple_cubic("d", 3.0)])
    monkeypatch.undo()
    reopened = CrystalStore.open(store.url, mode="r+")
    assert len(reopened) == 2
    assert_tables_equal(before, reopened.read())  # the half-written tail (and 'energy') is invisible
    reopened.append([simple_cubic("c", 3.0, energy=1.0)])
    assert list(reopened.ids) == ["a", "b", "c"]
    assert reopened.get_property("energy").tolist()[2] == 1.0
    assert reopened.read().num_atoms.tolist() == [8, 8, 1]


def test_bad_input_is_named():
    store = CrystalStore.create(_memory_url())
    bad = rock_salt("x")
    with pytest.raises(ValueError, match="'nan'.*non-finite"):
        store.append([type(bad)("nan", bad.atomic_numbers, bad.frac_coords * np.nan, bad.lattice, 0.0)])
    with pytest.raises(ValueError, match="'flat'.*zero or degenerate cell volume"):
        store.append([type(bad)("flat", bad.atomic_numbers, bad.frac_coords, np.zeros((3, 3)), 0.0)])
    with pytest.raises(ValueError, match="'z0'.*atomic numbers"):
        store.append([type(bad)("z0", bad.atomic_numbers * 0, bad.frac_coords, bad.lattice, 0.0)])
    assert len(store) == 0
    with pytest.raises(FileNotFoundError, match="no xtal-data store"):
        CrystalStore.open(_memory_url())
    with pytest.raises(PermissionError, match="read-only"):
        CrystalStore.open(store.url).append([rock_salt("a")])


def test_foreign_or_newer_stores_are_refused(tmp_path):
    import zarr

    zarr.open_group(str(tmp_path / "plain.zarr"), mode="w")
    with pytest.raises(ValueError, match="not an xtal-data store"):
        CrystalStore.open(str(tmp_path / "plain.zarr"))
    store = CrystalStore.create(str(tmp_path / "new.zarr"))
    store._write_meta(schema_version=99)
    with pytest.raises(ValueError, match="schema version 99"):
        CrystalStore.open(store.url)


def test_frac_coords_are_wrapped_into_unit_interval():
    rec = rock_salt("w")
    shifted = type(rec)("w", rec.atomic_numbers, rec.frac_coords - 1.0 - 1e-17, rec.lattice, 0.0).validate()
    assert (shifted.frac_coords >= 0).all() and (shifted.frac_coords < 1).all()
