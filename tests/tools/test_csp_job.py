"""The CSP library pieces: formula units, relaxation under pressure, ranking and de-duplication, writing."""

from __future__ import annotations

import csv
import math

import numpy as np
import pytest
from ase.build import bulk
from ase.calculators.calculator import Calculator, all_changes
from ase.calculators.emt import EMT
from cond_vae import SampledStructure
from pymatgen.core import Lattice, Structure
from xtal_graph import Crystal
from xtal_tools.prediction.job import (
    Candidate,
    PredictConfig,
    cell_formulas,
    parse_formula_units,
    rank_candidates,
    relax_samples,
)
from xtal_tools.prediction.report import write_results
from xtal_tools.relaxation import EV_PER_A3_PER_GPA, RelaxSettings, load_calculator, relax


def test_formula_units():
    assert parse_formula_units("4") == (4,)
    assert parse_formula_units("2-4") == (2, 3, 4)
    assert parse_formula_units("4, 1,2-3") == (1, 2, 3, 4)
    for bad in ("0", "3-1", "", "a-b", "2-"):
        with pytest.raises(ValueError, match="formula units"):
            parse_formula_units(bad)


def test_cell_formulas():
    assert cell_formulas("SiO2", (2, 4), max_atoms=20) == ["Si2O4", "Si4O8"]
    assert cell_formulas("Si4O8", None, max_atoms=20) == ["Si4O8"]
    assert cell_formulas("(H2O)2", (1,), max_atoms=20) == ["H4O2"]
    with pytest.raises(ValueError, match="'Si7O14': 21 atoms"):
        cell_formulas("SiO2", (6, 7), max_atoms=20)
    with pytest.raises(ValueError, match="unknown element 'Qq'"):
        cell_formulas("Qq", (1,), max_atoms=20)


def _rattled_cu(seed: int = 0):
    atoms = bulk("Cu", "fcc", a=3.7, cubic=True)
    atoms.rattle(0.05, seed=seed)
    return atoms


@pytest.mark.parametrize("pressure", [0.0, 30.0])
def test_relaxation_reaches_the_pressure_and_reports_enthalpy(pressure):
    settings = RelaxSettings(fmax=0.01, max_steps=300)
    res = relax(_rattled_cu(), EMT(), pressure, settings)
    assert res.ok and res.converged and 0 < res.steps < 300
    p = pressure * EV_PER_A3_PER_GPA  # eV/Å^3
    volume = res.atoms.get_volume()
    assert res.enthalpy == pytest.approx(res.energy + p * volume, rel=1e-12)
    check = res.atoms.copy()
    check.calc = EMT()
    stress = check.get_stress()  # ASE sign: -P at equilibrium under an external pressure P
    # the cell criterion is |V (sigma + P)| / N < fmax, so the mean stress is within fmax N / V of -P
    assert abs(stress[:3].mean() + p) < settings.fmax * len(check) / volume
    assert np.abs(check.get_forces()).max() < settings.fmax


def test_higher_pressure_gives_a_smaller_cell():
    volumes = [
        relax(_rattled_cu(), EMT(), p, RelaxSettings(max_steps=200)).atoms.get_volume() for p in (0.0, 50.0)
    ]
    assert volumes[1] < 0.95 * volumes[0]


class _NaNCalculator(Calculator):
    implemented_properties = ["energy", "forces", "stress"]

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        n = len(self.atoms)
        self.results = {"energy": math.nan, "forces": np.zeros((n, 3)), "stress": np.zeros(6)}


def test_calculator_errors_become_failed_results():
    res = relax(_rattled_cu(), _NaNCalculator(), 0.0, RelaxSettings())
    assert not res.ok and res.reason == "non-finite energy or positions" and math.isnan(res.enthalpy)
    with pytest.raises(ValueError, match="unknown optimizer"):
        RelaxSettings(optimizer="lbfgs")
    with pytest.raises(ValueError, match="unknown cell filter"):
        RelaxSettings(cell_filter="cubic")
    with pytest.raises(ValueError, match="--pressure: pressure -1.0 GPa is negative"):
        PredictConfig(formula="Cu", pressures=(0.0, -1.0)).check()  # a TOML request's pressures too
    with pytest.raises(ValueError, match="not an ASE calculator"):
        load_calculator("builtins:dict")


def _cu(a: float, kind: str = "fcc") -> Structure:
    if kind == "fcc":
        return Structure(
            Lattice.cubic(a), ["Cu"] * 4, [[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]]
        )
    return Structure(Lattice.cubic(a), ["Cu"] * 2, [[0, 0, 0], [0.5, 0.5, 0.5]])


def _cand(cid: str, structure: Structure, h: float) -> Candidate:
    formula = structure.composition.formula.replace(" ", "")
    return Candidate(
        cid, formula, "ranked", initial=structure, final=structure,
        energy_per_atom=h, enthalpy_per_atom=h, rmsd=0.0, converged=True,
    )  # fmt: skip


