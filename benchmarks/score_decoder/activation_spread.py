"""Activation scale at initialisation on real MP-20 structures, per batch and per crystal.

Fits the scale factors on one half of a sample of MP-20 structures and reports, on the other half,
the root mean square of each interaction block's atom features ``h`` and of the score, over the
batch and per crystal (5th / 50th / 95th percentile and maximum).

    python benchmarks/score_decoder/activation_spread.py --structures 128 --blocks 3 4 6
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
from score_decoder import GemNetConfig, GemNetScore, fit_scale_factors

sys.path.insert(0, str(Path(__file__).parent))
from bench_gemnet import load_inputs  # noqa: E402


def per_crystal_rms(x: torch.Tensor, batch: torch.Tensor, num_crystals: int) -> torch.Tensor:
    ms = x.new_zeros(num_crystals).index_add_(0, batch, x.pow(2).mean(1))
    return (ms / torch.bincount(batch, minlength=num_crystals)).sqrt()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", default="../shared/data/mp_20/val.feather")
    p.add_argument("--structures", type=int, default=128)
    p.add_argument("--blocks", type=int, nargs="+", default=[3, 4, 6])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    half = args.structures // 2
    base = GemNetConfig.cond_cdvae_4m()
    fit_in = load_inputs(args.data, half, args.seed, base)
    eval_in = load_inputs(args.data, half, args.seed + 1, base)
    batch, count = eval_in["batch"], half
    print("| blocks | tensor | batch RMS | per-crystal RMS p5 / p50 / p95 / max |")
    print("|---|---|---|---|")
    for blocks in args.blocks:
        torch.manual_seed(args.seed)
        model = GemNetScore(base.replace(num_blocks=blocks))
        fit_scale_factors(model, [fit_in])
        seen = {}
        for i, block in enumerate(model.interaction_blocks):
            block.register_forward_hook(
                lambda mod, a, out, i=i, seen=seen: seen.__setitem__(f"h after block {i + 1}", out[0])
            )
        with torch.no_grad():
            seen["score"] = model(**eval_in)
        for name in (f"h after block {blocks}", "score"):
            x = seen[name]
            per = per_crystal_rms(x, batch, count)
            q = torch.quantile(per, torch.tensor([0.05, 0.5, 0.95]))
            print(
                f"| {blocks} | {name} | {float(x.pow(2).mean().sqrt()):.2f} | "
                f"{q[0]:.2f} / {q[1]:.2f} / {q[2]:.2f} / {float(per.max()):.2f} |"
            )


if __name__ == "__main__":
    main()
