"""``tools/csp`` end to end: tiny untrained checkpoint, cheap EMT relaxation, every bad input."""

from __future__ import annotations

import csv
import json
import math
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import torch
from ase.calculators.calculator import all_changes
from ase.calculators.emt import EMT
from cond_vae.checkpoint import save_checkpoint
from pymatgen.core import Composition, Structure
from typer.testing import CliRunner
from xtal_eval import PRESETS, structure_valid
from xtal_tools.cli.csp import app

from tests.cond_vae._helpers import tiny_model

ROOT = Path(__file__).resolve().parents[2]
runner = CliRunner()
FAST = ["--levels", "3", "--seed", "3", "--device", "cpu", "--no-progress"]
EMT_ARGS = ["--calculator", "emt", "--max-steps", "40"]


class FailingEMT(EMT):
    """EMT raising for the structures whose ``atoms.info["csp_id"]`` is in ``fail_on`` ("all": every one)."""

    def __init__(self, fail_on=(), **kwargs):
        super().__init__(**kwargs)
        self.fail_on = set(fail_on)

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        cid = atoms.info.get("csp_id") if atoms is not None else None
        if cid in self.fail_on or "all" in self.fail_on:
            raise RuntimeError(f"calculator refuses {cid}")
        super().calculate(atoms, list(properties), system_changes)


def failing_emt(fail_on=()):
    return FailingEMT(fail_on=fail_on)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    return save_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny", tiny_model(dtype=torch.float32))


def _table(out: Path) -> list[dict]:
    with (out / "candidates.csv").open() as fh:
        return list(csv.DictReader(fh))


@pytest.fixture(scope="module")
def emt_run(checkpoint, tmp_path_factory) -> tuple[Path, str]:
    """Cu, 2-4 formula units, 10 GPa, 8 samples, EMT refusing sample s3."""
    out = tmp_path_factory.mktemp("csp") / "run"
    calc = [
        "--calculator",
        "tests.tools.test_csp_cli:failing_emt",
        "--calculator-args",
        '{"fail_on": ["s3"]}',
    ]
    args = ["-k", str(checkpoint), "-f", "Cu", "-u", "2-4", "-p", "10", "-n", "8", "-o", str(out)]
    res = runner.invoke(app, [*args, *calc, "--max-steps", "40", *FAST])
    assert res.exit_code == 0, res.output
    assert [p.name for p in out.iterdir()] == ["10GPa"]  # one layout for one pressure or several
    return out / "10GPa", res.output


def test_ranked_unique_valid_structures_sorted_by_enthalpy(emt_run):
    out, output = emt_run
    rows = _table(out)
    assert len(rows) == 8 and {r["id"] for r in rows} == {f"s{i}" for i in range(8)}
    ranked = [r for r in rows if r["status"] == "ranked"]
    assert [int(r["rank"]) for r in ranked] == list(range(1, len(ranked) + 1))
    h = [float(r["enthalpy_per_atom_eV"]) for r in ranked]
    assert h == sorted(h) and all(math.isfinite(x) for x in h)
    cifs = sorted((out / "ranked").glob("*.cif"))
    assert [p.relative_to(out).as_posix() for p in cifs] == [r["cif"] for r in ranked]
    structures = [Structure.from_file(p) for p in cifs]
    assert all(structure_valid(s) for s in structures)
    matcher = PRESETS["paper"].matcher()
    for i in range(len(structures)):
        for j in range(i + 1, len(structures)):
            assert not matcher.fit(structures[i], structures[j]), (cifs[i].name, cifs[j].name)
    for r, s in zip(ranked, structures, strict=True):
        # the CIF holds the conventional standard cell: same reduced formula and (up to the idealised
        # lattice) volume per atom as the relaxed cell the table describes
        assert Composition(r["formula"]).reduced_formula == s.composition.reduced_formula
        assert r["spacegroup"].replace("/", "_") in Path(r["cif"]).name
        assert math.isclose(float(r["volume_per_atom_A3"]), s.volume / len(s), rel_tol=0.02)
        assert float(r["rmsd_A"]) >= 0 and int(r["steps"]) >= 0 and r["converged"] in ("True", "False")
    assert f"{len(ranked)} unique structure(s) ranked from 8 samples" in output


