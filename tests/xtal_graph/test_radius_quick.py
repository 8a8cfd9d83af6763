"""Neighbour lists against vesin, pymatgen and brute force (quick core checks)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from xtal_graph import Crystal, lattice_from_params, radius_graph_pbc

from tests.xtal_graph._helpers import brute_force_edges, edge_set, pymatgen_edges, vesin_edges


def _graph(frac, lattice, cutoff, **kw):
    frac = torch.as_tensor(frac, dtype=torch.float64)
    lattice = torch.as_tensor(lattice, dtype=torch.float64)
    return radius_graph_pbc(frac, lattice[None], torch.tensor([len(frac)]), cutoff, **kw)


@pytest.mark.parametrize("seed", range(10))
def test_matches_vesin_on_random_skewed_cells(seed):
    rng = np.random.default_rng(seed)
    lattice = lattice_from_params(rng.uniform(2, 8, 3), rng.uniform(75, 105, 3)).numpy()
    shear = np.array([[1, 2, 0], [0, 1, 0], [0, -3, 1]])
    lattice = shear @ lattice if seed % 2 else lattice
    frac = rng.random((int(rng.integers(1, 6)), 3))
    cutoff = float(rng.uniform(2, 7))
    assert edge_set(_graph(frac, lattice, cutoff)) == vesin_edges(frac, lattice, cutoff)


def test_thin_cell_needs_many_images():
    lattice = np.diag([0.9, 6.0, 7.0])
    frac = np.array([[0.0, 0.0, 0.0], [0.5, 0.5, 0.5]])
    got = edge_set(_graph(frac, lattice, 4.0))
    assert got == brute_force_edges(frac, lattice, 4.0, reach=6)
    assert max(abs(e[2]) for e in got) == 4  # 4 images away along the 0.9 A axis


def test_matches_pymatgen_on_real_structure():
    pytest.importorskip("pymatgen")
    from pymatgen.core import Lattice, Structure

    structure = Structure(
        Lattice.hexagonal(2.46, 6.7),
        ["C"] * 4,
        [[0, 0, 0.25], [0, 0, 0.75], [1 / 3, 2 / 3, 0.25], [2 / 3, 1 / 3, 0.75]],
    )
    crystal = Crystal.from_pymatgen(structure)
    got = edge_set(_graph(crystal.frac_coords, crystal.lattice, 5.0))
    assert got == pymatgen_edges(crystal.to_pymatgen(), 5.0)
