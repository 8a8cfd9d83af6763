"""Ingestion from the shared datasets, folders, extended XYZ and ASE databases; skips are reported."""

from __future__ import annotations

import csv
import importlib

import numpy as np
import pandas as pd
import pytest
from xtal_data import CrystalStore, ingest

from tests.xtal_data._helpers import CIF_NACL, POSCAR_SI, rock_salt

pytestmark = pytest.mark.torch_free


def test_perov5_ingests_every_row_with_ids_and_properties(perov_store, shared_data):
    df = pd.read_csv(shared_data / "perov_5" / "val.csv")
    assert len(perov_store) == 3787 == len(df)
    assert perov_store.ids.tolist() == df["material_id"].astype(str).tolist()
    np.testing.assert_array_equal(perov_store.get_property("heat_ref"), df["heat_ref"].to_numpy())
    assert set(perov_store.property_names) == {"formula", "heat_all", "heat_ref", "dir_gap", "ind_gap"}
    assert (perov_store.num_atoms == 5).all() and (perov_store.pressure == 0.0).all()
    assert [e["action"] for e in perov_store.provenance] == ["ingest started", "ingest"]
    entry = perov_store.provenance[-1]
    assert entry["written"] == 3787 and entry["ignored_columns"] == ["Unnamed: 0"]


def test_carbon24_ingests_at_10_gpa(carbon_store, shared_data):
    df = pd.read_csv(shared_data / "carbon_24" / "val.csv")
    assert len(carbon_store) == 2032
    assert carbon_store.ids.tolist() == df["material_id"].tolist()
    assert (carbon_store.pressure == 10.0).all()
    assert set(np.unique(carbon_store.read().atomic_numbers)) == {6}
    assert carbon_store.num_atoms.min() >= 6 and carbon_store.num_atoms.max() <= 24
    np.testing.assert_array_equal(carbon_store.get_property("energy_per_atom"), df["energy_per_atom"])


def test_mp20_slice_keeps_pressure_column_and_properties(shared_data, tmp_path):
    df = pd.read_feather(shared_data / "mp_20" / "val.feather").iloc[:200]
    df.to_feather(tmp_path / "slice.feather")
    report = ingest(str(tmp_path / "slice.feather"), f"file://{tmp_path}/mp.zarr", workers=1, progress=False)
    assert (report.read, report.written, report.skipped) == (200, 200, ())
    store = CrystalStore.open(f"file://{tmp_path}/mp.zarr")
    assert store.ids.tolist() == df["material_id"].tolist()
    assert store.get_property("spacegroup.number").tolist() == df["spacegroup.number"].astype(float).tolist()
    assert store.get_property("elements")[0] == df["elements"].iloc[0]
    assert (store.pressure == 0).all()
    # the cell formula of the dataset equals our atoms
    from pymatgen.core import Composition

    for i in range(0, 200, 37):
        assert Composition(df["formula"].iloc[i]) == store[i].to_pymatgen().composition
    with pytest.raises(ValueError, match="says 0.0 GPa in 200 rows but the constant given is 5.0"):
        ingest(str(tmp_path / "slice.feather"), "memory://mp-bad", pressure=5.0, workers=1, progress=False)


def _write_csv(path, rows, header=("", "material_id", "cif", "energy")):
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)


def test_corrupt_cif_and_truncated_row_are_reported_not_fatal(tmp_path):
    path = tmp_path / "bad.csv"
    broken = CIF_NACL.replace("_cell_length_b 5.64\n", "").replace("Cl Cl3", "Xx Cl3")
    rows = [[0, "ok-1", CIF_NACL, -1.0], [1, "corrupt", broken, -2.0], [2, "", CIF_NACL, 0.0],
            [3, "no-cif", "", 1.0], [4, "ok-2", CIF_NACL, -3.0]]  # fmt: skip
    _write_csv(path, rows)
    with open(path, "a") as fh:  # a row cut off inside its quoted CIF text
        fh.write('5,truncated,"data_x\n_cell_length_a 5.64\n')
    report = ingest(str(path), "memory://bad-csv", pressure=0.0, workers=1, progress=False)
    reasons = {s.id: s.reason for s in report.skipped}
    assert report.read == 6 and report.written == 2
    assert set(reasons) == {"corrupt", "row 3", "no-cif", "truncated"}
    assert reasons["corrupt"].startswith("malformed CIF")
    assert reasons["row 3"] == "missing id" and reasons["no-cif"] == "missing CIF text"
    assert "has 3 fields, header has 4" in reasons["truncated"]
    store = CrystalStore.open("memory://bad-csv")
    assert store.ids.tolist() == ["ok-1", "ok-2"] and store.get_property("energy").tolist() == [-1.0, -3.0]
    assert "skipped 4" in report.summary()


