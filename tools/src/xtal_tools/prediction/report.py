"""Writing a CSP result: ranked CIFs, a CSV and JSON table of every candidate, and a PNG plot.

Everything is written into a staging folder inside the output directory first and moved into
place only once all files exist, so an interrupted or failed job leaves no partial result::

    OUT/ranked/001_Si4O8_P3_221.cif    rank, cell formula, space group (symbol, '/' as '_'), number
    OUT/failed/s07_Si4O8.cif           structures whose relaxation failed, as sampled (if any)
    OUT/candidates.csv / .json         every sample: ranked, duplicate, relax_failed, invalid_cell
    OUT/enthalpy.png                   enthalpy per atom by rank and against volume per atom

A ranked CIF is written in its space group (:func:`symmetrized_cif`): the conventional standard cell
of the space group found at ``symprec`` (spglib via pymatgen's ``SpacegroupAnalyzer(structure,
symprec, angle_tolerance=5).get_refined_structure()``: standard lattice, symmetrised positions), with
``_symmetry_space_group_name_H-M``, ``_symmetry_Int_Tables_number`` and the symmetry operations, the
symmetry-distinct sites listed once. Reading it back (pymatgen, same ``symprec``) gives the space group
of its name and of the table, and a structure that matches the relaxed one (any cell). The conventional
cell may hold more atoms than the relaxed cell (fcc Cu: 4) or fewer (the relaxed cell was a supercell),
and its lattice is the idealised one: the numbers of the table (volume and density, ``num_atoms``, the
``formula``) describe the relaxed structure as relaxed, not the CIF's cell. Column ``cif_cell`` says
which cell a CIF holds: ``conventional`` (as above); ``relaxed`` (the relaxed cell in P1, when the
symmetrised CIF could not be written or did not read back right; ``reason`` says why); ``sampled``
(a failed relaxation's sampled structure, P1).
"""

from __future__ import annotations

import csv
import json
import math
import os
import shutil
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from xtal_tools.prediction.job import ANGLE_TOLERANCE, Candidate, finite_or_none, status_counts

__all__ = ["COLUMNS", "candidate_row", "plot_candidates", "symmetrized_cif", "write_results"]

COLUMNS = (
    "rank", "id", "formula", "num_atoms", "spacegroup", "spacegroup_number", "enthalpy_per_atom_eV",
    "enthalpy_above_lowest_meV_per_atom", "energy_per_atom_eV", "volume_per_atom_A3", "density_g_cm3",
    "rmsd_A", "converged", "steps", "status", "duplicate_of", "reason", "cif", "cif_cell",
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


def symmetrized_cif(structure, number: int, symprec: float = 0.1) -> tuple[str, str]:
    """``(cif_text, "")``: ``structure`` in the conventional standard cell of its space group (found at
    ``symprec`` Å and 5 degrees), with its symmetry operations; checked by reading it back: the space
    group must be ``number`` and the structure must match ``structure`` (pymatgen ``StructureMatcher``,
    no volume scaling, cells of any size). When writing or any check fails: ``(p1_cif_text, why)``, the
    structure as given in P1 and a sentence for the ``reason`` column. Never raises on a structure.
    """
    from pymatgen.analysis.structure_matcher import StructureMatcher
    from pymatgen.core import Structure
    from pymatgen.io.cif import CifWriter
    from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            text = str(CifWriter(structure, symprec=symprec, angle_tolerance=ANGLE_TOLERANCE))
            back = Structure.from_str(text, fmt="cif")
            sga = SpacegroupAnalyzer(back, symprec, angle_tolerance=ANGLE_TOLERANCE)
            found = sga.get_space_group_number()
            if found != number:
                why = f"read back as space group {found}, not {number}"
            elif not StructureMatcher(scale=False, attempt_supercell=True).fit(back, structure):
                why = "the symmetrised structure does not match the relaxed one"
            else:
                return text, ""
    except Exception as err:  # noqa: BLE001 - any failure of spglib/pymatgen: fall back to P1
        why = f"{type(err).__name__}: {err}"
    return str(CifWriter(structure)), f"CIF in P1 with the relaxed cell: symmetrisation failed ({why})"


def candidate_row(
    c: Candidate,
    width: int = 3,
    lowest: float | None = None,
    *,
    cif_cell: str | None = None,
    cif_note: str = "",
) -> dict[str, Any]:
    """One table row: numbers as floats (None when unknown), ``converged`` None when not relaxed;
    ``lowest``: the lowest ranked enthalpy per atom (eV), for the column above it (meV/atom);
    ``cif_cell``: which cell its CIF holds (module docstring; None: none written or not known yet);
    ``cif_note``: appended to ``reason`` (a symmetrised CIF that fell back to P1)."""
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
        "reason": "; ".join(x for x in (c.reason, cif_note) if x),
        "cif": cif_name(c, width) or None,
        "cif_cell": cif_cell,
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
    candidates: Sequence[Candidate],
    out_dir: str | os.PathLike,
    *,
    meta: Mapping[str, Any],
    title: str,
    symprec: float = 0.1,
) -> dict[str, str]:
    """Write every output of :data:`OUTPUTS` into ``out_dir`` (staged, then moved); returns their paths.

    ``meta`` (formula, pressure, settings: JSON-able) heads the JSON file; ``symprec``: the tolerance
    (Å) the space groups were found at, for the ranked CIFs (:func:`symmetrized_cif`).
    """
    from pymatgen.io.cif import CifWriter

    out_dir = Path(out_dir)
    staging = out_dir / ".staging"
    shutil.rmtree(staging, ignore_errors=True)
    (staging / "ranked").mkdir(parents=True)
    try:
        width = max(3, len(str(sum(c.status == "ranked" for c in candidates))))
        enthalpies = [c.enthalpy_per_atom for c in candidates if c.status == "ranked"]
        finite = [h for h in enthalpies if math.isfinite(h)]
        lowest = min(finite) if finite else None
        rows = []
        for c in candidates:
            row = candidate_row(c, width, lowest)
            if row["cif"]:
                if c.status == "ranked":
                    text, note = symmetrized_cif(c.final, c.spacegroup_number, symprec)
                    row = candidate_row(c, width, lowest, cif_cell="relaxed" if note else "conventional",
                                        cif_note=note)  # fmt: skip
                else:
                    text, row["cif_cell"] = str(CifWriter(c.initial)), "sampled"
                (staging / row["cif"]).parent.mkdir(exist_ok=True)
                (staging / row["cif"]).write_text(text)
            rows.append(row)
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
