"""Training data from an xtal-data store (local path or fsspec URL): one split's train and val parts.

Uses xtal-data's torch adapter (``xtal_data.torch_dataset.CrystalDataset``): the selected structures
are read once into numpy arrays; ``dataset[i]`` is a ``Crystal`` and ``dataset.batch(indices)`` a
whole ``CrystalBatch`` built without per-crystal objects (the loader in ``_data`` uses it).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from cond_vae.training._config import DataConfig


def open_store_split(
    config: DataConfig,
    *,
    properties: Sequence[str] = ("pressure",),
    storage_options: dict | None = None,
) -> tuple[Any, Any | None]:
    """``(train, val)`` datasets of ``config.path`` with the given per-crystal ``properties``
    (the model's condition names); ``val`` is None when ``config.val_part`` is empty or has no crystals.

    Raises ``ValueError`` without a path, ``FileNotFoundError`` for a missing store and ``KeyError``
    naming the available splits/parts when ``config.split`` or a part is absent.
    """
    try:
        from xtal_data import CrystalStore
        from xtal_data.torch_dataset import CrystalDataset
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
    if config.max_train is not None:
        train_idx = train_idx[: config.max_train]
    if val_idx is not None and config.max_val is not None:
        val_idx = val_idx[: config.max_val]
    if len(train_idx) == 0:
        raise ValueError(f"the training part of {config.path} (split {config.split!r}) is empty")
    # float64 at the source: the loader casts batches to the training dtype; scalers fit in float64
    opts = {"properties": tuple(properties), "dtype": torch.float64}
    train = CrystalDataset(store, indices=train_idx, **opts)
    val = CrystalDataset(store, indices=val_idx, **opts) if val_idx is not None and len(val_idx) else None
    return train, val
