"""CSP success rate against the number of samplings (the paper's Fig. 3).

For each target (a known structure and its pressure) the sampler draws ``num`` structures of the
target's cell formula at the target's pressure. A target counts as found after ``n`` samplings when
one of its first ``n`` samples matches it: ``StructureMatcher.fit(target, sample)`` under a preset
(Cond-CDVAE's ``statgen`` criterion; :func:`xtal_eval.csp` does the matching, stopping at the first
match). The curve is the fraction of targets found, ``n = 1..num``, for all targets and for those
with fewer than ``size_cut`` (20) atoms in the cell (Fig. 3b), under each preset (``cdvae``,
``paper``), for the samples as generated (``unrelaxed``) and after relaxing each one at the target's
pressure (``relaxed``). A rejected cell or a failed relaxation is a sample that never matches.

    result = run_success(targets, ModelSampler(model), SuccessSettings(num=800), relaxer=relaxer)
    result.curve("paper", "unrelaxed", "all")            # (800,) fractions
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from xtal_tools.bench._common import BenchTarget, Relaxer, Sampler

__all__ = ["MODES", "SuccessResult", "SuccessSettings", "plot_success", "run_success", "score_success"]

MODES = ("unrelaxed", "relaxed")


@dataclass(frozen=True)
class SuccessSettings:
    """``num`` samplings per target (``seed`` for the sampler), presets, size cut and modes to report."""

    num: int = 20
    seed: int = 0
    presets: tuple[str, ...] = ("cdvae", "paper")
    size_cut: int = 20
    modes: tuple[str, ...] = ("unrelaxed",)

    def __post_init__(self) -> None:
        from xtal_eval import resolve_presets

        if self.num < 1:
            raise ValueError(f"num must be >= 1 sampling per target, got {self.num}")
        if self.size_cut < 1:
            raise ValueError(f"size_cut must be >= 1 atom, got {self.size_cut}")
        resolve_presets(self.presets)
        bad = [m for m in self.modes if m not in MODES]
        if bad or not self.modes:
            raise ValueError(f"modes must be a non-empty subset of {MODES}, got {self.modes}")


@dataclass(frozen=True)
class SuccessResult:
    """What :func:`run_success` measured.

    Attributes:
        targets: the M targets, in order.
        reports: ``{mode: xtal_eval.CspReport}`` (one per mode; each holds every preset).
        num: samplings per target.
        n_invalid: samples the sampler rejected (``None``), over all targets.
        relax: the relaxer's counts (``RelaxCounts.as_dict()``), or None without relaxation.
        seconds: wall time of ``sample``, ``relax`` and ``match`` (s).
    """

    targets: tuple[BenchTarget, ...]
    reports: Mapping[str, object]
    num: int
    n_invalid: int
    relax: dict | None
    seconds: Mapping[str, float]

    @property
    def size_cut(self) -> int:
        return next(iter(self.reports.values())).size_cut

    @property
    def subsets(self) -> tuple[str, str]:
        return "all", f"n_atoms<{self.size_cut}"

    def first_match(self, preset: str, mode: str) -> np.ndarray:
        """(M,) 1-based index of each target's first matching sample, 0 when none matched."""
        return self.reports[mode].get(preset).first_match

    def curve(self, preset: str, mode: str, subset: str = "all") -> np.ndarray:
        """(num,) fraction of the subset's targets found within n samplings; NaN for an empty subset."""
        return self.reports[mode].curves(preset)[subset]

    def curves(self) -> dict[str, np.ndarray]:
        """Every curve, labelled ``"<preset>/<mode>/<subset>"``."""
        return {
            f"{p}/{m}/{s}": self.curve(p, m, s)
            for m, report in self.reports.items()
            for p in (r.preset for r in report.results)
            for s in self.subsets
        }

    def summary(self) -> dict:
        small = np.array([t.num_atoms < self.size_cut for t in self.targets])
        return {
            "n_targets": len(self.targets),
            f"n_targets_n_atoms<{self.size_cut}": int(small.sum()),
            "num_samplings": self.num,
            "n_samples": self.num * len(self.targets),
            "n_invalid_cells": self.n_invalid,
            "relaxation": self.relax,
            "success_rate_at_num": {k: float(v[-1]) for k, v in self.curves().items()},
            "success_curve": {k: v.tolist() for k, v in self.curves().items()},
            "seconds": dict(self.seconds),
        }

    def rows(self) -> list[dict]:
        """One row per target: id, formula, atoms, pressure and the first-match index per preset/mode."""
        out = []
        for i, t in enumerate(self.targets):
            row = {"id": t.id, "formula": t.formula, "n_atoms": t.num_atoms, "pressure_GPa": t.pressure}
            for m, report in self.reports.items():
                for r in report.results:
                    row[f"{r.preset}_{m}_first_match"] = int(r.first_match[i])
            out.append(row)
        return out


