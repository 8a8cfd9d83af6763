"""Pressure response: volume vs requested pressure, relaxation at pressure, known phases.

Fake samplers and ASE's EMT; no model."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

pytest.importorskip("pyxtal", reason="the random twins need pyxtal (xtal-tools dependency)")

from ase.calculators.emt import EMT  # noqa: E402
from pymatgen.core import Lattice, Structure  # noqa: E402
from pymatgen.io.ase import AseAtomsAdaptor  # noqa: E402
from xtal_tools.evaluation.known_phase import first_match_index  # noqa: E402
from xtal_tools.evaluation.phase_library import KNOWN_PHASES, known_phase_targets  # noqa: E402
from xtal_tools.evaluation.pressure_reference import (  # noqa: E402
    ReferencePoint,
    reference_trend,
    store_compositions,
)
from xtal_tools.evaluation.pressure_response import PressureResponseSettings, run_pressure_response  # noqa: E402
from xtal_tools.evaluation.samplers import (
    RandomSampler,  # noqa: E402
    derived_seed,  # noqa: E402
)
from xtal_tools.relaxation import RelaxSettings, relax  # noqa: E402

PRESSURES = (0.0, 20.0, 50.0)
FCC = [[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]]
PNG = b"\x89PNG\r\n\x1a\n"


def _emt_relaxed_cu4(p: float) -> Structure:
    s = Structure(Lattice.cubic(3.6), ["Cu"] * 4, FCC)
    res = relax(AseAtomsAdaptor.get_atoms(s), EMT(), p, RelaxSettings(fmax=0.005))
    assert res.converged
    return AseAtomsAdaptor.get_structure(res.atoms)


@pytest.fixture(scope="module")
def relaxed_cu():
    return {p: _emt_relaxed_cu4(p) for p in PRESSURES}


class FakeSampler:
    """Cu4: the EMT-relaxed fcc cell at the requested pressure (None for sample 1 at 50 GPa: an invalid cell);
    known phases: the target at draw ``hit_at`` (1-based, counted over the whole run), a wrong phase
    before."""

    def __init__(self, relaxed, hit_at: int = 7):
        self.relaxed, self.hit_at, self.calls, self.drawn = relaxed, hit_at, [], {}

    def __call__(self, formulas, pressures, *, num, seed):
        (f,), (p,) = formulas, pressures
        self.calls.append((f, p, num, seed))
        if f == "Cu4":
            return [[None if (p == 50.0 and j == 1) else self.relaxed[p].copy() for j in range(num)]]
        right = next(t for t in known_phase_targets() if t.formula == f and t.pressure == p)
        wrong = next(t for t in known_phase_targets() if t.formula == f and t.pressure != p)
        start = self.drawn.get((f, p, self.run_of(seed)), 0)
        self.drawn[(f, p, self.run_of(seed))] = start + num
        return [[right.structure if start + j + 1 == self.hit_at else wrong.structure for j in range(num)]]

    def run_of(self, seed):  # batches of one run share the run seed: recover it from the call seed
        for r in range(10):
            for t in range(10):
                run_seed = derived_seed(0, t, r)
                if any(derived_seed(run_seed, b) == seed for b in range(20)):
                    return run_seed
        raise AssertionError("unknown seed")


@pytest.fixture(scope="module")
def result(relaxed_cu, tmp_path_factory):
    settings = PressureResponseSettings(
        pressures=PRESSURES,
        num_per_target=2,
        phase_runs=2,
        phase_budget=12,
        phase_batch=5,
        relax=RelaxSettings(max_steps=40),
    )
    ref = [ReferencePoint("Cu", "Cu4", 0.0, 11.8, 1), ReferencePoint("Cu", "Cu4", 50.0, 9.5, 1)]
    sampler = FakeSampler(relaxed_cu, hit_at=7)
    journal = tmp_path_factory.mktemp("pr") / "journal.jsonl"
    res = run_pressure_response(
        sampler, ["Cu4"], settings, calculator=EMT(), reference=ref, phases=KNOWN_PHASES[:2], journal=journal
    )
    return res, settings, sampler, journal


def test_volume_per_atom_follows_the_fake_and_the_reference_is_kept(result, relaxed_cu):
    res, _, _, _ = result
    vol = res.summary()["volume"]["Cu4"]
    expected = [relaxed_cu[p].volume / 4 for p in PRESSURES]
    assert vol["generated_mean"] == pytest.approx(expected, rel=1e-9)
    assert np.all(np.diff(vol["generated_mean"]) < 0)  # EMT Cu compresses: monotone in the fake
    assert vol["n_valid"] == [2, 2, 1]  # the invalid cell at 50 GPa is not averaged
    assert vol["reference_GPa"] == [0.0, 50.0] and vol["reference"] == [11.8, 9.5]
    assert vol["slope_reference"] == pytest.approx((9.5 - 11.8) / 50)
    assert vol["slope_generated"] < 0


def test_an_already_relaxed_structure_does_not_move(result):
    res, _, _, _ = result
    gen = [r for r in res.rows() if r["source"] == "generated" and r["status"] == "relaxed"]
    assert len(gen) == 5
    for r in gen:
        assert r["rmsd_A"] < 1e-6 and r["steps"] == 0 and r["converged"]
        assert abs(r["initial_pressure_GPa"] - r["pressure_GPa"]) < 1.0  # relaxed at that pressure
        assert r["final_volume_per_atom_A3"] == pytest.approx(r["initial_volume_per_atom_A3"], rel=1e-6)
    rnd = [r for r in res.rows() if r["source"] == "pyxtal" and r["status"] == "relaxed"]
    assert len(rnd) >= 5 and np.mean([r["rmsd_A"] for r in rnd]) > 0.01  # random twins do move
    rel = res.summary()["relaxation"]
    assert rel["generated"]["0"]["mean_rmsd_A"] < 1e-6 and rel["generated"]["50"]["n_made"] == 1
    assert rel["generated"]["50"]["convergence_rate"] == 0.5  # the invalid cell counts as not converged


def test_random_twin_has_the_generated_volume_or_the_reference_one(result):
    res, _, _, _ = result
    rows = {r["id"]: r for r in res.rows()}
    assert rows["pyxtal/Cu4/20/0"]["initial_volume_per_atom_A3"] == pytest.approx(
        rows["generated/Cu4/20/0"]["initial_volume_per_atom_A3"]
    )
    twin = rows["pyxtal/Cu4/50/1"]  # the model's cell was invalid: the reference volume stands in
    assert twin["volume_from"] == "reference"
    assert twin["initial_volume_per_atom_A3"] == pytest.approx(9.5)
    assert rows["generated/Cu4/50/1"]["status"] == "not_made"


def test_first_match_index_is_the_draw_that_returns_the_target(result):
    res, settings, _, _ = result
    gen = [r for r in res.phase_rows if r["source"] == "generated"]
    assert len(gen) == 2 * settings.phase_runs
    assert all(r["first_match"] == 7 for r in gen)  # batch 2, sample 2
    assert all(r["n_sampled"] == 10 for r in gen)
    ph = res.summary()["known_phases"]["NaCl-B2"]["generated"]
    assert ph["success_count"] == "2/2" and ph["mean_samplings"] == 7.0


def test_a_target_beyond_the_budget_is_never_found(relaxed_cu):
    settings = PressureResponseSettings(
        pressures=(0.0,), num_per_target=1, phase_runs=1, phase_budget=6, phase_batch=5
    )
    res = run_pressure_response(
        FakeSampler(relaxed_cu, hit_at=7), ["Cu4"], settings, calculator=None, phases=KNOWN_PHASES[:1]
    )
    (row,) = [r for r in res.phase_rows if r["source"] == "generated"]
    assert row["first_match"] == 0 and row["n_sampled"] == 6
    assert res.rows()[0]["status"] == "not_relaxed"
    assert res.summary()["known_phases"]["NaCl-B1"]["generated"]["mean_samplings"] is None


def test_outputs_are_json_csv_and_png(result, tmp_path):
    res, _, _, _ = result
    summary = res.write(tmp_path, meta={"note": "x"})
    assert json.loads((tmp_path / "summary.json").read_text())["note"] == "x"
    assert summary["n_structures"] == 12
    with (tmp_path / "rows.csv").open() as fh:
        assert len(list(csv.DictReader(fh))) == 12
    assert (tmp_path / "pressure_response.png").read_bytes()[:8] == PNG
    assert (tmp_path / "phases.csv").is_file()


def test_the_journal_resumes_without_sampling_again(result):
    res, settings, _, journal = result

    def broken(*_a, **_k):
        raise AssertionError("sampled again")

    again = run_pressure_response(
        broken, ["Cu4"], settings, calculator=EMT(), phases=KNOWN_PHASES[:2], journal=journal
    )
    assert json.dumps(again.rows()) == json.dumps(res.rows())  # NaN-aware comparison
    assert again.phase_rows == res.phase_rows
    with pytest.raises(ValueError, match="other settings"):
        run_pressure_response(broken, ["Cu4"], PressureResponseSettings(pressures=(0.0,)), journal=journal)


def test_known_phases_are_what_they_claim():
    from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

    expected = {
        "NaCl-B1": (2, 225),
        "NaCl-B2": (2, 221),
        "Si-diamond": (2, 227),
        "Si-beta-tin": (2, 141),
        "SiO2-quartz": (9, 154),
        "SiO2-stishovite": (6, 136),
    }
    targets = {t.id: t for t in known_phase_targets()}
    assert set(targets) == set(expected)
    for name, (n, sg) in expected.items():
        s = targets[name].structure
        assert len(s) == n, name
        assert SpacegroupAnalyzer(s, symprec=0.01).get_space_group_number() == sg, name
        assert first_match_index(s, [s]) == 1
    for a, b in (("NaCl-B1", "NaCl-B2"), ("Si-diamond", "Si-beta-tin"), ("SiO2-quartz", "SiO2-stishovite")):
        assert first_match_index(targets[a].structure, [targets[b].structure]) == 0, (a, b)
    with pytest.raises(KeyError, match="unknown phase"):
        known_phase_targets(["NaCl-B3"])


def test_random_sampler_is_seeded_and_has_the_volume():
    rs = RandomSampler({("Na1Cl1", 0.0): 44.9})
    (a,) = rs(["Na1Cl1"], [0.0], num=3, seed=5)
    (b,) = rs(["Na1Cl1"], [0.0], num=3, seed=5)
    assert [x.volume for x in a] == pytest.approx([44.9] * 3)
    assert all(x.matches(y) and np.allclose(x.frac_coords, y.frac_coords) for x, y in zip(a, b, strict=True))


def test_reference_trend_and_compositions_from_a_pressure_store(tmp_path):
    from xtal_data import CrystalRecord, CrystalStore

    records = []
    for i, (z, a, p) in enumerate(
        [
            (29, 3.61, 0.0),
            (29, 3.63, 0.0),
            (29, 3.40, 50.0),
            (13, 4.05, 0.0),
            (13, 3.9, 50.0),
            (13, 3.0, 100.0),
        ]
    ):
        records.append(
            CrystalRecord(
                id=f"x{i}",
                atomic_numbers=np.full(4, z),
                frac_coords=np.array(FCC, float),
                lattice=np.eye(3) * a,
                pressure=p,
            ).validate()
        )
    path = str(tmp_path / "p.zarr")
    CrystalStore.create(path).append(records)
    ref = {(r.formula, r.pressure): r for r in reference_trend(path, max_pressure=50.0)}
    assert set(ref) == {("Cu", 0.0), ("Cu", 50.0), ("Al", 0.0), ("Al", 50.0)}
    assert ref[("Cu", 0.0)].volume_per_atom == pytest.approx((3.61**3 + 3.63**3) / 8)
    assert ref[("Cu", 0.0)].n == 2 and ref[("Cu", 0.0)].cell_formula == "Cu4"
    assert [r.formula for r in reference_trend(path, formulas=["Al2"])] == ["Al", "Al", "Al"]
    assert sorted(store_compositions(path, limit=2, pressures=(0.0, 50.0))) == ["Al4", "Cu4"]
    assert store_compositions(path, limit=1, pressures=(0.0, 50.0), elements=[29]) == ["Cu4"]
    with pytest.raises(ValueError, match="only 1 compositions"):
        store_compositions(path, limit=2, pressures=(0.0, 50.0), max_compression=0.85)


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="pressure"):
        PressureResponseSettings(pressures=(-1.0,))
    with pytest.raises(ValueError, match="phase_budget"):
        PressureResponseSettings(phase_budget=0)


def test_phase_fractions_count_which_phase_the_sampler_makes_at_each_pressure(tmp_path):
    b1, b2 = known_phase_targets(["NaCl-B1", "NaCl-B2"])

    def sampler(formulas, pressures, *, num, seed):
        (p,) = pressures
        if p >= 30:
            return [[b2.structure] * num]
        return [[b1.structure if j % 2 == 0 else None for j in range(num)]]

    settings = PressureResponseSettings(
        pressures=(0.0,), phase_runs=1, phase_budget=2, phase_batch=2, fraction_pressures=(0.0, 40.0),
        fraction_num=6,
    )  # fmt: skip
    res = run_pressure_response(sampler, [], settings, phases=KNOWN_PHASES[:2])
    got = {
        (r["phase"], r["pressure_GPa"]): (r["n_valid"], r["n_matched"], r["fraction"])
        for r in res.fraction_rows
    }
    assert got == {
        ("NaCl-B1", 0.0): (3, 3, 0.5), ("NaCl-B2", 0.0): (3, 0, 0.0),
        ("NaCl-B1", 40.0): (6, 0, 0.0), ("NaCl-B2", 40.0): (6, 6, 1.0),
    }  # fmt: skip
    res.write(tmp_path)
    assert (tmp_path / "phase_fractions.csv").is_file()
    assert (tmp_path / "pressure_response.png").read_bytes()[:8] == PNG
