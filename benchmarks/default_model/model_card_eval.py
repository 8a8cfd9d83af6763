"""Measure the numbers of a model card: reconstruction, CSP match@1/@20 and validity on an unseen split,
per source dataset, next to random-structure baselines (PyXtal and uniform P1) drawn in the same run and
the substitution baseline (the most alike training crystals with the target's elements).

    python benchmarks/default_model/model_card_eval.py --checkpoint CKPT --data all.zarr \
        --per-dataset 100 --num 20 --sampler langevin --steps-per-level 20 --out card-eval/

The sampler options are those of every tool (``--sampler``, ``--levels``, ``--steps-per-level``,
``--step-lr``, ``--corrector-steps``, ``--snr``, ``--final-denoise/--no-final-denoise``, ``--skin``,
``--batch-size``, ``--config FILE.toml`` with a ``[sampler]`` table), defaulting to
``SamplerConfig()``; the card's published
numbers used the reference's Langevin at 3 steps per level (``--sampler langevin --steps-per-level 3
--no-final-denoise``). ``results.json`` records the resolved ``sampler`` table.

Parts can run separately (``--parts baselines`` needs no trained model's time; ``--datasets`` splits the
work over processes) and be combined afterwards: ``--merge DIR1 DIR2 ... --out DIR``.

The store's test part is grouped by the id pattern of the three shared datasets (``mp-...`` MP-20,
``C-...`` Carbon-24, digits Perov-5); the first ``--per-dataset`` test crystals of each group are used.
Random baselines get each target's cell formula and volume (the information the model is given, plus the
true volume, which the model is not given: the baselines are favoured, not handicapped). The
substitution baseline (``xtal_eval.substitution``) takes its analogues from the store's training part
(``--split``), ranked by element likeness and pressure, and scales them to the true volume too.

Writes ``results.json`` (every number, timings, machine, command) and ``results.md`` (the card's tables).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

PRESETS = ("cdvae", "paper")
LATENT_CHOICES = ("auto", "standard", "fitted", "analogue")  # cond_vae.sampling._config.LATENTS
KS = (1, 20)


def dataset_of(material_id: str) -> str:
    if material_id.startswith(("mp-", "mvc-")):
        return "MP-20"
    if material_id.startswith("C-"):
        return "Carbon-24"
    if material_id.isdigit():
        return "Perov-5"
    raise ValueError(f"cannot tell the dataset of id {material_id!r}")


def csp_metrics(targets, groups, *, jobs: int) -> dict:
    from xtal_eval import Parallel, csp

    report = csp(targets, groups, presets=PRESETS, ks=KS, parallel=Parallel.from_jobs(jobs))
    out = {}
    for r in report.results:
        out[r.preset] = {
            **{f"match@{k}": r.match_rate(k) for k in r.ks},
            **{f"rmse@{k}": r.rmse(k) for k in r.ks},
            # per target: the 0-based index of the best matching sample among the first k, -1 for none
            **(
                {}
                if r.best_index is None
                else {f"best@{k}": r.best_index[:, i].tolist() for i, k in enumerate(r.ks)}
            ),
        }
    return out


def validity_of(groups, n_requested: int) -> dict:
    """Validity of every sample; a cell the sampler could not build counts as invalid."""
    from xtal_eval import validity

    made = [s for g in groups for s in g if s is not None]
    if not made:
        return {"struct_valid": 0.0, "comp_valid": 0.0, "valid": 0.0, "n": n_requested}
    v = validity(made)
    return {
        "struct_valid": float(np.sum(v.struct_valid)) / n_requested,
        "comp_valid": float(np.sum(v.comp_valid)) / n_requested,
        "valid": float(np.sum(v.valid)) / n_requested,
        "n": n_requested,
    }


def sample_model(model, dataset, *, num: int, seed: int, sampler):
    from xtal_tools.evaluation.split_eval import EvalSettings, sample_targets

    settings = EvalSettings(seed=seed, sampler=sampler)
    groups, failed, _ = sample_targets(model, dataset, settings, num)
    return groups, failed


def random_groups(targets, *, kind: str, num: int, seed: int):
    from xtal_eval.baselines import random_baseline

    pairs = [(s.composition.formula.replace(" ", ""), float(s.volume)) for s in targets]
    result = random_baseline(pairs, kind=kind, num_per_target=num, seed=seed)
    return result.structures, dict(result.failures)


def substitution_groups(targets, target_pressures, references, reference_pressures, *, num: int):
    """The substitution baseline (``xtal_eval.substitution``): the ``num`` most alike training crystals
    of each target's anonymous formula, with its elements, at its volume."""
    from xtal_eval.substitution import substitution_baseline

    pairs = [(s.composition.formula.replace(" ", ""), float(s.volume)) for s in targets]
    result = substitution_baseline(
        pairs, references, num_per_target=num, target_pressures=target_pressures,
        reference_pressures=reference_pressures,
    )  # fmt: skip
    return result.structures, dict(result.failures)


