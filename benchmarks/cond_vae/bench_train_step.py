"""Training-step time of Cond-CDVAE (forward + backward + clip + Adam) on MP-20 structures.

Runs the library's own step (``cond_vae.training._step.train_step`` + ``Adam.step``), one process,
on the CPU (or a GPU with --device cuda), and reports seconds per step, per structure and the peak
resident memory of the process, next to the reference's figure measured on a 2-core CPU
(anchors.md §9: 8.86 s per batch-128 step, 11.2 GiB peak RSS, 4M config, two threads).

    python benchmarks/cond_vae/bench_train_step.py --batch 128 --steps 3 --threads 2

The structures are the first ``--batch`` rows of ``../shared/data/mp_20/val.feather`` (pressure 0 GPa).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import time
from pathlib import Path

REFERENCE = {"seconds_per_step": 8.86, "peak_rss_gib": 11.2, "batch": 128, "threads": 2}
ROOT = Path(__file__).resolve().parents[2]


def load_structures(path: Path, count: int):
    import pandas as pd
    from pymatgen.core import Structure
    from xtal_graph import Crystal

    table = pd.read_feather(path, columns=["material_id", "cif"]).head(count)
    return [
        Crystal.from_pymatgen(Structure.from_str(cif, fmt="cif"), id=mid, pressure=0.0)
        for mid, cif in zip(table["material_id"], table["cif"], strict=True)
    ]


def cached_graph_trainer(config, crystals, device, *, compile_backend: str | None = None):
    """``(model, step)``: a model of ``config`` seeded with 0 and scalers fitted on ``crystals``, and
    ``step(k)``, one training step (forward, backward, clip, Adam) at step number ``k`` on the batch of
    ``crystals`` with their encoder graphs cached, as ``tools/train`` trains. ``compile_backend``: compile
    the networks first (``cond_vae.compile_networks``)."""
    import torch
    from cond_vae import CondCDVAE, compile_networks
    from cond_vae.distributed import DistContext
    from cond_vae.training import EncoderGraphData
    from cond_vae.training._step import train_step

    torch.manual_seed(0)
    model = CondCDVAE(config)
    model.fit_scalers(crystals)
    model = model.to(device).train()
    if compile_backend is not None:
        compile_networks(model, backend=compile_backend)
    batch = EncoderGraphData(crystals, config.encoder).batch(list(range(len(crystals))))
    batch = batch.to(device=device, dtype=torch.float32)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(params, lr=1e-4)
    ctx = DistContext(rank=0, world_size=1, local_rank=0, device=torch.device(device), owns_group=False)

    def step(k: int) -> None:
        optimizer.zero_grad(set_to_none=True)
        train_step(
            net=model, params=params, micro=[batch], seed=0, step=k, ctx=ctx, teacher_forcing=True,
            autocast=False, grad_clip=0.5, grad_clip_mode="value",
        )  # fmt: skip
        optimizer.step()

    return model, step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--data", type=Path, default=ROOT.parent / "shared" / "data" / "mp_20" / "val.feather"
    )
    parser.add_argument(
        "--preset", default="cond_cdvae_4m", choices=["cond_cdvae_4m", "cond_cdvae_86m", "tiny"]
    )
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--steps", type=int, default=3, help="timed steps (after --warmup untimed ones)")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--teacher-forcing", action=argparse.BooleanOptionalAction, default=True)
    args = parser.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    from cond_vae import CondCDVAE, CondCDVAEConfig
    from cond_vae.distributed import DistContext
    from cond_vae.training._step import train_step
    from xtal_graph import collate

    crystals = load_structures(args.data, args.batch)
    device = torch.device(args.device)
    torch.manual_seed(0)
    model = CondCDVAE(getattr(CondCDVAEConfig, args.preset)())
    model.fit_scalers(crystals)
    model = model.to(device).train()
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(params, lr=1e-4)
    batch = collate(crystals)
    ctx = DistContext(rank=0, world_size=1, local_rank=0, device=device, owns_group=False)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB -> GiB

    times, cpu_times = [], []
    for step in range(args.warmup + args.steps):
        if device.type == "cuda":
            torch.cuda.synchronize()
        start, cpu_start = time.perf_counter(), time.process_time()
        optimizer.zero_grad(set_to_none=True)
        stats = train_step(
            net=model, params=params, micro=[batch], seed=0, step=step, ctx=ctx,
            teacher_forcing=args.teacher_forcing, autocast=False, grad_clip=0.5, grad_clip_mode="value",
        )  # fmt: skip
        optimizer.step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        if step >= args.warmup:
            times.append(time.perf_counter() - start)
            cpu_times.append(time.process_time() - cpu_start)
        assert not stats.reason, stats.reason

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    median = statistics.median(times)
    result = {
        "preset": args.preset,
        "parameters": model.num_parameters()["total"],
        "batch": args.batch,
        "atoms": int(batch.num_atoms.sum()),
        "threads": args.threads,
        "device": args.device,
        "teacher_forcing": args.teacher_forcing,
        "step_seconds": [round(t, 3) for t in times],
        "median_seconds_per_step": round(median, 3),
        # CPU seconds of this process per step (all threads): robust to other jobs sharing the cores.
        "cpu_seconds_per_step": [round(t, 2) for t in cpu_times],
        "seconds_per_structure": round(median / args.batch, 4),
        "peak_rss_gib": round(peak, 2),
        "rss_before_steps_gib": round(rss_before, 2),
        "reference_seconds_per_step": REFERENCE["seconds_per_step"],
        "speedup_vs_reference": round(REFERENCE["seconds_per_step"] / median, 2),
        "memory_ratio_vs_reference": round(peak / REFERENCE["peak_rss_gib"], 2),
        "machine": f"{os.cpu_count()} cores, {platform.processor() or platform.machine()}",
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "torch": torch.__version__,
    }
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