def test_duplicates_point_at_a_lower_enthalpy_rank(emt_run):
    rows = _table(emt_run[0])
    h_of_rank = {int(r["rank"]): float(r["enthalpy_per_atom_eV"]) for r in rows if r["status"] == "ranked"}
    dups = [r for r in rows if r["status"] == "duplicate"]
    assert dups, "Cu cells relaxed with EMT should repeat (fcc/hcp) among 8 samples"
    for d in dups:
        assert float(d["enthalpy_per_atom_eV"]) >= h_of_rank[int(d["duplicate_of"])]
        assert d["rank"] == "" and d["cif"] == ""


def test_a_refused_structure_is_kept_marked_and_the_run_goes_on(emt_run):
    out, output = emt_run
    (bad,) = [r for r in _table(out) if r["id"] == "s3"]
    assert bad["status"] == "relax_failed"
    assert bad["reason"] == "RuntimeError: calculator refuses s3"
    assert bad["enthalpy_per_atom_eV"] == "" and bad["rank"] == ""
    assert Structure.from_file(out / bad["cif"]).composition.formula.replace(" ", "") == bad["formula"]
    assert "1 relaxation failures" in output


def test_json_plot_and_run_record(emt_run):
    out, _ = emt_run
    data = json.loads((out / "candidates.json").read_text())
    assert data["pressure_GPa"] == 10.0 and data["cell_formulas"] == ["Cu2", "Cu3", "Cu4"]
    assert sum(data["counts"].values()) == 8 == len(data["candidates"])
    assert data["counts"]["relax_failed"] == 1
    assert (out / "enthalpy.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    toml = (out / "run.toml").read_text()
    assert 'status = "completed"' in toml and "fmax = 0.05" in toml and "ase =" in toml
    assert not (out / ".staging").exists()


def test_no_relax_ranks_samples_in_sample_order(checkpoint, tmp_path):
    out = tmp_path / "out"
    res = runner.invoke(app, ["-k", str(checkpoint), "-f", "Si2O4", "-p", "0", "-n", "4", "-o", str(out),
                              "--no-relax", *FAST])  # fmt: skip
    assert res.exit_code == 0, res.output
    out = out / "0GPa"
    rows = _table(out)
    assert all(r["enthalpy_per_atom_eV"] == "" and r["converged"] == "" for r in rows)
    ranked = [r for r in rows if r["status"] == "ranked"]
    assert ranked and [r["id"] for r in ranked] == sorted(r["id"] for r in ranked)
    assert (out / "enthalpy.png").exists() and "enabled = false" in (out / "run.toml").read_text()


def test_same_seed_same_table_and_overwrite_replaces_the_result(checkpoint, tmp_path):
    args = ["-k", str(checkpoint), "-f", "Si", "-u", "2-3", "-p", "5", "-n", "3", "--no-relax", *FAST]
    tables = []
    for name in ("a", "b", "b"):
        res = runner.invoke(app, [*args, "-o", str(tmp_path / name), "--overwrite"])
        assert res.exit_code == 0, res.output
        tables.append((tmp_path / name / "5GPa" / "candidates.csv").read_text())
    assert tables[0] == tables[1] == tables[2]
    res = runner.invoke(app, [*args, "-o", str(tmp_path / "a")])
    assert res.exit_code == 1 and "not empty" in res.output


def test_every_structure_refused_writes_the_table_and_exits_non_zero(checkpoint, tmp_path):
    out = tmp_path / "out"
    calc = [
        "--calculator",
        "tests.tools.test_csp_cli:failing_emt",
        "--calculator-args",
        '{"fail_on": ["all"]}',
    ]
    res = runner.invoke(
        app, ["-k", str(checkpoint), "-f", "Cu2", "-p", "0", "-n", "2", "-o", str(out), *calc, *FAST]
    )
    assert res.exit_code == 1 and "no structure survived" in res.output
    assert {r["status"] for r in _table(out / "0GPa")} <= {"relax_failed", "invalid_cell"}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-f", "Xx2O", "-p", "1"], "unknown element 'Xx'"),
        (["-f", "Xx", "-u", "2", "-p", "1"], "unknown element 'Xx'"),
        (["-f", "", "-p", "1"], "empty formula"),
        (["-f", "  ", "-u", "2", "-p", "1"], "empty formula"),
        (["-f", "C200", "-p", "1"], "more than the model supports"),
        (["-f", "SiO2", "-u", "2-10", "-p", "1"], "'Si9O18': 27 atoms, more than the model supports"),
        (["-f", "SiO2", "-u", "4-2", "-p", "1"], "need 1 <= A <= B"),
        (["-f", "SiO2", "-u", "two", "-p", "1"], "expected N, A-B"),
        (["-f", "SiO2", "-p", "nan"], "must be finite"),
        (["-f", "SiO2", "-p", "-3"], "negative"),
        (["-f", "SiO2", "-p", "1e9"], "beyond any physical sense"),
        (["-f", "SiO2", "-p", "high"], "not a number"),
        (["-f", "SiO2", "-p", "0,high"], "not a number"),
        (["-f", "SiO2", "-p", "0,-5"], "negative"),
        (["-f", "SiO2", "-p", "10,10"], "a pressure is repeated"),
        (["-f", "SiO2", "-p", ","], "--pressure: empty"),
        (["-f", "SiO2", "-p", "1", "--calculator", "no_such_module:calc"], "cannot import 'no_such_module'"),
        (["-f", "SiO2", "-p", "1", "--calculator", "ase"], "give 'module:factory'"),
        (["-f", "SiO2", "-p", "1", "--calculator", "ase.calculators.emt:Nope"], "has no attribute 'Nope'"),
        (["-f", "SiO2", "-p", "1", "--calculator-args", "{bad"], "--calculator-args: not valid JSON"),
        (["-f", "SiO2", "-p", "1", "--optimizer", "lbfgs"], "unknown optimizer"),
        (["-f", "SiO2", "-p", "1", "--preset", "loose"], "preset 'loose'"),
    ],
)
def test_bad_input_fails_clearly_and_writes_nothing(checkpoint, tmp_path, args, message):
    out = tmp_path / "out"
    res = runner.invoke(app, ["-k", str(checkpoint), "-o", str(out), *EMT_ARGS, *args, *FAST])
    assert res.exit_code == 1, res.output
    assert message in res.output
    assert not out.exists()