def training_references(store, split: str, names) -> tuple[list, list[float] | None]:
    """The training part's structures (pymatgen) and pressures (GPa; None without a pressure condition)."""
    from xtal_data.torch_dataset import CrystalDataset

    ds = CrystalDataset(store, indices=[int(i) for i in store.split(split)["train"]], properties=names)
    pressures = [float(p) for p in ds.properties["pressure"]] if "pressure" in names else None
    return [ds.crystal(i).to_pymatgen() for i in range(len(ds))], pressures


def recon_metrics(model, dataset, *, seed: int, sampler, jobs: int, out: Path) -> dict:
    from xtal_tools.evaluation.split_eval import EvalSettings, evaluate_recon

    settings = EvalSettings(seed=seed, sampler=sampler, presets=PRESETS, jobs=jobs)
    out.mkdir(parents=True, exist_ok=True)
    res = evaluate_recon(model, dataset, settings, out)
    return {
        m["preset"]: {"match": m["match_rate"], "rmse": m["mean_rmsd"]}
        for m in res.summary["metrics"]
        if m["gate"] == "none"
    }


def add_sampler_arguments(ap: argparse.ArgumentParser) -> None:
    """The tools' sampler options (None: not given; resolved by ``xtal_tools.config.resolve``)."""
    g = ap.add_argument_group("sampler (default: cond_vae.SamplerConfig())")
    g.add_argument("--sampler", dest="sampler_method", choices=("pc", "langevin", "ode"))
    g.add_argument("--levels", type=int, help="noise levels visited (0: all)")
    g.add_argument("--steps-per-level", type=int, help="langevin: steps on each level")
    g.add_argument("--step-lr", type=float, help="langevin: step-size constant")
    g.add_argument("--corrector-steps", type=int, help="pc: corrector steps on each level")
    g.add_argument("--snr", type=float, help="pc: corrector signal-to-noise ratio")
    g.add_argument("--final-denoise", action=argparse.BooleanOptionalAction, default=None)
    g.add_argument("--skin", type=float, help="neighbour-list skin (Å)")
    g.add_argument("--batch-size", type=int, help="structures per decoder call")
    g.add_argument("--cell-volume", choices=("auto", "model", "prior"), help="size of the proposed cells")
    g.add_argument("--latent", choices=LATENT_CHOICES, help="where latents are drawn")
    g.add_argument("--latent-scale", type=float, help="spread around the chosen training code (0-1)")
    g.add_argument("--reassign-species", action=argparse.BooleanOptionalAction, default=None)
    g.add_argument("--config", type=Path, help="TOML file with a [sampler] table (a run.toml works)")


