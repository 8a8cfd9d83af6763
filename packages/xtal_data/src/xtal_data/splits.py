"""Seeded train/val/test splits stored in the store as index arrays (``splits/<name>/<part>``)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from xtal_data.store import CrystalStore

PARTS = ("train", "val", "test")


def _check(fractions: Sequence[float], parts: Sequence[str]) -> np.ndarray:
    f = np.asarray(fractions, dtype=np.float64)
    if len(f) != len(parts) or (f < 0).any() or not np.isclose(f.sum(), 1.0):
        raise ValueError(
            f"fractions {tuple(fractions)} must be {len(parts)} non-negative numbers summing to 1"
        )
    return f


def split_random(
    store: CrystalStore,
    *,
    seed: int,
    fractions: Sequence[float] = (0.8, 0.1, 0.1),
    parts: Sequence[str] = PARTS,
    name: str = "random",
    write: bool = True,
) -> dict[str, np.ndarray]:
    """Random split (the paper's 80/10/10): part sizes ``round(f * C)`` except the last, which takes the
    rest. Returns part -> sorted (k,) int64 indices and, if ``write``, stores them under ``name``."""
    f = _check(fractions, parts)
    c = len(store)
    order = np.random.default_rng(seed).permutation(c)
    bounds = np.round(np.cumsum(f)[:-1] * c).astype(int)
    out = {p: np.sort(idx) for p, idx in zip(parts, np.split(order, bounds), strict=True)}
    if write:
        store.write_split(name, out, {"kind": "random", "seed": seed, "fractions": f.tolist()})
    return out


def split_by_composition(
    store: CrystalStore,
    *,
    seed: int,
    fractions: Sequence[float] = (0.8, 0.1, 0.1),
    parts: Sequence[str] = PARTS,
    name: str = "composition",
    write: bool = True,
) -> dict[str, np.ndarray]:
    """Split by reduced formula: no formula appears in two parts. Formulas are shuffled with ``seed`` and
    dealt to the parts in order until each reaches its share of structures (sizes are approximate)."""
    f = _check(fractions, parts)
    formulas = store.formula
    unique, inverse = np.unique(formulas, return_inverse=True)
    sizes = np.bincount(inverse, minlength=len(unique))
    order = np.random.default_rng(seed).permutation(len(unique))
    targets = np.cumsum(f) * len(formulas)
    assignment = np.empty(len(unique), dtype=np.int64)
    filled, part = 0, 0
    for g in order:
        while part < len(parts) - 1 and filled >= targets[part]:
            part += 1
        assignment[g] = part
        filled += sizes[g]
    per_structure = assignment[inverse]
    out = {p: np.flatnonzero(per_structure == k).astype(np.int64) for k, p in enumerate(parts)}
    if write:
        store.write_split(name, out, {"kind": "composition", "seed": seed, "fractions": f.tolist()})
    return out
