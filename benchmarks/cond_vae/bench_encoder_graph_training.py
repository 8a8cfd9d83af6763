"""Short training runs with the encoder graph on the fly, cached (radius) and CrystalNN: validation loss
after the same number of structures seen, and the CPU seconds of each run.

The radius runs with and without the cache must be the same run (same graph, same arithmetic): the
script checks that their final weights are bitwise equal. The CrystalNN run is a different model.
Data: rows ``[0, train)`` of ``../shared/data/mp_20/val.feather`` for training and the next ``val`` rows
for validation (0 GPa); model and optimiser settings from ``--config``, the batch and length below.

    python benchmarks/cond_vae/bench_encoder_graph_training.py --config configs/default.toml \\
        --train 256 --val 64 --batch 16 --steps 320
    python benchmarks/cond_vae/bench_encoder_graph_training.py --config configs/4m.toml \\
        --variants "radius, on the fly" "crystalnn, cached, compiled" --steps 320

``crystalnn, cached, compiled`` adds ``[train] compile = true`` (``cond_vae.compile_networks``); a
``bf16`` variant adds ``[train] bf16_autocast = true`` (validation stays float32).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(Path(__file__).resolve().parent))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--data", type=Path, default=ROOT.parent / "shared" / "data" / "mp_20" / "val.feather"
    )
    parser.add_argument("--config", type=Path, default=ROOT / "configs" / "default.toml")
    parser.add_argument("--train", type=int, default=256)
    parser.add_argument("--val", type=int, default=64)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--steps", type=int, default=320)
    parser.add_argument("--val-every-epochs", type=int, default=5)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument(
        "--variants", nargs="+", default=["radius, on the fly", "radius, cached", "crystalnn, cached"]
    )
    args = parser.parse_args()

    import torch
    from bench_train_step import load_structures
    from cond_vae.training import load_run_config, read_metrics, train

    torch.set_num_threads(1)
    crystals = load_structures(args.data, args.train + args.val)
    train_data, val_data = crystals[: args.train], crystals[args.train :]
    run = load_run_config(args.config)
    cfg = run.train.replace(
        batch_size=args.batch, max_steps=args.steps, val_every_epochs=args.val_every_epochs,
        checkpoint_every_steps=10**9, progress=False, device="cpu", dtype="float32", num_workers=0,
    )  # fmt: skip
    radius = run.model
    crystalnn = dataclasses.replace(radius, encoder=dataclasses.replace(radius.encoder, graph="crystalnn"))
    known = {
        "radius, on the fly": (radius, "none", False, False),
        "radius, cached": (radius, "memory", False, False),
        "crystalnn, cached": (crystalnn, "memory", False, False),
        "radius, cached, compiled": (radius, "memory", True, False),
        "crystalnn, cached, compiled": (crystalnn, "memory", True, False),
        "radius, cached, bf16": (radius, "memory", False, True),
        "radius, cached, compiled, bf16": (radius, "memory", True, True),
    }
    unknown = sorted(set(args.variants) - set(known))
    if unknown:
        parser.error(f"unknown variants {unknown}; known: {sorted(known)}")
    variants = {name: known[name] for name in args.variants}
    out = args.out or Path(tempfile.mkdtemp(prefix="encoder_graph_runs_"))
    results, models = {}, {}
    for name, (model_cfg, mode, compiled, bf16) in variants.items():
        start = time.process_time()
        run_dir = out / name.replace(", ", "_").replace(" ", "_")
        res = train(
            cfg.replace(encoder_graphs=mode, compile=compiled, bf16_autocast=bf16),
            model_cfg,
            train_data,
            val_data,
            run_dir,
        )
        cpu = time.process_time() - start
        models[name] = res.model.state_dict()
        vals = read_metrics(res.out_dir / "metrics.csv")
        results[name] = {
            "cpu_seconds": round(cpu, 1),
            "steps": res.steps,
            "structures_seen": res.steps * args.batch,
            "val_loss": [(int(r["step"]), float(r["loss"])) for r in vals if r["split"] == "val"],
            "last_val": dataclasses.asdict(res.last_val) if res.last_val else None,
        }
    same = None
    if {"radius, on the fly", "radius, cached"} <= set(models):
        a, b = models["radius, on the fly"], models["radius, cached"]
        same = all(torch.equal(a[k], b[k]) for k in a)
    print(json.dumps({"train": args.train, "val": args.val, "batch": args.batch, "runs": results,
                      "radius_cached_equals_on_the_fly_bitwise": same}, indent=1, default=str))  # fmt: skip


if __name__ == "__main__":
    main()
