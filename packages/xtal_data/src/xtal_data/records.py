"""In-memory containers: one structure (:class:`CrystalRecord`), a flat ragged table (:class:`CrystalArrays`).

Units: Å for lattices, fractional coordinates in [0, 1), GPa for pressure. Lattices are row vectors
(``cart = frac @ lattice``). Shapes use C crystals and N atoms.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

PropertyValue = float | str
"""A scalar property: numbers are stored as float64 (NaN = missing), text as str ("" = missing)."""

MAX_Z = 118
MAX_LATTICE_LENGTH = 1.0e4
"""Å; a longer lattice vector is refused on write and reported as damage on read."""
MIN_VOLUME = 1.0e-6
"""Å^3; a smaller cell volume is a zero / degenerate cell."""


def wrap_frac(frac: np.ndarray) -> np.ndarray:
    """Wrap fractional coordinates into [0, 1); guards the float rounding that makes ``x % 1 == 1.0``."""
    out = np.mod(frac, 1.0)
    out[out >= 1.0] = 0.0
    return out


def as_str_array(values) -> np.ndarray:
    """Any array of strings (numpy StringDType, object, unicode) as a fixed-width unicode array."""
    return np.array(np.asarray(values, dtype=object).tolist(), dtype=str).reshape(-1)


def concat_ranges(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Concatenation of ``arange(s, s + n)`` for each (s, n), vectorised; (sum(lengths),) int64."""
    starts = np.asarray(starts, dtype=np.int64)
    lengths = np.asarray(lengths, dtype=np.int64)
    ends = np.cumsum(lengths)
    shift = np.repeat(starts - (ends - lengths), lengths)
    return np.arange(int(ends[-1]) if len(ends) else 0, dtype=np.int64) + shift


def reduced_formula(atomic_numbers: np.ndarray) -> str:
    """Reduced formula (pymatgen's convention, e.g. ``"SrTiO3"``) of a list of atomic numbers."""
    from pymatgen.core import Composition, Element

    counts: dict[str, int] = {}
    for z, n in zip(*np.unique(np.asarray(atomic_numbers), return_counts=True), strict=True):
        counts[Element.from_Z(int(z)).symbol] = int(n)
    with warnings.catch_warnings():  # superheavy elements have no electronegativity (used for ordering)
        warnings.simplefilter("ignore", UserWarning)
        return Composition(counts).reduced_formula


