"""Benchmark: periodic radius graphs for batches of MP-20 structures, xtal_graph vs vesin and
pymatgen, same structures, same run, interleaved repeats.

    python benchmarks/xtal_graph/bench_radius_graph.py --batches 4 --repeats 7

CIFs are parsed once, outside the timing. Each timed pass covers every batch:
* xtal_graph: ``radius_graph_pbc`` on one collated batch of 128 (edges sorted, vectors, distances),
  float64 and float32 inputs, without and with ``max_neighbors=20``;
* vesin: ``NeighborList(cutoff, full_list=True).compute(..., quantities="ijSdD")`` per structure;
* pymatgen: ``Structure.get_neighbor_list(cutoff)`` per structure.
The references build full lists (neither has a nearest-k option), so the ``max_neighbors=20`` rows
are compared with their full-list times. Everything runs on one thread (torch.set_num_threads).
Before timing, the edge sets of xtal_graph and vesin are checked equal for every structure.

``--large`` instead times single large cells (k x k x k supercells of one MP-20 structure), where the
O(n^2) pair enumeration of xtal_graph is at its weakest.
"""

from __future__ import annotations

import argparse
import datetime
import platform
import statistics
import time
import warnings
from pathlib import Path

import numpy as np
import torch

DATA = Path(__file__).resolve().parents[3] / "shared" / "data" / "mp_20" / "val.feather"


def load(path: Path, count: int):
    import pandas as pd
    from pymatgen.core import Structure

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cifs = pd.read_feather(path).cif.iloc[:count]
        return [Structure.from_str(c, fmt="cif") for c in cifs]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--batches", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--cutoff", type=float, default=7.0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--large", action="store_true", help="time single large supercells instead")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.large:
        large_cells(args)
        return

    from vesin import NeighborList
    from xtal_graph import Crystal, collate, radius_graph_pbc

    structures = load(args.data, args.batch_size * args.batches)
    crystals = [Crystal.from_pymatgen(s) for s in structures]
    # the references get the same (wrapped) coordinates as we do
    structures = [c.to_pymatgen() for c in crystals]
    groups = [crystals[i : i + args.batch_size] for i in range(0, len(crystals), args.batch_size)]
    batches = {dt: [collate(g, dtype=dt) for g in groups] for dt in (torch.float64, torch.float32)}
    points = [(np.ascontiguousarray(c.cart_coords), np.ascontiguousarray(c.lattice)) for c in crystals]
    cutoff = args.cutoff
    vesin_nl = NeighborList(cutoff=cutoff, full_list=True)

    # correctness before speed: same edge sets as vesin, and how many a 27-image search would miss
    edges, beyond = 0, 0
    for crystal, (cart, box) in zip(crystals, points, strict=True):
        g = radius_graph_pbc(
            torch.as_tensor(np.array(crystal.frac_coords)),
            torch.as_tensor(np.array(crystal.lattice))[None],
            torch.tensor([crystal.num_atoms]),
            cutoff,
        )
        ours = {
            (int(i), int(j), *o)
            for (j, i), o in zip(g.edge_index.T.tolist(), g.cell_offsets.tolist(), strict=True)
        }
        i, j, s = vesin_nl.compute(points=cart, box=box, periodic=True, quantities="ijS")
        assert ours == {(int(a), int(b), *map(int, t)) for a, b, t in zip(i, j, s, strict=True)}, crystal.id
        edges += len(ours)
        beyond += int((g.cell_offsets.abs().amax(dim=1) > 1).sum())

    def ours(dtype, k):
        def run():
            for b in batches[dtype]:
                radius_graph_pbc(b.frac_coords, b.lattice, b.num_atoms, cutoff, k)

        return run

    def vesin_run():
        for cart, box in points:
            vesin_nl.compute(points=cart, box=box, periodic=True, quantities="ijSdD")

    def pymatgen_run():
        for s in structures:
            s.get_neighbor_list(cutoff)

    methods = {
        "xtal_graph float64": ours(torch.float64, None),
        "xtal_graph float32": ours(torch.float32, None),
        "xtal_graph float64, max_neighbors=20": ours(torch.float64, 20),
        "xtal_graph float32, max_neighbors=20": ours(torch.float32, 20),
        "vesin": vesin_run,
        "pymatgen get_neighbor_list": pymatgen_run,
    }
    for run in methods.values():  # warm-up
        run()
    times: dict[str, list[float]] = {name: [] for name in methods}
    for _ in range(args.repeats):
        for name, run in methods.items():
            start = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - start)

    n = len(crystals)
    per_structure = {name: statistics.median(t) / n * 1e3 for name, t in times.items()}
    fastest_ref = min(per_structure["vesin"], per_structure["pymatgen get_neighbor_list"])
    now = datetime.datetime.now(datetime.UTC)
    print(f"# {now:%Y-%m-%d %H:%M} UTC, {platform.machine()}, torch {torch.__version__}")
    print(
        f"# {n} MP-20 structures, batches of {args.batch_size}, cutoff {cutoff} A, {args.threads} thread(s)"
    )
    print(
        f"# median of {args.repeats} interleaved passes; {edges} edges ({beyond} beyond the 27 nearest cells)"
    )
    print("| method | ms / structure | fastest reference / this |")
    print("|---|---|---|")
    for name, value in per_structure.items():
        print(f"| {name} | {value:.4f} | {fastest_ref / value:.2f} |")


def large_cells(args) -> None:
    """Median time of one graph for k x k x k supercells of MP-20 structure 3, k = 2, 3, 4."""
    from vesin import NeighborList
    from xtal_graph import Crystal, collate, radius_graph_pbc

    base = load(args.data, 4)[3]
    print(f"# single cells, supercells of {base.composition.reduced_formula}, cutoff {args.cutoff} A")
    print("| atoms | edges | xtal_graph float64 ms | vesin ms | pymatgen ms |")
    print("|---|---|---|---|---|")
    for k in (2, 3, 4):
        structure = base.copy()
        structure.make_supercell([k, k, k])
        crystal = Crystal.from_pymatgen(structure)
        structure = crystal.to_pymatgen()
        b = collate([crystal], dtype=torch.float64)
        nl = NeighborList(cutoff=args.cutoff, full_list=True)
        cart, box = np.ascontiguousarray(crystal.cart_coords), np.ascontiguousarray(crystal.lattice)
        runs = {
            "ours": lambda b=b: radius_graph_pbc(b.frac_coords, b.lattice, b.num_atoms, args.cutoff),
            "vesin": lambda c=cart, x=box, n=nl: n.compute(
                points=c, box=x, periodic=True, quantities="ijSdD"
            ),
            "pymatgen": lambda s=structure: s.get_neighbor_list(args.cutoff),
        }
        times = {name: [] for name in runs}
        for _ in range(args.repeats):
            for name, run in runs.items():
                start = time.perf_counter()
                run()
                times[name].append(time.perf_counter() - start)
        edges = runs["ours"]().num_edges
        ms = {name: statistics.median(t) * 1e3 for name, t in times.items()}
        print(
            f"| {crystal.num_atoms} | {edges} | {ms['ours']:.1f} | {ms['vesin']:.1f} | {ms['pymatgen']:.1f} |"
        )


if __name__ == "__main__":
    main()
