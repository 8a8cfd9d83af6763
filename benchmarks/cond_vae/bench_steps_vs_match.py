"""Match rate against Langevin steps per noise level, on a toy memorisation task.

A tiny Cond-CDVAE (``CondCDVAEConfig.tiny()``) is trained for ``--train-steps`` steps on three known
structures (rock salt NaCl, CsCl, diamond Si; 8 atoms, 2 atoms, 8 atoms per cell), then asked for
``--num`` samples of each formula with the reference's annealed Langevin
(``SamplerConfig.reference(steps_per_level=n)``) for each ``n`` in ``--steps``. Reports the match rate
under the ``cdvae`` (0.3/0.5/10) and ``paper`` (0.2/0.3/5) presets (pymatgen ``fit``), decoder calls
and wall time.

This measures how the *sampler* trades steps for quality on structures the model has memorised; it is
not a quality claim for a model trained on real data (there is none yet).

    OMP_NUM_THREADS=1 python benchmarks/cond_vae/bench_steps_vs_match.py --steps 1 2 5 10 --num 16
"""

from __future__ import annotations

import argparse
import platform
import time

import torch
from cond_vae import CondCDVAE, CondCDVAEConfig, SamplerConfig, sample
from pymatgen.analysis.structure_matcher import StructureMatcher
from pymatgen.core import Lattice, Structure
from xtal_graph import Crystal, collate

PRESETS = {"cdvae": dict(ltol=0.3, stol=0.5, angle_tol=10), "paper": dict(ltol=0.2, stol=0.3, angle_tol=5)}


def targets() -> dict[str, Structure]:
    nacl = Structure.from_spacegroup("Fm-3m", Lattice.cubic(5.6), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    cscl = Structure(Lattice.cubic(4.1), ["Cs", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    si = Structure.from_spacegroup("Fd-3m", Lattice.cubic(5.43), ["Si"], [[0, 0, 0]])
    return {"Na4Cl4": nacl, "Cs1Cl1": cscl, "Si8": si}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, nargs="+", default=[1, 2, 5, 10])
    ap.add_argument("--num", type=int, default=16)
    ap.add_argument("--train-steps", type=int, default=600)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    torch.manual_seed(args.seed)
    structs = targets()
    crystals = [Crystal.from_pymatgen(s, pressure=0.0) for s in structs.values() for _ in range(4)]
    model = CondCDVAE(CondCDVAEConfig.tiny())
    model.fit_scalers(crystals)
    batch = collate(crystals, dtype=torch.float32)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    t0 = time.perf_counter()
    for step in range(args.train_steps):
        torch.manual_seed(step)
        opt.zero_grad()
        out = model(batch, teacher_forcing=True)
        out.total.backward()
        opt.step()
    train_s = time.perf_counter() - t0
    print(f"trained {args.train_steps} steps in {train_s:.0f} s; last loss {out.total.item():.3f}")
    cpu = platform.processor() or platform.machine()
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, {cpu}")
    print("| steps per level | decoder calls | cdvae match | paper match | s per structure |")
    print("|---|---|---|---|---|")
    formulas = list(structs)
    for n_step in args.steps:
        sampler = SamplerConfig.reference(steps_per_level=n_step)
        t0 = time.perf_counter()
        samples = sample(
            model, formulas, [0.0] * len(formulas), num_per_row=args.num, seed=args.seed, sampler=sampler
        )
        wall = time.perf_counter() - t0
        rates = {}
        for name, tol in PRESETS.items():
            matcher = StructureMatcher(**tol)
            hits = sum(s.valid and matcher.fit(s.to_pymatgen(), structs[s.formula]) for s in samples)
            rates[name] = hits / len(samples)
        calls = sampler.decoder_calls(len(model.sigmas))
        print(
            f"| {n_step} | {calls} | {rates['cdvae']:.2f} | {rates['paper']:.2f} | "
            f"{wall / len(samples):.3f} |"
        )


if __name__ == "__main__":
    main()
