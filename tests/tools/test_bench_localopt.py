"""Local-optimisation benchmark: tiny untrained model, EMT, 2 compositions x 2 pressures x 2 samples."""

from __future__ import annotations

import csv
import json
import math
import tomllib
from pathlib import Path

import numpy as np
import pytest
import torch
from cond_vae.checkpoint import save_checkpoint
from pymatgen.core import Composition, Lattice, Structure
from typer.testing import CliRunner
from xtal_eval.baselines import min_distance_ok
from xtal_tools.cli.benchmark import app as benchmark_app
from xtal_tools.evaluation.localopt import LocaloptSettings, run_localopt, split_compositions
from xtal_tools.evaluation.localopt_plots import SOURCES, relative_enthalpies, summarise, write_results
from xtal_tools.relaxation import RelaxSettings

from tests.cond_vae._helpers import tiny_model

PNG = b"\x89PNG\r\n\x1a\n"
FILES = ("rows.csv", "summary.json", "run.toml", "initial_pressure.png", "enthalpy_steps.png")
runner = CliRunner()


def invoke(args):
    return runner.invoke(benchmark_app, ["localopt", *args])


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> str:
    """Cu and Al fcc cells (1 and 2 atoms); the first four are the test part of split ``random``."""
    from xtal_data import CrystalRecord, CrystalStore

    records = []
    for i, (z, n, a) in enumerate(
        [(29, 1, 2.55), (13, 1, 2.86), (29, 2, 2.55), (29, 1, 2.6), (13, 1, 2.8), (13, 1, 2.9)]
    ):
        lattice = Lattice.from_parameters(a, a, a * n, 60, 60, 60).matrix
        frac = np.array([[0, 0, k / n] for k in range(n)], dtype=float)
        records.append(CrystalRecord(id=f"x{i}", atomic_numbers=np.full(n, z), frac_coords=frac,
                                     lattice=lattice, pressure=0.0).validate())  # fmt: skip
    path = str(tmp_path_factory.mktemp("data") / "metals.zarr")
    created = CrystalStore.create(path)
    created.append(records)
    created.write_split("random", {"train": np.array([4]), "val": np.array([5]), "test": np.arange(4)})
    return path


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    return save_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny", tiny_model(dtype=torch.float32))


ARGS = ["--limit", "2", "--pressures", "0,20", "--num", "2", "--calculator", "emt", "--max-steps", "15",
        "--levels", "3", "--seed", "3", "--device", "cpu", "--no-progress"]  # fmt: skip