@dataclass(frozen=True)
class CrystalRecord:
    """One periodic structure.

    Attributes:
        id: unique identifier within a store.
        atomic_numbers: (n,) int64 atomic numbers, 1..118.
        frac_coords: (n, 3) float64 fractional coordinates in [0, 1).
        lattice: (3, 3) float64, rows are lattice vectors in Å.
        pressure: GPa.
        properties: named scalars (float or str), e.g. ``{"energy_per_atom": -7.1}`` in eV/atom.
    """

    id: str
    atomic_numbers: np.ndarray
    frac_coords: np.ndarray
    lattice: np.ndarray
    pressure: float
    properties: Mapping[str, PropertyValue] = field(default_factory=dict)

    @property
    def num_atoms(self) -> int:
        return int(self.atomic_numbers.shape[0])

    @property
    def formula(self) -> str:
        return reduced_formula(self.atomic_numbers)

    def validate(self) -> CrystalRecord:
        """Check shapes, finiteness and element range; returns a copy with canonical dtypes and wrapped
        coordinates. Raises ValueError naming the record and the problem."""
        z = np.asarray(self.atomic_numbers)
        frac = np.asarray(self.frac_coords, dtype=np.float64)
        lat = np.asarray(self.lattice, dtype=np.float64)
        where = f"structure {self.id!r}"
        if not self.id:
            raise ValueError("structure has an empty id")
        if z.ndim != 1 or z.shape[0] == 0:
            raise ValueError(f"{where}: needs at least one atom, got atomic_numbers of shape {z.shape}")
        if not np.issubdtype(z.dtype, np.integer):
            raise ValueError(f"{where}: atomic numbers must be integers, got dtype {z.dtype}")
        if z.min() < 1 or z.max() > MAX_Z:
            outside = sorted(set(z[(z < 1) | (z > MAX_Z)].tolist()))[:5]
            raise ValueError(f"{where}: atomic numbers outside 1..{MAX_Z} ({outside})")
        if frac.shape != (z.shape[0], 3):
            raise ValueError(f"{where}: frac_coords shape {frac.shape} != ({z.shape[0]}, 3)")
        if lat.shape != (3, 3):
            raise ValueError(f"{where}: lattice shape {lat.shape} != (3, 3)")
        if not (np.isfinite(frac).all() and np.isfinite(lat).all()):
            raise ValueError(f"{where}: non-finite coordinates or lattice")
        if abs(np.linalg.det(lat)) < MIN_VOLUME:
            raise ValueError(f"{where}: zero or degenerate cell volume ({np.linalg.det(lat):.3g} Å^3)")
        if np.linalg.norm(lat, axis=1).max() > MAX_LATTICE_LENGTH:
            raise ValueError(
                f"{where}: lattice vector longer than {MAX_LATTICE_LENGTH:g} Å "
                f"({np.linalg.norm(lat, axis=1).round(1).tolist()})"
            )
        pressure = float(self.pressure)
        if not np.isfinite(pressure):
            raise ValueError(f"{where}: pressure is {self.pressure!r}")
        props = {}
        for name, value in self.properties.items():
            props[name] = value if isinstance(value, str) else float(value)
        return CrystalRecord(self.id, z.astype(np.int64), wrap_frac(frac), lat, pressure, props)

    @classmethod
    def from_pymatgen(cls, structure: Any, *, id: str, pressure: float, **properties: PropertyValue):
        """From an ordered ``pymatgen.core.Structure``; disordered sites raise ValueError."""
        if not structure.is_ordered:
            raise ValueError(f"structure {id!r}: disordered (partial occupancy) sites are not supported")
        from pymatgen.core import Element

        for site in structure:
            symbol = getattr(site.specie, "symbol", str(site.specie))
            if not Element.is_valid_symbol(symbol):
                raise ValueError(f"structure {id!r}: unknown element {symbol!r}")
        return cls(
            id=id,
            atomic_numbers=np.array([site.specie.Z for site in structure], dtype=np.int64),
            frac_coords=np.array(structure.frac_coords, dtype=np.float64).reshape(-1, 3),
            lattice=np.array(structure.lattice.matrix, dtype=np.float64),
            pressure=pressure,
            properties=properties,
        ).validate()

    def to_pymatgen(self) -> Any:
        from pymatgen.core import Lattice, Structure

        return Structure(
            Lattice(self.lattice), self.atomic_numbers.tolist(), self.frac_coords, coords_are_cartesian=False
        )

    @classmethod
    def from_ase(cls, atoms: Any, *, id: str, pressure: float, **properties: PropertyValue):
        """From a periodic ``ase.Atoms`` (all three directions periodic)."""
        if not all(atoms.pbc):
            flags = " ".join("T" if p else "F" for p in atoms.pbc)
            raise ValueError(f"structure {id!r}: not periodic in all three directions (pbc {flags})")
        if not atoms.cell.any():
            raise ValueError(f"structure {id!r}: periodic but has no lattice (no cell given)")
        if abs(atoms.cell.volume) < MIN_VOLUME:
            raise ValueError(
                f"structure {id!r}: zero or degenerate cell volume ({atoms.cell.volume:.3g} Å^3)"
            )
        return cls(
            id=id,
            atomic_numbers=np.asarray(atoms.numbers, dtype=np.int64),
            frac_coords=np.asarray(atoms.get_scaled_positions(wrap=False), dtype=np.float64),
            lattice=np.asarray(atoms.cell[:], dtype=np.float64),
            pressure=pressure,
            properties=properties,
        ).validate()

    def to_ase(self) -> Any:
        from ase import Atoms

        return Atoms(
            numbers=self.atomic_numbers, scaled_positions=self.frac_coords, cell=self.lattice, pbc=True
        )


