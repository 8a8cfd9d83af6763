"""``tools/sample``: generate crystal structures for (formula, pressure) rows.

One formula, with the shipped default model or a checkpoint::

    tools/sample --formula Si4O8 --pressure 50 --num 100 --out DIR
    tools/sample --checkpoint CKPT --formula Si4O8 --pressure 50 --num 100 --out DIR

Many rows (a CSV with columns formula, pressure [GPa] and optionally id), across processes::

    torchrun --nproc-per-node 4 tools/sample --checkpoint CKPT --rows targets.csv --num 20 --out DIR

Settings can also come from ``--config FILE.toml`` (tables ``[sample]`` and ``[sampler]``; a previous
run's ``run.toml`` repeats it); flags override the file. Writes ``cif/`` (one CIF per valid structure),
``samples.extxyz``, ``samples.csv`` (every sample, valid or not, with the reason) and ``run.toml``.
The output is the same for any number of processes with the same seed and sampler settings, and the same
as ``tools/csp``, ``tools/benchmark`` and ``tools/evaluate`` sample for the same rows
(:mod:`xtal_tools.generation`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from xtal_tools.cli._common import Warnings, checked, prepare_out, recorded, run_app
from xtal_tools.cli._options import (
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
@with_tables(SAMPLER)
def sample(
    out: OutOption,
    formula: Annotated[
        str | None, typer.Option("--formula", "-f", help="Full-cell formula, e.g. Si4O8.")
    ] = None,
    pressure: Annotated[
        str | None, typer.Option("--pressure", "-p", help="Pressure in GPa (with --formula).")
    ] = None,
    rows: Annotated[
        Path | None, typer.Option(help="CSV of rows: formula, pressure (GPa), optional id.")
    ] = None,
    num: Annotated[
        int | None, typer.Option("--num", "-n", help="Structures per row  \\[default: 10]", min=1)
    ] = None,
    fmt: Annotated[
        list[str] | None, typer.Option("--format", help="cif, extxyz, store (repeatable).")
    ] = None,
    checkpoint: CheckpointOption = None,
    seed: SeedOption = None,
    device: DeviceOption = None,
    config: ConfigOption = None,
    overwrite: OverwriteOption = False,
    progress: ProgressOption = None,
    tables=None,
) -> None:
    """Sample structures and write them to OUT."""
    from xtal_tools.config import resolve, to_tables
    from xtal_tools.generation import SampleConfig, check_pressure, prepare_sampling
    from xtal_tools.records import RunRecord

    with Warnings() as notes, checked():
        if formula is not None and not formula.strip():
            raise ValueError("--formula: empty formula")
        flags = {"checkpoint": checkpoint, "formula": formula, "num": num, "seed": seed,
                 "pressure": None if pressure is None else check_pressure(pressure, "--pressure"),
                 "rows": None if rows is None else str(rows), "formats": tuple(fmt) if fmt else None,
                 "device": device.value if device is not None else None}  # fmt: skip
        nested = tables.gather()
        settings = resolve(SampleConfig, table="sample", path=config, flags=flags, nested_flags=nested)
        notes.add(unused_sampler_notes(settings.sampler.method, nested["sampler"]))
        prepare_out(out, overwrite=overwrite, create=False)
        job = prepare_sampling(settings)  # every row is checked before anything is written
        notes.add(job.warnings)
        prepare_out(out, overwrite=overwrite)  # only now: a bad request or checkpoint leaves no folder
    tables_out = to_tables(settings, table="sample")
    record = RunRecord.start(
        out, command="sample", tables=tables_out, seed=settings.seed, derived=job.derived()
    )
    with recorded(record), notes:
        summary = job.run(out, progress=progress)
    if summary is None:  # a non-zero rank: rank 0 reports
        return
    record.finish(summary.as_dict(), warnings=notes.messages)
    failed = ", ".join(f"{n} {reason}" for reason, n in summary.failed.items()) or "none"
    typer.echo(
        f"sampled {summary.num_samples} structures for {summary.num_rows} row(s) in {summary.wall_s:.1f} s; "
        f"wrote {summary.written} valid (failed: {failed}) to {out}"
    )


def main() -> None:
    run_app(app)


if __name__ == "__main__":
    main()
