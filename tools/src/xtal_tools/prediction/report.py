"""Writing a CSP result: ranked CIFs, a CSV and JSON table of every candidate, and a PNG plot.

Everything is written into a staging folder inside the output directory first and moved into
place only once all files exist, so an interrupted or failed job leaves no partial result::

    OUT/ranked/001_Si4O8_P3_221.cif    rank, cell formula, space group (symbol, '/' as '_'), number
    OUT/failed/s07_Si4O8.cif           structures whose relaxation failed, as sampled (if any)
    OUT/candidates.csv / .json         every sample: ranked, duplicate, relax_failed, invalid_cell
    OUT/enthalpy.png                   enthalpy per atom by rank and against volume per atom
"""

from __future__ import annotations

import csv
import json
import math
import os
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from xtal_tools.prediction.job import Candidate, finite_or_none, status_counts

__all__ = ["COLUMNS", "candidate_row", "plot_candidates", "write_results"]

COLUMNS = (
    "rank", "id", "formula", "num_atoms", "spacegroup", "spacegroup_number", "enthalpy_per_atom_eV",
    "enthalpy_above_lowest_meV_per_atom", "energy_per_atom_eV", "volume_per_atom_A3", "density_g_cm3",
    "rmsd_A", "converged", "steps", "status", "duplicate_of", "reason", "cif",
)  # fmt: skip
OUTPUTS = ("ranked", "failed", "candidates.csv", "candidates.json", "enthalpy.png")


def cif_name(c: Candidate, width: int = 3) -> str:
    """File name of a candidate's CIF (relative to the output directory), or "" when none is written."""
    if c.status == "ranked":
        symbol = c.spacegroup.replace("/", "_")
        return f"ranked/{c.rank:0{width}d}_{c.formula}_{symbol}_{c.spacegroup_number}.cif"
    if c.status == "relax_failed":
        return f"failed/{c.id}_{c.formula}.cif"
    return ""


def candidate_row(c: Candidate, width: int = 3, lowest: float | None = None) -> dict[str, Any]:
    """One table row: numbers as floats (None when unknown), ``converged`` None when not relaxed;
    ``lowest``: the lowest ranked enthalpy per atom (eV), for the column above it (meV/atom)."""
    above = None
    if lowest is not None and math.isfinite(c.enthalpy_per_atom):
        above = 1000.0 * (c.enthalpy_per_atom - lowest)
    return {
        "rank": c.rank or None,
        "id": c.id,
        "formula": c.formula,
        "num_atoms": c.num_atoms or (len(c.initial) if c.initial is not None else None),
        "spacegroup": c.spacegroup or None,
        "spacegroup_number": c.spacegroup_number or None,
        "enthalpy_per_atom_eV": finite_or_none(c.enthalpy_per_atom),
        "enthalpy_above_lowest_meV_per_atom": above,
        "energy_per_atom_eV": finite_or_none(c.energy_per_atom),
        "volume_per_atom_A3": finite_or_none(c.volume_per_atom),
        "density_g_cm3": finite_or_none(c.density),
        "rmsd_A": finite_or_none(c.rmsd),
        "converged": c.converged,
        "steps": c.steps,
        "status": c.status,
        "duplicate_of": c.duplicate_of or None,
        "reason": c.reason,
        "cif": cif_name(c, width) or None,
    }


