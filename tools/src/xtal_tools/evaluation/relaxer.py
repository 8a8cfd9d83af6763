"""Relaxing benchmark samples: :class:`Relaxer` relaxes a list of structures at one pressure with an ASE
calculator; a failed relaxation gives ``None`` (never a match) and is counted (:class:`RelaxCounts`).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["RelaxCounts", "Relaxer"]


@dataclass
class RelaxCounts:
    """Running totals of a :class:`Relaxer`: structures tried, failed, unconverged; steps and seconds."""

    tried: int = 0
    failed: int = 0
    unconverged: int = 0
    steps: int = 0
    seconds: float = 0.0
    reasons: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {**self.__dict__, "reasons": dict(self.reasons)}


@dataclass
class Relaxer:
    """Relax structures with ``calculator`` at a pressure (``settings`` give fmax, steps, optimiser).

    A relaxation that raises, returns non-finite numbers, or leaves atoms closer than ``min_distance``
    (Å) gives ``None`` and is counted in ``counts.failed`` (with its reason).
    """

    calculator: Any
    settings: Any  # xtal_data.relax_ase.RelaxSettings
    min_distance: float = 0.5
    counts: RelaxCounts = field(default_factory=RelaxCounts)

    def __call__(self, structures: Sequence[Any], pressure: float) -> list[Any]:
        from pymatgen.io.ase import AseAtomsAdaptor
        from xtal_eval import structure_valid

        from xtal_tools.relaxation import relax

        out = []
        for s in structures:
            if s is None:
                out.append(None)
                continue
            t0 = time.perf_counter()
            res = relax(AseAtomsAdaptor.get_atoms(s), self.calculator, float(pressure), self.settings)
            self.counts.seconds += time.perf_counter() - t0
            self.counts.tried += 1
            self.counts.steps += res.steps
            final = AseAtomsAdaptor.get_structure(res.atoms) if res.ok else None
            reason = res.reason.split(":")[0]
            if final is not None and not structure_valid(final, cutoff=self.min_distance):
                final, reason = None, "atoms too close after relaxation"
            if final is None:
                self.counts.failed += 1
                self.counts.reasons[reason] = self.counts.reasons.get(reason, 0) + 1
            else:
                self.counts.unconverged += not res.converged
            out.append(final)
        return out
