"""Crystal containers: one structure (:class:`Crystal`, numpy) and a flat torch batch
(:class:`CrystalBatch`, PyG style), plus :func:`collate`."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ._checks import _name, check_flat_batch, check_lattices
from ._precision import full_precision

__all__ = ["Crystal", "CrystalBatch", "collate"]

MAX_ATOMIC_NUMBER = 118


def _label(id: str | None) -> str:
    return "crystal" if id is None else f"crystal {id!r}"


def _readonly(array: np.ndarray) -> np.ndarray:
    array = np.array(array, copy=True)
    array.setflags(write=False)
    return array


@dataclass(frozen=True, eq=False)
class Crystal:
    """One periodic structure (numpy arrays, validated and read-only).

    Attributes:
        atom_types: ``(n,)`` int64 atomic numbers (1 to 118).
        frac_coords: ``(n, 3)`` float64 fractional coordinates.
        lattice: ``(3, 3)`` float64, rows = lattice vectors a, b, c in Å.
        properties: scalar properties, e.g. ``{"pressure": 10.0}`` (GPa).
        id: optional identifier (e.g. a Materials Project id), used in error messages.
    """

    atom_types: np.ndarray
    frac_coords: np.ndarray
    lattice: np.ndarray
    properties: Mapping[str, float] = field(default_factory=dict)
    id: str | None = None

    def __post_init__(self) -> None:
        who = _label(self.id)
        atom_types = np.asarray(self.atom_types)
        if atom_types.ndim != 1 or not (np.issubdtype(atom_types.dtype, np.integer) or atom_types.size == 0):
            raise ValueError(f"atom_types: {who} needs a 1-D integer array, got {atom_types.dtype}")
        bad = (atom_types < 1) | (atom_types > MAX_ATOMIC_NUMBER)
        if bad.any():
            raise ValueError(f"atom_types: {who} has unknown element number {int(atom_types[bad][0])}")
        frac = np.asarray(self.frac_coords, dtype=np.float64)
        if frac.shape != (atom_types.shape[0], 3):
            raise ValueError(f"frac_coords: {who} needs shape ({atom_types.shape[0]}, 3), got {frac.shape}")
        if not np.isfinite(frac).all():
            raise ValueError(f"frac_coords: {who} has non-finite coordinates")
        lattice = np.asarray(self.lattice, dtype=np.float64)
        if lattice.shape != (3, 3):
            raise ValueError(f"lattice: {who} needs shape (3, 3), got {lattice.shape}")
        check_lattices(torch.tensor(lattice)[None], ids=(self.id,))
        properties = {}
        for key, value in dict(self.properties).items():
            value = float(value)
            if not math.isfinite(value):
                raise ValueError(f"properties: {who} has non-finite {key!r} = {value}")
            properties[str(key)] = value
        object.__setattr__(self, "atom_types", _readonly(atom_types.astype(np.int64)))
        object.__setattr__(self, "frac_coords", _readonly(frac))
        object.__setattr__(self, "lattice", _readonly(lattice))
        object.__setattr__(self, "properties", properties)

    @property
    def num_atoms(self) -> int:
        return int(self.atom_types.shape[0])

    @property
    def cart_coords(self) -> np.ndarray:
        """``(n, 3)`` Cartesian coordinates in Å."""
        return self.frac_coords @ self.lattice

    def replace(self, **changes: Any) -> Crystal:
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_pymatgen(cls, structure: Any, *, id: str | None = None, **properties: float) -> Crystal:
        """From a pymatgen ``Structure`` (ordered); coordinates wrapped into [0, 1)."""
        from .convert import structure_to_crystal

        return structure_to_crystal(structure, id=id, **properties)

    def to_pymatgen(self) -> Any:
        from .convert import crystal_to_structure

        return crystal_to_structure(self)

    @classmethod
    def from_ase(cls, atoms: Any, *, id: str | None = None, **properties: float) -> Crystal:
        """From a fully periodic ASE ``Atoms``; coordinates wrapped into [0, 1)."""
        from .convert import atoms_to_crystal

        return atoms_to_crystal(atoms, id=id, **properties)

    def to_ase(self) -> Any:
        from .convert import crystal_to_atoms

        return crystal_to_atoms(self)


@dataclass(frozen=True, eq=False)
class CrystalBatch:
    """A flat batch of ``C`` crystals with ``N`` atoms in total (atoms stored crystal by crystal).

    Attributes:
        atom_types: ``(N,)`` long atomic numbers.
        frac_coords: ``(N, 3)`` fractional coordinates.
        lattice: ``(C, 3, 3)`` lattices in Å, rows = lattice vectors.
        num_atoms: ``(C,)`` long atoms per crystal.
        batch: ``(N,)`` long crystal index of each atom.
        properties: per-crystal properties, each ``(C,)`` (e.g. ``"pressure"`` in GPa).
        ids: ``C`` identifiers (or None).
        edge_index: optional precomputed graph of these structures (e.g. the encoder's, from a
            cache): ``(2, E)`` long, row 0 the source ``j``, row 1 the target ``i``, batch-wide atom
            indices; ``None`` when the consumer builds its own graph.
        cell_offsets: ``(E, 3)`` long integer image of each source, present exactly when
            ``edge_index`` is.

    Construction checks shapes only (no device sync); :meth:`validate` checks values.
    """

    atom_types: Tensor
    frac_coords: Tensor
    lattice: Tensor
    num_atoms: Tensor
    batch: Tensor
    properties: Mapping[str, Tensor] = field(default_factory=dict)
    ids: tuple[str | None, ...] = ()
    edge_index: Tensor | None = None
    cell_offsets: Tensor | None = None

    def __post_init__(self) -> None:
        n, c = self.atom_types.shape[0], self.lattice.shape[0]
        if (self.edge_index is None) != (self.cell_offsets is None):
            raise ValueError("edge_index and cell_offsets: give both or neither")
        if self.edge_index is not None:
            e = self.edge_index.shape[-1]
            if self.edge_index.ndim != 2 or self.edge_index.shape[0] != 2:
                raise ValueError(f"edge_index: expected shape (2, E), got {tuple(self.edge_index.shape)}")
            if tuple(self.cell_offsets.shape) != (e, 3):
                got = tuple(self.cell_offsets.shape)
                raise ValueError(f"cell_offsets: expected shape ({e}, 3), got {got}")
        expected = {
            "atom_types": (n,),
            "frac_coords": (n, 3),
            "lattice": (c, 3, 3),
            "num_atoms": (c,),
            "batch": (n,),
        }
        for name, shape in expected.items():
            if tuple(getattr(self, name).shape) != shape:
                raise ValueError(f"{name}: expected shape {shape}, got {tuple(getattr(self, name).shape)}")
        for key, value in self.properties.items():
            if tuple(value.shape) != (c,):
                raise ValueError(f"properties[{key!r}]: expected shape ({c},), got {tuple(value.shape)}")
        ids = tuple(self.ids) if len(self.ids) else (None,) * c
        if len(ids) != c:
            raise ValueError(f"ids: expected {c} entries, got {len(ids)}")
        object.__setattr__(self, "ids", ids)
        object.__setattr__(self, "properties", dict(self.properties))

    @classmethod
    def from_tensors(
        cls,
        *,
        atom_types: Tensor,
        frac_coords: Tensor,
        lattice: Tensor,
        num_atoms: Tensor,
        properties: Mapping[str, Tensor] | None = None,
        ids: Sequence[str | None] | None = None,
    ) -> CrystalBatch:
        """Build a batch from flat tensors, deriving ``batch`` from ``num_atoms``."""
        num_atoms = num_atoms.long()
        batch = torch.repeat_interleave(torch.arange(num_atoms.shape[0], device=num_atoms.device), num_atoms)
        return cls(
            atom_types=atom_types.long(),
            frac_coords=frac_coords,
            lattice=lattice,
            num_atoms=num_atoms,
            batch=batch,
            properties=dict(properties or {}),
            ids=tuple(ids) if ids is not None else (),
        )

    @property
    def num_crystals(self) -> int:
        return int(self.lattice.shape[0])

    @property
    @full_precision
    def cart_coords(self) -> Tensor:
        """``(N, 3)`` Cartesian coordinates in Å."""
        return torch.bmm(self.frac_coords.unsqueeze(1), self.lattice[self.batch]).squeeze(1)

    def validate(self) -> CrystalBatch:
        """Check values (counts, finiteness, volumes, elements); raises ValueError naming the crystal."""
        check_flat_batch(self.frac_coords, self.lattice, self.num_atoms, ids=self.ids)
        bad = (self.atom_types < 1) | (self.atom_types > MAX_ATOMIC_NUMBER)
        if bool(bad.any()):
            atom = int(bad.nonzero()[0, 0])
            who = _name(int(self.batch[atom]), self.ids)
            raise ValueError(f"atom_types: {who} has unknown element number {int(self.atom_types[atom])}")
        return self

    def to(self, device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> CrystalBatch:
        """Move to ``device``; ``dtype`` applies to floating-point tensors only."""

        def move(t: Tensor) -> Tensor:
            return t.to(device=device, dtype=dtype if t.is_floating_point() else None)

        return CrystalBatch(
            atom_types=move(self.atom_types),
            frac_coords=move(self.frac_coords),
            lattice=move(self.lattice),
            num_atoms=move(self.num_atoms),
            batch=move(self.batch),
            properties={k: move(v) for k, v in self.properties.items()},
            ids=self.ids,
            edge_index=None if self.edge_index is None else move(self.edge_index),
            cell_offsets=None if self.cell_offsets is None else move(self.cell_offsets),
        )

    def replace(self, **changes: Any) -> CrystalBatch:
        return dataclasses.replace(self, **changes)

    def to_crystals(self) -> list[Crystal]:
        """Split into float64 numpy :class:`Crystal` objects."""
        counts = self.num_atoms.tolist()
        types = self.atom_types.detach().cpu().numpy().astype(np.int64)
        frac = self.frac_coords.detach().cpu().double().numpy()
        lattice = self.lattice.detach().cpu().double().numpy()
        props = {k: v.detach().cpu().double().numpy() for k, v in self.properties.items()}
        out, start = [], 0
        for c, n in enumerate(counts):
            out.append(
                Crystal(
                    atom_types=types[start : start + n],
                    frac_coords=frac[start : start + n],
                    lattice=lattice[c],
                    properties={k: float(v[c]) for k, v in props.items()},
                    id=self.ids[c],
                )
            )
            start += n
        return out

    @classmethod
    def from_pymatgen(
        cls, structures: Sequence[Any], dtype: torch.dtype = torch.float32, **properties: Sequence[float]
    ) -> CrystalBatch:
        """Collate pymatgen structures; ``properties`` give one value per structure."""
        crystals = [
            Crystal.from_pymatgen(s, **{k: v[i] for k, v in properties.items()})
            for i, s in enumerate(structures)
        ]
        return collate(crystals, dtype=dtype)

    def to_pymatgen(self) -> list[Any]:
        return [c.to_pymatgen() for c in self.to_crystals()]


def collate(crystals: Sequence[Crystal], dtype: torch.dtype = torch.float32) -> CrystalBatch:
    """Stack crystals into a flat :class:`CrystalBatch` (floats in ``dtype``, on CPU).

    All crystals must carry the same property keys; a crystal missing one raises ValueError."""
    crystals = list(crystals)
    if not crystals:
        raise ValueError("crystals: collate needs at least one crystal")
    keys = set(crystals[0].properties)
    for index, crystal in enumerate(crystals):
        if set(crystal.properties) != keys:
            missing = sorted(keys ^ set(crystal.properties))
            raise ValueError(
                f"properties: {_name(index, tuple(c.id for c in crystals))} differs from crystal 0 "
                f"in keys {missing}; every crystal in a batch needs the same properties"
            )
    num_atoms = torch.tensor([c.num_atoms for c in crystals], dtype=torch.long)
    return CrystalBatch(
        atom_types=torch.from_numpy(np.concatenate([c.atom_types for c in crystals])).long(),
        frac_coords=torch.from_numpy(np.concatenate([c.frac_coords for c in crystals])).to(dtype),
        lattice=torch.from_numpy(np.stack([c.lattice for c in crystals])).to(dtype),
        num_atoms=num_atoms,
        batch=torch.repeat_interleave(torch.arange(len(crystals)), num_atoms),
        properties={k: torch.tensor([c.properties[k] for c in crystals], dtype=dtype) for k in sorted(keys)},
        ids=tuple(c.id for c in crystals),
    )
