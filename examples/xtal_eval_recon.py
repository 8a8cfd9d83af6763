"""Reconstruction and CSP metrics on a few MP-20 structures, without torch.

Noisy copies stand in for a model's predictions. Run from the repository root:

    python examples/xtal_eval_recon.py [--n 40] [--jobs 2]
"""

from __future__ import annotations

import argparse
import os
import warnings
from pathlib import Path

import numpy as np
from pymatgen.core import Lattice, Structure
from xtal_eval import Parallel, csp, load_structures, reconstruction

warnings.filterwarnings("ignore", message="Issues encountered while parsing CIF")
SHARED = Path(os.environ.get("XTAL_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
DATA = SHARED / "mp_20" / "val.feather"


def noisy(s: Structure, rng: np.random.Generator, sigma: float) -> Structure:
    """A copy with Gaussian site noise of ``sigma`` Å and a random 2% strain."""
    eps = rng.uniform(-0.02, 0.02, (3, 3))
    lattice = Lattice(s.lattice.matrix @ (np.eye(3) + (eps + eps.T) / 2))
    cart = s.frac_coords @ lattice.matrix + rng.normal(0, sigma, (len(s), 3))
    return Structure(lattice, s.species, cart, coords_are_cartesian=True)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", type=Path, default=DATA, help="table with a cif column (MP-20 val)")
    ap.add_argument("--n", type=int, default=40)
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    gt = load_structures(args.data, limit=args.n).structures
    preds = [noisy(s, rng, sigma=0.1) for s in gt]
    parallel = Parallel.from_jobs(args.jobs, progress=True)

    report = reconstruction(preds, gt, presets="cdvae,paper,strict", parallel=parallel)
    for m in report.metrics:
        print(f"recon {m.preset:>6} gate={m.gate:<11} match {m.match_rate:.3f}  mean RMSD {m.mean_rmsd}")

    samples = [[noisy(s, rng, sigma=0.3) for _ in range(5)] for s in gt]  # five rough guesses per target
    res = csp(list(gt), samples, presets="cdvae,paper", ks=(1, 5), parallel=parallel)
    for r in res.results:
        curve = np.round(res.curves(r.preset)["all"], 3)
        print(f"csp {r.preset:>6} match@1 {r.match_rate(1):.3f} match@5 {r.match_rate(5):.3f} curve {curve}")


if __name__ == "__main__":
    main()
