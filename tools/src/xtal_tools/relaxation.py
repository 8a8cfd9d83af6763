"""Relaxation of one structure at a fixed pressure with any ASE calculator.

Positions and cell relax together under an external hydrostatic pressure ``P``: ASE's
``FrechetCellFilter`` (or ``ExpCellFilter``) with ``scalar_pressure = P`` (eV/Å^3) minimises the
enthalpy ``H = E + P V``, driven by FIRE or BFGS until every force and the scaled cell gradient are
below ``fmax`` (eV/Å) or ``max_steps`` steps have run. A calculator that raises, or returns a
non-finite energy, gives a failed :class:`RelaxResult` naming the error instead of an exception,
so one bad structure never stops a job. The result also carries the pressure of the unrelaxed cell
(from its stress) and the energy and volume at every ionic step, read from the calculator's cached
results (no extra calculator calls for calculators that compute energy, forces and stress together).

Calculators are named by an import path ``module:factory`` (called with keyword arguments, returns
an ASE calculator), or by one of the short names of :data:`BUILTIN_CALCULATORS`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from xtal_data.relax_ase import CALCULATORS, chgnet_calculator, load_calculator

__all__ = [
    "BUILTIN_CALCULATORS",
    "EV_PER_A3_PER_GPA",
    "RelaxConfig",
    "RelaxResult",
    "RelaxSettings",
    "chgnet_calculator",
    "load_calculator",
    "relax_structure",
    "stress_pressure",
]

EV_PER_A3_PER_GPA = 1.0 / 160.21766208  # 1 GPa in eV/Å^3

# One calculator loader for the project: xtal-data's (the pressure-dataset builder uses it too).
BUILTIN_CALCULATORS = CALCULATORS


@dataclass(frozen=True)
class RelaxSettings:
    """How to relax: ``pressure`` in GPa, ``fmax`` in eV/Å, at most ``max_steps`` optimiser steps.

    ``optimizer``: ``"fire"`` or ``"bfgs"``; ``cell_filter``: ``"frechet"`` (ASE's
    ``FrechetCellFilter``), ``"exp"`` (``ExpCellFilter``) or ``"none"`` (fixed cell, positions only).
    """

    pressure: float = 0.0
    fmax: float = 0.05
    max_steps: int = 300
    optimizer: str = "fire"
    cell_filter: str = "frechet"

    def __post_init__(self) -> None:
        if not (math.isfinite(self.pressure) and self.pressure >= 0):
            raise ValueError(f"pressure must be a finite number >= 0 GPa, got {self.pressure}")
        if not (math.isfinite(self.fmax) and self.fmax > 0):
            raise ValueError(f"fmax must be a positive number (eV/Å), got {self.fmax}")
        if self.max_steps < 0:
            raise ValueError(f"max_steps must be >= 0, got {self.max_steps}")
        if self.optimizer not in ("fire", "bfgs"):
            raise ValueError(f"unknown optimizer {self.optimizer!r}: choose fire or bfgs")
        if self.cell_filter not in ("frechet", "exp", "none"):
            raise ValueError(f"unknown cell filter {self.cell_filter!r}: choose frechet, exp or none")


@dataclass(frozen=True)
class RelaxConfig:
    """The ``[relax]`` table every relaxing command shares: which calculator, and how to relax.

    ``enabled``: relax at all (None: the command's default: ``tools/csp`` relaxes, the benchmarks
    relax when a calculator is named). ``calculator``: ``chgnet``, ``emt`` or an import path
    ``module:factory``; ``calculator_args``: keyword arguments for it (a TOML inline table, or JSON on
    the command line). The rest as in :class:`RelaxSettings` (the pressure comes from the request).
    """

    enabled: bool | None = None
    calculator: str = "chgnet"
    calculator_args: dict[str, Any] = field(default_factory=dict)
    fmax: float = 0.05
    max_steps: int = 300
    optimizer: str = "fire"
    cell_filter: str = "frechet"

    def __post_init__(self) -> None:
        if not isinstance(self.calculator_args, dict):
            raise ValueError(
                f"calculator_args must be a table of keyword arguments, got {self.calculator_args!r}"
            )
        if not self.calculator.strip():
            raise ValueError("calculator: empty name (chgnet, emt or module:factory)")
        self.settings()  # the optimiser settings fail here, before any work

    def on(self, default: bool) -> bool:
        """Whether to relax: ``enabled`` when set, else ``default``."""
        return default if self.enabled is None else self.enabled

    def settings(self, pressure: float = 0.0) -> RelaxSettings:
        """The optimiser settings at ``pressure`` GPa."""
        return RelaxSettings(
            pressure=pressure,
            fmax=self.fmax,
            max_steps=self.max_steps,
            optimizer=self.optimizer,
            cell_filter=self.cell_filter,
        )

    def load(self, device: str = "cpu"):
        """The ASE calculator (CHGNet on ``device`` unless its arguments name one).

        Raises:
            ImportError: the calculator's package is not installed (the message says what to install).
            ValueError: an unknown calculator name or bad arguments.
        """
        kwargs = dict(self.calculator_args)
        if self.calculator.strip().lower() == "chgnet":
            kwargs.setdefault("device", device)
        return load_calculator(self.calculator, **kwargs)


@dataclass(frozen=True)
class RelaxResult:
    """Outcome of one relaxation.

    Attributes:
        atoms: the relaxed ``ase.Atoms`` (the last state reached), or the input when it failed
            before the first step.
        ok: the calculator answered to the end (converged or not).
        converged: the force criterion was met within ``max_steps``.
        steps: optimiser steps taken.
        energy: final potential energy (eV, whole cell); NaN when failed.
        enthalpy: ``energy + P V`` (eV, whole cell); NaN when failed.
        reason: why it failed (``"<ExceptionType>: message"``), else ``""``.
        initial_pressure: pressure of the unrelaxed cell in GPa, ``-trace(stress) / 3`` (positive for
            a compressed cell); NaN when the calculator gives no stress or failed on it.
        energies: potential energy (eV, whole cell) at every ionic step, the start included
            (``steps + 1`` values when the run finished).
        volumes: cell volume (Å^3) at the same steps.
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

    def enthalpies(self, pressure: float) -> np.ndarray:
        """(steps + 1,) enthalpy ``E + P V`` in eV (whole cell) at every ionic step, ``pressure`` in GPa."""
        return np.asarray(self.energies) + pressure * EV_PER_A3_PER_GPA * np.asarray(self.volumes)

    @property
    def num_atoms(self) -> int:
        return len(self.atoms)


