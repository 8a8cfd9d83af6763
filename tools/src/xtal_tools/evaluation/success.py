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
from typing import Any

import numpy as np
from xtal_eval.csp import success_curve  # re-exported: the one implementation

from xtal_tools.evaluation.relaxer import Relaxer
from xtal_tools.evaluation.samplers import Sampler
from xtal_tools.evaluation.targets import BenchTarget

__all__ = [
    "MODES",
    "SuccessResult",
    "SuccessSettings",
    "plot_success",
    "run_success",
    "score_success",
    "success_curve",
]

MODES = ("unrelaxed", "relaxed")


@dataclass(frozen=True)
class SuccessSettings:
    """What to measure and how to batch it.

    ``num`` samplings per target, drawn in one sampler call with one ``seed`` over every target (row
    ``i`` is target ``i``): with :class:`~xtal_tools.evaluation.samplers.ModelSampler` they are exactly what
    ``tools/sample --rows`` (the targets' cell formulas and pressures, in order) writes with ``--num
    num --seed seed`` and the same sampler settings; a target's samples depend only on the seed, its
    position and its formula and pressure. ``presets``, ``size_cut`` (the small-cell subset is
    ``n_atoms < size_cut``) and ``modes`` (``unrelaxed`` and/or ``relaxed``) choose the curves.
    ``chunk`` targets are converted to pymatgen, relaxed and scored together, then their structures
    are dropped (the model's samples stay as numpy arrays; a :class:`ModelSampler` converts on read).
    """

    num: int = 20
    seed: int = 0
    presets: tuple[str, ...] = ("cdvae", "paper")
    size_cut: int = 20
    modes: tuple[str, ...] = ("unrelaxed",)
    chunk: int = 64

    def __post_init__(self) -> None:
        from xtal_eval import resolve_presets

        for name in ("num", "size_cut", "chunk"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        resolve_presets(self.presets)
        bad = [m for m in self.modes if m not in MODES]
        if bad or not self.modes:
            raise ValueError(f"modes must be a non-empty subset of {MODES}, got {self.modes}")


@dataclass(frozen=True)
class SuccessResult:
    """What :func:`run_success` measured.

    Attributes:
        targets: the M targets, in order.
        first_match: ``{mode: {preset: (M,) int}}``, 1-based index of each target's first matching
            sample, 0 when none of its ``num`` samples matched.
        num: samplings per target.
        size_cut: the small-cell subset is ``n_atoms < size_cut``.
        n_invalid: samples the sampler rejected (``None``), over all targets.
        n_match_errors: pairs on which pymatgen raised (counted as unmatched).
        relax: the relaxer's counts (``RelaxCounts.as_dict()``), or None without relaxation.
        seconds: wall time of ``sample``, ``relax`` and ``match`` (s).
    """

    targets: tuple[BenchTarget, ...]
    first_match: Mapping[str, Mapping[str, np.ndarray]]
    num: int
    size_cut: int
    n_invalid: int
    n_match_errors: int
    relax: dict | None
    seconds: Mapping[str, float]

    @property
    def subsets(self) -> tuple[str, str]:
        return "all", f"n_atoms<{self.size_cut}"

    def curve(self, preset: str, mode: str, subset: str = "all") -> np.ndarray:
        """(num,) fraction of the subset's targets found within n samplings; NaN for an empty subset."""
        if subset not in self.subsets:
            raise KeyError(f"subset {subset!r}: choose from {self.subsets}")
        small = np.array([t.num_atoms < self.size_cut for t in self.targets])
        return success_curve(self.first_match[mode][preset], self.num, None if subset == "all" else small)

    def curves(self) -> dict[str, np.ndarray]:
        """Every curve, labelled ``"<preset>/<mode>/<subset>"``."""
        return {
            f"{p}/{m}/{s}": self.curve(p, m, s)
            for m, by_preset in self.first_match.items()
            for p in by_preset
            for s in self.subsets
        }

    def summary(self) -> dict:
        small = np.array([t.num_atoms < self.size_cut for t in self.targets])
        curves = self.curves()
        return {
            "n_targets": len(self.targets),
            f"n_targets_n_atoms<{self.size_cut}": int(small.sum()),
            "num_samplings": self.num,
            "n_samples": self.num * len(self.targets),
            "n_invalid_cells": self.n_invalid,
            "n_match_errors": self.n_match_errors,
            "match_criterion": "StructureMatcher.fit(target, sample)",
            "relaxation": self.relax,
            "success_rate_at_num": {k: float(v[-1]) for k, v in curves.items()},
            "success_curve": {k: v.tolist() for k, v in curves.items()},
            "seconds": dict(self.seconds),
        }

    def rows(self) -> list[dict]:
        """One row per target: id, formula, atoms, pressure and the first-match index per preset/mode."""
        out = []
        for i, t in enumerate(self.targets):
            row = {"id": t.id, "formula": t.formula, "n_atoms": t.num_atoms, "pressure_GPa": t.pressure}
            for m, by_preset in self.first_match.items():
                for p, first in by_preset.items():
                    row[f"{p}_{m}_first_match"] = int(first[i])
            out.append(row)
        return out


def score_success(
    targets: Sequence[BenchTarget],
    samples: Mapping[str, Sequence[Sequence]],
    *,
    presets: Sequence[str] = ("cdvae", "paper"),
    parallel=None,
) -> tuple[dict[str, dict[str, np.ndarray]], int]:
    """First match per target for ordered sample lists (``samples[mode][i]`` for target i).

    Returns ``({mode: {preset: (M,) first_match}}, n_match_errors)``; matching by
    :func:`xtal_eval.csp` with the ``fit`` criterion (it stops at each target's first match).
    """
    from xtal_eval import csp

    structures = [t.structure for t in targets]
    out, errors = {}, 0
    for mode, groups in samples.items():
        report = csp(
            structures,
            [list(g) for g in groups],
            presets=tuple(presets),
            ks=(1,),
            curve_criterion="fit",
            parallel=parallel,
        )
        out[mode] = {r.preset: r.first_match.astype(int) for r in report.results}
        errors += sum(r.n_errors for r in report.results)
    return out, errors


def run_success(
    targets: Sequence[BenchTarget],
    sampler: Sampler,
    settings: SuccessSettings,
    *,
    relaxer: Relaxer | None = None,
    parallel=None,
    on_samples=None,
    progress: bool | None = None,
) -> SuccessResult:
    """Sample ``settings.num`` structures per target, relax them (mode ``relaxed``), score every mode.

    ``on_samples(mode, targets, groups)``, when given, sees every chunk's samples before they are
    dropped (e.g. a :class:`~xtal_tools.evaluation.samplers.SampleWriter`). ``progress``: a bar over the
    relaxations (None: when stderr is a terminal); the sampler and ``parallel`` draw their own.

    Raises:
        ValueError: no targets, mode ``relaxed`` without a relaxer, or a sampler returning a wrong count.
    """
    if not targets:
        raise ValueError("no targets given")
    if "relaxed" in settings.modes and relaxer is None:
        raise ValueError("mode 'relaxed' needs a relaxer (a calculator)")
    seconds = {"sample": 0.0, "relax": 0.0, "match": 0.0}
    parts: dict[str, dict[str, list]] = {m: {p: [] for p in settings.presets} for m in settings.modes}
    n_invalid = n_errors = 0
    t0 = time.perf_counter()
    every = list(
        sampler(
            [t.formula for t in targets], [t.pressure for t in targets], num=settings.num, seed=settings.seed
        )
    )
    seconds["sample"] += time.perf_counter() - t0
    if len(every) != len(targets):
        raise ValueError(f"the sampler returned {len(every)} rows, not {len(targets)}")
    from xtal_tools.progress import bar

    shown = progress if "relaxed" in settings.modes else False
    with bar(settings.num * len(targets), "relax", shown) as relax_bar:
        for start in range(0, len(targets), settings.chunk):
            chunk = targets[start : start + settings.chunk]
            groups = []
            for group in every[start : start + settings.chunk]:
                if len(group) != settings.num:
                    raise ValueError(f"the sampler returned {len(group)} samples, not {settings.num}")
                groups.append(list(group))
            n_invalid += sum(s is None for g in groups for s in g)
            samples: dict[str, list] = {}
            if "unrelaxed" in settings.modes:
                samples["unrelaxed"] = groups
            if "relaxed" in settings.modes:
                t0 = time.perf_counter()
                samples["relaxed"] = []
                for g, t in zip(groups, chunk, strict=True):
                    samples["relaxed"].append(relaxer(g, t.pressure))
                    relax_bar.update(len(g))
                seconds["relax"] += time.perf_counter() - t0
            if on_samples is not None:
                for mode, mode_groups in samples.items():
                    on_samples(mode, chunk, mode_groups)
            t0 = time.perf_counter()
            firsts, errors = score_success(chunk, samples, presets=settings.presets, parallel=parallel)
            seconds["match"] += time.perf_counter() - t0
            n_errors += errors
            for m, by_preset in firsts.items():
                for p, first in by_preset.items():
                    parts[m][p].append(first)
            del groups, samples
            every[start : start + settings.chunk] = [None] * len(chunk)  # drop this chunk's samples
    return SuccessResult(
        targets=tuple(targets),
        first_match={m: {p: np.concatenate(v) for p, v in by.items()} for m, by in parts.items()},
        num=settings.num,
        size_cut=settings.size_cut,
        n_invalid=n_invalid,
        n_match_errors=n_errors,
        relax=relaxer.counts.as_dict() if relaxer is not None and "relaxed" in settings.modes else None,
        seconds=seconds,
    )


def plot_success(result: SuccessResult, path, *, title: str = "") -> None:
    """PNG: success rate (%) against samplings; panel per subset, one line per preset and mode."""
    from xtal_eval.report import _pyplot

    from xtal_tools.evaluation.outputs import write_png

    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.6), dpi=150, sharey=True)
    from matplotlib.ticker import MaxNLocator

    n = np.arange(1, result.num + 1)
    styles = {"unrelaxed": "-", "relaxed": "--"}
    presets = list(next(iter(result.first_match.values())))
    colours = {p: f"C{i}" for i, p in enumerate(presets)}
    for ax, subset in zip(axes, result.subsets, strict=True):
        count = sum(t.num_atoms < result.size_cut if subset != "all" else True for t in result.targets)
        for mode in result.first_match:
            for p in presets:
                ax.plot(
                    n,
                    100 * result.curve(p, mode, subset),
                    styles[mode],
                    color=colours[p],
                    drawstyle="steps-post",
                    label=f"{p}, {mode}",
                )
        ax.set_title(f"{subset} ({count} targets)")
        ax.set_xlabel("number of samplings")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
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


