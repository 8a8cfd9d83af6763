"""Ingestion of structure-search results: VASP calculation folders and CALYPSO searches."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner
from xtal_data import CrystalStore, ingest
from xtal_data.cli import app
from xtal_data.vasp import parse_outcar, parse_pstress

from tests.xtal_data._helpers import POSCAR_SI

pytestmark = pytest.mark.torch_free


def outcar(energy=-10.8, enthalpy=None, pstress=None, nsw=50, ibrion=2, nelm=60, last_iters=(1, 12),
           converged=True, finished=True) -> str:  # fmt: skip
    """A minimal OUTCAR: the echoed parameters, one electronic loop, energies and the end markers."""
    lines = [f"   NELM   =     {nelm};   NELMIN=  2; NELMDL= -5     # of ELM steps",
             f"   NSW    =     {nsw}    number of steps for IOM",
             f"   IBRION =      {ibrion}    ionic relax: 0-MD 1-quasi-New 2-CG"]  # fmt: skip
    if pstress is not None:
        lines.append(f"   PSTRESS=  {pstress:.2f} pullay stress")
    ionic, electronic = last_iters
    lines += [f"------- Iteration {ionic:6d}({e:4d})  -------" for e in range(1, electronic + 1)]
    lines.append(f"  free  energy   TOTEN  =      {energy:.8f} eV")
    if enthalpy is not None:
        lines.append(f"  enthalpy is  TOTEN    =      {enthalpy:.8f} eV   P V=   {enthalpy - energy:.8f}")
    if converged:
        lines.append(" reached required accuracy - stopping structural energy minimisation")
    if finished:
        lines.append(" General timing and accounting informations for this job:")
    return "\n".join(lines) + "\n"


def _write(folder, **files):
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        path = folder / name.replace("__", ".")
        path.write_bytes(gzip.compress(text.encode())) if name.endswith("__gz") else path.write_text(text)


def vasp_tree(root):
    _write(root / "relaxed", INCAR="SYSTEM = Si\nPSTRESS = 500 ! kBar\nISIF = 3", CONTCAR=POSCAR_SI,
           POSCAR=POSCAR_SI, OUTCAR=outcar(-10.8, -9.9))  # fmt: skip
    _write(root / "static", INCAR="ENCUT = 520", POSCAR=POSCAR_SI, OUTCAR=outcar(-10.7, nsw=0, ibrion=-1,
           converged=False))  # fmt: skip
    _write(root / "no_incar", CONTCAR=POSCAR_SI, OUTCAR__gz=outcar(-10.6, pstress=100.0))
    _write(
        root / "killed",
        INCAR="PSTRESS = 0",
        CONTCAR=POSCAR_SI,
        OUTCAR=outcar(finished=False, converged=False),
    )
    _write(root / "unconverged", INCAR="PSTRESS=0", CONTCAR=POSCAR_SI, OUTCAR=outcar(converged=False))
    _write(
        root / "scf_fail", INCAR="PSTRESS=0", CONTCAR=POSCAR_SI, OUTCAR=outcar(nelm=12, last_iters=(3, 12))
    )
    _write(root / "not_run", INCAR="PSTRESS = 100", POSCAR=POSCAR_SI)
    _write(root / "bad_xml", INCAR="PSTRESS = 100", POSCAR=POSCAR_SI, vasprun__xml="<modeling><incar>")
    _write(root / "bad_incar", INCAR="PSTRESS = high", CONTCAR=POSCAR_SI, OUTCAR=outcar())
    _write(root / "only_poscar", INCAR="PSTRESS = 0", POSCAR=POSCAR_SI, OUTCAR=outcar())
    return root


def test_parsers():
    assert parse_pstress("pstress=200 ; ISIF = 3  # PSTRESS = 9") == 200.0
    assert parse_pstress("ENCUT = 520\n# PSTRESS = 100") is None
    with pytest.raises(ValueError, match="INCAR_2: PSTRESS 'abc'"):
        parse_pstress("PSTRESS = abc", "INCAR_2")
    s = parse_outcar(outcar(-5.0, -4.0, pstress=300.0))
    assert (s.free_energy, s.enthalpy, s.pstress_kbar, s.is_relaxation) == (-5.0, -4.0, 300.0, True)
    assert s.finished and s.reached_accuracy and s.electronic_converged
    assert not parse_outcar(outcar(nelm=12, last_iters=(3, 12))).electronic_converged
    with pytest.raises(ValueError, match="TOTEN"):
        parse_outcar("nothing here")


def test_vasp_tree(tmp_path):
    src, url = vasp_tree(tmp_path / "calcs"), str(tmp_path / "s.zarr")
    report = ingest(str(src), url, source_type="vasp", workers=1, progress=False)
    store = CrystalStore.open(url)
    got = {r.id: r for r in store}
    assert sorted(got) == ["no_incar", "relaxed", "static"]
    relaxed = got["relaxed"]
    assert relaxed.pressure == 50.0  # 500 kBar
    assert relaxed.properties["energy"] == -10.8 and relaxed.properties["enthalpy"] == -9.9
    assert relaxed.properties["enthalpy_per_atom"] == pytest.approx(-4.95)
    assert relaxed.properties["pressure_origin"] == "INCAR PSTRESS"
    assert relaxed.properties["structure_file"] == "CONTCAR" and relaxed.properties["source_code"] == "vasp"
    assert relaxed.properties["source_path"].endswith("calcs/relaxed/CONTCAR")
    static = got["static"]  # single point: POSCAR is the final structure; no PSTRESS = 0 GPa; H = E
    assert static.pressure == 0.0 and static.properties["structure_file"] == "POSCAR"
    assert static.properties["pressure_origin"] == "INCAR default (no PSTRESS)"
    assert static.properties["enthalpy"] == static.properties["energy"] == -10.7
    no_incar = got["no_incar"]  # gzipped OUTCAR echoes PSTRESS; enthalpy = E + P V
    assert no_incar.pressure == 10.0 and no_incar.properties["pressure_origin"] == "OUTCAR PSTRESS"
    volume = abs(np.linalg.det(no_incar.lattice))
    assert no_incar.properties["enthalpy"] == pytest.approx(-10.6 + 10.0 * volume / 160.21766208)
    skipped = {s.id: s.reason for s in report.skipped}
    assert len(skipped) == 7 and report.read == 10 and report.written == 3
    assert skipped["killed"].startswith("unfinished run")
    assert skipped["unconverged"].startswith("unconverged ionic relaxation")
    assert skipped["scf_fail"].startswith("unconverged electronic steps")
    assert skipped["not_run"].startswith("no OUTCAR or vasprun.xml")
    assert skipped["bad_xml"].startswith("unreadable vasprun.xml")
    assert skipped["bad_incar"].startswith("unreadable INCAR") and "PSTRESS 'high'" in skipped["bad_incar"]
    assert skipped["only_poscar"].startswith("no final structure (only the unrelaxed POSCAR")
    assert sum(report.reasons().values()) == 7


def test_vasp_keep_unconverged_and_given_pressure(tmp_path):
    src = vasp_tree(tmp_path / "calcs")
    report = ingest(str(src), str(tmp_path / "a.zarr"), source_type="vasp", require_converged=False,
                    pressure=0.0, workers=1, progress=False)  # fmt: skip
    store = CrystalStore.open(str(tmp_path / "a.zarr"))
    flags = dict(zip(store.ids.tolist(), store.get_property("converged").tolist(), strict=True))
    assert flags == {"killed": 0.0, "scf_fail": 0.0, "static": 1.0, "unconverged": 0.0}
    skipped = {s.id: s.reason for s in report.skipped}
    assert skipped["relaxed"].startswith("pressure disagreement (INCAR PSTRESS says 50.0 GPa, given 0.0 GPa")
    assert skipped["no_incar"].startswith("pressure disagreement")


def test_vasp_errors(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no VASP calculation folder"):
        ingest(str(tmp_path / "empty"), str(tmp_path / "s.zarr"), source_type="vasp", progress=False)
    assert not (tmp_path / "s.zarr").exists()  # a bad source leaves no store behind
    with pytest.raises(ValueError, match="unknown source type 'vsap'"):
        ingest(str(tmp_path / "empty"), str(tmp_path / "s.zarr"), source_type="vsap", progress=False)
    with pytest.raises(ValueError, match="needs source type 'calypso'"):
        ingest(str(tmp_path / "empty"), str(tmp_path / "s.zarr"), source_type="vasp", keep_fraction=0.5)


def calypso_searches(root):
    files = {"input__dat": "SystemName = Si\nNumberOfSpecies = 1\nPSTRESS = 1000  # kBar\n"}
    for n, h in enumerate([-8.0, -9.0, -7.0, -9.5, -6.0], start=1):  # eV per 2-atom cell
        files[f"CONTCAR_{n}"] = POSCAR_SI
        files[f"OUTCAR_{n}"] = outcar(h - 1.0, h, pstress=1000.0)
    files["OUTCAR_5"] = outcar(-7.0, -6.0, pstress=1000.0, converged=False)
    files["POSCAR_6"] = POSCAR_SI  # generated, never relaxed
    files["CONTCAR_7"], files["OUTCAR_7"] = POSCAR_SI, outcar(-20.0, -19.0, pstress=500.0)  # other pressure
    _write(root / "Si_100GPa", **files)
    _write(root / "more" / "Si_20GPa", INCAR_1="PSTRESS = 100", INCAR_2="PSTRESS = 200\nIBRION = 2",
           CONTCAR_1=POSCAR_SI, OUTCAR_1=outcar(-10.0, -9.0, pstress=200.0))  # fmt: skip
    _write(root / "mixed", input__dat="PSTRESS = 1000", INCAR_1="PSTRESS = 500", CONTCAR_1=POSCAR_SI,
           OUTCAR_1=outcar())  # fmt: skip
    return root


def test_calypso_half_per_search(tmp_path):
    src, url = calypso_searches(tmp_path / "searches"), str(tmp_path / "c.zarr")
    report = ingest(str(src), url, source_type="calypso", keep_fraction=0.5, workers=1, progress=False)
    store = CrystalStore.open(url)
    got = {r.id: r for r in store}
    # 4 converged candidates in Si_100GPa: the lowest-enthalpy half (ceil(4 * 0.5) = 2) are 4 and 2
    assert sorted(got) == ["Si_100GPa/2", "Si_100GPa/4", "more/Si_20GPa/1"]
    assert got["Si_100GPa/4"].pressure == 100.0 and got["more/Si_20GPa/1"].pressure == 20.0
    assert got["Si_100GPa/4"].properties["pressure_origin"] == "CALYPSO input.dat PSTRESS"
    assert got["more/Si_20GPa/1"].properties["pressure_origin"] == "INCAR_2 PSTRESS"
    assert got["Si_100GPa/4"].properties["search_id"] == "Si_100GPa"
    assert got["Si_100GPa/4"].properties["source_code"] == "calypso+vasp"
    assert got["Si_100GPa/4"].properties["structure_file"] == "CONTCAR_4"
    reasons = report.reasons()
    assert reasons["outside the lowest-enthalpy fraction of its search"] == 2
    skipped = {s.id: s.reason for s in report.skipped}
    assert skipped["Si_100GPa/5"].startswith("unconverged ionic relaxation")
    assert skipped["Si_100GPa/6"].startswith("no OUTCAR or vasprun.xml")
    assert skipped["mixed/1"].startswith("pressure disagreement (input.dat PSTRESS 1000.0 kBar")
    assert skipped["Si_100GPa/7"].startswith(
        "pressure disagreement (CALYPSO input.dat PSTRESS 1000.0 kBar, OUTCAR"
    )
    assert report.read == 9 and report.written == 3 and len(report.skipped) == 6


def test_calypso_cli(tmp_path):
    src, url = calypso_searches(tmp_path / "searches"), str(tmp_path / "c.zarr")
    args = ["ingest", str(src), url, "--source-type", "calypso", "--no-progress", "--workers", "1"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "ingested 5 of 9" in result.output and "unconverged ionic relaxation" in result.output
    assert len(CrystalStore.open(url)) == 5
    again = CliRunner().invoke(app, args)  # rerun: everything is already there, nothing doubled
    assert again.exit_code == 0 and len(CrystalStore.open(url)) == 5
    bad = CliRunner().invoke(app, [*args[:3], "--source-type", "calypso", "--keep-fraction", "1.5"])
    assert bad.exit_code == 1 and "keep_fraction must be in (0, 1]" in bad.output
    empty = tmp_path / "empty"
    empty.mkdir()
    none = CliRunner().invoke(
        app, ["ingest", str(empty), str(tmp_path / "x.zarr"), "--source-type", "calypso"]
    )
    assert none.exit_code == 1 and "no CALYPSO search folder" in none.output


def test_vasprun_fallbacks(tmp_path):
    """vasprun.xml alone (pressure, energy, structure from it), and an empty CONTCAR beside an OUTCAR."""
    xml = (Path(__file__).parent / "files" / "vasprun_si.xml").read_text()
    _write(tmp_path / "calcs" / "xml_only", vasprun__xml=xml)
    _write(tmp_path / "calcs" / "empty_contcar", INCAR="PSTRESS = 300", CONTCAR="", OUTCAR=outcar(-10.6),
           vasprun__xml=xml)  # fmt: skip
    url = str(tmp_path / "s.zarr")
    report = ingest(str(tmp_path / "calcs"), url, source_type="vasp", workers=1, progress=False)
    assert report.written == 2, report.summary()
    got = {r.id: r for r in CrystalStore.open(url)}
    xml_only = got["xml_only"]
    assert xml_only.pressure == 30.0 and xml_only.properties["pressure_origin"] == "vasprun.xml PSTRESS"
    assert xml_only.properties["energy"] == -10.6 and xml_only.properties["structure_file"] == "vasprun.xml"
    np.testing.assert_allclose(np.abs(xml_only.lattice).max(), 2.6)  # the final, not the initial, cell
    empty = got["empty_contcar"]
    assert empty.properties["structure_file"] == "vasprun.xml" and empty.pressure == 30.0


def test_parallel_reading_matches_serial(tmp_path):
    """40 VASP folders and 40 CALYPSO searches, read in 2 processes: same records, same order, same skips."""
    for i in range(40):
        _write(tmp_path / "vasp" / f"c{i:02d}", INCAR=f"PSTRESS = {10 * i}", CONTCAR=POSCAR_SI,
               OUTCAR=outcar(-10.0 - i, converged=i % 7 != 0))  # fmt: skip
        out = {f"OUTCAR_{n}": outcar(-11.0 + n, pstress=10.0 * i) for n in (1, 2)}
        _write(tmp_path / "caly" / f"s{i:02d}", input__dat=f"PSTRESS = {10 * i}", CONTCAR_1=POSCAR_SI,
               CONTCAR_2=POSCAR_SI, **out)  # fmt: skip
    for kind, extra in (("vasp", {}), ("caly", {"keep_fraction": 0.5})):
        source_type = "vasp" if kind == "vasp" else "calypso"
        reports, tables = [], []
        for workers in (1, 2):
            url = str(tmp_path / f"{kind}{workers}.zarr")
            reports.append(ingest(str(tmp_path / kind), url, source_type=source_type, workers=workers,
                                  progress=False, **extra))  # fmt: skip
            tables.append(CrystalStore.open(url).read())
        assert tables[0].ids.tolist() == tables[1].ids.tolist() and len(tables[0]) > 0
        np.testing.assert_array_equal(tables[0].pressure, tables[1].pressure)
        assert reports[0].skipped == reports[1].skipped
    assert len(reports[0].skipped) == 40 and reports[0].written == 40  # one of two candidates per search
