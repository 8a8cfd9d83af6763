"""``tools/benchmark``: the paper's evaluations as reproducible benchmarks, small on a CPU or full on GPUs.

    tools/benchmark recon       -k CKPT --data STORE --limit 50 -o OUT            # Table II
    tools/benchmark success     -k CKPT --data STORE --limit 20 --num 20 -o OUT   # Fig. 3
    tools/benchmark success     -k CKPT --targets targets.csv --num 800 --calculator chgnet -o OUT
    tools/benchmark known-phase -k CKPT --targets targets.csv --runs 5 --budget 1000 -o OUT  # Table IV
    tools/benchmark localopt    -k CKPT --data STORE --limit 20 -o OUT            # Table III, Fig. 2

Targets are a store split part (``--data``, ``--split``, ``--part``, ``--limit``) or a CSV with columns
``cif`` (path, relative to the CSV) and ``pressure`` (GPa), optionally ``id``. Settings can also come
from ``--config FILE.toml`` (the benchmark's table, ``[recon]``, ``[success]``, ``[known_phase]`` or
``[localopt]``, plus ``[sampler]`` and ``[relax]``; :mod:`xtal_tools.evaluation.configs`). Each writes
``summary.json`` (results, wall time, structures per second, settings, versions, machine), ``rows.csv``
(one row per target), PNG plots where there is a curve, and ``run.toml``.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Annotated

import typer

from xtal_tools.cli._common import Warnings, checked, prepare_out, recorded, run_app
from xtal_tools.cli._options import (
    RELAX,
    SAMPLER,
    CheckpointOption,
    ConfigOption,
    DataOption,
    DeviceOption,
    OutOption,
    OverwriteOption,
    ProgressOption,
    SeedOption,
    with_tables,
)

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__.split("\n\n")[0])

_T = "Targets"
Split = Annotated[
    str | None, typer.Option(help="Split stored in the data store  \\[default: random]", rich_help_panel=_T)
]
Part = Annotated[str | None, typer.Option(help="Part of the split  \\[default: test]", rich_help_panel=_T)]
Limit = Annotated[
    int | None, typer.Option(help="Only the first N targets of the part.", min=1, rich_help_panel=_T)
]
Targets = Annotated[
    Path | None,
    typer.Option(help="CSV with columns cif (path), pressure (GPa) and optionally id.", rich_help_panel=_T),
]
Cell = Annotated[
    str | None,
    typer.Option(
        help="Target cell to sample: given, primitive or conventional  \\[default: given]", rich_help_panel=_T
    ),
]
Jobs = Annotated[int | None, typer.Option(help="Processes for structure matching  \\[default: 1]", min=1)]
Presets = Annotated[
    str | None, typer.Option(help="Comma-separated matcher presets  \\[default: cdvae,paper,strict]")
]
Num = Annotated[int | None, typer.Option("--num", "-n", help="Samplings per target.", min=1)]


def _common(checkpoint, data, split, part, limit, targets, cell, seed, device, jobs) -> dict:
    return {
        "checkpoint": checkpoint,
        "data": data,
        "split": split,
        "part": part,
        "limit": limit,
        "targets": None if targets is None else str(targets),
        "cell": cell,
        "seed": seed,
        "jobs": jobs,
        "device": device.value if device is not None else None,
    }


def _presets(text: str | None) -> tuple[str, ...] | None:
    return None if text is None else tuple(p.strip() for p in text.split(",") if p.strip())


def _open(cls, table: str, config, flags: dict, tables, out: Path, overwrite: bool, notes, **open_kw):
    """Resolve the benchmark's config, open model, targets and calculator, then create OUT."""
    from xtal_tools.checkpoints import condition_warnings
    from xtal_tools.config import resolve
    from xtal_tools.evaluation.configs import open_benchmark

    settings = resolve(cls, table=table, path=config, flags=flags, nested_flags=tables.gather())
    if hasattr(settings, "relax"):  # record what was done: relaxed or not
        relax = settings.relax
        settings = replace(
            settings, relax=replace(relax, enabled=relax.on(open_kw.get("relax_default", False)))
        )
    prepare_out(out, overwrite=overwrite, create=False)
    bench = open_benchmark(settings, **open_kw)
    pressures = getattr(settings, "pressures", None) or sorted({t.pressure for t in bench.targets or ()})
    notes.add(condition_warnings(bench.model, pressures))
    prepare_out(out, overwrite=overwrite)
    return settings, bench


