"""``tools/evaluate``: score a checkpoint on the test part of an xtal-data store with xtal-eval.

    tools/evaluate recon --checkpoint CKPT --data mp20.zarr --out DIR        # Table II protocol
    tools/evaluate csp   --checkpoint CKPT --data mp20.zarr --num 20 --out DIR
    tools/evaluate gen   --checkpoint CKPT --data mp20.zarr --out DIR

Each writes ``summary.json``, ``items.csv`` (one row per target), the structures it generated
(extended XYZ, with ids; re-score them without torch through the ``xtal-eval`` CLI) and ``run.toml``.
"""

from __future__ import annotations

from enum import Enum
from typing import Annotated

import typer

from xtal_tools.cli._common import Warnings, checked, prepare_out, recorded, run_app
from xtal_tools.cli._options import (
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


class Task(str, Enum):
    """What to evaluate: ``recon`` (Table II), ``csp`` (Fig. 3) or ``gen`` (generation metrics)."""

    recon = "recon"
    csp = "csp"
    gen = "gen"


@app.command()
@with_tables(SAMPLER)
def evaluate(
    task: Annotated[Task, typer.Argument(help="recon, csp or gen.")],
    out: OutOption,
    checkpoint: CheckpointOption = None,
    data: DataOption = None,
    split: Annotated[
        str | None, typer.Option(help="Split stored in the data store  \\[default: random]")
    ] = None,
    part: Annotated[
        str | None, typer.Option(help="Part of the split to evaluate on  \\[default: test]")
    ] = None,
    limit: Annotated[int | None, typer.Option(help="Evaluate only the first N targets.", min=1)] = None,
    presets: Annotated[
        str | None,
        typer.Option(help="Comma-separated matcher presets: cdvae, paper, strict  \\[default: all three]"),
    ] = None,
    jobs: Annotated[
        int | None, typer.Option(help="Processes for structure matching  \\[default: 1]", min=1)
    ] = None,
    num: Annotated[
        int | None, typer.Option("--num", "-n", help="csp: samples per target  \\[default: 20]", min=1)
    ] = None,
    use_mean: Annotated[
        bool | None,
        typer.Option(
            "--use-mean/--sample-latent", help="recon: decode the posterior mean instead of a sample."
        ),
    ] = None,
    seed: SeedOption = None,
    device: DeviceOption = None,
    config: ConfigOption = None,
    progress: ProgressOption = None,
    overwrite: OverwriteOption = False,
    tables=None,
) -> None:
    """Evaluate a checkpoint on a store split: recon (match rate, mean normalised RMSD; Table II), csp (match
    rate at 1 and NUM samples with RMSE, success curve; Fig. 3) or gen (validity, Wasserstein distances of
    density and number of elements, uniqueness)."""
    from xtal_eval.report import write_csv, write_json

    from xtal_tools.config import resolve, to_tables
    from xtal_tools.evaluation.split_eval import EvalSettings, prepare_evaluation
    from xtal_tools.evaluation.split_eval import evaluate as run_evaluation
    from xtal_tools.records import RunRecord

    presets = None if presets is None else tuple(p.strip() for p in presets.split(",") if p.strip())
    flags = {"checkpoint": checkpoint, "data": data, "split": split, "part": part, "limit": limit,
             "seed": seed,
             "device": device.value if device is not None else None, "jobs": jobs, "num": num,
             "use_mean": use_mean, "presets": presets}  # fmt: skip
    with Warnings() as notes, checked():
        settings = resolve(
            EvalSettings, table="evaluate", path=config, flags=flags, nested_flags=tables.gather()
        )
        prepare_out(out, overwrite=overwrite, create=False)
        opened, dataset, warned = prepare_evaluation(settings)
        notes.add(warned)
        prepare_out(out, overwrite=overwrite)
    table, calls = (
        to_tables(settings, table="evaluate"),
        settings.sampler.decoder_calls(len(opened.model.sigmas)),
    )
    derived = {"checkpoint": str(opened.path), "device": opened.device, "n_targets": len(dataset),
               "decoder_calls_per_structure": calls}  # fmt: skip
    record = RunRecord.start(
        out, command=f"evaluate {task.value}", tables=table, seed=settings.seed, derived=derived
    )
    with recorded(record), notes:
        result = run_evaluation(task.value, opened.model, dataset, settings, out, progress=progress)
        write_json(
            out / "summary.json", {**result.summary, "settings": table, "decoder_calls_per_structure": calls}
        )
        write_csv(out / "items.csv", result.rows)
    record.finish(
        {k: v for k, v in result.summary.items() if not isinstance(v, dict | list)}, warnings=notes.messages
    )
    typer.echo(_headline(result.summary))


def _headline(summary: dict) -> str:
    if summary["command"] == "recon":
        return "\n".join(
            f"{m['preset']:>7} gate={m['gate']:<12} match_rate {m['match_rate']:.4f}  "
            f"mean_rmsd {m['mean_rmsd']}"
            for m in summary["metrics"]
        )
    if summary["command"] == "csp":
        return "\n".join(
            f"{name}: " + ", ".join(f"{k} {v:.4f}" for k, v in s.items() if k.startswith("match_rate"))
            for name, s in summary["presets"].items()
        )
    keys = ("struct_valid", "comp_valid", "valid", "wdist_density", "wdist_num_elems", "uniqueness")
    return ", ".join(f"{k} {summary[k]:.4f}" for k in keys if summary.get(k) is not None)


def main() -> None:
    run_app(app)


if __name__ == "__main__":
    main()
