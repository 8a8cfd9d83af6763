"""Relax one structure at a hydrostatic pressure with any ASE calculator (extra ``xtal-data[ase]``).

The project's one relaxation: the pressure-dataset builder (``xtal-data build-pressure``) and every
relaxing workflow of ``xtal_tools`` (prediction, benchmarks) call :func:`relax`.

Positions and cell relax together under an external pressure ``P``: ASE's ``FrechetCellFilter`` (or
``ExpCellFilter``) with ``scalar_pressure = P`` minimises the enthalpy ``H = E + P V``; FIRE (or BFGS) runs
until the largest force / scaled cell gradient is below ``fmax`` (eV/Å) or ``max_steps`` steps have run
(``cell_filter = "none"``: positions only, fixed cell). Calculator errors never raise: they give a failed
:class:`RelaxResult` with the reason, so one bad structure never stops a dataset build or a job. The
result also carries the pressure of the unrelaxed cell (from its stress) and the energy and volume at
every ionic step, read from the calculator's cached results (no extra calculator calls for calculators
that compute energy, forces and stress together).

The pressure is an argument of :func:`relax`, not a setting: settings say how to relax (one per run,
recorded by the builder), the pressure where (one per task); it is range-checked where it enters (the
builder's :class:`~xtal_data.pressure_build.BuildConfig`, the tools' request readers), not here again.

Calculators are named ``"module:factory"`` (an import path; ``factory(**kwargs)`` returns an ASE calculator)
or by a short name of :data:`CALCULATORS` (``chgnet``: CHGNet's pretrained potential, whose weights ship
in its wheel and load offline; ``emt``: ASE's effective-medium toy potential for tests).
"""

from __future__ import annotations

import functools
import importlib
import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from xtal_data.geometry import hard_sphere_volume

__all__ = [
    "CALCULATORS",
    "EV_PER_A3_PER_GPA",
    "CellCollapsed",
    "RelaxResult",
    "RelaxSettings",
    "chgnet_calculator",
    "load_calculator",
    "relax",
    "stress_pressure",
]

EV_PER_A3_PER_GPA = 1.0 / 160.21766208  # 1 GPa in eV/Å^3
CALCULATORS = {"chgnet": "xtal_data.relax_ase:chgnet_calculator", "emt": "ase.calculators.emt:EMT"}