def test_rank_keeps_the_lowest_enthalpy_member_of_each_group():
    cands = [
        _cand("s0", _cu(3.60), -0.10),
        _cand("s1", _cu(2.90, "bcc"), -0.20),
        _cand("s2", _cu(3.61), -0.30),  # same fcc as s0, lower enthalpy: it represents the group
        Candidate("s3", "Cu4", "invalid_cell", reason="volume_too_small"),
        _cand("s4", _cu(3.62), -0.05),
    ]
    out = rank_candidates(cands, preset="paper")
    by_id = {c.id: c for c in out}
    assert [(c.id, c.rank, c.status) for c in out[:2]] == [("s2", 1, "ranked"), ("s1", 2, "ranked")]
    assert (by_id["s0"].status, by_id["s0"].duplicate_of) == ("duplicate", 1)
    assert (by_id["s4"].status, by_id["s4"].duplicate_of) == ("duplicate", 1)
    assert by_id["s3"].status == "invalid_cell" and len(out) == 5
    assert (by_id["s2"].spacegroup, by_id["s2"].spacegroup_number) == ("Fm-3m", 225)
    assert (by_id["s1"].spacegroup, by_id["s1"].spacegroup_number) == ("Im-3m", 229)
    plain = rank_candidates(cands, dedupe=False)
    assert [c.id for c in plain if c.status == "ranked"] == ["s2", "s1", "s0", "s4"]


def test_invalid_sampled_cells_are_reported_and_written(tmp_path):
    crystal = Crystal(
        atom_types=np.array([29, 29]), frac_coords=np.array([[0.0, 0, 0], [0.5, 0.5, 0.5]]),
        lattice=np.eye(3) * 2.9, properties={"pressure": 0.0}, id="0-0",
    )  # fmt: skip
    samples = [
        SampledStructure(0, 0, "Cu2", {"pressure": 0.0}, crystal, ""),
        SampledStructure(1, 0, "Cu2", {"pressure": 0.0}, None, "angle_out_of_range: alpha 200"),
    ]
    cands = rank_candidates(relax_samples(samples, EMT(), RelaxSettings(max_steps=50), progress=False))
    assert [c.status for c in cands] == ["ranked", "invalid_cell"]
    assert cands[1].reason == "angle_out_of_range: alpha 200" and cands[0].rmsd >= 0
    paths = write_results(cands, tmp_path, meta={"formula": "Cu2"}, title="Cu2")
    assert "failed" not in paths and (tmp_path / "enthalpy.png").exists()
    with (tmp_path / "candidates.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert [(r["id"], r["status"], r["reason"]) for r in rows] == [
        ("s0", "ranked", ""),
        ("s1", "invalid_cell", "angle_out_of_range: alpha 200"),
    ]
    assert rows[0]["cif"] == "ranked/001_Cu2_Im-3m_229.cif" and (tmp_path / rows[0]["cif"]).exists()


class _FlatCalculator(Calculator):
    """Zero energy, forces and stress: every structure is already 'relaxed'."""

    implemented_properties = ["energy", "forces", "stress"]

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        self.results = {"energy": 0.0, "forces": np.zeros((len(self.atoms), 3)), "stress": np.zeros(6)}


def test_atoms_left_too_close_after_relaxation_fail_that_structure():
    crystal = Crystal(
        atom_types=np.array([29, 29]), frac_coords=np.array([[0.0, 0, 0], [0.1, 0, 0]]),
        lattice=np.eye(3) * 3.0, properties={"pressure": 0.0}, id="0-0",
    )  # fmt: skip
    samples = [SampledStructure(0, 0, "Cu2", {"pressure": 0.0}, crystal, "")]
    (cand,) = relax_samples(samples, _FlatCalculator(), RelaxSettings(), progress=False)
    assert cand.status == "relax_failed" and cand.converged and cand.steps == 0
    assert cand.reason == "unphysical after relaxation: atoms closer than 0.5 Å"


@pytest.mark.slow
def test_chgnet_relaxes_silicon_under_pressure():
    pytest.importorskip("chgnet")
    calc = load_calculator("chgnet", device="cpu")
    atoms = bulk("Si", "diamond", a=5.47)
    atoms.rattle(0.02, seed=1)
    results = [relax(atoms, calc, p, RelaxSettings(fmax=0.05, max_steps=60)) for p in (0, 20)]
    assert all(r.ok and r.converged for r in results)
    v0, v20 = (r.atoms.get_volume() / 2 for r in results)
    assert 18.0 < v0 < 22.0 and v20 < 0.95 * v0  # diamond Si: 20.0 Å^3/atom
    assert results[0].energy / 2 == pytest.approx(-5.4, abs=0.3)  # CHGNet (MP PBE scale): about -5.4 eV/atom


FCC = [[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]]


