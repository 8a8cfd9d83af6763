"""The pressure dataset builder with ASE's EMT: results, failures, resume after a kill, CLI."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("ase")
from ase.build import bulk  # noqa: E402
from ase.calculators.emt import EMT  # noqa: E402
from typer.testing import CliRunner  # noqa: E402
from xtal_data import CrystalRecord, CrystalStore  # noqa: E402
from xtal_data.build_shards import assemble  # noqa: E402
from xtal_data.cli import app  # noqa: E402
from xtal_data.pressure_build import BuildConfig, build  # noqa: E402
from xtal_data.relax_ase import EV_PER_A3_PER_GPA, RelaxSettings  # noqa: E402

pytestmark = pytest.mark.torch_free
ROOT = Path(__file__).resolve().parents[2]


class SlowEMT(EMT):
    """EMT that takes 20 ms per call, so that a build can be killed in the middle."""

    def calculate(self, *args, **kwargs):
        time.sleep(0.02)
        super().calculate(*args, **kwargs)


def slow_emt():
    return SlowEMT()


def input_store(path: Path) -> str:
    """Five inputs: silicon, which EMT cannot compute (first: its failure must not spoil the others), and
    four metals EMT knows (rattled)."""
    records = []
    inputs = [("si", bulk("Si")), ("cu", bulk("Cu", "fcc", a=3.7)),
              ("cu4", bulk("Cu", "fcc", a=3.6, cubic=True)), ("al", bulk("Al", "fcc", a=4.1)),
              ("ni4", bulk("Ni", "fcc", a=3.5, cubic=True))]  # fmt: skip
    for name, atoms in inputs:
        atoms.rattle(0.03, seed=len(records))
        records.append(CrystalRecord.from_ase(atoms, id=name, pressure=0.0))
    store = CrystalStore.create(str(path))
    store.append(records)
    return str(path)


def test_build_emt(tmp_path):
    src = input_store(tmp_path / "in.zarr")
    config = BuildConfig((0, 25, 50.0), calculator="emt", shard_size=4, settings=RelaxSettings(fmax=0.02))
    report = build(src, tmp_path / "b", config, progress=False, shards_per_process=None)  # in this process
    assert report.done_before == 0 and report.ran == report.tasks == 15
    store = CrystalStore.open(str(tmp_path / "b" / "relaxed.zarr"))
    assert sorted(store.ids.tolist()) == sorted(
        f"{m}@{p}GPa" for m in ("cu", "cu4", "al", "ni4") for p in (0, 25, 50)
    )
    for record in store:
        props = record.properties
        volume = abs(np.linalg.det(record.lattice))
        assert props["enthalpy"] == pytest.approx(
            props["energy"] + record.pressure * volume * EV_PER_A3_PER_GPA
        )
        assert props["converged"] == 1.0 and props["steps"] > 0 and props["calculator"] == "emt"
        assert props["residual_pressure"] == pytest.approx(
            record.pressure, abs=1.0
        )  # relaxed at its pressure
        assert json.loads(props["calculator_settings"])["fmax"] == 0.02
    v = {r.id: abs(np.linalg.det(r.lattice)) / r.num_atoms for r in store}
    assert v["cu@0GPa"] > v["cu@25GPa"] > v["cu@50GPa"]  # compression
    failures = json.loads((tmp_path / "b" / "failures.json").read_text())
    assert sorted(f["id"] for f in failures) == ["si@0GPa", "si@25GPa", "si@50GPa"]
    assert all(f["reason"].startswith("NotImplementedError") for f in failures)
    assert report.assembled["failed"] == 3 and report.assembled["stored"] == 12
    again = build(src, tmp_path / "b", config, progress=False)  # finished: nothing runs again
    assert again.ran == 0 and again.done_before == 15
    with pytest.raises(ValueError, match="holds a different build.*pressures"):
        build(src, tmp_path / "b", BuildConfig((0, 10), calculator="emt", shard_size=4), progress=False)
    with pytest.raises(ValueError, match="pressures must be distinct"):
        BuildConfig((0, 0))


def test_resume_after_kill(tmp_path):
    """SIGKILL a two-process build mid-way; the rerun finishes it with every task once and nothing redone."""
    src, out = input_store(tmp_path / "in.zarr"), tmp_path / "b"
    spec = "tests.xtal_data.test_pressure_build:slow_emt"
    args = ["--pressures", "0,20,40", "--calculator", spec, "--shard-size", "1", "--no-progress"]
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    cmd = [sys.executable, "-m", "xtal_data.cli", "build-pressure", src, str(out), *args, "--workers", "2"]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, start_new_session=True)
    shards = out / "shards"
    deadline = time.time() + 120
    while time.time() < deadline and len(list(shards.glob("shard_*.json"))) < 3 and proc.poll() is None:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)  # the build and its workers, all at once
    proc.wait()
    before = {p.name: p.read_bytes() for p in shards.glob("shard_*.json")}
    assert 3 <= len(before) < 15, "the build was not killed mid-way"
    assert not (out / "relaxed.zarr").exists()
    with pytest.raises(ValueError, match="shards unfinished"):
        assemble(out)
    partial = assemble(out, partial=True)
    assert partial["finished"] == len(before) and not partial["complete"]

    runner = CliRunner()
    result = runner.invoke(app, ["build-pressure", src, str(out), *args])
    assert result.exit_code == 0, result.output
    assert f"{len(before)} before this run" in result.output
    for name, data in before.items():  # shards written before the kill were not redone
        assert (shards / name).read_bytes() == data
    assert not list(shards.glob("*.tmp*"))
    store = CrystalStore.open(str(out / "relaxed.zarr"))
    ids = store.ids.tolist()
    expected = {f"{m}@{p}GPa" for m in ("cu", "cu4", "al", "ni4") for p in (0, 20, 40)}
    assert len(ids) == len(set(ids)) == 12 and set(ids) == expected
    tasks = sorted(json.loads(p.read_text())["results"][0]["task"] for p in shards.glob("shard_*.json"))
    assert tasks == list(range(15))  # every task exactly once, failures (si) included
    assert len(json.loads((out / "failures.json").read_text())) == 3


def test_cli_errors(tmp_path):
    src = input_store(tmp_path / "in.zarr")
    runner = CliRunner()
    bad = runner.invoke(app, ["build-pressure", src, str(tmp_path / "b"), "--pressures", "0,x"])
    assert bad.exit_code == 1 and "--pressures must be comma-separated" in bad.output
    bad = runner.invoke(app, ["build-pressure", src, str(tmp_path / "b"), "--calculator", "nope"])
    assert bad.exit_code == 1 and "give 'module:factory'" in bad.output
    bad = runner.invoke(app, ["build-pressure", src, str(tmp_path / "c"), "--max-atoms", "0"])
    assert bad.exit_code == 1 and "no input structure left" in bad.output


def test_build_from_files(tmp_path):
    """Inputs from a folder of structure files: unreadable ones are counted in the manifest."""
    from ase.io import write

    folder = tmp_path / "files"
    folder.mkdir()
    write(folder / "POSCAR_cu", bulk("Cu", "fcc", a=3.7), format="vasp")
    (folder / "broken.cif").write_text("data_broken\n")
    config = BuildConfig((10, 20, 30), calculator="emt", shard_size=1)
    report = build(str(folder), tmp_path / "b", config, progress=False, shards_per_process=1)  # 3 processes
    assert report.assembled["stored"] == 3
    manifest = json.loads((tmp_path / "b" / "manifest.json").read_text())
    assert manifest["num_inputs"] == 1 and sum(manifest["inputs_unreadable"].values()) == 1
    ids = CrystalStore.open(str(tmp_path / "b" / "relaxed.zarr")).ids.tolist()
    assert ids == ["POSCAR_cu@10GPa", "POSCAR_cu@20GPa", "POSCAR_cu@30GPa"]


def test_collapse_guard():
    """A cell below min_volume_fraction x its hard-sphere volume fails at once with a clear reason."""
    from xtal_data.relax_ase import relax

    atoms = bulk("Cu", "fcc", a=3.6)
    bad = relax(atoms, EMT(), 0.0, RelaxSettings(min_volume_fraction=100.0))
    assert not bad.ok and bad.reason.startswith("CellCollapsed: cell collapsed to") and bad.steps == 0
    good = relax(atoms, EMT(), 0.0, RelaxSettings())
    assert good.ok and good.converged
    with pytest.raises(ValueError, match="min_volume_fraction"):
        RelaxSettings(min_volume_fraction=-1.0)
