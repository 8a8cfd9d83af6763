"""``tools/benchmark``: the paper's evaluations as reproducible benchmarks, small on a CPU or full on GPUs.

    tools/benchmark recon       -k CKPT --data STORE --limit 50 -o OUT            # Table II
    tools/benchmark success     -k CKPT --data STORE --limit 20 --num 20 -o OUT   # Fig. 3
    tools/benchmark success     -k CKPT --targets targets.csv --num 800 --calculator chgnet -o OUT
    tools/benchmark known-phase -k CKPT --targets targets.csv --runs 5 --budget 1000 -o OUT  # Table IV

Targets are a store split part (``--data``, ``--split``, ``--part``, ``--limit``) or a CSV with columns
``cif`` (path, relative to the CSV) and ``pressure`` (GPa), optionally ``id``. Each command writes
``summary.json`` (results, wall time, structures per second, settings, versions, machine),
``rows.csv`` (one row per target), PNG plots where there is a curve, and ``run.toml``. The same
command runs at full scale with bigger numbers (``--limit``, ``--num``, ``--budget``) on a GPU.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from xtal_tools._cli import EXPECTED_ERRORS, fail, quiet_known_warnings, recorded, resolve_device
from xtal_tools._options import (
    BatchSizeOption,
    CorrectorStepsOption,
    DataOption,
    DeviceOption,
    FinalDenoiseOption,
    LevelsOption,
    OutOption,
    SamplerConfigOption,
    SamplerMethodOption,
    SeedOption,
    SkinOption,
    SnrOption,
    StepLrOption,
    StepsPerLevelOption,
)

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__.split("\n\n")[0])

_T, _S, _R = "Targets", "Sampler", "Relaxation"
Checkpoint = Annotated[Path, typer.Option("--checkpoint", "-k", help="Checkpoint directory.")]
Split = Annotated[str, typer.Option(help="Split stored in the data store.", rich_help_panel=_T)]
Part = Annotated[str, typer.Option(help="Part of the split.", rich_help_panel=_T)]
Limit = Annotated[
    int | None, typer.Option(help="Only the first N structures of the part.", min=1, rich_help_panel=_T)
]
Targets = Annotated[
    Path | None,
    typer.Option(help="CSV with columns cif (path), pressure (GPa) and optionally id.", rich_help_panel=_T),
]
Cell = Annotated[
    str, typer.Option(help="Target cell to sample: given, primitive or conventional.", rich_help_panel=_T)
]
Jobs = Annotated[int, typer.Option(help="Processes for structure matching.", min=1)]
Overwrite = Annotated[bool, typer.Option(help="Allow a non-empty output directory.")]
Calculator = Annotated[
    str | None,
    typer.Option(help="ASE calculator for relaxation: chgnet, emt or module:factory.", rich_help_panel=_R),
]
CalculatorArgs = Annotated[
    str | None, typer.Option(help="JSON object of keyword arguments for the calculator.", rich_help_panel=_R)
]
Relax = Annotated[
    bool | None,
    typer.Option(
        "--relax/--no-relax",
        help="Also relax each sample at the target pressure (default: when --calculator is given).",
        rich_help_panel=_R,
    ),
]
Fmax = Annotated[float, typer.Option(help="Force convergence criterion (eV/Å).", rich_help_panel=_R)]
MaxSteps = Annotated[
    int, typer.Option(help="Optimizer steps at most per structure.", min=0, rich_help_panel=_R)
]
Optimizer = Annotated[str, typer.Option(help="fire or bfgs.", rich_help_panel=_R)]
CellFilter = Annotated[str, typer.Option(help="frechet, exp or none (fixed cell).", rich_help_panel=_R)]


def _load_model(checkpoint: Path, device):
    from cond_vae.checkpoint import load_checkpoint

    quiet_known_warnings()
    if not checkpoint.is_dir():
        raise FileNotFoundError(f"checkpoint {checkpoint} is not a directory")
    dev = resolve_device(device.value if device is not None else None)
    model = load_checkpoint(checkpoint, map_location=dev)
    extra = [n for n in model.config.condition_names if n != "pressure"]
    if extra:
        raise ValueError(f"the model is also conditioned on {extra}: the benchmarks give only a pressure")
    return model, dev


def _targets(opts: dict, model) -> list:
    from xtal_tools.bench._common import check_targets, read_targets_csv, standard_cell, store_targets

    if (opts["data"] is None) == (opts["targets"] is None):
        raise ValueError(
            "give the targets as --data STORE (a split part) or as --targets CSV: exactly one of them"
        )
    if opts["targets"] is not None:
        targets = read_targets_csv(opts["targets"], cell=opts["cell"])[: opts["limit"]]
    else:
        from dataclasses import replace

        targets = store_targets(opts["data"], split=opts["split"], part=opts["part"], limit=opts["limit"])
        if opts["cell"] != "given":
            targets = [replace(t, structure=standard_cell(t.structure, opts["cell"])) for t in targets]
    check_targets(targets, max_atoms=model.config.max_atoms, num_elements=model.config.num_elements)
    return targets


def _relaxer(opts: dict, dev: str, *, default_on: bool):
    """A Relaxer when relaxation is on (``--relax``, or a calculator given and ``--relax`` not refused)."""
    import json

    from xtal_tools.bench._common import Relaxer
    from xtal_tools.relax import RelaxSettings, load_calculator

    settings = RelaxSettings(
        fmax=opts["fmax"],
        max_steps=opts["max_steps"],
        optimizer=opts["optimizer"],
        cell_filter=opts["cell_filter"],
    )
    on = opts["relax"] if opts["relax"] is not None else (default_on and opts["calculator"] is not None)
    if not on:
        return None, {"enabled": False}
    try:
        kwargs = json.loads(opts["calculator_args"]) if opts["calculator_args"] else {}
    except json.JSONDecodeError as err:
        raise ValueError(f"--calculator-args: not valid JSON ({err.msg} at character {err.pos})") from None
    if not isinstance(kwargs, dict):
        raise ValueError(f"--calculator-args: expected a JSON object, got {type(kwargs).__name__}")
    name = opts["calculator"] or "chgnet"
    if name.strip().lower() == "chgnet":
        kwargs.setdefault("device", dev)
    calc = load_calculator(name, **kwargs)
    config = {"enabled": True, "calculator": name, "calculator_args": json.dumps(kwargs), **settings.__dict__}
    config.pop("pressure")  # each structure relaxes at its target's pressure
    return Relaxer(calc, settings), config


def _start(out: Path, overwrite: bool):
    from xtal_tools.sample import _prepare_out

    _prepare_out(out, overwrite)


def _finish(
    name: str,
    out: Path,
    record,
    *,
    t0: float,
    dev: str,
    config: dict,
    results: dict,
    rows,
    n: int,
    meaning: str,
):
    from xtal_eval.report import write_csv, write_json

    from xtal_tools._run_record import installed_versions, package_versions
    from xtal_tools.bench._common import machine_info

    write_csv(out / "rows.csv", rows)
    wall = time.perf_counter() - t0
    summary = {
        "benchmark": name,
        "wall_s": wall,
        "n_structures": n,
        "structures_per_s": n / wall if wall > 0 else None,
        "structures_per_s_counts": meaning,
        "results": results,
        "settings": config,
        "versions": {
            **package_versions(),
            **installed_versions(("pymatgen", "ase", "spglib", "chgnet")),
        },
        "machine": machine_info(dev),
    }
    write_json(out / "summary.json", summary)  # last: its presence means the run completed
    record.finish({"wall_s": wall, "n_structures": n, "structures_per_s": summary["structures_per_s"]})
    return summary


@app.command()
def recon(
    checkpoint: Checkpoint,
    out: OutOption,
    data: DataOption = None,
    split: Split = "random",
    part: Part = "test",
    limit: Limit = None,
    presets: Annotated[
        str, typer.Option(help="Comma-separated matcher presets (cdvae, paper, strict).")
    ] = "cdvae",
    use_mean: Annotated[bool, typer.Option(help="Decode the posterior mean instead of a sample.")] = False,
    seed: SeedOption = None,
    device: DeviceOption = None,
    sampler_method: SamplerMethodOption = None,
    levels: LevelsOption = None,
    steps_per_level: StepsPerLevelOption = None,
    step_lr: StepLrOption = None,
    corrector_steps: CorrectorStepsOption = None,
    snr: SnrOption = None,
    final_denoise: FinalDenoiseOption = None,
    skin: SkinOption = None,
    batch_size: BatchSizeOption = None,
    sampler_config: SamplerConfigOption = None,
    jobs: Jobs = 1,
    overwrite: Overwrite = False,
) -> None:
    """Table II: reconstruct every crystal of a split part; match rate and N-RMSD (normalised RMS
    displacement of get_rms_dist(pred, gt)), with reconstructions per second."""
    from xtal_tools._options import resolve_sampler, sampler_record
    from xtal_tools._run_record import RunRecord
    from xtal_tools.bench.recon import run_recon
    from xtal_tools.evaluation import EvalSettings

    opts = dict(locals())
    t0 = time.perf_counter()
    try:
        from xtal_data.torch_dataset import CrystalDataset
        from xtal_eval import resolve_presets

        from xtal_tools.bench._common import part_indices

        if data is None:
            raise ValueError("--data STORE is required")
        names = tuple(p.name for p in resolve_presets(presets))
        sampler = resolve_sampler(opts, config_file=sampler_config)
        settings = EvalSettings(seed=seed or 0, sampler=sampler, presets=names, jobs=jobs)
        model, dev = _load_model(checkpoint, device)
        targets = part_indices(data, split, part)[:limit]
        if len(targets) == 0:
            raise ValueError(f"{data}: split {split!r} part {part!r} is empty")
        dataset = CrystalDataset(data, indices=targets, properties=model.config.condition_names)
        _start(out, overwrite)
    except EXPECTED_ERRORS as err:
        fail(err)
    config = {"checkpoint": str(checkpoint), "data": data, "split": split, "part": part, "limit": limit,
              "use_mean": use_mean, "device": dev, "seed": settings.seed, "presets": list(settings.presets),
              "jobs": settings.jobs, **sampler_record(sampler, model)}  # fmt: skip
    record = RunRecord.start(out, command="benchmark recon", config=config, seed=settings.seed)
    with recorded(record):
        results, rows = run_recon(model, dataset, settings, out, use_mean=use_mean)
        meaning = "reconstructions (model + matching) per second of wall time"
        _finish("recon", out, record, t0=t0, dev=dev, config=config, results=results, rows=rows,
                n=len(dataset), meaning=meaning)  # fmt: skip
    for key, m in results["metrics"].items():
        typer.echo(f"{key:<18} match_rate {m['match_rate']:.4f}  N-RMSD {m['n_rmsd']}")
    rate = results["reconstructions_per_s_model"]
    typer.echo(f"{len(dataset)} crystals, {rate:.3g} reconstructions/s (model) -> {out}")


@app.command()
def success(
    checkpoint: Checkpoint,
    out: OutOption,
    data: DataOption = None,
    split: Split = "random",
    part: Part = "test",
    limit: Limit = None,
    targets: Targets = None,
    cell: Cell = "given",
    num: Annotated[int, typer.Option("--num", "-n", help="Samplings per target (paper: 800).", min=1)] = 20,
    presets: Annotated[str, typer.Option(help="Comma-separated matcher presets.")] = "cdvae,paper",
    size_cut: Annotated[
        int, typer.Option(help="Also report targets with fewer atoms than this.", min=1)
    ] = 20,
    chunk: Annotated[
        int, typer.Option(help="Targets sampled, relaxed and scored together (bounds memory).", min=1)
    ] = 64,
    save_samples: Annotated[
        bool, typer.Option(help="Write every sample to samples_<mode>.extxyz (target_id, index per frame).")
    ] = False,
    seed: SeedOption = None,
    device: DeviceOption = None,
    sampler_method: SamplerMethodOption = None,
    levels: LevelsOption = None,
    steps_per_level: StepsPerLevelOption = None,
    step_lr: StepLrOption = None,
    corrector_steps: CorrectorStepsOption = None,
    snr: SnrOption = None,
    final_denoise: FinalDenoiseOption = None,
    skin: SkinOption = None,
    batch_size: BatchSizeOption = None,
    sampler_config: SamplerConfigOption = None,
    jobs: Jobs = 1,
    relax: Relax = None,
    calculator: Calculator = None,
    calculator_args: CalculatorArgs = None,
    fmax: Fmax = 0.05,
    max_steps: MaxSteps = 300,
    optimizer: Optimizer = "fire",
    cell_filter: CellFilter = "frechet",
    overwrite: Overwrite = False,
) -> None:
    """Fig. 3: success rate against the number of samplings, for all targets and those under SIZE_CUT atoms,
    per preset, without and (with a calculator or --relax) with relaxation at the target pressure."""
    from xtal_eval import Parallel

    from xtal_tools._options import resolve_sampler
    from xtal_tools._run_record import RunRecord
    from xtal_tools.bench._common import ModelSampler, SampleWriter
    from xtal_tools.bench.success import SuccessSettings, plot_success, run_success

    opts = dict(locals())
    t0 = time.perf_counter()
    try:
        sampler_cfg = resolve_sampler(opts, config_file=sampler_config)
        model, dev = _load_model(checkpoint, device)
        relaxer, relax_config = _relaxer(opts, dev, default_on=True)
        modes = ("unrelaxed", "relaxed") if relaxer is not None else ("unrelaxed",)
        settings = SuccessSettings(
            num=num, seed=seed or 0, presets=tuple(p.strip() for p in presets.split(",")), size_cut=size_cut,
            modes=modes, chunk=chunk,
        )  # fmt: skip
        bench_targets = _targets(opts, model)
        _start(out, overwrite)
    except EXPECTED_ERRORS as err:
        fail(err)
    sampler = ModelSampler(model, sampler=sampler_cfg)
    config = _config(opts, dev, bench_targets, relax_config, sampler_cfg, model, **settings.__dict__,
                     save_samples=save_samples)  # fmt: skip
    record = RunRecord.start(out, command="benchmark success", config=config, seed=settings.seed)
    writer = SampleWriter(out) if save_samples else None
    with recorded(record):
        try:
            result = run_success(bench_targets, sampler, settings, relaxer=relaxer,
                                 parallel=Parallel.from_jobs(jobs), on_samples=writer)  # fmt: skip
        except BaseException:
            if writer is not None:
                writer.discard()
            raise
        if writer is not None:
            writer.commit()
        plot_success(result, out / "success.png", title=f"{len(bench_targets)} targets, {num} samplings each")
        results = result.summary()
        results["sampled_per_s"] = _rate(num * len(bench_targets), result.seconds["sample"])
        n = num * len(bench_targets)
        _finish("success", out, record, t0=t0, dev=dev, config=config, results=results, rows=result.rows(),
                n=n, meaning="samples (drawn, relaxed when on, matched) per second of wall time")  # fmt: skip
    for label, rate in results["success_rate_at_num"].items():
        typer.echo(f"{label:<32} success@{num} {rate if rate == rate else float('nan'):.4f}")
    typer.echo(f"{n} samples, {results['sampled_per_s']:.3g} sampled/s -> {out}")


def _rate(n: int, seconds: float) -> float | None:
    return n / seconds if seconds > 0 else None


def _config(opts: dict, dev: str, targets, relax_config: dict, sampler, model, **settings) -> dict:
    from xtal_tools._options import sampler_record

    source = (
        {"targets_csv": str(opts["targets"])}
        if opts["targets"] is not None
        else {"data": opts["data"], "split": opts["split"], "part": opts["part"]}
    )
    return {
        "checkpoint": str(opts["checkpoint"]), **source, "limit": opts["limit"], "cell": opts["cell"],
        "n_targets": len(targets), "device": dev,
        **sampler_record(sampler, model), **settings, "relax": relax_config,
    }  # fmt: skip


@app.command("known-phase")
def known_phase(
    checkpoint: Checkpoint,
    out: OutOption,
    targets: Targets = None,
    data: DataOption = None,
    split: Split = "random",
    part: Part = "test",
    limit: Limit = None,
    cell: Cell = "given",
    runs: Annotated[int, typer.Option(help="Independent runs per target (paper: 5).", min=1)] = 5,
    budget: Annotated[int, typer.Option(help="Samplings at most per run (paper: 1000).", min=1)] = 1000,
    batch: Annotated[
        int,
        typer.Option(help="Samplings drawn per search batch (one engine call).", min=1, rich_help_panel=_S),
    ] = 50,
    preset: Annotated[str, typer.Option(help="Matcher preset deciding a match.")] = "paper",
    seed: SeedOption = None,
    device: DeviceOption = None,
    sampler_method: SamplerMethodOption = None,
    levels: LevelsOption = None,
    steps_per_level: StepsPerLevelOption = None,
    step_lr: StepLrOption = None,
    corrector_steps: CorrectorStepsOption = None,
    snr: SnrOption = None,
    final_denoise: FinalDenoiseOption = None,
    skin: SkinOption = None,
    batch_size: BatchSizeOption = None,
    sampler_config: SamplerConfigOption = None,
    relax: Relax = None,
    calculator: Calculator = None,
    calculator_args: CalculatorArgs = None,
    fmax: Fmax = 0.05,
    max_steps: MaxSteps = 300,
    optimizer: Optimizer = "fire",
    cell_filter: CellFilter = "frechet",
    overwrite: Overwrite = False,
) -> None:
    """Table IV: samplings until the first match with each target, over RUNS independent runs of at most
    BUDGET samplings; per target the success count k/RUNS and the mean samplings over successful runs."""
    from xtal_tools._options import resolve_sampler
    from xtal_tools._run_record import RunRecord
    from xtal_tools.bench._common import ModelSampler
    from xtal_tools.bench.known_phase import KnownPhaseSettings, run_known_phase, summarise

    opts = dict(locals())
    t0 = time.perf_counter()
    try:
        settings = KnownPhaseSettings(runs=runs, budget=budget, batch=batch, seed=seed or 0, preset=preset)
        sampler_cfg = resolve_sampler(opts, config_file=sampler_config)
        model, dev = _load_model(checkpoint, device)
        relaxer, relax_config = _relaxer(opts, dev, default_on=True)
        bench_targets = _targets(opts, model)
        _start(out, overwrite)
    except EXPECTED_ERRORS as err:
        fail(err)
    sampler = ModelSampler(model, sampler=sampler_cfg)
    config = _config(opts, dev, bench_targets, relax_config, sampler_cfg, model, **settings.__dict__)

    def progress(target_id, run):
        found = f"found at {run.first_match}" if run.success else f"not found in {run.n_sampled}"
        typer.echo(f"{target_id} run {run.run}: {found} ({run.seconds:.1f} s)", err=True)

    record = RunRecord.start(out, command="benchmark known-phase", config=config, seed=settings.seed)
    with recorded(record):
        phases = run_known_phase(bench_targets, sampler, settings, relaxer=relaxer, progress=progress)
        results = summarise(phases, settings)
        results["relaxation"] = relaxer.counts.as_dict() if relaxer is not None else None
        meaning = "samplings drawn (sampled, relaxed when on, matched) per second of wall time"
        _finish("known-phase", out, record, t0=t0, dev=dev, config=config, results=results,
                rows=[p.row() for p in phases], n=results["n_samples"], meaning=meaning)  # fmt: skip
    for p in phases:
        typer.echo(f"{p.target.id:<16} {p.target.formula:<10} {p.target.pressure:g} GPa  "
                   f"{p.successes}/{len(p.runs)}  mean samplings {p.mean_samplings:.1f}")  # fmt: skip


def _register_localopt() -> None:
    try:
        from xtal_tools.bench.localopt import localopt_command
    except ImportError:  # the local-optimisation benchmark is not installed in this checkout
        return
    app.command("localopt")(localopt_command)


_register_localopt()


def main() -> None:
    from xtal_tools._cli import tidy_warnings

    tidy_warnings()
    app()


if __name__ == "__main__":
    main()
