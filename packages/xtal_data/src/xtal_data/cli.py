"""``xtal-data`` command line: ingest, verify, curate, split, stats, info, export, build-pressure.

Errors exit with status 1 and one ``error: ...`` message naming the culprit
(:mod:`xtal_eval.cli_support`, the project's one error exit); a closed output pipe
(``xtal-data info STORE | head``) ends the command quietly."""

from __future__ import annotations

import functools
import json
from pathlib import Path

import typer
from xtal_eval.cli_support import EXPECTED_ERRORS, checked, fail

app = typer.Typer(
    help="Zarr crystal stores: ingest, verify, curate, split, describe and export.", no_args_is_help=True
)

# The project's expected errors, and any OS error (unreadable source, unwritable store, full disk).
EXPECTED = (*EXPECTED_ERRORS, OSError)


def _version(value: bool) -> None:
    if value:
        from xtal_data import __version__

        typer.echo(f"xtal-data {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="print the version and exit"
    ),
) -> None:
    """Zarr crystal stores: ingest, verify, curate, split, describe and export."""


def _friendly(fn):
    """Turn expected errors into 'error: ...' on stderr and exit status 1 (no traceback):
    :func:`xtal_eval.cli_support.checked`, the project's one error exit."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with checked(EXPECTED):
            try:
                return fn(*args, **kwargs)
            except BrokenPipeError:  # the reader went away (``| head``): stop quietly, as cat does
                _silence_stdout()
                raise typer.Exit(141) from None

    return wrapper


def _silence_stdout() -> None:
    """Point stdout at /dev/null so that the interpreter's final flush cannot fail again."""
    import os
    import sys

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # no real file descriptor (e.g. under a test runner)
        pass


@app.command()
@_friendly
def ingest(
    source: str = typer.Argument(
        ..., help="CSV/feather/parquet, CIF/POSCAR folder, .extxyz, ASE .db, VASP/CALYPSO folders; path/URL"
    ),
    store: str = typer.Argument(..., help="store path or fsspec URL (created if absent)"),
    pressure: float | None = typer.Option(None, help="constant pressure in GPa (needed without a column)"),
    pressure_column: str = typer.Option("pressure", help="table column / info key holding pressure (GPa)"),
    id_column: str | None = typer.Option(None, help="id column (default: material_id, id or name)"),
    cif_column: str = typer.Option("cif", help="column holding CIF text"),
    source_type: str = typer.Option(
        "auto", help="auto (from the name), vasp (tree of VASP calculation folders), calypso (searches)"
    ),
    keep_fraction: float | None = typer.Option(
        None, help="calypso: keep the lowest-enthalpy fraction of each search (paper: 0.5)"
    ),
    keep_unconverged: bool = typer.Option(False, help="vasp/calypso: keep unconverged runs (converged = 0)"),
    workers: int | None = typer.Option(None, help="parsing processes (default: all cores)"),
    batch_size: int = typer.Option(4096, help="structures per committed append"),
    progress: bool = typer.Option(True, help="show a progress bar"),
    report: str | None = typer.Option(None, help="write every skipped record (id, reason) to this JSON file"),
    max_atoms: int = typer.Option(1000, help="skip structures with more atoms (0: no limit)"),
) -> None:
    """Ingest SOURCE into STORE; malformed records are skipped and counted by reason.

    VASP / CALYPSO results (--source-type vasp|calypso) take their pressure from PSTRESS (kBar -> GPa);
    --pressure then only fills in for calculations without INCAR/OUTCAR/vasprun.xml and must agree.
    Exits 1, creating no store, when nothing could be ingested."""
    from xtal_data.ingest import NothingIngestedError
    from xtal_data.ingest import ingest as run

    if report is not None and not Path(report).resolve().parent.is_dir():
        raise FileNotFoundError(f"--report {report}: folder {Path(report).parent} does not exist")
    try:
        result = run(
            source, store, pressure=pressure, pressure_column=pressure_column, id_column=id_column,
            cif_column=cif_column, workers=workers, batch_size=batch_size, progress=progress,
            max_atoms=max_atoms or None, source_type=source_type, keep_fraction=keep_fraction,
            require_converged=not keep_unconverged,
        )  # fmt: skip
    except NothingIngestedError as err:
        _write_skips(report, err.report.skipped)
        raise
    typer.echo(result.summary())
    _write_skips(report, result.skipped)


def _write_skips(path: str | None, skipped) -> None:
    if path is not None:
        Path(path).write_text(json.dumps([{"id": s.id, "reason": s.reason} for s in skipped], indent=1))


@app.command()
@_friendly
def verify(
    store: str = typer.Argument(..., help="store path or URL"),
    progress: bool | None = typer.Option(
        None, "--progress/--no-progress", help="progress bar  [default: when stderr is a terminal]"
    ),
) -> None:
    """Decode every chunk of STORE and check every structure; exit 1 naming each damaged chunk or record."""
    from xtal_data.store import CrystalStore
    from xtal_data.verify import verify_store

    result = verify_store(CrystalStore.open(store), progress=progress)
    if not result.ok:
        fail(result.summary())
    typer.echo(result.summary())


