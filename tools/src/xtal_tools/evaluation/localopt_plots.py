"""Report of the local-optimisation benchmark: statistics per source and pressure, figures, files.

* :func:`summarise`, :func:`relative_enthalpies`: the numbers of Table III and Fig. 2c from the rows.
* :func:`write_results`: ``rows.csv``, the three PNGs and, last, ``summary.json``.

* :func:`plot_initial_pressure` (Fig. 2a): box plot of the pressure of the unrelaxed cells (from their
  stress) per target pressure and source; the target pressure is drawn as a dashed line.
* :func:`plot_enthalpy_curves` (Fig. 2b, S4 a,c,e,g): mean enthalpy per atom above the relaxed one
  against ionic step, one panel per pressure, shaded one standard deviation. A structure that stopped
  keeps its last value; like the paper, values more than 10 eV/atom above the minimum are left out.
* :func:`plot_relative_enthalpy` (Fig. 2c, S4 b,d,f,h): histogram of the relaxed enthalpy per atom of
  each generated structure minus the lowest of the random ones of the same composition and pressure.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from xtal_tools.evaluation.outputs import write_png

__all__ = [
    "SOURCES",
    "plot_enthalpy_curves",
    "plot_initial_pressure",
    "plot_relative_enthalpy",
    "relative_enthalpies",
    "summarise",
    "write_results",
]

SOURCES = ("generated", "pyxtal", "uniform")

COLORS = {"generated": "tab:blue", "pyxtal": "tab:orange", "uniform": "tab:gray"}
LABELS = {"generated": "generated", "pyxtal": "random (PyXtal, symmetric)", "uniform": "random (P1)"}
CURVE_CUT = 10.0  # eV/atom: steps further above the minimum are ignored (paper, Fig. S4)


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_initial_pressure(
    rows: Sequence[dict], pressures: Sequence[float], path: Path, *, title: str = ""
) -> None:
    """Box plot (median, IQR box, 1.5 IQR whiskers; outliers not drawn) per pressure and source."""
    plt = _plt()
    sources = list(COLORS)
    fig, ax = plt.subplots(figsize=(1.6 + 1.4 * len(pressures), 4.2))
    width = 0.8 / len(sources)
    for i, source in enumerate(sources):
        data, pos = [], []
        for k, p in enumerate(pressures):
            vals = [
                r["initial_pressure_GPa"] for r in rows if r["source"] == source and r["pressure_GPa"] == p
            ]
            vals = [v for v in vals if math.isfinite(v)]
            if vals:
                data.append(vals)
                pos.append(k + (i - (len(sources) - 1) / 2) * width)
        if data:
            box = ax.boxplot(data, positions=pos, widths=width * 0.9, showfliers=False, patch_artist=True,
                             medianprops={"color": "red"})  # fmt: skip
            for patch in box["boxes"]:
                patch.set_facecolor(COLORS[source])
                patch.set_alpha(0.6)
        ax.plot([], [], "s", color=COLORS[source], label=LABELS[source])
    for k, p in enumerate(pressures):
        ax.hlines(p, k - 0.45, k + 0.45, colors="k", linestyles="dashed", linewidth=1)
    ax.set_xticks(range(len(pressures)), [f"{p:g}" for p in pressures])
    ax.set_xlabel("target pressure (GPa)")
    ax.set_ylabel("pressure of the unrelaxed cell (GPa)")
    ax.set_title(title or "initial pressure vs target (dashed)")
    ax.legend(fontsize=8, loc="best", framealpha=0.9)
    fig.tight_layout()
    write_png(fig, path)
    plt.close(fig)


def _mean_curve(curves: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation over structures at each step (last value carried forward)."""
    length = max(len(c) for c in curves)
    grid = np.full((len(curves), length), np.nan)  # (structures, steps)
    for i, c in enumerate(curves):
        grid[i, : len(c)] = c
        grid[i, len(c) :] = c[-1]
    grid[grid > CURVE_CUT] = np.nan
    with np.errstate(all="ignore"):
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            return np.nanmean(grid, axis=0), np.nanstd(grid, axis=0)


def plot_enthalpy_curves(curves: dict, pressures: Sequence[float], path: Path) -> None:
    """Mean enthalpy per atom above the relaxed one (eV/atom) against ionic step, a panel per pressure."""
    plt = _plt()
    fig, axes = plt.subplots(1, len(pressures), figsize=(3.4 * len(pressures), 3.4), squeeze=False)
    for ax, p in zip(axes[0], pressures, strict=True):
        for source, color in COLORS.items():
            cs = curves.get((source, float(p)), [])
            if not cs:
                continue
            mean, std = _mean_curve(cs)
            steps = np.arange(len(mean))
            ax.plot(steps, mean, color=color, label=f"{LABELS[source]} ({len(cs)})")
            ax.fill_between(steps, mean - std, mean + std, color=color, alpha=0.2, linewidth=0)
        ax.set_title(f"{p:g} GPa")
        ax.set_xlabel("ionic step")
        ax.legend(fontsize=7)
    axes[0][0].set_ylabel("H - H(relaxed) (eV/atom)")
    fig.tight_layout()
    write_png(fig, path)
    plt.close(fig)


