"""Dataset statistics: element counts, atoms per cell, pressures, and a printed summary."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from xtal_data.store import CrystalStore


@dataclass(frozen=True)
class StoreStats:
    """Counts over a store.

    Attributes:
        num_structures, num_atoms: totals.
        structures_with_element: (119,) int64, number of structures containing each atomic number.
        atoms_of_element: (119,) int64, number of atoms of each atomic number.
        atoms_per_cell: (C,) int64.
        pressure: (C,) float64, GPa.
        properties: property name -> kind ("float" / "str").
        splits: split name -> part sizes.
    """

    url: str
    num_structures: int
    num_atoms: int
    structures_with_element: np.ndarray
    atoms_of_element: np.ndarray
    atoms_per_cell: np.ndarray
    pressure: np.ndarray
    properties: dict[str, str]
    splits: dict[str, dict[str, int]]

    def element_counts(self) -> dict[str, int]:
        """Symbol -> number of structures containing the element (non-zero entries only)."""
        from pymatgen.core import Element

        return {Element.from_Z(z).symbol: int(n) for z, n in enumerate(self.structures_with_element) if n}

    def summary(self) -> str:
        lines = [f"store: {self.url}", f"structures: {self.num_structures}", f"atoms: {self.num_atoms}"]
        if self.num_structures:
            n, p = self.atoms_per_cell, self.pressure
            lines.append(
                f"atoms per cell: min {n.min()}, median {np.median(n):g}, mean {n.mean():.2f}, max {n.max()}"
            )
            pressures = np.unique(p)
            shown = ", ".join(f"{v:g}" for v in pressures[:8]) + (" ..." if len(pressures) > 8 else "")
            lines.append(
                f"pressure (GPa): min {p.min():g}, max {p.max():g}, {len(pressures)} distinct: {shown}"
            )
            top = sorted(self.element_counts().items(), key=lambda kv: -kv[1])
            lines.append(
                f"elements: {len(top)} distinct; most common " + ", ".join(f"{s} {c}" for s, c in top[:10])
            )
        lines.append("properties: " + (", ".join(f"{k} ({v})" for k, v in self.properties.items()) or "none"))
        for name, parts in self.splits.items():
            lines.append(f"split {name}: " + ", ".join(f"{p} {k}" for p, k in parts.items()))
        return "\n".join(lines)


def compute_stats(store: CrystalStore) -> StoreStats:
    """Statistics of every committed structure in ``store``."""
    table = store.read()
    crystal = np.repeat(np.arange(len(table)), table.num_atoms)  # (N,)
    atoms_of_element = np.bincount(table.atomic_numbers, minlength=119)
    pairs = np.unique(crystal * 119 + table.atomic_numbers)  # one entry per (structure, element)
    structures_with_element = np.bincount(pairs % 119, minlength=119)
    splits = {k: v["parts"] for k, v in store.attributes["splits"].items()}
    return StoreStats(
        url=store.url,
        num_structures=len(table),
        num_atoms=int(table.num_atoms.sum()),
        structures_with_element=structures_with_element,
        atoms_of_element=atoms_of_element,
        atoms_per_cell=table.num_atoms,
        pressure=table.pressure,
        properties=store.property_names,
        splits=splits,
    )
