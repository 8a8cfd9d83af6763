"""GPU speed of sampling and training, every variant side by side in one process (issue 19).

Sampling: the shipped default model, ``--structures`` MP-20 formulas of the seed-0 split's test part
(cycled when there are fewer), one structure each, 0 GPa, at the default sampler setting (ode-50) and
at the reference's (annealed Langevin, 5,000 decoder calls; its per-call cost measured on the first
100 calls of that plan, and the whole plan with ``--reference-full``). Variants: the shipped batch size
(512) against one block of all structures, TF32 matrix products, and compiled networks
(``cond_vae.compile_networks``). TF32 and compilation change rounding, so their effect on match rates is
measured too: ``--quality-targets`` MP-20 test targets x ``--num`` samples, matched with xtal-eval in
worker processes while the GPU goes on.

Training: one step (forward, backward, clip, Adam) of the 4M configuration at batch 128 on MP-20
validation structures with their encoder graphs cached (as ``tools/train`` trains), eager against TF32
and compiled. A ``torch.profiler`` table of one eager sampling call and one eager training step goes to
``--out``/profile.txt.

    python benchmarks/cond_vae/gpu_speed.py --data runs/default/all.zarr --device cuda --out OUT
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_sampler_curve import KS, PRESETS, _counts, match_task  # noqa: E402
from bench_train_step import ROOT, cached_graph_trainer, load_structures  # noqa: E402


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--checkpoint", default="tools/src/xtal_tools/models/default")
    ap.add_argument("--data", required=True, help="the seed-0 store (runs/default/all.zarr)")
    shared = Path(os.environ.get("XTAL_SHARED_DATA", ROOT.parent / "shared" / "data"))  # as the tests
    ap.add_argument("--train-data", type=Path, default=shared / "mp_20" / "val.feather")
    ap.add_argument("--structures", type=int, default=1000)
    ap.add_argument("--quality-targets", type=int, default=50)
    ap.add_argument("--num", type=int, default=20)
    ap.add_argument("--train-steps", type=int, default=15)
    ap.add_argument("--train-preset", default="cond_cdvae_4m")
    ap.add_argument("--reference-full", action="store_true", help="also run all 5,000 calls (best variant)")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--compile-backend", default="inductor", help="'eager' to check the script on a CPU")
    ap.add_argument("--jobs", type=int, default=max(1, (os.cpu_count() or 2) - 4))
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)

    import torch
    from cond_vae import compile_networks
    from cond_vae.checkpoint import load_checkpoint
    from cond_vae.sampling import DEFAULT_SAMPLER, SamplerConfig, sample
    from xtal_data import CrystalStore
    from xtal_data.torch_dataset import CrystalDataset

    device = torch.device(args.device)
    cuda = device.type == "cuda"
    pool = ProcessPoolExecutor(args.jobs, mp_context=mp.get_context("spawn"))
    report: dict = {"machine": _machine(torch), "args": {k: str(v) for k, v in vars(args).items()}}
    t_start = time.perf_counter()

    def save(**parts) -> None:
        report.update(parts, seconds=round(time.perf_counter() - t_start, 1))
        (args.out / "speed.json").write_text(json.dumps(report, indent=1))

    def sync() -> None:
        if cuda:
            torch.cuda.synchronize()

    def precision(tf32: bool) -> None:
        torch.backends.cuda.matmul.allow_tf32 = tf32
        torch.backends.cudnn.allow_tf32 = tf32

    # ---------------------------------------------------------------- targets
    store = CrystalStore.open(args.data)
    ids = store.ids
    test = [int(i) for i in np.asarray(store.split("random")["test"]) if str(ids[i]).startswith("mp-")]
    ds = CrystalDataset(store, indices=test, properties=["pressure"])
    crystals = [ds.crystal(i) for i in range(len(ds))]
    formulas = ["".join(f"{s}{n}" for s, n in _counts(c.atom_types)) for c in crystals]
    speed_rows = [formulas[i % len(formulas)] for i in range(args.structures)]

    eager = load_checkpoint(args.checkpoint, map_location=device).eval()
    compiled = load_checkpoint(args.checkpoint, map_location=device).eval()
    compile_networks(compiled, backend=args.compile_backend)
    sample(eager, speed_rows[:8], 0.0, seed=0)  # CUDA context, cuBLAS handles, caching allocator

    sampling: dict = {}

    def run(label, model, rows, sampler, *, tf32=False, num=1):
        precision(tf32)
        if cuda:
            torch.cuda.reset_peak_memory_stats()
        sync()
        t0 = time.perf_counter()
        out = sample(model, rows, 0.0, num_per_row=num, seed=0, sampler=sampler)
        sync()
        seconds = time.perf_counter() - t0
        calls = sampler.decoder_calls(len(eager.sigmas))
        sampling[label] = {
            "structures": len(out), "decoder_calls": calls, "batch_size": sampler.batch_size,
            "tf32": tf32, "compiled": model is compiled, "seconds": round(seconds, 3),
            "ms_per_decoder_call": round(1000 * seconds / calls, 2),
            "peak_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2) if cuda else None,
        }  # fmt: skip
        print(f"{label}: {len(out)} structures, {calls} calls, {seconds:.2f} s", flush=True)
        save(sampling=sampling)  # as we go: a run cut short keeps what it measured
        precision(False)
        return out

    n = args.structures
    one_block = DEFAULT_SAMPLER.replace(batch_size=n)
    run("ode-50, shipped batch 512", eager, speed_rows, DEFAULT_SAMPLER)
    run("ode-50, one block", eager, speed_rows, one_block)
    run("ode-50, one block, tf32", eager, speed_rows, one_block, tf32=True)
    t0 = time.perf_counter()
    run("ode-50, compiled, first call (compiles)", compiled, speed_rows[:16], one_block)
    report["compile_seconds_sampling"] = round(time.perf_counter() - t0, 1)
    run("ode-50, compiled, one block", compiled, speed_rows, one_block)
    run("ode-50, compiled, one block (again)", compiled, speed_rows, one_block)
    run("ode-50, compiled, one block, tf32", compiled, speed_rows, one_block, tf32=True)
    run("ode-50, compiled, one block, skin 0.5", compiled, speed_rows, one_block.replace(skin=0.5))
    ref100 = SamplerConfig.reference(steps_per_level=2, batch_size=n)  # the first 100 calls' shape
    run("langevin-50x2, eager", eager, speed_rows, ref100)
    run("langevin-50x2, compiled", compiled, speed_rows, ref100)
    run("langevin-50x2, compiled, skin 0.5", compiled, speed_rows, ref100.replace(skin=0.5))

    # ---------------------------------------------------------------- quality of tf32 / compiled
    q = crystals[: args.quality_targets]
    q_rows = formulas[: args.quality_targets]
    block = DEFAULT_SAMPLER.replace(batch_size=len(q) * args.num)
    pending = {}
    for label, model, tf32 in (("fp32", eager, False), ("tf32", eager, True), ("compiled", compiled, False)):
        out = run(f"quality {label}", model, q_rows, block, tf32=tf32, num=args.num)
        pending[label] = [
            pool.submit(match_task, (c.to_pymatgen(), [s.to_pymatgen() if s.valid else None
                                                      for s in out[j * args.num : (j + 1) * args.num]]))
            for j, c in enumerate(q)
        ]  # fmt: skip

    # ---------------------------------------------------------------- training step
    save(train_step=_train_steps(args, torch, device, precision, sync))

    # ---------------------------------------------------------------- profiles (eager)
    _profiles(args, torch, eager, speed_rows, sync)

    # ---------------------------------------------------------------- reference, all calls
    if args.reference_full:
        eager_key, compiled_key = "langevin-50x2, eager", "langevin-50x2, compiled"
        best = "compiled" if sampling[compiled_key]["seconds"] < sampling[eager_key]["seconds"] else "eager"
        model = compiled if best == "compiled" else eager
        run(f"reference-50x100, {best}, skin 0.5", model, speed_rows, SamplerConfig.reference(
            batch_size=n, skin=0.5))  # fmt: skip

    quality = {}
    for label, futs in pending.items():
        res = [f.result() for f in futs]
        quality[label] = {
            f"match@{k}_{p}": round(sum(r[f"{p}@{k}"] is not None for r in res) / len(res), 3)
            for p in PRESETS
            for k in KS
        }
        quality[label]["struct_valid"] = round(sum(r["valid"] for r in res) / (len(res) * args.num), 3)
    pool.shutdown()
    save(quality=quality)
    print(json.dumps({"quality": quality, "train_step": report["train_step"]}, indent=1))


def _train_steps(args, torch, device, precision, sync) -> dict:
    from cond_vae import CondCDVAEConfig

    crystals = load_structures(args.train_data, 128)
    config = getattr(CondCDVAEConfig, args.train_preset)()
    out = {}
    for label, tf32, compiled in (
        ("eager", False, False), ("eager, tf32", True, False), ("compiled", False, True),
        ("compiled, tf32", True, True),
    ):  # fmt: skip
        model, step = cached_graph_trainer(
            config, crystals, device, compile_backend=args.compile_backend if compiled else None
        )
        precision(tf32)
        times, first = [], None
        for k in range(3 + args.train_steps):
            sync()
            t0 = time.perf_counter()
            step(k)
            sync()
            if k == 0:
                first = time.perf_counter() - t0
            if k >= 3:
                times.append(time.perf_counter() - t0)
        if label == "eager":  # where one step's time goes
            from torch.profiler import ProfilerActivity, profile

            acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
            with profile(activities=acts) as prof:
                step(99)
                sync()
            sort = "cuda_time_total" if device.type == "cuda" else "cpu_time_total"
            with (args.out / "profile_train.txt").open("w") as fh:
                fh.write(f"# one training step, {args.train_preset}, batch {len(crystals)}\n")
                fh.write(prof.key_averages().table(sort_by=sort, row_limit=40))
                fh.write(prof.key_averages().table(sort_by="cpu_time_total", row_limit=25))
        precision(False)
        out[label] = {
            "median_s": round(statistics.median(times), 4), "min_s": round(min(times), 4),
            "first_step_s": round(first, 2), "steps": len(times), "batch": len(crystals),
            "parameters": model.num_parameters()["total"],
        }  # fmt: skip
        print(f"train step {label}: {out[label]}", flush=True)
    return out


def _profiles(args, torch, model, rows, sync) -> None:
    from cond_vae.sampling import SamplerConfig, sample
    from torch.profiler import ProfilerActivity, profile

    acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if torch.cuda.is_available() else [])
    sort = "cuda_time_total" if torch.cuda.is_available() else "cpu_time_total"
    with profile(activities=acts) as prof:
        sample(model, rows, 0.0, seed=0, sampler=SamplerConfig(method="ode", levels=3, batch_size=len(rows)))
        sync()
    text = ["# sampling, 1000 structures, 3 decoder calls (+ proposal)"]
    text.append(prof.key_averages().table(sort_by=sort, row_limit=40))
    text.append(prof.key_averages().table(sort_by="cpu_time_total", row_limit=25))
    (args.out / "profile.txt").write_text("\n".join(text))


def _machine(torch) -> dict:
    info = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"), "host_cpus": os.cpu_count(),
        "platform": platform.platform(), "torch": torch.__version__, "cuda": torch.version.cuda,
    }  # fmt: skip
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name()
    return info


if __name__ == "__main__":
    main()