def plot_relative_enthalpy(rows: Sequence[dict], pressures: Sequence[float], path: Path) -> None:
    """Histogram of H(generated) - min H(random), eV/atom, same composition and pressure; one colour per P."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    cmap = plt.get_cmap("viridis")
    gen = [r for r in rows if r["source"] == "generated" and math.isfinite(r["dH_vs_best_random_eV"])]
    values = {p: [r["dH_vs_best_random_eV"] for r in gen if r["pressure_GPa"] == p] for p in pressures}
    every = [v for vs in values.values() for v in vs]
    if every:
        bins = np.histogram_bin_edges(every, bins=min(30, max(5, len(every) // 2)))
        data = [values[p] for p in pressures]
        colors = [cmap(k / max(len(pressures) - 1, 1)) for k in range(len(pressures))]
        labels = [f"{p:g} GPa ({len(values[p])})" for p in pressures]
        ax.hist(data, bins=bins, stacked=True, color=colors, label=labels)
        ax.axvline(0.0, color="k", linestyle="dashed", linewidth=1)
        below = np.mean(np.array(every) < 0)
        ax.set_title(f"{below:.0%} of generated below the best random structure")
        ax.legend(fontsize=8)
    else:
        ax.set_title("no generated structure with a relaxed random twin")
    ax.set_xlabel("H(generated) - min H(random) (eV/atom)")
    ax.set_ylabel("structures")
    fig.tight_layout()
    write_png(fig, path)
    plt.close(fig)


def relative_enthalpies(rows: list[dict]) -> None:
    """``dH_vs_best_random_eV`` of each relaxed generated row: H - min H of the random relaxed rows of
    the same composition and pressure (both random kinds), per atom; NaN when none relaxed."""
    best: dict[tuple, float] = {}
    for r in rows:
        if r["source"] != "generated" and r["status"] == "relaxed":
            key = (r["formula"], r["pressure_GPa"])
            best[key] = min(best.get(key, math.inf), r["enthalpy_per_atom_eV"])
    for r in rows:
        key = (r["formula"], r["pressure_GPa"])
        if r["source"] == "generated" and r["status"] == "relaxed" and key in best:
            r["dH_vs_best_random_eV"] = r["enthalpy_per_atom_eV"] - best[key]


def _mean(values) -> float | None:
    vals = [v for v in values if v is not None and math.isfinite(v)]
    return float(np.mean(vals)) if vals else None


def summarise(rows: Sequence[dict], pressures: Sequence[float]) -> dict[str, Any]:
    """Per source and pressure: counts, convergence rate (over every structure asked for), mean ionic
    steps and mean RMSD (over the relaxed ones), median initial pressure and failures by reason."""
    out: dict[str, Any] = {}
    for source in SOURCES:
        out[source] = {}
        for p in pressures:
            sel = [r for r in rows if r["source"] == source and r["pressure_GPa"] == float(p)]
            done = [r for r in sel if r["status"] == "relaxed"]
            conv = [r for r in done if r["converged"]]
            ip = [r["initial_pressure_GPa"] for r in sel if math.isfinite(r["initial_pressure_GPa"])]
            reasons = Counter(r["reason"].split(":")[0] for r in sel if r["status"] != "relaxed")
            stats = {
                "n": len(sel), "n_made": sum(r["status"] != "not_made" for r in sel), "n_relaxed": len(done),
                "n_converged": len(conv), "convergence_rate": len(conv) / len(sel) if sel else None,
                "mean_steps": _mean([r["steps"] for r in done]),
                "mean_steps_converged": _mean([r["steps"] for r in conv]),
                "mean_rmsd_A": _mean([r["rmsd_A"] for r in done]),
                "median_initial_pressure_GPa": float(np.median(ip)) if ip else None,
                "failures": dict(reasons),
            }  # fmt: skip
            if source == "generated":
                dh = [r["dH_vs_best_random_eV"] for r in done if math.isfinite(r["dH_vs_best_random_eV"])]
                stats["n_compared_to_random"] = len(dh)
                stats["fraction_below_best_random"] = float(np.mean(np.array(dh) < 0)) if dh else None
                stats["median_dH_vs_best_random_eV"] = float(np.median(dh)) if dh else None
            out[source][f"{p:g}"] = stats
    return out


def write_results(result, settings, out_dir: Path, *, meta: dict) -> dict:
    """Write ``rows.csv``, the three PNGs and, last, ``summary.json`` (its presence means complete).

    ``meta`` (settings, versions, machine, wall time) goes into the summary; returns the summary.
    """
    from xtal_eval.report import write_csv, write_json

    from xtal_tools.evaluation.localopt_plots import (
        plot_enthalpy_curves,
        plot_initial_pressure,
        plot_relative_enthalpy,
    )

    pressures = [float(p) for p in settings.pressures]
    write_csv(out_dir / "rows.csv", result.rows)
    plot_initial_pressure(result.rows, pressures, out_dir / "initial_pressure.png")
    plot_enthalpy_curves(result.curves, pressures, out_dir / "enthalpy_steps.png")
    plot_relative_enthalpy(result.rows, pressures, out_dir / "relative_enthalpy.png")
    n_relaxed = sum(r["status"] != "not_made" for r in result.rows)
    wall = meta.get("wall_s") or math.nan
    summary = {
        "benchmark": "localopt",
        "n_structures": len(result.rows),
        "n_relaxed": n_relaxed,
        "structures_per_s": n_relaxed / wall if wall > 0 else None,
        "structures_per_s_counts": "structures relaxed (converged, unconverged or failed) per second of wall",
        "seconds": result.seconds,
        "results": result.summary,
        **meta,
    }
    write_json(out_dir / "summary.json", summary)
    return summary