@pytest.fixture(scope="module")
def run(store, checkpoint, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("localopt") / "run"
    res = invoke(["-k", str(checkpoint), "--data", store, "-o", str(out), *ARGS])
    assert res.exit_code == 0, res.output
    return out


def _rows(out: Path) -> list[dict]:
    with (out / "rows.csv").open() as fh:
        return list(csv.DictReader(fh))


def test_every_output_exists_and_counts_add_up(run):
    for name in FILES + ("relative_enthalpy.png",):
        assert (run / name).is_file(), name
    for name in ("initial_pressure.png", "enthalpy_steps.png", "relative_enthalpy.png"):
        assert (run / name).read_bytes()[:8] == PNG
    assert not list(run.glob(".*tmp*"))  # nothing half-written left behind
    rows, summary = _rows(run), json.loads((run / "summary.json").read_text())
    assert len(rows) == 2 * 2 * 2 * 3 == summary["n_structures"]
    assert summary["wall_s"] > 0 and summary["structures_per_s"] > 0 and summary["machine"]["cpu_count"]
    assert summary["versions"]["pyxtal"] != "not installed"
    assert (
        summary["settings"]["localopt"]["pressures"] == [0.0, 20.0]
        and len(summary["settings"]["targets"]) == 2
    )
    run_toml = tomllib.loads((run / "run.toml").read_text())
    assert "extrapolates" in run_toml["derived"]["warnings"][0]  # the tiny model knows 1.5-18 GPa
    for source in SOURCES:
        for p in ("0", "20"):
            s = summary["results"][source][p]
            sel = [r for r in rows if r["source"] == source and float(r["pressure_GPa"]) == float(p)]
            assert s["n"] == len(sel) == 4
            assert s["n_converged"] == sum(r["converged"] == "True" for r in sel)
            assert s["n_relaxed"] == sum(r["status"] == "relaxed" for r in sel)
            assert s["n_relaxed"] + sum(s["failures"].values()) == s["n"]
            assert 0 <= s["convergence_rate"] <= 1 and s["convergence_rate"] == s["n_converged"] / 4
            if s["n_relaxed"]:
                steps = [int(r["steps"]) for r in sel if r["status"] == "relaxed"]
                assert s["mean_steps"] == pytest.approx(np.mean(steps)) and max(steps) <= 15
                assert s["mean_rmsd_A"] >= 0


def test_random_twins_have_the_composition_and_the_generated_volume(run):
    rows = _rows(run)
    assert {r["formula"] for r in rows} <= {"Cu1", "Al1", "Cu2"}
    generated = {
        (r["formula"], r["pressure_GPa"], r["sample"]): r for r in rows if r["source"] == "generated"
    }
    for r in rows:
        twin = generated[(r["formula"], r["pressure_GPa"], r["sample"])]
        assert r["initial_volume_A3"] == twin["initial_volume_A3"]  # same cell volume as the generated one
        assert r["status"] in ("relaxed", "relax_failed", "not_made")
        if r["status"] == "relaxed":
            assert math.isfinite(float(r["enthalpy_per_atom_eV"]))
            assert math.isfinite(float(r["initial_pressure_GPa"]))


def test_library_run_with_a_stub_sampler_checks_volumes_and_relative_enthalpy(tmp_path):
    from ase.calculators.emt import EMT

    def sampler(formulas, pressures, *, num, seed):
        out = []
        for f in formulas:  # a fcc-like cell for Cu2, an invalid cell for the second sample of Al1
            lat = Lattice.cubic(2.3) if f == "Al1" else Lattice.from_parameters(2.6, 2.6, 5.2, 60, 60, 60)
            made = Structure(lat, [Composition(f).elements[0]] * int(Composition(f).num_atoms),
                             [[0, 0, k / 2] for k in range(int(Composition(f).num_atoms))])  # fmt: skip
            out.append([made, None if f == "Al1" else made.copy()][:num])
        return out

    settings = LocaloptSettings(pressures=(0.0, 10.0), num_per_target=2, seed=1,
                                relax=RelaxSettings(max_steps=20))  # fmt: skip
    result = run_localopt(sampler, [("Cu2", 24.0), ("Al1", 16.5)], settings, calculator=EMT(), progress=False)
    rows = result.rows
    assert len(rows) == 2 * 2 * 2 * 3
    invalid = [r for r in rows if r["formula"] == "Al1" and r["sample"] == 1]
    assert all(r["volume_from"] == "reference" and r["initial_volume_A3"] == 16.5 for r in invalid)
    assert [r["status"] for r in invalid if r["source"] == "generated"] == ["not_made"] * 2
    assert result.summary["generated"]["0"]["failures"] == {"invalid cell from the model": 1}
    cu = [r for r in rows if r["formula"] == "Cu2" and r["source"] == "generated"]
    assert all(r["initial_volume_A3"] == pytest.approx(2.6**3 * 2 / math.sqrt(2)) for r in cu)
    volumes = {"Cu2": 2.6**3 * 2 / math.sqrt(2), "Al1": 2.3**3}
    for r in rows:
        want = 16.5 if r["volume_from"] == "reference" else volumes[r["formula"]]
        assert r["initial_volume_A3"] == pytest.approx(want, rel=1e-9)
    relaxed = [r for r in rows if r["status"] == "relaxed"]
    for r in [r for r in relaxed if r["source"] == "generated"]:
        same = [q for q in relaxed if q["source"] != "generated" and q["formula"] == r["formula"]]
        best = min(q["enthalpy_per_atom_eV"] for q in same if q["pressure_GPa"] == r["pressure_GPa"])
        assert r["dH_vs_best_random_eV"] == pytest.approx(r["enthalpy_per_atom_eV"] - best)
    for (source, p), curves in result.curves.items():
        for c in curves:
            assert c[-1] == pytest.approx(0.0, abs=1e-12)  # relative to the relaxed enthalpy
        assert len(curves) == result.summary[source][f"{p:g}"]["n_relaxed"]
    summary = write_results(result, settings, tmp_path, meta={})
    assert summary["structures_per_s"] is None and summary["n_relaxed"] == 22  # two invalid cells not relaxed
    assert all((tmp_path / name).is_file() for name in FILES if name != "run.toml")


def test_random_baselines_made_in_the_run_obey_the_rule(run):
    from xtal_eval.baselines import pyxtal_random, uniform_random

    for r in _rows(run):
        if r["source"] == "generated" or r["status"] == "not_made":
            continue
        make = pyxtal_random if r["source"] == "pyxtal" else uniform_random
        s = make(
            r["formula"], float(r["initial_volume_A3"]), seed=int(r["seed"])
        )  # reproducible from the row
        assert s.composition == Composition(r["formula"]) and min_distance_ok(s)
        assert s.volume == pytest.approx(float(r["initial_volume_A3"]), rel=1e-9)


def test_summary_counts_failures_by_reason():
    rows = [
        {"source": "pyxtal", "pressure_GPa": 0.0, "status": "not_made", "reason": "no random structure: x",
         "converged": False, "steps": 0, "initial_pressure_GPa": math.nan, "rmsd_A": math.nan,
         "enthalpy_per_atom_eV": math.nan, "formula": "Cu1"},
        {"source": "pyxtal", "pressure_GPa": 0.0, "status": "relaxed", "reason": "", "converged": True,
         "steps": 4, "initial_pressure_GPa": 3.0, "rmsd_A": 0.1, "enthalpy_per_atom_eV": -1.0,
         "formula": "Cu1"},
        {"source": "generated", "pressure_GPa": 0.0, "status": "relaxed", "reason": "", "converged": False,
         "steps": 8, "initial_pressure_GPa": 1.0, "rmsd_A": 0.3, "enthalpy_per_atom_eV": -1.5,
         "formula": "Cu1",         "dH_vs_best_random_eV": math.nan},
    ]  # fmt: skip
    relative_enthalpies(rows)
    s = summarise(rows, [0.0])
    assert (
        s["pyxtal"]["0"]["failures"] == {"no random structure": 1}
        and s["pyxtal"]["0"]["convergence_rate"] == 0.5
    )
    g = s["generated"]["0"]
    assert g["convergence_rate"] == 0.0 and g["mean_steps"] == 8 and g["fraction_below_best_random"] == 1.0
    assert rows[2]["dH_vs_best_random_eV"] == pytest.approx(-0.5)
    assert s["uniform"]["0"]["n"] == 0 and s["uniform"]["0"]["convergence_rate"] is None


def test_split_compositions_distinct_seeded(store):
    all_ = split_compositions(store, limit=None)
    assert sorted(f for f, _ in all_) == ["Al1", "Cu1", "Cu2"]  # x3 repeats Cu1
    assert split_compositions(store, limit=2, seed=5) == split_compositions(store, limit=2, seed=5)
    cu2 = dict(all_)["Cu2"]
    assert cu2 == pytest.approx(2.55**2 * 5.1 / math.sqrt(2))
    with pytest.raises(KeyError, match="no part 'holdout'"):
        split_compositions(store, part="holdout")


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--pressures", "0,-5"], "--pressures"),
        (["--pressures", "0,abc"], "--pressures"),
        (["--calculator-args", "{bad"], "--calculator-args: not valid JSON"),
        (["--calculator", "nosuchmodule:calc"], "cannot import 'nosuchmodule'"),
        (["--part", "holdout"], "no part 'holdout'"),
        (["--optimizer", "lbfgs"], "unknown optimizer"),
    ],
)
def test_bad_input_exits_1_and_writes_nothing(extra, message, store, checkpoint, tmp_path):
    out = tmp_path / "out"
    res = invoke(["-k", str(checkpoint), "--data", store, "-o", str(out), *ARGS, *extra])
    assert res.exit_code == 1 and message in res.output, res.output
    assert not out.exists()


def test_missing_data_and_nonempty_out(checkpoint, store, tmp_path):
    res = invoke(["-k", str(checkpoint), "-o", str(tmp_path / "o"), *ARGS])
    assert res.exit_code == 1 and "--data STORE is required" in res.output
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep.txt").write_text("x")
    res = invoke(["-k", str(checkpoint), "--data", store, "-o", str(tmp_path / "full"), *ARGS])
    assert res.exit_code == 1 and "not empty" in res.output
