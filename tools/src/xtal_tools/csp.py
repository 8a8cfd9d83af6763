"""``tools/csp``: predict crystal structures of a composition at a pressure.

Samples structures from a checkpoint, relaxes each at the pressure (CHGNet by default), removes
duplicates and ranks the rest by enthalpy per atom::

    tools/csp --checkpoint CKPT --formula Si4O8 --pressure 50 --num 100 --out si4o8-50gpa
    tools/csp -k CKPT --formula SiO2 --formula-units 2-4 --pressure 0 --num 60 --out sio2
    tools/csp -k CKPT -f SiO2 -u 4 -p 50 -o run --calculator mypkg.vasp:make_calc \\
        --calculator-args '{"xc": "PBE"}'
    tools/csp -f SiO2 -u 2-4 -p 0,50 -o sio2          # the default model; one sub-folder per pressure

Without ``--checkpoint`` the default model shipped with xtal-tools is used (see its model card,
``xtal_tools/models/default/MODEL_CARD.md``). Several comma-separated pressures run one job per pressure
into ``OUT/<P>GPa/`` with the same model, calculator and seed.

Writes into OUT (or each ``OUT/<P>GPa``): ``ranked/NNN_<formula>_<spacegroup>_<number>.cif``,
``candidates.csv`` and ``candidates.json`` (every sample, ranked or not, with its status and reason),
``enthalpy.png`` and ``run.toml`` (resolved settings, versions, counts).

Small cells relax fastest with one thread per process (``OMP_NUM_THREADS=1``): on a busy machine,
extra torch/BLAS threads of CHGNet spin and slow every step down.
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path
from typing import Annotated

import typer

from xtal_tools._cli import (
    EXPECTED_ERRORS,
    fail,
    pressure_notes,
    quiet_known_warnings,
    recorded,
    resolve_device,
)
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


def _default_checkpoint() -> Path | None:
    """The default model shipped inside xtal-tools (package data), if this installation has it."""
    path = Path(__file__).resolve().parent / "models" / "default"
    return path if (path / "model.safetensors").is_file() else None


DEFAULT_CHECKPOINT: Path | None = _default_checkpoint()
_RELAX = "Relaxation"


@app.command()
def csp(
    formula: Annotated[
        str,
        typer.Option(
            "--formula", "-f", help="Cell formula (Si4O8), or one formula unit with --formula-units."
        ),
    ],
    pressure: Annotated[
        str, typer.Option("--pressure", "-p", help="Pressure in GPa (>= 0); several: 0,50 (one job each).")
    ],
    out: OutOption,
    checkpoint: Annotated[
        Path | None, typer.Option("--checkpoint", "-k", help="Checkpoint directory.")
    ] = None,
    formula_units: Annotated[
        str | None,
        typer.Option(
            "--formula-units",
            "-u",
            help="Formula units per cell: N, A-B or 1,2,4 (samples are dealt round-robin over the cells).",
        ),
    ] = None,
    num: Annotated[int, typer.Option("--num", "-n", help="Structures to sample in total.", min=1)] = 20,
    seed: SeedOption = None,
    device: DeviceOption = None,
    calculator: Annotated[
        str,
        typer.Option(
            help="ASE calculator: chgnet, emt, or an import path module:factory.", rich_help_panel=_RELAX
        ),
    ] = "chgnet",
    calculator_args: Annotated[
        str | None,
        typer.Option(
            help="JSON object of keyword arguments for the calculator factory.", rich_help_panel=_RELAX
        ),
    ] = None,
    relax: Annotated[
        bool,
        typer.Option(
            "--relax/--no-relax",
            help="Relax at the pressure (--no-relax: rank unrelaxed samples in sample order).",
            rich_help_panel=_RELAX,
        ),
    ] = True,
    fmax: Annotated[
        float, typer.Option(help="Force convergence criterion (eV/Å).", rich_help_panel=_RELAX)
    ] = 0.05,
    max_steps: Annotated[
        int, typer.Option(help="Optimizer steps at most per structure.", min=0, rich_help_panel=_RELAX)
    ] = 300,
    optimizer: Annotated[str, typer.Option(help="fire or bfgs.", rich_help_panel=_RELAX)] = "fire",
    cell_filter: Annotated[
        str,
        typer.Option(
            help="frechet (FrechetCellFilter), exp (ExpCellFilter) or none (fixed cell).",
            rich_help_panel=_RELAX,
        ),
    ] = "frechet",
    preset: Annotated[
        str, typer.Option(help="StructureMatcher preset for de-duplication: paper, cdvae, strict.")
    ] = "paper",
    symprec: Annotated[float, typer.Option(help="spglib symmetry tolerance (Å).", min=0)] = 0.1,
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
    progress: Annotated[
        bool | None,
        typer.Option("--progress/--no-progress", help="Progress bars (default: when stderr is a terminal)."),
    ] = None,
    overwrite: Annotated[bool, typer.Option(help="Allow a non-empty output directory.")] = False,
) -> None:
    """Sample, relax at the pressure, de-duplicate and rank structures by enthalpy per atom."""
    from xtal_tools._run_record import RunRecord

    t0 = time.perf_counter()
    quiet_known_warnings()
    try:
        settings, sampler, model, formulas, calc, config = _prepare(**locals())
    except EXPECTED_ERRORS as err:
        fail(err)
    empty = []
    for p in config["pressures_GPa"]:
        sub = out if len(config["pressures_GPa"]) == 1 else out / f"{p:g}GPa"
        t_p = time.perf_counter()
        settings_p = dataclasses.replace(settings, pressure=p)
        config_p = {k: v for k, v in config.items() if k not in ("pressures_GPa", "warnings")} | {
            "pressure_GPa": p,
            "warnings": pressure_notes(model, [p]),  # each pressure's run records its own warnings
        }
        sub.mkdir(parents=True, exist_ok=True)
        record = RunRecord.start(sub, command="csp", config=config_p, seed=config["seed"])
        with recorded(record):
            summary, ranked = _run(model, formulas, calc, settings_p, sampler, config_p, sub, progress)
        summary["wall_s"] = round(time.perf_counter() - t_p, 2)
        record.finish(summary)
        _report(summary, ranked, sub, pressure=p)
        if not ranked:
            empty.append(sub / "candidates.csv")
    if len(config["pressures_GPa"]) > 1:
        typer.echo(f"total {time.perf_counter() - t0:.1f} s")
    if empty:
        fail(f"no structure survived (see {', '.join(map(str, empty))} for the reasons)")


def _prepare(**opts):
    """Check every input and load model and calculator before anything is written."""
    from xtal_eval import PRESETS

    from xtal_tools._options import resolve_sampler, sampler_record
    from xtal_tools._run_record import installed_versions
    from xtal_tools.csp_job import cell_formulas, parse_formula_units
    from xtal_tools.relax import RelaxSettings, load_calculator
    from xtal_tools.sample import _load, _prepare_out

    if not opts["formula"].strip():
        raise ValueError("--formula: empty formula")
    pressures = _parse_pressures(opts["pressure"])
    units = parse_formula_units(opts["formula_units"]) if opts["formula_units"] is not None else None
    settings = RelaxSettings(
        pressure=pressures[0], fmax=opts["fmax"], max_steps=opts["max_steps"],
        optimizer=opts["optimizer"], cell_filter=opts["cell_filter"],
    )  # fmt: skip
    if opts["preset"] not in PRESETS:
        raise ValueError(f"--preset {opts['preset']!r}: choose from {', '.join(PRESETS)}")
    sampler = resolve_sampler(opts, config_file=opts["sampler_config"])
    seed = 0 if opts["seed"] is None else opts["seed"]
    kwargs = _calculator_kwargs(opts["calculator_args"])
    checkpoint = opts["checkpoint"] or DEFAULT_CHECKPOINT
    if checkpoint is None:
        raise ValueError("--checkpoint: no checkpoint given and no default model is installed")
    if not Path(checkpoint).is_dir():
        raise FileNotFoundError(f"checkpoint {checkpoint} is not a directory")
    dev = resolve_device(opts["device"].value if opts["device"] is not None else None)
    model, _ = _load(Path(checkpoint), dev, 1)
    cfg = model.config
    formulas = cell_formulas(opts["formula"], units, max_atoms=cfg.max_atoms, num_elements=cfg.num_elements)
    calc = None
    if opts["relax"]:
        if opts["calculator"].strip().lower() == "chgnet":
            kwargs.setdefault("device", dev)
        calc = load_calculator(opts["calculator"], **kwargs)
    _prepare_out(opts["out"], opts["overwrite"])
    notes = pressure_notes(model, pressures)
    for note in notes:
        typer.echo(f"warning: {note}", err=True)
    config = {
        "checkpoint": str(checkpoint), "formula": opts["formula"], "formula_units": list(units or []),
        "cell_formulas": formulas, "pressures_GPa": pressures, "num": opts["num"], "seed": seed,
        "device": dev, "preset": opts["preset"], "symprec": opts["symprec"],
        **sampler_record(sampler, model),
        "relax": {"enabled": opts["relax"], "calculator": opts["calculator"] if opts["relax"] else "",
                  "calculator_args": json.dumps(kwargs, default=str), "fmax": settings.fmax,
                  "max_steps": settings.max_steps, "optimizer": settings.optimizer,
                  "cell_filter": settings.cell_filter},
        "warnings": notes,
        "dependency_versions": installed_versions(("ase", "pymatgen", "spglib", "chgnet")),
    }  # fmt: skip
    return settings, sampler, model, formulas, calc, config


def _parse_pressures(text: str) -> list[float]:
    """``"0,50"`` -> ``[0.0, 50.0]``: each finite and >= 0 GPa, no repeats."""
    from xtal_tools.sampling import check_pressure

    parts = [p.strip() for p in str(text).split(",")]
    if not any(parts):
        raise ValueError("--pressure: empty (give a number in GPa, or several: 0,50)")
    pressures = [check_pressure(p, "--pressure") for p in parts]
    if len(set(pressures)) != len(pressures):
        raise ValueError(f"--pressure {text!r}: a pressure is repeated")
    return pressures


def _calculator_kwargs(text: str | None) -> dict:
    if text is None:
        return {}
    try:
        kwargs = json.loads(text)
    except json.JSONDecodeError as err:
        raise ValueError(f"--calculator-args: not valid JSON ({err.msg} at character {err.pos})") from None
    if not isinstance(kwargs, dict):
        raise ValueError(f"--calculator-args: expected a JSON object, got {type(kwargs).__name__}")
    return kwargs


def _run(model, formulas, calc, settings, sampler, config, out: Path, progress):
    from xtal_tools.csp_job import rank_candidates, relax_samples, sample_structures, status_counts
    from xtal_tools.csp_report import write_results

    samples = sample_structures(
        model, formulas, pressure=settings.pressure, num=config["num"], seed=config["seed"], sampler=sampler,
        progress=progress,
    )  # fmt: skip
    cands = relax_samples(samples, calc, settings, progress=progress)
    cands = rank_candidates(cands, preset=config["preset"], symprec=config["symprec"])
    ranked = [c for c in cands if c.status == "ranked"]
    title = f"{config['formula']} at {settings.pressure:g} GPa: {len(ranked)} unique of {len(cands)} samples"
    meta = {k: v for k, v in config.items() if k != "dependency_versions"}
    write_results(cands, out, meta=meta, title=title)
    summary = {"counts": status_counts(cands), "unconverged": sum(c.converged is False for c in ranked)}
    return summary, ranked


def _report(summary, ranked, out: Path, *, pressure: float, top: int = 5) -> None:
    counts = summary["counts"]
    typer.echo(
        f"{pressure:g} GPa: {len(ranked)} unique structure(s) ranked from {sum(counts.values())} samples "
        f"({counts['duplicate']} duplicates, {counts['relax_failed']} relaxation failures, "
        f"{counts['invalid_cell']} invalid cells, {summary['unconverged']} ranked but not converged) "
        f"in {summary['wall_s']:.1f} s -> {out}"
    )
    for c in ranked[:top]:
        h = (
            f"{c.enthalpy_per_atom:.4f} eV/atom"
            if c.enthalpy_per_atom == c.enthalpy_per_atom
            else "unrelaxed"
        )
        flag = "  (relaxation not converged)" if c.converged is False else ""
        typer.echo(
            f"  {c.rank:3d}  {c.formula:<10} {c.spacegroup:<10} ({c.spacegroup_number:3d})  H = {h}{flag}"
        )


def main() -> None:
    from xtal_tools._cli import tidy_warnings

    tidy_warnings()
    app()


if __name__ == "__main__":
    main()
