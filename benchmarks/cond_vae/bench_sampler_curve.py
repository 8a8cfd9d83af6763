"""Match rate against decoder calls per structure, for every sampler of ``cond_vae.sampling``.

Samples ``--num`` structures for each of the first ``--per-dataset`` test crystals of each shared
dataset (the store's seed-0 split, never used for model selection), for a grid of sampler settings
from 25 to 1,000 decoder calls, with the predicted lattice and with the true lattice given (which
separates lattice error from coordinate error), plus the reference's 5,000-call setting on the first
``--reference-per-dataset`` targets. Matching (xtal-eval, presets cdvae and paper, match@1 / @20,
RMSE, structural validity) runs in ``--jobs`` processes while the next setting samples. Settings that
would not finish inside ``--budget-s`` are skipped and listed. Writes ``rows.csv`` and ``summary.json``.

    python benchmarks/cond_vae/bench_sampler_curve.py --checkpoint tools/src/xtal_tools/models/default \\
        --data runs/default/all.zarr --per-dataset 15 --num 20 --device cuda --jobs 14 --out curve/
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import platform
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

# the test part is grouped by dataset as the model-card evaluation groups it (one id-pattern rule)
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "default_model"))
from model_card_eval import dataset_of  # noqa: E402

PRESETS = ("cdvae", "paper")
KS = (1, 20)
DATASETS = ("MP-20", "Perov-5", "Carbon-24")


def grid(name: str) -> list[tuple[str, dict]]:
    """(label, SamplerConfig fields), most informative first (the budget may cut the tail)."""
    pc = {"method": "pc", "corrector_steps": 1, "snr": 0.1}
    full = [
        ("pc-50", {**pc, "levels": 50}),
        ("langevin-50x1", {"method": "langevin", "levels": 50, "steps_per_level": 1}),
        ("pc-25", {**pc, "levels": 25}),
        ("ode-50", {"method": "ode", "levels": 50}),
        ("pc-125", {**pc, "levels": 125}),
        ("langevin-50x5", {"method": "langevin", "levels": 50, "steps_per_level": 5}),
        ("ancestral-50", {"method": "pc", "levels": 50, "corrector_steps": 0}),
        ("pc-50-snr0.2", {**pc, "levels": 50, "snr": 0.2}),
        ("ode-125", {"method": "ode", "levels": 125}),
        ("pc-13", {**pc, "levels": 13}),
        ("ode-25", {"method": "ode", "levels": 25}),
        ("langevin-50x2", {"method": "langevin", "levels": 50, "steps_per_level": 2}),
        ("pc-250", {**pc, "levels": 250}),
        ("langevin-50x10", {"method": "langevin", "levels": 50, "steps_per_level": 10}),
        ("pc-500", {**pc, "levels": 500}),
        ("langevin-50x20", {"method": "langevin", "levels": 50, "steps_per_level": 20}),
    ]
    true_lattice = ["pc-50", "pc-125", "langevin-50x5", "ode-50"]
    if name == "candidates":  # a second model at the settings that matter most
        full = [row for row in full if row[0] in ("pc-50", "pc-125", "langevin-50x5", "ode-50", "pc-250")]
        true_lattice = []
    if name == "smoke":
        full = [("pc-5", {**pc, "levels": 5}), ("ode-5", {"method": "ode", "levels": 5})]
        true_lattice = ["pc-5"]
    rows = [(label, cfg, False) for label, cfg in full]
    rows += [(label, cfg, True) for label, cfg in full if label in true_lattice]
    return rows


def match_task(task: tuple) -> dict:
    """One target against its samples (a worker process; xtal-eval only, no torch)."""
    from xtal_eval import csp
    from xtal_eval.validity import structure_valid

    target, samples = task
    report = csp([target], [samples], presets=PRESETS, ks=KS)
    out = {}
    for r in report.results:
        for k in KS:
            rms = float(r.best_rms[0, r.ks.index(k)])
            out[f"{r.preset}@{k}"] = rms if math.isfinite(rms) else None
    out["valid"] = sum(s is not None and structure_valid(s) for s in samples)
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--checkpoint", required=True)
    ap.add_argument("--data", required=True)
    ap.add_argument("--split", default="random")
    ap.add_argument("--part", default="test")
    ap.add_argument("--per-dataset", type=int, default=15)
    ap.add_argument("--reference-per-dataset", type=int, default=4)
    ap.add_argument("--num", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--grid", default="full", choices=("full", "candidates", "smoke"))
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--budget-s", type=float, default=300.0, help="stop starting new settings after this")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args(argv)
    t_start = time.perf_counter()
    args.out.mkdir(parents=True, exist_ok=True)
    import multiprocessing as mp

    pool = ProcessPoolExecutor(args.jobs, mp_context=mp.get_context("spawn"))  # before CUDA starts
    import torch
    from cond_vae.checkpoint import load_checkpoint
    from cond_vae.sampling import SamplerConfig, make_requests, sample_requests
    from xtal_data import CrystalStore
    from xtal_data.torch_dataset import CrystalDataset

    model = load_checkpoint(args.checkpoint, map_location=args.device).eval()
    store = CrystalStore.open(args.data)
    test = np.asarray(store.split(args.split)[args.part])
    ids = store.ids
    by_set: dict[str, list[int]] = {}
    for i in test:
        by_set.setdefault(dataset_of(str(ids[i])), []).append(int(i))
    targets, names, lattices = [], [], []
    for name in DATASETS:
        ds = CrystalDataset(
            store, indices=by_set[name][: args.per_dataset], properties=model.config.condition_names
        )
        for i in range(len(ds)):
            crystal = ds.crystal(i)
            targets.append((crystal.to_pymatgen(), crystal))
            names.append(name)
            lattices.append(crystal.lattice)
    formulas = ["".join(f"{s}{n}" for s, n in _counts(c.atom_types)) for _, c in targets]
    pressures = [float(c.properties["pressure"]) for _, c in targets]
    pending, timings, skipped = [], {}, []
    per_call = None  # seconds per decoder call of the whole batch, measured as we go

    def run(label: str, fields: dict, true_lattice: bool, rows: list[int]) -> None:
        nonlocal per_call
        sampler = SamplerConfig(**fields, batch_size=len(rows) * args.num)
        calls = sampler.decoder_calls(len(model.sigmas))
        key = label + (" [true lattice]" if true_lattice else "")
        elapsed = time.perf_counter() - t_start
        scale = len(rows) / len(targets)
        if per_call is not None and elapsed + calls * per_call * max(scale, 0.5) > args.budget_s:
            skipped.append(key)
            return
        requests = make_requests(
            model, [formulas[r] for r in rows], [pressures[r] for r in rows],
            lattices=[lattices[r] for r in rows] if true_lattice else None,
        )  # fmt: skip
        _sync(args.device)
        t0 = time.perf_counter()
        samples = sample_requests(model, requests, num_per_row=args.num, seed=args.seed, sampler=sampler)
        _sync(args.device)
        seconds = time.perf_counter() - t0
        if scale == 1.0:
            per_call = seconds / calls
        timings[key] = {"seconds": seconds, "structures": len(samples), "decoder_calls": calls}
        print(f"{key}: {calls} calls, {len(samples)} structures in {seconds:.1f} s", flush=True)
        for j, r in enumerate(rows):
            group = [s.to_pymatgen() if s.valid else None for s in samples[j * args.num : (j + 1) * args.num]]
            fut = pool.submit(match_task, (targets[r][0], group))
            pending.append((key, label, fields, true_lattice, names[r], fut, calls))

    everyone = list(range(len(targets)))
    settings = grid(args.grid)
    for n, (label, fields, true_lattice) in enumerate(settings):
        run(label, fields, true_lattice, everyone)
        if n == 1 and args.reference_per_dataset > 0:  # early, so that the budget never skips it
            first = [
                j
                for name in DATASETS
                for j in [i for i in everyone if names[i] == name][: args.reference_per_dataset]
            ]
            ref = SamplerConfig.reference().to_dict()
            ref.pop("batch_size")
            run("reference-50x100", ref, False, first)
            for lab, flds, _ in settings[:2]:  # the same targets at two candidates, like for like
                run(lab + " (reference targets)", flds, False, first)
    deadline = time.perf_counter() + max(60.0, args.budget_s * 0.25)
    results: dict[tuple, list[dict]] = {}
    meta: dict[tuple, tuple] = {}
    unfinished = 0
    for key, label, fields, tl, name, fut, calls in pending:
        try:
            res = fut.result(timeout=max(1.0, deadline - time.perf_counter()))
        except Exception as err:  # noqa: BLE001 - a timeout or a worker error: counted, reported
            unfinished += 1
            res = {"error": type(err).__name__}
        results.setdefault((key, name), []).append(res)
        meta[(key, name)] = (label, fields, tl, calls)
    pool.shutdown(wait=False, cancel_futures=True)
    table = []
    for (key, name), res in results.items():
        label, fields, tl, calls = meta[(key, name)]
        ok = [r for r in res if "error" not in r]
        row = {
            "setting": label, "true_lattice": tl, "dataset": name, "decoder_calls": calls,
            "method": fields.get("method"), "levels": fields.get("levels"),
            "steps_per_level": fields.get("steps_per_level", ""),
            "corrector_steps": fields.get("corrector_steps", ""),
            "snr": fields.get("snr", ""), "n_targets": len(ok), "n_unfinished": len(res) - len(ok),
            "samples_per_target": args.num,
        }  # fmt: skip
        for p in PRESETS:
            for k in KS:
                vals = [r[f"{p}@{k}"] for r in ok]
                hits = [v for v in vals if v is not None]
                row[f"match@{k}_{p}"] = len(hits) / len(ok) if ok else None
                row[f"rmse@{k}_{p}"] = float(np.mean(hits)) if hits else None
        row["struct_valid"] = sum(r["valid"] for r in ok) / (len(ok) * args.num) if ok else None
        t = timings[key]
        row["structures_per_s"] = t["structures"] / t["seconds"]
        table.append(row)
    with (args.out / "rows.csv").open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(table[0]))
        w.writeheader()
        w.writerows(table)
    summary = {
        "command": " ".join([Path(sys.argv[0]).name, *(argv if argv is not None else sys.argv[1:])]),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "platform": platform.platform(),
            "torch": torch.__version__,
            "device": args.device,
            "gpu": torch.cuda.get_device_name() if args.device.startswith("cuda") else None,
        },  # fmt: skip
        "targets_per_dataset": {n: names.count(n) for n in DATASETS},
        "timings": timings,
        "skipped_for_budget": skipped,
        "unfinished_matches": unfinished,
        "seconds": time.perf_counter() - t_start,
    }
    (args.out / "summary.json").write_text(json.dumps(summary, indent=1))
    print(json.dumps({k: summary[k] for k in ("skipped_for_budget", "unfinished_matches", "seconds")}))


def _counts(atom_types) -> list[tuple[str, int]]:
    from pymatgen.core import Element

    seen: dict[int, int] = {}
    for z in atom_types.tolist():
        seen[z] = seen.get(z, 0) + 1
    return [(Element.from_Z(z).symbol, n) for z, n in seen.items()]


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize()


if __name__ == "__main__":
    main()
