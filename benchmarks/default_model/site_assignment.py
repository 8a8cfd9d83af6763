"""Where do the default model's Perov-5 first samples miss? Species on the wrong sites, and whether the
model's own denoising loss could tell.

Two measurements on the model card's targets (``--datasets``, first ``--per-dataset`` test crystals):

1. **In the true cell** (coordinates only, the default sampler, one sample per target): the share of
   first samples that match the target (cdvae matcher) and the share that match it once species are
   ignored (pymatgen's ``FrameworkComparator``): the gap is structures with the right framework and
   the elements on the wrong sites.
2. **The model as a judge of site assignments**: for each true structure, every distinct assignment of
   its atoms' species to its sites (targets with more than ``--max-assignments`` are skipped) is scored
   by the sampler's own step (``SamplerConfig.reassign_species``: the model's denoising loss summed
   over every ``--level-stride``-th noise level from ``--first-level`` and ``--draws`` keyed draws,
   latent from the fitted prior), started from the true assignment (ties keep it); counted: targets
   whose chosen assignment is the true structure (cdvae matcher, so that assignments equal by
   symmetry count as right).

    python benchmarks/default_model/site_assignment.py --checkpoint tools/src/xtal_tools/models/default \\
        --data runs/default/all.zarr --datasets Perov-5 --per-dataset 50 --out runs/site_assignment
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))


def main(argv: list[str] | None = None) -> None:
    from cell_ablation import add_target_arguments
    from model_card_eval import dataset_of

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_target_arguments(ap)
    ap.set_defaults(datasets="Perov-5", per_dataset=50)
    ap.add_argument("--max-assignments", type=int, default=200)
    ap.add_argument("--first-level", type=int, default=0, help="the first noise level scored (0: 10 Å)")
    ap.add_argument("--level-stride", type=int, default=5)
    ap.add_argument("--draws", type=int, default=4)
    args = ap.parse_args(argv)

    import torch
    from cond_vae import SamplerConfig
    from cond_vae.checkpoint import load_checkpoint
    from cond_vae.sampling import _noise
    from cond_vae.sampling._engine import SampleRequest, run_block
    from cond_vae.sampling._protocol import CondCDVAEScore
    from cond_vae.sampling._species import distinct_assignments, reassign_species
    from pymatgen.analysis.structure_matcher import FrameworkComparator, StructureMatcher
    from xtal_data import CrystalStore
    from xtal_data.torch_dataset import CrystalDataset
    from xtal_graph import Crystal, collate

    model = load_checkpoint(args.checkpoint).eval()
    store = CrystalStore.open(args.data)
    by_set: dict[str, list[int]] = defaultdict(list)
    for i in np.asarray(store.split(args.split)["test"]):
        by_set[dataset_of(str(store.ids[i]))].append(int(i))
    names = list(model.config.condition_names)
    species = StructureMatcher(stol=0.5, angle_tol=10, ltol=0.3)  # the cdvae preset
    framework = StructureMatcher(stol=0.5, angle_tol=10, ltol=0.3, comparator=FrameworkComparator())
    score = CondCDVAEScore(model)
    levels = list(range(args.first_level, len(model.sigmas), args.level_stride))
    results: dict = {"command": " ".join(sys.argv), "datasets": {}}
    for name in filter(None, args.datasets.split(",")):
        ds = CrystalDataset(store, indices=by_set[name][: args.per_dataset], properties=names)
        crystals = [ds.crystal(i) for i in range(len(ds))]
        t0 = time.perf_counter()
        jobs = []
        for r, c in enumerate(crystals):
            conditions = {n: float(ds.properties[n][r]) for n in names}
            cell = tuple(map(tuple, np.asarray(c.lattice).tolist()))
            jobs.append((SampleRequest(tuple(int(a) for a in c.atom_types), conditions, lattice=cell), r, 0))
        with torch.inference_mode():
            samples = run_block(score, jobs, seed=0, sampler=SamplerConfig(latent="fitted"))
        pairs = [(c.to_pymatgen(), s.to_pymatgen()) for c, s in zip(crystals, samples, strict=True)]
        both = sum(bool(species.fit(t, g)) for t, g in pairs)
        frame = sum(bool(framework.fit(t, g)) for t, g in pairs)
        entry = {"targets": len(crystals), "true_cell_match": both, "true_cell_framework_match": frame,
                 "sample_seconds": round(time.perf_counter() - t0, 1)}  # fmt: skip
        t0 = time.perf_counter()
        gen = torch.Generator().manual_seed(0)
        right, judged = 0, 0
        with torch.inference_mode():
            for r, c in enumerate(crystals):
                types = torch.as_tensor(c.atom_types, dtype=torch.long)
                if len(distinct_assignments(types.tolist(), args.max_assignments) or ()) < 2:
                    continue  # too many assignments to score, or only one
                b = collate([c], dtype=torch.float32)
                eps, pick = (
                    torch.randn(1, model.config.latent_dim, generator=gen),
                    torch.rand(1, generator=gen),
                )
                z = model.latent_prior.transform(eps, b.num_atoms, pick)
                best, _ = reassign_species(
                    score,
                    types,
                    b.num_atoms,
                    b.frac_coords,
                    b.lattice,
                    model.cond_z(z, model.condition_vector(b)),
                    torch.tensor([_noise.structure_key(0, r, 0)]),
                    levels=levels,
                    draws=args.draws,
                    max_assignments=args.max_assignments,
                )  # fmt: skip  (the sampler's own step, started from the true assignment)
                guess = Crystal(
                    atom_types=best.numpy(), frac_coords=np.asarray(c.frac_coords),
                    lattice=np.asarray(c.lattice), properties=dict(c.properties),
                )  # fmt: skip
                right += int(species.fit(c.to_pymatgen(), guess.to_pymatgen()))
                judged += 1
        entry.update(
            judged=judged, lowest_loss_is_true=right, judge_seconds=round(time.perf_counter() - t0, 1)
        )
        print(name, json.dumps(entry), flush=True)
        results["datasets"][name] = entry
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
