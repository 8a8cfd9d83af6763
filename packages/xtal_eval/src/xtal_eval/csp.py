"""Crystal structure prediction metrics: match rate at k samples and the success-rate curve.

For target ``t`` with ordered samples ``s_1 .. s_N``:

* **match@k** (DiffCSP ``--multi_eval``): ``get_rms_dist(s_j, t)`` for ``j <= k``; the target is matched when
  any of them is not None, and its RMSE is the smallest normalised RMS among those. The rate is over all
  targets, the RMSE is the mean over matched targets. Optional validity gate (DiffCSP: ``pred_and_gt``).
* **success curve** (Cond-CDVAE ``statgen``): the fraction of targets with at least one match among their
  first ``n`` samples, ``n = 1..N``, by default with ``fit(t, s_j)``. Matching stops at a target's first
  match (early exit: the curve only needs the index of the first match). Split by atoms per target cell.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from pymatgen.core import Structure

from xtal_eval.matching import Criterion, match_prepared, prepare
from xtal_eval.parallel import Parallel, run_tasks
from xtal_eval.presets import MatcherPreset, resolve_presets
from xtal_eval.validity import validity

__all__ = ["CspPresetResult", "CspReport", "csp", "success_curve"]


def success_curve(first_match: np.ndarray, n_max: int, mask: np.ndarray | None = None) -> np.ndarray:
    """(n_max,) fraction of (masked) targets whose first match is among their first n samples, n = 1..n_max.

    ``first_match`` (M,): 1-based index of each target's first matching sample, 0 for no match. NaN
    everywhere when the mask selects nothing.
    """
    first = np.asarray(first_match) if mask is None else np.asarray(first_match)[mask]
    if len(first) == 0:
        return np.full(n_max, np.nan)
    n = np.arange(1, n_max + 1)
    return ((first[None, :] >= 1) & (first[None, :] <= n[:, None])).mean(axis=1)


@dataclass(frozen=True)
class CspPresetResult:
    """CSP outcome for one preset over M targets.

    Attributes:
        preset: preset name.
        ks: the k of match@k.
        best_rms: (M, len(ks)) smallest normalised RMS among the first k samples, NaN when none matched.
        first_match: (M,) 1-based index of the first matching sample under the curve criterion, 0 if none.
        n_errors: pairs on which pymatgen raised (counted as unmatched).
        best_index: (M, len(ks)) 0-based index of the sample giving ``best_rms``, -1 when none matched.
        same_spacegroup: (M, len(ks)) bool, target and best sample share a space group (spglib, symprec
            0.1 Å); None unless requested. False where nothing matched.
    """

    preset: str
    ks: tuple[int, ...]
    best_rms: np.ndarray
    first_match: np.ndarray
    n_errors: int
    best_index: np.ndarray | None = None
    same_spacegroup: np.ndarray | None = None

    def spacegroup_agreement(self, k: int) -> float | None:
        """Fraction of targets matched at k whose best sample has the target's space group."""
        if self.same_spacegroup is None:
            return None
        col = self.ks.index(k)
        matched = np.isfinite(self.best_rms[:, col])
        return float(self.same_spacegroup[matched, col].mean()) if matched.any() else None

    def match_rate(self, k: int) -> float:
        return float(np.isfinite(self.best_rms[:, self.ks.index(k)]).mean())

    def rmse(self, k: int) -> float | None:
        col = self.best_rms[:, self.ks.index(k)]
        return float(np.nanmean(col)) if np.isfinite(col).any() else None

    def success_curve(self, n_max: int, mask: np.ndarray | None = None) -> np.ndarray:
        """(n_max,) fraction of (masked) targets with a match among their first n samples, n = 1..n_max."""
        return success_curve(self.first_match, n_max, mask)


@dataclass(frozen=True)
class CspReport:
    """Result of :func:`csp`.

    Attributes:
        results: one :class:`CspPresetResult` per preset.
        n_atoms: (M,) number of sites of each target cell (as given).
        n_samples: (M,) number of samples per target.
        size_cut: targets with ``n_atoms < size_cut`` form the small-cell group of the curve.
        curve_criterion: ``"fit"`` or ``"rms"``.
        gate: validity gate applied to match@k.
        n_gated: samples excluded from match@k by the gate.
    """

    results: tuple[CspPresetResult, ...]
    n_atoms: np.ndarray
    n_samples: np.ndarray
    size_cut: int
    curve_criterion: Criterion
    gate: str
    n_gated: int

    def get(self, preset: str) -> CspPresetResult:
        for r in self.results:
            if r.preset == preset:
                return r
        raise KeyError(f"preset {preset!r} not in this report")

    def curves(self, preset: str) -> dict[str, np.ndarray]:
        """Success-rate curves ``{"all": (N,), "n_atoms<cut": (N,)}`` with N the largest sample count."""
        res, n_max = self.get(preset), int(self.n_samples.max())
        return {
            "all": res.success_curve(n_max),
            f"n_atoms<{self.size_cut}": res.success_curve(n_max, self.n_atoms < self.size_cut),
        }


