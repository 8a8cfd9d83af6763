"""``tools/benchmark recon | success | known-phase | localopt``: the paper's Table II, Fig. 3, Table IV and
Table III / Fig. 2 (library: :mod:`xtal_tools.evaluation`)."""

from __future__ import annotations

from typing import Annotated

import typer

from xtal_tools.cli._common import Warnings, checked, recorded
from xtal_tools.cli._options import (
    RELAX,
    SAMPLER,
    ConfigOption,
    OutOption,
    OverwriteOption,
    ProgressOption,
    with_tables,
)
from xtal_tools.cli.benchmark._shared import (
    TARGETS,
    Num,
    Presets,
    app,
    bench_options,
    open_bench,
    presets_flag,
    start_record,
)


@app.command()
@with_tables(bench_options("data", "split", "part", "limit", "jobs"), SAMPLER)
def recon(
    out: OutOption,
    presets: Presets = None,
    use_mean: Annotated[
        bool | None,
        typer.Option(
            "--use-mean/--sample-latent",
            help="Decode the posterior mean instead of a sample  \\[default: sample]",
        ),
    ] = None,
    config: ConfigOption = None,
    progress: ProgressOption = None,
    overwrite: OverwriteOption = False,
    tables=None,
) -> None:
    """Table II: reconstruct every crystal of a split part; match rate and N-RMSD (normalised RMS
    displacement of get_rms_dist(pred, gt)), with reconstructions per second."""
    from xtal_tools.evaluation.configs import ReconConfig, write_summary
    from xtal_tools.evaluation.recon import run_recon

    flags = {"presets": presets_flag(presets), "use_mean": use_mean}
    with Warnings() as notes, checked():
        settings, bench = open_bench(
            ReconConfig, "recon", config, flags, tables, out, overwrite, notes, targets=False
        )
    record, table = start_record("recon", out, settings, "recon", bench, notes)
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
@with_tables(bench_options("data", "split", "part", "limit", "targets", "cell", "jobs"), SAMPLER, RELAX)
def success(
    out: OutOption,
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
        "num": num,
        "presets": presets_flag(presets),
        "size_cut": size_cut,
        "chunk": chunk,
        "save_samples": save_samples,
    }
    with Warnings() as notes, checked():
        relax_named = tables.gather()["relax"]["calculator"] is not None
        settings, bench = open_bench(
            SuccessConfig, "success", config, flags, tables, out, overwrite, notes, relax_default=relax_named
        )
    record, table = start_record("success", out, settings, "success", bench, notes)
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
@with_tables(bench_options("targets", "data", "split", "part", "limit", "cell"), SAMPLER, RELAX)
def known_phase(
    out: OutOption,
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
        "runs": runs,
        "budget": budget,
        "batch": batch,
        "preset": preset,
    }

    with Warnings() as notes, checked():
        relax_named = tables.gather()["relax"]["calculator"] is not None
        settings, bench = open_bench(
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
    record, table = start_record("known-phase", out, settings, "known_phase", bench, notes)
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
@with_tables(bench_options("data", "split", "part"), SAMPLER, RELAX)
def localopt(
    out: OutOption,
    limit: Annotated[
        int | None,
        typer.Option(
            help="Distinct compositions, drawn at random (seeded)  \\[default: 20]",
            min=1,
            rich_help_panel=TARGETS,
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
            "limit": limit,
            "num": num,
            "pressures": parse_pressures(pressures, "--pressures") if pressures is not None else None,
        }
        from xtal_eval.baselines import require_pyxtal

        require_pyxtal()  # before any sampling
        settings, bench = open_bench(
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
    record, table = start_record("localopt", out, settings, "localopt", bench, notes)
    with recorded(record), notes:
        summary = run_localopt_benchmark(bench, settings, out, tables=table, progress=progress)
    record.finish({k: summary[k] for k in ("wall_s", "n_structures", "n_relaxed", "structures_per_s")})
    for source, per_p in summary["results"].items():
        cells = "  ".join(f"{p} GPa: {s['n_converged']}/{s['n']}" for p, s in per_p.items())
        typer.echo(f"{source:<10} converged {cells}")
    typer.echo(f"{summary['n_structures']} structures in {summary['wall_s']:.1f} s -> {out}")
