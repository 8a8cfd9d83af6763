"""Edge sets and distances are invariant under every symmetry transform; the helpers of
xtal_graph.testing catch functions that are not."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import assume, given
from hypothesis import strategies as st
from xtal_graph import Crystal, CrystalBatch, collate, radius_graph_pbc
from xtal_graph.testing import (
    assert_edges_equivalent,
    assert_equivariant,
    assert_invariant,
    change_basis,
    make_supercell,
    random_rotation,
    rotate,
    standard_transforms,
)
from xtal_graph.testing.strategies import crystal_batches, supercell_scalings, unimodular_matrices

from tests.xtal_graph._helpers import has_boundary_pair


def graph_of(batch: CrystalBatch, cutoff: float, **kw):
    return radius_graph_pbc(batch.frac_coords, batch.lattice, batch.num_atoms, cutoff, **kw)


TRANSFORMS = sorted(standard_transforms(0))


@pytest.mark.parametrize("name", TRANSFORMS)
@given(
    batch=crystal_batches(max_crystals=2, max_atoms=4), cutoff=st.floats(1.5, 6.0), seed=st.integers(0, 99)
)
def test_edge_set_and_distances_invariant(name, batch, cutoff, seed):
    assume(not has_boundary_pair(batch.frac_coords, batch.lattice, batch.num_atoms, cutoff))
    transformed = standard_transforms(seed)[name](batch)
    graph, new_graph = graph_of(batch, cutoff), graph_of(transformed.batch, cutoff)
    assert_edges_equivalent(graph, new_graph, batch, transformed, atol=1e-9)


@given(
    batch=crystal_batches(max_crystals=2, max_atoms=3),
    matrix=unimodular_matrices(max_coefficient=3),
    scaling=supercell_scalings(),
)
def test_supercell_of_a_skewed_basis_keeps_per_atom_sorted_distances(batch, matrix, scaling):
    cutoff = 4.5
    assume(not has_boundary_pair(batch.frac_coords, batch.lattice, batch.num_atoms, cutoff))
    skewed = change_basis(batch, torch.as_tensor(matrix)).batch
    supercell = make_supercell(skewed, scaling)
    graph, big = graph_of(batch, cutoff), graph_of(supercell.batch, cutoff)
    for atom in range(supercell.batch.atom_types.shape[0]):
        original = int(supercell.atom_map[atom])
        want = torch.sort(graph.distances[graph.edge_index[1] == original]).values
        got = torch.sort(big.distances[big.edge_index[1] == atom]).values
        torch.testing.assert_close(got, want, atol=1e-9, rtol=0)


@given(batch=crystal_batches(max_crystals=2, max_atoms=4), seed=st.integers(0, 99))
def test_max_neighbors_edge_set_invariant_for_generic_crystals(batch, seed):
    # random crystals have no distance ties, so the kept nearest neighbours are well defined
    cutoff, k = 5.0, 6
    assume(not has_boundary_pair(batch.frac_coords, batch.lattice, batch.num_atoms, cutoff))
    full = graph_of(batch, cutoff)
    for target in full.edge_index[1].unique():
        d = full.distances[full.edge_index[1] == target]
        assume(len(d) <= k or float(d[k] - d[k - 1]) > 1e-6)
    for name in ("rotation", "permutation", "basis_change", "image_shift"):
        transformed = standard_transforms(seed)[name](batch)
        assert_edges_equivalent(
            graph_of(batch, cutoff, max_neighbors=k),
            graph_of(transformed.batch, cutoff, max_neighbors=k),
            batch,
            transformed,
        )


def test_float32_edge_vectors_equivariant_smoke():
    crystal = Crystal(
        atom_types=np.array([14, 8, 8]),
        frac_coords=np.array([[0.1, 0.2, 0.3], [0.45, 0.6, 0.1], [0.8, 0.3, 0.65]]),
        lattice=np.array([[4.0, 0.3, 0.1], [0.5, 4.5, 0.0], [0.2, 0.9, 5.0]]),
    )
    batch = collate([crystal], dtype=torch.float32)

    def per_atom_vector_sum(b: CrystalBatch) -> torch.Tensor:
        graph = graph_of(b, 4.0)
        out = torch.zeros(b.frac_coords.shape[0], 3, dtype=b.frac_coords.dtype)
        weights = torch.exp(-graph.distances)[:, None]
        return out.index_add(0, graph.edge_index[1], graph.vectors * weights)

    transforms = {k: v for k, v in standard_transforms(1).items() if k != "supercell"}
    assert_equivariant(per_atom_vector_sum, batch, transforms=transforms, actions="cart_vector", atol=1e-4)


def _two_crystals() -> CrystalBatch:
    crystals = [
        Crystal(
            atom_types=np.array([6, 8]),
            frac_coords=np.array([[0.1, 0.2, 0.3], [0.6, 0.55, 0.8]]),
            lattice=np.array([[3.0, 0.0, 0.2], [0.4, 3.5, 0.0], [0.0, 0.3, 4.0]]),
        ),
        Crystal(
            atom_types=np.array([26, 26, 8]),
            frac_coords=np.array([[0.0, 0.0, 0.0], [0.5, 0.5, 0.5], [0.25, 0.7, 0.1]]),
            lattice=np.array([[4.2, 0.0, 0.0], [1.0, 4.0, 0.0], [0.5, 0.2, 3.8]]),
        ),
    ]
    return collate(crystals, dtype=torch.float64)


def _mean_distance(b: CrystalBatch) -> torch.Tensor:
    graph = graph_of(b, 4.0)
    crystal = b.batch[graph.edge_index[1]]
    total = torch.zeros(b.num_crystals, dtype=torch.float64).index_add(0, crystal, graph.distances)
    return total / torch.bincount(crystal, minlength=b.num_crystals)


def test_helpers_pass_on_symmetric_functions():
    batch = _two_crystals()
    errors = assert_invariant(_mean_distance, batch, transforms=standard_transforms(0))
    assert set(name for name, _ in errors) == set(TRANSFORMS)
    assert max(errors.values()) < 1e-10


@pytest.mark.parametrize(
    ("fn", "actions", "broken_by"),
    [
        (lambda b: b.cart_coords, "cart_vector", "translation"),  # positions are not translation invariant
        (lambda b: b.frac_coords, "cart_vector", "rotation"),  # fractional coordinates do not rotate
        (lambda b: b.lattice[:, 0], "crystal_cart_vector", "basis_change"),  # depends on the basis
        (lambda b: b.cart_coords[:, 0], "per_atom", "rotation"),  # a Cartesian component
        (lambda b: b.frac_coords.sum(), "invariant", "image_shift"),
    ],
)
def test_helpers_fail_on_non_equivariant_functions(fn, actions, broken_by):
    batch = _two_crystals()
    with pytest.raises(AssertionError, match=broken_by) as info:
        assert_equivariant(fn, batch, transforms=standard_transforms(0), actions=actions)
    assert "max |error|" in str(info.value)


def test_edge_helper_fails_when_an_edge_is_missing():
    batch = _two_crystals()
    transformed = rotate(batch, random_rotation(5))
    graph = graph_of(batch, 4.0)
    smaller = graph_of(transformed.batch, 3.0)
    with pytest.raises(AssertionError, match="edges, expected"):
        assert_edges_equivalent(graph, smaller, batch, transformed)
