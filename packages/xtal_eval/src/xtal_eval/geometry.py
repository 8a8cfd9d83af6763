"""Exact minimum-image geometry for any cell, however skewed (numpy, float64, row-vector lattices).

The project's one numpy minimum image (torch code uses ``xtal_graph.lattice.minimum_image``). A fractional
difference wrapped into [-0.5, 0.5] is not always the shortest image in a skewed cell, and the 27
neighbouring images are not always enough either. Here the image range is bounded instead: with ``b_i``
the rows of ``inv(L).T`` (reciprocal vectors without 2 pi; ``1 / |b_i|`` is the cell's perpendicular
width ``w_i``), a vector ``v = (w + n) @ L`` with wrapped fractional part ``w`` has ``w_i + n_i = v . b_i``,
so ``|v| <= r`` needs ``|n_i| <= r |b_i| + 1/2``. Searching every ``n`` in that box is exact for ``r`` the
length of the plain wrapped vector (which the shortest image cannot exceed), or for a cutoff.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "min_image_distances",
    "min_image_vectors",
    "pairwise_min_image_distances",
    "shortest_distance",
    "shortest_lattice_vector",
]

_CHUNK = 1 << 21  # candidate vectors per chunk (x 3 float64: about 50 MB)


def _check_lattice(lattice) -> np.ndarray:
    lattice = np.asarray(lattice, dtype=np.float64)
    if lattice.shape != (3, 3):
        raise ValueError(f"lattice must have shape (3, 3), got {lattice.shape}")
    if not np.isfinite(lattice).all():
        raise ValueError("lattice and fractional differences must be finite")
    return lattice


def _box(lattice: np.ndarray, reach: float, *, wrapped: bool = True) -> np.ndarray:
    """(K, 3) integer image shifts ``n`` with ``|n_i| <= reach |b_i| (+ 1/2 when wrapped)``, as floats."""
    recip_norm = np.linalg.norm(np.linalg.inv(lattice), axis=0)  # (3,) |b_i| = 1 / width_i
    n_max = np.floor(reach * recip_norm + (0.5 if wrapped else 0.0) + 1e-9).astype(int)
    ranges = [np.arange(-k, k + 1) for k in n_max]
    return np.stack(np.meshgrid(*ranges, indexing="ij"), axis=-1).reshape(-1, 3).astype(float)  # (K, 3)


def _shortest_images(wrapped: np.ndarray, lattice: np.ndarray, cutoff: float | None) -> np.ndarray:
    """(M, 3) shortest Cartesian images of wrapped fractional differences (M, 3), in chunks.

    With ``cutoff``, only images within ``cutoff`` are searched: a vector is exact when its shortest
    image is at most ``cutoff`` long, and otherwise longer than ``cutoff`` (some image).
    """
    v0 = wrapped @ lattice  # (M, 3)
    out = np.empty_like(v0)
    if len(v0) == 0:
        return out
    lengths = np.linalg.norm(v0, axis=1)  # (M,)
    reach = float(lengths.max()) if cutoff is None else min(float(cutoff), float(lengths.max()))
    shifts = _box(lattice, reach) @ lattice  # (K, 3)
    step = max(1, _CHUNK // len(shifts))
    for start in range(0, len(v0), step):
        cand = v0[start : start + step, None, :] + shifts[None, :, :]  # (m, K, 3)
        best = np.argmin(np.einsum("mkx,mkx->mk", cand, cand), axis=1)  # (m,)
        out[start : start + step] = cand[np.arange(len(cand)), best]
    return out


def min_image_vectors(dfrac: np.ndarray, lattice: np.ndarray) -> np.ndarray:
    """Shortest Cartesian vectors (Å) equivalent to fractional differences ``dfrac`` in ``lattice``.

    Args:
        dfrac: (..., 3) fractional differences.
        lattice: (3, 3) row-vector lattice in Å (``cart = frac @ lattice``).

    Returns:
        (..., 3) Cartesian vectors of minimum length among all periodic images (exact for any cell).
    """
    lattice = _check_lattice(lattice)
    dfrac = np.asarray(dfrac, dtype=np.float64)
    if not np.isfinite(dfrac).all():
        raise ValueError("lattice and fractional differences must be finite")
    wrapped = (dfrac - np.round(dfrac)).reshape(-1, 3)  # (M, 3)
    return _shortest_images(wrapped, lattice, None).reshape(dfrac.shape)


def min_image_distances(
    frac_a: np.ndarray, frac_b: np.ndarray, lattice: np.ndarray, *, cutoff: float | None = None
) -> np.ndarray:
    """(A, B) minimum-image distances (Å) from sites ``frac_a`` (A, 3) to sites ``frac_b`` (B, 3).

    With ``cutoff`` (Å), distances above it are returned as ``inf`` and only images within ``cutoff`` are
    searched (faster when the cutoff is short against the cell). Coinciding sites give 0.
    """
    lattice = _check_lattice(lattice)
    frac_a = np.asarray(frac_a, dtype=np.float64).reshape(-1, 3)
    frac_b = np.asarray(frac_b, dtype=np.float64).reshape(-1, 3)
    diff = frac_b[None, :, :] - frac_a[:, None, :]  # (A, B, 3)
    if not np.isfinite(diff).all():
        raise ValueError("lattice and fractional differences must be finite")
    wrapped = (diff - np.round(diff)).reshape(-1, 3)  # (A*B, 3)
    dist = np.linalg.norm(_shortest_images(wrapped, lattice, cutoff), axis=1).reshape(diff.shape[:2])
    if cutoff is not None:
        dist[dist > cutoff] = np.inf
    return dist


def pairwise_min_image_distances(frac: np.ndarray, lattice: np.ndarray) -> np.ndarray:
    """(N, N) minimum-image distances (Å) between the sites ``frac`` (N, 3); zeros on the diagonal."""
    return min_image_distances(frac, frac, lattice)


def shortest_lattice_vector(lattice: np.ndarray) -> float:
    """Length (Å) of the shortest non-zero lattice vector: the distance from an atom to its own images."""
    lattice = _check_lattice(lattice)
    reach = float(np.linalg.norm(lattice, axis=1).min())  # a row is a lattice vector: an upper bound
    n = _box(lattice, reach, wrapped=False)  # (K, 3)
    n = n[np.any(n != 0, axis=1)]
    return float(np.linalg.norm(n @ lattice, axis=1).min())


def shortest_distance(frac: np.ndarray, lattice: np.ndarray, *, cutoff: float | None = None) -> float:
    """Shortest distance (Å) between two atoms of a periodic structure, periodic images included.

    An atom and its own image count (:func:`shortest_lattice_vector`). ``frac``: (N, 3) fractional
    coordinates; ``lattice``: (3, 3) in Å. With ``cutoff``, ``inf`` when no pair is within ``cutoff``.
    """
    frac = np.asarray(frac, dtype=np.float64).reshape(-1, 3)
    best = shortest_lattice_vector(lattice)
    if len(frac) > 1:
        dist = min_image_distances(frac, frac, lattice, cutoff=cutoff)  # (N, N)
        np.fill_diagonal(dist, np.inf)
        best = min(best, float(dist.min()))
    return best if cutoff is None or best <= cutoff else float("inf")
