"""Crystal / CrystalBatch containers, collate, and pymatgen / ASE conversion."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from hypothesis import given
from xtal_graph import Crystal, CrystalBatch, collate
from xtal_graph.testing.strategies import crystals

from tests.conftest import DEVICES


def _crystal(pressure: float = 1.5, id: str | None = "c0") -> Crystal:
    return Crystal(
        atom_types=np.array([26, 8, 8]),
        frac_coords=np.array([[0.0, 0.0, 0.0], [0.25, 0.5, 0.75], [0.5, 0.1, 0.9]]),
        lattice=np.array([[4.0, 0.0, 0.0], [0.5, 4.2, 0.0], [0.3, 0.2, 5.0]]),
        properties={"pressure": pressure},
        id=id,
    )


def test_crystal_is_frozen_and_read_only():
    crystal = _crystal()
    with pytest.raises(dataclasses.FrozenInstanceError):
        crystal.id = "other"  # type: ignore[misc]
    with pytest.raises(ValueError):
        crystal.frac_coords[0, 0] = 0.5
    assert crystal.atom_types.dtype == np.int64 and crystal.lattice.dtype == np.float64
    np.testing.assert_allclose(crystal.cart_coords, crystal.frac_coords @ crystal.lattice)


@pytest.mark.parametrize("device", DEVICES)
def test_collate_layout_and_round_trip(device):
    crystals_ = [_crystal(1.5, "a"), _crystal(10.0, "b").replace(atom_types=np.array([1, 1, 3]))]
    batch = collate(crystals_, dtype=torch.float64).to(device)
    assert batch.num_crystals == 2 and batch.ids == ("a", "b")
    assert batch.batch.tolist() == [0, 0, 0, 1, 1, 1]
    assert batch.num_atoms.tolist() == [3, 3]
    assert batch.properties["pressure"].tolist() == [1.5, 10.0]
    torch.testing.assert_close(batch.cart_coords[3:].cpu(), torch.as_tensor(crystals_[1].cart_coords))
    back = batch.to_crystals()
    for original, restored in zip(crystals_, back, strict=True):
        np.testing.assert_array_equal(original.atom_types, restored.atom_types)
        np.testing.assert_array_equal(original.frac_coords, restored.frac_coords)
        np.testing.assert_array_equal(original.lattice, restored.lattice)
        assert original.properties == restored.properties and original.id == restored.id


def test_to_changes_float_dtype_only_and_replace_checks_shapes():
    batch = collate([_crystal()], dtype=torch.float64)
    single = batch.to(dtype=torch.float32)
    assert (
        single.frac_coords.dtype
        == single.lattice.dtype
        == single.properties["pressure"].dtype
        == torch.float32
    )
    assert single.atom_types.dtype == single.num_atoms.dtype == single.batch.dtype == torch.long
    moved = batch.replace(frac_coords=batch.frac_coords + 0.1)
    assert torch.allclose(moved.frac_coords, batch.frac_coords + 0.1)
    with pytest.raises(ValueError, match="frac_coords"):
        batch.replace(frac_coords=batch.frac_coords[:2])


def test_from_tensors_derives_batch():
    ref = collate([_crystal(), _crystal()])
    built = CrystalBatch.from_tensors(
        atom_types=ref.atom_types, frac_coords=ref.frac_coords, lattice=ref.lattice, num_atoms=ref.num_atoms
    )
    assert torch.equal(built.batch, ref.batch) and built.ids == (None, None)


@given(crystals(max_atoms=5))
def test_pymatgen_round_trip(crystal):
    crystal = crystal.replace(properties={"pressure": 3.0}, id="x1")
    structure = crystal.to_pymatgen()
    back = Crystal.from_pymatgen(structure)
    assert back.id == "x1" and back.properties == {"pressure": 3.0}
    np.testing.assert_array_equal(back.atom_types, crystal.atom_types)
    np.testing.assert_allclose(back.lattice, crystal.lattice)
    np.testing.assert_allclose(back.frac_coords, crystal.frac_coords, atol=1e-12)
    assert Crystal.from_pymatgen(structure, pressure=5.0).properties == {"pressure": 5.0}


@given(crystals(max_atoms=5))
def test_ase_round_trip(crystal):
    atoms = crystal.replace(properties={"pressure": 2.0}).to_ase()
    back = Crystal.from_ase(atoms)
    np.testing.assert_array_equal(back.atom_types, crystal.atom_types)
    np.testing.assert_allclose(back.lattice, crystal.lattice)
    diff = back.frac_coords - crystal.frac_coords
    np.testing.assert_allclose(diff - np.round(diff), 0, atol=1e-9)
    assert back.properties == {"pressure": 2.0}


def test_batch_from_and_to_pymatgen_wraps_coordinates():
    from pymatgen.core import Lattice, Structure

    structures = [
        Structure(Lattice.cubic(3.0), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, -0.5]]),
        Structure(Lattice.hexagonal(2.5, 4.0), ["C"], [[1.25, 0, 0]]),
    ]
    batch = CrystalBatch.from_pymatgen(structures, pressure=[0.0, 10.0])
    assert batch.atom_types.tolist() == [11, 17, 6]
    assert bool(((batch.frac_coords >= 0) & (batch.frac_coords < 1)).all())
    assert batch.properties["pressure"].tolist() == [0.0, 10.0]
    out = batch.to_pymatgen()
    assert [len(s) for s in out] == [2, 1] and out[0].composition.reduced_formula == "NaCl"