def score_success(
    targets: Sequence[BenchTarget],
    samples: Mapping[str, Sequence[Sequence]],
    *,
    presets: Sequence[str] = ("cdvae", "paper"),
    size_cut: int = 20,
    parallel=None,
) -> dict[str, object]:
    """``{mode: CspReport}`` for ordered sample lists per target (``samples[mode][i]`` for target i)."""
    from xtal_eval import csp

    structures = [t.structure for t in targets]
    return {
        mode: csp(
            structures,
            [list(g) for g in groups],
            presets=tuple(presets),
            ks=(1,),
            curve_criterion="fit",
            size_cut=size_cut,
            parallel=parallel,
        )  # fmt: skip
        for mode, groups in samples.items()
    }


def run_success(
    targets: Sequence[BenchTarget],
    sampler: Sampler,
    settings: SuccessSettings,
    *,
    relaxer: Relaxer | None = None,
    parallel=None,
) -> SuccessResult:
    """Sample ``settings.num`` structures per target, relax them (mode ``relaxed``), score every mode.

    Raises:
        ValueError: no targets, or mode ``relaxed`` without a relaxer.
    """
    if not targets:
        raise ValueError("no targets given")
    if "relaxed" in settings.modes and relaxer is None:
        raise ValueError("mode 'relaxed' needs a relaxer (a calculator)")
    seconds = {"sample": 0.0, "relax": 0.0, "match": 0.0}
    t0 = time.perf_counter()
    groups = sampler(
        [t.formula for t in targets], [t.pressure for t in targets], num=settings.num, seed=settings.seed
    )
    seconds["sample"] = time.perf_counter() - t0
    if len(groups) != len(targets) or any(len(g) != settings.num for g in groups):
        raise ValueError(f"the sampler returned {[len(g) for g in groups]} samples, not {settings.num} each")
    samples: dict[str, list] = {}
    if "unrelaxed" in settings.modes:
        samples["unrelaxed"] = groups
    if "relaxed" in settings.modes:
        t0 = time.perf_counter()
        samples["relaxed"] = [relaxer(g, t.pressure) for g, t in zip(groups, targets, strict=True)]
        seconds["relax"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    reports = score_success(
        targets, samples, presets=settings.presets, size_cut=settings.size_cut, parallel=parallel
    )
    seconds["match"] = time.perf_counter() - t0
    return SuccessResult(
        targets=tuple(targets),
        reports=reports,
        num=settings.num,
        n_invalid=sum(s is None for g in groups for s in g),
        relax=relaxer.counts.as_dict() if relaxer is not None and "relaxed" in settings.modes else None,
        seconds=seconds,
    )


def plot_success(result: SuccessResult, path, *, title: str = "") -> None:
    """PNG: success rate (%) against samplings; panel per subset, one line per preset and mode."""
    from xtal_eval.report import _pyplot

    from xtal_tools.bench._common import write_png

    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.6), dpi=150, sharey=True)
    n = np.arange(1, result.num + 1)
    styles = {"unrelaxed": "-", "relaxed": "--"}
    for ax, subset in zip(axes, result.subsets, strict=True):
        count = sum(t.num_atoms < result.size_cut if subset != "all" else True for t in result.targets)
        for mode, report in result.reports.items():
            for r in report.results:
                ax.plot(
                    n, 100 * result.curve(r.preset, mode, subset), styles[mode], label=f"{r.preset}, {mode}"
                )
        ax.set_title(f"{subset} ({count} targets)")
        ax.set_xlabel("number of samplings")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("success rate (%)")
    axes[0].legend(fontsize=7)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    try:
        write_png(fig, path)
    finally:
        plt.close(fig)