def _record(name: str, out: Path, settings, table: str, bench, notes):
    from xtal_tools.config import to_tables
    from xtal_tools.records import RunRecord

    sampler = settings.sampler
    derived = {
        "checkpoint": str(bench.opened.path),
        "device": bench.device,
        "n_targets": len(bench.targets) if bench.targets is not None else None,
        "decoder_calls_per_structure": sampler.decoder_calls(len(bench.model.sigmas)),
        "relax": bench.relaxer is not None,
        "warnings": notes.messages,
    }
    tables = to_tables(settings, table=table)
    return RunRecord.start(
        out, command=f"benchmark {name}", tables=tables, seed=settings.seed, derived=derived
    ), tables


@app.command()
@with_tables(SAMPLER)
def recon(
    out: OutOption,
    checkpoint: CheckpointOption = None,
    data: DataOption = None,
    split: Split = None,
    part: Part = None,
    limit: Limit = None,
    presets: Presets = None,
    use_mean: Annotated[
        bool | None,
        typer.Option(
            "--use-mean/--sample-latent",
            help="Decode the posterior mean instead of a sample  \\[default: sample]",
        ),
    ] = None,
    seed: SeedOption = None,
    device: DeviceOption = None,
    jobs: Jobs = None,
    config: ConfigOption = None,
    progress: ProgressOption = None,
    overwrite: OverwriteOption = False,
    tables=None,
) -> None:
    """Table II: reconstruct every crystal of a split part; match rate and N-RMSD (normalised RMS
    displacement of get_rms_dist(pred, gt)), with reconstructions per second."""
    from xtal_tools.evaluation.configs import ReconConfig, write_summary
    from xtal_tools.evaluation.recon import run_recon

    flags = {
        **_common(checkpoint, data, split, part, limit, None, None, seed, device, jobs),
        "presets": _presets(presets),
        "use_mean": use_mean,
    }
    with Warnings() as notes, checked():
        if data is None and config is None:
            raise ValueError("--data STORE is required")
        settings, bench = _open(
            ReconConfig, "recon", config, flags, tables, out, overwrite, notes, targets=False
        )
    record, table = _record("recon", out, settings, "recon", bench, notes)
    with recorded(record), notes:
        results, rows, n = run_recon(bench.model, settings, out, progress=progress)
        summary = write_summary(
            "recon",
            out,
            bench,
            tables=table,
            results=results,
            rows=rows,
            n=n,
            meaning="reconstructions (model + matching) per second of wall time",
        )
    record.finish({"wall_s": summary["wall_s"], "n_structures": n})
    for key, m in results["metrics"].items():
        typer.echo(f"{key:<18} match_rate {m['match_rate']:.4f}  N-RMSD {m['n_rmsd']}")
    typer.echo(
        f"{n} crystals, {results['reconstructions_per_s_model']:.3g} reconstructions/s (model) -> {out}"
    )


