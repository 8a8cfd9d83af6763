"""Does a checkpoint follow the requested pressure? A cheap probe for the training relay.

    python benchmarks/default_model/pressure_probe.py --checkpoints A B ... --out probe.json

For compositions of the CHGNet pressure set whose source structure is in the relay store's validation or
test part (so no checkpoint trained on them at any pressure), sample ``--num`` structures at each of
``--pressures`` (no relaxation) and compare the generated volume per atom with the set's CHGNet-relaxed
one: per checkpoint the mean relative volume change from the lowest to the highest pressure, generated
against the data, and the mean absolute volume error. Library: :mod:`xtal_tools.evaluation.pressure_response`.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np


def held_out_formulas(store: str, pressure_set: str, limit: int, max_atoms: int) -> list[str]:
    """Cell formulas of pressure-set compositions made from the store's validation or test structures."""
    from pymatgen.core import Element
    from xtal_data import CrystalStore

    base = CrystalStore.open(store)
    parts = base.split("random")
    held = {str(i) for p in ("val", "test") for i in base.ids[parts[p]]}
    src = CrystalStore.open(pressure_set)
    table, source = src.read(), src.get_property("source_id")
    out: dict[str, None] = {}
    offsets = table.offsets
    for i in range(len(table)):
        if str(source[i]) in held and table.num_atoms[i] <= max_atoms:
            counts: dict[int, int] = {}
            for z in table.atomic_numbers[offsets[i] : offsets[i + 1]]:
                counts[int(z)] = counts.get(int(z), 0) + 1
            out.setdefault("".join(f"{Element.from_Z(z).symbol}{n}" for z, n in counts.items()), None)
        if len(out) >= limit:
            break
    return list(out)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--checkpoints", nargs="+", required=True)
    ap.add_argument("--store", default="runs/default/all.zarr")
    ap.add_argument("--pressure-set", default="data/pressure/chgnet_mp20_small_6p.zarr")
    ap.add_argument("--pressures", default="0,25,50")
    ap.add_argument("--limit", type=int, default=8)
    ap.add_argument("--max-atoms", type=int, default=6)
    ap.add_argument("--num", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args(argv)

    from cond_vae.checkpoint import load_checkpoint
    from xtal_tools.evaluation.pressure_reference import reference_trend
    from xtal_tools.evaluation.pressure_response import PressureResponseSettings, run_pressure_response
    from xtal_tools.evaluation.samplers import ModelSampler

    pressures = tuple(float(p) for p in args.pressures.split(","))
    formulas = held_out_formulas(args.store, args.pressure_set, args.limit, args.max_atoms)
    reference = reference_trend(args.pressure_set, formulas=formulas, max_pressure=max(pressures))
    settings = PressureResponseSettings(pressures=pressures, num_per_target=args.num, seed=args.seed,
                                        fraction_pressures=())  # fmt: skip
    results = {}
    for ckpt in args.checkpoints:
        t0 = time.perf_counter()
        model = load_checkpoint(ckpt).eval()
        res = run_pressure_response(ModelSampler(model), formulas, settings, reference=reference)
        volume = res.volume_summary()
        change_gen, change_ref, error = [], [], []
        for v in volume.values():
            gen, ref_p, ref = v["generated_mean"], v["reference_GPa"], v["reference"]
            if None in gen or len(ref) < 2 or ref_p[0] != pressures[0] or ref_p[-1] != pressures[-1]:
                continue
            change_gen.append(gen[-1] / gen[0] - 1)
            change_ref.append(ref[-1] / ref[0] - 1)
            by_p = dict(zip(ref_p, ref, strict=True))
            error += [abs(g / by_p[p] - 1) for g, p in zip(gen, pressures, strict=True) if p in by_p]
        results[ckpt] = {
            "formulas": len(change_gen),
            "volume_change_generated": float(np.mean(change_gen)) if change_gen else None,
            "volume_change_data": float(np.mean(change_ref)) if change_ref else None,
            "mean_abs_volume_error": float(np.mean(error)) if error else None,
            "seconds": time.perf_counter() - t0,
            "per_formula": volume,
        }
        print(f"{ckpt}: volume change {pressures[0]:g}->{pressures[-1]:g} GPa generated "
              f"{results[ckpt]['volume_change_generated']}, data {results[ckpt]['volume_change_data']}; "
              f"mean |V/V_data - 1| {results[ckpt]['mean_abs_volume_error']}", flush=True)  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({
        "date": datetime.now(UTC).isoformat(timespec="seconds"), "machine": platform.platform(),
        "formulas": formulas, "pressures": pressures, "num": args.num, "seed": args.seed, "results": results,
    }, indent=1, default=str))  # fmt: skip


if __name__ == "__main__":
    main()
