"""Forward + backward speed of the GemNet-T score decoder on real MP-20 structures.

Variants, timed side by side in one process on the same inputs (graph and triplets built once):

* ``eager``: the default network (padded per-edge triplet slots + batched matmul), float32.
* ``scatter``: the triplet sum as per-triplet outer products + ``index_add_`` (the layout-free
  formulation), float32. It materialises a ``(T, cbf, trip)`` tensor, so it runs on a smaller batch
  (``--scatter-structures``), timed against ``eager`` on that same batch.
* ``compile``: ``torch.compile`` of each interaction and output block (the triplet layout needs
  data-dependent sizes, so the top level stays eager); the compile time is reported separately.
* ``bf16``: eager under ``torch.autocast(dtype=torch.bfloat16)``.

Each variant reports the median of ``--repeats`` timed iterations (interleaved across variants, as the
load of a shared machine drifts) after ``--warmup`` untimed ones (at least 2 with compile), and
the largest deviation of its score and of its parameter gradients from ``eager`` (relative to the
largest eager value).

    python benchmarks/score_decoder/bench_gemnet.py --structures 128 --threads 2
"""

from __future__ import annotations

import argparse
import math
import platform
import statistics
import time
import types
import warnings

import pandas as pd
import torch
from pymatgen.core import Structure
from score_decoder import GemNetConfig, GemNetScore, fit_scale_factors
from xtal_graph import Crystal, collate, radius_graph_pbc, triplets


