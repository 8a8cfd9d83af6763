"""Where should a trained model's latents come from? Match rates with latents drawn from N(0, I) (the
paper) against latents drawn from the training crystals' posteriors (the aggregate posterior).

Variants (``--variants``, ``;``-separated):

* ``prior``: ``z ~ N(0, I)``, the engine's own keyed draw (what ``SamplerConfig(latent="standard")`` does);
* ``posterior, any``: ``z = mu_j + std_j eps`` for a random training crystal ``j``;
* ``posterior, same size``: ``j`` among the training crystals with the target's number of atoms;
* ``posterior, same formula``: ``j`` among those with the target's cell formula (else same size);
* ``posterior, same stoichiometry``: ``j`` among those whose cell has the target's element counts up to
  the elements' names (the anonymous formula, e.g. ABC2), else same size;
* ``posterior mean, same size`` / ``posterior, same size, half std``: as ``posterior, same size`` with
  ``z = mu_j`` / ``z = mu_j + std_j eps / 2`` (a lower temperature);
* ``posterior, nearest condition`` / ``posterior mean, nearest condition``: sample ``k`` takes the
  ``k``-th nearest training crystal of the target's size in the model's condition space (composition
  embedding and pressure basis), ``z = mu_j + std_j eps`` / ``z = mu_j``;
* ``posterior mean, nearest condition, its cell``: the same code, and the cell of that training crystal
  scaled to the volume prior's volume (what ``SamplerConfig(latent="analogue")`` does);
  ``... , its cell, 64 per size``: the same among a seeded random 64 training crystals per size;
* ``gaussian``: one Gaussian fitted to every training code (mean, covariance of ``mu`` + mean variance);
* ``gaussian by size``: a mean per cell size (shrunk to the overall mean with 10 pseudo-crystals), the
  within-size covariance shared.

The first ``--per-dataset`` test crystals of each set (the model card's targets), ``--num`` samples each,
the default sampler with ``latent="standard"`` (the latents are given here), the cdvae and paper matchers.
Every posterior is the full training set's (no subsampling, unlike ``cond_vae.fit_latent_prior``).
It also prints how far the training codes' aggregate posterior is from N(0, I) (``--datasets ""``:
only that).

    python benchmarks/default_model/latent_ablation.py --checkpoint tools/src/xtal_tools/models/default \\
        --data runs/default/all.zarr --datasets MP-20 --num 4 --variants "prior;posterior, same size" \\
        --out runs/latent_ablation
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


def encode_training(model, store, split: str):
    """``mu, logvar (n, Z)``, condition vectors ``(n, cond_dim)``, cells ``(n, 3, 3)`` and each training
    crystal's size and sorted atom list."""
    import torch
    from cond_vae.training._data import crystal_batches
    from xtal_data.torch_dataset import CrystalDataset

    indices = [int(i) for i in np.asarray(store.split(split)["train"])]
    ds = CrystalDataset(store, indices=indices, properties=list(model.config.condition_names))
    mus, lvs, conds, cells, sizes, formulas = [], [], [], [], [], []
    with torch.inference_mode():
        for batch in crystal_batches(ds):
            batch = batch.to(dtype=torch.float32)
            cond = model.condition_vector(batch)
            stats = model.encode(batch, cond)
            mus.append(stats.mu)
            lvs.append(stats.logvar)
            conds.append(cond)
            cells.append(batch.lattice.double())
            starts = (torch.cumsum(batch.num_atoms, 0) - batch.num_atoms).tolist()
            for s, n in zip(starts, batch.num_atoms.tolist(), strict=True):
                sizes.append(n)
                formulas.append(tuple(sorted(batch.atom_types[s : s + n].tolist())))
    return torch.cat(mus), torch.cat(lvs), torch.cat(conds), torch.cat(cells), sizes, formulas


def anonymous(atoms) -> tuple[int, ...]:
    """The cell's element counts, largest first (the anonymous formula: ABC2 -> (2, 1, 1))."""
    counts: dict[int, int] = {}
    for z in atoms:
        counts[z] = counts.get(z, 0) + 1
    return tuple(sorted(counts.values(), reverse=True))


def aggregate_stats(mu, logvar) -> dict:
    """How far the training codes' aggregate posterior is from N(0, I): the norm of its mean and the
    range of its per-dimension variances (spread of the means plus the mean posterior variance)."""
    m, v = mu.double(), logvar.double().exp()
    var = m.var(0) + v.mean(0)
    return {"mean_norm": float(m.mean(0).norm()), "var_min": float(var.min()), "var_max": float(var.max())}


def gaussians(mu, logvar, sizes):
    """(overall mean, its Cholesky factor), (mean per size, the within-size Cholesky factor)."""
    import torch

    m, v = mu.double(), logvar.double().exp()
    chol = torch.linalg.cholesky(torch.cov(m.T) + torch.diag(v.mean(0)))
    size = torch.tensor(sizes)
    means, resid = {}, m.clone()
    for n in size.unique().tolist():
        sel = size == n
        raw = m[sel].mean(0)
        means[n] = ((int(sel.sum()) * raw + 10 * m.mean(0)) / (int(sel.sum()) + 10)).float()
        resid[sel] = m[sel] - raw
    within = resid.T @ resid / (len(m) - len(means)) + torch.diag(v.mean(0))
    return (m.mean(0).float(), chol.float()), (means, torch.linalg.cholesky(within).float())


