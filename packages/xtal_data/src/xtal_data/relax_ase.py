"""Relax one structure at a hydrostatic pressure with any ASE calculator (extra ``xtal-data[ase]``).

Positions and cell relax together: ASE's ``FrechetCellFilter`` with ``scalar_pressure = P`` minimises the
enthalpy ``H = E + P V``; FIRE (or BFGS) runs until the largest force / scaled cell gradient is below
``fmax`` (eV/Å) or ``max_steps`` steps have run. Calculator errors never raise: they give a failed
:class:`RelaxOutcome` with the reason, so one bad structure never stops a dataset build.

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

EV_PER_A3_PER_GPA = 1.0 / 160.21766208  # 1 GPa in eV/Å^3
CALCULATORS = {"chgnet": "xtal_data.relax_ase:chgnet_calculator", "emt": "ase.calculators.emt:EMT"}


@dataclass(frozen=True)
class RelaxSettings:
    """``fmax`` in eV/Å, at most ``max_steps`` optimiser steps; ``optimizer``: fire | bfgs;
    ``cell_filter``: frechet (FrechetCellFilter) | exp (ExpCellFilter).

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
        if self.cell_filter not in ("frechet", "exp"):
            raise ValueError(f"unknown cell filter {self.cell_filter!r}: choose frechet or exp")
        if self.min_volume_fraction is not None and not self.min_volume_fraction >= 0:
            raise ValueError(f"min_volume_fraction must be >= 0 or None, got {self.min_volume_fraction}")

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class RelaxOutcome:
    """One relaxation at ``pressure`` (GPa).

    Attributes:
        ok: the calculator answered to the end (converged or not); False: ``reason`` says why.
        converged: the force criterion was met within ``max_steps``.
        steps: optimiser steps taken.
        numbers, cell, frac: the final structure (atomic numbers; (3, 3) Å rows; (n, 3) fractional).
        energy, enthalpy: eV per cell (``H = E + P V``); NaN when failed.
        stress: (6,) Voigt stress xx yy zz yz xz xy in GPa (ASE sign: negative = compressed); NaN when failed.
    """

    ok: bool
    converged: bool
    steps: int
    pressure: float
    numbers: np.ndarray
    cell: np.ndarray
    frac: np.ndarray
    energy: float = math.nan
    enthalpy: float = math.nan
    stress: np.ndarray | None = None
    reason: str = ""

    @property
    def residual_pressure(self) -> float:
        """``-trace(stress) / 3`` in GPa: the final cell's pressure (about ``pressure`` when relaxed)."""
        return math.nan if self.stress is None else float(-np.mean(self.stress[:3]))


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


def relax(atoms, calculator, pressure: float, settings: RelaxSettings) -> RelaxOutcome:
    """Relax a copy of ``atoms`` (periodic ``ase.Atoms``) at ``pressure`` GPa; never raises for a calculator
    error (the outcome is marked failed with ``"<ExceptionType>: message"``)."""
    from ase.filters import ExpCellFilter, FrechetCellFilter
    from ase.optimize import BFGS, FIRE

    if not (math.isfinite(pressure) and pressure >= 0):
        raise ValueError(f"pressure must be a finite number >= 0 GPa, got {pressure}")
    work = atoms.copy()
    work.calc = calculator
    opt = None
    try:
        cls = FrechetCellFilter if settings.cell_filter == "frechet" else ExpCellFilter
        target = cls(work, scalar_pressure=pressure * EV_PER_A3_PER_GPA)
        opt = (FIRE if settings.optimizer == "fire" else BFGS)(target, logfile=None)
        if settings.min_volume_fraction is not None:
            floor = settings.min_volume_fraction * hard_sphere_volume(np.asarray(work.numbers))
            opt.attach(functools.partial(_check_volume, work, floor), interval=1)
            _check_volume(work, floor)
        converged = bool(opt.run(fmax=settings.fmax, steps=settings.max_steps))
        energy = float(work.get_potential_energy())
        stress = np.asarray(work.get_stress(voigt=True), dtype=np.float64) / EV_PER_A3_PER_GPA
        frac = work.get_scaled_positions(wrap=True)
    except Exception as err:  # noqa: BLE001  any calculator error fails this structure only
        msg = str(err).splitlines()[0] if str(err) else ""
        if hasattr(calculator, "reset"):  # a half-done calculation must not leak into the next structure
            calculator.reset()
        return _failed(work, pressure, opt, f"{type(err).__name__}: {msg}"[:300])
    volume = float(work.get_volume())
    if not (math.isfinite(energy) and np.isfinite(stress).all() and np.isfinite(frac).all()):
        return _failed(work, pressure, opt, "non-finite energy, stress or positions")
    return RelaxOutcome(
        True, converged, int(opt.nsteps), pressure, np.asarray(work.numbers), np.asarray(work.cell[:]), frac,
        energy, energy + pressure * EV_PER_A3_PER_GPA * volume, stress,
    )  # fmt: skip


class CellCollapsed(RuntimeError):
    """The cell shrank below the hard-sphere floor of :class:`RelaxSettings` (``min_volume_fraction``)."""


def _check_volume(atoms, floor: float) -> None:
    volume = atoms.get_volume()
    if volume < floor:
        n = len(atoms)
        raise CellCollapsed(f"cell collapsed to {volume / n:.3g} Å^3/atom (floor {floor / n:.3g} Å^3/atom)")


def _failed(work, pressure: float, opt, reason: str) -> RelaxOutcome:
    steps = int(opt.nsteps) if opt is not None else 0
    return RelaxOutcome(
        False, False, steps, pressure, np.asarray(work.numbers), np.asarray(work.cell[:]),
        np.asarray(work.get_scaled_positions(wrap=False)), reason=reason,
    )  # fmt: skip
