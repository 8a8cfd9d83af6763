"""Relaxation records: pressure of the unrelaxed cell, energy and volume at every ionic step, failures."""

from __future__ import annotations

import math

import numpy as np
import pytest
from ase.build import bulk
from ase.calculators.calculator import all_changes
from ase.calculators.emt import EMT
from xtal_tools.relaxation import (
    EV_PER_A3_PER_GPA,
    RelaxResult,
    RelaxSettings,
    relax,
    stress_pressure,
)


class CountingEMT(EMT):
    """EMT that counts its calculations and raises from calculation number ``fail_at`` on (1-based)."""

    def __init__(self, fail_at: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.calls, self.fail_at = 0, fail_at

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        self.calls += 1
        if self.fail_at is not None and self.calls >= self.fail_at:
            raise RuntimeError(f"calculation {self.calls} refused")
        super().calculate(atoms, list(properties), system_changes)


class NoStressEMT(EMT):
    implemented_properties = ["energy", "free_energy", "forces"]


def _cu(a: float = 3.6, seed: int = 0):
    atoms = bulk("Cu", "fcc", a=a, cubic=True)
    atoms.rattle(0.05, seed=seed)
    return atoms


@pytest.mark.parametrize("pressure", [0.0, 20.0])
def test_energies_every_step_from_the_start_without_extra_calls(pressure):
    calc = CountingEMT()
    atoms = _cu()
    res = relax(atoms, calc, pressure, RelaxSettings(fmax=0.01, max_steps=300))
    assert res.ok and res.converged and res.steps > 5
    assert len(res.energies) == len(res.volumes) == res.steps + 1
    assert calc.calls == res.steps + 1  # stress, forces and energy of a state come from one calculation
    fresh = atoms.copy()
    fresh.calc = EMT()
    assert res.energies[0] == pytest.approx(fresh.get_potential_energy(), abs=1e-12)
    assert res.volumes[0] == pytest.approx(atoms.get_volume())
    assert res.energies[-1] == pytest.approx(res.energy, abs=1e-12)
    assert res.volumes[-1] == pytest.approx(res.atoms.get_volume())
    h = res.enthalpies(pressure)  # (steps + 1,) what the optimiser minimises
    assert h[-1] == pytest.approx(res.enthalpy, abs=1e-12)
    assert h[-1] < h[0] and h[-1] <= h.min() + 1e-4
    assert np.mean(np.diff(h) <= 1e-6) > 0.8  # FIRE may climb a little after a restart, rarely


@pytest.mark.parametrize(("a", "sign"), [(3.3, 1), (3.9, -1)])
def test_initial_pressure_positive_when_squeezed_negative_when_stretched(a, sign):
    atoms = bulk("Cu", "fcc", a=a, cubic=True)
    res = relax(atoms, EMT(), 0.0, RelaxSettings(max_steps=0))
    check = atoms.copy()
    check.calc = EMT()
    expected = -np.trace(check.get_stress(voigt=False)) / 3 / EV_PER_A3_PER_GPA
    assert res.initial_pressure == pytest.approx(expected, rel=1e-12)
    assert sign * res.initial_pressure > 5.0  # GPa, far from zero at 8% strain
    assert res.steps == 0 and len(res.energies) == 1


def test_relaxed_cell_sits_at_the_target_pressure():
    res = relax(_cu(3.4), EMT(), 30.0, RelaxSettings(fmax=0.005, max_steps=500))
    assert res.converged and res.initial_pressure > 30.0
    again = res.atoms.copy()
    again.calc = EMT()
    # cell criterion |V (sigma + P)| / N < fmax: pressure within fmax N / V (in GPa) of the target
    tol = 0.005 * len(again) / again.get_volume() / EV_PER_A3_PER_GPA
    assert stress_pressure(again) == pytest.approx(30.0, abs=tol)


def test_failing_calculator_gives_a_failed_result_with_reason():
    res = relax(_cu(), CountingEMT(fail_at=1), 0.0, RelaxSettings())
    assert not res.ok and not res.converged and res.steps == 0
    assert res.reason == "RuntimeError: calculation 1 refused"
    assert math.isnan(res.energy) and math.isnan(res.enthalpy) and math.isnan(res.initial_pressure)
    assert res.energies == ()


def test_failure_midway_keeps_the_steps_done():
    res = relax(_cu(3.4), CountingEMT(fail_at=6), 0.0, RelaxSettings(fmax=1e-4))
    assert not res.ok and res.reason == "RuntimeError: calculation 6 refused"
    assert res.initial_pressure > 0 and res.steps == 4 and len(res.energies) == 5


def test_calculator_without_stress_relaxes_positions_with_nan_initial_pressure():
    res = relax(_cu(), NoStressEMT(), 0.0, RelaxSettings(cell_filter="none", fmax=0.01))
    assert res.ok and res.converged and math.isnan(res.initial_pressure)
    assert len(res.energies) == res.steps + 1


def test_old_positional_construction_still_works():
    res = RelaxResult(bulk("Cu"), True, True, 3, -1.0, -1.0)
    assert res.reason == "" and math.isnan(res.initial_pressure) and res.energies == () == res.volumes
