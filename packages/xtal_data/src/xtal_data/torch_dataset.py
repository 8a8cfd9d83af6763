"""Torch adapter (extra ``xtal-data[torch]``): a store as a Dataset of ``xtal_graph.Crystal`` and a
DataLoader of ``xtal_graph.CrystalBatch``.

The selected structures are read from the store once, into numpy arrays (about 25 bytes per atom), so
workers never touch the store and random access is a slice. ``dataset[i]`` is one ``Crystal``;
``dataset[[i, j, ...]]`` builds a whole ``CrystalBatch`` with vectorised numpy (the path
:func:`crystal_loader` uses). Properties are ``(C,)`` tensors: ``"pressure"`` (GPa) from the store's
pressure array, any other name from its numeric properties (a missing value raises, naming the structure).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch.utils.data import BatchSampler, DataLoader, Dataset, RandomSampler, SequentialSampler
from xtal_graph import Crystal, CrystalBatch

from xtal_data.records import concat_ranges
from xtal_data.store import CrystalStore


class CrystalDataset(Dataset):
    """Structures of a store (all, one split part, or explicit indices) for torch.

    Args:
        store: an open store or its URL.
        split, part: a stored split and its part (e.g. ``"random"``, ``"train"``); or
        indices: explicit structure indices (mutually exclusive with ``split``).
        properties: names to put in ``Crystal.properties`` / ``CrystalBatch.properties``.
        dtype: float dtype of the batches' coordinates, lattices and properties.
    """

    def __init__(
        self,
        store: CrystalStore | str,
        *,
        split: str | None = None,
        part: str = "train",
        indices: Sequence[int] | np.ndarray | None = None,
        properties: Sequence[str] = ("pressure",),
        dtype: torch.dtype = torch.float32,
        storage_options: dict | None = None,
    ):
        if not isinstance(store, CrystalStore):
            store = CrystalStore.open(store, storage_options=storage_options)
        if split is not None and indices is not None:
            raise ValueError("give either split= or indices=, not both")
        if split is not None:
            parts = store.split(split)
            if part not in parts:
                raise KeyError(f"split {split!r} has no part {part!r}; it has {sorted(parts)}")
            indices = parts[part]
        table = store.read() if indices is None else store.read(np.asarray(indices, dtype=np.int64))
        self.url, self.dtype = store.url, dtype
        self.ids = table.ids.tolist()
        self.num_atoms = table.num_atoms  # (C,)
        self.offsets = table.offsets  # (C + 1,)
        self.atomic_numbers = table.atomic_numbers  # (N,)
        self.frac_coords = table.frac_coords  # (N, 3)
        self.lattice = table.lattice  # (C, 3, 3)
        self.properties = {name: self._property(table, name) for name in properties}

    def _property(self, table, name: str) -> np.ndarray:
        if name == "pressure":
            return table.pressure
        if name not in table.properties:
            raise KeyError(f"store {self.url} has no property {name!r}; it has {sorted(table.properties)}")
        values = table.properties[name]
        if values.dtype.kind == "U":
            raise ValueError(f"property {name!r} is text; only numeric properties become tensors")
        missing = np.flatnonzero(~np.isfinite(values))
        if missing.size:
            first = self.ids[missing[0]]
            raise ValueError(
                f"property {name!r} is missing (NaN) for {missing.size} structures, e.g. {first!r}; "
                "curate or pick indices without them"
            )
        return values

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, index):
        if isinstance(index, int | np.integer):
            return self.crystal(int(index))
        return self.batch(index)

    def crystal(self, i: int) -> Crystal:
        """Structure ``i`` of the selection as an ``xtal_graph.Crystal`` (float64 numpy)."""
        if not -len(self) <= i < len(self):
            raise IndexError(f"index {i} out of range for {len(self)} structures")
        i %= len(self)
        atoms = slice(self.offsets[i], self.offsets[i + 1])
        return Crystal(
            atom_types=self.atomic_numbers[atoms],
            frac_coords=self.frac_coords[atoms],
            lattice=self.lattice[i],
            properties={k: float(v[i]) for k, v in self.properties.items()},
            id=self.ids[i],
        )

    def batch(self, indices: Sequence[int] | np.ndarray) -> CrystalBatch:
        """Structures ``indices`` as one flat ``CrystalBatch`` (vectorised; no per-crystal objects)."""
        idx = np.asarray(indices, dtype=np.int64).reshape(-1)
        atoms = concat_ranges(self.offsets[idx], self.num_atoms[idx])  # (N,)
        return CrystalBatch.from_tensors(
            atom_types=torch.from_numpy(self.atomic_numbers[atoms]),
            frac_coords=torch.from_numpy(self.frac_coords[atoms]).to(self.dtype),
            lattice=torch.from_numpy(self.lattice[idx]).to(self.dtype),
            num_atoms=torch.from_numpy(self.num_atoms[idx]),
            properties={k: torch.from_numpy(v[idx]).to(self.dtype) for k, v in self.properties.items()},
            ids=[self.ids[i] for i in idx],
        )


def _identity(batch: CrystalBatch) -> CrystalBatch:
    return batch


def crystal_loader(
    dataset: CrystalDataset,
    *,
    batch_size: int = 128,
    shuffle: bool = False,
    seed: int = 0,
    num_workers: int = 0,
    drop_last: bool = False,
    pin_memory: bool = False,
    persistent_workers: bool = False,
) -> DataLoader:
    """A DataLoader yielding ``CrystalBatch`` objects of ``batch_size`` crystals.

    Shuffling draws from a ``torch.Generator`` seeded with ``seed`` (the same order for the same seed,
    a new permutation each epoch); workers (``num_workers``) each hold the in-memory arrays.
    """
    generator = torch.Generator().manual_seed(seed)
    order = RandomSampler(dataset, generator=generator) if shuffle else SequentialSampler(dataset)
    return DataLoader(
        dataset,
        sampler=BatchSampler(order, batch_size=batch_size, drop_last=drop_last),
        batch_size=None,
        collate_fn=_identity,
        num_workers=num_workers,
        pin_memory=pin_memory,
        persistent_workers=persistent_workers and num_workers > 0,
    )