def test_several_pressures_run_one_job_each_into_sub_folders(checkpoint, tmp_path):
    out = tmp_path / "run"
    args = ["-k", str(checkpoint), "-f", "Cu", "-u", "2", "-p", "10,25", "-n", "3", "-o", str(out)]
    res = runner.invoke(app, [*args, *EMT_ARGS, *FAST])
    assert res.exit_code == 0, res.output
    assert sorted(p.name for p in out.iterdir()) == ["10GPa", "25GPa"]
    records = {}
    for sub, p in (("10GPa", 10.0), ("25GPa", 25.0)):
        records[p] = tomllib.loads((out / sub / "run.toml").read_text())
        assert records[p]["run"]["status"] == "completed"
        assert records[p]["csp"]["pressures"] == [p]  # --config of this run.toml repeats this job
        assert len(_table(out / sub)) == 3
    assert "10 GPa:" in res.output and "25 GPa:" in res.output
    # the tiny model was fitted on pressures in about [1.5, 18] GPa: 25 GPa is flagged, once, and only
    # the 25 GPa run records the warning
    assert res.output.count("warning: pressure 25 GPa is outside the range this model was trained on") == 1
    assert records[25.0]["derived"]["warnings"] and not records[10.0]["derived"].get("warnings")
    meta = json.loads((out / "10GPa" / "candidates.json").read_text())
    assert "extrapolates" not in json.dumps(meta)


def test_unwritable_output_folder_and_missing_checkpoint(checkpoint, tmp_path, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    res = runner.invoke(
        app, ["-k", str(checkpoint), "-f", "Cu2", "-p", "1", "-o", str(blocker / "out"), *EMT_ARGS, *FAST]
    )
    assert res.exit_code == 1 and "cannot create it" in res.output
    res = runner.invoke(
        app, ["-k", str(checkpoint), "-f", "Cu2", "-p", "1", "-o", str(blocker), *EMT_ARGS, *FAST]
    )
    assert res.exit_code == 1 and "not a directory" in res.output
    res = runner.invoke(
        app, ["-k", str(tmp_path / "nope"), "-f", "Cu2", "-p", "1", "-o", str(tmp_path / "o"), *FAST]
    )
    assert res.exit_code == 1 and "is not a directory" in res.output and not (tmp_path / "o").exists()
    # an installation without the default model (e.g. a slimmed wheel)
    monkeypatch.setattr("xtal_tools.checkpoints.DEFAULT_CHECKPOINT", None)
    res = runner.invoke(app, ["-f", "Cu2", "-p", "1", "-o", str(tmp_path / "o"), *FAST])
    assert res.exit_code == 1 and "no checkpoint given" in res.output


@pytest.mark.slow
def test_default_calculator_is_chgnet(checkpoint, tmp_path):
    pytest.importorskip("chgnet")
    out = tmp_path / "out"
    args = ["-k", str(checkpoint), "-f", "SiO2", "-u", "1", "-p", "10", "-n", "2", "-o", str(out)]
    res = runner.invoke(app, [*args, "--max-steps", "5", *FAST])
    assert res.exit_code == 0, res.output
    out = out / "10GPa"
    rows = _table(out)
    assert len(rows) == 2 and any(r["status"] == "ranked" for r in rows)
    assert all(int(r["steps"]) <= 5 for r in rows if r["status"] in ("ranked", "duplicate"))
    toml = (out / "run.toml").read_text()
    assert 'calculator = "chgnet"' in toml


def test_script_runs_from_a_checkout():
    res = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "csp"), "--help"], capture_output=True, text=True
    )
    assert res.returncode == 0 and "--formula-units" in res.stdout and "--calculator" in res.stdout


