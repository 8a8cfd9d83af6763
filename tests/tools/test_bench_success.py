"""Fig. 3 success benchmark: first-match bookkeeping, curves, the size split, relaxation, plots."""

from __future__ import annotations

import numpy as np
import pytest
from ase.calculators.emt import EMT
from hypothesis import given
from hypothesis import strategies as st
from pymatgen.core import Lattice, Structure
from xtal_tools.evaluation.relaxer import Relaxer
from xtal_tools.evaluation.success import (
    SuccessSettings,
    plot_success,
    run_success,
    score_success,
    success_curve,
)
from xtal_tools.evaluation.targets import BenchTarget
from xtal_tools.relaxation import RelaxSettings


def rock_salt(a: float = 5.64) -> Structure:
    return Structure(Lattice.cubic(a), ["Na", "Cl"] * 4, _fcc_pairs())


def _fcc_pairs():
    fcc = [[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]]
    return [p for f in fcc for p in (f, [(f[0] + 0.5) % 1, f[1], f[2]])]


def caesium_chloride(a: float = 3.4) -> Structure:
    """Same composition as rock salt, another structure: never a match for it."""
    return Structure(Lattice.cubic(a), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])


def fcc_cu(a: float = 3.61) -> Structure:
    return Structure(Lattice.cubic(a), ["Cu"] * 4, [[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]])


def rattled(structure: Structure, amplitude: float, seed: int = 0) -> Structure:
    out = structure.copy()
    rng = np.random.default_rng(seed)
    for i in range(len(out)):
        out.translate_sites([i], rng.normal(0.0, amplitude, 3), frac_coords=False)
    return out


class StubSampler:
    """Returns ``make(formula, k)`` for sample k of each row and records every call."""

    def __init__(self, make):
        self.make, self.calls = make, []

    def __call__(self, formulas, pressures, *, num, seed):
        self.calls.append((list(formulas), list(pressures), num, seed))
        return [[self.make(f, k) for k in range(num)] for f in formulas]


@pytest.fixture(scope="module")
def targets() -> list[BenchTarget]:
    """Rock salt (8 atoms), fcc Cu (4 atoms) and a 24-atom rock-salt supercell (above the size cut)."""
    big = rock_salt()
    big.make_supercell([1, 1, 3])
    return [
        BenchTarget("nacl", rock_salt(), 0.0),
        BenchTarget("cu", fcc_cu(), 5.0),
        BenchTarget("big", big, 0.0),
    ]


def test_first_match_curves_and_size_split_from_hand_built_samples(targets):
    wrong_big = caesium_chloride()
    wrong_big.make_supercell([1, 1, 12])
    samples = {
        "unrelaxed": [
            [caesium_chloride(), None, rock_salt(5.5), caesium_chloride()],  # found at 3 (scaled cell)
            [fcc_cu(3.7), None, None, None],  # found at 1
            [wrong_big] * 4,  # never found
        ]
    }
    firsts, errors = score_success(targets, samples, presets=("cdvae", "paper"))
    assert errors == 0
    small = np.array([t.num_atoms < 20 for t in targets])
    for preset in ("cdvae", "paper"):
        first = firsts["unrelaxed"][preset]
        assert first.tolist() == [3, 1, 0]
        every, few = success_curve(first, 4), success_curve(first, 4, small)
        np.testing.assert_allclose(every, [1 / 3, 1 / 3, 2 / 3, 2 / 3])
        np.testing.assert_allclose(few, [0.5, 0.5, 1.0, 1.0])  # the 24-atom cell is out
        assert np.all(np.diff(every) >= 0) and np.all(np.diff(few) >= 0)


def test_curve_counts_a_match_from_its_index_on():
    np.testing.assert_allclose(success_curve(np.array([0, 1, 5, 2]), 5), [0.25, 0.5, 0.5, 0.5, 0.75])
    assert np.isnan(success_curve(np.array([1]), 3, np.array([False]))).all()


def test_size_cut_is_strict_fewer_than(targets):
    sampler = StubSampler(lambda f, k: {"Na4Cl4": rock_salt(), "Cu4": fcc_cu()}[f])
    result = run_success(targets[:2], sampler, SuccessSettings(num=1, presets=("paper",), size_cut=8))
    assert result.subsets == ("all", "n_atoms<8")
    np.testing.assert_allclose(result.curve("paper", "unrelaxed", "n_atoms<8"), [1.0])  # Cu only (4 atoms)
    assert result.summary()["n_targets_n_atoms<8"] == 1


def test_every_target_is_a_row_of_one_call_with_one_seed_whatever_the_chunking(targets):
    def make(f, k):
        return rock_salt() if k == 1 else None

    runs = []
    for chunk in (1, 2, 64):
        sampler = StubSampler(make)
        result = run_success(
            targets, sampler, SuccessSettings(num=2, seed=5, presets=("paper",), chunk=chunk)
        )
        assert sampler.calls == [(["Na4Cl4", "Cu4", "Na12Cl12"], [t.pressure for t in targets], 2, 5)]
        runs.append(result.first_match["unrelaxed"]["paper"].tolist())
    assert runs == [[2, 0, 2]] * 3  # the 24-atom supercell is found too: the matcher reduces cells


