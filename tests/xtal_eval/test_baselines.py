"""Random baselines: exact composition and volume, the minimum-distance rule, seeding, bad input.

Torch-free. Needs ASE (the ``baselines`` extra); the tests that make PyXtal structures skip without PyXtal.
"""

from __future__ import annotations

import importlib.util
import random

import numpy as np
import pytest

pytest.importorskip("ase", reason="the random baselines need ASE: pip install 'xtal-eval[baselines]'")

from ase.data import covalent_radii  # noqa: E402
from ase.neighborlist import neighbor_list  # noqa: E402
from hypothesis import given  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from pymatgen.core import Composition, Lattice, Structure  # noqa: E402
from pymatgen.io.ase import AseAtomsAdaptor  # noqa: E402
from xtal_eval.baselines import (  # noqa: E402
    _CENTRING,
    RandomStructureError,
    _primitive,
    derive_seed,
    min_distance_ok,
    parse_cell_formula,
    pyxtal_random,
    random_baseline,
    uniform_random,
)

pytestmark = pytest.mark.torch_free
needs_pyxtal = pytest.mark.skipif(
    importlib.util.find_spec("pyxtal") is None, reason="PyXtal not installed (xtal-eval[baselines])"
)
GENERATORS = [pyxtal_random, uniform_random]  # for input checks, which run before PyXtal is needed
MAKERS = [pytest.param(pyxtal_random, marks=needs_pyxtal), uniform_random]  # these make structures
TARGETS = [("Si4O8", 180.0), ("Cu4", 47.0), ("Ca1Ti1O3", 56.0), ("C8", 45.0), ("Mg2Si1O4", 70.0)]


def _closest_over_threshold(structure, scale: float = 0.5) -> float:
    """Independent check with ASE's neighbour list: min over pairs of distance / (scale (r_i + r_j))."""
    atoms = AseAtomsAdaptor.get_atoms(structure)
    cutoff = 2 * scale * covalent_radii[atoms.numbers].max() + 1e-6
    i, j, d = neighbor_list("ijd", atoms, cutoff)
    thr = scale * (covalent_radii[atoms.numbers[i]] + covalent_radii[atoms.numbers[j]])
    return float((d / thr).min()) if len(d) else np.inf


@pytest.mark.parametrize("make", MAKERS)
@pytest.mark.parametrize(("formula", "volume"), TARGETS)
def test_exact_composition_volume_and_minimum_distance(make, formula, volume):
    s = make(formula, volume, seed=1)
    assert s.composition == Composition(formula)
    assert s.volume == pytest.approx(volume, rel=1e-10)
    assert min_distance_ok(s) and _closest_over_threshold(s) >= 1 - 1e-9
    assert np.all((s.frac_coords >= 0) & (s.frac_coords < 1))


@pytest.mark.parametrize("make", MAKERS)
def test_same_seed_same_structure_and_different_seeds_differ(make):
    a = make("Si4O8", 180.0, seed=7)
    np.random.seed(123)  # noqa: NPY002  global random state must not matter
    random.seed(9)
    b = make("Si4O8", 180.0, seed=7)
    c = make("Si4O8", 180.0, seed=8)
    assert np.array_equal(a.lattice.matrix, b.lattice.matrix) and np.array_equal(a.frac_coords, b.frac_coords)
    assert not np.allclose(a.lattice.matrix, c.lattice.matrix) or not np.allclose(
        a.frac_coords, c.frac_coords
    )


@needs_pyxtal
def test_pyxtal_draws_several_space_groups():
    groups = {pyxtal_random("Si4O8", 180.0, seed=s).get_space_group_info(symprec=1e-3)[1] for s in range(8)}
    assert len(groups) >= 4