def main(argv: list[str] | None = None) -> None:
    from cell_ablation import add_target_arguments, match_rates
    from model_card_eval import dataset_of

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_target_arguments(ap)
    ap.add_argument("--variants", default="prior;posterior, same size")
    args = ap.parse_args(argv)

    import torch
    from cond_vae import SamplerConfig
    from cond_vae.checkpoint import load_checkpoint
    from cond_vae.sampling._engine import SampleRequest, run_block
    from cond_vae.sampling._protocol import CondCDVAEScore
    from xtal_data import CrystalStore
    from xtal_data.torch_dataset import CrystalDataset
    from xtal_graph import collate

    model = load_checkpoint(args.checkpoint).eval()
    store = CrystalStore.open(args.data)
    mu, logvar, train_cond, train_cells, sizes, formulas = encode_training(model, store, args.split)
    subset, taken = set(), defaultdict(int)  # a seeded random 64 training crystals per size
    for j in torch.randperm(len(sizes), generator=torch.Generator().manual_seed(0)).tolist():
        if taken[sizes[j]] < 64:
            subset.add(j)
            taken[sizes[j]] += 1
    (g_mean, g_chol), (s_means, s_chol) = gaussians(mu, logvar, sizes)
    pools: dict[str, dict] = {
        "size": defaultdict(list),
        "formula": defaultdict(list),
        "stoich": defaultdict(list),
    }
    for j, (n, f) in enumerate(zip(sizes, formulas, strict=True)):
        pools["size"][n].append(j)
        pools["formula"][f].append(j)
        pools["stoich"][anonymous(f)].append(j)
    ids = store.ids
    by_set: dict[str, list[int]] = defaultdict(list)
    for i in np.asarray(store.split(args.split)["test"]):
        by_set[dataset_of(str(ids[i]))].append(int(i))
    sampler = SamplerConfig(latent="standard")
    score = CondCDVAEScore(model)
    names = list(model.config.condition_names)
    stats = aggregate_stats(mu, logvar)
    print("aggregate posterior of the training codes:", json.dumps(stats), flush=True)
    results: dict = {
        "command": " ".join(sys.argv), "training_crystals": len(mu), "aggregate": stats, "datasets": {}
    }  # fmt: skip
    for name in filter(None, args.datasets.split(",")):
        ds = CrystalDataset(store, indices=by_set[name][: args.per_dataset], properties=names)
        crystals = [ds.crystal(i) for i in range(len(ds))]
        with torch.inference_mode():
            tb = collate(crystals, dtype=torch.float32)
            target_cond = model.condition_vector(tb)
            volume = model.volume_prior.volume(
                atom_types=tb.atom_types, batch=tb.batch, num_atoms=tb.num_atoms, conditions=tb.properties
            )  # (C,) Å^3: the sampler's cell size
        entry = {}
        for variant in args.variants.split(";"):
            rng = np.random.default_rng(0)
            jobs, zs = [], []
            for r, c in enumerate(crystals):
                atoms = tuple(int(a) for a in c.atom_types.tolist())
                pool = list(range(len(mu)))
                if variant != "posterior, any":  # (the pool only matters for the posterior variants)
                    pool = pools["size"].get(len(atoms)) or pool
                if variant.endswith("formula"):
                    pool = pools["formula"].get(tuple(sorted(atoms))) or pool
                if variant.endswith("stoichiometry"):
                    pool = pools["stoich"].get(anonymous(atoms)) or pool
                if variant.endswith("64 per size"):
                    pool = [j for j in pool if j in subset] or pool
                if "nearest condition" in variant:  # sample k: the k-th nearest in condition space
                    dist = (train_cond[pool] - target_cond[r]).norm(dim=1)
                    pool = [pool[i] for i in torch.argsort(dist, stable=True).tolist()]
                for k in range(args.num):
                    j = int(rng.choice(pool))  # drawn for every variant: the same eps sequence in each
                    if "nearest condition" in variant:
                        j = pool[k % len(pool)]
                    cell = None
                    if "its cell" in variant:
                        scaled = train_cells[j] * (float(volume[r]) / float(train_cells[j].det().abs())) ** (
                            1 / 3
                        )
                        cell = tuple(map(tuple, scaled.tolist()))
                    conditions = {n: float(ds.properties[n][r]) for n in names}
                    jobs.append((SampleRequest(atoms, conditions, lattice=cell), r, k))
                    eps = torch.from_numpy(rng.standard_normal(mu.shape[1]).astype(np.float32))
                    if variant == "gaussian":
                        zs.append(g_mean + g_chol @ eps)
                    elif variant == "gaussian by size":
                        zs.append(s_means.get(len(atoms), g_mean) + s_chol @ eps)
                    else:
                        scale = (
                            0.0
                            if variant.startswith("posterior mean")
                            else 0.5
                            if "half std" in variant
                            else 1.0
                        )
                        zs.append(mu[j] + scale * torch.exp(0.5 * logvar[j]) * eps)
            z = None if variant == "prior" else torch.stack(zs)
            t0, samples = time.perf_counter(), []
            with torch.inference_mode():
                for b in range(0, len(jobs), sampler.batch_size):
                    block = None if z is None else z[b : b + sampler.batch_size]
                    samples += run_block(
                        score, jobs[b : b + sampler.batch_size], seed=0, sampler=sampler, latent=block
                    )
            groups: list[list] = [[] for _ in crystals]
            for s in samples:
                groups[s.row].append(s.to_pymatgen() if s.valid else None)
            targets = [c.to_pymatgen() for c in crystals]
            entry[variant] = match_rates(targets, groups, ks=(1, args.num), jobs=args.jobs)
            entry[variant]["seconds"] = round(time.perf_counter() - t0, 1)
            print(name, variant, json.dumps(entry[variant]), flush=True)
        results["datasets"][name] = entry
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
