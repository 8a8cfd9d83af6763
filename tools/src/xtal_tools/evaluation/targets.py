"""Benchmark targets: a known structure and the pressure (GPa) to predict it at.

:class:`BenchTarget`, read from a store split (:func:`store_targets`) or from a CSV of CIF files and
pressures (:func:`read_targets_csv`), checked against a model (:func:`check_targets`).
"""

from __future__ import annotations

import csv
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "BenchTarget",
    "check_targets",
    "part_indices",
    "read_targets_csv",
    "standard_cell",
    "store_targets",
    "target_formula",
]


@dataclass(frozen=True)
class BenchTarget:
    """A known structure (pymatgen ``Structure``) to be found at ``pressure`` GPa; ``id`` labels it."""

    id: str
    structure: Any
    pressure: float

    @property
    def num_atoms(self) -> int:
        return len(self.structure)

    @property
    def formula(self) -> str:
        return target_formula(self.structure)


def target_formula(structure) -> str:
    """Full-cell formula in order of first appearance, e.g. ``"Na4Cl4"`` (what the model is asked for)."""
    counts: dict[str, int] = {}
    for site in structure:
        symbol = site.specie.symbol
        counts[symbol] = counts.get(symbol, 0) + 1
    return "".join(f"{el}{n}" for el, n in counts.items())


def read_targets_csv(path: str | os.PathLike, *, cell: str = "given") -> list[BenchTarget]:
    """Targets from a CSV with columns ``cif`` (path, relative to the CSV's folder) and ``pressure`` (GPa).

    An ``id`` column names the targets (default: the CIF's file stem). ``cell``: ``given`` keeps the
    CIF's cell, ``primitive`` / ``conventional`` use spglib's standard cells (the paper samples both
    and keeps the better; run the benchmark twice to do the same).

    Raises:
        FileNotFoundError: the CSV or a CIF does not exist.
        ValueError: missing columns, an empty list, a CIF pymatgen cannot read, disordered sites, or a
            NaN/negative/non-numeric pressure (the message names the file and line).
    """
    from pymatgen.core import Structure

    from xtal_tools.generation import check_pressure

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"targets file {path} does not exist")
    try:
        with path.open(newline="") as fh:
            reader = csv.DictReader(fh)
            columns = set(reader.fieldnames or ())
            records = list(reader)
    except (UnicodeDecodeError, csv.Error) as err:
        raise ValueError(f"{path}: not a readable CSV ({err})") from None
    missing = {"cif", "pressure"} - columns
    if missing:
        raise ValueError(f"{path}: missing column(s) {sorted(missing)} (found {sorted(columns)})")
    targets = []
    for line, rec in enumerate(records, start=2):
        where = f"{path}:{line}"
        cif = (rec.get("cif") or "").strip()
        if not cif:
            raise ValueError(f"{where}: empty cif path")
        cif_path = Path(cif) if Path(cif).is_absolute() else path.parent / cif
        if not cif_path.is_file():
            raise FileNotFoundError(f"{where}: CIF {cif_path} does not exist")
        pressure = check_pressure(rec.get("pressure"), where)
        try:
            structure = Structure.from_file(str(cif_path))
        except Exception as err:  # noqa: BLE001  pymatgen raises many types for a bad CIF
            raise ValueError(f"{where}: cannot read CIF {cif_path}: {type(err).__name__}: {err}") from None
        if not structure.is_ordered:
            raise ValueError(f"{where}: CIF {cif_path} has partially occupied sites (need an ordered cell)")
        label = (rec.get("id") or "").strip() or cif_path.stem
        targets.append(BenchTarget(label, standard_cell(structure, cell), pressure))
    if not targets:
        raise ValueError(f"{path}: no targets (the CSV has a header but no rows)")
    return targets


def standard_cell(structure, cell: str):
    """``structure`` as ``given``, or spglib's ``primitive`` / ``conventional`` standard cell (0.1 Å)."""
    if cell == "given":
        return structure
    if cell not in ("primitive", "conventional"):
        raise ValueError(f"unknown cell {cell!r}: choose given, primitive or conventional")
    from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

    sga = SpacegroupAnalyzer(structure, symprec=0.1)
    if cell == "primitive":
        return sga.get_primitive_standard_structure()
    return sga.get_conventional_standard_structure()


def part_indices(store, split: str, part: str) -> np.ndarray:
    """Structure indices of part ``part`` of split ``split`` of ``store`` (an open store or its URL).

    Raises:
        KeyError: no such split or part (naming the parts there are).
    """
    from xtal_data import CrystalStore

    if not isinstance(store, CrystalStore):
        store = CrystalStore.open(store)
    parts = store.split(split)
    if part not in parts:
        raise KeyError(f"split {split!r} has no part {part!r}; it has {sorted(parts)}")
    return np.asarray(parts[part])


def store_targets(data: str, *, split: str, part: str, limit: int | None = None) -> list[BenchTarget]:
    """The first ``limit`` structures (all when None) of part ``part`` of split ``split`` of a store.

    Raises:
        KeyError: no such split or part.  ValueError: the selection is empty.
    """
    from xtal_data import CrystalStore
    from xtal_data.torch_dataset import CrystalDataset

    store = CrystalStore.open(data)
    indices = part_indices(store, split, part)[:limit]
    if len(indices) == 0:
        raise ValueError(f"{data}: split {split!r} part {part!r} is empty")
    dataset = CrystalDataset(store, indices=indices, properties=("pressure",))
    return [
        BenchTarget(
            str(dataset.ids[i]), dataset.crystal(i).to_pymatgen(), float(dataset.properties["pressure"][i])
        )
        for i in range(len(dataset))
    ]


def check_targets(targets: Sequence[BenchTarget], *, max_atoms: int, num_elements: int) -> None:
    """Every target must be a formula the model can sample (before any work starts).

    Raises:
        ValueError: no targets, duplicate ids, or a target with too many atoms / an unknown element.
    """
    from cond_vae import parse_formula

    if not targets:
        raise ValueError("no targets given")
    seen: set[str] = set()
    for t in targets:
        if t.id in seen:
            raise ValueError(f"duplicate target id {t.id!r}")
        seen.add(t.id)
        try:
            parse_formula(t.formula, max_atoms=max_atoms, num_elements=num_elements)
        except ValueError as err:
            raise ValueError(f"target {t.id!r}: {err}") from None