@given(
    counts=st.lists(st.integers(1, 4), min_size=1, max_size=3),
    volume_per_atom=st.floats(10.0, 25.0),
    seed=st.integers(0, 2**32),
)
def test_uniform_random_any_small_composition(counts, volume_per_atom, seed):
    formula = "".join(f"{el}{n}" for el, n in zip(("Mg", "Si", "O"), counts, strict=False))
    volume = volume_per_atom * sum(counts)
    s = uniform_random(formula, volume, seed=seed)
    assert s.composition == Composition(formula)
    assert s.volume == pytest.approx(volume, rel=1e-10)
    assert _closest_over_threshold(s) >= 1 - 1e-9


def test_min_distance_ok_rejects_close_pairs_and_short_images():
    ok = Structure(Lattice.cubic(4.0), ["Cu", "Cu"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    assert min_distance_ok(ok)
    close = Structure(Lattice.cubic(4.0), ["Cu", "Cu"], [[0, 0, 0], [0.0, 0.0, 0.3]])  # 1.2 Å < 1.32 Å
    assert not min_distance_ok(close) and _closest_over_threshold(close) < 1
    assert min_distance_ok(close, min_distance_scale=0.4)
    thin = Structure(Lattice.orthorhombic(1.2, 8, 8), ["Cu"], [[0, 0, 0]])  # atom 1.2 Å from its own image
    assert not min_distance_ok(thin)
    wrap = Structure(Lattice.cubic(4.0), ["Cu", "Cu"], [[0.01, 0, 0], [0.99, 0, 0]])  # 0.08 Å across the face
    assert not min_distance_ok(wrap)


@pytest.mark.parametrize("centring", sorted(_CENTRING))
def test_primitive_fold_recovers_the_primitive_cell(centring):
    rng = np.random.default_rng(0)
    prim = Structure(
        Lattice.from_parameters(4.1, 4.7, 5.3, 80, 95, 105), ["Si", "O", "O"], rng.random((3, 3))
    )
    conv = prim.copy()
    conv.make_supercell(np.rint(np.linalg.inv(_CENTRING[centring])).astype(int))  # the centred cell
    species = [str(s.specie) for s in conv]
    lattice, sp, frac = _primitive(conv.lattice.matrix, species, conv.frac_coords, centring, 3)
    assert np.allclose(lattice, prim.lattice.matrix) and sorted(sp) == ["O", "O", "Si"]
    if centring != "P":  # a wrong centring does not fold onto the right number of atoms
        other = "I" if centring != "I" else "F"
        assert _primitive(conv.lattice.matrix, species, conv.frac_coords, other, 3) is None


def test_parse_cell_formula():
    assert parse_cell_formula("Si4O8") == [("Si", 4), ("O", 8)]
    assert parse_cell_formula("CuCu2") == [("Cu", 3)]


@pytest.mark.parametrize("make", GENERATORS)
@pytest.mark.parametrize(
    ("formula", "volume", "match"),
    [
        ("", 10.0, "empty formula"),
        ("  ", 10.0, "empty formula"),
        ("Qq2", 10.0, "unknown element 'Qq'"),
        ("Si4O0", 10.0, "zero count for O"),
        ("Si4 O8", 10.0, "not a cell formula"),
        ("SiO2.5", 10.0, "not a cell formula"),
        ("Si4O8", 0.0, "Si4O8: volume must be a positive"),
        ("Si4O8", -3.0, "volume must be a positive"),
        ("Si4O8", float("nan"), "volume must be a positive"),
    ],
)
def test_bad_input_names_the_culprit(make, formula, volume, match):
    with pytest.raises(ValueError, match=match):
        make(formula, volume, seed=0)


@pytest.mark.parametrize("make", GENERATORS)
def test_impossible_packing_fails_at_once_naming_the_formula(make):
    with pytest.raises(RandomStructureError, match=r"Si4O8: no random structure possible \(hard-sphere"):
        make("Si4O8", 5.0, seed=0)  # spheres of the rule fill 81% of the cell


def test_uniform_gives_up_after_max_attempts_with_counted_reasons():
    with pytest.raises(RandomStructureError, match=r"Cu4: no random structure within 3 attempts \(") as info:
        uniform_random("Cu4", 8.0, seed=0, max_attempts=3)
    assert sum(info.value.reasons.values()) == 3


@needs_pyxtal
def test_pyxtal_retries_other_groups_and_counts_its_failures(monkeypatch):
    import pyxtal

    seen = []

    def refuse(self, dim, group, *args, **kwargs):
        seen.append(group)
        raise RuntimeError("long time to generate structure, check inputs")

    monkeypatch.setattr(pyxtal.pyxtal, "from_random", refuse)
    with pytest.raises(RandomStructureError, match=r"within 4 attempts \(pyxtal: RuntimeError: 4\)") as info:
        pyxtal_random("Si4O8", 180.0, seed=0, max_attempts=4)
    assert info.value.reasons == {"pyxtal: RuntimeError": 4} and len(set(seen)) == 4


def test_random_baseline_counts_failures_and_is_order_independent():
    targets = [("Cu4", 47.0), ("Cu4", 8.0), ("Ca1Ti1O3", 56.0)]
    res = random_baseline(targets, kind="uniform", num_per_target=2, seed=5, max_attempts=3)
    assert [len(r) for r in res.structures] == [2, 2, 2]
    assert res.structures[1] == [None, None] and all("Cu4: no random" in r for r in res.reasons[1])
    assert res.failures == {"no structure within max_attempts": 2} and res.num_made == 4
    alone = uniform_random("Ca1Ti1O3", 56.0, seed=derive_seed(5, 1, 2, 1), max_attempts=3)
    assert np.array_equal(alone.frac_coords, res.structures[2][1].frac_coords)
    assert res.seeds[2][1] == derive_seed(5, 1, 2, 1) != derive_seed(5, 1, 1, 2)
    again = random_baseline(targets[::-1], kind="uniform", num_per_target=2, seed=5, max_attempts=3)
    assert again.failures == res.failures


@needs_pyxtal
def test_random_baseline_pyxtal_and_bad_arguments():
    res = random_baseline([("Cu4", 47.0)], kind="pyxtal", num_per_target=2, seed=0)
    assert res.num_made == 2 and res.failures == {} and res.reasons == [["", ""]]
    dense = random_baseline([("Cu4", 2.0)], kind="pyxtal", num_per_target=2, seed=0)
    assert dense.failures == {"packing too dense": 2} and dense.structures == [[None, None]]
    with pytest.raises(ValueError, match="unknown baseline kind 'airss'"):
        random_baseline([("Cu4", 47.0)], kind="airss", num_per_target=1, seed=0)
    with pytest.raises(ValueError, match="num_per_target"):
        random_baseline([("Cu4", 47.0)], kind="pyxtal", num_per_target=0, seed=0)
    with pytest.raises(ValueError, match="unknown element 'Zz'"):
        random_baseline([("Cu4", 47.0), ("Zz1", 5.0)], kind="uniform", num_per_target=1, seed=0)


def test_missing_pyxtal_is_a_clear_import_error(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "pyxtal", None)  # as if not installed
    with pytest.raises(ImportError, match=r"pip install 'xtal-eval\[baselines\]' \(pyxtal>=1.0\)"):
        pyxtal_random("Cu4", 47.0, seed=0)
    assert uniform_random("Cu4", 47.0, seed=0).composition == Composition("Cu4")  # needs no PyXtal


def test_random_baseline_same_result_in_a_process_pool():
    from xtal_eval import Parallel

    targets = [("Cu4", 47.0), ("Ca1Ti1O3", 56.0), ("Cu4", 2.0)]
    serial = random_baseline(targets, kind="uniform", num_per_target=2, seed=9)
    pooled = random_baseline(
        targets, kind="uniform", num_per_target=2, seed=9, parallel=Parallel.from_jobs(2)
    )
    assert pooled.failures == serial.failures == {"packing too dense": 2}
    assert pooled.reasons == serial.reasons and pooled.seeds == serial.seeds
    for a, b in zip(sum(serial.structures, []), sum(pooled.structures, []), strict=True):
        assert (a is None and b is None) or np.array_equal(a.frac_coords, b.frac_coords)
