"""The relay's training store with pressure: the three shared sets plus the CHGNet pressure set.

    python benchmarks/default_model/pressure_store.py runs/default/all.zarr \
        data/pressure/chgnet_mp20_small_6p.zarr runs/default/all_pressure.zarr --max-pressure 50

Copies every structure of BASE (the store of ``train_default.sh``: MP-20, Perov-5, Carbon-24 validation
files with split ``random``, seed 0), then appends the pressure set's converged relaxations at pressures up
to ``--max-pressure`` GPa (above 50 GPa CHGNet is too compressible to be trusted: docs/benchmarks/
pressure_data.md), except those made from a structure in BASE's validation or test part (they would leak
the held-out structures into training). Split ``random`` of OUT keeps BASE's validation and test parts
index for index, so validation losses and test scores stay comparable with earlier legs; the appended
structures join the training part (``--repeat K`` appends K copies of each, ids suffixed ``~2``..``~K``:
oversampling of a set that is a few percent of the data). Prints and records (split info) how many were
taken and skipped, by reason.
"""

from __future__ import annotations

import argparse
from collections import Counter

import numpy as np


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("base")
    ap.add_argument("pressure")
    ap.add_argument("out")
    ap.add_argument("--max-pressure", type=float, default=50.0)
    ap.add_argument("--split", default="random")
    ap.add_argument(
        "--repeat", type=int, default=1,
        help="append this many copies of every pressure-set structure (oversampling), ids suffixed ~k",
    )  # fmt: skip
    args = ap.parse_args(argv)
    if args.repeat < 1:
        ap.error(f"--repeat must be >= 1, got {args.repeat}")

    from xtal_data import CrystalArrays, CrystalStore

    base = CrystalStore.open(args.base)
    parts = base.split(args.split)
    held_out = {str(i) for p in ("val", "test") for i in base.ids[parts[p]]}
    core = base.read()
    out = CrystalStore.create(args.out)
    out.append(CrystalArrays(core.ids, core.formula, core.num_atoms, core.atomic_numbers, core.frac_coords,
                             core.lattice, core.pressure), on_duplicate="error")  # fmt: skip

    src = CrystalStore.open(args.pressure)
    table = src.read()
    source_ids = src.get_property("source_id")
    converged = src.get_property("converged")
    keep, skipped = [], Counter()
    for i in range(len(table)):
        if table.pressure[i] > args.max_pressure:
            skipped[f"pressure above {args.max_pressure:g} GPa"] += 1
        elif not (converged[i] == 1 or str(converged[i]).lower() == "true"):
            skipped["relaxation not converged"] += 1
        elif str(source_ids[i]) in held_out:
            skipped["made from a validation or test structure"] += 1
        else:
            keep.append(i)
    extra = table.take(keep)
    for k in range(1, args.repeat + 1):
        ids = extra.ids if k == 1 else np.asarray([f"{i}~{k}" for i in extra.ids])
        out.append(
            CrystalArrays(ids, extra.formula, extra.num_atoms, extra.atomic_numbers, extra.frac_coords,
                          extra.lattice, extra.pressure), on_duplicate="error")  # fmt: skip
    added = len(keep) * args.repeat
    new = np.arange(len(core), len(core) + added)
    values, counts = np.unique(extra.pressure, return_counts=True)
    info = {"base": args.base, "pressure_set": args.pressure, "max_pressure_GPa": args.max_pressure,
            "appended_to_train": len(keep), "repeat": args.repeat, "skipped": dict(skipped),
            "pressures": {f"{p:g}": int(n) for p, n in zip(values, counts, strict=True)}}  # fmt: skip
    train = np.concatenate([parts["train"], new])
    out.write_split(args.split, {"train": train, "val": parts["val"],
                                 "test": parts["test"]}, info=info)  # fmt: skip
    print(f"{args.out}: {len(core)} base structures + {len(keep)} from the pressure set x {args.repeat}")
    print(f"skipped: {dict(skipped)}; appended by pressure: {info['pressures']}")


if __name__ == "__main__":
    main()
