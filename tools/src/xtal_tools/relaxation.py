"""The ``[relax]`` table of the commands (:class:`RelaxConfig`) over the project's one relaxation.

The relaxation itself is :mod:`xtal_data.relax_ase` (the pressure-dataset builder uses it too): this module
re-exports it, so workflow code imports ``relax``, ``RelaxSettings``, ``RelaxResult``, ``load_calculator``,
``stress_pressure`` from here or there alike. ``relax(atoms, calculator, pressure, settings)`` relaxes a copy
of ``atoms`` at ``pressure`` GPa and never raises for a calculator error (see its docstring).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from xtal_data.relax_ase import (
    CALCULATORS,
    EV_PER_A3_PER_GPA,
    RelaxResult,
    RelaxSettings,
    chgnet_calculator,
    load_calculator,
    relax,
    stress_pressure,
)

__all__ = [
    "CALCULATORS",
    "EV_PER_A3_PER_GPA",
    "RelaxConfig",
    "RelaxResult",
    "RelaxSettings",
    "chgnet_calculator",
    "load_calculator",
    "relax",
    "stress_pressure",
]


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

    def settings(self) -> RelaxSettings:
        """The optimiser settings (the pressure is :func:`relax`'s argument, from each request)."""
        return RelaxSettings(
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
