"""``tools/train``: train a Cond-CDVAE from a TOML config on an xtal-data store.

One process (CPU or one GPU)::

    tools/train --config configs/tiny.toml --data mp20.zarr --out runs/tiny

Several GPUs or nodes (every process runs the same command; rank 0 writes the outputs)::

    torchrun --nproc-per-node 4 tools/train -c configs/4m.toml --data s3://bucket/mp20.zarr --out runs/4m

Resume the newest checkpoint of a run with ``--resume auto`` (or give a ``checkpoints/step_*`` path).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Annotated

import typer

from xtal_tools.cli._common import Warnings, checked, recorded, run_app
from xtal_tools.cli._options import ConfigOption, DataOption, DeviceOption, OutOption, SeedOption

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__.split("\n\n")[0])


@app.command()
def train(
    out: OutOption,
    config: ConfigOption = None,
    data: DataOption = None,
    device: DeviceOption = None,
    seed: SeedOption = None,
    resume: Annotated[
        str | None,
        typer.Option(help="'auto' (newest checkpoint in OUT, if any) or a checkpoints/step_* directory."),
    ] = None,
    split: Annotated[
        str | None, typer.Option(help="Split of the store to use (default: the config's).")
    ] = None,
    max_steps: Annotated[int | None, typer.Option(help="Stop after this many steps.", min=1)] = None,
    max_minutes: Annotated[
        float | None,
        typer.Option(help="Stop after this many minutes (checkpointed; resume to go on).", min=0.01),
    ] = None,
    init_from: Annotated[
        str | None, typer.Option(help="Warm start from this model checkpoint's weights (fresh optimiser).")
    ] = None,
    max_epochs: Annotated[int | None, typer.Option(help="Number of epochs.", min=1)] = None,
    batch_size: Annotated[int | None, typer.Option(help="Crystals per process per step.", min=1)] = None,
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
) -> None:
    """Train a Cond-CDVAE; writes run.toml, config.toml, metrics.csv, checkpoints/ and best/ into OUT."""
    from xtal_tools.records import RunRecord

    train_flags = {
        "device": device.value if device is not None else None,
        "seed": seed,
        "max_steps": max_steps,
        "max_minutes": max_minutes,
        "init_from": init_from,
        "max_epochs": max_epochs,
        "batch_size": batch_size,
    }
    with Warnings() as notes, checked():
        run_config = resolve_run_config(
            config, train=train_flags, data={"path": data, "split": split}, progress=progress
        )
    record = RunRecord.start(out, command="train", tables=run_config.to_dict(), seed=run_config.train.seed)
    with recorded(record), notes:
        summary = _run(run_config, out, resume)
    record.derived["warnings"] = notes.messages
    record.finish(summary)
    if summary["rank"] == 0:
        if summary["stopped_by"] in ("SIGINT", "SIGTERM", "max_minutes"):
            typer.echo(
                f"stopped by {summary['stopped_by']} at step {summary['steps']}; continue with the same "
                f"command and --resume auto (or --resume {summary['final_checkpoint']})"
            )
        typer.echo(
            f"trained {summary['steps']} steps ({summary['epochs_completed']} epochs) in "
            f"{summary['seconds']:.1f} s; last train loss {summary.get('last_train_loss', 'n/a')}, "
            f"best val loss {summary.get('best_val_loss', 'n/a')}\n"
            f"final checkpoint: {summary['final_checkpoint']}"
        )


def resolve_run_config(path: Path | None, *, train: dict, data: dict, progress: bool):
    """The run configuration: the ``[train]``, ``[model]``, ``[data]`` tables of ``path`` (a previous
    ``run.toml`` works), flags over them (None: not given)."""
    from cond_vae.training import RunConfig, run_config_from_dict

    from xtal_tools.config import read_tables

    run_config = (
        run_config_from_dict(read_tables(path), source=str(path)) if path is not None else RunConfig()
    )
    changes = {k: v for k, v in train.items() if v is not None}
    changes["progress"] = progress and run_config.train.progress
    return dataclasses.replace(
        run_config,
        train=run_config.train.replace(**changes),
        data=dataclasses.replace(run_config.data, **{k: v for k, v in data.items() if v is not None}),
    )


def _run(run_config, out: Path, resume: str | None) -> dict:
    from cond_vae.distributed import process_env
    from cond_vae.training import open_store_split, train

    train_data, val_data = open_store_split(run_config.data, properties=run_config.model.condition_names)
    result = train(run_config.train, run_config.model, train_data, val_data, out, resume_from=resume)
    summary = {
        "rank": process_env().rank,
        "steps": result.steps,
        "epochs_completed": result.epochs_completed,
        "seconds": result.seconds,
        "stopped_by": result.stopped_by,
        "resumed_from_step": result.resumed_from_step,
        "final_checkpoint": str(result.final_checkpoint),
        "best_checkpoint": str(result.best_checkpoint) if result.best_checkpoint else None,
        "best_val_loss": result.best_val_loss,
        "last_train_loss": result.last_train_loss,
        "skipped_batches": len(result.skipped),
        "train_crystals": len(train_data),
        "val_crystals": len(val_data) if val_data is not None else 0,
    }
    return {k: v for k, v in summary.items() if v is not None}


def main() -> None:
    run_app(app)


if __name__ == "__main__":
    main()
