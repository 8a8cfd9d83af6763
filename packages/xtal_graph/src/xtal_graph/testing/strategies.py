"""Hypothesis strategies for periodic crystals (numpy outputs; needs ``hypothesis``).

* :func:`lattices`: regular cells, very thin cells (one perpendicular width below ~1.6 Å, or flat
  angles) and very skewed bases (a regular lattice times a unimodular matrix with large entries).
* :func:`crystals`: random :class:`~xtal_graph.Crystal` objects whose atoms, including their own
  periodic images, are at least ``min_distance`` apart (placed by seeded random sequential addition).
* :func:`unimodular_matrices`, :func:`supercell_scalings`, :func:`crystal_batches`.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np
import torch
from hypothesis import assume
from hypothesis import strategies as st

from ..batch import Crystal, CrystalBatch, collate
from ..lattice import lattice_from_params

__all__ = [
    "crystal_batches",
    "crystals",
    "lattices",
    "min_image_distance",
    "supercell_scalings",
    "unimodular_matrices",
]

DEFAULT_ELEMENTS = (1, 3, 6, 8, 12, 14, 22, 26, 29, 38, 56, 79)


def _widths(lattice: np.ndarray) -> np.ndarray:
    a, b, c = lattice
    vol = abs(np.linalg.det(lattice))
    return vol / np.linalg.norm([np.cross(b, c), np.cross(c, a), np.cross(a, b)], axis=1)


def min_image_distance(
    frac_diff: np.ndarray, lattice: np.ndarray, *, exclude_zero: bool = False
) -> np.ndarray:
    """Brute-force minimum-image distance (Å) of fractional displacements ``(m, 3)``, searching every
    image that can be closer than the plain wrapped one (range from the perpendicular widths).

    Deliberately an independent numpy oracle, not ``xtal_graph.lattice.minimum_image``: the strategies
    build the structures that test that function (and the graphs), so they must not rely on it. Library
    code uses ``xtal_graph.lattice.minimum_image`` (torch) or ``xtal_eval.geometry`` (numpy)."""
    diff = np.atleast_2d(frac_diff).astype(np.float64)
    diff = diff - np.round(diff)
    bound = (
        np.linalg.norm(diff @ lattice, axis=1).max()
        if not exclude_zero
        else np.linalg.norm(lattice, axis=1).min()
    )
    reach = np.ceil(bound / _widths(lattice)).astype(int) + 1
    images = np.array(list(itertools.product(*(range(-r, r + 1) for r in reach))), dtype=np.float64)
    if exclude_zero:
        images = images[np.abs(images).sum(axis=1) > 0]
    dist = np.linalg.norm((diff[:, None, :] + images[None]) @ lattice, axis=2)
    return dist.min(axis=1)


def unimodular_matrices(max_coefficient: int = 2, max_steps: int = 4) -> st.SearchStrategy[np.ndarray]:
    """Integer ``(3, 3)`` matrices with determinant +-1: products of elementary shears, a
    permutation and sign flips."""

    @st.composite
    def build(draw) -> np.ndarray:
        matrix = np.eye(3, dtype=np.int64)
        for _ in range(draw(st.integers(0, max_steps))):
            i, j = draw(st.permutations(range(3)))[:2]
            shear = np.eye(3, dtype=np.int64)
            shear[i, j] = draw(st.integers(-max_coefficient, max_coefficient))
            matrix = shear @ matrix
        perm = draw(st.permutations(range(3)))
        signs = np.array(draw(st.lists(st.sampled_from((-1, 1)), min_size=3, max_size=3)))
        return (signs[:, None] * matrix)[list(perm)]

    return build()


def supercell_scalings(max_factor: int = 2) -> st.SearchStrategy[tuple[int, int, int]]:
    """Diagonal supercell factors ``(s_a, s_b, s_c)`` in ``1 .. max_factor``, not all 1."""
    factor = st.integers(1, max_factor)
    return st.tuples(factor, factor, factor).filter(lambda s: max(s) > 1)


@st.composite
def lattices(
    draw,
    *,
    min_length: float = 2.0,
    max_length: float = 10.0,
    kinds: Sequence[str] = ("regular", "thin", "flat", "skewed"),
) -> np.ndarray:
    """Row-vector lattices ``(3, 3)`` in Å: ``regular`` (angles 60-120 degrees), ``thin`` (one
    length 0.8-1.6 Å), ``flat`` (angles 25-155 degrees, small widths) or ``skewed`` (a regular lattice
    in a basis changed by a unimodular matrix with entries up to 3)."""
    kind = draw(st.sampled_from(tuple(kinds)))
    length = st.floats(min_length, max_length)
    lengths = [draw(length) for _ in range(3)]
    low, high = (25.0, 155.0) if kind == "flat" else (60.0, 120.0)
    angles = [draw(st.floats(low, high)) for _ in range(3)]
    if kind == "thin":
        lengths[draw(st.integers(0, 2))] = draw(st.floats(0.8, 1.6))
    lattice = lattice_from_params(np.array(lengths), np.array(angles)).numpy()
    relative_volume = abs(np.linalg.det(lattice)) / np.prod(np.linalg.norm(lattice, axis=1))
    assume(relative_volume > (0.05 if kind == "flat" else 0.3))
    if kind == "skewed":
        lattice = draw(unimodular_matrices(max_coefficient=3, max_steps=3)).astype(np.float64) @ lattice
    return lattice


@st.composite
def crystals(
    draw,
    *,
    max_atoms: int = 6,
    min_distance: float = 0.8,
    lattice_strategy: st.SearchStrategy[np.ndarray] | None = None,
    elements: Sequence[int] = DEFAULT_ELEMENTS,
    properties: dict[str, st.SearchStrategy[float]] | None = None,
) -> Crystal:
    """Random crystals with 1 to ``max_atoms`` atoms, all periodic images at least ``min_distance``
    Å apart; the lattice from ``lattice_strategy`` (default :func:`lattices`)."""
    lattice = draw(lattice_strategy if lattice_strategy is not None else lattices())
    assume(min_image_distance(np.zeros(3), lattice, exclude_zero=True)[0] >= min_distance)
    target = draw(st.integers(1, max_atoms))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    frac = [rng.random(3)]
    for _ in range(40 * target):
        if len(frac) == target:
            break
        trial = rng.random(3)
        if min_image_distance(np.asarray(frac) - trial, lattice).min() >= min_distance:
            frac.append(trial)
    types = rng.choice(np.asarray(elements), size=len(frac))
    props = {k: draw(v) for k, v in (properties or {}).items()}
    return Crystal(atom_types=types, frac_coords=np.asarray(frac), lattice=lattice, properties=props)


@st.composite
def crystal_batches(
    draw, *, max_crystals: int = 3, dtype: torch.dtype = torch.float64, **crystal_kwargs
) -> CrystalBatch:
    """A :class:`~xtal_graph.CrystalBatch` of 1 to ``max_crystals`` crystals from :func:`crystals`."""
    count = draw(st.integers(1, max_crystals))
    return collate([draw(crystals(**crystal_kwargs)) for _ in range(count)], dtype=dtype)
