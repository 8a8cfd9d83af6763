"""Fit the composition-and-pressure volume prior on a checkpoint's training crystals and save it with it.

    python benchmarks/default_model/attach_volume_prior.py --checkpoint DIR --data STORE [--out DIR]

Checkpoints written by ``tools/train`` since the prior exists carry one (fitted on the run's training
data); this gives older ones the same: ``cond_vae.fit_volume_prior`` on the ``--part`` of the store's
``--split`` (the crystals the checkpoint was trained on), written into ``config.json`` as
``volume_prior``. The weights are copied unchanged. Prints the fit and its error on ``--check-part``.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import numpy as np


def add_source_arguments(ap: argparse.ArgumentParser) -> None:
    """The checkpoint, the store and part it was trained on, and where to write."""
    ap.add_argument("--checkpoint", required=True, type=Path)
    ap.add_argument("--data", required=True, help="the xtal-data store the checkpoint was trained on")
    ap.add_argument("--split", default="random")
    ap.add_argument("--part", default="train")
    ap.add_argument("--out", type=Path, help="write here (default: in place)")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_source_arguments(ap)
    ap.add_argument("--check-part", default="val", help="report the prior's volume error on this part")
    ap.add_argument("--ridge", type=float, default=1.0)
    args = ap.parse_args(argv)

    import torch
    from cond_vae import fit_volume_prior
    from cond_vae.checkpoint import load_checkpoint
    from cond_vae.training._data import scaler_items
    from xtal_data import CrystalStore
    from xtal_data.torch_dataset import CrystalDataset

    model = load_checkpoint(args.checkpoint)
    names = model.config.condition_names
    store = CrystalStore.open(args.data)
    parts = store.split(args.split)
    train = CrystalDataset(
        store, indices=[int(i) for i in np.asarray(parts[args.part])], properties=list(names)
    )
    prior = fit_volume_prior(
        scaler_items(train), condition="pressure" if "pressure" in names else None, ridge=args.ridge
    )
    model.volume_prior = prior
    check = CrystalDataset(
        store, indices=[int(i) for i in np.asarray(parts[args.check_part])], properties=list(names)
    )
    batch = check.batch(list(range(len(check)))).to(dtype=torch.float64)
    pred = prior.log_volume_per_atom(
        atom_types=batch.atom_types, batch=batch.batch, num_atoms=batch.num_atoms, conditions=batch.properties
    )
    true = torch.log(torch.linalg.det(batch.lattice).abs() / batch.num_atoms)
    err = (torch.exp(pred - true) - 1).abs()
    print(
        f"volume prior on {prior.num_crystals} crystals ({args.part}): {len(prior.element_terms)} elements, "
        f"residual sd {prior.residual_sd:.3f}, "
        f"pressure term {prior.condition_coef:.3f} ln(1 + P/{prior.condition_scale:g}); "
        f"on {len(check)} crystals ({args.check_part}): mean |V error| {100 * float(err.mean()):.1f} %, "
        f"median ratio {float(torch.exp(torch.median(pred - true))):.3f}"
    )
    print(f"wrote {write_beside(model, args.checkpoint, args.out)}")


def write_beside(model, source: Path, out: Path | None) -> Path:
    """Save ``model`` as a checkpoint in ``out`` (default: over ``source``) with ``source``'s ``extra``;
    every other file of ``source`` (the card, evaluation files) is copied beside it."""
    from cond_vae.checkpoint import read_checkpoint_info, save_checkpoint

    out = out or source
    if out != source:
        out.mkdir(parents=True, exist_ok=True)
        for extra in source.iterdir():
            if extra.is_file() and extra.name not in ("model.safetensors", "config.json"):
                shutil.copy2(extra, out / extra.name)
    save_checkpoint(out, model, extra=read_checkpoint_info(source).get("extra"))
    return out


if __name__ == "__main__":
    main()
