"""``tools/benchmark pressure-response | structure-map``: do samples follow the requested pressure, and the
paper's Fig. 4 (library: :mod:`xtal_tools.evaluation.pressure_response`,
:mod:`xtal_tools.evaluation.structure_map`)."""

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
    with_tables,
)
from xtal_tools.cli.benchmark._shared import (
    TARGETS,
    Formulas,
    Pressures,
    app,
    bench_options,
    csv_flag,
    open_bench,
    start_record,
)


@app.command("pressure-response")
@with_tables(bench_options(), SAMPLER, RELAX)
def pressure_response(
    out: OutOption,
    data: Annotated[
        str | None,
        typer.Option(
            "--data",
            "-d",
            help="Pressure-labelled store: the reference "
            "trend, and the compositions when --formulas is not given.",
            rich_help_panel=TARGETS,
        ),
    ] = None,
    formulas: Formulas = None,
    limit: Annotated[
        int | None, typer.Option(help="Compositions drawn from --data  \\[default: 3]", min=1)
    ] = None,
    max_atoms: Annotated[int | None, typer.Option(help="Largest cell drawn  \\[default: 4]", min=1)] = None,
    pressures: Pressures = None,
    num: Annotated[
        int | None,
        typer.Option("--num", "-n", help="Samples per composition and pressure  \\[default: 5]", min=1),
    ] = None,
    phases: Annotated[
        str | None, typer.Option(help="Known phases: all, none or comma-separated ids  \\[default: all]")
    ] = None,
    phase_runs: Annotated[int | None, typer.Option(help="Searches per phase  \\[default: 3]", min=1)] = None,
    phase_budget: Annotated[
        int | None, typer.Option(help="Samplings per search  \\[default: 50]", min=1)
    ] = None,
    fraction_pressures: Annotated[
        str | None,
        typer.Option(help="Pressures of the phase-fraction check (GPa)  \\[default: 0,10,25,40,50]"),
    ] = None,
    fraction_num: Annotated[
        int | None, typer.Option(help="Samplings per fraction  \\[default: 100]", min=1)
    ] = None,
    config: ConfigOption = None,
    overwrite: OverwriteOption = False,
    tables=None,
) -> None:
    """Do samples follow the pressure? Volume per atom against the requested pressure beside the training
    data's trend; how far samples and PyXtal twins move when relaxed at it (RMSD, steps, initial
    pressure); known phases at their pressure (rock salt / CsCl NaCl, diamond / beta-tin Si, ...)."""
    from xtal_tools.evaluation.configs import PressureResponseConfig
    from xtal_tools.evaluation.pressure_response import run_pressure_response_benchmark
    from xtal_tools.generation import parse_pressures

    with Warnings() as notes, checked():
        flags = {
            "data": data,
            "limit": limit,
            "formulas": csv_flag(formulas),
            "max_atoms": max_atoms,
            "num": num,
            "phases": phases,
            "phase_runs": phase_runs,
            "phase_budget": phase_budget,
            "fraction_num": fraction_num,
            "pressures": parse_pressures(pressures, "--pressures") if pressures else None,
            "fraction_pressures": parse_pressures(fraction_pressures, "--fraction-pressures")
            if fraction_pressures
            else None,
        }
        settings, bench = open_bench(
            PressureResponseConfig,
            "pressure_response",
            config,
            flags,
            tables,
            out,
            overwrite,
            notes,
            targets=False,
            relax_default=True,
        )
    record, table = start_record("pressure-response", out, settings, "pressure_response", bench, notes)
    with recorded(record), notes:
        summary = run_pressure_response_benchmark(bench, settings, out, tables=table, on_step=_say)
    record.finish(
        {"wall_s": summary["wall_s"], "n_structures": summary["n_structures"]}, warnings=notes.messages
    )
    typer.echo(f"{summary['n_structures']} structures in {summary['wall_s']:.1f} s -> {out}")


@app.command("structure-map")
@with_tables(bench_options(), SAMPLER)
def structure_map(
    out: OutOption,
    formulas: Formulas = None,
    pressures: Pressures = None,
    num: Annotated[
        int | None,
        typer.Option("--num", "-n", help="Samples per formula and pressure  \\[default: 25]", min=1),
    ] = None,
    descriptor: Annotated[str | None, typer.Option(help="soap or rdf  \\[default: soap]")] = None,
    embedding: Annotated[str | None, typer.Option(help="umap or tsne  \\[default: umap]")] = None,
    landmarks: Annotated[str | None, typer.Option(help="Known phases drawn as stars (ids, or none)")] = None,
    config: ConfigOption = None,
    overwrite: OverwriteOption = False,
    tables=None,
) -> None:
    """Fig. 4: a 2-D map (SOAP + UMAP) of generated structures coloured by the requested pressure beside
    PyXtal structures of the same compositions; structure_map.png and the coordinates."""
    from xtal_tools.evaluation.configs import StructureMapConfig
    from xtal_tools.evaluation.structure_map import run_structure_map_benchmark
    from xtal_tools.generation import parse_pressures

    with Warnings() as notes, checked():
        flags = {
            "formulas": csv_flag(formulas),
            "num": num,
            "descriptor": descriptor,
            "embedding": embedding,
            "landmarks": landmarks,
            "pressures": parse_pressures(pressures, "--pressures") if pressures else None,
        }
        settings, bench = open_bench(
            StructureMapConfig, "structure_map", config, flags, tables, out, overwrite, notes, targets=False
        )
    record, table = start_record("structure-map", out, settings, "structure_map", bench, notes)
    with recorded(record), notes:
        summary = run_structure_map_benchmark(bench, settings, out, tables=table)
    record.finish({"wall_s": summary.get("wall_s"), "counts": summary.get("counts")}, warnings=notes.messages)
    typer.echo(f"structure map of {summary.get('counts')} -> {out}")


def _say(message: str) -> None:
    typer.echo(message, err=True)