def test_reingesting_same_ids_is_deduplicated_and_resumes_after_a_crash(tmp_path, monkeypatch):
    path = tmp_path / "many.csv"
    _write_csv(path, [[i, f"s{i}", CIF_NACL, float(i)] for i in range(10)] + [[10, "s3", CIF_NACL, 3.0]])
    url = str(tmp_path / "s.zarr")
    calls = {"n": 0}
    original = CrystalStore._write_table

    def crash_on_second_batch(self, table):
        calls["n"] += 1
        if calls["n"] == 2:
            self._group["id"].resize((len(self) + 1,))  # half-written tail, never committed
            raise RuntimeError("simulated crash mid-ingestion")
        return original(self, table)

    monkeypatch.setattr(CrystalStore, "_write_table", crash_on_second_batch)
    with pytest.raises(RuntimeError, match="simulated crash"):
        ingest(str(path), url, pressure=0.0, workers=1, batch_size=4, progress=False)
    monkeypatch.undo()
    assert CrystalStore.open(url).ids.tolist() == ["s0", "s1", "s2", "s3"]  # first batch committed, readable
    assert [e["action"] for e in CrystalStore.open(url).provenance] == ["ingest started"]
    report = ingest(str(path), url, pressure=0.0, workers=1, batch_size=4, progress=False)
    assert report.written == 6
    assert sorted(s.reason for s in report.skipped) == ["id already in store"] * 5
    store = CrystalStore.open(url)
    assert store.ids.tolist() == [f"s{i}" for i in range(10)]
    ingest_module = importlib.import_module("xtal_data.ingest")  # the name xtal_data.ingest is the function
    monkeypatch.setattr(ingest_module, "parse_item", lambda item: pytest.fail(f"re-parsed {item.id}"))
    again = ingest(str(path), url, pressure=0.0, workers=1, progress=False)  # stored ids are not re-parsed
    assert again.written == 0 and len(again.skipped) == 11 and len(CrystalStore.open(url)) == 10


def test_duplicate_ids_within_one_source_are_reported(tmp_path):
    path = tmp_path / "dup.csv"
    _write_csv(path, [[0, "a", CIF_NACL, 1.0], [1, "a", CIF_NACL, 2.0]])
    report = ingest(str(path), "memory://dup", pressure=0.0, workers=1, progress=False)
    assert report.written == 1 and [s.reason for s in report.skipped] == ["duplicate id in source"]


def test_parallel_parsing_gives_the_same_store_as_serial(tmp_path):
    path = tmp_path / "par.csv"
    _write_csv(path, [[i, f"s{i}", CIF_NACL if i % 7 else "junk", float(i)] for i in range(80)])
    serial = ingest(str(path), "memory://serial", pressure=1.0, workers=1, progress=False)
    parallel = ingest(str(path), "memory://parallel", pressure=1.0, workers=2, progress=True)
    assert serial.written == parallel.written == 80 - 12
    assert [s.id for s in serial.skipped] == [s.id for s in parallel.skipped]
    a, b = CrystalStore.open("memory://serial").read(), CrystalStore.open("memory://parallel").read()
    np.testing.assert_array_equal(a.frac_coords, b.frac_coords)
    assert a.ids.tolist() == b.ids.tolist()