def _csp_task(task) -> list[tuple[list[float], int, int]]:
    target, samples, usable_k, presets, ks, curve_criterion = task
    t = prepare(target)
    prepared: dict[int, object] = {}

    def sample(j):
        if j not in prepared:
            prepared[j] = prepare(samples[j])
        return prepared[j]

    out = []
    for preset in presets:
        m = preset.matcher()
        errors = 0
        rms_first: list[float] = []  # normalised RMS of samples 1..max(ks), inf when unmatched or gated
        for j in range(min(max(ks), len(samples))):
            if samples[j] is None or not usable_k[j]:
                rms_first.append(np.inf)
                continue
            r = match_prepared(sample(j), t, preset, criterion="rms", matcher=m)
            errors += r.error is not None
            rms_first.append(r.rms if r.matched else np.inf)
        best = [float(min(rms_first[:k], default=np.inf)) for k in ks]
        best_at = [
            int(np.argmin(rms_first[:k])) if np.isfinite(b) else -1 for k, b in zip(ks, best, strict=True)
        ]
        first = 0
        for j in range(len(samples)):
            if samples[j] is None:
                continue
            if curve_criterion == "rms" and j < len(rms_first) and usable_k[j]:
                hit = np.isfinite(rms_first[j])
            elif curve_criterion == "rms":
                hit = match_prepared(sample(j), t, preset, criterion="rms", matcher=m).matched
            else:
                r = match_prepared(t, sample(j), preset, criterion="fit", with_rms=False, matcher=m)
                errors += r.error is not None
                hit = r.matched
            if hit:
                first = j + 1
                break  # early exit: later samples cannot change the curve
        out.append((best, first, errors, best_at))
    return out


def csp(
    targets: Sequence[Structure],
    samples: Sequence[Sequence[Structure | None]],
    *,
    presets: str | MatcherPreset | Sequence[str | MatcherPreset] = ("cdvae", "paper", "strict"),
    ks: Sequence[int] = (1, 20),
    curve_criterion: Criterion = "fit",
    gate: str = "none",
    size_cut: int = 20,
    spacegroup: bool = False,
    parallel: Parallel | None = None,
) -> CspReport:
    """Match rate at k samples (with RMSE) and the success-rate curve against the number of samples.

    Args:
        targets: M true structures.
        samples: M ordered lists of generated structures (None marks a failed generation: never a match).
        presets: matcher presets reported side by side.
        ks: sample counts for match@k (a target with fewer samples uses all it has).
        curve_criterion: ``"fit"`` (Cond-CDVAE statgen, ``fit(target, sample)``) or ``"rms"``.
        gate: validity gate for match@k: ``"none"``, ``"pred"`` or ``"pred_and_gt"`` (needs ``smact``).
        size_cut: the curve is also reported for targets with fewer than ``size_cut`` atoms.
        spacegroup: also compare space groups of each target and its best sample at every k (spglib).
        parallel: execution backend (one task per target).

    Raises:
        ValueError: empty input, different lengths, a target without samples, bad ``ks`` or ``gate``.
    """
    if len(targets) != len(samples):
        raise ValueError(f"{len(targets)} targets but {len(samples)} sample lists: the lengths differ")
    if len(targets) == 0:
        raise ValueError("no targets (empty input)")
    ks = tuple(int(k) for k in ks)
    if not ks or min(ks) < 1:
        raise ValueError(f"ks must be positive sample counts, got {ks}")
    if gate not in ("none", "pred", "pred_and_gt"):
        raise ValueError(f"gate must be 'none', 'pred' or 'pred_and_gt', got {gate!r}")
    for i, s in enumerate(samples):
        if len(s) == 0:
            raise ValueError(f"target {i} has no samples")
    presets_t = resolve_presets(presets)
    usable, n_gated = _gate(targets, samples, gate, max(ks))
    tasks = [
        (t, list(s), usable[i], presets_t, ks, curve_criterion)
        for i, (t, s) in enumerate(zip(targets, samples, strict=True))
    ]
    rows = run_tasks(_csp_task, tasks, parallel, desc="csp")
    sg_cache: dict[tuple[int, int], int] = {}
    results = []
    for p, preset in enumerate(presets_t):
        best = np.array([row[p][0] for row in rows], dtype=float)  # (M, len(ks))
        best[~np.isfinite(best)] = np.nan
        first = np.array([row[p][1] for row in rows], dtype=int)  # (M,)
        best_index = np.array([row[p][3] for row in rows], dtype=int)  # (M, len(ks))
        same_sg = _same_spacegroup(targets, samples, best_index, sg_cache) if spacegroup else None
        results.append(
            CspPresetResult(preset.name, ks, best, first, sum(row[p][2] for row in rows), best_index, same_sg)
        )
    return CspReport(
        results=tuple(results),
        n_atoms=np.array([len(t) for t in targets]),
        n_samples=np.array([len(s) for s in samples]),
        size_cut=size_cut,
        curve_criterion=curve_criterion,
        gate=gate,
        n_gated=n_gated,
    )


def _same_spacegroup(targets, samples, best_index: np.ndarray, cache: dict) -> np.ndarray:
    from xtal_eval.symmetry import spacegroup_number

    def sg(i: int, j: int) -> int:  # j = -1: the target itself
        if (i, j) not in cache:
            cache[(i, j)] = spacegroup_number(targets[i] if j < 0 else samples[i][j])
        return cache[(i, j)]

    out = np.zeros(best_index.shape, dtype=bool)
    for (i, c), j in np.ndenumerate(best_index):
        out[i, c] = j >= 0 and sg(i, -1) == sg(i, int(j))
    return out


def _gate(targets, samples, gate: str, k_max: int) -> tuple[list[list[bool]], int]:
    if gate == "none":
        return [[True] * len(s) for s in samples], 0
    flat = [(i, j) for i, s in enumerate(samples) for j in range(min(k_max, len(s))) if s[j] is not None]
    ok = validity([samples[i][j] for i, j in flat]).valid
    tgt_ok = validity(targets).valid if gate == "pred_and_gt" else np.ones(len(targets), dtype=bool)
    usable = [[False] * len(s) for s in samples]
    for (i, j), v in zip(flat, ok, strict=True):
        usable[i][j] = bool(v and tgt_ok[i])
    return usable, sum(not usable[i][j] for i, j in flat)
