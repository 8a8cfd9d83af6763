"""Bad input raises ValueError naming the field and the crystal."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from xtal_graph import Crystal, collate, radius_graph_pbc


def _flat(num_crystals: int = 3):
    gen = torch.Generator().manual_seed(0)
    lattice = (4 * torch.eye(3, dtype=torch.float64)).repeat(num_crystals, 1, 1)
    num_atoms = torch.tensor([2] * num_crystals)
    frac = torch.rand(2 * num_crystals, 3, generator=gen, dtype=torch.float64)
    return frac, lattice, num_atoms


def test_nan_coordinate_names_field_and_crystal():
    frac, lattice, num_atoms = _flat()
    frac[3, 1] = float("nan")
    with pytest.raises(ValueError, match=r"frac_coords: crystal 1 .*non-finite"):
        radius_graph_pbc(frac, lattice, num_atoms, 3.0)


def test_inf_lattice_names_field_and_crystal():
    frac, lattice, num_atoms = _flat()
    lattice[2, 0, 0] = float("inf")
    with pytest.raises(ValueError, match=r"lattice: crystal 2 .*non-finite"):
        radius_graph_pbc(frac, lattice, num_atoms, 3.0)


@pytest.mark.parametrize("flat", [True, False])
def test_zero_volume_names_field_and_crystal(flat):
    frac, lattice, num_atoms = _flat()
    lattice[1, 2] = lattice[1, 0] + lattice[1, 1] if flat else 0.0
    with pytest.raises(ValueError, match=r"lattice: crystal 1 has non-positive volume"):
        radius_graph_pbc(frac, lattice, num_atoms, 3.0)


def test_num_atoms_must_sum_to_atom_count():
    frac, lattice, num_atoms = _flat()
    with pytest.raises(ValueError, match=r"num_atoms: sums to 7 but frac_coords has 6 rows"):
        radius_graph_pbc(frac, lattice, num_atoms + torch.tensor([0, 1, 0]), 3.0)
    with pytest.raises(ValueError, match=r"num_atoms: crystal 0 has a negative"):
        radius_graph_pbc(frac, lattice, torch.tensor([-1, 4, 3]), 3.0)


def test_too_many_edges_names_cutoff_and_crystal():
    frac, lattice, num_atoms = _flat()
    lattice[2] = torch.diag(torch.tensor([0.5, 4.0, 4.0], dtype=torch.float64))  # thin: many images
    with pytest.raises(ValueError, match=r"cutoff: 8.0 A would create more than max_edges=500 .*crystal 2"):
        radius_graph_pbc(frac, lattice, num_atoms, 8.0, max_edges=500)
    assert radius_graph_pbc(frac, lattice, num_atoms, 8.0).num_edges > 500


@pytest.mark.parametrize("max_edges", [10, 30, 100, 300])  # pairs, axis a, b, c
def test_edge_limit_is_checked_at_every_stage_of_the_search(max_edges):
    frac, lattice, num_atoms = _flat()
    with pytest.raises(ValueError, match=r"cutoff: .* max_edges=\d+ .*crystal \d alone has \d+"):
        radius_graph_pbc(frac, lattice, num_atoms, 8.0, max_edges=max_edges)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"cutoff": 0.0}, "cutoff"),
        ({"cutoff": float("nan")}, "cutoff"),
        ({"cutoff": 3.0, "max_neighbors": 0}, "max_neighbors"),
    ],
)
def test_bad_arguments(kwargs, field):
    frac, lattice, num_atoms = _flat()
    with pytest.raises(ValueError, match=field):
        radius_graph_pbc(frac, lattice, num_atoms, **kwargs)


def test_bad_shapes():
    frac, lattice, num_atoms = _flat()
    with pytest.raises(ValueError, match="frac_coords: expected shape"):
        radius_graph_pbc(frac[:, :2], lattice, num_atoms, 3.0)
    with pytest.raises(ValueError, match="num_atoms: expected shape"):
        radius_graph_pbc(frac, lattice, num_atoms[:2], 3.0)


def test_crystal_validation_names_the_crystal():
    good = dict(atom_types=np.array([8]), frac_coords=np.zeros((1, 3)), lattice=np.eye(3) * 3, id="mp-1")
    with pytest.raises(ValueError, match=r"atom_types: crystal 'mp-1' has unknown element number 0"):
        Crystal(**{**good, "atom_types": np.array([0])})
    with pytest.raises(ValueError, match=r"frac_coords: crystal 'mp-1' has non-finite"):
        Crystal(**{**good, "frac_coords": np.array([[0.0, np.nan, 0.0]])})
    with pytest.raises(ValueError, match=r"lattice: crystal 0 \(id 'mp-1'\) has non-positive volume"):
        Crystal(**{**good, "lattice": np.zeros((3, 3))})
    with pytest.raises(ValueError, match=r"properties: crystal 'mp-1' has non-finite 'pressure'"):
        Crystal(**good, properties={"pressure": float("inf")})
    with pytest.raises(ValueError, match="frac_coords: crystal 'mp-1' needs shape"):
        Crystal(**{**good, "frac_coords": np.zeros((2, 3))})


def test_collate_and_validate_name_the_crystal():
    a = Crystal(
        atom_types=np.array([8]),
        frac_coords=np.zeros((1, 3)),
        lattice=np.eye(3) * 3,
        properties={"pressure": 0.0},
    )
    b = a.replace(properties={}, id="mp-2")
    with pytest.raises(ValueError, match=r"properties: crystal 1 \(id 'mp-2'\)"):
        collate([a, b])
    with pytest.raises(ValueError, match="at least one crystal"):
        collate([])
    batch = collate([a, a.replace(id="mp-3")])
    broken = batch.replace(frac_coords=torch.tensor([[0.0, 0.0, 0.0], [float("nan"), 0.0, 0.0]]))
    with pytest.raises(ValueError, match=r"frac_coords: crystal 1 \(id 'mp-3'\)"):
        broken.validate()
    with pytest.raises(ValueError, match=r"atom_types: crystal 1 \(id 'mp-3'\)"):
        batch.replace(atom_types=torch.tensor([8, 200])).validate()


def test_conversion_errors_name_the_structure():
    from ase import Atoms
    from pymatgen.core import Lattice, Structure

    disordered = Structure(Lattice.cubic(3.0), [{"Fe": 0.5, "Ni": 0.5}], [[0, 0, 0]])
    with pytest.raises(ValueError, match=r"atom_types: structure 'd1' is disordered"):
        Crystal.from_pymatgen(disordered, id="d1")
    with pytest.raises(ValueError, match=r"lattice: atoms 'm1' is not periodic"):
        Crystal.from_ase(
            Atoms("H2", positions=[[0, 0, 0], [0, 0, 0.7]], cell=np.eye(3) * 5, pbc=[1, 1, 0]), id="m1"
        )
