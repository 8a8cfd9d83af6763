"""Samplings needed to find a known phase (the paper's Table IV).

For each target (a known structure and its pressure) one *run* samples the target's cell formula at
the target's pressure in batches of ``batch`` structures, optionally relaxes each one at that
pressure, and matches them in order against the target (``StructureMatcher.fit(target, sample)``
under one preset, ``paper`` by default) until the first match or until ``budget`` samplings have
been drawn. ``runs`` independent runs use independent seeds. Per target we report the success
count ``k/R`` (runs that found the phase within the budget) and the mean number of samplings to the
first match over the successful runs (the paper: 5 runs, budget 1000).

Run ``r`` of target ``t`` has seed ``derived_seed(seed, t, r)`` and draws its batch ``b`` with
``derived_seed(run_seed, b)``, so a run's samples do not depend on the other targets or runs. How this
maps to the sampling engine (a search stops at its first match, so each batch is its own request):
batch ``b`` of run ``r`` of target ``t`` is one row, the target's cell formula at its pressure, with
``num_per_row = batch size`` and ``seed = derived_seed(derived_seed(seed, t, r), b)``; it is exactly
``tools/sample --formula F --pressure P --num <size> --seed <that seed>`` with the same sampler settings
(``SearchRun.seed`` records the run seed).

    phases = run_known_phase(targets, ModelSampler(model), KnownPhaseSettings(runs=5, budget=1000))
    phases[0].successes, phases[0].mean_samplings
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from xtal_tools.evaluation.relaxer import Relaxer
from xtal_tools.evaluation.samplers import Sampler, derived_seed
from xtal_tools.evaluation.targets import BenchTarget

__all__ = [
    "KnownPhaseSettings",
    "PhaseResult",
    "SearchRun",
    "first_match_index",
    "run_known_phase",
    "search_run",
]


@dataclass(frozen=True)
class KnownPhaseSettings:
    """``runs`` searches per target, each of at most ``budget`` samplings drawn ``batch`` at a time."""

    runs: int = 5
    budget: int = 1000
    batch: int = 50
    seed: int = 0
    preset: str = "paper"

    def __post_init__(self) -> None:
        from xtal_eval import resolve_presets

        for name in ("runs", "budget", "batch"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if len(resolve_presets(self.preset)) != 1:
            raise ValueError(f"known-phase uses one preset, got {self.preset!r}")


@dataclass(frozen=True)
class SearchRun:
    """One run: ``first_match`` is the 1-based sampling that matched (0: none within ``n_sampled``).

    ``n_sampled`` counts whole batches drawn; ``n_invalid`` the rejected cells among them.
    """

    run: int
    seed: int
    first_match: int
    n_sampled: int
    n_invalid: int
    seconds: float

    @property
    def success(self) -> bool:
        return self.first_match > 0


@dataclass(frozen=True)
class PhaseResult:
    """All runs of one target; ``mean_samplings`` is over successful runs (NaN when none succeeded)."""

    target: BenchTarget
    runs: tuple[SearchRun, ...]

    @property
    def successes(self) -> int:
        return sum(r.success for r in self.runs)

    @property
    def mean_samplings(self) -> float:
        hits = [r.first_match for r in self.runs if r.success]
        return float(np.mean(hits)) if hits else math.nan

    def row(self) -> dict:
        t = self.target
        return {
            "id": t.id,
            "formula": t.formula,
            "n_atoms": t.num_atoms,
            "pressure_GPa": t.pressure,
            "successes": self.successes,
            "runs": len(self.runs),
            "success_count": f"{self.successes}/{len(self.runs)}",
            "mean_samplings": self.mean_samplings,
            "first_match_per_run": " ".join(str(r.first_match) for r in self.runs),
            "samplings_drawn": sum(r.n_sampled for r in self.runs),
            "invalid_cells": sum(r.n_invalid for r in self.runs),
        }


def first_match_index(target, samples: Sequence, preset: str = "paper") -> int:
    """1-based index of the first of ``samples`` that ``fit(target, sample)`` accepts; 0 when none does.

    ``None`` samples never match. Stops at the first match.
    """
    from xtal_eval import match_prepared, prepare, resolve_presets

    (p,) = resolve_presets(preset)
    matcher = p.matcher()
    t = prepare(target)
    for j, s in enumerate(samples):
        if (
            s is not None
            and match_prepared(t, prepare(s), p, criterion="fit", with_rms=False, matcher=matcher).matched
        ):
            return j + 1
    return 0


def search_run(
    target: BenchTarget,
    sampler: Sampler,
    settings: KnownPhaseSettings,
    *,
    target_index: int,
    run: int,
    relaxer: Relaxer | None = None,
) -> SearchRun:
    """Sample in batches until the first match with ``target`` or ``settings.budget`` samplings.

    With a ``relaxer`` each sample is relaxed just before it is matched, so a run stops relaxing at
    its first match. The run's seed is ``derived_seed(settings.seed, target_index, run)``; batch
    ``b`` is drawn with ``derived_seed(run_seed, b)``.
    """
    from xtal_eval import match_prepared, prepare, resolve_presets

    (preset,) = resolve_presets(settings.preset)
    matcher = preset.matcher()
    wanted = prepare(target.structure)
    run_seed = derived_seed(settings.seed, target_index, run)
    t0 = time.perf_counter()
    drawn = invalid = b = 0
    while drawn < settings.budget:
        size = min(settings.batch, settings.budget - drawn)
        (batch,) = sampler([target.formula], [target.pressure], num=size, seed=derived_seed(run_seed, b))
        if len(batch) != size:
            raise ValueError(f"the sampler returned {len(batch)} samples, not {size}")
        invalid += sum(s is None for s in batch)
        for j, s in enumerate(batch):
            if s is not None and relaxer is not None:
                (s,) = relaxer([s], target.pressure)
            if s is None:
                continue
            if match_prepared(
                wanted, prepare(s), preset, criterion="fit", with_rms=False, matcher=matcher
            ).matched:
                return SearchRun(
                    run, run_seed, drawn + j + 1, drawn + size, invalid, time.perf_counter() - t0
                )
        drawn += size
        b += 1
    return SearchRun(run, run_seed, 0, drawn, invalid, time.perf_counter() - t0)


def run_known_phase(
    targets: Sequence[BenchTarget],
    sampler: Sampler,
    settings: KnownPhaseSettings,
    *,
    relaxer: Relaxer | None = None,
    on_run=None,
    progress: bool | None = None,
) -> list[PhaseResult]:
    """``settings.runs`` independent searches for every target (see :func:`search_run`).

    ``on_run``: optional callable ``on_run(target_id, run)`` called after each run (what it writes to
    stderr is printed above the bar); ``progress``: a bar over the runs (None: when stderr is a terminal).
    """
    from xtal_tools.progress import bar

    if not targets:
        raise ValueError("no targets given")
    out = []
    with bar(len(targets) * settings.runs, "runs", progress, unit="run") as shown:
        for i, t in enumerate(targets):
            runs = []
            for r in range(settings.runs):
                runs.append(search_run(t, sampler, settings, target_index=i, run=r, relaxer=relaxer))
                if on_run is not None:
                    with shown.external_write_mode(file=sys.stderr):
                        on_run(t.id, runs[-1])
                shown.update()
            out.append(PhaseResult(t, tuple(runs)))
    return out


def summarise(phases: Sequence[PhaseResult], settings: KnownPhaseSettings) -> dict:
    """JSON-ready totals and per-target results (``run_seconds``: time inside the runs, no start-up)."""
    n_samples = sum(r.n_sampled for p in phases for r in p.runs)
    seconds = sum(r.seconds for p in phases for r in p.runs)
    return {
        "n_targets": len(phases),
        "runs": settings.runs,
        "budget": settings.budget,
        "batch": settings.batch,
        "preset": settings.preset,
        "n_samples": n_samples,
        "run_seconds": seconds,
        "samplings_per_s_in_runs": n_samples / seconds if seconds > 0 else None,
        "targets": {
            p.target.id: {
                "successes": p.successes,
                "success_count": f"{p.successes}/{len(p.runs)}",
                "mean_samplings": p.mean_samplings,
                "first_match_per_run": [r.first_match for r in p.runs],
            }
            for p in phases
        },
    }


def run_known_phase_benchmark(
    bench, config, *, on_run=None, progress: bool | None = None
) -> tuple[list[PhaseResult], dict]:
    """The benchmark of a :class:`~xtal_tools.evaluation.configs.KnownPhaseConfig` on an opened
    :class:`~xtal_tools.evaluation.configs.Benchmark`: ``(phases, results for summary.json)``;
    ``on_run``, ``progress``: as :func:`run_known_phase`."""
    from xtal_tools.evaluation.samplers import ModelSampler

    settings = KnownPhaseSettings(
        runs=config.runs, budget=config.budget, batch=config.batch, seed=config.seed, preset=config.preset
    )
    sampler = ModelSampler(bench.model, sampler=config.sampler)
    phases = run_known_phase(
        bench.targets, sampler, settings, relaxer=bench.relaxer, on_run=on_run, progress=progress
    )
    results = summarise(phases, settings)
    results["relaxation"] = bench.relaxer.counts.as_dict() if bench.relaxer is not None else None
    return phases, results
