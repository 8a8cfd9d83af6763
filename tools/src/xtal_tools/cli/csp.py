"""``tools/csp``: predict crystal structures of a composition at one or more pressures.

Samples structures (the shipped default model, or ``--checkpoint``), relaxes each at the pressure (CHGNet
by default), removes duplicates and ranks the rest by enthalpy per atom::

    tools/csp --formula Si4O8 --pressure 50 --num 100 --out si4o8
    tools/csp -f SiO2 --formula-units 2-4 --pressure 0,50 --num 60 --out sio2
    tools/csp -k CKPT -f SiO2 -u 4 -p 50 -o run --calculator mypkg.vasp:make_calc \\
        --calculator-args '{"xc": "PBE"}'
    tools/csp --config csp.toml --out run        # tables [csp], [sampler], [relax]; flags override them

Every pressure is one job with the same model, calculator and seed, written into ``OUT/<P>GPa/``:
``ranked/NNN_<formula>_<spacegroup>_<number>.cif``, ``candidates.csv`` and ``candidates.json`` (every
sample, ranked or not, with its status and reason), ``enthalpy.png`` and ``run.toml`` (that job's
resolved settings: ``--config OUT/<P>GPa/run.toml`` repeats it). The library call is
:func:`xtal_tools.prediction.predict`.

A ranked CIF is in its space group (found at ``--symprec``): the conventional standard cell with the
symmetry operations, read back by pymatgen as the relaxed structure; the table's numbers (volume,
density, atoms, formula) describe the relaxed cell itself. Column ``cif_cell`` says which cell a CIF
holds (``relaxed``: P1, when symmetrising failed; ``reason`` says why).

Small cells relax fastest with one thread per process (``OMP_NUM_THREADS=1``): on a busy machine,
extra torch/BLAS threads of CHGNet spin and slow every step down.
"""

from __future__ import annotations

import time
from typing import Annotated

import typer

from xtal_tools.cli._common import Warnings, checked, fail, prepare_out, recorded, run_app
from xtal_tools.cli._options import (
    RELAX,
    SAMPLER,
    CheckpointOption,
    ConfigOption,
    DeviceOption,
    OutOption,
    OverwriteOption,
    ProgressOption,
    SeedOption,
    unused_sampler_notes,
    with_tables,
)

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__.split("\n\n")[0])


@app.command()
@with_tables(SAMPLER, RELAX)
def csp(
    out: OutOption,
    formula: Annotated[
        str | None,
        typer.Option(
            "--formula", "-f", help="Cell formula (Si4O8), or one formula unit with --formula-units."
        ),
    ] = None,
    pressure: Annotated[
        str | None,
        typer.Option("--pressure", "-p", help="Pressure in GPa (>= 0); several: 0,50 (one job each)."),
    ] = None,
    formula_units: Annotated[
        str | None, typer.Option("--formula-units", "-u", help="Formula units per cell: N, A-B or 1,2,4.")
    ] = None,
    num: Annotated[
        int | None,
        typer.Option("--num", "-n", help="Structures to sample per pressure  \\[default: 20]", min=1),
    ] = None,
    preset: Annotated[
        str | None,
        typer.Option(
            help="StructureMatcher preset deciding duplicates: paper, cdvae, strict  \\[default: paper]"
        ),
    ] = None,
    symprec: Annotated[
        float | None, typer.Option(help="Symmetry tolerance (Å) of the space groups  \\[default: 0.1]", min=0)
    ] = None,
    checkpoint: CheckpointOption = None,
    seed: SeedOption = None,
    device: DeviceOption = None,
    config: ConfigOption = None,
    overwrite: OverwriteOption = False,
    progress: ProgressOption = None,
    tables=None,
) -> None:
    """Sample, relax at the pressure, de-duplicate and rank structures by enthalpy per atom."""
    from xtal_tools.config import resolve, to_tables
    from xtal_tools.generation import parse_pressures
    from xtal_tools.prediction import PredictConfig, parse_formula_units, prepare_prediction
    from xtal_tools.records import RunRecord

    t0 = time.perf_counter()
    with Warnings() as notes, checked():
        flags = {"formula": formula, "num": num, "seed": seed, "preset": preset, "symprec": symprec,
                 "checkpoint": checkpoint, "device": device.value if device is not None else None,
                 "pressures": parse_pressures(pressure) if pressure is not None else None,
                 "formula_units": parse_formula_units(formula_units) if formula_units else None}  # fmt: skip
        nested = tables.gather()
        settings = resolve(PredictConfig, table="csp", path=config, flags=flags, nested_flags=nested)
        notes.add(unused_sampler_notes(settings.sampler.method, nested["sampler"]))
        prepare_out(out, overwrite=overwrite, create=False)
        request = prepare_prediction(settings)
        prepare_out(out, overwrite=overwrite)
    empty = []
    for p in request.config.pressures:
        sub, t_p = out / f"{p:g}GPa", time.perf_counter()
        notes.add(request.warnings(p))
        record = RunRecord.start(sub, command="csp", tables=to_tables(request.job(p), table="csp"),
                                 seed=settings.seed, derived=request.derived(p))  # fmt: skip
        with recorded(record), notes:
            summary, ranked = request.run(p, sub, progress=progress)
        summary["wall_s"] = round(time.perf_counter() - t_p, 2)
        record.finish(summary)
        _report(summary, ranked, sub, pressure=p)
        if not ranked:
            empty.append(sub / "candidates.csv")
    if len(settings.pressures) > 1:
        typer.echo(f"total {time.perf_counter() - t0:.1f} s")
    if empty:
        fail(f"no structure survived (see {', '.join(map(str, empty))} for the reasons)")


def _report(summary, ranked, out, *, pressure: float, top: int = 5) -> None:
    counts = summary["counts"]
    typer.echo(
        f"{pressure:g} GPa: {len(ranked)} unique structure(s) ranked from {sum(counts.values())} samples "
        f"({counts['duplicate']} duplicates, {counts['relax_failed']} relaxation failures, "
        f"{counts['invalid_cell']} invalid cells, {summary['unconverged']} ranked but not converged) "
        f"in {summary['wall_s']:.1f} s -> {out}"
    )
    lowest = ranked[0].enthalpy_per_atom if ranked else float("nan")
    for c in ranked[:top]:
        h = c.enthalpy_per_atom
        energy = f"H = {h:.4f} eV/atom  (+{1000 * (h - lowest):.0f} meV/atom)" if h == h else "unrelaxed"
        flag = "  NOT CONVERGED" if c.converged is False else ""
        typer.echo(
            f"  {c.rank:3d}  {c.formula:<10} {c.spacegroup:<10} ({c.spacegroup_number:3d})  {energy}{flag}"
        )


def main() -> None:
    run_app(app)


if __name__ == "__main__":
    main()
