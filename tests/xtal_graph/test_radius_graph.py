"""radius_graph_pbc: complete neighbour sets against vesin / pymatgen / brute force, ordering,
max_neighbors tie-breaking, gradients, batching."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from hypothesis import assume, given
from hypothesis import strategies as st
from xtal_graph import Crystal, collate, radius_graph_pbc
from xtal_graph.testing.strategies import crystals, lattices

from tests.conftest import DEVICES
from tests.xtal_graph._helpers import (
    brute_force_edges,
    edge_set,
    has_boundary_pair,
    pymatgen_edges,
    vesin_edges,
)


def graph_of(crystal: Crystal, cutoff: float, dtype=torch.float64, device="cpu", **kw):
    frac = torch.as_tensor(np.array(crystal.frac_coords), dtype=dtype, device=device)
    lattice = torch.as_tensor(np.array(crystal.lattice), dtype=dtype, device=device)[None]
    num_atoms = torch.tensor([crystal.num_atoms], device=device)
    return radius_graph_pbc(frac, lattice, num_atoms, cutoff, **kw)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@given(crystal=crystals(max_atoms=5), cutoff=st.floats(1.0, 7.0))
def test_matches_vesin_on_random_thin_flat_and_skewed_cells(crystal, cutoff, dtype, device):
    # the reference sees exactly the (possibly float32-rounded) numbers we are given
    frac = np.array(crystal.frac_coords).astype(torch.empty(0, dtype=dtype).numpy().dtype).astype(np.float64)
    lattice = np.array(crystal.lattice).astype(frac.dtype if dtype == torch.float64 else np.float32)
    lattice = lattice.astype(np.float64)
    assume(not has_boundary_pair(frac, lattice, [len(frac)], cutoff))
    rounded = Crystal(atom_types=crystal.atom_types, frac_coords=frac, lattice=lattice)
    graph = graph_of(rounded, cutoff, dtype=dtype, device=device)
    assert graph.vectors.dtype == dtype and graph.edge_index.device.type == device
    assert edge_set(graph.to("cpu")) == vesin_edges(frac, lattice, cutoff)


def test_very_thin_cell_against_brute_force():
    lattice = np.array([[0.35, 0.0, 0.0], [0.1, 5.0, 0.0], [0.2, 0.3, 6.0]])  # 0.35 A thin
    frac = np.array([[0.0, 0.1, 0.2], [0.5, 0.6, 0.7]])
    cutoff = 3.1
    got = edge_set(graph_of(Crystal(atom_types=np.array([1, 1]), frac_coords=frac, lattice=lattice), cutoff))
    assert got == brute_force_edges(frac, lattice, cutoff)
    assert max(abs(e[2]) for e in got) == 8  # floor(3.1 / 0.35): eight cells along the thin axis


def test_very_skewed_basis_against_brute_force():
    lattice = np.array([[1, 5, 0], [0, 1, 0], [3, -4, 1]], dtype=float) @ np.diag([2.5, 3.0, 3.5])
    frac = np.array([[0.1, 0.2, 0.3], [0.7, 0.1, 0.9], [0.4, 0.8, 0.5]])
    crystal = Crystal(atom_types=np.array([8, 8, 8]), frac_coords=frac, lattice=lattice)
    assert edge_set(graph_of(crystal, 4.3)) == brute_force_edges(frac, lattice, 4.3)


def _real_structures(shared_data, count: int):
    import pandas as pd
    from pymatgen.core import Structure

    frames = [
        pd.read_feather(shared_data / "mp_20" / "val.feather").iloc[:count],
        pd.read_csv(shared_data / "perov_5" / "val.csv").iloc[:count],
        pd.read_csv(shared_data / "carbon_24" / "val.csv").iloc[:count],
    ]
    rows = pd.concat([f[["cif"]] for f in frames])
    with warnings.catch_warnings():  # pymatgen notes CIF coordinates it rounds to ideal values
        warnings.simplefilter("ignore", UserWarning)
        structures = [Structure.from_str(cif, fmt="cif") for cif in rows.cif]
    return [Crystal.from_pymatgen(s, id=str(i)) for i, s in enumerate(structures)]


@pytest.mark.data
@pytest.mark.slow
def test_real_structures_match_pymatgen_and_vesin(shared_data):
    crystals_ = _real_structures(shared_data, 12)
    cutoff = 7.0
    beyond_27_images = 0
    for crystal in crystals_:
        if has_boundary_pair(crystal.frac_coords, crystal.lattice, [crystal.num_atoms], cutoff):
            continue
        got = edge_set(graph_of(crystal, cutoff))
        assert got == pymatgen_edges(crystal.to_pymatgen(), cutoff), crystal.id
        assert got == vesin_edges(crystal.frac_coords, crystal.lattice, cutoff), crystal.id
        beyond_27_images += sum(max(abs(o) for o in e[2:]) > 1 for e in got)
    assert beyond_27_images > 0  # real cells need more than the 27 neighbouring images at 7 A


@pytest.mark.data
def test_batched_graph_equals_per_crystal_graphs(shared_data):
    crystals_ = _real_structures(shared_data, 4)
    batch = collate(crystals_, dtype=torch.float64)
    graph = radius_graph_pbc(batch.frac_coords, batch.lattice, batch.num_atoms, 6.0)
    expected, start = set(), 0
    for crystal in crystals_:
        expected |= {(i + start, j + start, *o) for i, j, *o in edge_set(graph_of(crystal, 6.0))}
        start += crystal.num_atoms
    assert edge_set(graph) == expected


@pytest.mark.parametrize("device", DEVICES)
@given(crystal=crystals(max_atoms=4), cutoff=st.floats(1.5, 6.0))
def test_edges_sorted_no_self_loops_and_vectors_consistent(crystal, cutoff, device):
    graph = graph_of(crystal, cutoff, device=device).to("cpu")
    src, dst = graph.edge_index
    assert not bool(((src == dst) & (graph.cell_offsets == 0).all(dim=1)).any())
    assert bool((dst[1:] >= dst[:-1]).all())
    same = dst[1:] == dst[:-1]
    assert bool((graph.distances[1:][same] >= graph.distances[:-1][same] - 1e-9).all())
    cart = torch.tensor(crystal.cart_coords)
    lattice = torch.tensor(crystal.lattice)
    expected = cart[src] + graph.cell_offsets.double() @ lattice - cart[dst]
    torch.testing.assert_close(graph.vectors, expected)
    torch.testing.assert_close(graph.distances, expected.norm(dim=1))
    assert bool((graph.distances <= cutoff).all())


@given(crystal=crystals(max_atoms=4), cutoff=st.floats(2.0, 6.0), k=st.integers(1, 12))
def test_max_neighbors_keeps_the_nearest_of_each_target(crystal, cutoff, k):
    full = graph_of(crystal, cutoff)
    capped = graph_of(crystal, cutoff, max_neighbors=k)
    counts = torch.bincount(full.edge_index[1], minlength=crystal.num_atoms).clamp(max=k)
    assert torch.equal(torch.bincount(capped.edge_index[1], minlength=crystal.num_atoms), counts)
    for atom in range(crystal.num_atoms):
        kept = capped.distances[capped.edge_index[1] == atom]
        all_d = full.distances[full.edge_index[1] == atom]
        torch.testing.assert_close(kept, all_d[: len(kept)])


@pytest.mark.parametrize("device", DEVICES)
def test_max_neighbors_ties_broken_by_source_then_offset(device):
    from xtal_graph.testing import random_rotation

    # simple cubic: six neighbours at exactly the same distance; a rotation perturbs them by rounding
    lattice = 2.0 * torch.eye(3, dtype=torch.float64) @ random_rotation(3).T
    frac = torch.tensor([[0.1, 0.2, 0.3]], dtype=torch.float64)
    graph = radius_graph_pbc(
        frac.to(device), lattice[None].to(device), torch.tensor([1], device=device), 2.5, 4
    )
    expected = [[-1, 0, 0], [0, -1, 0], [0, 0, -1], [0, 0, 1]]
    assert graph.cell_offsets.cpu().tolist() == expected


def test_gradients_match_finite_differences():
    gen = torch.Generator().manual_seed(3)
    frac = torch.rand(4, 3, generator=gen, dtype=torch.float64)
    lattice = torch.eye(3, dtype=torch.float64) * 3 + torch.rand(3, 3, generator=gen, dtype=torch.float64)
    lattice = torch.stack([lattice, lattice.flip(0) + 0.5 * torch.eye(3, dtype=torch.float64)])
    num_atoms = torch.tensor([3, 1])
    assert not has_boundary_pair(frac, lattice, num_atoms, 4.1, tol=1e-4)

    def fn(f, lat):
        graph = radius_graph_pbc(f, lat, num_atoms, 4.1)
        return graph.vectors, graph.distances

    assert torch.autograd.gradcheck(fn, (frac.requires_grad_(), lattice.requires_grad_()))


def test_empty_crystals_and_empty_batch():
    lattice = torch.eye(3, dtype=torch.float64)[None].repeat(3, 1, 1) * 3
    frac = torch.tensor([[0.0, 0.0, 0.0]], dtype=torch.float64)
    graph = radius_graph_pbc(frac, lattice, torch.tensor([0, 1, 0]), 3.5)
    assert graph.num_edges == 6 and bool((graph.edge_index == 0).all())
    empty = radius_graph_pbc(frac[:0], lattice[:1], torch.tensor([0]), 3.5)
    assert empty.num_edges == 0 and empty.vectors.shape == (0, 3)


@given(
    crystal=crystals(max_atoms=6, lattice_strategy=lattices(min_length=7.0, max_length=12.0)),
    cutoff=st.floats(0.8, 3.0),
)
def test_small_cutoff_in_wide_cells_matches_vesin(crystal, cutoff):
    # wide cells and a short cutoff take the pair pre-filter path (most pairs have no image in range)
    assume(not has_boundary_pair(crystal.frac_coords, crystal.lattice, [crystal.num_atoms], cutoff))
    got = edge_set(graph_of(crystal, cutoff))
    assert got == vesin_edges(np.array(crystal.frac_coords), np.array(crystal.lattice), cutoff)


@pytest.mark.slow
def test_large_supercell_matches_vesin():
    gen = np.random.default_rng(7)
    lattice = np.array([[4.1, 0.2, 0.0], [0.3, 3.9, 0.1], [0.2, 0.4, 4.3]])
    frac = np.array([[0.0, 0.0, 0.0], [0.5, 0.45, 0.5], [0.2, 0.7, 0.3]])
    scale = np.array([4, 4, 3])
    images = np.array([(a, b, c) for a in range(4) for b in range(4) for c in range(3)])
    big_frac = ((frac[None] + images[:, None]) / scale).reshape(-1, 3) + gen.normal(
        0, 1e-3, (len(images) * 3, 3)
    )
    big = Crystal(
        atom_types=np.full(len(big_frac), 6), frac_coords=big_frac % 1.0, lattice=scale[:, None] * lattice
    )
    assert not has_boundary_pair(big.frac_coords, big.lattice, [big.num_atoms], 4.5)
    got = edge_set(graph_of(big, 4.5))
    assert len(got) > 10 * big.num_atoms
    assert got == vesin_edges(np.array(big.frac_coords), np.array(big.lattice), 4.5)
