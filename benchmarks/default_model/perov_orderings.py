"""Perov-5 holds both cation orderings of nearly every composition: what that does to match@1.

Perov-5 (Castelli et al. 2012, 18,928 cubic-perovskite cells of 5 atoms; CDVAE, arXiv 2110.06197 §5)
was computed for every pair of cations in both orderings: A on the cuboctahedral site and B in the
octahedron, and the reverse, as two materials with the same composition. A CSP request (composition
and pressure) cannot say which of the two a test target is, so no model that is given only the request
can pick a target's ordering better than chance, and a first sample with the right framework matches
about half the time. Two measurements:

1. **The data** (the shared Perov-5 validation split, read directly): compositions that occur as two
   structures, whether the two match each other (cdvae matcher), share a framework (pymatgen's
   ``FrameworkComparator``), and whether one is the other with its two cations exchanged. With a random
   subsample of ``f = n / 18,928`` structures, a composition present in both orderings in the whole set
   has both in the subsample with probability ``f^2``, so ``pairs / f^2`` estimates how many of the whole
   set's compositions come in both orderings.
2. **The model** (the model card's targets: the first ``--per-dataset`` Perov-5 crystals of the store's
   test part, one sample each, the default sampler or ``--reassign-species``): the share of first samples
   that match the target, the target with its two cations exchanged, either, and the target's
   framework, each with the cdvae matcher in the card's argument order (``get_rms_dist(sample,
   target)``); and, for targets whose composition occurs again anywhere in the store (its twin: the
   other ordering, computed for its own cell), the share that match the twin. Also how many targets have
   their twin in the store's training part.

    python benchmarks/default_model/perov_orderings.py --checkpoint tools/src/xtal_tools/models/default \\
        --data runs/default/all.zarr --per-dataset 375 --out runs/perov_orderings
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

PEROV5_SIZE = 18_928  # CDVAE (arXiv 2110.06197) §5
ANIONS = frozenset({"O", "N", "F", "S"})  # Perov-5's X sites
ROOT = Path(__file__).resolve().parents[2]
SHARED = Path(os.environ.get("XTAL_SHARED_DATA", ROOT.parent / "shared" / "data")) / "perov_5" / "val.csv"


def swapped(structure):
    """The structure with its two cations (the non-anion elements, one atom each) exchanged; None when
    there are not exactly two of them."""
    cations = [el for el in structure.composition.elements if el.symbol not in ANIONS]
    if len(cations) != 2 or any(structure.composition[c] != 1 for c in cations):
        return None
    a, b = (c.symbol for c in cations)
    out = structure.copy()
    out.replace_species({a: b, b: a})
    return out


def data_pairs(path: Path, matcher, framework) -> dict:
    """Part 1 of the module docstring, on the Perov-5 split at ``path``."""
    import pandas as pd
    from pymatgen.core import Composition, Structure

    table = pd.read_csv(path)
    by_formula: dict[str, list[int]] = defaultdict(list)
    for i, f in enumerate(table["formula"]):
        by_formula[Composition(f).reduced_formula].append(i)
    pairs = [v for v in by_formula.values() if len(v) == 2]
    counts = {"match": 0, "framework": 0, "cation_swap": 0}
    for a, b in pairs:
        sa, sb = (Structure.from_str(table["cif"][i], fmt="cif") for i in (a, b))
        counts["match"] += matcher.get_rms_dist(sa, sb) is not None
        counts["framework"] += framework.get_rms_dist(sa, sb) is not None
        sw = swapped(sa)
        counts["cation_swap"] += sw is not None and matcher.get_rms_dist(sw, sb) is not None
    f = len(table) / PEROV5_SIZE
    estimate = len(pairs) / f**2
    return {
        "structures": len(table),
        "compositions": len(by_formula),
        "compositions_with_more": {str(k): sum(len(v) == k for v in by_formula.values()) for k in (2, 3, 4)},
        "pairs": counts | {"of": len(pairs)},
        "sampling_fraction": f,
        "estimated_paired_compositions_in_full_set": estimate,
        "estimated_share_of_full_set_in_pairs": 2 * estimate / PEROV5_SIZE,
    }


def main(argv: list[str] | None = None) -> None:
    from model_card_eval import add_sampler_arguments, dataset_of, resolve_sampler

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--checkpoint", required=True, type=Path)
    ap.add_argument("--data", required=True, help="the model card's store (runs/default/all.zarr)")
    ap.add_argument("--split", default="random")
    ap.add_argument("--per-dataset", type=int, default=375, help="the first N Perov-5 test crystals")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--shared", type=Path, default=SHARED, help="the Perov-5 split for part 1")
    add_sampler_arguments(ap)
    args = ap.parse_args(argv)
    sampler = resolve_sampler(args)

    import torch
    from cond_vae.checkpoint import load_checkpoint
    from pymatgen.analysis.structure_matcher import FrameworkComparator, StructureMatcher
    from xtal_data import CrystalStore
    from xtal_data.torch_dataset import CrystalDataset
    from xtal_eval.presets import PRESETS
    from xtal_tools.evaluation.split_eval import EvalSettings, sample_targets

    cdvae = PRESETS["cdvae"]
    matcher = cdvae.matcher()
    framework = StructureMatcher(
        ltol=cdvae.ltol, stol=cdvae.stol, angle_tol=cdvae.angle_tol, comparator=FrameworkComparator()
    )  # the same tolerances, species ignored
    results: dict = {
        "command": " ".join(["perov_orderings.py", *(argv if argv is not None else sys.argv[1:])]),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "sampler": sampler.to_dict(),
    }
    if args.shared.exists():
        results["data"] = data_pairs(args.shared, matcher, framework)
        print("data", json.dumps(results["data"]), flush=True)
    else:
        print(f"part 1 skipped: {args.shared} not found", flush=True)

    model = load_checkpoint(args.checkpoint, map_location="cpu")
    store = CrystalStore.open(args.data)
    ids, parts = store.ids, store.split(args.split)
    perov = {k: [int(i) for i in parts[k] if dataset_of(str(ids[i])) == "Perov-5"] for k in parts}
    test = perov["test"][: args.per_dataset]
    ds = CrystalDataset(store, indices=test, properties=model.config.condition_names)
    targets = [ds.crystal(i).to_pymatgen() for i in range(len(ds))]
    every = sorted(i for part in perov.values() for i in part)
    everything = CrystalDataset(store, indices=every)
    by_formula: dict[str, list[tuple[int, object]]] = defaultdict(list)  # formula -> (store index, structure)
    for j in range(len(everything)):
        s = everything.crystal(j).to_pymatgen()
        by_formula[s.composition.reduced_formula].append((every[j], s))
    in_train = set(perov["train"])

    t0 = time.perf_counter()
    groups, failed, _ = sample_targets(model, ds, EvalSettings(seed=args.seed, sampler=sampler), 1)
    seconds = time.perf_counter() - t0
    rows = []
    for index, target, group in zip(test, targets, groups, strict=True):
        s, sw = group[0], swapped(target)
        hit = s is not None and matcher.get_rms_dist(s, target) is not None
        hit_sw = s is not None and sw is not None and matcher.get_rms_dist(s, sw) is not None
        frame = s is not None and framework.get_rms_dist(s, target) is not None
        twins = [(j, t) for j, t in by_formula[target.composition.reduced_formula] if j != index]
        hit_twin = s is not None and any(matcher.get_rms_dist(s, t) is not None for _, t in twins)
        rows.append({
            "target": hit, "swapped": hit_sw, "framework": frame, "has_twin": bool(twins),
            "twin": hit_twin, "twin_in_train": any(j in in_train for j, _ in twins),
        })  # fmt: skip
    n = len(rows)
    keys = ("target", "swapped", "framework", "has_twin", "twin_in_train")
    count = {k: sum(r[k] for r in rows) for k in keys}
    count["either"] = sum(r["target"] or r["swapped"] for r in rows)
    with_twin = [r for r in rows if r["has_twin"]]
    count["with_twin"] = {k: sum(r[k] for r in with_twin) for k in ("target", "twin", "swapped")}
    count["with_twin"]["target_or_twin"] = sum(r["target"] or r["twin"] for r in with_twin)
    count["twin_in_train_target"] = sum(r["target"] for r in rows if r["twin_in_train"])
    results["model"] = {
        "checkpoint": str(args.checkpoint), "targets": n, "first_sample": count, "invalid_cells": failed,
        "sample_seconds": seconds, "rows": rows,
    }  # fmt: skip
    print("model", json.dumps(count), f"of {n}; {seconds:.0f} s", flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(results, indent=2, default=str))


if __name__ == "__main__":
    main()