def test_enthalpy_above_lowest_column_and_space_groups_agree_with_pymatgen(emt_run):
    from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

    out = emt_run[0]
    ranked = [r for r in _table(out) if r["status"] == "ranked"]
    h0 = float(ranked[0]["enthalpy_per_atom_eV"])
    for r in ranked:
        above = float(r["enthalpy_above_lowest_meV_per_atom"])
        assert math.isclose(above, 1000 * (float(r["enthalpy_per_atom_eV"]) - h0), abs_tol=1e-9)
        s = Structure.from_file(out / r["cif"])
        sga = SpacegroupAnalyzer(s, symprec=0.1)  # what a pymatgen user gets at the same tolerance
        assert (r["spacegroup"], int(r["spacegroup_number"])) == (
            sga.get_space_group_symbol(),
            sga.get_space_group_number(),
        )
        # ... and what the file itself declares: its space group and operations, not P1
        text = (out / r["cif"]).read_text()
        assert f"_symmetry_space_group_name_H-M   {r['spacegroup']}\n" in text
        assert f"_symmetry_Int_Tables_number   {r['spacegroup_number']}\n" in text
        assert r["cif_cell"] == "conventional" and r["reason"] == ""
    assert any(int(r["spacegroup_number"]) > 1 for r in ranked), "EMT-relaxed Cu cells have symmetry"
    assert float(ranked[0]["enthalpy_above_lowest_meV_per_atom"]) == 0.0


def test_the_real_command_says_an_extrapolation_warning_once(checkpoint, tmp_path):
    """Through tools/csp itself (its tidy warnings): the pressure note is printed once, not again by the
    sampler underneath."""
    args = [sys.executable, str(ROOT / "tools" / "csp"), "-k", str(checkpoint), "-f", "Cu", "-u", "2",
            "-p", "25", "-n", "1", "--no-relax", "-o", str(tmp_path / "out"), *FAST]  # fmt: skip
    env = {**__import__("os").environ, "OMP_NUM_THREADS": "1"}
    res = subprocess.run(args, capture_output=True, text=True, timeout=600, env=env)
    assert res.returncode == 0, res.stderr
    assert res.stderr.count("warning: pressure 25 GPa is outside the range this model was trained on") == 1


def test_ranked_cifs_read_back_as_the_relaxed_structures(checkpoint, tmp_path):
    """The symmetrised CIF of each ranked structure matches that structure as relaxed (any cell): the
    same run through the library, whose candidates carry the relaxed structures."""
    from cond_vae.sampling import SamplerConfig
    from pymatgen.analysis.structure_matcher import StructureMatcher
    from xtal_tools.checkpoints import open_model
    from xtal_tools.prediction import PredictConfig, predict
    from xtal_tools.relaxation import RelaxConfig

    model = open_model(str(checkpoint), device="cpu").model
    config = PredictConfig(
        checkpoint=str(checkpoint), formula="Cu", formula_units=(2, 4), num=4, seed=3,
        sampler=SamplerConfig(levels=3), relax=RelaxConfig(calculator="emt", max_steps=40),
    )  # fmt: skip
    _, ranked = predict(model, ["Cu2", "Cu4"], EMT(), config, 10.0, tmp_path, progress=False)
    rows = {r["id"]: r for r in _table(tmp_path)}
    assert ranked
    for c in ranked:
        row = rows[c.id]
        back = Structure.from_file(tmp_path / row["cif"])
        assert row["cif_cell"] == "conventional"
        assert StructureMatcher(scale=False, attempt_supercell=True).fit(back, c.final), row["cif"]
        assert math.isclose(float(row["volume_per_atom_A3"]), c.final.volume / len(c.final), rel_tol=1e-6)
