"""Every decision and RMSD equals a direct pymatgen call on real MP-20 pairs (both criteria, all presets)."""

import warnings

import numpy as np
import pytest
from xtal_eval import PRESETS, Parallel, csp, match_pairs, match_prepared, prepare

from tests.xtal_eval._helpers import load_mp20, perturbed

pytestmark = [pytest.mark.torch_free, pytest.mark.data]

# fit(a, b) != fit(b, a) for this pair under cdvae; and a pair where get_rms_dist matches but fit does not
ASYMMETRIC = ("mp-1279131", "mp-24105")
RMS_NOT_FIT = ("mp-761472", "mp-39091")


@pytest.fixture(scope="module")
def mp20(shared_data):
    warnings.filterwarnings("ignore", message="Issues encountered while parsing CIF")
    ids, structures = load_mp20(shared_data, n=16, ids=ASYMMETRIC + RMS_NOT_FIT)
    return dict(zip(ids, structures, strict=True)), structures[:16]


def _pairs(structures):
    first, second = [], []
    for i, s in enumerate(structures):
        first.append(perturbed(s, seed=i))  # a near copy
        second.append(s)
        first.append(perturbed(s, seed=100 + i, sigma=0.3, strain=0.1))  # a rough copy
        second.append(s)
        first.append(structures[(i + 1) % len(structures)])  # usually another composition
        second.append(s)
    return first, second


def _direct(first, second, preset, criterion):
    m = preset.matcher()
    out = []
    for a, b in zip(first, second, strict=True):
        if criterion == "fit" and not m.fit(a, b):
            out.append(None)
            continue
        out.append(m.get_rms_dist(a, b))
    return out


@pytest.mark.parametrize("criterion", ["rms", "fit"])
def test_match_pairs_equals_direct_pymatgen(mp20, criterion):
    first, second = _pairs(mp20[1])
    table = match_pairs(first, second, presets=tuple(PRESETS), criterion=criterion)
    for preset in PRESETS.values():
        direct = _direct(first, second, preset, criterion)
        for i, (d, r) in enumerate(zip(direct, table.column(preset.name), strict=True)):
            assert r.error is None
            assert r.matched == (d is not None), (preset.name, i)
            if d is not None:
                assert (r.rms, r.max_dist) == (d[0], d[1]), (preset.name, i)  # bit-identical
    assert table.skipped("cdvae").get("composition", 0) > 0  # the prefilter did work


def test_fit_is_asymmetric_and_order_is_kept(mp20):
    a, b = (mp20[0][i] for i in ASYMMETRIC)
    m = PRESETS["cdvae"].matcher()
    assert m.fit(a, b) != m.fit(b, a)  # pymatgen itself is asymmetric on this pair
    pa, pb = prepare(a), prepare(b)
    assert match_prepared(pa, pb, PRESETS["cdvae"], criterion="fit").matched == m.fit(a, b)
    assert match_prepared(pb, pa, PRESETS["cdvae"], criterion="fit").matched == m.fit(b, a)


def test_rms_and_fit_criteria_differ_on_a_real_pair(mp20):
    a, b = (mp20[0][i] for i in RMS_NOT_FIT)
    pa, pb = prepare(a), prepare(b)
    rms = match_prepared(pb, pa, PRESETS["cdvae"], criterion="rms")
    fit = match_prepared(pb, pa, PRESETS["cdvae"], criterion="fit")
    assert rms.matched and not fit.matched
    assert rms.rms == PRESETS["cdvae"].matcher().get_rms_dist(b, a)[0]


def _plain_csp(targets, samples, preset, k):
    """Reference loops: DiffCSP match@k, get_rms_dist(sample, target); statgen first fit(target, sample)."""
    m = preset.matcher()
    best, first = [], []
    for t, ss in zip(targets, samples, strict=True):
        rms = [m.get_rms_dist(s, t) for s in ss[:k]]
        found = [r[0] for r in rms if r is not None]
        best.append(min(found) if found else np.nan)
        hits = [j + 1 for j, s in enumerate(ss) if m.fit(t, s)]
        first.append(hits[0] if hits else 0)
    return np.array(best), np.array(first)


@pytest.mark.slow
def test_csp_equals_plain_loops_serial_and_two_processes(mp20):
    targets = mp20[1][:6]
    rng = np.random.default_rng(0)
    samples = []
    for i, t in enumerate(targets):
        pool = [
            targets[(i + 1) % 6],
            perturbed(t, seed=i, sigma=0.35, strain=0.12),
            perturbed(t, seed=50 + i),
        ]
        samples.append([pool[j] for j in rng.permutation(3)] + [targets[(i + 2) % 6]])
    for parallel in (Parallel(), Parallel(backend="process", n_jobs=2)):
        report = csp(targets, samples, presets=("cdvae", "strict"), ks=(1, 3), parallel=parallel)
        for name in ("cdvae", "strict"):
            res = report.get(name)
            for col, k in enumerate((1, 3)):
                best, first = _plain_csp(targets, samples, PRESETS[name], k)
                np.testing.assert_array_equal(res.best_rms[:, col], best)
                np.testing.assert_array_equal(res.first_match, first)
            curve = report.curves(name)["all"]
            assert curve.shape == (4,) and np.all(np.diff(curve) >= 0)
            assert curve[-1] == np.mean(first > 0)


def test_site_count_filter_is_off_for_supercell_presets():
    """A distorted 2x1x1 supercell keeps twice the sites after reduction: the default presets say "no match"
    without searching (exact), a supercell-enabled preset must still search, and both equal pymatgen."""
    from pymatgen.core import Lattice, Structure
    from xtal_eval import MatcherPreset

    from tests.xtal_eval._helpers import displace_site, supercell

    s = Structure(
        Lattice.from_parameters(4.1, 4.3, 4.6, 88, 92, 95), ["Mg", "O"], [[0, 0, 0], [0.5, 0.45, 0.55]]
    )
    big = displace_site(supercell(s, (2, 1, 1)), 3, np.array([0.045, 0.0, 0.0]))  # 0.37 Å: no longer 2 copies
    sc = MatcherPreset(name="sc", ltol=0.2, stol=0.3, angle_tol=5, attempt_supercell=True)
    for preset in (PRESETS["paper"], sc):
        got = match_prepared(prepare(big), prepare(s), preset)
        direct = preset.matcher().get_rms_dist(big, s)
        assert got.matched == (direct is not None)
        if direct is not None:
            assert got.rms == direct[0]
    assert match_prepared(prepare(big), prepare(s), PRESETS["paper"]).skipped_by == "n_sites"
    assert match_prepared(prepare(big), prepare(s), sc).matched


def test_agreement_harness_catches_an_inexact_prefilter(mp20, monkeypatch):
    """Deliberately broken module: a "volume within 5%" prefilter looks plausible but is not exact (the
    matcher rescales volumes); the agreement check must notice."""
    import xtal_eval.matching as matching

    original = matching._prefilter

    def volume_prefilter(a, b, preset, matcher):
        ratio = a.structure.volume / b.structure.volume
        return "volume" if abs(ratio - 1) > 0.05 else original(a, b, preset, matcher)

    monkeypatch.setattr(matching, "_prefilter", volume_prefilter)
    first, second = _pairs(mp20[1])
    table = match_pairs(first, second, presets="cdvae")
    direct = _direct(first, second, PRESETS["cdvae"], "rms")
    disagree = [
        i
        for i, (d, r) in enumerate(zip(direct, table.column("cdvae"), strict=True))
        if r.matched != (d is not None)
    ]
    assert disagree, "the harness failed to detect an inexact prefilter"
