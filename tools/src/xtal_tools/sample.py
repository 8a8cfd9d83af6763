"""``tools/sample``: generate crystal structures for (formula, pressure) rows from a checkpoint.

One formula::

    tools/sample --checkpoint CKPT --formula Si4O8 --pressure 50 --num 100 --out DIR

Many rows (a CSV with columns formula, pressure [GPa] and optionally id), across processes::

    torchrun --nproc-per-node 4 tools/sample --checkpoint CKPT --rows targets.csv --num 20 --out DIR

Writes ``cif/`` (one CIF per valid structure), ``samples.extxyz``, ``samples.csv`` (every sample,
valid or not, with the reason) and ``run.toml`` into DIR. The output is the same for any number of
processes with the same seed and sampler settings (on the same kind of device and the same number of
threads per process: floating-point reductions are order dependent), and the same as ``tools/csp``,
``tools/benchmark`` and ``tools/evaluate`` sample for the same rows.

The sampler (``--sampler pc|langevin|ode``, ``--levels``, ``--steps-per-level``, ...; every command that
samples shares these flags) can also come from ``--sampler-config FILE.toml`` (a ``[sampler]`` table,
or a previous run's ``run.toml``); flags override the file. ``run.toml`` records the resolved
``[sampler]`` table and the decoder calls per structure.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from xtal_tools._cli import EXPECTED_ERRORS, fail, recorded, resolve_device
from xtal_tools._options import (
    BatchSizeOption,
    CorrectorStepsOption,
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


@app.command()
def sample(
    checkpoint: Annotated[Path, typer.Option("--checkpoint", "-k", help="Checkpoint directory.")],
    out: OutOption,
    formula: Annotated[str | None, typer.Option(help="Full-cell formula, e.g. Si4O8.")] = None,
    pressure: Annotated[str | None, typer.Option(help="Pressure in GPa (with --formula).")] = None,
    rows: Annotated[
        Path | None, typer.Option(help="CSV of rows: formula, pressure (GPa), optional id.")
    ] = None,
    num: Annotated[int, typer.Option("--num", "-n", help="Structures per row.", min=1)] = 10,
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
    fmt: Annotated[
        list[str] | None, typer.Option("--format", help="cif, extxyz, store (repeatable).")
    ] = None,
    overwrite: Annotated[bool, typer.Option(help="Allow a non-empty output directory.")] = False,
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
) -> None:
    """Sample structures and write them to OUT."""
    from xtal_tools._options import resolve_sampler, sampler_record
    from xtal_tools._run_record import RunRecord
    from xtal_tools.sampling import SampleRow, SamplingJob, read_rows, validate_rows

    opts = dict(locals())
    rank, world_size = int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))
    try:
        if (formula is None) == (rows is None):
            raise ValueError("give either --formula with --pressure, or --rows CSV")
        if formula is not None:
            if pressure is None:
                raise ValueError("--formula needs --pressure (GPa)")
            from xtal_tools.sampling import check_pressure

            row_list = [SampleRow(formula, check_pressure(pressure, "--pressure"))]
        else:
            row_list = read_rows(rows)
        job = SamplingJob(
            num_per_row=num,
            seed=0 if seed is None else seed,
            sampler=resolve_sampler(opts, config_file=sampler_config),
            formats=tuple(fmt or ("cif", "extxyz")),
        )
        _check_out(out, overwrite)
        if not checkpoint.is_dir():
            raise FileNotFoundError(f"checkpoint {checkpoint} is not a directory")
        dev = resolve_device(device.value if device is not None else None)
        model, barrier = _load(checkpoint, dev, world_size)
        validate_rows(row_list, model)  # every row is checked before anything is written
        _make_out(out)  # only now: a bad request or checkpoint leaves no folder behind
    except EXPECTED_ERRORS as err:
        fail(err)
    config = {"checkpoint": str(checkpoint), "num_rows": len(row_list), "device": dev,
              "world_size": world_size, "num_per_row": job.num_per_row, "seed": job.seed,
              "formats": list(job.formats), **sampler_record(job.sampler, model)}  # fmt: skip
    record = RunRecord.start(out, command="sample", config=config, seed=job.seed)
    with recorded(record):
        summary = _run(model, barrier, row_list, job, out, rank, world_size, progress)
    if summary is None:  # a non-zero rank: rank 0 reports
        return
    record.finish(
        {
            "num_rows": summary.num_rows,
            "num_samples": summary.num_samples,
            "written": summary.written,
            "failed": summary.failed,
            "wall_s": summary.wall_s,
            "decoder_calls": summary.decoder_calls,
        }
    )
    failed = ", ".join(f"{n} {reason}" for reason, n in summary.failed.items()) or "none"
    typer.echo(
        f"sampled {summary.num_samples} structures for {summary.num_rows} row(s) in {summary.wall_s:.1f} s; "
        f"wrote {summary.written} valid (failed: {failed}) to {out}"
    )


def _check_out(out: Path, overwrite: bool) -> None:
    """Refuse an unusable ``--out`` before any work, without creating it."""
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"--out {out} exists and is not a directory")
    if out.is_dir() and not overwrite and any(p.name != ".shards" for p in out.iterdir()):
        if int(os.environ.get("RANK", 0)) == 0:
            raise FileExistsError(f"--out {out} is not empty (pass --overwrite to write into it)")
    existing = next(p for p in (out, *out.absolute().parents) if p.exists())
    if not existing.is_dir() or not os.access(existing, os.W_OK):
        raise ValueError(f"--out {out}: cannot create it ({existing} is not a writable folder)")


def _prepare_out(out: Path, overwrite: bool) -> None:
    """Check ``--out`` and create it (for commands that call this once every input is validated)."""
    _check_out(out, overwrite)
    _make_out(out)


def _make_out(out: Path) -> None:
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ValueError(f"--out {out}: cannot create it ({err.strerror})") from None


def _load(checkpoint: Path, device: str, world_size: int):
    """The model on its device, and a barrier when running under a multi-process launcher."""
    from cond_vae.checkpoint import load_checkpoint

    barrier = None
    if world_size > 1:
        import torch.distributed as dist

        if not dist.is_initialized():
            dist.init_process_group("nccl" if device == "cuda" else "gloo")
        barrier = dist.barrier
        if device == "cuda":
            device = f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}"
    return load_checkpoint(checkpoint, map_location=device), barrier


def _run(model, barrier, rows, job, out: Path, rank: int, world_size: int, progress: bool = True):
    import torch

    from xtal_tools.sampling import run_sampling

    with torch.inference_mode():
        summary = run_sampling(
            model, rows, job, out, rank=rank, world_size=world_size, barrier=barrier, progress=progress
        )
    if world_size > 1:
        import torch.distributed as dist

        dist.barrier()  # keep every rank alive until rank 0 has merged
        dist.destroy_process_group()
    return summary


def main() -> None:
    from xtal_tools._cli import tidy_warnings

    tidy_warnings()
    app()


if __name__ == "__main__":
    main()
