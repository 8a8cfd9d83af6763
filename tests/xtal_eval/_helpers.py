"""Small structure transforms and a hypothesis strategy for xtal-eval tests (float64, no torch)."""

from __future__ import annotations

import numpy as np
from hypothesis import assume
from hypothesis import strategies as st
from pymatgen.core import Lattice, Structure

SPECIES = ("Na", "Cl", "Mg", "O")


def rotation_matrix(axis: np.ndarray, angle: float) -> np.ndarray:
    """(3, 3) proper rotation about ``axis`` by ``angle`` radians (Rodrigues)."""
    axis = np.asarray(axis, dtype=float)
    axis = axis / np.linalg.norm(axis)
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    return np.eye(3) + np.sin(angle) * k + (1 - np.cos(angle)) * k @ k


def rotate(s: Structure, rot: np.ndarray) -> Structure:
    """Rotate the whole crystal (row-vector lattice: ``L' = L @ R.T``), fractional coordinates unchanged."""
    return Structure(Lattice(s.lattice.matrix @ rot.T), s.species, s.frac_coords)


def translate(s: Structure, shift: np.ndarray) -> Structure:
    """Shift every site by the same fractional vector (wrapped into [0, 1))."""
    return Structure(s.lattice, s.species, (s.frac_coords + shift) % 1.0)


def permute(s: Structure, perm: np.ndarray) -> Structure:
    """Reorder the sites."""
    return Structure(s.lattice, [s.species[i] for i in perm], s.frac_coords[perm])


def change_basis(s: Structure, m: np.ndarray) -> Structure:
    """Same crystal in the basis ``L' = M @ L`` with integer ``M``, ``|det M| = 1``."""
    m = np.asarray(m, dtype=float)
    assert abs(abs(np.linalg.det(m)) - 1) < 1e-9
    frac = s.frac_coords @ np.linalg.inv(m)
    return Structure(Lattice(m @ s.lattice.matrix), s.species, frac % 1.0)


def supercell(s: Structure, diag: tuple[int, int, int]) -> Structure:
    """Diagonal supercell (same crystal, more sites)."""
    out = s.copy()
    out.make_supercell(list(diag))
    return out


def displace_site(s: Structure, index: int, dfrac: np.ndarray) -> Structure:
    """Move one site by a fractional vector."""
    frac = s.frac_coords.copy()
    frac[index] = (frac[index] + dfrac) % 1.0
    return Structure(s.lattice, s.species, frac)


@st.composite
def structures(
    draw, min_sites: int = 1, max_sites: int = 5, min_dist: float = 1.2, min_len: float = 3.0
) -> Structure:
    """Random P1 crystal: lengths ``min_len``-7 Å, angles 70-110 degrees, sites >= ``min_dist`` Å apart."""
    lengths = draw(st.lists(st.floats(min_len, 7.0), min_size=3, max_size=3))
    angles = draw(st.lists(st.floats(70.0, 110.0), min_size=3, max_size=3))
    try:
        lattice = Lattice.from_parameters(*lengths, *angles)
    except ValueError:
        assume(False)
    assume(np.isfinite(lattice.matrix).all() and lattice.volume > 0.3 * np.prod(lengths))
    n = draw(st.integers(min_sites, max_sites))
    frac = np.array(
        draw(st.lists(st.lists(st.floats(0.0, 0.999), min_size=3, max_size=3), min_size=n, max_size=n))
    )
    species = draw(st.lists(st.sampled_from(SPECIES), min_size=n, max_size=n))
    s = Structure(lattice, species, frac)
    if n > 1:
        d = s.distance_matrix + np.eye(n) * 100
        assume(d.min() >= min_dist)
    return s


UNIMODULAR = [
    np.eye(3),
    np.array([[1, 1, 0], [0, 1, 0], [0, 0, 1]]),
    np.array([[0, 1, 0], [1, 0, 0], [0, 0, -1]]),
    np.array([[1, 0, 1], [0, 1, -1], [0, 0, 1]]),
    np.array([[2, 1, 0], [1, 1, 0], [0, 0, 1]]),
]


@st.composite
def grid_structures(draw) -> Structure:
    """Eight sites on a jittered 2x2x2 grid (jitter <= 0.08 fractional) in a random 4-7 Å cell.

    Dense enough that the free length per atom (V/8)^(1/3) is about half a cell length, spread enough
    that no two sites come close: what a "realistic" crystal looks like to the matcher.
    """
    lengths = draw(st.lists(st.floats(4.0, 7.0), min_size=3, max_size=3))
    angles = draw(st.lists(st.floats(75.0, 105.0), min_size=3, max_size=3))
    lattice = Lattice.from_parameters(*lengths, *angles)
    grid = np.array([[i, j, k] for i in (0, 0.5) for j in (0, 0.5) for k in (0, 0.5)])  # (8, 3)
    jitter = np.array(draw(st.lists(st.floats(-0.08, 0.08), min_size=24, max_size=24))).reshape(8, 3)
    species = draw(st.lists(st.sampled_from(SPECIES[:2]), min_size=8, max_size=8))
    return Structure(lattice, species, (grid + jitter) % 1.0)


def load_mp20(shared_data, n: int = 24, ids: tuple[str, ...] = ()) -> tuple[list[str], list[Structure]]:
    """The first ``n`` MP-20 validation structures plus the named ids (skips without pyarrow)."""
    import pytest

    feather = pytest.importorskip("pyarrow.feather")

    table = feather.read_table(
        shared_data / "mp_20" / "val.feather", columns=["material_id", "cif"]
    ).to_pylist()
    rows = table[:n] + [r for r in table if r["material_id"] in ids]
    return [r["material_id"] for r in rows], [Structure.from_str(r["cif"], fmt="cif") for r in rows]


def perturbed(s: Structure, seed: int, sigma: float = 0.05, strain: float = 0.02) -> Structure:
    """A seeded noisy copy: Gaussian site noise (Å) plus a random symmetric strain."""
    rng = np.random.default_rng(seed)
    eps = rng.uniform(-strain, strain, (3, 3))
    lattice = Lattice(s.lattice.matrix @ (np.eye(3) + (eps + eps.T) / 2))
    cart = s.frac_coords @ lattice.matrix + rng.normal(0, sigma, (len(s), 3))
    return Structure(lattice, s.species, cart, coords_are_cartesian=True)
