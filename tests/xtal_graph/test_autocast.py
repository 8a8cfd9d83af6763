"""Geometry under autocast: every public geometry function computes in its inputs' precision.

Mixed-precision training runs the networks under ``torch.autocast(dtype=torch.bfloat16)``; the
positions, cells and neighbour lists around them must not lose digits (``xtal_graph._precision``).
"""

from __future__ import annotations

import pytest
import torch
from xtal_graph import (
    CrystalBatch,
    cart_to_frac,
    frac_to_cart,
    lattice_from_params,
    lattice_to_params,
    minimum_image,
    periodic_graph,
    radius_graph_pbc,
    volume,
)

from tests.conftest import DEVICES


def _batch(device: str) -> CrystalBatch:
    gen = torch.Generator().manual_seed(3)
    num_atoms = torch.tensor([4, 7])
    lengths = torch.tensor([[5.1, 6.3, 7.9], [4.4, 4.9, 11.2]])
    angles = torch.tensor([[88.0, 101.0, 95.0], [90.0, 90.0, 120.0]])
    lattice = lattice_from_params(lengths, angles)  # (2, 3, 3)
    frac = torch.rand(int(num_atoms.sum()), 3, generator=gen)
    batch = torch.repeat_interleave(torch.arange(2), num_atoms)
    return CrystalBatch(
        frac_coords=frac.to(device), lattice=lattice.to(torch.float32).to(device),
        atom_types=torch.full((11,), 14, device=device), num_atoms=num_atoms.to(device),
        batch=batch.to(device),
    )  # fmt: skip


def _geometry(b: CrystalBatch) -> dict[str, torch.Tensor]:
    """Every geometry output, flattened into named tensors."""
    graph = radius_graph_pbc(b.frac_coords, b.lattice, b.num_atoms, cutoff=6.0, max_neighbors=12)
    given = periodic_graph(b.frac_coords, b.lattice, graph.edge_index, graph.cell_offsets, b.batch)
    params = lattice_to_params(b.lattice)
    cart = frac_to_cart(b.frac_coords, b.lattice, batch=b.batch)
    return {
        "cart": cart,
        "batch.cart_coords": b.cart_coords,
        "frac": cart_to_frac(cart, b.lattice, batch=b.batch),
        "minimum_image": minimum_image(b.frac_coords - b.frac_coords.roll(1, 0), b.lattice, batch=b.batch),
        "lengths": params.lengths,
        "angles": params.angles,
        "lattice_from_params": lattice_from_params(params.lengths, params.angles),
        "volume": volume(b.lattice),
        "edge_index": graph.edge_index,
        "cell_offsets": graph.cell_offsets,
        "vectors": graph.vectors,
        "distances": graph.distances,
        "periodic_graph.vectors": given.vectors,
    }


@pytest.mark.parametrize("device", DEVICES)
def test_geometry_is_bitwise_equal_under_bf16_autocast(device):
    b = _batch(device)
    plain = _geometry(b)
    with torch.autocast(device_type=device, dtype=torch.bfloat16):
        # the control: autocast is really on here and would round a bare product to bfloat16
        assert torch.bmm(b.frac_coords.unsqueeze(1), b.lattice[b.batch]).dtype == torch.bfloat16
        mixed = _geometry(b)
    assert plain.keys() == mixed.keys()
    for name, value in plain.items():
        assert mixed[name].dtype == value.dtype, name
        assert torch.equal(mixed[name], value), name


def test_gradients_flow_through_geometry_under_autocast():
    b = _batch("cpu")
    frac = b.frac_coords.clone().requires_grad_(True)
    with torch.autocast(device_type="cpu", dtype=torch.bfloat16):
        graph = radius_graph_pbc(frac, b.lattice, b.num_atoms, cutoff=6.0)
        graph.distances.sum().backward()
    assert frac.grad is not None and frac.grad.dtype == torch.float32 and frac.grad.abs().sum() > 0
