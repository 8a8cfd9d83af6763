"""What the ``tools/benchmark`` subcommands share: the app, target options, set-up and the run record."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Annotated

import typer

from xtal_tools.cli._common import prepare_out
from xtal_tools.cli._options import (
    CheckpointOption,
    DataOption,
    DeviceOption,
    OptionTable,
    SeedOption,
    option_table,
)

app = typer.Typer(
    add_completion=False, no_args_is_help=True, help="The paper's evaluations as reproducible benchmarks."
)

TARGETS = "Targets"
Split = Annotated[
    str | None,
    typer.Option(help="Split stored in the data store  \\[default: random]", rich_help_panel=TARGETS),
]
Part = Annotated[
    str | None, typer.Option(help="Part of the split  \\[default: test]", rich_help_panel=TARGETS)
]
Limit = Annotated[
    int | None, typer.Option(help="Only the first N targets of the part.", min=1, rich_help_panel=TARGETS)
]
Targets = Annotated[
    Path | None,
    typer.Option(
        help="CSV with columns cif (path), pressure (GPa) and optionally id.", rich_help_panel=TARGETS
    ),
]
Cell = Annotated[
    str | None,
    typer.Option(
        help="Target cell to sample: given, primitive or conventional  \\[default: given]",
        rich_help_panel=TARGETS,
    ),
]
Jobs = Annotated[int | None, typer.Option(help="Processes for structure matching  \\[default: 1]", min=1)]
Presets = Annotated[
    str | None, typer.Option(help="Comma-separated matcher presets  \\[default: cdvae,paper,strict]")
]
Num = Annotated[int | None, typer.Option("--num", "-n", help="Samplings per target.", min=1)]


_OPTIONS = {
    "checkpoint": CheckpointOption, "data": DataOption, "split": Split, "part": Part, "limit": Limit,
    "targets": Targets, "cell": Cell, "jobs": Jobs, "seed": SeedOption, "device": DeviceOption,
}  # fmt: skip


def bench_options(*names: str) -> OptionTable:
    """The model and target options of a benchmark, declared once: ``--checkpoint``, ``names`` (of
    ``data``, ``split``, ``part``, ``limit``, ``targets``, ``cell``, ``jobs``), ``--seed``, ``--device``;
    :func:`open_bench` merges them into the benchmark's own flags."""
    chosen = ("checkpoint", *names, "seed", "device")
    convert = {"device": lambda d: d.value, "targets": str}
    return option_table("bench", {n: _OPTIONS[n] for n in chosen}, convert=convert)


def presets_flag(text: str | None) -> tuple[str, ...] | None:
    return None if text is None else tuple(p.strip() for p in text.split(",") if p.strip())


def open_bench(cls, table: str, config, flags: dict, tables, out: Path, overwrite: bool, notes, **open_kw):
    """Resolve the benchmark's config, open model, targets and calculator, then create OUT."""
    from xtal_tools.checkpoints import condition_warnings
    from xtal_tools.config import resolve
    from xtal_tools.evaluation.configs import open_benchmark

    nested = tables.gather()
    flags = {**nested.pop("bench"), **flags}
    settings = resolve(cls, table=table, path=config, flags=flags, nested_flags=nested)
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


def start_record(name: str, out: Path, settings, table: str, bench, notes):
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


Formulas = Annotated[str | None, typer.Option(help="Comma-separated cell formulas, e.g. Na4Cl4,Si2.")]
Pressures = Annotated[str | None, typer.Option(help="Comma-separated requested pressures (GPa).")]


def csv_flag(text: str | None) -> tuple[str, ...] | None:
    """A comma-separated flag as a tuple (None: not given)."""
    return None if text is None else tuple(p.strip() for p in text.split(",") if p.strip())