def load_inputs(path: str, count: int, seed: int, config: GemNetConfig) -> dict:
    frame = pd.read_feather(path).sample(n=count, random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        crystals = [Crystal.from_pymatgen(Structure.from_str(cif, fmt="cif")) for cif in frame["cif"]]
    batch = collate(crystals, dtype=torch.float32)
    graph = radius_graph_pbc(
        batch.frac_coords, batch.lattice, batch.num_atoms, config.cutoff, config.max_neighbors
    )
    trips = triplets(graph, batch.atom_types.shape[0])
    cond = torch.randn(batch.num_crystals, config.cond_dim, generator=torch.Generator().manual_seed(seed))
    return dict(atom_types=batch.atom_types, batch=batch.batch, graph=graph, triplets=trips, cond=cond)


def _scatter_triplet_forward(self, m, rbf3, cbf, layout):
    """TripletInteraction.forward with the sum over k done per triplet and ``index_add_``."""
    x = self.scale_rbf(self.dense_ba(m) * self.mlp_rbf(rbf3))
    x = self.down_projection(x)  # (E, trip)
    tri = self._triplets
    outer = cbf[tri.edge_ji, :, tri.slot].unsqueeze(-1) * x[tri.edge_kj].unsqueeze(1)  # (T, cbf, trip)
    agg = x.new_zeros(x.shape[0], *outer.shape[1:]).index_add_(0, tri.edge_ji, outer)
    x = self.bilinear(self.scale_cbf_sum(agg * self.sum_norm).flatten(1))
    x_ca = self.up_projection_ca(x)
    x_ac = layout.gather_reverse(self.up_projection_ac(x))
    return (x_ca + x_ac) * (1 / math.sqrt(2))


def make_scatter_variant(model: GemNetScore, inputs: dict) -> GemNetScore:
    """Same weights, triplet sums by scatter. ``cbf`` is still produced in slots; the slot of every
    triplet is recovered once so that only the aggregation differs."""
    trips = inputs["triplets"]
    counts = torch.bincount(trips.edge_ji, minlength=inputs["graph"].edge_index.shape[1])
    order = torch.argsort(trips.edge_ji, stable=True)
    rank = torch.empty_like(order)
    rank[order] = torch.arange(len(order)) - (torch.cumsum(counts, 0) - counts)[trips.edge_ji[order]]
    info = types.SimpleNamespace(edge_ji=trips.edge_ji, edge_kj=trips.edge_kj, slot=rank)
    for block in model.interaction_blocks:
        block.triplet._triplets = info
        block.triplet.forward = types.MethodType(_scatter_triplet_forward, block.triplet)
    return model


def step(model: torch.nn.Module, inputs: dict, autocast: bool = False):
    model.zero_grad(set_to_none=True)
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
        score = model(**inputs)
    score.float().pow(2).sum().backward()
    grads = {n.replace("._orig_mod", ""): p.grad.detach().clone() for n, p in model.named_parameters()}
    return score.detach().float(), grads


def alternate(fns: dict, warmup: int, repeats: int) -> tuple[dict, dict, dict]:
    """Time several variants with their iterations interleaved (the machine's load drifts).

    Returns the median seconds, the first-call seconds (compilation included) and the last output,
    each by variant name."""
    first, outputs = {}, {}
    for name, fn in fns.items():
        t0 = time.perf_counter()
        outputs[name] = fn()
        first[name] = time.perf_counter() - t0
        for _ in range(warmup - 1):
            fn()
    times = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            outputs[name] = fn()
            times[name].append(time.perf_counter() - t0)
    return {n: statistics.median(t) for n, t in times.items()}, first, outputs


def deviation(ref, other) -> tuple[float, float]:
    (s_ref, g_ref), (s, g) = ref, other
    score_err = float((s - s_ref).abs().max() / s_ref.abs().max())
    grad_err = max(
        float((g[n] - g_ref[n]).abs().max() / g_ref[n].abs().max().clamp_min(1e-30)) for n in g_ref
    )
    return score_err, grad_err


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", default="../shared/data/mp_20/val.feather")
    p.add_argument("--structures", type=int, default=128)
    p.add_argument("--scatter-structures", type=int, default=32)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--variants", default="eager,scatter,compile,bf16")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    variants = args.variants.split(",")
    config = GemNetConfig.cond_cdvae_4m()
    inputs = load_inputs(args.data, args.structures, args.seed, config)
    g, t = inputs["graph"], inputs["triplets"]
    print(f"torch {torch.__version__}, {platform.processor() or platform.machine()}, threads {args.threads}")
    print(
        f"{args.structures} MP-20 structures: {len(inputs['atom_types'])} atoms, "
        f"{g.edge_index.shape[1]} edges, {t.edge_kj.shape[0]} triplets; 4M decoder preset"
    )
    torch.manual_seed(args.seed)
    model = GemNetScore(config)
    fit_scale_factors(model, [inputs])
    print(f"parameters: {sum(q.numel() for q in model.parameters()):,}")
    fns = {"eager fp32": lambda: step(model, inputs)}
    if "bf16" in variants:
        fns["eager bf16 autocast"] = lambda: step(model, inputs, autocast=True)
    if "compile" in variants:
        compiled = GemNetScore(config)
        compiled.load_state_dict(model.state_dict())
        for blocks in (compiled.interaction_blocks, compiled.output_blocks):
            for i, block in enumerate(blocks):
                blocks[i] = torch.compile(block, dynamic=False)
        fns["compiled blocks"] = lambda: step(compiled, inputs)
    median, first, out = alternate(fns, max(args.warmup, 2), args.repeats)
    rows = [(n, args.structures, median[n], *deviation(out["eager fp32"], out[n])) for n in fns]
    if "compile" in variants:
        print(f"compiled blocks: first call (compilation included) {first['compiled blocks']:.0f} s")
    if "scatter" in variants:
        small = load_inputs(args.data, args.scatter_structures, args.seed, config)
        scatter = make_scatter_variant(GemNetScore(config), small)
        scatter.load_state_dict(model.state_dict())
        fns = {"eager fp32": lambda: step(model, small), "scatter triplet sum": lambda: step(scatter, small)}
        median, _, out = alternate(fns, args.warmup, args.repeats)
        rows += [(n, args.scatter_structures, median[n], *deviation(out["eager fp32"], out[n])) for n in fns]
    print("\n| variant | structures | fwd+bwd median (s) | max rel. score dev. | max rel. grad dev. |")
    print("|---|---|---|---|---|")
    for name, n, sec, s_err, g_err in rows:
        print(f"| {name} | {n} | {sec:.3f} | {s_err:.1e} | {g_err:.1e} |")


if __name__ == "__main__":
    main()