def plot_candidates(candidates: Sequence[Candidate], path: Path, *, title: str) -> None:
    """Enthalpy per atom (relative to the lowest, meV/atom) by rank and against volume per atom.

    Without enthalpies (no relaxation) the plot shows volume per atom by rank instead.
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    ranked = [c for c in candidates if c.status == "ranked"]
    h = [c.enthalpy_per_atom for c in ranked]
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.5), constrained_layout=True)
    if ranked and all(math.isfinite(x) for x in h):
        dups = [c for c in candidates if c.status == "duplicate" and math.isfinite(c.enthalpy_per_atom)]
        h0 = min(h)
        ok = [c for c in ranked if c.converged]
        no = [c for c in ranked if not c.converged]
        for group, marker, label in ((ok, "o", "converged"), (no, "x", "not converged")):
            if group:
                rel = [1000 * (c.enthalpy_per_atom - h0) for c in group]
                axes[0].scatter([c.rank for c in group], rel, marker=marker, label=label)
                axes[1].scatter([c.volume_per_atom for c in group], rel, marker=marker, label=label)
        if dups:
            rel = [1000 * (c.enthalpy_per_atom - h0) for c in dups]
            axes[1].scatter([c.volume_per_atom for c in dups], rel, s=10, c="0.6", label="duplicates")
        best = ranked[0]
        title += f"\nlowest H = {h0:.4f} eV/atom: {best.formula} {best.spacegroup} ({best.spacegroup_number})"
        axes[0].set_ylabel("enthalpy above the lowest (meV/atom)")
        axes[1].set_ylabel("enthalpy above the lowest (meV/atom)")
        axes[0].legend()
        axes[1].legend()
    elif ranked:
        axes[0].scatter([c.rank for c in ranked], [c.volume_per_atom for c in ranked])
        axes[0].set_ylabel("volume per atom (Å$^3$)")
        axes[1].text(0.5, 0.5, "not relaxed: no enthalpies", ha="center", va="center")
    else:
        for ax in axes:
            ax.text(0.5, 0.5, "no structure survived", ha="center", va="center")
    from matplotlib.ticker import MaxNLocator

    axes[0].xaxis.set_major_locator(MaxNLocator(integer=True))
    axes[0].set_xlabel("rank")
    axes[1].set_xlabel("volume per atom (Å$^3$)")
    fig.suptitle(title)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _json_default(value: Any):
    raise TypeError(f"cannot write {type(value).__name__} to JSON")


def write_results(
    candidates: Sequence[Candidate], out_dir: str | os.PathLike, *, meta: Mapping[str, Any], title: str
) -> dict[str, str]:
    """Write every output of :data:`OUTPUTS` into ``out_dir`` (staged, then moved); returns their paths.

    ``meta`` (formula, pressure, settings: JSON-able) heads the JSON file.
    """
    out_dir = Path(out_dir)
    staging = out_dir / ".staging"
    shutil.rmtree(staging, ignore_errors=True)
    (staging / "ranked").mkdir(parents=True)
    try:
        width = max(3, len(str(sum(c.status == "ranked" for c in candidates))))
        enthalpies = [c.enthalpy_per_atom for c in candidates if c.status == "ranked"]
        finite = [h for h in enthalpies if math.isfinite(h)]
        lowest = min(finite) if finite else None
        rows = [candidate_row(c, width, lowest) for c in candidates]
        for c, row in zip(candidates, rows, strict=True):
            if row["cif"]:
                (staging / row["cif"]).parent.mkdir(exist_ok=True)
                structure = c.final if c.status == "ranked" else c.initial
                structure.to(filename=str(staging / row["cif"]), fmt="cif")
        with (staging / "candidates.csv").open("w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=COLUMNS)
            writer.writeheader()
            writer.writerows({k: ("" if v is None else v) for k, v in r.items()} for r in rows)
        payload = {**meta, "counts": status_counts(candidates), "candidates": rows}
        (staging / "candidates.json").write_text(json.dumps(payload, indent=1, default=_json_default) + "\n")
        plot_candidates(candidates, staging / "enthalpy.png", title=title)
        written = [name for name in OUTPUTS if (staging / name).exists()]
        for name in OUTPUTS:  # a stale "failed/" of an earlier run in the same folder goes too
            target = out_dir / name
            if target.is_dir():
                shutil.rmtree(target)
            elif target.exists():
                target.unlink()
        for name in written:
            os.replace(staging / name, out_dir / name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return {name: str(out_dir / name) for name in written}