@dataclass(frozen=True)
class RelaxSettings:
    """``fmax`` in eV/Å, at most ``max_steps`` optimiser steps; ``optimizer``: fire | bfgs;
    ``cell_filter``: frechet (FrechetCellFilter) | exp (ExpCellFilter) | none (fixed cell, positions only).

    ``min_volume_fraction``: a relaxation fails ("cell collapsed") as soon as the cell volume drops below
    this fraction of the hard-sphere volume of its atoms (Cordero covalent radii). Real solids stay well
    above 0.15 (compressible alkali metals at 200 GPa: about 0.25; diamond: 2.5; hydrogen at 400 GPa: 10);
    a potential driving a cell below it is unphysical, and its neighbour lists then grow without bound
    (CHGNet took a 4-atom SnS slab at 200 GPa to 1.2 Å^3/atom and 5 GB of memory within 50 steps).
    None switches the guard off."""

    fmax: float = 0.05
    max_steps: int = 300
    optimizer: str = "fire"
    cell_filter: str = "frechet"
    min_volume_fraction: float | None = 0.15

    def __post_init__(self) -> None:
        if not (math.isfinite(self.fmax) and self.fmax > 0):
            raise ValueError(f"fmax must be a positive number of eV/Å, got {self.fmax}")
        if self.max_steps < 0:
            raise ValueError(f"max_steps must be >= 0, got {self.max_steps}")
        if self.optimizer not in ("fire", "bfgs"):
            raise ValueError(f"unknown optimizer {self.optimizer!r}: choose fire or bfgs")
        if self.cell_filter not in ("frechet", "exp", "none"):
            raise ValueError(f"unknown cell filter {self.cell_filter!r}: choose frechet, exp or none")
        if self.min_volume_fraction is not None and not self.min_volume_fraction >= 0:
            raise ValueError(f"min_volume_fraction must be >= 0 or None, got {self.min_volume_fraction}")

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class RelaxResult:
    """One relaxation.

    Attributes:
        atoms: the relaxed ``ase.Atoms`` (the last state reached; no calculator attached), or the input
            when it failed before the first step.
        ok: the calculator answered to the end (converged or not); False: ``reason`` says why.
        converged: the force criterion was met within ``max_steps``.
        steps: optimiser steps whose state was evaluated (on a failure: those done before it).
        energy, enthalpy: eV per cell (``H = E + P V``); NaN when failed.
        reason: why it failed (``"<ExceptionType>: message"``, first line), else ``""``.
        initial_pressure: pressure of the unrelaxed cell in GPa, ``-trace(stress) / 3`` (positive for
            a compressed cell); NaN when the calculator gives no stress or failed on it.
        energies: potential energy (eV, whole cell) at every ionic step, the start included
            (``steps + 1`` values when the run finished).
        volumes: cell volume (Å^3) at the same steps.
        pressure: the external pressure (GPa) it relaxed at.
        stress: (6,) final Voigt stress xx yy zz yz xz xy in GPa (ASE sign: negative = compressed); None
            when failed or the calculator gives no stress.
    """

    atoms: Any
    ok: bool
    converged: bool
    steps: int
    energy: float
    enthalpy: float
    reason: str = ""
    initial_pressure: float = math.nan
    energies: tuple[float, ...] = ()
    volumes: tuple[float, ...] = ()
    pressure: float = 0.0
    stress: np.ndarray | None = None

    @property
    def num_atoms(self) -> int:
        return len(self.atoms)

    @property
    def numbers(self) -> np.ndarray:
        """(n,) atomic numbers of :attr:`atoms`."""
        return np.asarray(self.atoms.numbers)

    @property
    def cell(self) -> np.ndarray:
        """(3, 3) cell rows in Å of :attr:`atoms`."""
        return np.asarray(self.atoms.cell[:])

    @property
    def frac(self) -> np.ndarray:
        """(n, 3) fractional coordinates: wrapped into [0, 1) when ``ok``, as reached when failed."""
        return np.asarray(self.atoms.get_scaled_positions(wrap=self.ok))

    @property
    def residual_pressure(self) -> float:
        """``-trace(stress) / 3`` in GPa: the final cell's pressure (about ``pressure`` when relaxed)."""
        return math.nan if self.stress is None else float(-np.mean(self.stress[:3]))

    def enthalpies(self, pressure: float | None = None) -> np.ndarray:
        """(steps + 1,) enthalpy ``E + P V`` in eV (whole cell) at every ionic step; ``pressure`` in GPa
        (None: :attr:`pressure`)."""
        p = self.pressure if pressure is None else pressure
        return np.asarray(self.energies) + p * EV_PER_A3_PER_GPA * np.asarray(self.volumes)


def load_calculator(spec: str, **kwargs: Any):
    """An ASE calculator from ``"module:factory"`` or a short name (:data:`CALCULATORS`).

    Raises:
        ValueError: a malformed spec, a missing attribute, or a factory returning no ASE calculator.
        ImportError: the module (e.g. chgnet) is not installed.
    """
    path = CALCULATORS.get(spec.strip().lower(), spec.strip())
    module_name, sep, attr = path.partition(":")
    if not sep or not module_name or not attr:
        raise ValueError(f"calculator {spec!r}: give 'module:factory' or one of {', '.join(CALCULATORS)}")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as err:
        hint = " (pip install chgnet)" if spec.strip().lower() == "chgnet" else ""
        raise ImportError(f"calculator {spec!r}: cannot import {module_name!r} ({err}){hint}") from None
    factory = module
    for part in attr.split("."):
        factory = getattr(factory, part, None)
        if factory is None:
            raise ValueError(f"calculator {spec!r}: {module_name!r} has no attribute {attr!r}")
    calc = factory(**kwargs)
    if not (hasattr(calc, "get_potential_energy") and hasattr(calc, "get_forces")):
        raise ValueError(
            f"calculator {spec!r}: {attr}() returned {type(calc).__name__}, not an ASE calculator"
        )
    return calc


def chgnet_calculator(device: str | None = "cpu", **kwargs: Any):
    """CHGNet's pretrained universal potential (weights in the ``chgnet`` wheel). ``device``: cpu, cuda..."""
    from chgnet.model.dynamics import CHGNetCalculator

    return CHGNetCalculator(use_device=device, **kwargs)


