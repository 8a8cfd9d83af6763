"""Generation metrics: uniqueness and novelty equal pymatgen loops; coverage and Wasserstein by hand."""

import warnings

import numpy as np
import pytest
from pymatgen.core import Lattice, Structure
from xtal_eval import PRESETS, Parallel
from xtal_eval.generation import (
    coverage,
    density_wasserstein,
    novelty,
    num_elements_wasserstein,
    unique_groups,
    uniqueness,
)

from tests.xtal_eval._helpers import load_mp20, perturbed

pytestmark = pytest.mark.torch_free


@pytest.fixture(scope="module")
def pool(shared_data):
    warnings.filterwarnings("ignore", message="Issues encountered while parsing CIF")
    _, structures = load_mp20(shared_data, n=10)
    dups = [perturbed(structures[i], seed=i, sigma=0.02) for i in (0, 3, 3, 7)]
    return structures + dups


@pytest.mark.data
@pytest.mark.parametrize("preset", ["cdvae", "strict"])
def test_unique_groups_equal_pymatgen_group_structures(pool, preset):
    matcher = PRESETS[preset].matcher()
    ids = {id(s): i for i, s in enumerate(pool)}
    expected = {frozenset(ids[id(s)] for s in g) for g in matcher.group_structures(pool)}
    got = unique_groups(pool, preset=preset, parallel=Parallel(backend="process", n_jobs=2))
    assert {frozenset(g) for g in got} == expected
    assert uniqueness(pool, preset=preset) == len(expected) / len(pool)


@pytest.mark.data
def test_novelty_equals_plain_loop(pool):
    reference, generated = pool[:6], pool[6:]
    matcher = PRESETS["paper"].matcher()
    expected = [not any(matcher.fit(r, g) for r in reference) for g in generated]
    assert novelty(generated, reference, preset="paper").tolist() == expected
    assert not all(expected) and any(expected)


def test_wasserstein_distances():
    a = Structure(Lattice.cubic(4.0), ["Na", "Cl"], [[0, 0, 0], [0.5] * 3])
    b = Structure(Lattice.cubic(5.0), ["Na", "Cl"], [[0, 0, 0], [0.5] * 3])
    c = Structure(Lattice.cubic(5.0), ["Na", "Cl", "O"], [[0, 0, 0], [0.5] * 3, [0.25] * 3])
    assert density_wasserstein([a], [b]) == pytest.approx(abs(a.density - b.density))
    assert num_elements_wasserstein([a, b], [c, c]) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="reference"):
        density_wasserstein([a], [])


def test_coverage_by_hand():
    ref_s = np.array([[0.0, 0.0], [1.0, 0.0]])
    ref_c = np.array([[0.0], [0.0]])
    gen_s = np.array([[0.0, 0.1], [5.0, 5.0], [np.nan, 0.0]])  # third: missing fingerprint
    gen_c = np.array([[0.0], [0.0], [0.0]])
    cov = coverage(gen_s, gen_c, ref_s, ref_c, cutoffs=(0.4, 10.0), comp_scaler=(np.zeros(1), np.ones(1)))
    assert cov.cov_recall == 0.5  # only the first reference item is within 0.4
    assert cov.cov_precision == pytest.approx(1 / 3)  # one of three generated, the missing one counts
    assert cov.amsd_recall == pytest.approx((0.1 + np.hypot(1.0, 0.1)) / 2)
    with pytest.raises(KeyError):
        coverage(gen_s, gen_c, ref_s, ref_c, cutoffs="unknown")
