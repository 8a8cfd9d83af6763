"""The xtal-data command line, through typer's CliRunner."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from typer.testing import CliRunner
from xtal_data import CrystalStore
from xtal_data.cli import app

from tests.xtal_data._helpers import CIF_NACL, POSCAR_SI

pytestmark = pytest.mark.torch_free
runner = CliRunner()


def _folder(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "nacl.cif").write_text(CIF_NACL)
    (src / "POSCAR").write_text(POSCAR_SI)
    (src / "bad.cif").write_text("data_bad\n")
    return src


def test_ingest_info_split_stats_export_curate(tmp_path):
    src, store = _folder(tmp_path), str(tmp_path / "s.zarr")
    result = runner.invoke(app, ["ingest", str(src), store, "--pressure", "3", "--workers", "1",
                                 "--no-progress", "--report", str(tmp_path / "skips.json")])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "ingested 2 of 3" in result.output and "skipped 1" in result.output
    assert json.loads((tmp_path / "skips.json").read_text())[0]["id"] == "bad"
    result = runner.invoke(app, ["info", store])
    assert result.exit_code == 0 and "structures: 2" in result.output and "ingest" in result.output
    result = runner.invoke(app, ["split", store, "--seed", "1", "--fractions", "0.5,0.5,0"])
    assert result.exit_code == 0 and "train 1, val 1, test 0" in result.output
    assert CrystalStore.open(store).split_names == ["random"]
    result = runner.invoke(app, ["stats", store, "--out", str(tmp_path / "fig")])
    assert result.exit_code == 0 and (tmp_path / "fig" / "elements.png").exists()
    result = runner.invoke(
        app, ["export", store, str(tmp_path / "out"), "--split", "random", "--part", "train"]
    )
    assert result.exit_code == 0 and len(list((tmp_path / "out").glob("*.cif"))) == 1
    result = runner.invoke(app, ["curate", store, str(tmp_path / "c.zarr"), "--no-dedup"])
    assert result.exit_code == 0 and "kept" in result.output
    assert len(CrystalStore.open(str(tmp_path / "c.zarr"))) >= 1


@pytest.mark.parametrize(
    "args, message",
    [
        (["info", "/nonexistent/store.zarr"], "no xtal-data store"),
        (["ingest", "/nonexistent.csv", "memory://cli-x"], "source not found"),
        (["split", "STORE", "--kind", "alphabetical"], "--kind must be"),
        (["split", "STORE", "--fractions", "a,b"], "--fractions must be"),
        (["export", "STORE", "OUT", "--format", "pdb"], "--format must be"),
        (["export", "STORE", "OUT", "--split", "nope"], "no split 'nope'"),
    ],
)
def test_bad_input_exits_non_zero_with_a_message(tmp_path, args, message):
    store = str(tmp_path / "s.zarr")
    runner.invoke(
        app, ["ingest", str(_folder(tmp_path)), store, "--pressure", "0", "--no-progress", "--workers", "1"]
    )
    result = runner.invoke(app, [store if a == "STORE" else a for a in args])
    assert result.exit_code == 1
    assert message in result.output  # CliRunner mixes stderr into output


def test_ingest_without_pressure_is_refused(tmp_path):
    result = runner.invoke(app, ["ingest", str(_folder(tmp_path)), str(tmp_path / "s.zarr"), "--no-progress"])
    assert result.exit_code == 1 and "--pressure" in result.output
    assert (
        not (tmp_path / "s.zarr" / "atoms").exists() or len(CrystalStore.open(str(tmp_path / "s.zarr"))) == 0
    )


def test_import_does_not_import_torch():
    modules = (
        "xtal_data, xtal_data.cli, xtal_data.curate, xtal_data.stats, xtal_data.splits, xtal_data.export, "
        "xtal_data.vasp, xtal_data.search_sources, xtal_data.pressure_build, xtal_data.relax_ase"
    )
    code = f"import sys, {modules}; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_export_and_verify_progress_bars_on_stderr_only_with_progress(tmp_path):
    src = _folder(tmp_path)
    store = str(tmp_path / "s.zarr")
    res = runner.invoke(app, ["ingest", str(src), store, "--pressure", "3", "--no-progress"])
    assert res.exit_code == 0, res.output
    for flag in ("--progress", "--no-progress"):
        cases = {
            "export: 100%|": ["export", store, str(tmp_path / f"cifs{flag}"), flag],
            "verify: 100%|": ["verify", store, flag],
        }
        for bar, args in cases.items():
            res = runner.invoke(app, args)
            assert res.exit_code == 0, res.output
            assert (bar in res.stderr) == (flag == "--progress"), res.stderr
            assert "|" not in res.stdout
    for path in (tmp_path / "cifs--progress").iterdir():
        assert "100%" not in path.read_text()