def resolve_sampler(args: argparse.Namespace):
    """One ``SamplerConfig``: the flags over the ``[sampler]`` table of ``--config`` over the defaults."""
    from cond_vae import SamplerConfig
    from xtal_tools.config import read_table

    names = (
        "levels",
        "steps_per_level",
        "step_lr",
        "corrector_steps",
        "snr",
        "final_denoise",
        "skin",
        "batch_size",
        "cell_volume",
        "latent",
        "latent_scale",
        "reassign_species",
    )
    flags = {"method": args.sampler_method, **{k: getattr(args, k) for k in names}}
    if flags["levels"] == 0:
        flags["levels"] = None
    return read_table(SamplerConfig, "sampler", args.config, flags)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--checkpoint", required=True, type=Path)
    ap.add_argument("--data", required=True)
    ap.add_argument("--split", default="random")
    ap.add_argument("--part", default="test")
    ap.add_argument("--per-dataset", type=int, default=100)
    ap.add_argument("--num", type=int, default=20)
    add_sampler_arguments(ap)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--datasets", default="Perov-5,Carbon-24,MP-20")
    ap.add_argument("--parts", default="recon,model,baselines", help="any of recon, model, baselines")
    ap.add_argument("--merge", nargs="+", type=Path, help="combine the results.json of these folders")
    ap.add_argument("--out", required=True, type=Path)
    args = ap.parse_args(argv)
    if args.merge:
        merge(args.merge, args.out)
        return
    parts = set(args.parts.split(","))
    sampler = resolve_sampler(args)

    import torch
    from cond_vae.checkpoint import load_checkpoint
    from xtal_data import CrystalStore
    from xtal_data.torch_dataset import CrystalDataset

    t_start = time.perf_counter()
    args.out.mkdir(parents=True, exist_ok=True)
    model = load_checkpoint(args.checkpoint, map_location="cpu")
    store = CrystalStore.open(args.data)
    test = np.asarray(store.split(args.split)[args.part])
    ids = store.ids
    by_set: dict[str, list[int]] = {}
    for i in test:
        by_set.setdefault(dataset_of(str(ids[i])), []).append(int(i))

    results: dict = {
        "command": " ".join([Path(sys.argv[0]).name, *(argv if argv is not None else sys.argv[1:])]),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"platform": platform.platform(), "cpus": __import__("os").cpu_count(),
                    "torch": torch.__version__, "threads": torch.get_num_threads()},
        "settings": {k: str(v) for k, v in vars(args).items()},
        "sampler": sampler.to_dict(),
        "decoder_calls_per_structure": sampler.decoder_calls(len(model.sigmas)),
        "datasets": {},
    }  # fmt: skip
    references = None  # the training part, read once when the substitution baseline needs it
    for name in args.datasets.split(","):
        idx = by_set.get(name, [])[: args.per_dataset]
        if not idx:
            continue
        ds = CrystalDataset(store, indices=idx, properties=model.config.condition_names)
        targets = [ds.crystal(i).to_pymatgen() for i in range(len(ds))]
        entry: dict = {"n_targets": len(idx), "n_test_total": len(by_set[name])}
        if "recon" in parts:
            t0 = time.perf_counter()
            entry["recon"] = recon_metrics(
                model, ds, seed=args.seed, sampler=sampler, jobs=args.jobs, out=args.out / name / "recon",
            )  # fmt: skip
            entry["recon_seconds"] = time.perf_counter() - t0
        if "model" in parts:
            t0 = time.perf_counter()
            groups, failed = sample_model(model, ds, num=args.num, seed=args.seed, sampler=sampler)
            entry["sample_seconds"] = time.perf_counter() - t0
            t0 = time.perf_counter()
            entry["model"] = {
                "csp": csp_metrics(targets, groups, jobs=args.jobs),
                "validity": validity_of(groups, len(idx) * args.num),
                "invalid_cells": failed,
            }
            entry["match_seconds"] = time.perf_counter() - t0
        for kind in ("pyxtal", "uniform", "substitution") if "baselines" in parts else ():
            t0 = time.perf_counter()
            if kind == "substitution":
                if references is None:
                    references = training_references(store, args.split, model.config.condition_names)
                pressures = [float(p) for p in ds.properties["pressure"]] if references[1] else None
                rgroups, rfailed = substitution_groups(targets, pressures, *references, num=args.num)
            else:
                rgroups, rfailed = random_groups(targets, kind=kind, num=args.num, seed=args.seed)
            entry[kind] = {
                "csp": csp_metrics(targets, rgroups, jobs=args.jobs),
                "failures": rfailed,
                "seconds": time.perf_counter() - t0,
            }
        results["datasets"][name] = entry
        brief = {k: entry[k]["csp"] for k in ("model", "pyxtal", "uniform", "substitution") if k in entry}
        print(name, json.dumps(brief, default=str), flush=True)
        (args.out / "results.json").write_text(json.dumps(results, indent=2, default=str))
    results["wall_seconds"] = time.perf_counter() - t_start
    tmp = args.out / "results.json.tmp"
    tmp.write_text(json.dumps(results, indent=2, default=str))
    tmp.replace(args.out / "results.json")
    (args.out / "results.md").write_text(markdown(results))
    print(markdown(results))


