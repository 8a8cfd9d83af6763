"""Training cells in one setting per structure: the Niggli-reduced cell, as the reference trains.

The lattice head learns the six numbers of *a* cell of each crystal, but a store keeps whatever cell
its source gave (measured on 600 training crystals of the shared sets: 35 % of MP-20's and 92 % of
Carbon-24's cells are not Niggli-reduced, Perov-5's all are), so one structure type reaches the head
under many settings and its target is partly arbitrary. The reference Niggli-reduces every cell when it
builds its dataset (``niggli: true``). :class:`ReducedCellData` does the same once per run, without
touching the store: per crystal the integer matrix ``T`` (det +1) with ``L_reduced = T L``, and each
batch's lattices and fractional coordinates mapped through it. The structure is the same; only its cell
changes (the encoder, the decoder and the matchers are invariant to that; the lattice head's target is
not). The reduced cell is served in the canonical orientation of its six parameters
(``xtal_graph.lattice_from_params``), as the store and the reference keep cells. (The model does not
rely on it: without teacher forcing it measures the coordinate target in the canonical frame of the true
cell itself, ``CondCDVAE.forward``.)
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from xtal_graph import Crystal, CrystalBatch, collate, lattice_from_params, lattice_to_params, wrap_frac

__all__ = ["CELLS", "ReducedCellData", "niggli_transform", "with_cells"]

CELLS = ("niggli", "as_stored")
_CHUNK = 4096


def niggli_transform(lattice: np.ndarray) -> np.ndarray:
    """``T (3, 3)`` int64, det +1, with ``T @ lattice`` a Niggli-reduced cell of ``lattice (3, 3)`` Å (rows).

    pymatgen's reduction (the reference's) gives the reduced vectors as integer combinations of the
    given ones; a left-handed result is inverted (still reduced) so that handedness is kept.
    """
    from pymatgen.core import Lattice

    lattice = np.asarray(lattice, dtype=np.float64)
    reduced = Lattice(lattice).get_niggli_reduced_lattice().matrix
    t = reduced @ np.linalg.inv(lattice)
    rounded = np.round(t)
    if not np.allclose(t, rounded, atol=1e-6) or abs(abs(np.linalg.det(rounded)) - 1) > 1e-9:
        raise ValueError(
            f"niggli_transform: no unimodular integer map from {lattice.tolist()} to its reduced cell"
        )
    rounded = rounded.astype(np.int64)
    return rounded if np.linalg.det(rounded) > 0 else -rounded


class ReducedCellData(torch.utils.data.Dataset):
    """A dataset of crystals served in their Niggli-reduced cells (computed once; the data untouched).

    ``data``: a sequence of ``Crystal`` or xtal-data's ``CrystalDataset`` (its vectorised ``batch`` is
    kept). ``num_changed``: crystals whose stored cell was not reduced.
    """

    def __init__(self, data: Sequence[Crystal]):
        self.data = data
        n = len(data)
        transforms = np.empty((n, 3, 3), dtype=np.int64)
        for start in range(0, n, _CHUNK):
            indices = list(range(start, min(start + _CHUNK, n)))
            lattices = self._plain_batch(indices).lattice.double().numpy()
            for k, i in enumerate(indices):
                transforms[i] = niggli_transform(lattices[k])
        self._t = torch.from_numpy(transforms).double()  # (n, 3, 3)
        self._t_inv = torch.round(torch.linalg.inv(self._t))  # (n, 3, 3), integer (unimodular)
        self.num_changed = int((transforms != np.eye(3, dtype=np.int64)).any(axis=(1, 2)).sum())

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, index: int) -> Crystal:
        crystal = self.data[index]
        t_inv = self._t_inv[index].numpy()
        frac = np.asarray(crystal.frac_coords, dtype=np.float64) @ t_inv
        lattice = _canonical(self._t[index] @ torch.as_tensor(np.asarray(crystal.lattice, dtype=np.float64)))
        return crystal.replace(lattice=lattice.numpy(), frac_coords=frac % 1.0)

    @property
    def ids(self):
        ids = getattr(self.data, "ids", None)
        return [self.data[i].id for i in range(len(self.data))] if ids is None else ids

    @property
    def url(self) -> str:
        return self.data.url  # the store the data came from (AttributeError when there is none)

    def batch(self, indices: Sequence[int] | np.ndarray) -> CrystalBatch:
        """The crystals ``indices`` as one batch, in their reduced cells (the wrapped data's dtype)."""
        indices = [int(i) for i in indices]
        base = self._plain_batch(indices)
        dtype = base.lattice.dtype
        t, t_inv = self._t[indices].to(dtype), self._t_inv[indices].to(dtype)  # (C, 3, 3)
        lattice = _canonical(t @ base.lattice)  # (C, 3, 3): rows integer combinations of the stored ones
        frac = torch.einsum("ni,nij->nj", base.frac_coords, t_inv[base.batch])  # (N, 3), frame-free
        return base.replace(lattice=lattice, frac_coords=wrap_frac(frac))

    def _plain_batch(self, indices: list[int]) -> CrystalBatch:
        if callable(getattr(self.data, "batch", None)):
            return self.data.batch(indices)
        return collate([self.data[i] for i in indices], dtype=torch.float64)


def _canonical(lattice: torch.Tensor) -> torch.Tensor:
    """The same cells ``(..., 3, 3)`` rotated into the canonical orientation of their parameters."""
    return lattice_from_params(*lattice_to_params(lattice))


def with_cells(data: Sequence[Crystal], cells: str) -> Sequence[Crystal]:
    """``data`` in the cells ``TrainConfig.cells`` names: ``"niggli"`` (reduced once) or ``"as_stored"``."""
    if cells not in CELLS:
        raise ValueError(f"cells must be one of {CELLS}, got {cells!r}")
    if cells == "as_stored" or isinstance(data, ReducedCellData):
        return data
    return ReducedCellData(data)
