"""Are a checkpoint's predicted cells biased, and does the coordinate loss pull them? A probe for the relay.

    python benchmarks/default_model/lattice_bias.py --checkpoints A B ... [--out bias.json]

Per checkpoint, on the seed-0 store (``runs/default/all.zarr``):

* ``volume_ratio``: median over the first ``--targets`` MP-20 test-part targets of (mean volume of 4
  generated cells) / (true volume), the default sampler's proposal (the cell does not depend on the
  coordinate sampler);
* ``length_bias_sd``: on ``--train`` random training crystals, the mean of (predicted - true) standardised
  scaled lengths (the lattice head's own units) with the posterior mean as latent;
* ``grad_lattice_loss`` / ``grad_coord_loss``: the gradient of 10 x each loss (their weights in the total)
  on the lattice head's three length biases, one batch of those crystals without teacher forcing: with
  the reference's coupling the coordinate loss pulls the lengths up (negative gradient) against the
  lattice loss.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "cond_vae"))
from bench_sampler_curve import _counts  # noqa: E402


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--checkpoints", nargs="+", required=True)
    ap.add_argument("--store", default="runs/default/all.zarr")
    ap.add_argument("--targets", type=int, default=150)
    ap.add_argument("--train", type=int, default=256)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args(argv)

    import torch
    from cond_vae import lattice_to_scaled_params
    from cond_vae.checkpoint import load_checkpoint
    from cond_vae.sampling import SamplerConfig, sample
    from xtal_data import CrystalStore
    from xtal_data.torch_dataset import CrystalDataset
    from xtal_graph import collate

    torch.set_num_threads(1)
    store = CrystalStore.open(args.store)
    ids, parts = store.ids, store.split("random")
    test = [int(i) for i in np.asarray(parts["test"]) if str(ids[i]).startswith("mp-")][: args.targets]
    rng = np.random.default_rng(0)
    train = [int(i) for i in rng.choice(np.asarray(parts["train"]), args.train, replace=False)]
    targets = CrystalDataset(store, indices=test, properties=["pressure"])
    targets = [targets.crystal(i) for i in range(len(targets))]
    rows = ["".join(f"{s}{n}" for s, n in _counts(c.atom_types)) for c in targets]
    pressures = [float(c.properties["pressure"]) for c in targets]
    crystals = CrystalDataset(store, indices=train, properties=["pressure"])
    batch = collate([crystals.crystal(i) for i in range(len(crystals))], dtype=torch.float32)

    report = {}
    for path in args.checkpoints:
        model = load_checkpoint(path).eval()
        out = sample(model, rows, pressures, num_per_row=4, seed=0, sampler=SamplerConfig(levels=2))
        ratios = []
        for j, c in enumerate(targets):
            cells = [s.crystal.lattice for s in out[4 * j : 4 * j + 4] if s.valid]
            ratios.append(np.mean([abs(np.linalg.det(x)) for x in cells]) / abs(np.linalg.det(c.lattice)))
        with torch.no_grad():
            cond = model.condition_vector(batch)
            mu = model.encode(batch, cond).mu
            pred = model.lattice_head(model.cond_z(mu, cond))
            true = model.lattice_scaler.transform(lattice_to_scaled_params(batch.lattice, batch.num_atoms))
        bias_param = model.lattice_head.mlp[-1].bias
        grads = {}
        model.train()
        for part in ("lattice", "coord"):
            model.zero_grad()
            torch.manual_seed(0)
            (10.0 * getattr(model(batch, teacher_forcing=False), part)).backward()
            g = bias_param.grad
            grads[part] = [0.0, 0.0, 0.0] if g is None else [round(float(x), 3) for x in g[:3]]
        report[path] = {
            "volume_ratio": round(float(np.median(ratios)), 3),
            "length_bias_sd": [round(float(x), 3) for x in (pred - true)[:, :3].mean(0)],
            "grad_lattice_loss": grads["lattice"], "grad_coord_loss": grads["coord"],
        }  # fmt: skip
        print(path, json.dumps(report[path]), flush=True)
    if args.out:
        args.out.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
