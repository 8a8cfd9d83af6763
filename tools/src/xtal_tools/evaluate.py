"""``tools/evaluate``: score a checkpoint on the test part of an xtal-data store with xtal-eval.

    tools/evaluate recon --checkpoint CKPT --data mp20.zarr --out DIR        # Table II protocol
    tools/evaluate csp   --checkpoint CKPT --data mp20.zarr --num 20 --out DIR
    tools/evaluate gen   --checkpoint CKPT --data mp20.zarr --out DIR

Each writes ``summary.json``, ``items.csv`` (one row per target), the structures it generated
(extended XYZ, with ids; re-score them without torch through the ``xtal-eval`` CLI) and ``run.toml``.
"""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from xtal_tools._cli import EXPECTED_ERRORS, fail, recorded, resolve_device
from xtal_tools._options import (
    BatchSizeOption,
    CorrectorStepsOption,
    DataOption,
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

Checkpoint = Annotated[Path, typer.Option("--checkpoint", "-k", help="Checkpoint directory.")]
Split = Annotated[str, typer.Option(help="Split stored in the data store.")]
Part = Annotated[str, typer.Option(help="Part of the split to evaluate on.")]
Limit = Annotated[int | None, typer.Option(help="Evaluate only the first N targets.", min=1)]
Presets = Annotated[
    str | None,
    typer.Option(help="Comma-separated matcher presets: cdvae, paper, strict (default: all; gen: paper)."),
]
Jobs = Annotated[int, typer.Option(help="Processes for structure matching.", min=1)]
UseMean = Annotated[bool, typer.Option(help="recon: decode the posterior mean instead of a sample.")]


def _run(
    command: str,
    checkpoint: Path,
    data: str | None,
    out: Path,
    split: str,
    part: str,
    limit: int | None,
    seed: int | None,
    device,
    sampler_opts: dict,
    presets: str,
    jobs: int,
    **kwargs,
) -> None:
    from xtal_tools import evaluation
    from xtal_tools._options import resolve_sampler, sampler_record
    from xtal_tools._run_record import RunRecord

    try:
        if data is None:
            raise ValueError("--data STORE is required")
        if not checkpoint.is_dir():
            raise FileNotFoundError(f"checkpoint {checkpoint} is not a directory")
        names = tuple(p.strip() for p in presets.split(",") if p.strip())
        from xtal_eval import resolve_presets

        resolve_presets(names)  # unknown names fail here, before any sampling
        sampler = resolve_sampler(sampler_opts, config_file=sampler_opts["sampler_config"])
        settings = evaluation.EvalSettings(
            seed=0 if seed is None else seed, sampler=sampler, presets=names, jobs=jobs
        )
        dev = resolve_device(device.value if device is not None else None)
        from cond_vae.checkpoint import load_checkpoint
        from xtal_data.torch_dataset import CrystalDataset

        model = load_checkpoint(checkpoint, map_location=dev)
        from xtal_tools.bench._common import part_indices

        indices = part_indices(data, split, part)[:limit]  # read the store once, only what is used
        dataset = CrystalDataset(data, indices=indices, properties=model.config.condition_names)
        if len(dataset) == 0:
            raise ValueError(f"{data}: split {split!r} part {part!r} is empty")
        out.mkdir(parents=True, exist_ok=True)
    except EXPECTED_ERRORS as err:
        fail(err)
    config = {
        "checkpoint": str(checkpoint),
        "data": data,
        "split": split,
        "part": part,
        "limit": limit,
        "n_targets": len(dataset),
        "device": dev,
        "seed": settings.seed,
        "presets": list(settings.presets),
        "jobs": settings.jobs,
        **sampler_record(sampler, model),
        **kwargs,
    }
    record = RunRecord.start(out, command=f"evaluate {command}", config=config, seed=settings.seed)
    with recorded(record):
        result = getattr(evaluation, f"evaluate_{command}")(model, dataset, settings, out, **kwargs)
        from xtal_eval.report import write_csv, write_json

        write_json(out / "summary.json", {**result.summary, **sampler_record(sampler, model)})
        write_csv(out / "items.csv", result.rows)
    record.finish({k: v for k, v in result.summary.items() if not isinstance(v, dict | list)})
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


class Task(str, Enum):
    """What to evaluate: ``recon`` (Table II), ``csp`` (Fig. 3) or ``gen`` (generation metrics)."""

    recon = "recon"
    csp = "csp"
    gen = "gen"


DEFAULT_PRESETS = {Task.recon: "cdvae,paper,strict", Task.csp: "cdvae,paper,strict", Task.gen: "paper"}


@app.command()
def evaluate(
    task: Annotated[Task, typer.Argument(help="recon, csp or gen.")],
    checkpoint: Checkpoint,
    out: OutOption,
    data: DataOption = None,
    split: Split = "random",
    part: Part = "test",
    limit: Limit = None,
    seed: SeedOption = None,
    device: DeviceOption = None,
    presets: Presets = None,
    jobs: Jobs = 1,
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
    num: Annotated[int, typer.Option("--num", "-n", help="csp: samples per target.", min=1)] = 20,
    use_mean: UseMean = False,
) -> None:
    """Evaluate CHECKPOINT on a store split: recon (match rate, mean normalised RMSD; Table II), csp (match
    rate at 1 and NUM samples with RMSE, success curve; Fig. 3) or gen (validity, Wasserstein distances of
    density and number of elements, uniqueness)."""
    opts = dict(locals())
    extra = {Task.recon: {"use_mean": use_mean}, Task.csp: {"num": num}, Task.gen: {}}[task]
    _run(
        task.value,
        checkpoint,
        data,
        out,
        split,
        part,
        limit,
        seed,
        device,
        opts,
        presets or DEFAULT_PRESETS[task],
        jobs,
        **extra,
    )


def main() -> None:
    from xtal_tools._cli import tidy_warnings

    tidy_warnings()
    app()


if __name__ == "__main__":
    main()
