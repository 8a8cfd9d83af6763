"""Speed of xtal-eval against a plain pymatgen loop on the same pairs, with identical results asserted.

Scenario 1 (reconstruction-style pairs, three presets side by side): for each of N MP-20 validation
structures, (a) a noisy copy (0.05 Å Gaussian site noise + up to 2% strain), (b) a same-formula polymorph
from the dataset when one exists (else a random other structure), (c) a random other structure. Plain loop:
``preset.matcher().get_rms_dist(pred, gt)`` for every pair and preset. xtal-eval: ``match_pairs`` with 1
and 2 processes. Decisions and RMSDs must be bit-identical.

Scenario 2 (CSP success curve, ``fit(target, sample)``): M targets with S samples each, one noisy copy of
the target hidden at a random position among other structures of the same formula or random ones. Plain
loop: every fit; xtal-eval: ``csp`` (early exit at the first match). First-match indices must be identical.

Scenario 3 (novelty, ``fit(reference, generated)`` under ``paper``): noisy copies of references and other
dataset structures against all N references. Plain loop: every pair; xtal-eval: ``novelty`` (references
bucketed by reduced formula and reduced site count). Novelty flags must be identical.

Times: the fastest of ``--repeats`` round-robin runs, wall clock and CPU seconds (this process plus pool
workers; robust when the machine is shared).

Run:  python benchmarks/xtal_eval/bench_match.py --n 100 --targets 30 --samples 10 --repeats 2
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import time
import warnings

import numpy as np
import pyarrow.feather as feather
from pymatgen.analysis.structure_matcher import StructureMatcher
from pymatgen.core import Lattice, Structure
from xtal_eval import PRESETS, Parallel, csp, match_pairs, novelty

warnings.filterwarnings("ignore")
DATA = os.environ.get("XTAL_SHARED_DATA", os.path.join(os.path.dirname(__file__), "../../../shared/data"))


def noisy(s: Structure, rng: np.random.Generator, sigma=0.05, strain=0.02) -> Structure:
    eps = rng.uniform(-strain, strain, (3, 3))
    lattice = Lattice(s.lattice.matrix @ (np.eye(3) + (eps + eps.T) / 2))
    cart = s.frac_coords @ lattice.matrix + rng.normal(0, sigma, (len(s), 3))
    return Structure(lattice, s.species, cart, coords_are_cartesian=True)


def load(n_total: int, seed: int):
    rows = feather.read_table(os.path.join(DATA, "mp_20", "val.feather"), columns=["cif", "pretty_formula"])
    rows = rows.to_pylist()
    rng = np.random.default_rng(seed)
    by_formula: dict[str, list[int]] = {}
    for i, r in enumerate(rows):
        by_formula.setdefault(r["pretty_formula"], []).append(i)
    # half the targets have polymorphs in the set: the interesting (same-composition) mismatches
    poly = [i for idx in by_formula.values() if len(idx) > 1 for i in idx]
    pick = list(rng.choice(poly, n_total // 2, replace=False)) + list(
        rng.choice(len(rows), n_total - n_total // 2)
    )
    cache: dict[int, Structure] = {}

    def get(i):
        if i not in cache:
            cache[i] = Structure.from_str(rows[i]["cif"], fmt="cif")
        return cache[i]

    def other(i):
        same = [j for j in by_formula[rows[i]["pretty_formula"]] if j != i]
        return get(int(rng.choice(same))) if same else get(int(rng.integers(len(rows))))

    return [int(i) for i in pick], get, other, rng, len(rows)


def plain_pairs(first, second):
    out = {}
    for name, preset in PRESETS.items():
        m = preset.matcher()
        out[name] = [m.get_rms_dist(a, b) for a, b in zip(first, second, strict=True)]
    return out


def check_pairs(table, plain):
    for name, ref in plain.items():
        for i, (d, r) in enumerate(zip(ref, table.column(name), strict=True)):
            assert r.matched == (d is not None), (name, i)
            if d is not None:
                assert (r.rms, r.max_dist) == (d[0], d[1]), (name, i, d, r)


def plain_first_fit(targets, samples):
    out = {}
    for name, preset in PRESETS.items():
        m = preset.matcher()
        firsts = []
        for t, ss in zip(targets, samples, strict=True):
            hits = [j + 1 for j, s in enumerate(ss) if m.fit(t, s)]  # a plain loop fits every sample
            firsts.append(hits[0] if hits else 0)
        out[name] = np.array(firsts)
    return out


def plain_novelty(gens, refs):
    m = PRESETS["paper"].matcher()
    return np.array([not any(m.fit(r, g) for r in refs) for g in gens])


def _cpu() -> float:
    """CPU seconds of this process plus its finished children (pool workers): robust to a shared machine."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def timed(fn):
    StructureMatcher._get_reduced_istructure.cache_clear()  # every run starts with pymatgen's cache cold
    w0, c0 = time.perf_counter(), _cpu()
    out = fn()
    return out, (time.perf_counter() - w0, _cpu() - c0)


