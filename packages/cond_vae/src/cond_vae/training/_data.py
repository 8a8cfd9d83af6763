"""Batches of crystals for training: deterministic, shardable across processes, resumable mid-epoch.

The epoch order comes from ``DistributedSampler(seed, epoch)``, so it depends only on the seed and the
epoch. Process ``r`` of ``W`` takes the strided share ``order[r::W]`` and cuts it into step batches of
``batch_size``; a step batch is split into ``accumulate`` micro-batches, again strided
(``batch[m::A]``). With this layout, micro-batch ``m`` of process ``r`` holds exactly micro-batch
``m * W + r`` of one process with ``W * A`` micro-batches and a ``W`` times larger batch: the global
batch of every step is the same whatever the number of processes, which the DDP test relies on.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import torch
from torch.utils.data import DataLoader, DistributedSampler
from xtal_graph import Crystal, CrystalBatch, collate


def as_sequence(data: Iterable[Crystal] | Sequence[Crystal], *, name: str) -> Sequence[Crystal]:
    """``data`` itself when it supports ``len`` and indexing (a list, a torch map-style Dataset),
    otherwise its items in a list. An empty dataset raises ``ValueError`` naming ``name``."""
    if not (hasattr(data, "__len__") and hasattr(data, "__getitem__")):
        data = list(data)
    if len(data) == 0:  # type: ignore[arg-type]
        raise ValueError(f"the {name} data holds no crystals")
    return data  # type: ignore[return-value]


def scaler_items(data: Sequence[Crystal], chunk: int = 4096) -> Iterable[Crystal | CrystalBatch]:
    """What ``model.fit_scalers`` streams over: vectorised float64 batches when the dataset can build
    them (xtal-data's CrystalDataset), else the crystals themselves."""
    if callable(getattr(data, "batch", None)):
        return (b.to(dtype=torch.float64) for b in crystal_batches(data, chunk))
    return data


def crystal_batches(data: Sequence[Crystal], size: int = 256) -> Iterable[Crystal | CrystalBatch]:
    """Batches of ``size`` crystals when the dataset can build them (xtal-data), else the crystals."""
    if callable(getattr(data, "batch", None)):
        return (data.batch(list(range(i, min(i + size, len(data))))) for i in range(0, len(data), size))
    return data


def coverage(data: Sequence[Crystal], condition_names: Sequence[str]) -> dict:
    """What a training set covers, recorded in every checkpoint as ``trained_on``: the elements (atomic
    numbers), the range of each scalar condition (raw units, e.g. GPa), the largest cell, the count."""
    elements: set[int] = set()
    ranges: dict[str, list[float]] = {}
    largest = 0
    for item in scaler_items(data):
        if isinstance(item, CrystalBatch):
            atoms, sizes, props = item.atom_types, item.num_atoms, item.properties
        else:
            atoms = torch.as_tensor(item.atom_types)
            sizes = torch.tensor([len(item.atom_types)])
            props = {k: torch.tensor([float(v)]) for k, v in item.properties.items()}
        elements.update(int(z) for z in torch.unique(atoms).tolist())
        largest = max(largest, int(sizes.max()))
        for name in condition_names:
            lo, hi = float(props[name].min()), float(props[name].max())
            old = ranges.get(name, [lo, hi])
            ranges[name] = [min(old[0], lo), max(old[1], hi)]
    return {
        "elements": sorted(elements),
        "conditions": ranges,
        "max_atoms": largest,
        "num_crystals": len(data),
    }


def head_batch(data: Sequence[Crystal], size: int, dtype: torch.dtype) -> CrystalBatch:
    """The first ``min(size, len(data))`` crystals as one batch (to fit the decoder's scale factors)."""
    idx = list(range(min(size, len(data))))
    if callable(getattr(data, "batch", None)):
        return data.batch(idx).to(dtype=dtype)
    return collate([data[i] for i in idx], dtype=dtype)


def epoch_order(
    num_items: int, *, seed: int, epoch: int, rank: int, world_size: int, shuffle: bool
) -> list[int]:
    """This process's indices for ``epoch`` (padded by repetition to equal shares, as DistributedSampler)."""
    sampler = DistributedSampler(
        range(num_items), num_replicas=world_size, rank=rank, shuffle=shuffle, seed=seed, drop_last=False
    )
    sampler.set_epoch(epoch)
    return list(sampler)


def step_batches(order: Sequence[int], *, batch_size: int, drop_last: bool) -> list[list[int]]:
    """Cut ``order`` into step batches of ``batch_size`` (the last one shorter unless dropped)."""
    batches = [list(order[i : i + batch_size]) for i in range(0, len(order), batch_size)]
    if drop_last and batches and len(batches[-1]) < batch_size:
        batches.pop()
    return batches


def micro_batches(batch: Sequence[int], accumulate: int) -> list[list[int]]:
    """Strided split of one step batch into at most ``accumulate`` non-empty micro-batches."""
    return [list(batch[m::accumulate]) for m in range(accumulate) if batch[m::accumulate]]


def _collate(items: list[Crystal], dtype: torch.dtype) -> CrystalBatch:
    return collate(items, dtype=dtype)


class _Indexed(torch.utils.data.Dataset):
    """A map-style view of a sequence of crystals (torch's DataLoader wants a Dataset)."""

    def __init__(self, data: Sequence[Crystal]):
        self.data = data

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, index: int) -> Crystal:
        return self.data[index]


class _Batched(torch.utils.data.Dataset):
    """A dataset with a vectorised ``batch(indices) -> CrystalBatch`` (xtal-data's CrystalDataset)."""

    def __init__(self, data: Any, dtype: torch.dtype):
        self.data, self.dtype = data, dtype

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, indices: list[int]) -> CrystalBatch:
        return self.data.batch(indices).to(dtype=self.dtype)


def _identity(batch: CrystalBatch) -> CrystalBatch:
    return batch


def iterate_micro_batches(
    data: Sequence[Crystal],
    batches: Sequence[Sequence[int]],
    *,
    dtype: torch.dtype,
    num_workers: int,
) -> Iterator[CrystalBatch]:
    """Batches for the given index lists, in order (worker processes when ``num_workers``).

    A dataset with a ``batch(indices)`` method builds each batch in one vectorised call; any other
    sequence of ``Crystal`` is collated with ``xtal_graph.collate``.
    """
    index_lists = [list(b) for b in batches]
    if callable(getattr(data, "batch", None)):
        loader: Any = DataLoader(
            _Batched(data, dtype), sampler=index_lists, batch_size=None, collate_fn=_identity,
            num_workers=num_workers,
        )  # fmt: skip
    else:
        loader = DataLoader(
            _Indexed(data), batch_sampler=index_lists, collate_fn=functools.partial(_collate, dtype=dtype),
            num_workers=num_workers,
        )  # fmt: skip
    return iter(loader)


def validation_shards(
    num_items: int, *, rank: int, world_size: int, batch_size: int
) -> list[tuple[int, list[int]]]:
    """This process's validation batches as ``(global batch number, indices)``.

    The validation set is cut into batches in order, and batch ``i`` goes to process ``i % W``: every
    crystal counts once, and each batch (with its seed, see ``_step.validate``) is the same whatever
    the number of processes.
    """
    batches = [list(range(i, min(i + batch_size, num_items))) for i in range(0, num_items, batch_size)]
    return [(i, b) for i, b in enumerate(batches) if i % world_size == rank]