@app.command()
@_friendly
def info(store: str = typer.Argument(..., help="store path or URL")) -> None:
    """Print a summary of STORE: number of structures, atoms, pressures, elements, properties, splits."""
    from xtal_data.stats import compute_stats
    from xtal_data.store import CrystalStore

    opened = CrystalStore.open(store)
    typer.echo(compute_stats(opened).summary())
    meta = opened.attributes
    schema = f"{meta['schema']} v{meta['schema_version']}"
    typer.echo(f"schema: {schema}, created {meta['created']} by {meta['created_by']}")
    for entry in opened.provenance:
        typer.echo(
            f"provenance: {entry.get('time', '?')} {entry.get('action', '?')} {entry.get('source', '')}"
        )


@app.command()
@_friendly
def curate(
    store: str = typer.Argument(..., help="input store"),
    output: str = typer.Argument(..., help="new store for the kept structures"),
    distance: bool = typer.Option(True, help="shortest-distance filter"),
    min_distance: float = typer.Option(0.5, help="Å"),
    max_distance: float = typer.Option(5.2, help="Å (upper bound on the shortest distance)"),
    volume: bool = typer.Option(True, help="hard-sphere volume filter"),
    volume_factor: float = typer.Option(4.0, help="k below --high-pressure-gpa"),
    volume_factor_high_pressure: float = typer.Option(2.0, help="k at or above --high-pressure-gpa"),
    high_pressure_gpa: float = typer.Option(1.0, help="GPa"),
    max_atoms: int = typer.Option(60, help="0 switches the filter off"),
    energy: bool = typer.Option(True, help="formation energy < 0 and e_above_hull <= 0.2 (when present)"),
    dedup: bool = typer.Option(True, help="StructureMatcher duplicate removal"),
    energy_property: str = typer.Option("energy_per_atom", help="ranks duplicates and search members"),
    search_id_property: str = typer.Option("search_id", help="keep the lowest-energy half of each search"),
    workers: int = typer.Option(1, help="processes for duplicate matching"),
) -> None:
    """Apply the paper's curation filters to STORE and write the kept structures to OUTPUT."""
    from xtal_data.curate import CurationConfig
    from xtal_data.curate import curate as run
    from xtal_data.store import require_free

    require_free(output)  # before the work, not after it

    config = CurationConfig(
        min_distance=min_distance if distance else None, max_distance=max_distance if distance else None,
        volume_factor=volume_factor if volume else None,
        volume_factor_high_pressure=volume_factor_high_pressure if volume else None,
        high_pressure_gpa=high_pressure_gpa, max_atoms=max_atoms or None,
        formation_energy_property="formation_energy_per_atom" if energy else None,
        e_above_hull_property="e_above_hull" if energy else None, deduplicate=dedup,
        energy_property=energy_property, search_id_property=search_id_property or None,
    )  # fmt: skip
    typer.echo(run(store, output, config=config, workers=workers).summary())


@app.command()
@_friendly
def split(
    store: str = typer.Argument(..., help="store (opened for writing)"),
    kind: str = typer.Option("random", help="'random' or 'composition'"),
    seed: int = typer.Option(0, help="random seed"),
    fractions: str = typer.Option("0.8,0.1,0.1", help="train,val,test fractions"),
    name: str | None = typer.Option(None, help="split name (default: the kind)"),
) -> None:
    """Write a seeded train/val/test split into STORE as index arrays."""
    from xtal_data.splits import split_by_composition, split_random
    from xtal_data.store import CrystalStore

    if kind not in ("random", "composition"):
        raise ValueError(f"--kind must be 'random' or 'composition', got {kind!r}")
    try:
        fr = tuple(float(x) for x in fractions.split(","))
    except ValueError:
        raise ValueError(f"--fractions must be comma-separated numbers, got {fractions!r}") from None
    fn = split_random if kind == "random" else split_by_composition
    parts = fn(CrystalStore.open(store, mode="r+"), seed=seed, fractions=fr, name=name or kind)
    typer.echo(f"split {name or kind}: " + ", ".join(f"{p} {len(i)}" for p, i in parts.items()))


@app.command()
@_friendly
def stats(
    store: str = typer.Argument(..., help="store path or URL"),
    out: str | None = typer.Option(None, help="folder for elements.png and histograms.png"),
) -> None:
    """Print statistics of STORE; with --out also draw the periodic-table heat map and histograms."""
    from xtal_data.stats import compute_stats
    from xtal_data.store import CrystalStore

    result = compute_stats(CrystalStore.open(store))
    typer.echo(result.summary())
    if out is not None:
        from xtal_data.plots import plot_histograms, plot_periodic_table

        folder = Path(out)
        folder.mkdir(parents=True, exist_ok=True)
        typer.echo(f"wrote {plot_periodic_table(result.structures_with_element, folder / 'elements.png')}")
        typer.echo(f"wrote {plot_histograms(result, folder / 'histograms.png')}")