@dataclass(frozen=True)
class _ShownSampler:
    """:class:`~xtal_tools.evaluation.samplers.ModelSampler` (the same call, the same structures) with a
    bar over the sampling (:func:`xtal_tools.evaluation.split_eval.sample_rows`)."""

    model: Any
    sampler: Any = None
    progress: bool | None = None

    def __call__(self, formulas, pressures, *, num: int, seed: int) -> list:
        from cond_vae import SamplerConfig

        from xtal_tools.evaluation.samplers import SampleGroup
        from xtal_tools.evaluation.split_eval import sample_rows

        sampler = SamplerConfig() if self.sampler is None else self.sampler
        made = sample_rows(self.model, formulas, pressures, num=num, seed=seed, sampler=sampler,
                           progress=self.progress)  # fmt: skip
        groups: list[list] = [[] for _ in formulas]
        for s in made:
            groups[s.row].append(s)
        return [SampleGroup(g) for g in groups]


def run_success_benchmark(
    bench, config, out_dir, *, progress: bool | None = None
) -> tuple[dict, list[dict], int]:
    """The benchmark of a :class:`~xtal_tools.evaluation.configs.SuccessConfig` on an opened
    :class:`~xtal_tools.evaluation.configs.Benchmark`: samples (and relaxes, with a relaxer), scores,
    plots ``success.png``; with ``save_samples`` writes every sample. Returns ``(results, rows, samples)``.
    ``progress``: bars over sampling, relaxing and matching (None: when stderr is a terminal)."""
    from pathlib import Path

    from xtal_tools.evaluation.samplers import SampleWriter
    from xtal_tools.progress import parallel

    modes = ("unrelaxed", "relaxed") if bench.relaxer is not None else ("unrelaxed",)
    settings = SuccessSettings(
        num=config.num,
        seed=config.seed,
        presets=config.presets,
        size_cut=config.size_cut,
        modes=modes,
        chunk=config.chunk,
    )
    writer = SampleWriter(Path(out_dir)) if config.save_samples else None
    try:
        result = run_success(
            bench.targets,
            _ShownSampler(bench.model, sampler=config.sampler, progress=progress),
            settings,
            relaxer=bench.relaxer,
            parallel=parallel(config.jobs, progress),
            on_samples=writer,
            progress=progress,
        )
    except BaseException:
        if writer is not None:
            writer.discard()
        raise
    if writer is not None:
        writer.commit()
    n = config.num * len(bench.targets)
    plot_success(
        result,
        Path(out_dir) / "success.png",
        title=f"{len(bench.targets)} targets, {config.num} samplings each",
    )
    results = result.summary()
    results["sampled_per_s"] = n / result.seconds["sample"] if result.seconds["sample"] > 0 else None
    return results, result.rows(), n