@app.command()
@with_tables(SAMPLER, RELAX)
def success(
    out: OutOption,
    checkpoint: CheckpointOption = None,
    data: DataOption = None,
    split: Split = None,
    part: Part = None,
    limit: Limit = None,
    targets: Targets = None,
    cell: Cell = None,
    num: Num = None,
    presets: Presets = None,
    size_cut: Annotated[
        int | None,
        typer.Option(help="Also report targets with fewer atoms than this  \\[default: 20]", min=1),
    ] = None,
    chunk: Annotated[
        int | None,
        typer.Option(
            help="Targets sampled, relaxed and scored together (bounds memory)  \\[default: 64]", min=1
        ),
    ] = None,
    save_samples: Annotated[
        bool | None,
        typer.Option(
            "--save-samples/--no-save-samples",
            help="Write every sample to samples_<mode>.extxyz (target_id, index per frame).",
        ),
    ] = None,
    seed: SeedOption = None,
    device: DeviceOption = None,
    jobs: Jobs = None,
    config: ConfigOption = None,
    progress: ProgressOption = None,
    overwrite: OverwriteOption = False,
    tables=None,
) -> None:
    """Fig. 3: success rate against the number of samplings (NUM, paper: 800; default 20), for all targets
    and those under SIZE_CUT atoms, per preset, without and (with a calculator or --relax) with relaxation
    at the target pressure."""
    from xtal_tools.evaluation.configs import SuccessConfig, write_summary
    from xtal_tools.evaluation.success import run_success_benchmark

    flags = {
        **_common(checkpoint, data, split, part, limit, targets, cell, seed, device, jobs),
        "num": num,
        "presets": _presets(presets),
        "size_cut": size_cut,
        "chunk": chunk,
        "save_samples": save_samples,
    }
    with Warnings() as notes, checked():
        relax_named = tables.gather()["relax"]["calculator"] is not None
        settings, bench = _open(
            SuccessConfig, "success", config, flags, tables, out, overwrite, notes, relax_default=relax_named
        )
    record, table = _record("success", out, settings, "success", bench, notes)
    with recorded(record), notes:
        results, rows, n = run_success_benchmark(bench, settings, out, progress=progress)
        summary = write_summary(
            "success",
            out,
            bench,
            tables=table,
            results=results,
            rows=rows,
            n=n,
            meaning="samples (drawn, relaxed when on, matched) per second of wall time",
        )
    record.finish({"wall_s": summary["wall_s"], "n_structures": n})
    for label, rate in results["success_rate_at_num"].items():
        typer.echo(f"{label:<32} success@{settings.num} {rate if rate == rate else float('nan'):.4f}")
    typer.echo(f"{n} samples, {results['sampled_per_s']:.3g} sampled/s -> {out}")


@app.command("known-phase")
@with_tables(SAMPLER, RELAX)
def known_phase(
    out: OutOption,
    checkpoint: CheckpointOption = None,
    targets: Targets = None,
    data: DataOption = None,
    split: Split = None,
    part: Part = None,
    limit: Limit = None,
    cell: Cell = None,
    runs: Annotated[
        int | None, typer.Option(help="Independent runs per target (paper: 5)  \\[default: 5]", min=1)
    ] = None,
    budget: Annotated[
        int | None, typer.Option(help="Samplings at most per run (paper: 1000)  \\[default: 1000]", min=1)
    ] = None,
    batch: Annotated[
        int | None, typer.Option(help="Samplings drawn per search batch  \\[default: 50]", min=1)
    ] = None,
    preset: Annotated[
        str | None, typer.Option(help="Matcher preset deciding a match  \\[default: paper]")
    ] = None,
    seed: SeedOption = None,
    device: DeviceOption = None,
    config: ConfigOption = None,
    progress: ProgressOption = None,
    overwrite: OverwriteOption = False,
    tables=None,
) -> None:
    """Table IV: samplings until the first match with each target, over RUNS independent runs of at most
    BUDGET samplings; per target the success count k/RUNS and the mean samplings over successful runs."""
    from xtal_tools.evaluation.configs import KnownPhaseConfig, write_summary
    from xtal_tools.evaluation.known_phase import run_known_phase_benchmark

    flags = {
        **_common(checkpoint, data, split, part, limit, targets, cell, seed, device, None),
        "runs": runs,
        "budget": budget,
        "batch": batch,
        "preset": preset,
    }

    with Warnings() as notes, checked():
        relax_named = tables.gather()["relax"]["calculator"] is not None
        settings, bench = _open(
            KnownPhaseConfig,
            "known_phase",
            config,
            flags,
            tables,
            out,
            overwrite,
            notes,
            relax_default=relax_named,
        )
    record, table = _record("known-phase", out, settings, "known_phase", bench, notes)
    with recorded(record), notes:
        phases, results = run_known_phase_benchmark(bench, settings, on_run=_say_run, progress=progress)
        summary = write_summary(
            "known-phase",
            out,
            bench,
            tables=table,
            results=results,
            rows=[p.row() for p in phases],
            n=results["n_samples"],
            meaning="samplings drawn (sampled, relaxed when on, matched) per second",
        )
    record.finish({"wall_s": summary["wall_s"], "n_structures": results["n_samples"]})
    for p in phases:
        typer.echo(
            f"{p.target.id:<16} {p.target.formula:<10} {p.target.pressure:g} GPa  "
            f"{p.successes}/{len(p.runs)}  mean samplings {p.mean_samplings:.1f}"
        )


