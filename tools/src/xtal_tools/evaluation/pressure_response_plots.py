"""The pressure-response figure (:meth:`xtal_tools.evaluation.pressure_response.PressureResponseResult.plot`):
volume per atom against the requested pressure beside the training data's trend, how far samples move
when relaxed (RMSD, steps, initial pressure) for the model and PyXtal twins, convergence, and the
known-phase searches and phase fractions."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

__all__ = ["plot_pressure_response"]


def plot_pressure_response(result, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from xtal_tools.evaluation.outputs import write_png

    ps = [float(p) for p in result.settings.pressures]
    ncol = 4 if result.fraction_rows else 3
    fig, axes = plt.subplots(2, ncol, figsize=(5 * ncol, 8.5), constrained_layout=True)
    ax = axes[0, 0]
    for c, (f, v) in enumerate(result.volume_summary().items()):
        col = f"C{c % 10}"
        y = np.array([np.nan if x is None else x for x in v["generated_mean"]])
        e = np.array([np.nan if x is None else x for x in v["generated_std"]])
        ax.errorbar(ps, y, yerr=e, color=col, marker="o", capsize=3, label=f"{f} generated")
        yr = [np.nan if x is None else x for x in v["relaxed_generated_mean"]]
        ax.plot(ps, yr, color=col, marker="^", ls=":", label=f"{f} generated, relaxed")
        if v["reference"]:
            ax.plot(v["reference_GPa"], v["reference"], color=col, marker="s", ls="--", label=f"{f} data")
    ax.set(
        xlabel="requested pressure (GPa)",
        ylabel="volume per atom (Å$^3$)",
        title="(a) volume per atom: generated (o), relaxed (^), data (s)",
    )
    if ax.get_legend_handles_labels()[1]:
        ax.legend(fontsize=6, ncol=2)
    rows = [r for r in result.structure_rows if r["status"] == "relaxed"]
    panels = [
        (axes[0, 1], "rmsd_A", "RMSD initial to relaxed (Å)", "(b) how far samples move"),
        (axes[0, 2], "steps", "ionic steps", "(c) ionic steps"),
        (
            axes[1, 0],
            "initial_pressure_GPa",
            "pressure of the unrelaxed cell (GPa)",
            "(d) initial pressure vs requested",
        ),
    ]
    width = 0.35 * (min(np.diff(ps)) if len(ps) > 1 else 1.0)
    for ax, key, label, title in panels:
        for s_i, (source, col) in enumerate((("generated", "C0"), ("pyxtal", "0.5"))):
            data = [
                [
                    r[key]
                    for r in rows
                    if r["source"] == source and r["pressure_GPa"] == p and math.isfinite(r[key])
                ]
                for p in ps
            ]
            pos = [p + (s_i - 0.5) * width for p in ps]
            keep = [(d, x) for d, x in zip(data, pos, strict=True) if d]
            if keep:
                bp = ax.boxplot(
                    [d for d, _ in keep],
                    positions=[x for _, x in keep],
                    widths=width * 0.9,
                    showfliers=False,
                    patch_artist=True,
                    manage_ticks=False,
                )
                for b in bp["boxes"]:
                    b.set(facecolor=col, alpha=0.5)
            ax.plot([], [], color=col, lw=6, alpha=0.5, label=source)
        ax.set(xlabel="requested pressure (GPa)", ylabel=label, title=title)
        ax.set_xticks(ps)
        ax.legend(fontsize=7)
    axes[1, 0].plot(ps, ps, "k--", lw=1, label="requested")
    ax = axes[1, 1]
    rel = result.relaxation_summary()
    for s_i, (source, col) in enumerate((("generated", "C0"), ("pyxtal", "0.5"))):
        rates = [rel[source][f"{p:g}"]["convergence_rate"] or 0.0 for p in ps]
        ax.bar([p + (s_i - 0.5) * width for p in ps], rates, width=width * 0.9, color=col, label=source)
    ax.set(
        xlabel="requested pressure (GPa)",
        ylabel="converged / asked for",
        ylim=(0, 1.25),
        title=f"(e) convergence within {result.settings.relax.max_steps} steps",
    )
    ax.set_xticks(ps)
    ax.legend(fontsize=7, loc="upper center", ncol=2)
    ax = axes[1, 2]
    phases = result.phase_summary()
    budget = result.settings.phase_budget
    for s_i, (source, col) in enumerate((("generated", "C0"), ("pyxtal", "0.5"))):
        xs = np.arange(len(phases)) + (s_i - 0.5) * 0.4
        vals = [(ph.get(source) or {}).get("mean_samplings") for ph in phases.values()]
        ax.bar(
            xs,
            [budget * 1.05 if v is None else v for v in vals],
            width=0.38,
            color=col,
            label=source,
            hatch=None,
        )
        for x, v, ph in zip(xs, vals, phases.values(), strict=True):
            ax.text(
                x,
                (budget * 1.05 if v is None else v),
                (ph.get(source) or {}).get("success_count", ""),
                ha="center",
                va="bottom",
                fontsize=7,
            )
    ax.axhline(budget, color="k", ls=":", lw=1)
    ax.set_xticks(np.arange(len(phases)))
    ax.set_xticklabels([f"{k}\n{v['pressure_GPa']:g} GPa" for k, v in phases.items()], fontsize=7)
    ax.set(
        ylabel="mean samplings to first match",
        title=f"(f) known phases, budget {budget}\n(bar above the line: never found; label: runs found)",
    )
    ax.legend(fontsize=7)
    if result.fraction_rows:
        _plot_fractions(axes, result.fraction_rows)
    write_png(fig, path)
    plt.close(fig)
    return path


def _plot_fractions(axes, rows: list[dict]) -> None:
    formula_of = {r["phase"]: r["formula"] for r in rows}
    stable_at = {r["phase"]: r["phase_pressure_GPa"] for r in rows}
    formulas = list(dict.fromkeys(r["formula"] for r in rows))
    half = max(1, (len(formulas) + 1) // 2)
    for ax, chunk, tag in ((axes[0, 3], formulas[:half], "g"), (axes[1, 3], formulas[half:], "h")):
        if not chunk:
            ax.set_visible(False)
            continue
        for c, ph in enumerate(p for p in formula_of if formula_of[p] in chunk):
            pts = sorted((r["pressure_GPa"], r["fraction"]) for r in rows if r["phase"] == ph)
            ax.plot(
                *zip(*pts, strict=True),
                marker="o",
                color=f"C{c}",
                label=f"{ph} (stable at {stable_at[ph]:g} GPa)",
            )
        ax.set(
            xlabel="requested pressure (GPa)",
            ylabel="fraction of samples matching (unrelaxed)",
            title=f"({tag}) which phase the model makes: {', '.join(chunk)}",
        )
        ax.title.set_fontsize(9)
        ax.legend(fontsize=7)
