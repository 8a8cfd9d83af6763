"""Encoder-graph cache: each training crystal's encoder edges built once, reused every step.

The encoder reads the *true* structure, whose graph never changes, yet building it (and, for
CrystalNN, running pymatgen) at every step costs CPU time. :class:`EncoderGraphData` wraps a dataset,
builds every crystal's edges once (local atom indices + integer cell offsets), and attaches them to
each batch it makes (``CrystalBatch.edge_index`` / ``cell_offsets``, concatenated with atom offsets);
``CondCDVAE.encode`` then only computes vectors and distances from the batch tensors.

Optionally the edges live in a sidecar ``.npz`` file beside the store, keyed by crystal id, with the
graph settings recorded (``cond_vae._encoder_graph.encoder_graph_settings``): a file built with other
settings raises ``ValueError``; ids missing from it are built and the file is rewritten (union).
Arrays of the file: ``ids (M,)`` str, ``edge_ptr (M + 1,)`` int64, ``edge_index (2, E)`` int32 local,
``cell_offsets (E, 3)`` int16, ``settings`` (a JSON string).
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from xtal_graph import Crystal, CrystalBatch, collate

from cond_vae._config import EncoderConfig
from cond_vae._encoder_graph import encoder_edges, encoder_graph_settings

__all__ = ["EncoderGraphData", "sidecar_beside", "with_encoder_graphs"]

_CHUNK = 512  # crystals per vectorised build


class EncoderGraphData(torch.utils.data.Dataset):
    """A dataset of crystals whose batches carry their precomputed encoder edges.

    Args:
        data: a sequence of ``Crystal`` (or xtal-data's ``CrystalDataset``, which builds batches
            without per-crystal objects).
        encoder: the model's encoder settings (graph kind, cutoff in Å, neighbour cap).
        dtype: the training dtype; the radius graph is searched on coordinates in this dtype, as
            the model would on the fly, so the cached graph is the same one.
        sidecar: optional path of an ``.npz`` file to read edges from and write them to.
        cells: the cells ``data`` serves (``TrainConfig.cells``): cell offsets depend on the cell, so a
            sidecar records it (``"as_stored"`` is not recorded: files from before the option match).
    """

    def __init__(
        self,
        data: Sequence[Crystal],
        encoder: EncoderConfig,
        *,
        dtype: torch.dtype = torch.float32,
        sidecar: str | Path | None = None,
        cells: str = "as_stored",
    ):
        self.data, self.encoder, self.dtype = data, encoder, dtype
        self.settings = _settings(encoder, dtype, cells)
        self.sidecar = None if sidecar is None else Path(sidecar)
        n = len(data)
        self._index: list[np.ndarray | None] = [None] * n  # (2, e) int32 local, per crystal
        self._offsets: list[np.ndarray | None] = [None] * n  # (e, 3) int16
        if self.sidecar is not None:
            self._load_sidecar()
        missing = [i for i in range(n) if self._index[i] is None]
        if encoder.graph == "crystalnn" and len(missing) > 256:
            kept = f"; kept in {self.sidecar}" if self.sidecar else ""
            message = f"building CrystalNN encoder graphs of {len(missing)} crystals (~60 ms each){kept}"
            print(message, file=sys.stderr)
        for start in range(0, len(missing), _CHUNK):
            self._build(missing[start : start + _CHUNK])
        if self.sidecar is not None and missing:
            self._save_sidecar()
        self._ptr = np.concatenate([[0], np.cumsum([a.shape[1] for a in self._index])]).astype(np.int64)
        self._all_index = np.concatenate(self._index, axis=1) if n else np.zeros((2, 0), np.int32)
        self._all_offsets = np.concatenate(self._offsets, axis=0) if n else np.zeros((0, 3), np.int16)
        self._index, self._offsets = [], []  # keep one flat copy

    # ------------------------------------------------------------------ dataset protocol
    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, index: int) -> Crystal:
        return self.data[index]

    @property
    def num_edges(self) -> int:
        """Encoder edges over all crystals."""
        return int(self._ptr[-1])

    def batch(self, indices: Sequence[int] | np.ndarray) -> CrystalBatch:
        """The crystals ``indices`` as one batch carrying their encoder edges (batch-wide indices).

        Floats stay in the wrapped data's dtype (float64 for a list of crystals), as the training
        loader expects: it casts each batch to the training dtype."""
        indices = [int(i) for i in indices]
        base = self._plain_batch(indices)
        idx = np.asarray(indices, dtype=np.int64)
        first, counts = self._ptr[idx], self._ptr[idx + 1] - self._ptr[idx]  # (C,) each
        rows = np.repeat(first - np.cumsum(counts) + counts, counts) + np.arange(counts.sum())  # (E,)
        atom_start = np.cumsum(base.num_atoms.numpy()) - base.num_atoms.numpy()  # (C,)
        shift = np.repeat(atom_start, counts)  # (E,)
        edge_index = torch.from_numpy(self._all_index[:, rows].astype(np.int64) + shift)  # (2, E)
        cell_offsets = torch.from_numpy(self._all_offsets[rows].astype(np.int64))  # (E, 3)
        return base.replace(edge_index=edge_index, cell_offsets=cell_offsets)

    # ------------------------------------------------------------------ building
    def _plain_batch(self, indices: list[int]) -> CrystalBatch:
        if callable(getattr(self.data, "batch", None)):
            return self.data.batch(indices)
        return collate([self.data[i] for i in indices], dtype=torch.float64)

    def _build(self, indices: list[int]) -> None:
        batch = self._plain_batch(indices).to(dtype=self.dtype)
        edge_index, cell_offsets = encoder_edges(batch, self.encoder)
        if cell_offsets.numel() and int(cell_offsets.abs().max()) > np.iinfo(np.int16).max:
            raise ValueError("encoder graph: a cell offset does not fit int16")
        target = edge_index[1]
        crystal = batch.batch[target].numpy()  # (E,) edges are grouped by crystal (sorted by target)
        atom_start = (torch.cumsum(batch.num_atoms, 0) - batch.num_atoms).numpy()
        local = (edge_index.numpy() - atom_start[crystal]).astype(np.int32)  # (2, E)
        offsets = cell_offsets.numpy().astype(np.int16)
        order = np.argsort(crystal, kind="stable")  # CrystalNN edges are already grouped; be sure
        bounds = np.searchsorted(crystal[order], np.arange(len(indices) + 1))
        for k, i in enumerate(indices):
            rows = order[bounds[k] : bounds[k + 1]]
            self._index[i] = np.ascontiguousarray(local[:, rows])
            self._offsets[i] = np.ascontiguousarray(offsets[rows])

    # ------------------------------------------------------------------ sidecar file
    def _ids(self) -> list[str]:
        ids = getattr(self.data, "ids", None)
        if ids is None:
            ids = [self.data[i].id for i in range(len(self.data))]
        if any(i is None for i in ids) or len(set(ids)) != len(ids):
            raise ValueError("encoder-graph sidecar: every crystal needs a unique id")
        return [str(i) for i in ids]

    def _load_sidecar(self) -> None:
        if not self.sidecar.exists():
            return
        with np.load(self.sidecar, allow_pickle=False) as f:
            stored = json.loads(str(f["settings"]))
            if stored != json.loads(json.dumps(self.settings)):
                raise ValueError(
                    f"encoder-graph sidecar {self.sidecar} was built with {stored}, the model needs "
                    f"{self.settings}: remove the file or give another path"
                )
            row = {str(k): r for r, k in enumerate(f["ids"].tolist())}
            ptr, index, offsets = f["edge_ptr"], f["edge_index"], f["cell_offsets"]
        for i, key in enumerate(self._ids()):
            r = row.get(key)
            if r is not None:
                self._index[i] = index[:, ptr[r] : ptr[r + 1]]
                self._offsets[i] = offsets[ptr[r] : ptr[r + 1]]

    def _save_sidecar(self) -> None:
        kept: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        if self.sidecar.exists():  # keep the other crystals of the file (e.g. another split part)
            with np.load(self.sidecar, allow_pickle=False) as f:
                ptr, index, offsets = f["edge_ptr"], f["edge_index"], f["cell_offsets"]
                for r, key in enumerate(f["ids"].tolist()):
                    kept[str(key)] = (index[:, ptr[r] : ptr[r + 1]], offsets[ptr[r] : ptr[r + 1]])
        kept.update(zip(self._ids(), zip(self._index, self._offsets, strict=True), strict=True))
        _write_npz(self.sidecar, kept, self.settings)


def _settings(encoder: EncoderConfig, dtype: torch.dtype, cells: str) -> dict[str, Any]:
    settings = encoder_graph_settings(encoder, dtype)
    return settings if cells == "as_stored" else {**settings, "cells": cells}


def with_encoder_graphs(
    data: Any, *, encoder: EncoderConfig, dtype: torch.dtype, where: str, cells: str = "as_stored"
) -> Any:
    """``data`` whose batches carry their precomputed encoder edges (``TrainConfig.encoder_graphs``).

    ``where``: ``"none"`` (``data`` unchanged: graphs built at every step), ``"memory"``, ``"store"``
    (a sidecar beside the local xtal-data store ``data`` was read from) or a sidecar file path.
    An ``EncoderGraphData`` is kept as it is if its settings match the model's.
    """
    if where == "none":
        return data
    settings = _settings(encoder, dtype, cells)
    if isinstance(data, EncoderGraphData):
        if data.settings != settings:
            raise ValueError(f"the data's encoder graphs were built with {data.settings}, not {settings}")
        return data
    if where == "store":
        if not hasattr(data, "url"):
            raise ValueError("encoder_graphs = 'store' needs data read from a store (open_store_split)")
        where = str(sidecar_beside(data.url, settings))
    sidecar = None if where == "memory" else where
    return EncoderGraphData(data, encoder, dtype=dtype, sidecar=sidecar, cells=cells)


def sidecar_beside(url: str, settings: dict[str, Any]) -> Path:
    """The sidecar path beside a local store: ``<store>.encoder_graph-<kind>-<hash of settings>.npz``
    (other settings give another file). Remote stores (``s3://`` ...) need an explicit path."""
    if "://" in url and not url.startswith("file://"):
        raise ValueError(f"encoder_graphs = 'store' needs a local store, got {url}; give a file path")
    store = Path(url.removeprefix("file://")).resolve()
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:8]
    return store.with_name(f"{store.name}.encoder_graph-{settings['graph']}-{digest}.npz")


def _write_npz(path: Path, graphs: dict[str, tuple[np.ndarray, ...]], settings: dict[str, Any]) -> None:
    """Write the sidecar atomically (a temporary file, then a rename)."""
    keys = sorted(graphs)
    counts = [graphs[k][0].shape[1] for k in keys]
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".tmp{os.getpid()}.npz")
    np.savez(
        tmp,
        ids=np.array(keys, dtype=str),
        edge_ptr=np.concatenate([[0], np.cumsum(counts)]).astype(np.int64),
        edge_index=np.concatenate([graphs[k][0] for k in keys], axis=1).astype(np.int32),
        cell_offsets=np.concatenate([graphs[k][1] for k in keys], axis=0).astype(np.int16),
        settings=np.array(json.dumps(settings)),
    )
    os.replace(tmp, path)