def _say_run(target_id: str, run) -> None:
    found = f"found at {run.first_match}" if run.success else f"not found in {run.n_sampled}"
    typer.echo(f"{target_id} run {run.run}: {found} ({run.seconds:.1f} s)", err=True)


@app.command()
@with_tables(SAMPLER, RELAX)
def localopt(
    out: OutOption,
    checkpoint: CheckpointOption = None,
    data: DataOption = None,
    split: Split = None,
    part: Part = None,
    limit: Annotated[
        int | None,
        typer.Option(
            help="Distinct compositions, drawn at random (seeded)  \\[default: 20]", min=1, rich_help_panel=_T
        ),
    ] = None,
    pressures: Annotated[
        str | None,
        typer.Option(help="Comma-separated target pressures (GPa)  \\[default: 0,100,200,300,400]"),
    ] = None,
    num: Annotated[
        int | None,
        typer.Option(
            "--num", "-n", help="Generated structures per composition and pressure  \\[default: 4]", min=1
        ),
    ] = None,
    seed: SeedOption = None,
    device: DeviceOption = None,
    config: ConfigOption = None,
    progress: ProgressOption = None,
    overwrite: OverwriteOption = False,
    tables=None,
) -> None:
    """Table III, Fig. 2: relax generated structures and random ones of the same composition and volume
    (PyXtal with a random space group; uniform P1) at each pressure; convergence rate, ionic steps, RMSD,
    initial pressure, enthalpy curves and relaxed enthalpies relative to the random ones."""
    from xtal_tools.evaluation.configs import LocaloptConfig
    from xtal_tools.evaluation.localopt import run_localopt_benchmark
    from xtal_tools.generation import parse_pressures

    with Warnings() as notes, checked():
        flags = {
            **_common(checkpoint, data, split, part, limit, None, None, seed, device, None),
            "num": num,
            "pressures": parse_pressures(pressures, "--pressures") if pressures is not None else None,
        }
        if data is None and config is None:
            raise ValueError("--data STORE is required")
        from xtal_eval.baselines import require_pyxtal

        require_pyxtal()  # before any sampling
        settings, bench = _open(
            LocaloptConfig,
            "localopt",
            config,
            flags,
            tables,
            out,
            overwrite,
            notes,
            targets=False,
            relax_default=True,
        )
    record, table = _record("localopt", out, settings, "localopt", bench, notes)
    with recorded(record), notes:
        summary = run_localopt_benchmark(bench, settings, out, tables=table, progress=progress)
    record.finish({k: summary[k] for k in ("wall_s", "n_structures", "n_relaxed", "structures_per_s")})
    for source, per_p in summary["results"].items():
        cells = "  ".join(f"{p} GPa: {s['n_converged']}/{s['n']}" for p, s in per_p.items())
        typer.echo(f"{source:<10} converged {cells}")
    typer.echo(f"{summary['n_structures']} structures in {summary['wall_s']:.1f} s -> {out}")


def main() -> None:
    run_app(app)


if __name__ == "__main__":
    main()
