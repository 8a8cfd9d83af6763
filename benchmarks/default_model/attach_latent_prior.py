"""Fit the latent prior (the training crystals' codes by cell size, with the crystals themselves for
analogue proposals) of a checkpoint and save it with it.

    python benchmarks/default_model/attach_latent_prior.py --checkpoint DIR --data STORE [--out DIR]

Runs of ``tools/train`` since the prior exists fit it at their end (``TrainConfig.latent_prior``); this
gives older checkpoints the same: ``cond_vae.fit_latent_prior`` on the ``--part`` of the store's
``--split`` (the crystals the checkpoint was trained on), written as ``latent_prior.safetensors`` and
named in ``config.json``. The weights and every other file are kept unchanged.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))


def main(argv: list[str] | None = None) -> None:
    from attach_volume_prior import add_source_arguments, write_beside

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_source_arguments(ap)
    ap.add_argument("--per-size", type=int, default=None, help="components kept per cell size (default: all)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)

    from cond_vae import fit_latent_prior
    from cond_vae.checkpoint import load_checkpoint
    from cond_vae.training._data import crystal_batches
    from xtal_data import CrystalStore
    from xtal_data.torch_dataset import CrystalDataset

    model = load_checkpoint(args.checkpoint)
    store = CrystalStore.open(args.data)
    indices = [int(i) for i in np.asarray(store.split(args.split)[args.part])]
    train = CrystalDataset(store, indices=indices, properties=list(model.config.condition_names))
    t0 = time.perf_counter()
    batches = crystal_batches(train)
    model.latent_prior = fit_latent_prior(model, batches, per_size=args.per_size, seed=args.seed)
    prior = model.latent_prior
    print(
        f"latent prior: {len(prior.sizes)} components over {len(prior.sizes.unique())} cell sizes, from "
        f"{prior.num_crystals} crystals ({args.part}) in {time.perf_counter() - t0:.1f} s"
    )
    print(f"wrote {write_beside(model, args.checkpoint, args.out)}")


if __name__ == "__main__":
    main()
