"""Training-step CPU cost with the encoder graph built every step vs cached (radius) vs CrystalNN.

One process, the same structures (the first ``--batch`` rows of ``../shared/data/mp_20/val.feather``,
0 GPa), the same initial weights and seeds. Three variants are stepped in turn (interleaved, repeated):

* ``radius, on the fly``: today's behaviour, the encoder's radius graph and triplets built each step;
* ``radius, cached``: the same graph built once (``EncoderGraphData``), the batch carries its edges;
* ``crystalnn, cached``: the reference's CrystalNN graph (``EncoderConfig.graph = "crystalnn"``);
* with ``--compile``: also ``radius, cached, compiled`` and ``crystalnn, cached, compiled``
  (``cond_vae.compile_networks``; compiled in the warm-up round, which is not timed);
* with ``--bf16``: also ``radius, cached, bf16`` (and with ``--compile`` ``radius, cached, compiled,
  bf16``): the step under bfloat16 autocast (``TrainConfig.bf16_autocast``), geometry in float32.

Each variant reports CPU seconds (``time.process_time``, all threads of this process) of a full
training step (forward, backward, clip, Adam), of the encoder alone (graph + forward + backward of
``mu.sum() + logvar.sum()``) and of building the encoder graph alone.

    python benchmarks/cond_vae/bench_encoder_graph.py --config configs/default.toml --batch 64
    python benchmarks/cond_vae/bench_encoder_graph.py --preset cond_cdvae_4m --batch 128 --threads 1 2
    python benchmarks/cond_vae/bench_encoder_graph.py --preset cond_cdvae_4m --batch 128 --compile
    python benchmarks/cond_vae/bench_encoder_graph.py --config configs/default.toml --compile --bf16
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(Path(__file__).resolve().parent))
VARIANTS = ("radius, on the fly", "radius, cached", "crystalnn, cached")


def model_config(args):
    from cond_vae import CondCDVAEConfig
    from cond_vae.training import load_run_config

    if args.config:
        return load_run_config(args.config).model
    return getattr(CondCDVAEConfig, args.preset)()


def build_variants(crystals, config, seed: int, names=VARIANTS):
    """``{name: (model, optimizer, batch)}``, every model with the same initial weights."""
    import torch
    from cond_vae import CondCDVAE, compile_networks
    from cond_vae.training import EncoderGraphData
    from xtal_graph import collate

    out, graph_seconds = {}, {}
    for name in names:
        cfg = config
        if name.startswith("crystalnn"):
            cfg = dataclasses.replace(config, encoder=dataclasses.replace(config.encoder, graph="crystalnn"))
        torch.manual_seed(seed)
        model = CondCDVAE(cfg)
        model.fit_scalers(crystals)
        model.train()
        start = time.process_time()
        if "on the fly" in name:
            batch = collate(crystals)
        else:
            cache = EncoderGraphData(crystals, cfg.encoder, dtype=torch.float32)
            batch = cache.batch(range(len(crystals))).to(dtype=torch.float32)
        graph_seconds[name] = time.process_time() - start
        if "compiled" in name:
            compile_networks(model)
        params = [p for p in model.parameters() if p.requires_grad]
        out[name] = (model, params, torch.optim.Adam(params, lr=1e-4), batch)
    return out, graph_seconds


def time_variants(variants, *, reps: int, warmup: int, threads: int):
    """Interleaved CPU seconds per variant (medians): full step, encoder fwd+bwd, encoder graph only.

    Each round steps every variant once, starting from a different one each round."""
    import torch
    from cond_vae._encoder_graph import encoder_graph
    from cond_vae.distributed import DistContext
    from cond_vae.training._step import train_step

    torch.set_num_threads(threads)
    ctx = DistContext(rank=0, world_size=1, local_rank=0, device=torch.device("cpu"), owns_group=False)
    rows = {name: {"step": [], "step_wall": [], "encoder": [], "graph": []} for name in variants}
    names = list(variants)
    for rep in range(warmup + reps):
        for name in names[rep % len(names) :] + names[: rep % len(names)]:  # rotate the order
            model, params, optimizer, batch = variants[name]
            t0, w0 = time.process_time(), time.perf_counter()
            optimizer.zero_grad(set_to_none=True)
            stats = train_step(
                net=model, params=params, micro=[batch], seed=0, step=rep, ctx=ctx, teacher_forcing=True,
                autocast=name.endswith("bf16"), grad_clip=0.5, grad_clip_mode="value",
            )  # fmt: skip
            optimizer.step()
            t1, w1 = time.process_time(), time.perf_counter()
            assert not stats.reason, stats.reason
            optimizer.zero_grad(set_to_none=True)
            stats = model.encode(batch)
            (stats.mu.sum() + stats.logvar.sum()).backward()
            t2 = time.process_time()
            with torch.no_grad():
                encoder_graph(batch, model.config.encoder)
            t3 = time.process_time()
            optimizer.zero_grad(set_to_none=True)
            if rep >= warmup:
                row = rows[name]
                row["step"].append(t1 - t0)
                row["step_wall"].append(w1 - w0)
                row["encoder"].append(t2 - t1)
                row["graph"].append(t3 - t2)
    return {
        name: {key: round(statistics.median(v), 3) for key, v in row.items()} | {"all_steps": row["step"]}
        for name, row in rows.items()
    }


def profile_step(variants, name: str, top: int = 15) -> list[dict]:
    """The ``top`` operators by self CPU time in one training step of variant ``name``."""
    import torch
    from cond_vae.distributed import DistContext
    from cond_vae.training._step import train_step

    model, params, optimizer, batch = variants[name]
    ctx = DistContext(rank=0, world_size=1, local_rank=0, device=torch.device("cpu"), owns_group=False)
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        optimizer.zero_grad(set_to_none=True)
        train_step(
            net=model, params=params, micro=[batch], seed=0, step=99, ctx=ctx, teacher_forcing=True,
            autocast=False, grad_clip=0.5, grad_clip_mode="value",
        )  # fmt: skip
    events = sorted(prof.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)
    total = sum(e.self_cpu_time_total for e in events)
    return [
        {"op": e.key, "calls": e.count, "self_cpu_share": round(e.self_cpu_time_total / total, 3)}
        for e in events[:top]
    ]


def graph_sizes(variants):
    from cond_vae._encoder_graph import encoder_graph

    sizes = {}
    for name, (model, _, _, batch) in variants.items():
        graph, trips = encoder_graph(batch, model.config.encoder)
        sizes[name] = {"edges": graph.num_edges, "triplets": trips.num_triplets}
    return sizes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--data", type=Path, default=ROOT.parent / "shared" / "data" / "mp_20" / "val.feather"
    )
    parser.add_argument("--config", type=Path, default=None, help="a run TOML (its [model] table)")
    parser.add_argument("--preset", default="cond_cdvae_4m")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--reps", type=int, default=3, help="timed rounds over the variants")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--threads", type=int, nargs="+", default=[1])
    parser.add_argument("--profile", action="store_true", help="also profile one cached-radius step")
    parser.add_argument("--compile", action="store_true", help="add compiled cached variants")
    parser.add_argument(
        "--bf16", action="store_true", help="add bf16-autocast variants of the cached (compiled) radius step"
    )
    args = parser.parse_args()

    import torch
    from bench_train_step import load_structures

    torch.set_num_threads(1)
    crystals = load_structures(args.data, args.batch)
    names = VARIANTS + (("radius, cached, compiled", "crystalnn, cached, compiled") if args.compile else ())
    if args.bf16:
        names += ("radius, cached, bf16",) + (("radius, cached, compiled, bf16",) if args.compile else ())
    variants, build_seconds = build_variants(crystals, model_config(args), seed=0, names=names)
    result = {
        "model": str(args.config or args.preset),
        "parameters": variants[VARIANTS[0]][0].num_parameters()["total"],
        "batch": args.batch,
        "atoms": int(sum(c.num_atoms for c in crystals)),
        "graph_sizes": graph_sizes(variants),
        "cache_build_cpu_seconds": {k: round(v, 3) for k, v in build_seconds.items()},
        "load_average_before": [round(x, 2) for x in os.getloadavg()],
        "torch": torch.__version__,
        "timings": {},
    }
    for threads in args.threads:
        result["timings"][f"{threads} thread(s)"] = time_variants(
            variants, reps=args.reps, warmup=args.warmup, threads=threads
        )
    if args.profile:
        torch.set_num_threads(1)
        result["profile_radius_cached"] = profile_step(variants, "radius, cached")
    result["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
