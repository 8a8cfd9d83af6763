"""How much of a model's CSP miss rate is its cell: match rates with the cells it proposes against the
same sampler run in each target's true cell (``cond_vae.sample(lattices=...)``: coordinates only).

The same targets as the model card (the first ``--per-dataset`` test crystals of each shared set), the
same seed and sampler (``SamplerConfig()`` unless ``--steps-per-level`` etc. say otherwise), the cdvae
and paper matchers. A large gap says the lattice head is the lever; a small one says the decoder is.

    python benchmarks/default_model/cell_ablation.py --checkpoint tools/src/xtal_tools/models/default \\
        --data runs/default/all.zarr --per-dataset 100 --num 4 --jobs 2 --out runs/cell_ablation
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))


def match_rates(targets, groups, *, ks, jobs: int) -> dict:
    """``{preset: {"match@k": rate, "rmse@k": mean RMSE}}`` for the cdvae and paper matchers."""
    from xtal_eval import Parallel, csp

    report = csp(targets, groups, presets=("cdvae", "paper"), ks=ks, parallel=Parallel.from_jobs(jobs))
    return {
        r.preset: {**{f"match@{k}": r.match_rate(k) for k in ks}, **{f"rmse@{k}": r.rmse(k) for k in ks}}
        for r in report.results
    }


def add_target_arguments(ap: argparse.ArgumentParser) -> None:
    """The model, the store, the model card's targets, samples per target, processes, output folder."""
    ap.add_argument("--checkpoint", required=True, type=Path)
    ap.add_argument("--data", required=True)
    ap.add_argument("--split", default="random")
    ap.add_argument("--per-dataset", type=int, default=100)
    ap.add_argument("--num", type=int, default=4, help="samples per target (match@1 and match@num)")
    ap.add_argument("--datasets", default="Perov-5,Carbon-24,MP-20")
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--out", required=True, type=Path)


def main(argv: list[str] | None = None) -> None:
    from model_card_eval import add_sampler_arguments, dataset_of, resolve_sampler

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_target_arguments(ap)
    ap.add_argument("--seed", type=int, default=0)
    add_sampler_arguments(ap)
    args = ap.parse_args(argv)
    sampler = resolve_sampler(args)

    import torch
    from cond_vae import sample
    from cond_vae.checkpoint import load_checkpoint
    from xtal_data import CrystalStore
    from xtal_data.torch_dataset import CrystalDataset
    from xtal_tools.evaluation.split_eval import cell_formula

    model = load_checkpoint(args.checkpoint, map_location="cpu")
    store = CrystalStore.open(args.data)
    ids = store.ids
    by_set: dict[str, list[int]] = {}
    for i in np.asarray(store.split(args.split)["test"]):
        by_set.setdefault(dataset_of(str(ids[i])), []).append(int(i))
    results = {
        "command": " ".join([Path(sys.argv[0]).name, *(argv if argv is not None else sys.argv[1:])]),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "torch": torch.__version__,
        "sampler": sampler.to_dict(),
        "datasets": {},
    }
    for name in args.datasets.split(","):
        idx = by_set.get(name, [])[: args.per_dataset]
        ds = CrystalDataset(store, indices=idx, properties=model.config.condition_names)
        crystals = [ds.crystal(i) for i in range(len(ds))]
        targets = [c.to_pymatgen() for c in crystals]
        formulas = [cell_formula(c.atom_types) for c in crystals]
        pressures = ds.properties["pressure"].tolist()
        entry = {"n_targets": len(idx)}
        for cell, lattices in (("model", None), ("true", [np.asarray(c.lattice) for c in crystals])):
            t0 = time.perf_counter()
            with torch.inference_mode():
                samples = sample(
                    model, formulas, pressures, num_per_row=args.num, seed=args.seed, sampler=sampler,
                    lattices=lattices,
                )  # fmt: skip
            groups: list[list] = [[] for _ in formulas]
            for s in samples:
                groups[s.row].append(s.to_pymatgen() if s.valid else None)
            entry[cell] = match_rates(targets, groups, ks=(1, args.num), jobs=args.jobs)
            entry[cell]["seconds"] = round(time.perf_counter() - t0, 1)
        results["datasets"][name] = entry
        print(name, json.dumps(entry), flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(results, indent=2, default=str))


if __name__ == "__main__":
    main()