def stress_pressure(atoms) -> float:
    """Pressure in GPa from the stress of ``atoms`` (calculator attached): ``-trace(stress) / 3``.

    ASE's stress (eV/Å^3) is negative for a cell that pushes outwards, so a compressed cell has a
    positive pressure.
    """
    stress = np.asarray(atoms.get_stress(voigt=True))  # (6,) xx yy zz yz xz xy
    return float(-stress[:3].mean() / EV_PER_A3_PER_GPA)


def relax(atoms, calculator, pressure: float = 0.0, settings: RelaxSettings | None = None) -> RelaxResult:
    """Relax a copy of ``atoms`` (periodic ``ase.Atoms``) with ``calculator`` at ``pressure`` GPa.

    Never raises for a calculator error: the result is marked failed with ``"<ExceptionType>: message"``
    (and a calculator with ``reset`` is reset, so a half-done calculation cannot leak into the next
    structure). ``atoms.info`` travels with the copy, so a calculator can read e.g. ``atoms.info["csp_id"]``.
    ``settings``: None is :class:`RelaxSettings`'s defaults.
    """
    from ase.calculators.calculator import PropertyNotImplementedError

    settings = RelaxSettings() if settings is None else settings
    work = atoms.copy()
    work.calc = calculator
    energies: list[float] = []
    volumes: list[float] = []
    initial_pressure = math.nan

    def result(ok: bool, converged: bool = False, energy: float = math.nan, stress=None, reason: str = ""):
        work.calc = None
        steps = len(energies) - 1 if ok else max(len(energies) - 1, 0)  # evaluated steps
        enthalpy = energy + pressure * EV_PER_A3_PER_GPA * float(work.get_volume()) if ok else math.nan
        return RelaxResult(
            work, ok, converged, steps, energy, enthalpy, reason, initial_pressure,
            tuple(energies), tuple(volumes), pressure, stress,
        )  # fmt: skip

    def record() -> None:  # an observer: the calculator's cached result for the current positions
        energies.append(float(work.get_potential_energy()))
        volumes.append(float(work.get_volume()))

    try:
        floor = None
        if settings.min_volume_fraction is not None:
            floor = settings.min_volume_fraction * hard_sphere_volume(np.asarray(work.numbers))
            _check_volume(work, floor)
        try:
            initial_pressure = stress_pressure(work)
        except PropertyNotImplementedError:
            pass
        opt = _optimizer(settings, _filtered(work, pressure, settings))
        opt.attach(record, interval=1)
        if floor is not None:
            opt.attach(functools.partial(_check_volume, work, floor), interval=1)
        converged = bool(opt.run(fmax=settings.fmax, steps=settings.max_steps))
        energy = float(work.get_potential_energy())
        try:
            stress = np.asarray(work.get_stress(voigt=True), dtype=np.float64) / EV_PER_A3_PER_GPA
        except PropertyNotImplementedError:
            stress = None
    except Exception as err:  # noqa: BLE001  any calculator error fails this structure only
        msg = str(err).splitlines()[0] if str(err) else ""
        if hasattr(calculator, "reset"):
            calculator.reset()
        return result(False, reason=f"{type(err).__name__}: {msg}"[:300])
    if not (math.isfinite(energy) and math.isfinite(work.get_volume()) and np.isfinite(work.positions).all()):
        return result(False, reason="non-finite energy or positions")
    if stress is not None and not np.isfinite(stress).all():
        return result(False, reason="non-finite stress")
    return result(True, converged, energy, stress)


class CellCollapsed(RuntimeError):
    """The cell shrank below the hard-sphere floor of :class:`RelaxSettings` (``min_volume_fraction``)."""


def _check_volume(atoms, floor: float) -> None:
    volume = atoms.get_volume()
    if volume < floor:
        n = len(atoms)
        raise CellCollapsed(f"cell collapsed to {volume / n:.3g} Å^3/atom (floor {floor / n:.3g} Å^3/atom)")


def _filtered(atoms, pressure: float, settings: RelaxSettings):
    if settings.cell_filter == "none":
        return atoms
    from ase.filters import ExpCellFilter, FrechetCellFilter

    cls = FrechetCellFilter if settings.cell_filter == "frechet" else ExpCellFilter
    return cls(atoms, scalar_pressure=pressure * EV_PER_A3_PER_GPA)


def _optimizer(settings: RelaxSettings, target):
    from ase.optimize import BFGS, FIRE

    return (FIRE if settings.optimizer == "fire" else BFGS)(target, logfile=None)