def test_relaxation_turns_rattled_samples_into_matches_and_counts_failures():
    target = BenchTarget("cu", fcc_cu(), 2.0)
    sampler = StubSampler(lambda f, k: None if k == 0 else rattled(fcc_cu(), 0.3, seed=k))
    relaxer = Relaxer(EMT(), RelaxSettings(max_steps=100))
    settings = SuccessSettings(num=3, seed=7, presets=("paper",), modes=("unrelaxed", "relaxed"))
    result = run_success([target], sampler, settings, relaxer=relaxer)
    assert sampler.calls == [(["Cu4"], [2.0], 3, 7)]
    assert result.first_match["unrelaxed"]["paper"].tolist() == [0]  # rattled by ~0.5 Å: no match
    assert result.first_match["relaxed"]["paper"].tolist() == [2]  # sample 1 is None, 2 relaxes back
    np.testing.assert_allclose(result.curve("paper", "relaxed"), [0.0, 1.0, 1.0])
    assert result.n_invalid == 1
    assert result.relax["tried"] == 2 and result.relax["failed"] == 0
    rows = result.rows()
    assert rows[0]["paper_relaxed_first_match"] == 2 and rows[0]["n_atoms"] == 4
    summary = result.summary()
    assert summary["success_rate_at_num"]["paper/relaxed/all"] == 1.0
    assert summary["n_samples"] == 3


class RaisingEMT(EMT):
    def calculate(self, *args, **kwargs):
        raise RuntimeError("calculator refuses")


def test_failed_relaxation_is_never_a_match_and_is_counted():
    target = BenchTarget("cu", fcc_cu(), 0.0)
    relaxer = Relaxer(RaisingEMT(), RelaxSettings(max_steps=5))
    settings = SuccessSettings(num=2, presets=("cdvae",), modes=("unrelaxed", "relaxed"))
    result = run_success([target], StubSampler(lambda f, k: fcc_cu()), settings, relaxer=relaxer)
    assert result.first_match["unrelaxed"]["cdvae"].tolist() == [1]
    assert result.first_match["relaxed"]["cdvae"].tolist() == [0]
    assert result.relax["failed"] == 2 and result.relax["reasons"] == {"RuntimeError": 2}


def test_settings_and_inputs_are_checked():
    with pytest.raises(ValueError, match="unknown matcher preset"):
        SuccessSettings(presets=("loose",))
    with pytest.raises(ValueError, match="num must be"):
        SuccessSettings(num=0)
    with pytest.raises(ValueError, match="modes"):
        SuccessSettings(modes=("annealed",))
    with pytest.raises(ValueError, match="needs a relaxer"):
        run_success([BenchTarget("cu", fcc_cu(), 0.0)], StubSampler(lambda f, k: None), SuccessSettings(
            modes=("relaxed",)))  # fmt: skip
    with pytest.raises(ValueError, match="no targets"):
        run_success([], StubSampler(lambda f, k: None), SuccessSettings())
    with pytest.raises(ValueError, match="not 2"):
        run_success([BenchTarget("cu", fcc_cu(), 0.0)], lambda *a, **k: [[None]], SuccessSettings(num=2))


def test_plot_writes_a_png_even_with_an_empty_subset(tmp_path):
    target = BenchTarget("big", rattled(fcc_cu(), 0.0), 0.0)
    sampler = StubSampler(lambda f, k: fcc_cu())
    result = run_success([target], sampler, SuccessSettings(num=2, size_cut=2, presets=("paper",)))
    assert np.isnan(result.curve("paper", "unrelaxed", "n_atoms<2")).all()
    plot_success(result, tmp_path / "s.png", title="t")
    assert (tmp_path / "s.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in tmp_path.iterdir()] == ["s.png"]  # no temporary file left


@given(
    first=st.lists(st.integers(min_value=0, max_value=12), min_size=1, max_size=30),
    num=st.integers(min_value=1, max_value=12),
    data=st.data(),
)
def test_curve_properties(first, num, data):
    first = np.array(first)
    mask = np.array(data.draw(st.lists(st.booleans(), min_size=len(first), max_size=len(first))))
    curve = success_curve(first, num)
    assert curve.shape == (num,) and np.all(np.diff(curve) >= 0)  # more samplings never lose a target
    assert curve[-1] == np.mean((first >= 1) & (first <= num))
    sub = success_curve(first, num, mask)
    if mask.any():  # the subset curve is the curve of the subset
        np.testing.assert_array_equal(sub, success_curve(first[mask], num))
    else:
        assert np.isnan(sub).all()
