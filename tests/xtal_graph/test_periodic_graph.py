"""periodic_graph (vectors of given edges) and the optional edges a CrystalBatch carries."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from xtal_graph import Crystal, collate, periodic_graph, radius_graph_pbc
from xtal_graph.testing.strategies import crystals


@given(items=st.lists(crystals(max_atoms=4), min_size=1, max_size=3), cutoff=st.floats(1.5, 6.0))
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_radius_edges_give_bit_identical_vectors(items, cutoff, dtype):
    batch = collate(items, dtype=dtype)
    graph = radius_graph_pbc(batch.frac_coords, batch.lattice, batch.num_atoms, cutoff, 8)
    again = periodic_graph(
        batch.frac_coords, batch.lattice, graph.edge_index, graph.cell_offsets, batch.batch
    )
    for name in ("edge_index", "cell_offsets", "vectors", "distances"):
        assert torch.equal(getattr(again, name), getattr(graph, name)), name


def test_batch_edges_travel_with_to_and_are_checked():
    crystal = Crystal(atom_types=[8, 8], frac_coords=[[0, 0, 0], [0.5, 0.5, 0.5]], lattice=3.0 * np.eye(3))
    base = collate([crystal])
    edges = base.replace(
        edge_index=torch.tensor([[1], [0]]), cell_offsets=torch.zeros(1, 3, dtype=torch.long)
    )
    moved = edges.to(dtype=torch.float64)
    assert torch.equal(moved.edge_index, edges.edge_index) and moved.cell_offsets.dtype == torch.long
    with pytest.raises(ValueError, match="both or neither"):
        base.replace(edge_index=torch.tensor([[1], [0]]))
    with pytest.raises(ValueError, match="cell_offsets"):
        base.replace(edge_index=torch.tensor([[1], [0]]), cell_offsets=torch.zeros(2, 3, dtype=torch.long))