def _ranked(structure: Structure, cid: str = "s0", symprec: float = 0.1) -> Candidate:
    from xtal_tools.prediction.job import spacegroup

    symbol, number = spacegroup(structure, symprec)
    formula = structure.composition.formula.replace(" ", "")
    return Candidate(cid, formula, "ranked", initial=structure, final=structure, enthalpy_per_atom=-1.0,
                     converged=True, spacegroup=symbol, spacegroup_number=number, rank=1)  # fmt: skip


def _read_cif(path, symprec: float = 0.1):
    from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

    text = path.read_text()
    s = Structure.from_file(path)
    return text, s, SpacegroupAnalyzer(s, symprec=symprec).get_space_group_number()


@pytest.mark.parametrize(
    ("name", "number"),
    [("fcc", 225), ("hcp", 194), ("rocksalt", 225), ("rattled_fcc", 225)],
)
def test_ranked_cif_is_in_its_space_group_and_matches_the_relaxed_structure(tmp_path, name, number):
    """The CIF carries the symmetry of its name (H-M symbol, operations, conventional standard cell) and
    reads back as the relaxed structure; the table keeps the relaxed cell's numbers."""
    from pymatgen.analysis.structure_matcher import StructureMatcher
    from pymatgen.io.ase import AseAtomsAdaptor

    atoms = {
        "fcc": lambda: bulk("Cu", "fcc", a=3.6),  # 1-atom primitive cell: the CIF holds 4
        "hcp": lambda: bulk("Mg", "hcp", a=3.2) * (1, 1, 2),  # a supercell: the CIF holds 2
        "rocksalt": lambda: bulk("NaCl", "rocksalt", a=5.6),
        "rattled_fcc": lambda: bulk("Cu", "fcc", a=3.6, cubic=True),
    }[name]()
    if name == "rattled_fcc":
        atoms.rattle(0.01, seed=1)
        atoms.cell[0, 0] += 0.01  # not exactly cubic: the CIF's lattice is the idealised one
    relaxed = AseAtomsAdaptor.get_structure(atoms)
    cand = _ranked(relaxed)
    assert cand.spacegroup_number == number
    write_results([cand], tmp_path, meta={}, title="t", symprec=0.1)
    with (tmp_path / "candidates.csv").open() as fh:
        (row,) = list(csv.DictReader(fh))
    assert row["cif"].endswith(f"_{number}.cif") and row["cif_cell"] == "conventional" and row["reason"] == ""
    text, back, found = _read_cif(tmp_path / row["cif"])
    assert found == number == int(row["spacegroup_number"])
    assert f"_symmetry_Int_Tables_number   {number}" in text and "P 1" not in text.split("_cell_length")[0]
    assert text.count("_symmetry_equiv_pos_as_xyz") == 1 and "'x, y, z'" in text
    assert len(text.split("_symmetry_equiv_pos_as_xyz")[1].split("loop_")[0].splitlines()) > 2, "only x,y,z"
    assert StructureMatcher(scale=False, attempt_supercell=True).fit(back, relaxed)
    # the table describes the relaxed structure as relaxed, not the CIF's cell
    assert math.isclose(float(row["volume_per_atom_A3"]), relaxed.volume / len(relaxed), rel_tol=1e-9)
    assert int(row["num_atoms"]) == len(relaxed) and row["formula"] == cand.formula
    assert math.isclose(back.volume / len(back), relaxed.volume / len(relaxed), rel_tol=0.02)


def test_a_structure_that_cannot_be_symmetrised_falls_back_to_p1_and_says_so(tmp_path, monkeypatch):
    import pymatgen.io.cif

    relaxed = Structure(Lattice.cubic(3.6), ["Cu"] * 4, FCC)
    cand = _ranked(relaxed)
    real = pymatgen.io.cif.CifWriter

    def broken(structure, symprec=None, **kwargs):
        if symprec is not None:
            raise RuntimeError("spglib said no")
        return real(structure, **kwargs)

    monkeypatch.setattr(pymatgen.io.cif, "CifWriter", broken)
    write_results([cand], tmp_path, meta={}, title="t")
    with (tmp_path / "candidates.csv").open() as fh:
        (row,) = list(csv.DictReader(fh))
    assert row["status"] == "ranked" and row["cif_cell"] == "relaxed"
    assert "CIF in P1 with the relaxed cell" in row["reason"] and "spglib said no" in row["reason"]
    text, back, _ = _read_cif(tmp_path / row["cif"])
    assert "P 1" in text and np.allclose(back.lattice.matrix, relaxed.lattice.matrix, atol=1e-6)


def test_a_cif_reading_back_in_another_space_group_falls_back_to_p1():
    from xtal_tools.prediction.report import symmetrized_cif

    relaxed = Structure(Lattice.cubic(3.6), ["Cu"] * 4, FCC)
    text, why = symmetrized_cif(relaxed, 229, symprec=0.1)  # 225 is found: the check refuses it
    assert "read back as space group 225, not 229" in why and "P 1" in text
    text, why = symmetrized_cif(relaxed, 225, symprec=0.1)
    assert why == "" and "_symmetry_space_group_name_H-M   Fm-3m" in text
