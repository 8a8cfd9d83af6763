"""Match many pairs of structures under several presets, in parallel, with results in input order."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from pymatgen.core import Structure

from xtal_eval.matching import Criterion, MatchResult, match_prepared, prepare
from xtal_eval.parallel import Parallel, run_tasks
from xtal_eval.presets import MatcherPreset, resolve_presets

__all__ = ["PairTable", "match_pairs"]


@dataclass(frozen=True)
class PairTable:
    """Per-pair outcomes of :func:`match_pairs`.

    Attributes:
        presets: the presets, in column order.
        criterion: ``"rms"`` or ``"fit"``.
        results: ``results[p][i]`` is pair ``i`` under preset ``p``; shape (P presets, M pairs).
    """

    presets: tuple[MatcherPreset, ...]
    criterion: Criterion
    results: tuple[tuple[MatchResult, ...], ...]

    def column(self, preset: str | MatcherPreset) -> tuple[MatchResult, ...]:
        """The (M,) per-pair results under ``preset``."""
        name = preset if isinstance(preset, str) else preset.name
        for p, column in zip(self.presets, self.results, strict=True):
            if p.name == name:
                return column
        raise KeyError(f"preset {name!r} not in this table ({[p.name for p in self.presets]})")

    def matched(self, preset: str | MatcherPreset) -> np.ndarray:
        """(M,) bool: the decisions under ``preset``."""
        return np.array([r.matched for r in self.column(preset)], dtype=bool)

    def rms(self, preset: str | MatcherPreset) -> np.ndarray:
        """(M,) float: normalised RMS displacement, NaN where unmatched."""
        return np.array([np.nan if r.rms is None else r.rms for r in self.column(preset)], dtype=float)

    def errors(self, preset: str | MatcherPreset) -> dict[int, str]:
        """Pair index -> message for pairs on which pymatgen raised (counted as unmatched)."""
        return {i: r.error for i, r in enumerate(self.column(preset)) if r.error is not None}

    def skipped(self, preset: str | MatcherPreset) -> dict[str, int]:
        """How many pairs each exact prefilter decided."""
        out: dict[str, int] = {}
        for r in self.column(preset):
            if r.skipped_by:
                out[r.skipped_by] = out.get(r.skipped_by, 0) + 1
        return out


def _match_chunk(task) -> list[tuple[MatchResult, ...]]:
    pairs, presets, criterion = task
    matchers = [p.matcher() for p in presets]
    out = []
    for s1, s2 in pairs:
        a, b = prepare(s1), prepare(s2)
        out.append(
            tuple(
                match_prepared(a, b, preset, criterion=criterion, matcher=m)
                for preset, m in zip(presets, matchers, strict=True)
            )
        )
    return out


def match_pairs(
    first: Sequence[Structure],
    second: Sequence[Structure],
    *,
    presets: str | MatcherPreset | Sequence[str | MatcherPreset] = "cdvae",
    criterion: Criterion = "rms",
    parallel: Parallel | None = None,
    chunk_size: int | None = None,
) -> PairTable:
    """Match ``first[i]`` (pymatgen's ``struct1``) against ``second[i]`` (``struct2``) for every ``i``.

    Equal to ``[preset.matcher().get_rms_dist(a, b) for a, b in zip(first, second)]`` (``criterion="rms"``)
    or to ``fit`` followed by ``get_rms_dist`` on matched pairs (``criterion="fit"``), for every preset.

    Raises:
        ValueError: empty input or different lengths.
    """
    if len(first) != len(second):
        raise ValueError(f"cannot pair {len(first)} structures with {len(second)}: the lengths differ")
    if len(first) == 0:
        raise ValueError("no structures to match (empty input)")
    if chunk_size is None:  # about four tasks per worker, at most 16 pairs per task
        workers = (
            1
            if parallel is None or parallel.backend == "serial"
            else (parallel.n_jobs or os.cpu_count() or 1)
        )
        chunk_size = max(1, min(16, len(first) // (4 * workers)))
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    presets_t = resolve_presets(presets)
    pairs = list(zip(first, second, strict=True))
    tasks = [(pairs[i : i + chunk_size], presets_t, criterion) for i in range(0, len(pairs), chunk_size)]
    rows = [row for chunk in run_tasks(_match_chunk, tasks, parallel, desc="match") for row in chunk]
    columns = tuple(tuple(row[p] for row in rows) for p in range(len(presets_t)))
    return PairTable(presets=presets_t, criterion=criterion, results=columns)
