"""Bad ingestion inputs (issue 17): a message naming the culprit, exit status 1, nothing left behind."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from typer.testing import CliRunner
from xtal_data import CrystalStore, ingest
from xtal_data.cli import app
from xtal_data.ingest import NothingIngestedError

from tests.xtal_data._helpers import CIF_NACL, POSCAR_SI, rock_salt

pytestmark = pytest.mark.torch_free
runner = CliRunner()

SYNTAX_ERROR = "data_x\n_cell_length_a 5\nloop_\n_atom_site_label 'unterminated\n"
UNKNOWN = CIF_NACL.replace("Na Na", "Xx Xx")
ZERO_VOLUME = CIF_NACL.replace("_cell_length_c 5.64", "_cell_length_c 0")
XYZ = 'Properties=species:S:1:pos:R:3 pbc="T T T"'


def _ingest(*args: str):
    return runner.invoke(app, ["ingest", *args, "--pressure", "0", "--workers", "1", "--no-progress"])


def _folder(tmp_path, **files: str):
    folder = tmp_path / "in"
    folder.mkdir()
    for name, text in files.items():
        (folder / name).write_text(text)
    return folder


@pytest.mark.parametrize(
    "files, reason",
    [
        ({"syntax.cif": SYNTAX_ERROR}, "1  malformed CIF"),
        ({"empty.cif": ""}, "1  empty CIF text"),
        ({"x1.cif": UNKNOWN, "x2.cif": UNKNOWN, "flat.cif": ZERO_VOLUME}, "2  unknown element 'Xx'"),
        ({}, "no records"),
    ],
)
def test_nothing_ingested_exits_1_with_counts_and_leaves_no_store(tmp_path, files, reason):
    store = tmp_path / "s.zarr"
    result = _ingest(str(_folder(tmp_path, **files)), str(store), "--report", str(tmp_path / "r.json"))
    assert result.exit_code == 1, result.output
    assert "error: nothing ingested from" in result.output and reason in result.output
    assert not store.exists()
    if files:
        assert (tmp_path / "r.json").exists()  # the skip report is still written


def test_nothing_ingested_into_an_existing_store_leaves_it_unchanged(tmp_path):
    url = str(tmp_path / "s.zarr")
    CrystalStore.create(url).append([rock_salt("a")])
    before = CrystalStore.open(url).attributes
    with pytest.raises(NothingIngestedError, match="unknown element 'Xx'") as info:
        ingest(str(_folder(tmp_path, **{"x.cif": UNKNOWN})), url, pressure=0.0, workers=1, progress=False)
    assert info.value.report.reasons() == {"unknown element 'Xx'": 1}
    assert CrystalStore.open(url).attributes == before  # not even a provenance entry


def test_reingesting_only_stored_ids_is_not_an_error(tmp_path):
    folder, url = _folder(tmp_path, **{"nacl.cif": CIF_NACL}), str(tmp_path / "s.zarr")
    assert _ingest(str(folder), url).exit_code == 0
    result = _ingest(str(folder), url)
    assert result.exit_code == 0 and "1  id already in store" in result.output


@pytest.mark.parametrize(
    "name, text, message",
    [
        ("xx.cif", UNKNOWN, "xx: structure 'xx': unknown element 'Xx'"),
        ("flat.cif", ZERO_VOLUME, "flat: zero or degenerate cell volume (0 Å^3 from a=5.64, b=5.64, c=0 Å)"),
        ("e.cif", "  \n", "e: empty CIF text"),
    ],
)
def test_skip_reasons_name_the_record_and_the_problem(tmp_path, name, text, message):
    result = _ingest(str(_folder(tmp_path, **{name: text, "ok.cif": CIF_NACL})), str(tmp_path / "s.zarr"))
    assert result.exit_code == 0 and message in result.output
    assert "atomic numbers" not in result.output and "malformed" not in result.output


@pytest.mark.parametrize(
    "header, message",
    [
        (f'Lattice="5 0 0 0 5 0 0 0 5" {XYZ} id=ok', None),
        (XYZ + " id=nolat", "structure 'nolat': periodic but has no lattice"),
        (f'Lattice="5 0 0 0 5 0 0 0 0" {XYZ} id=flat', "structure 'flat': zero or degenerate cell volume"),
        ('Lattice="5 0 0 0 5 0 0 0 5" Properties=species:S:1:pos:R:3 pbc="T T F" id=slab',
         "structure 'slab': not periodic in all three directions (pbc T T F)"),
    ],
)  # fmt: skip
def test_extxyz_pbc_and_lattice_messages(tmp_path, header, message):
    pytest.importorskip("ase")
    path = tmp_path / "a.extxyz"
    path.write_text(f"2\n{header}\nSi 0 0 0\nSi 1.3 1.3 1.3\n")
    result = _ingest(str(path), str(tmp_path / "s.zarr"))
    if message is None:
        assert result.exit_code == 0 and "ingested 1 of 1" in result.output
    else:
        assert result.exit_code == 1 and message in result.output and "not periodic" not in message[:20]
        assert not (tmp_path / "s.zarr").exists()


def test_existing_non_store_folder_or_file_is_refused_before_parsing(tmp_path):
    src = _folder(tmp_path, **{"nacl.cif": CIF_NACL})
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "notes.txt").write_text("mine")
    result = _ingest(str(src), str(tmp_path / "taken"))
    assert result.exit_code == 1
    message = "taken is an existing folder that is not an xtal-data store; choose a new store path"
    assert message in result.output
    assert "overwrite=True" not in result.output
    assert os.listdir(tmp_path / "taken") == ["notes.txt"]
    (tmp_path / "file.zarr").write_text("x")
    result = _ingest(str(src), str(tmp_path / "file.zarr"))
    assert result.exit_code == 1 and "existing file that is not an xtal-data store" in result.output
    (tmp_path / "empty").mkdir()  # an empty folder is fine
    assert _ingest(str(src), str(tmp_path / "empty")).exit_code == 0


def test_curate_into_an_existing_store_is_refused_before_the_work(tmp_path):
    url = str(tmp_path / "s.zarr")
    CrystalStore.create(url).append([rock_salt("a")])
    result = runner.invoke(app, ["curate", url, url, "--no-dedup"])
    assert result.exit_code == 1 and "a store already exists at" in result.output
    assert "overwrite=True" not in result.output


def test_max_atoms_skips_large_structures_by_reason(tmp_path):
    src = _folder(tmp_path, **{"nacl.cif": CIF_NACL, "POSCAR": POSCAR_SI})
    result = _ingest(str(src), str(tmp_path / "s.zarr"), "--max-atoms", "4")
    assert result.exit_code == 0 and "ingested 1 of 2" in result.output
    assert "1  more atoms than the ingestion limit" in result.output and "(8 > 4;" in result.output
    report = ingest(str(src), "memory://max-atoms", pressure=0.0, workers=1, progress=False)
    assert report.written == 2  # default limit (1000 atoms)
    with pytest.raises(NothingIngestedError, match="more atoms than the ingestion limit"):
        ingest(str(src), str(tmp_path / "t.zarr"), pressure=0.0, workers=1, progress=False, max_atoms=1)
    assert not (tmp_path / "t.zarr").exists()


def test_csv_skip_summary_shows_real_numbers(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text(f'material_id,cif\nok,"{CIF_NACL}"\nshort\n')
    result = _ingest(str(path), str(tmp_path / "s.zarr"))
    assert result.exit_code == 0 and "1  wrong number of CSV fields" in result.output
    assert "(row 2 has 1 fields, header has 2)" in result.output and "#" not in result.output


def test_report_into_a_missing_folder_is_refused_before_ingesting(tmp_path):
    src = _folder(tmp_path, **{"nacl.cif": CIF_NACL})
    result = _ingest(str(src), str(tmp_path / "s.zarr"), "--report", str(tmp_path / "no" / "r.json"))
    assert result.exit_code == 1 and "--report" in result.output and not (tmp_path / "s.zarr").exists()


def test_export_refuses_to_overwrite_unless_asked(tmp_path):
    url = str(tmp_path / "s.zarr")
    CrystalStore.create(url).append([rock_salt("a")])
    out = tmp_path / "out"
    out.mkdir()
    (out / "a.cif").write_text("mine")
    result = runner.invoke(app, ["export", url, str(out)])
    assert result.exit_code == 1 and "a.cif" in result.output and "--overwrite" in result.output
    assert (out / "a.cif").read_text() == "mine"
    assert runner.invoke(app, ["export", url, str(out), "--overwrite"]).exit_code == 0
    assert "_cell_length_a" in (out / "a.cif").read_text()
    xyz = tmp_path / "a.extxyz"
    xyz.write_text("mine")
    result = runner.invoke(app, ["export", url, str(xyz), "--format", "extxyz"])
    assert result.exit_code == 1 and "already exists" in result.output and xyz.read_text() == "mine"


def test_version():
    from xtal_data import __version__

    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and result.output.strip() == f"xtal-data {__version__}"


def test_closed_output_pipe_ends_quietly(tmp_path):
    url = str(tmp_path / "s.zarr")
    CrystalStore.create(url).append([rock_salt("a")])
    code = "import sys; from xtal_data.cli import app; sys.argv[0] = 'xtal-data'; app()"
    proc = subprocess.Popen(
        [sys.executable, "-c", code, "info", url], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    proc.stdout.close()  # like `| head` exiting before the first line
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) != 0
    assert "Broken pipe" not in err and "Traceback" not in err and "Exception ignored" not in err, err