@dataclass(frozen=True)
class CrystalArrays:
    """A flat, ragged table of C structures (what a store holds; numpy only).

    Attributes:
        ids: (C,) str.
        formula: (C,) str reduced formulas.
        num_atoms: (C,) int64.
        atomic_numbers: (N,) int64, N = num_atoms.sum().
        frac_coords: (N, 3) float64 in [0, 1).
        lattice: (C, 3, 3) float64, Å, rows are lattice vectors.
        pressure: (C,) float64, GPa.
        properties: name -> (C,) float64 (NaN = missing) or (C,) str ("" = missing).
    """

    ids: np.ndarray
    formula: np.ndarray
    num_atoms: np.ndarray
    atomic_numbers: np.ndarray
    frac_coords: np.ndarray
    lattice: np.ndarray
    pressure: np.ndarray
    properties: Mapping[str, np.ndarray] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.num_atoms.shape[0])

    @property
    def offsets(self) -> np.ndarray:
        """(C + 1,) int64 start offsets of each structure's atoms, plus the total at the end."""
        return np.concatenate([[0], np.cumsum(self.num_atoms)]).astype(np.int64)

    def record(self, i: int) -> CrystalRecord:
        start, stop = self.offsets[i], self.offsets[i + 1]
        props = {k: (str(v[i]) if v.dtype.kind in "UTO" else float(v[i])) for k, v in self.properties.items()}
        return CrystalRecord(
            id=str(self.ids[i]),
            atomic_numbers=self.atomic_numbers[start:stop],
            frac_coords=self.frac_coords[start:stop],
            lattice=self.lattice[i],
            pressure=float(self.pressure[i]),
            properties=props,
        )

    def __iter__(self):
        return (self.record(i) for i in range(len(self)))

    def take(self, indices: Sequence[int] | np.ndarray) -> CrystalArrays:
        """Structures at ``indices`` (any order, repeats allowed) as a new table."""
        idx = np.asarray(indices, dtype=np.int64).reshape(-1)
        atom_idx = concat_ranges(self.offsets[idx], self.num_atoms[idx])
        return CrystalArrays(
            ids=self.ids[idx],
            formula=self.formula[idx],
            num_atoms=self.num_atoms[idx],
            atomic_numbers=self.atomic_numbers[atom_idx],
            frac_coords=self.frac_coords[atom_idx],
            lattice=self.lattice[idx],
            pressure=self.pressure[idx],
            properties={k: v[idx] for k, v in self.properties.items()},
        )

    @classmethod
    def from_records(cls, records: Sequence[CrystalRecord]) -> CrystalArrays:
        """Stack validated records; properties missing from some records become NaN / ""."""
        records = [r.validate() for r in records]
        names: dict[str, bool] = {}  # name -> is_text
        for r in records:
            for k, v in r.properties.items():
                is_text = isinstance(v, str)
                if names.setdefault(k, is_text) != is_text:
                    raise ValueError(f"property {k!r} mixes text and numbers (structure {r.id!r})")
        props = {}
        for k, is_text in names.items():
            if is_text:
                props[k] = np.array([r.properties.get(k, "") for r in records], dtype=str)
            else:
                props[k] = np.array([r.properties.get(k, np.nan) for r in records], dtype=np.float64)
        empty3 = np.zeros((0, 3))
        return cls(
            ids=np.array([r.id for r in records], dtype=str),
            formula=np.array([r.formula for r in records], dtype=str),
            num_atoms=np.array([r.num_atoms for r in records], dtype=np.int64),
            atomic_numbers=np.concatenate([r.atomic_numbers for r in records] or [np.zeros(0, np.int64)]),
            frac_coords=np.concatenate([r.frac_coords for r in records] or [empty3]),
            lattice=np.stack([r.lattice for r in records]) if records else np.zeros((0, 3, 3)),
            pressure=np.array([r.pressure for r in records], dtype=np.float64),
            properties=props,
        )
