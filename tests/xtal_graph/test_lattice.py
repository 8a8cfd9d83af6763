"""Lattice maths: pymatgen orientation, round trips, widths, wrapping, exact minimum image."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from xtal_graph import (
    cart_to_frac,
    frac_to_cart,
    lattice_from_params,
    lattice_to_params,
    minimum_image,
    perpendicular_widths,
    volume,
    wrap_frac,
)
from xtal_graph.testing.strategies import lattices

from tests.conftest import DEVICES

params = st.tuples(
    st.lists(st.floats(1.0, 20.0), min_size=3, max_size=3),
    st.lists(st.floats(50.0, 130.0), min_size=3, max_size=3),
)


@given(params)
def test_lattice_from_params_matches_pymatgen(p):
    from pymatgen.core import Lattice

    lengths, angles = p
    reference = Lattice.from_parameters(*lengths, *angles)
    ours = lattice_from_params(lengths, angles)
    if abs(reference.volume) < 1e-3 * np.prod(lengths):  # impossible angle triple: both clamp
        return
    np.testing.assert_allclose(ours.numpy(), reference.matrix, atol=1e-9 * max(lengths))


@given(lattices())
def test_params_round_trip_up_to_rotation(lattice):
    lattice = torch.as_tensor(lattice)
    lengths, angles = lattice_to_params(lattice)
    rebuilt = lattice_from_params(lengths, angles)
    gram = lattice @ lattice.T
    torch.testing.assert_close(rebuilt @ rebuilt.T, gram, atol=1e-7 * float(gram.abs().max()), rtol=0)


@given(lattices())
def test_volume_and_widths_match_definitions(lattice):
    from pymatgen.core import Lattice

    lat = torch.as_tensor(lattice)
    assert float(volume(lat)) == pytest.approx(abs(Lattice(lattice).volume), rel=1e-9)
    # width k = distance between the planes frac_k = 0 and frac_k = 1 = 1 / |column k of L^-1|
    expected = 1.0 / np.linalg.norm(np.linalg.inv(lattice), axis=0)
    np.testing.assert_allclose(perpendicular_widths(lat).numpy(), expected, rtol=1e-9)


@pytest.mark.parametrize("device", DEVICES)
def test_frac_cart_round_trip_in_batches(device):
    gen = torch.Generator().manual_seed(1)
    lattice = (torch.eye(3) * 4 + torch.rand(3, 3, 3, generator=gen)).double().to(device)  # (C, 3, 3)
    num_atoms = torch.tensor([2, 3, 1], device=device)
    frac = torch.rand(6, 3, generator=gen, dtype=torch.float64).to(device)
    batch = torch.repeat_interleave(torch.arange(3, device=device), num_atoms)
    cart = frac_to_cart(frac, lattice, num_atoms)
    torch.testing.assert_close(cart, frac_to_cart(frac, lattice, batch=batch))
    torch.testing.assert_close(cart, frac_to_cart(frac, lattice[batch]))
    torch.testing.assert_close(cart[0], frac[0] @ lattice[0])
    torch.testing.assert_close(cart_to_frac(cart, lattice, num_atoms), frac)


@given(st.lists(st.floats(-1e6, 1e6, width=32), min_size=1, max_size=50))
def test_wrap_frac_float32_stays_below_one(values):
    x = torch.tensor(values, dtype=torch.float32)
    wrapped = wrap_frac(x)
    assert bool(((wrapped >= 0) & (wrapped < 1)).all())
    assert bool((wrap_frac(x.numpy()) < 1).all())


def test_wrap_frac_edge_cases():
    tiny = torch.tensor([-1e-9, -1e-30, -0.0, 1.0, 2.0, -1.0, 0.25, -0.75], dtype=torch.float32)
    assert torch.remainder(tiny, 1.0).max() == 1.0  # the trap wrap_frac avoids
    torch.testing.assert_close(wrap_frac(tiny), torch.tensor([0, 0, 0, 0, 0, 0, 0.25, 0.25]))
    x = torch.tensor([-1e-9, 0.3], dtype=torch.float32, requires_grad=True)
    wrap_frac(x).sum().backward()
    torch.testing.assert_close(x.grad, torch.ones(2))


def _brute_force_min_image(frac_diff: np.ndarray, lattice: np.ndarray, reach) -> np.ndarray:
    """Shortest ``(frac_diff + n) @ L`` over ``n`` within ``reach`` (int or per-axis) of ``-round(d)``."""
    reach = np.broadcast_to(np.asarray(reach), (3,))
    images = np.array(list(itertools.product(*(range(-r, r + 1) for r in reach))), dtype=np.float64)
    wrapped = frac_diff - np.round(frac_diff)
    vec = (wrapped[:, None, :] + images[None]) @ lattice
    return np.linalg.norm(vec, axis=2).min(axis=1)


@given(lattices(kinds=("skewed", "flat", "thin")), st.integers(0, 2**16))
def test_minimum_image_is_exact_for_skewed_cells(lattice, seed):
    rng = np.random.default_rng(seed)
    frac_diff = rng.uniform(-3, 3, size=(16, 3))
    got = minimum_image(torch.as_tensor(frac_diff), torch.as_tensor(lattice)).numpy()
    # any image closer than the wrapped one has |frac_k| <= |wrapped @ L| / width_k <= bound / width_k
    bound = 0.5 * np.linalg.norm(lattice, axis=1).sum()
    reach = np.ceil(bound / perpendicular_widths(torch.as_tensor(lattice)).numpy()).astype(int) + 1
    expected = _brute_force_min_image(frac_diff, lattice, reach)
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), expected, rtol=1e-10, atol=1e-10)
    # and the result is a lattice translate of the input
    shift = np.linalg.solve(lattice.T, got.T).T - frac_diff
    np.testing.assert_allclose(shift, np.round(shift), atol=1e-8)


def test_minimum_image_beats_27_images_on_a_skewed_cell():
    lattice = np.array([[1.0, 0.0, 0.0], [4.0, 1.0, 0.0], [0.0, 0.0, 5.0]])
    frac_diff = np.array([[0.0, 0.5, 0.0]])
    naive = _brute_force_min_image(frac_diff, lattice, reach=1)
    exact = _brute_force_min_image(frac_diff, lattice, reach=10)
    assert naive[0] > exact[0] + 0.5  # 27 images are not enough here
    got = minimum_image(torch.as_tensor(frac_diff), torch.as_tensor(lattice)).norm(dim=1)
    assert float(got[0]) == pytest.approx(exact[0], rel=1e-12)


@pytest.mark.parametrize("device", DEVICES)
def test_minimum_image_per_crystal_lattices_and_gradients(device):
    gen = torch.Generator().manual_seed(2)
    lattice = (torch.eye(3) * 3 + torch.rand(2, 3, 3, generator=gen)).double().to(device)
    frac = (torch.rand(5, 3, generator=gen, dtype=torch.float64) * 4 - 2).to(device).requires_grad_()
    num_atoms = torch.tensor([2, 3], device=device)
    batch = torch.repeat_interleave(torch.arange(2, device=device), num_atoms)
    torch.testing.assert_close(
        minimum_image(frac, lattice, num_atoms), minimum_image(frac, lattice, batch=batch)
    )
    lat = lattice.clone().requires_grad_()
    assert torch.autograd.gradcheck(lambda f, lt: minimum_image(f, lt, num_atoms), (frac, lat))


def test_lattice_functions_are_differentiable():
    lengths = torch.tensor([3.0, 4.0, 5.0], dtype=torch.float64, requires_grad=True)
    angles = torch.tensor([80.0, 95.0, 110.0], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lattice_from_params, (lengths, angles))
    lat = lattice_from_params(lengths, angles).detach().requires_grad_()
    assert torch.autograd.gradcheck(lambda x: lattice_to_params(x).angles, (lat,))
    assert torch.autograd.gradcheck(perpendicular_widths, (lat,))