def best_of(variants: dict, repeats: int):
    """Run the variants round-robin ``repeats`` times; keep the fastest wall and CPU time of each."""
    results, times = {}, {name: [np.inf, np.inf] for name in variants}
    for _ in range(repeats):
        for name, fn in variants.items():
            results[name], (wall, cpu) = timed(fn)
            times[name] = [min(times[name][0], wall), min(times[name][1], cpu)]
    return results, times


def report(times: dict) -> None:
    w0, c0 = times["plain pymatgen loop"]
    for name, (wall, cpu) in times.items():
        print(f"  {name:<26} wall {wall:7.2f} s (x{w0 / wall:4.2f})   cpu {cpu:7.2f} s (x{c0 / cpu:4.2f})")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=150, help="reference structures for scenario 1")
    ap.add_argument("--targets", type=int, default=40, help="CSP targets for scenario 2")
    ap.add_argument("--samples", type=int, default=10, help="samples per CSP target")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--repeats", type=int, default=2, help="round-robin repeats; the fastest run counts")
    args = ap.parse_args()
    pick, get, other, rng, n_rows = load(args.n, args.seed)
    first, second = [], []
    for i in pick:
        s = get(i)
        first += [noisy(s, rng), other(i), get(int(rng.integers(n_rows)))]
        second += [s, s, s]
    print(f"{platform.machine()}, {os.cpu_count()} cpus; scenario 1: {len(first)} pairs x 3 presets")
    variants = {"plain pymatgen loop": lambda: plain_pairs(first, second)}
    for jobs in (1, 2):
        variants[f"xtal-eval, {jobs} process(es)"] = lambda jobs=jobs: match_pairs(
            first, second, presets=tuple(PRESETS), parallel=Parallel.from_jobs(jobs)
        )
    results, times = best_of(variants, args.repeats)
    plain = results.pop("plain pymatgen loop")
    for table in results.values():
        check_pairs(table, plain)  # identical decisions and bit-identical RMSDs, else AssertionError
    report(times)
    print(
        f"  matched (cdvae/paper/strict): {[int(table.matched(p).sum()) for p in PRESETS]}; "
        f"prefiltered (cdvae): {table.skipped('cdvae')}"
    )

    targets = [get(i) for i in pick[: args.targets]]
    samples = []
    for i, t in zip(pick[: args.targets], targets, strict=True):
        pool = [other(i) if k % 2 else get(int(rng.integers(n_rows))) for k in range(args.samples - 1)]
        pool.insert(int(rng.integers(args.samples)), noisy(t, rng))
        samples.append(pool)
    print(f"scenario 2: {len(targets)} targets x {args.samples} samples x 3 presets, fit(target, sample)")
    variants = {"plain pymatgen loop": lambda: plain_first_fit(targets, samples)}
    for jobs in (1, 2):
        variants[f"xtal-eval, {jobs} process(es)"] = lambda jobs=jobs: csp(
            targets, samples, presets=tuple(PRESETS), ks=(1,), parallel=Parallel.from_jobs(jobs)
        )
    results, times = best_of(variants, args.repeats)
    ref = results.pop("plain pymatgen loop")
    for rep in results.values():
        for name in PRESETS:
            np.testing.assert_array_equal(rep.get(name).first_match, ref[name])
    report(times)

    refs = [get(i) for i in pick]
    gens = [noisy(get(i), rng) for i in pick[: args.targets]] + [
        other(i) for i in pick[args.targets : 2 * args.targets]
    ]
    print(f"scenario 3: novelty of {len(gens)} generated against {len(refs)} references, preset paper")
    variants = {"plain pymatgen loop": lambda: plain_novelty(gens, refs)}
    for jobs in (1, 2):
        variants[f"xtal-eval, {jobs} process(es)"] = lambda jobs=jobs: novelty(
            gens, refs, preset="paper", parallel=Parallel.from_jobs(jobs)
        )
    results, times = best_of(variants, args.repeats)
    ref_novel = results.pop("plain pymatgen loop")
    for got in results.values():
        np.testing.assert_array_equal(got, ref_novel)
    report(times)
    print(f"  novel: {int(ref_novel.sum())} of {len(gens)}")
    print("all results identical to the plain loop")


if __name__ == "__main__":
    main()
