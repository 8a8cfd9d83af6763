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

from xtal_tools._cli import EXPECTED_ERRORS, fail, recorded
from xtal_tools._options import ConfigOption, DataOption, DeviceOption, OutOption, SeedOption

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
        str | None,
        typer.Option(help="Warm start from this model checkpoint's weights (fresh optimiser)."),
    ] = None,
    max_epochs: Annotated[int | None, typer.Option(help="Number of epochs.", min=1)] = None,
    batch_size: Annotated[int | None, typer.Option(help="Crystals per process per step.", min=1)] = None,
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
) -> None:
    """Train a Cond-CDVAE; writes run.toml, config.toml, metrics.csv, checkpoints/ and best/ into OUT."""
    from xtal_tools._run_record import RunRecord

    try:
        run_config = _resolve(
            config, data=data, device=device, seed=seed, split=split, max_steps=max_steps,
            max_minutes=max_minutes, init_from=init_from, max_epochs=max_epochs, batch_size=batch_size,
            progress=progress,
        )  # fmt: skip
    except EXPECTED_ERRORS as err:
        fail(err)
    record = RunRecord.start(out, command="train", config=run_config.to_dict(), seed=run_config.train.seed)
    with recorded(record):
        summary = _run(run_config, out, resume)
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


def _resolve(config: Path | None, **flags):
    from cond_vae.training import RunConfig, load_run_config

    run_config = load_run_config(config) if config is not None else RunConfig()
    train_changes = {
        key: value
        for key, value in {
            "device": flags["device"].value if flags["device"] is not None else None,
            "seed": flags["seed"],
            "max_steps": flags["max_steps"],
            "max_minutes": flags["max_minutes"],
            "init_from": flags["init_from"],
            "max_epochs": flags["max_epochs"],
            "batch_size": flags["batch_size"],
        }.items()
        if value is not None
    }
    train_changes["progress"] = flags["progress"] and run_config.train.progress
    data_changes = {
        k: v for k, v in {"path": flags["data"], "split": flags["split"]}.items() if v is not None
    }
    return dataclasses.replace(
        run_config,
        train=run_config.train.replace(**train_changes),
        data=dataclasses.replace(run_config.data, **data_changes),
    )


def _run(run_config, out: Path, resume: str | None) -> dict:
    import os

    from cond_vae.training import open_store_split, train

    train_data, val_data = open_store_split(run_config.data, properties=run_config.model.condition_names)
    result = train(run_config.train, run_config.model, train_data, val_data, out, resume_from=resume)
    summary = {
        "rank": int(os.environ.get("RANK", "0") or 0),
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
    from xtal_tools._cli import tidy_warnings

    tidy_warnings()
    app()


if __name__ == "__main__":
    main()
