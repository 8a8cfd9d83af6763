"""Training data from an xtal-data store: a lazy ``Sequence[Crystal]`` over one part of a split."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from xtal_graph import Crystal

from cond_vae.training._config import DataConfig


class StoreCrystals(Sequence):
    """Crystals held as xtal-data's flat arrays (compact), turned into ``Crystal`` on access.

    ``properties`` holds ``pressure`` (GPa) and every numeric property of the store; a missing value
    (NaN) is left out of that crystal's properties, so a condition that needs it fails by name.
    """

    def __init__(self, arrays: Any):
        self.arrays = arrays
        self.offsets = np.asarray(arrays.offsets)
        self.numeric = {
            name: np.asarray(values, dtype=np.float64)
            for name, values in arrays.properties.items()
            if np.asarray(values).dtype.kind in "fiu"
        }

    def __len__(self) -> int:
        return len(self.arrays)

    def __getitem__(self, index: int) -> Crystal:  # type: ignore[override]
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} crystals")
        index = index % len(self)
        a, start, stop = self.arrays, self.offsets[index], self.offsets[index + 1]
        props = {"pressure": float(a.pressure[index])}
        for name, values in self.numeric.items():
            if np.isfinite(values[index]):
                props[name] = float(values[index])
        return Crystal(
            atom_types=np.asarray(a.atomic_numbers[start:stop], dtype=np.int64),
            frac_coords=a.frac_coords[start:stop],
            lattice=a.lattice[index],
            properties=props,
            id=str(a.ids[index]),
        )


def open_store_split(
    config: DataConfig, *, storage_options: dict | None = None
) -> tuple[StoreCrystals, StoreCrystals | None]:
    """``(train, val)`` crystals of ``config.path`` (a local path or any fsspec URL).

    Raises ``ValueError`` without a path, ``FileNotFoundError`` for a missing store and ``KeyError``
    naming the available splits/parts when ``config.split`` or a part is absent.
    """
    try:
        from xtal_data import CrystalStore
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError("reading a store needs xtal-data: pip install 'cond-vae[data]'") from err
    if not config.path:
        raise ValueError("no data path: set [data] path in the config or pass --data")
    store = CrystalStore.open(config.path, storage_options=storage_options)
    if not config.split:
        train_idx, val_idx = np.arange(len(store)), None
    else:
        parts = store.split(config.split)
        for part in (config.train_part, config.val_part):
            if part and part not in parts:
                raise KeyError(
                    f"split {config.split!r} of {config.path} has no part {part!r}; it has {sorted(parts)}"
                )
        train_idx = parts[config.train_part]
        val_idx = parts[config.val_part] if config.val_part else None
    train_idx = train_idx[: config.max_train] if config.max_train is not None else train_idx
    if val_idx is not None and config.max_val is not None:
        val_idx = val_idx[: config.max_val]
    train = StoreCrystals(store.read(np.asarray(train_idx)))
    val = StoreCrystals(store.read(np.asarray(val_idx))) if val_idx is not None and len(val_idx) else None
    return train, val
