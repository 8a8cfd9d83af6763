"""``xtal_eval.geometry``: the one numpy minimum image, exact in skewed cells (brute-force oracle)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from xtal_eval.geometry import (
    min_image_distances,
    min_image_vectors,
    pairwise_min_image_distances,
    shortest_distance,
    shortest_lattice_vector,
)

pytestmark = pytest.mark.torch_free

REACH = 12  # brute force: every image shift in [-12, 12]^3 (15,625 images)


def _brute(dfrac: np.ndarray, lattice: np.ndarray, *, exclude_zero: bool = False) -> np.ndarray:
    """(M,) shortest ``|(dfrac + n) @ L|`` over every integer ``n`` in a wide box around ``-round(dfrac)``."""
    dfrac = np.atleast_2d(dfrac) - np.round(dfrac)  # an integer shift: the same set of images
    r = np.arange(-REACH, REACH + 1)
    images = np.stack(np.meshgrid(r, r, r, indexing="ij"), -1).reshape(-1, 3).astype(float)
    if exclude_zero:
        images = images[np.any(images != 0, axis=1)]
    cand = (dfrac[:, None, :] + images[None]) @ lattice  # (M, K, 3)
    return np.linalg.norm(cand, axis=-1).min(axis=1)


@st.composite
def skewed_lattices(draw):
    """A reduced-ish cell times a unimodular shear: thin and strongly skewed cells, volume >= 1 Å^3."""
    diag = np.diag([draw(st.floats(1.0, 6.0)) for _ in range(3)])
    shear = np.eye(3)
    for i, j in ((1, 0), (2, 0), (2, 1)):
        shear[i, j] = draw(st.integers(-2, 2))  # inverse entries <= 6: inside REACH
    tilt = np.array([[draw(st.floats(-0.5, 0.5)) if i != j else 0.0 for j in range(3)] for i in range(3)])
    return shear @ (diag + tilt @ diag)


_fracs = st.lists(st.lists(st.floats(-3, 3), min_size=3, max_size=3), min_size=1, max_size=5)


@settings(max_examples=60, deadline=None)
@given(lattice=skewed_lattices(), dfrac=_fracs)
def test_min_image_vectors_match_a_wide_brute_force_search(lattice, dfrac):
    dfrac = np.array(dfrac)
    got = min_image_vectors(dfrac, lattice)
    np.testing.assert_allclose(np.linalg.norm(got, axis=-1), _brute(dfrac, lattice), rtol=0, atol=1e-9)
    shift = np.linalg.solve(lattice.T, (got - dfrac @ lattice).T).T  # an image of dfrac: integer shift
    np.testing.assert_allclose(shift, np.round(shift), atol=1e-8)


@settings(max_examples=40, deadline=None)
@given(lattice=skewed_lattices(), a=_fracs, b=_fracs, cutoff=st.floats(0.5, 8.0))
def test_min_image_distances_with_and_without_cutoff(lattice, a, b, cutoff):
    a, b = np.array(a), np.array(b)
    expected = _brute((b[None] - a[:, None]).reshape(-1, 3), lattice).reshape(len(a), len(b))
    np.testing.assert_allclose(min_image_distances(a, b, lattice), expected, rtol=0, atol=1e-9)
    cut = min_image_distances(a, b, lattice, cutoff=cutoff)
    inside = expected <= cutoff - 1e-9
    np.testing.assert_allclose(cut[inside], expected[inside], rtol=0, atol=1e-9)
    assert np.all(np.isinf(cut[expected > cutoff + 1e-9]))


@settings(max_examples=40, deadline=None)
@given(lattice=skewed_lattices(), frac=_fracs)
def test_shortest_lattice_vector_and_shortest_distance(lattice, frac):
    frac = np.array(frac) % 1.0
    lattice_min = float(_brute(np.zeros(3), lattice, exclude_zero=True)[0])
    assert shortest_lattice_vector(lattice) == pytest.approx(lattice_min, abs=1e-9)
    pairs = pairwise_min_image_distances(frac, lattice)
    np.fill_diagonal(pairs, np.inf)
    expected = min(lattice_min, float(pairs.min()))
    assert shortest_distance(frac, lattice) == pytest.approx(expected, abs=1e-9)
    assert shortest_distance(frac, lattice, cutoff=expected + 0.1) == pytest.approx(expected, abs=1e-9)
    assert shortest_distance(frac, lattice, cutoff=expected * 0.99 - 1e-9) == np.inf


def test_wrapping_alone_is_not_enough_in_a_skewed_cell():
    lattice = np.array([[1.0, 0, 0], [5.5, 0.3, 0], [0, 0, 5.0]])
    d = np.array([0.5, 0.5, 0.0])
    naive = np.linalg.norm((d - np.round(d)) @ lattice)
    exact = float(np.linalg.norm(min_image_vectors(d, lattice)))
    assert exact == pytest.approx(_brute(d, lattice)[0], abs=1e-12) and exact < naive - 1e-3


def test_bad_inputs_are_named():
    with pytest.raises(ValueError, match="shape"):
        min_image_vectors(np.zeros(3), np.eye(2))
    with pytest.raises(ValueError, match="finite"):
        min_image_vectors(np.array([np.nan, 0, 0]), np.eye(3))
    assert min_image_vectors(np.zeros((0, 3)), np.eye(3)).shape == (0, 3)
