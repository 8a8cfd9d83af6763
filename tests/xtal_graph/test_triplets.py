"""Triplets k -> j -> i against a brute-force enumeration."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from xtal_graph import radius_graph_pbc, triplets
from xtal_graph.testing.strategies import crystal_batches

from tests.conftest import DEVICES


def brute_force(graph) -> set[tuple[int, int]]:
    src, dst = graph.edge_index.tolist()
    off = graph.cell_offsets.tolist()
    out = set()
    for ji in range(len(src)):
        for kj in range(len(src)):
            if dst[kj] != src[ji]:
                continue
            backtrack = src[kj] == dst[ji] and all(a + b == 0 for a, b in zip(off[kj], off[ji], strict=True))
            if not backtrack:
                out.add((kj, ji))
    return out


@pytest.mark.parametrize("device", DEVICES)
@given(
    batch=crystal_batches(max_crystals=2, max_atoms=3),
    cutoff=st.floats(1.0, 3.5),
    k=st.sampled_from([None, 3]),
)
def test_triplets_equal_brute_force(batch, cutoff, k, device):
    batch = batch.to(device)
    graph = radius_graph_pbc(batch.frac_coords, batch.lattice, batch.num_atoms, cutoff, k)
    trip = triplets(graph, batch.atom_types.shape[0])
    graph, trip = graph.to("cpu"), type(trip)(*(t.cpu() for t in vars(trip).values()))
    got = list(zip(trip.edge_kj.tolist(), trip.edge_ji.tolist(), strict=True))
    assert len(got) == len(set(got)) == trip.num_triplets
    assert set(got) == brute_force(graph)
    src, dst = graph.edge_index
    assert torch.equal(trip.idx_i, dst[trip.edge_ji])
    assert torch.equal(trip.idx_j, src[trip.edge_ji])
    assert torch.equal(trip.idx_j, dst[trip.edge_kj])
    assert torch.equal(trip.idx_k, src[trip.edge_kj])
    # ordered by edge_ji, then edge_kj
    order = trip.edge_ji * max(graph.num_edges, 1) + trip.edge_kj
    assert bool((order[1:] > order[:-1]).all())


def test_triplets_keep_other_images_of_the_centre():
    # one atom in a small cube: k can be i itself in another image (offsets not cancelling)
    frac = torch.zeros(1, 3, dtype=torch.float64)
    lattice = 2.0 * torch.eye(3, dtype=torch.float64)[None]
    graph = radius_graph_pbc(frac, lattice, torch.tensor([1]), 2.1)  # the 6 face neighbours
    trip = triplets(graph, 1)
    assert trip.num_triplets == 6 * 5  # every pair of distinct images, minus the 6 backtracks
    summed = graph.cell_offsets[trip.edge_kj] + graph.cell_offsets[trip.edge_ji]
    assert not bool((summed == 0).all(dim=1).any())


def test_triplets_of_an_empty_graph():
    graph = radius_graph_pbc(torch.zeros(1, 3), 2 * torch.eye(3)[None], torch.tensor([1]), 1.0)
    trip = triplets(graph, 1)
    assert trip.num_triplets == 0 and trip.edge_kj.dtype == torch.long
