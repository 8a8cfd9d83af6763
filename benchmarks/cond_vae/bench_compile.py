"""Eager against compiled networks (``cond_vae.compile_networks``), side by side in one process.

Sampling: the shipped default model, the first ``--rows`` MP-20 test formulas of the seed-0 split, one
structure each, default sampler (ode-50); eager and compiled runs alternate ``--repeats`` times after one
compiled warm-up run (which compiles; timed apart). Training: ``--train-steps`` steps of the shipped
model's configuration at batch ``--batch`` on MP-20 validation structures with cached encoder graphs,
eager against compiled (warm-up steps apart). Wall and CPU seconds; JSON on stdout.

    OMP_NUM_THREADS=1 python benchmarks/cond_vae/bench_compile.py --data runs/default/all.zarr
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_sampler_curve import _counts  # noqa: E402
from bench_train_step import ROOT, cached_graph_trainer, load_structures  # noqa: E402


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--checkpoint", default="tools/src/xtal_tools/models/default")
    ap.add_argument("--data", required=True)
    shared = Path(os.environ.get("XTAL_SHARED_DATA", ROOT.parent / "shared" / "data"))  # as the tests
    ap.add_argument("--train-data", type=Path, default=shared / "mp_20" / "val.feather")
    ap.add_argument("--rows", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--train-steps", type=int, default=5)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)

    import torch
    from cond_vae import compile_networks
    from cond_vae.checkpoint import load_checkpoint
    from cond_vae.sampling import sample
    from xtal_data import CrystalStore
    from xtal_data.torch_dataset import CrystalDataset

    torch.set_num_threads(args.threads)
    store = CrystalStore.open(args.data)
    ids = store.ids
    test = [int(i) for i in np.asarray(store.split("random")["test"]) if str(ids[i]).startswith("mp-")]
    ds = CrystalDataset(store, indices=test[: args.rows], properties=["pressure"])
    rows = ["".join(f"{s}{n}" for s, n in _counts(ds.crystal(i).atom_types)) for i in range(len(ds))]

    eager = load_checkpoint(args.checkpoint, map_location=args.device).eval()
    compiled = compile_networks(load_checkpoint(args.checkpoint, map_location=args.device).eval())

    def timed(fn):
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()
        wall, cpu = time.perf_counter(), time.process_time()
        fn()
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()
        return time.perf_counter() - wall, time.process_time() - cpu

    report: dict = {"rows": len(rows), "sampler": "ode-50 (default)"}
    sample(eager, rows[:2], 0.0, seed=0)
    first = timed(lambda: sample(compiled, rows, 0.0, seed=0))[0]
    report["sampling_compile_and_first_run_s"] = round(first, 1)
    runs: dict[str, list] = {"eager": [], "compiled": []}
    for _ in range(args.repeats):
        for name, model in (("eager", eager), ("compiled", compiled)):
            runs[name].append(timed(lambda m=model: sample(m, rows, 0.0, seed=0)))
    report["sampling"] = {k: {"wall_s": [round(w, 2) for w, _ in v], "cpu_s": [round(c, 2) for _, c in v]}
                          for k, v in runs.items()}  # fmt: skip
    report["sampling_speedup_wall"] = round(
        statistics.median(w for w, _ in runs["eager"]) / statistics.median(w for w, _ in runs["compiled"]), 2
    )
    report["train_step"] = _train(args, eager.config, timed)
    report["machine"] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"), "cpus": os.cpu_count(),
        "threads": args.threads, "load_average": [round(x, 2) for x in os.getloadavg()],
        "platform": platform.platform(), "torch": torch.__version__, "device": args.device,
    }  # fmt: skip
    print(json.dumps(report, indent=1))


def _train(args, config, timed) -> dict:
    crystals = load_structures(args.train_data, args.batch)
    out = {}
    for label in ("eager", "compiled"):
        backend = "inductor" if label == "compiled" else None
        _, step = cached_graph_trainer(config, crystals, args.device, compile_backend=backend)
        first = timed(lambda s=step: s(0))[0]
        times = [timed(lambda k=k, s=step: s(k)) for k in range(1, 1 + args.train_steps)]
        out[label] = {
            "first_step_s": round(first, 1), "batch": len(crystals),
            "wall_s_median": round(statistics.median(w for w, _ in times), 3),
            "cpu_s_median": round(statistics.median(c for _, c in times), 3),
        }  # fmt: skip
    out["speedup_wall"] = round(out["eager"]["wall_s_median"] / out["compiled"]["wall_s_median"], 2)
    return out


if __name__ == "__main__":
    main()