def _optimizer(settings: RelaxSettings, target):
    from ase.optimize import BFGS, FIRE

    cls = FIRE if settings.optimizer == "fire" else BFGS
    return cls(target, logfile=None)


def _filtered(atoms, settings: RelaxSettings):
    if settings.cell_filter == "none":
        return atoms
    from ase.filters import ExpCellFilter, FrechetCellFilter

    cls = FrechetCellFilter if settings.cell_filter == "frechet" else ExpCellFilter
    return cls(atoms, scalar_pressure=settings.pressure * EV_PER_A3_PER_GPA)


def stress_pressure(atoms) -> float:
    """Pressure in GPa from the stress of ``atoms`` (calculator attached): ``-trace(stress) / 3``.

    ASE's stress (eV/Å^3) is negative for a cell that pushes outwards, so a compressed cell has a
    positive pressure.
    """
    stress = np.asarray(atoms.get_stress(voigt=True))  # (6,) xx yy zz yz xz xy
    return float(-stress[:3].mean() / EV_PER_A3_PER_GPA)


def relax_structure(atoms, calculator, settings: RelaxSettings) -> RelaxResult:
    """Relax a copy of ``atoms`` with ``calculator`` at ``settings.pressure`` (GPa).

    Never raises for a calculator error: the result is marked failed with the reason.
    ``atoms.info`` travels with the copy, so a calculator can read e.g. ``atoms.info["csp_id"]``.
    The energy and volume of every ionic step are recorded by an optimiser observer that reads the
    calculator's cached result for the current positions.
    """
    from ase.calculators.calculator import PropertyNotImplementedError

    work = atoms.copy()
    work.calc = calculator
    steps, energies, volumes = 0, [], []
    initial_pressure = math.nan

    def failed(reason: str) -> RelaxResult:
        return RelaxResult(
            work,
            False,
            False,
            steps,
            math.nan,
            math.nan,
            reason,
            initial_pressure,
            tuple(energies),
            tuple(volumes),
        )

    def record() -> None:
        energies.append(float(work.get_potential_energy()))
        volumes.append(float(work.get_volume()))

    try:
        try:
            initial_pressure = stress_pressure(work)
        except PropertyNotImplementedError:
            pass
        target = _filtered(work, settings)
        opt = _optimizer(settings, target)
        opt.attach(record, interval=1)
        converged = bool(opt.run(fmax=settings.fmax, steps=settings.max_steps))
        steps = int(opt.nsteps)
        energy = float(work.get_potential_energy())
    except Exception as err:  # noqa: BLE001  any calculator error fails this structure only
        steps = max(len(energies) - 1, 0)  # steps completed before the error
        return failed(f"{type(err).__name__}: {err}")
    volume = float(work.get_volume())
    if not (math.isfinite(energy) and math.isfinite(volume) and np.isfinite(work.positions).all()):
        return failed("non-finite energy or positions")
    enthalpy = energy + settings.pressure * EV_PER_A3_PER_GPA * volume
    work.calc = None
    return RelaxResult(
        work, True, converged, steps, energy, enthalpy, "", initial_pressure, tuple(energies), tuple(volumes)
    )