@app.command()
@_friendly
def export(
    store: str = typer.Argument(..., help="store path or URL"),
    output: str = typer.Argument(..., help="folder (cif) or file (extxyz)"),
    format: str = typer.Option("cif", "--format", help="'cif' or 'extxyz'"),
    split_name: str | None = typer.Option(None, "--split", help="export only a split part"),
    part: str = typer.Option("test", help="part of --split"),
    overwrite: bool = typer.Option(False, help="replace existing files"),
    progress: bool | None = typer.Option(
        None, "--progress/--no-progress", help="progress bar  [default: when stderr is a terminal]"
    ),
) -> None:
    """Export STORE (or one split part) to a CIF folder or an extended XYZ file."""
    from xtal_data.export import export_cif, export_extxyz
    from xtal_data.store import CrystalStore

    if format not in ("cif", "extxyz"):
        raise ValueError(f"--format must be 'cif' or 'extxyz', got {format!r}")
    opened = CrystalStore.open(store)
    indices = None
    if split_name is not None:
        parts = opened.split(split_name)
        if part not in parts:
            raise ValueError(f"split {split_name!r} has no part {part!r}; it has {sorted(parts)}")
        indices = parts[part]
    write = export_cif if format == "cif" else export_extxyz
    n = write(opened, output, indices=indices, overwrite=overwrite, progress=progress)
    typer.echo(f"exported {n} structures to {output}")


@app.command("build-pressure")
@_friendly
def build_pressure(
    source: str = typer.Argument(..., help="input structures: a store, or anything `ingest` reads"),
    out: str = typer.Argument(..., help="build folder (local; resumed when it holds the same build)"),
    pressures: str = typer.Option("0,50,100", help="comma-separated target pressures in GPa"),
    calculator: str = typer.Option("chgnet", help="chgnet, emt or module:factory"),
    calculator_kwargs: str = typer.Option("{}", help='JSON keyword arguments, e.g. \'{"device": "cuda"}\''),
    fmax: float = typer.Option(0.05, help="force criterion, eV/Å"),
    max_steps: int = typer.Option(300, help="optimiser steps per relaxation"),
    optimizer: str = typer.Option("fire", help="fire or bfgs"),
    cell_filter: str = typer.Option("frechet", help="frechet or exp"),
    min_volume_fraction: float = typer.Option(
        0.15, help="fail a relaxation whose cell shrinks below this x its hard-sphere volume; 0: off"
    ),
    shard_size: int = typer.Option(8, help="tasks per result shard (the work a kill can lose)"),
    workers: int = typer.Option(1, help="processes, each with its own calculator"),
    threads_per_worker: int | None = typer.Option(None, help="torch threads per process"),
    shards_per_process: int = typer.Option(
        20, help="restart each worker process after this many shards (bounds calculator memory); 0: never"
    ),
    max_atoms: int | None = typer.Option(None, help="only inputs with at most this many atoms"),
    limit: int | None = typer.Option(None, help="only the first N selected inputs"),
    partial: bool = typer.Option(False, help="assemble the store even if tasks are left"),
    assemble_only: bool = typer.Option(False, help="only (re)assemble OUT/relaxed.zarr from its shards"),
    progress: bool = typer.Option(True, help="show a progress bar"),
) -> None:
    """Relax SOURCE's structures at every pressure into OUT (resumable); store in OUT/relaxed.zarr."""
    from xtal_data.build_shards import assemble
    from xtal_data.pressure_build import BuildConfig, build
    from xtal_data.relax_ase import RelaxSettings

    if assemble_only:
        typer.echo(json.dumps(assemble(out, partial=partial)))
        return
    try:
        values = tuple(float(x) for x in pressures.split(","))
    except ValueError:
        raise ValueError(f"--pressures must be comma-separated numbers (GPa), got {pressures!r}") from None
    try:
        kwargs = json.loads(calculator_kwargs)
    except ValueError as err:
        raise ValueError(f"--calculator-kwargs is not JSON ({err})") from None
    if not isinstance(kwargs, dict):
        raise ValueError(f"--calculator-kwargs must be a JSON object, got {calculator_kwargs!r}")
    settings = RelaxSettings(fmax=fmax, max_steps=max_steps, optimizer=optimizer, cell_filter=cell_filter,
                             min_volume_fraction=min_volume_fraction or None)  # fmt: skip
    config = BuildConfig(values, calculator, kwargs, settings, shard_size)
    report = build(
        source, out, config, workers=workers, max_atoms=max_atoms, limit=limit, progress=progress,
        partial=partial, threads_per_worker=threads_per_worker, shards_per_process=shards_per_process or None,
    )  # fmt: skip
    typer.echo(report.summary())


if __name__ == "__main__":  # pragma: no cover
    app()
