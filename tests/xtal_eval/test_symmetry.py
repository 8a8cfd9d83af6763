"""A structure matches its transformed self with RMSD about 0 under every preset (DESIGN.md)."""

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from xtal_eval import PRESETS, match_prepared, prepare
from xtal_eval.geometry import min_image_vectors

from tests.xtal_eval._helpers import (
    UNIMODULAR,
    change_basis,
    displace_site,
    grid_structures,
    permute,
    rotate,
    rotation_matrix,
    structures,
    supercell,
    translate,
)

pytestmark = pytest.mark.torch_free

unit_vectors = st.lists(st.floats(-1, 1), min_size=3, max_size=3).filter(lambda v: np.linalg.norm(v) > 0.1)


def _assert_self_match(a, b):
    pa, pb = prepare(a), prepare(b)
    for preset in PRESETS.values():
        r = match_prepared(pa, pb, preset, criterion="rms")
        assert r.matched, preset.name
        assert r.rms < 1e-6, (preset.name, r.rms)
        assert match_prepared(pb, pa, preset, criterion="fit").matched, preset.name


@given(
    s=structures(),
    axis=unit_vectors,
    angle=st.floats(0, 2 * np.pi),
    shift=st.lists(st.floats(-1, 1), min_size=3, max_size=3),
    seed=st.integers(0, 2**16),
)
def test_rotation_translation_permutation_invariance(s, axis, angle, shift, seed):
    perm = np.random.default_rng(seed).permutation(len(s))
    t = permute(translate(rotate(s, rotation_matrix(np.array(axis), angle)), np.array(shift)), perm)
    _assert_self_match(s, t)


@given(
    s=structures(max_sites=3),
    m=st.sampled_from(UNIMODULAR),
    diag=st.sampled_from([(1, 1, 1), (2, 1, 1), (1, 2, 2)]),
)
def test_basis_change_and_supercell_invariance(s, m, diag):
    """Claimed for cells that are their own primitive cell at pymatgen's tolerance: a cell that is *nearly*
    a supercell (e.g. 3 Na at 0, 0.3125, 0.625 along a) is reduced to a different primitive cell than its
    supercell is, and pymatgen's own ``get_rms_dist`` / ``fit`` then find no match either."""
    assume(len(s.get_primitive_structure()) == len(s))
    _assert_self_match(s, supercell(change_basis(s, m), diag))


@given(s=grid_structures())
def test_site_displaced_by_0p4_does_not_fit(s):
    """``fit`` (largest displacement below stol) rejects a site moved by 0.4 along a under ``paper`` and
    ``strict``, in either argument order. The lenient ``cdvae`` preset may still accept it (the optimal
    common translation spreads the move over all sites), but never with an RMSD near 0."""
    step = np.array([0.4, 0.0, 0.0])
    free_length = (s.volume / len(s)) ** (1 / 3)
    assume(np.linalg.norm(min_image_vectors(step, s.lattice.matrix)) > PRESETS["cdvae"].stol * free_length)
    moved = displace_site(s, 0, step)
    pa, pb = prepare(s), prepare(moved)
    for name in ("paper", "strict"):
        assert not match_prepared(pa, pb, PRESETS[name], criterion="fit").matched, name
        assert not match_prepared(pb, pa, PRESETS[name], criterion="fit").matched, name
    loose = match_prepared(pb, pa, PRESETS["cdvae"], criterion="rms")
    assert not loose.matched or loose.rms > 0.05


def test_rms_criterion_is_more_lenient_than_fit():
    """Documented behaviour: with ``get_rms_dist`` (CDVAE's criterion) a 0.4 displacement of one site out of
    eight can still count as a match under ``cdvae``, because the RMS over all sites stays below stol while
    the largest displacement (``fit``) does not."""
    from pymatgen.core import Lattice, Structure

    rng = np.random.default_rng(3)
    s = Structure(Lattice.from_parameters(5, 5.5, 6, 85, 95, 100), ["Na", "Cl"] * 4, rng.random((8, 3)))
    moved = displace_site(s, 0, np.array([0.4, 0.0, 0.0]))
    rms = match_prepared(prepare(moved), prepare(s), PRESETS["cdvae"], criterion="rms")
    fit = match_prepared(prepare(s), prepare(moved), PRESETS["cdvae"], criterion="fit")
    assert rms.matched and 0.1 < rms.rms < 0.5
    assert not fit.matched


def test_float32_coordinates_smoke():
    from pymatgen.core import Lattice, Structure

    s = Structure(Lattice.cubic(5.64), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    t = Structure(
        Lattice(s.lattice.matrix.astype(np.float32)), s.species, (s.frac_coords + 0.1).astype(np.float32)
    )
    r = match_prepared(prepare(t), prepare(s), PRESETS["strict"])
    assert r.matched and r.rms < 1e-5