def merge(folders: list[Path], out: Path) -> None:
    """One results.json/.md from runs that each did some datasets or parts (same targets and seed)."""
    runs = [json.loads((f / "results.json").read_text()) for f in folders]
    keys = ("per_dataset", "num", "seed", "split", "part", "data")
    for r in runs[1:]:
        for k in keys:
            if r["settings"][k] != runs[0]["settings"][k]:
                raise ValueError(
                    f"cannot merge: setting {k!r} differs ({r['settings'][k]} vs {runs[0]['settings'][k]})"
                )
    merged = {"runs": runs, "datasets": {}}
    for r in runs:
        for name, entry in r["datasets"].items():
            merged["datasets"].setdefault(name, {}).update(entry)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(merged, indent=2, default=str))
    (out / "results.md").write_text(markdown(merged))
    print(markdown(merged))


def _pct(x, n: int | None = None) -> str:
    if x is None:
        return "n/a"
    return f"{100 * x:.1f}" if n is None else f"{100 * x:.1f} ({round(x * n)}/{n})"


def _rmse(x) -> str:
    return "n/a" if x is None or x != x else f"{x:.3f}"


def markdown(results: dict) -> str:
    lines = [
        "| dataset | method | cdvae @1 | cdvae @20 | paper @1 | paper @20 | RMSE cdvae @1 / @20 |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, e in results["datasets"].items():
        for method in (m for m in ("model", "pyxtal", "uniform", "substitution") if m in e):
            c, n = e[method]["csp"], e["n_targets"]
            lines.append(
                f"| {name} | {method} | {_pct(c['cdvae']['match@1'], n)} | "
                f"{_pct(c['cdvae']['match@20'], n)} | "
                f"{_pct(c['paper']['match@1'], n)} | {_pct(c['paper']['match@20'], n)} | "
                f"{_rmse(c['cdvae']['rmse@1'])} / {_rmse(c['cdvae']['rmse@20'])} |"
            )
    lines += ["", "| dataset | recon cdvae (match / RMSE) | recon paper | validity struct / comp / both |",
              "|---|---|---|---|"]  # fmt: skip
    for name, e in results["datasets"].items():
        r = e.get("recon", {})
        v = e.get("model", {}).get("validity", {"struct_valid": None, "comp_valid": None, "valid": None})
        rc, rp, n = r.get("cdvae", {}), r.get("paper", {}), e["n_targets"]
        lines.append(
            f"| {name} | {_pct(rc.get('match'), n)} / {_rmse(rc.get('rmse'))} | "
            f"{_pct(rp.get('match'), n)} / {_rmse(rp.get('rmse'))} | "
            f"{_pct(v['struct_valid'])} / {_pct(v['comp_valid'])} / {_pct(v['valid'])} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
