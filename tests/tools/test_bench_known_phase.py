"""Table IV known-phase benchmark: first match in batches, budgets, independent runs, success counts."""

from __future__ import annotations

import math

import numpy as np
import pytest
from xtal_tools.evaluation.known_phase import (
    KnownPhaseSettings,
    first_match_index,
    run_known_phase,
    search_run,
    summarise,
)
from xtal_tools.evaluation.samplers import derived_seed
from xtal_tools.evaluation.targets import BenchTarget

from tests.tools.test_bench_success import caesium_chloride, fcc_cu, rock_salt

NACL = BenchTarget("nacl", rock_salt(), 10.0)
CU = BenchTarget("cu", fcc_cu(), 0.0)


class LuckySampler:
    """Sample k of a call is the target with probability ``p`` (drawn from the call's seed), else a wrong
    structure or None. Records every call and what it returned."""

    def __init__(self, targets, p: float):
        self.targets = {t.formula: t.structure for t in targets}
        self.p, self.calls = p, []

    def __call__(self, formulas, pressures, *, num, seed):
        (formula,) = formulas
        rng = np.random.default_rng(seed)
        draws = rng.random(num)
        hits = [bool(d < self.p) for d in draws]
        self.calls.append({"formula": formula, "num": num, "seed": seed, "hits": hits})
        wrong = caesium_chloride() if formula == "Na4Cl4" else None
        return [[self.targets[formula] if h else (wrong if k % 2 else None) for k, h in enumerate(hits)]]


def test_first_match_index_counts_from_one_and_skips_none():
    assert first_match_index(rock_salt(), [None, caesium_chloride(), rock_salt(5.3), rock_salt()]) == 3
    assert first_match_index(rock_salt(), [caesium_chloride(), None]) == 0
    assert first_match_index(rock_salt(), []) == 0


def test_runs_stop_at_the_first_match_and_report_its_index():
    sampler = LuckySampler([NACL, CU], p=0.15)
    settings = KnownPhaseSettings(runs=6, budget=10, batch=3, seed=4, preset="paper")
    phases = run_known_phase([NACL, CU], sampler, settings)
    calls = iter(sampler.calls)
    run_seeds = set()
    for t, phase in enumerate(phases):
        assert len(phase.runs) == 6
        for r, run in enumerate(phase.runs):
            assert run.seed == derived_seed(4, t, r)
            run_seeds.add(run.seed)
            hits, sizes = [], []
            while True:  # replay the calls of this run: they end at a hit or at the budget
                call = next(calls)
                assert call["seed"] == derived_seed(run.seed, len(sizes))
                sizes.append(call["num"])
                hits += call["hits"]
                if any(call["hits"]) or sum(sizes) == 10:
                    break
            expected = hits.index(True) + 1 if any(hits) else 0
            assert run.first_match == expected
            assert run.n_sampled == sum(sizes)
            assert sizes == [3, 3, 3, 1][: len(sizes)]  # batches of 3, the last cut to the budget
        wins = [r.first_match for r in phase.runs if r.first_match]
        assert phase.successes == len(wins)
        assert (
            math.isnan(phase.mean_samplings)
            if not wins
            else phase.mean_samplings == pytest.approx(np.mean(wins))
        )
    assert next(calls, None) is None
    assert len(run_seeds) == 12  # every run of every target has its own seed
    assert 0 < sum(p.successes for p in phases) < 12  # p = 0.15 over 10 samplings: some runs fail


def test_a_phase_never_found_is_zero_of_r_with_no_mean():
    sampler = LuckySampler([NACL], p=0.0)
    (phase,) = run_known_phase([NACL], sampler, KnownPhaseSettings(runs=3, budget=7, batch=4))
    assert phase.successes == 0 and math.isnan(phase.mean_samplings)
    assert [r.n_sampled for r in phase.runs] == [7, 7, 7]
    row = phase.row()
    assert row["success_count"] == "0/3" and row["first_match_per_run"] == "0 0 0"
    assert row["invalid_cells"] == sum(c["num"] - sum(k % 2 for k in range(c["num"])) for c in sampler.calls)
    out = summarise([phase], KnownPhaseSettings(runs=3, budget=7, batch=4))
    assert out["targets"]["nacl"]["success_count"] == "0/3" and out["n_samples"] == 21


def test_same_seed_same_runs_other_seed_other_runs():
    def go(seed):
        phases = run_known_phase(
            [NACL], LuckySampler([NACL], 0.2), KnownPhaseSettings(runs=4, budget=8, seed=seed)
        )
        return [(r.seed, r.first_match) for r in phases[0].runs]

    assert go(1) == go(1)
    assert {s for s, _ in go(1)}.isdisjoint({s for s, _ in go(2)})


class CountingRelaxer:
    """Relaxes sample number ``fix_at`` (1-based, over the run) into the target; counts calls."""

    def __init__(self, target, fix_at: int):
        self.target, self.fix_at, self.n = target, fix_at, 0

    def __call__(self, structures, pressure):
        self.n += len(structures)
        return [self.target if self.n == self.fix_at else caesium_chloride() for _ in structures]


def test_relaxation_happens_sample_by_sample_until_the_match():
    relaxer = CountingRelaxer(rock_salt(), fix_at=5)
    always = lambda formulas, pressures, *, num, seed: [[caesium_chloride()] * num]  # noqa: E731
    run = search_run(
        NACL, always, KnownPhaseSettings(budget=20, batch=4), target_index=0, run=0, relaxer=relaxer
    )
    assert run.first_match == 5 and relaxer.n == 5  # no relaxation after the match
    assert run.n_sampled == 8  # two batches drawn


def test_settings_are_checked():
    with pytest.raises(ValueError, match="runs must be"):
        KnownPhaseSettings(runs=0)
    with pytest.raises(ValueError, match="unknown matcher preset"):
        KnownPhaseSettings(preset="loose")
    with pytest.raises(ValueError, match="no targets"):
        run_known_phase([], LuckySampler([], 0.5), KnownPhaseSettings())
    with pytest.raises(ValueError, match="not 4"):
        search_run(CU, lambda *a, **k: [[None]], KnownPhaseSettings(batch=4), target_index=0, run=0)
