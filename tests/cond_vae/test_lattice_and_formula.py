"""Lattice representation round trip, predicted-cell validation, formula parsing."""

from __future__ import annotations

import pytest
import torch
from cond_vae import lattice_to_scaled_params, parse_formula, scaled_params_to_lattice, validate_lattices
from hypothesis import given, settings
from hypothesis import strategies as st
from xtal_graph import lattice_to_params
from xtal_graph.testing.strategies import lattices


@settings(max_examples=20)
@given(lattice=lattices(kinds=("regular",)), n=st.integers(1, 60))
def test_scaled_params_round_trip(lattice, n):
    lattice = torch.as_tensor(lattice)[None]
    num_atoms = torch.tensor([n])
    params = lattice_to_scaled_params(lattice, num_atoms)
    rebuilt = scaled_params_to_lattice(params, num_atoms)
    for a, b in zip(lattice_to_params(rebuilt), lattice_to_params(lattice), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-9)
    assert bool(validate_lattices(params, num_atoms, min_volume_per_atom=0.0).valid.all())


def test_validate_lattices_names_each_problem():
    p = torch.tensor(
        [
            [2.0, 2.0, 2.0, 90.0, 90.0, 90.0],  # valid
            [-1.0, 2.0, 2.0, 90.0, 90.0, 90.0],
            [2.0, 2.0, 2.0, 90.0, 190.0, 90.0],
            [2.0, 2.0, 2.0, 10.0, 10.0, 170.0],  # angles cannot close a cell
            [0.2, 0.2, 0.2, 90.0, 90.0, 90.0],  # 0.008 Å^3 per atom
            [float("nan"), 2.0, 2.0, 90.0, 90.0, 90.0],
        ],
        dtype=torch.float64,
    )
    check = validate_lattices(p, torch.ones(6, dtype=torch.long))
    assert check.valid.tolist() == [True, False, False, False, False, False]
    codes = [r.split(":")[0] for r in check.reasons]
    assert codes == ["", "non_positive_length", "bad_angle", "not_a_cell", "small_volume", "non_finite"]


def test_parse_formula_counts_atoms():
    assert parse_formula("Si4O8", max_atoms=60).atom_types == (14,) * 4 + (8,) * 8
    assert parse_formula("Mg2(SiO4)1", max_atoms=60).num_atoms == 7
    assert sorted(parse_formula("(H2O)2Na", max_atoms=60).atom_types) == [1, 1, 1, 1, 8, 8, 11]
    assert parse_formula(" Fe2O3 ", max_atoms=5).num_atoms == 5


@pytest.mark.parametrize(
    ("formula", "match"),
    [
        ("Og1", "beyond the model's 100"),
        ("2Si", "without an element"),
        ("Si)", "unbalanced"),
        (None, "empty"),
    ],
)
def test_parse_formula_errors(formula, match):
    with pytest.raises(ValueError, match=match):
        parse_formula(formula, max_atoms=60)
