"""Structures per second of the default sampler and of the reference's setting, side by side in one process.

Same model, same targets (the first ``--rows`` MP-20 test formulas of the seed-0 split, one structure
each), same device; the reference setting (annealed Langevin, 5,000 decoder calls) runs on the first
``--reference-rows`` of them and is compared per structure.

    OMP_NUM_THREADS=1 python benchmarks/cond_vae/bench_sampler_speed.py --data runs/default/all.zarr
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from datetime import UTC, datetime

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--checkpoint", default="tools/src/xtal_tools/models/default")
    ap.add_argument("--data", required=True)
    ap.add_argument("--rows", type=int, default=16)
    ap.add_argument("--reference-rows", type=int, default=4)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    import torch
    from cond_vae.checkpoint import load_checkpoint
    from cond_vae.sampling import DEFAULT_SAMPLER, SamplerConfig, sample
    from xtal_data import CrystalStore

    torch.set_num_threads(args.threads)
    model = load_checkpoint(args.checkpoint, map_location=args.device)
    store = CrystalStore.open(args.data)
    ids = store.ids
    test = [int(i) for i in np.asarray(store.split("random")["test"]) if str(ids[i]).startswith("mp-")]
    from pymatgen.core import Element

    formulas = []
    for i in test[: args.rows]:
        z, n = np.unique(np.asarray(store[i].atomic_numbers), return_counts=True)
        formulas.append(
            "".join(f"{Element.from_Z(int(a)).symbol}{int(c)}" for a, c in zip(z, n, strict=True))
        )
    out = {}
    for name, sampler, rows in (
        ("default", DEFAULT_SAMPLER, formulas),
        ("reference", SamplerConfig.reference(), formulas[: args.reference_rows]),
        ("default (reference rows)", DEFAULT_SAMPLER, formulas[: args.reference_rows]),
    ):
        t0 = time.perf_counter()
        samples = sample(model, rows, 0.0, num_per_row=1, seed=0, sampler=sampler)
        seconds = time.perf_counter() - t0
        out[name] = {
            "structures": len(samples), "decoder_calls": sampler.decoder_calls(), "seconds": seconds,
            "structures_per_s": len(samples) / seconds,
        }  # fmt: skip
        print(name, out[name], flush=True)
    ref, default = out["reference"], out["default (reference rows)"]
    out["speedup_per_structure"] = default["structures_per_s"] / ref["structures_per_s"]
    out["machine"] = {"platform": platform.platform(), "torch": torch.__version__, "threads": args.threads,
                      "device": args.device}  # fmt: skip
    out["date"] = datetime.now(UTC).isoformat(timespec="seconds")
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