def test_folder_of_cif_and_poscar_files(tmp_path):
    (tmp_path / "in" / "sub").mkdir(parents=True)
    (tmp_path / "in" / "nacl.cif").write_text(CIF_NACL)
    (tmp_path / "in" / "sub" / "POSCAR").write_text(POSCAR_SI)
    (tmp_path / "in" / "si.vasp").write_text(POSCAR_SI)
    (tmp_path / "in" / "broken.cif").write_text("data_broken\n_cell_length_a 3\n")
    (tmp_path / "in" / "notes.txt").write_text("ignored")
    with pytest.raises(ValueError, match="--pressure"):
        ingest(str(tmp_path / "in"), "memory://folder-x", workers=1, progress=False)
    report = ingest(str(tmp_path / "in"), "memory://folder", pressure=2.5, workers=1, progress=False)
    assert report.read == 4 and report.written == 3 and [s.id for s in report.skipped] == ["broken"]
    store = CrystalStore.open("memory://folder")
    assert sorted(store.ids.tolist()) == ["nacl", "si", "sub/POSCAR"]
    assert sorted(store.formula.tolist()) == ["NaCl", "Si", "Si"] and (store.pressure == 2.5).all()


def test_extxyz_and_ase_database(tmp_path):
    pytest.importorskip("ase")
    import ase
    import ase.db
    import ase.io

    a1, a2 = rock_salt("x").to_ase(), rock_salt("y").to_ase()
    a1.info.update(material_id="nacl-1", pressure=3.0, band_gap=5.0)
    a2.info.update(pressure=3.0)
    molecule = ase.Atoms("H2", positions=[[0, 0, 0], [0, 0, 0.74]])
    molecule.info.update(pressure=3.0)
    ase.io.write(tmp_path / "s.extxyz", [a1, a2, molecule], format="extxyz")
    report = ingest(str(tmp_path / "s.extxyz"), "memory://xyz", workers=1, progress=False)
    assert (
        report.written == 2 and report.skipped[0].id == "s:2" and "not periodic" in report.skipped[0].reason
    )
    store = CrystalStore.open("memory://xyz")
    assert store.ids.tolist() == ["nacl-1", "s:1"] and (store.pressure == 3.0).all()
    assert store.get_property("band_gap")[0] == 5.0
    np.testing.assert_allclose(store[0].frac_coords, rock_salt("x").frac_coords, atol=1e-12)

    with ase.db.connect(str(tmp_path / "s.db")) as db:
        db.write(a1, material_id="nacl-1", energy_per_atom=-3.2)
        db.write(rock_salt("z").to_ase())
    report = ingest(str(tmp_path / "s.db"), "memory://db", pressure=0.0, workers=1, progress=False)
    assert report.written == 2
    store = CrystalStore.open("memory://db")
    assert store.ids.tolist() == ["nacl-1", "s:2"] and store.get_property("energy_per_atom")[0] == -3.2


def test_unknown_or_missing_sources_fail_clearly(tmp_path):
    with pytest.raises(FileNotFoundError, match="source not found"):
        ingest(str(tmp_path / "nope.csv"), "memory://x1", pressure=0.0, progress=False)
    (tmp_path / "data.bin").write_bytes(b"\0")
    with pytest.raises(ValueError, match="cannot tell the format"):
        ingest(str(tmp_path / "data.bin"), "memory://x2", pressure=0.0, progress=False)
    (tmp_path / "t.feather").write_bytes(b"not a feather file")
    with pytest.raises(ValueError, match="cannot read table"):
        ingest(str(tmp_path / "t.feather"), "memory://x3", pressure=0.0, progress=False)
    _write_csv(tmp_path / "noid.csv", [[0, CIF_NACL]], header=("x", "cif"))
    with pytest.raises(ValueError, match="no id column"):
        ingest(str(tmp_path / "noid.csv"), "memory://x4", pressure=0.0, progress=False)
    _write_csv(tmp_path / "nop.csv", [[0, "a", CIF_NACL, 1.0]])
    with pytest.raises(ValueError, match="no pressure column"):
        ingest(str(tmp_path / "nop.csv"), "memory://x5", progress=False)
