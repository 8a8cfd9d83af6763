"""Sampling throughput of cond_vae's annealed Langevin sampler (structures per second).

For each config (``tiny``, ``4m``), neighbour-list setting (``skin=None``: a fresh radius graph at
every step, as the reference; ``skin=1.0`` Å: Verlet reuse) and number of steps per level, the
whole sampler (``cond_vae.sample`` with ``SamplerConfig.reference(steps_per_level=n, skin=...)``:
latent, lattice, all 50 noise levels) runs on one batch of
MP-20 cell formulas (from ``../shared/data/mp_20/val.feather`` when present, else a fixed list),
timed side by side in one process. The reference's 50 x 100 steps are extrapolated from the
largest measured steps-per-level (time per decoder call x 5,000): with more steps per level the
Verlet list is reused more, so the reuse figure is conservative. A breakdown times the parts of one
step (radius graph, triplets, Verlet filter, decoder) on the same batch.

The models are untrained (random weights, scalers fitted on the formulas' MP-20 structures or on
synthetic cells): the cost of a decoder call does not depend on the weights, but the Verlet saving
depends on how far atoms move; the noise term (``sqrt(2 eta) = 1.41 sigma`` Å per step) dominates
those moves for trained models as well.

    OMP_NUM_THREADS=1 python benchmarks/cond_vae/bench_sample.py --threads 1 --out results.json
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import torch
from cond_vae import CondCDVAE, CondCDVAEConfig, SamplerConfig, sample

ROOT = Path(__file__).resolve().parents[2]
MP20 = ROOT.parent / "shared" / "data" / "mp_20" / "val.feather"
FALLBACK = ["Si4O8", "Ga4Te4", "Hg2MgTm", "Ho2W2Cl2O8", "Fe4O6", "Li2Mn4O8", "Na2Cl2", "Ba2Ti2O6"]


def load_rows(num_rows: int, max_atoms: int):
    """(formulas, crystals for the scalers) from MP-20 val, or the fallback formulas and None."""
    if not MP20.is_file():
        return FALLBACK[:num_rows], None
    import pandas as pd
    from pymatgen.core import Structure
    from xtal_graph import Crystal

    frame = pd.read_feather(MP20).head(400)
    crystals = [
        Crystal.from_pymatgen(Structure.from_str(cif, fmt="cif"), pressure=0.0) for cif in frame["cif"]
    ]
    formulas = [f for f, c in zip(frame["formula"], crystals, strict=True) if c.num_atoms <= max_atoms]
    return formulas[:num_rows], crystals


def build(name: str, crystals) -> CondCDVAE:
    torch.manual_seed(0)
    config = {"tiny": CondCDVAEConfig.tiny(max_atoms=60), "4m": CondCDVAEConfig.cond_cdvae_4m()}[name]
    model = CondCDVAE(config).eval()
    if crystals is None:
        import sys

        sys.path.insert(0, str(ROOT))
        from tests.cond_vae._helpers import random_crystals

        crystals = random_crystals(64, max_atoms=12)
    model.fit_scalers(crystals)
    return model


def run(model, formulas, *, n_step_each: int, skin, num_per_row: int, seed: int = 0) -> dict:
    """One timed ``cond_vae.sample`` call with the reference's Langevin at ``n_step_each`` steps per level;
    graph and triplet builds counted on the engine's neighbour lists, decoder calls as batched calls."""
    import cond_vae.sampling._engine as engine

    counts = {"builds": 0, "triplets": 0}
    original = engine.NeighborList

    class Counted(original):
        def graph(self, frac, lattice):
            builds, trips = self.num_builds, self.num_triplet_builds
            out = super().graph(frac, lattice)
            counts["builds"] += self.num_builds - builds
            counts["triplets"] += self.num_triplet_builds - trips
            return out

    sampler = SamplerConfig.reference(steps_per_level=n_step_each, skin=skin)
    engine.NeighborList = Counted
    try:
        start = time.perf_counter()
        out = sample(model, formulas, 0.0, num_per_row=num_per_row, seed=seed, sampler=sampler)
        seconds = time.perf_counter() - start
    finally:
        engine.NeighborList = original
    blocks = -(-len(out) // sampler.batch_size)
    return {
        "structures": len(out),
        "valid": sum(s.valid for s in out),
        "atoms": sum(s.crystal.num_atoms for s in out if s.valid),
        "seconds": seconds,
        "decoder_calls": blocks * sampler.decoder_calls(len(model.sigmas)),  # batched calls
        "graph_builds": counts["builds"],
        "triplet_builds": counts["triplets"],
        "sampler": sampler.to_dict(),
    }


def _median_ms(fn, repeats: int = 7) -> float:
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1e3 * sorted(times)[len(times) // 2]


@torch.no_grad()
def breakdown(model, formulas, num_per_row: int, name: str) -> dict:
    """Median ms of each part of one Langevin step on uniform random coordinates of the batch."""
    from cond_vae import NeighborList, parse_formula
    from xtal_graph import radius_graph_pbc, triplets

    atoms = [parse_formula(f, max_atoms=model.config.max_atoms).atom_types for f in formulas] * num_per_row
    num_atoms = torch.tensor([len(a) for a in atoms])
    atom_types = torch.tensor([z for a in atoms for z in a])
    batch = torch.repeat_interleave(torch.arange(len(atoms)), num_atoms)
    props = {"pressure": torch.zeros(len(atoms))}
    cond = model.conditions(atom_types=atom_types, batch=batch, num_crystals=len(atoms), properties=props)
    cond_z = model.cond_z(torch.randn(len(atoms), model.config.latent_dim), cond)
    _, lattice = model.predict_lattice(cond_z, num_atoms)
    frac = torch.rand(atom_types.shape[0], 3, dtype=lattice.dtype)
    dec = model.config.decoder
    graph = radius_graph_pbc(frac, lattice, num_atoms, dec.cutoff, dec.max_neighbors)
    trips = triplets(graph, frac.shape[0])
    reuse = NeighborList(
        cutoff=dec.cutoff, max_neighbors=dec.max_neighbors, skin=1.0, num_atoms=num_atoms, batch=batch
    )
    reuse.moved(torch.zeros_like(frac), torch.zeros(frac.shape, dtype=torch.long))  # a small last step
    reuse.graph(frac, lattice)  # builds the candidate list
    return {
        "config": name,
        "atoms": int(num_atoms.sum()),
        "edges": graph.num_edges,
        "triplets": int(trips.edge_kj.shape[0]),
        "radius_graph_ms": _median_ms(
            lambda: radius_graph_pbc(frac, lattice, num_atoms, dec.cutoff, dec.max_neighbors)
        ),
        "triplets_ms": _median_ms(lambda: triplets(graph, frac.shape[0])),
        "verlet_filter_ms": _median_ms(lambda: reuse._filter(frac, lattice)),
        "verlet_candidates_ms": _median_ms(
            lambda: radius_graph_pbc(frac, lattice, num_atoms, dec.cutoff + 1.0, None)
        ),
        "decoder_ms": _median_ms(
            lambda: model.score(
                atom_types=atom_types, batch=batch, graph=graph, triplets=trips, cond_z=cond_z
            ),
            repeats=3,
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", nargs="+", default=["tiny", "4m"])
    parser.add_argument("--rows", type=int, default=8, help="formulas (MP-20 val order)")
    parser.add_argument("--num-per-row", type=int, default=4)
    parser.add_argument("--steps", nargs="+", type=int, default=[1, 5], help="steps per level to measure")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--breakdown-only", action="store_true", help="only time the parts of one step")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    formulas, crystals = load_rows(args.rows, max_atoms=20)
    results = {
        "machine": {"python": platform.python_version(), "torch": torch.__version__, "threads": args.threads},
        "formulas": formulas,
        "num_per_row": args.num_per_row,
        "runs": [],
    }
    for name in args.configs:
        model = build(name, crystals)
        if args.breakdown_only:
            results.setdefault("breakdown", []).append(breakdown(model, formulas, args.num_per_row, name))
            print(json.dumps(results["breakdown"][-1]), flush=True)
            continue
        run(model, formulas[:1], n_step_each=1, skin=None, num_per_row=1)  # warm-up
        for n in args.steps:
            for skin in (None, 1.0):
                r = run(model, formulas, n_step_each=n, skin=skin, num_per_row=args.num_per_row)
                r.update(config=name, n_step_each=n, skin=skin)
                r["structures_per_s"] = r["structures"] / r["seconds"]
                results["runs"].append(r)
                print(json.dumps(r), flush=True)
        # extrapolate to the reference's 50 x 100 steps: time per decoder call at the largest measured
        # steps-per-level x 5,000 (the fixed cost of latent + lattice is a few ms)
        for skin in (None, 1.0):
            runs = [
                r
                for r in results["runs"]
                if r["config"] == name and r["skin"] == skin and "decoder_calls" in r
            ]
            last = max(runs, key=lambda r: r["n_step_each"])
            t100 = last["seconds"] / last["decoder_calls"] * 5000
            extra = {
                "config": name,
                "skin": skin,
                "n_step_each": 100,
                "seconds": t100,
                "extrapolated_from": last["n_step_each"],
                "structures_per_s": last["structures"] / t100,
            }
            results["runs"].append(extra)
            print(json.dumps(extra), flush=True)
        results.setdefault("breakdown", []).append(breakdown(model, formulas, args.num_per_row, name))
        print(json.dumps(results["breakdown"][-1]), flush=True)
    if args.out:
        args.out.write_text(json.dumps(results, indent=2, default=float))


if __name__ == "__main__":
    main()
