"""Exact minimum-image geometry for any cell, however skewed (float64, row-vector lattices).

A fractional difference wrapped into [-0.5, 0.5) is not always the shortest image in a skewed cell, and the
27 neighbouring images are not always enough either. Here the image range is bounded instead: if ``v0`` is
the wrapped vector and ``v = v0 + n @ L`` is shorter, then ``|n_i| = |(v - v0) . b_i| <= 2 |v0| |b_i|``,
with ``b_i`` the rows of ``inv(L).T`` (reciprocal vectors without 2 pi). Searching that range is exact.
"""

from __future__ import annotations

import numpy as np

__all__ = ["min_image_vectors", "pairwise_min_image_distances"]


def _image_offsets(lattice: np.ndarray, max_len: float) -> np.ndarray:
    recip = np.linalg.inv(lattice).T  # (3, 3) rows b_i with a_i . b_j = delta_ij
    n_max = np.ceil(2.0 * max_len * np.linalg.norm(recip, axis=1) - 1e-12).astype(int)
    ranges = [np.arange(-k, k + 1) for k in n_max]
    return np.stack(np.meshgrid(*ranges, indexing="ij"), axis=-1).reshape(-1, 3).astype(float)  # (K, 3)


def min_image_vectors(dfrac: np.ndarray, lattice: np.ndarray) -> np.ndarray:
    """Shortest Cartesian vectors (Å) equivalent to fractional differences ``dfrac`` in ``lattice``.

    Args:
        dfrac: (..., 3) fractional differences.
        lattice: (3, 3) row-vector lattice in Å (``cart = frac @ lattice``).

    Returns:
        (..., 3) Cartesian vectors of minimum length among all periodic images.
    """
    lattice = np.asarray(lattice, dtype=np.float64)
    dfrac = np.asarray(dfrac, dtype=np.float64)
    if lattice.shape != (3, 3):
        raise ValueError(f"lattice must have shape (3, 3), got {lattice.shape}")
    if not np.isfinite(lattice).all() or not np.isfinite(dfrac).all():
        raise ValueError("lattice and fractional differences must be finite")
    shape = dfrac.shape
    wrapped = (dfrac - np.round(dfrac)).reshape(-1, 3)  # (M, 3)
    v0 = wrapped @ lattice  # (M, 3)
    if v0.shape[0] == 0:
        return v0.reshape(shape)
    offsets = _image_offsets(lattice, float(np.linalg.norm(v0, axis=1).max())) @ lattice  # (K, 3)
    cand = v0[:, None, :] + offsets[None, :, :]  # (M, K, 3)
    best = np.argmin(np.einsum("mkx,mkx->mk", cand, cand), axis=1)  # (M,)
    return cand[np.arange(len(cand)), best].reshape(shape)


def pairwise_min_image_distances(frac: np.ndarray, lattice: np.ndarray) -> np.ndarray:
    """(N, N) minimum-image distances (Å) between the sites ``frac`` (N, 3); zeros on the diagonal."""
    frac = np.asarray(frac, dtype=np.float64)
    diff = frac[None, :, :] - frac[:, None, :]  # (N, N, 3)
    return np.linalg.norm(min_image_vectors(diff, lattice), axis=-1)
